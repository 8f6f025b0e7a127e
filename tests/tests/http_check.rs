//! `GET /api/prematch/check` end to end: the real start-up wiring, Redis, prematch-queue and the
//! SQS DLQ in moto, including Redis going away.

// Test helpers outside #[test] fns unwrap too: a broken fixture must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod http_support;

use std::collections::HashMap;

use http_support::{event, json};
use prematch_check::api::check::check;
use prematch_check::api::settings::ApiSettings;
use prematch_check::api::startup::{check_state, CheckStateLive};
use prematch_queue::{JobOptions, Queue, QueueSettings};
use prematch_tests::TestStack;

async fn state(stack: &TestStack, extra: &[(&str, &str)]) -> CheckStateLive {
    let (aws, _) = stack.aws_with_tables().await;
    let config = stack.config_with(extra);
    let env: HashMap<String, String> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let settings = ApiSettings::from_lookup(&config, |name| env.get(name).cloned()).unwrap();
    check_state(&config, &settings, &aws).unwrap()
}

#[tokio::test]
async fn a_healthy_stack_is_ok_with_queue_counts_and_an_empty_dlq() {
    // GIVEN Redis with two waiting jobs and an empty DLQ
    let stack = TestStack::start();
    let state = state(&stack, &[]).await;
    let queue = Queue::connect(
        &stack.redis.url(),
        QueueSettings::new("bull", "prematchQueue"),
    )
    .await
    .unwrap();
    queue
        .add("region", serde_json::json!({"n": 1}), JobOptions::default())
        .await
        .unwrap();
    queue
        .add("region", serde_json::json!({"n": 2}), JobOptions::default())
        .await
        .unwrap();
    // WHEN the fixture GET is handled
    let response = check(&state, event("apigw-v2-get-check.json"))
        .await
        .unwrap();
    // THEN 200 ok with every section
    let body = json(&response);
    assert_eq!(response.status().as_u16(), 200, "{body}");
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["redis"]["status"], "ok");
    assert!(body["redis"]["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(body["queue"]["name"], "prematchQueue");
    assert_eq!(body["queue"]["counts"]["waiting"], 2);
    assert_eq!(body["dlq"]["depth"], 0);
    assert_eq!(body["processing"]["sample"], 0);
    assert_eq!(body["rates"]["completed"], 0);
    assert!(body["rates"]["success_rate"].is_null());
}

#[tokio::test]
async fn a_message_in_the_dlq_or_a_paused_queue_degrades_the_check() {
    let stack = TestStack::start();
    let state = state(&stack, &[]).await;
    let aws = stack.aws().await;
    let url = aws
        .sqs
        .get_queue_url()
        .queue_name("prematch-dlq")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    aws.sqs
        .send_message()
        .queue_url(&url)
        .message_body(r#"{"id":"region-2026-12-03-eu-west"}"#)
        .send()
        .await
        .unwrap();
    let queue = Queue::connect(
        &stack.redis.url(),
        QueueSettings::new("bull", "prematchQueue"),
    )
    .await
    .unwrap();
    queue.pause().await.unwrap();
    let response = check(&state, event("apigw-v2-get-check.json"))
        .await
        .unwrap();
    let body = json(&response);
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(body["status"], "degraded");
    assert_eq!(
        body["problems"],
        serde_json::json!(["queue_paused", "dlq_not_empty"])
    );
    assert_eq!(body["dlq"]["depth"], 1);
    assert_eq!(body["queue"]["paused"], true);
}

#[tokio::test]
async fn with_redis_gone_the_check_still_answers_503_down_and_reports_the_dlq() {
    // GIVEN a check whose Redis is stopped, probes bounded at 300 ms
    let stack = TestStack::start();
    let state = state(&stack, &[("PROBE_TIMEOUT_MS", "300")]).await;
    let TestStack { redis, moto } = stack;
    drop(redis);
    // WHEN the check is called
    let response = check(&state, event("apigw-v2-get-check.json"))
        .await
        .unwrap();
    // THEN it answers down with 503, and the DLQ (still up) is reported
    let body = json(&response);
    assert_eq!(response.status().as_u16(), 503, "{body}");
    assert_eq!(body["status"], "down");
    assert_eq!(body["problems"], serde_json::json!(["redis_unreachable"]));
    assert_eq!(body["redis"]["status"], "unavailable");
    assert_eq!(body["dlq"]["depth"], 0);
    assert_eq!(response.headers()["retry-after"], "5");
    drop(moto);
}

#[tokio::test]
async fn callers_polling_too_often_get_429() {
    let stack = TestStack::start();
    let state = state(
        &stack,
        &[
            ("CHECK_RATE_LIMIT_PER_MINUTE", "1"),
            ("CHECK_RATE_LIMIT_BURST", "0"),
        ],
    )
    .await;
    let first = check(&state, event("apigw-v2-get-check.json"))
        .await
        .unwrap();
    let second = check(&state, event("apigw-v2-get-check.json"))
        .await
        .unwrap();
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 429)
    );
    assert!(second.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn the_report_carries_no_job_data() {
    // GIVEN a job whose data holds a user id
    let stack = TestStack::start();
    let state = state(&stack, &[]).await;
    let queue = Queue::connect(
        &stack.redis.url(),
        QueueSettings::new("bull", "prematchQueue"),
    )
    .await
    .unwrap();
    queue
        .add(
            "region",
            serde_json::json!({"user_id": "u_000123"}),
            JobOptions::default(),
        )
        .await
        .unwrap();
    let response = check(&state, event("apigw-v2-get-check.json"))
        .await
        .unwrap();
    assert!(!json(&response).to_string().contains("u_000123"));
}

#[tokio::test]
async fn the_last_run_comes_from_the_workers_run_records() {
    use prematch_app::jobs::event::Trigger;
    use prematch_app::jobs::runs::RegionSummary;
    // GIVEN the worker's run store with a finished run of two regions, one failed
    let stack = TestStack::start();
    let state = state(&stack, &[]).await;
    let date = chrono::NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
    let started = chrono::Utc::now() - chrono::Duration::seconds(90);
    let regions = ["eu-west".to_string(), "us-east".to_string()];
    state
        .runs
        .create("run-2026-12-03", Trigger::Schedule, date, &regions, started)
        .await
        .unwrap();
    let ok = RegionSummary {
        users_read: 120,
        skipped: [
            ("unknown_timezone".to_string(), 2),
            ("inactive".to_string(), 5),
        ]
        .into(),
        suggestions: 150,
        ..RegionSummary::default()
    };
    state
        .runs
        .report_region("run-2026-12-03", "eu-west", &ok, started)
        .await
        .unwrap();
    let failed = RegionSummary {
        error: Some("DynamoDB throttled".into()),
        ..RegionSummary::default()
    };
    state
        .runs
        .report_region("run-2026-12-03", "us-east", &failed, chrono::Utc::now())
        .await
        .unwrap();
    // WHEN the check runs
    let body = json(
        &check(&state, event("apigw-v2-get-check.json"))
            .await
            .unwrap(),
    );
    // THEN it shows that run, partial, with counts per region, and is degraded by it
    let run = &body["last_run"];
    assert_eq!(run["run_id"], "run-2026-12-03", "{body}");
    assert_eq!(run["trigger"], "schedule");
    assert_eq!(run["state"], "partial");
    assert_eq!(run["pending_regions"], 0);
    assert!(run["duration_ms"].as_i64().unwrap() >= 90_000);
    assert_eq!(
        run["regions"]["eu-west"],
        serde_json::json!({"users": 120, "skipped": 7, "suggestions": 150, "failed": false})
    );
    assert_eq!(run["regions"]["us-east"]["failed"], true);
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["problems"], serde_json::json!(["last_run_failed"]));
}
