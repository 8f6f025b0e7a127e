//! `POST /api/prematch/test` end to end: the real start-up wiring, Redis, prematch-queue, the admin
//! key from SSM (moto), and the worker kick through the real Lambda client.

// Test helpers outside #[test] fns unwrap too: a broken fixture must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod http_support;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{TimeZone, Utc};

use http_support::{event, json, InvokeStandIn};
use lambda_http::http::HeaderValue;
use prematch_app::aws::{local_sdk_config, AwsClients};
use prematch_queue::{JobState, Queue, QueueSettings};
use prematch_tests::TestStack;
use prematch_trigger::api::adapters::LambdaWorkerKick;
use prematch_trigger::api::settings::ApiSettings;
use prematch_trigger::api::startup::{trigger_state, TriggerStateLive};
use prematch_trigger::api::trigger::{trigger, WorkerKick};
use prematch_trigger::config::Config;

const SSM_KEY: &str = "ssm-admin-key-0123456789";
const PARAM: &str = "/prematch/admin-api-key";

/// The stack, its AWS clients with Lambda pointed at `stand_in`, and the admin key in SSM.
async fn stack_with_key(stand_in: &InvokeStandIn) -> (TestStack, AwsClients) {
    let stack = TestStack::start();
    let mut aws = stack.aws().await;
    aws.ssm
        .put_parameter()
        .name(PARAM)
        .value(SSM_KEY)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    aws.lambda = aws_sdk_lambda::Client::new(&local_sdk_config(&stand_in.url).await);
    (stack, aws)
}

async fn state(stack: &TestStack, aws: &AwsClients, extra: &[(&str, &str)]) -> TriggerStateLive {
    let mut vars: Vec<(&str, &str)> = vec![("ADMIN_API_KEY_PARAM", PARAM)];
    vars.extend_from_slice(extra);
    let config = stack.config_with(&vars);
    let env: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let settings = ApiSettings::from_lookup(&config, |name| env.get(name).cloned()).unwrap();
    let mut state = trigger_state(&config, &settings, aws).await.unwrap();
    // The fixtures ask for 2026-12-03; pin "today" so the date window holds on any day.
    state.clock = Arc::new(|| Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap());
    state
}

/// The fixture POST, carrying `key` in x-api-key.
fn post_with_key(key: &str) -> lambda_http::Request {
    with_key("apigw-v2-post-test.json", key)
}

/// The fixture `name`, carrying `key` in x-api-key.
fn with_key(name: &str, key: &str) -> lambda_http::Request {
    let mut req = event(name);
    req.headers_mut()
        .insert("x-api-key", HeaderValue::from_str(key).unwrap());
    req
}

#[tokio::test]
async fn an_admin_post_queues_a_run_job_and_kicks_the_worker_lambda() {
    // GIVEN the trigger wired as in production: key from SSM, worker kick by Lambda Invoke
    let stand_in = InvokeStandIn::start(202).await;
    let (stack, aws) = stack_with_key(&stand_in).await;
    let state = state(&stack, &aws, &[("WORKER_FUNCTION_NAME", "prematch-worker")]).await;
    // WHEN the admin posts the fixture body {"regions":["eu-west"],"run_date":"2026-12-03"}
    let response = trigger(&state, post_with_key(SSM_KEY)).await.unwrap();
    // THEN 202 names the run, whose job waits in the BullMQ queue with the agreed data
    let body = json(&response);
    assert_eq!(response.status().as_u16(), 202, "{body}");
    let run_id = body["run_id"].as_str().unwrap();
    assert!(
        run_id.starts_with("manual-2026-12-03-") && run_id.len() == "manual-2026-12-03-".len() + 8,
        "{run_id}"
    );
    assert_eq!(body["worker_kicked"], true);
    let queue = Queue::connect(
        &stack.redis.url(),
        QueueSettings::new("bull", "prematchQueue"),
    )
    .await
    .unwrap();
    let job = queue.get_job(run_id).await.unwrap().unwrap();
    assert_eq!(job.name, "run");
    assert_eq!(
        job.data,
        serde_json::json!({"run_id": run_id, "trigger": "manual", "run_date": "2026-12-03", "regions": ["eu-west"]})
    );
    assert_eq!(job.opts_json["attempts"], 3);
    assert_eq!(
        job.opts_json["backoff"],
        serde_json::json!({"type": "exponential", "delay": 30000})
    );
    assert_eq!(
        queue.get_state(run_id).await.unwrap(),
        Some(JobState::Waiting)
    );
    // AND the worker was invoked asynchronously with the drain event
    let invokes = stand_in.received();
    assert_eq!(invokes.len(), 1);
    assert!(
        invokes[0]
            .request_line
            .starts_with("POST /2015-03-31/functions/prematch-worker/invocations"),
        "{:?}",
        invokes[0]
    );
    assert_eq!(invokes[0].header("x-amz-invocation-type"), Some("Event"));
    assert_eq!(invokes[0].body, r#"{"kind":"drain"}"#);
}

#[tokio::test]
async fn a_second_post_for_the_same_date_is_409_while_the_first_waits() {
    let stand_in = InvokeStandIn::start(202).await;
    let (stack, aws) = stack_with_key(&stand_in).await;
    let state = state(&stack, &aws, &[]).await;
    let first = trigger(&state, post_with_key(SSM_KEY)).await.unwrap();
    assert_eq!(first.status().as_u16(), 202);
    let second = trigger(&state, post_with_key(SSM_KEY)).await.unwrap();
    let body = json(&second);
    assert_eq!(second.status().as_u16(), 409, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains(json(&first)["run_id"].as_str().unwrap()));
    let queue = Queue::connect(
        &stack.redis.url(),
        QueueSettings::new("bull", "prematchQueue"),
    )
    .await
    .unwrap();
    assert_eq!(queue.counts().await.unwrap().waiting, 1);
}

#[tokio::test]
async fn the_admin_is_rate_limited_in_redis_with_retry_after() {
    // GIVEN a limit of one a minute with a burst of one: two requests at once, then wait a minute
    let stand_in = InvokeStandIn::start(202).await;
    let (stack, aws) = stack_with_key(&stand_in).await;
    let state = state(
        &stack,
        &aws,
        &[("RATE_LIMIT_PER_MINUTE", "1"), ("RATE_LIMIT_BURST", "1")],
    )
    .await;
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let response = trigger(
            &state,
            with_key("apigw-v2-post-test-empty-body.json", SSM_KEY),
        )
        .await
        .unwrap();
        statuses.push(response.status().as_u16());
        last = Some(response);
    }
    // THEN the third is refused with a Retry-After of about a minute
    let last = last.unwrap();
    assert_eq!(statuses, vec![202, 409, 429]);
    let retry: u64 = last.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((50..=60).contains(&retry), "{retry}");
    assert_eq!(json(&last)["error"]["code"], "rate_limited");
}

#[tokio::test]
async fn wrong_or_missing_credentials_are_403_and_401_and_queue_nothing() {
    let stand_in = InvokeStandIn::start(202).await;
    let (stack, aws) = stack_with_key(&stand_in).await;
    let state = state(&stack, &aws, &[]).await;
    // The fixture's own key is not the one in SSM.
    let wrong = trigger(&state, event("apigw-v2-post-test.json"))
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 403);
    let missing = trigger(&state, event("apigw-v2-post-test-no-key.json"))
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 401);
    let queue = Queue::connect(
        &stack.redis.url(),
        QueueSettings::new("bull", "prematchQueue"),
    )
    .await
    .unwrap();
    assert_eq!(queue.counts().await.unwrap().waiting, 0);
    assert!(stand_in.received().is_empty());
}

#[tokio::test]
async fn an_iam_signed_call_needs_no_key_and_a_bad_body_names_its_fields() {
    let stand_in = InvokeStandIn::start(202).await;
    let (stack, aws) = stack_with_key(&stand_in).await;
    let state = state(&stack, &aws, &[]).await;
    let iam = trigger(&state, event("apigw-v2-post-test-iam.json"))
        .await
        .unwrap();
    assert_eq!(iam.status().as_u16(), 202, "{}", json(&iam));
    let bad = trigger(
        &state,
        with_key("apigw-v2-post-test-bad-body.json", SSM_KEY),
    )
    .await
    .unwrap();
    let body = json(&bad);
    assert_eq!(bad.status().as_u16(), 400);
    assert_eq!(
        body["error"]["fields"].as_array().unwrap().len(),
        5,
        "{body}"
    );
    assert!(!body.to_string().contains("someone@example.com"));
}

#[tokio::test]
async fn a_kick_the_lambda_api_refuses_is_an_error_but_the_run_stays_queued() {
    // GIVEN a Lambda API that answers 404 (no such function)
    let stand_in = InvokeStandIn::start(404).await;
    let (stack, aws) = stack_with_key(&stand_in).await;
    let kick = LambdaWorkerKick::new(aws.lambda.clone(), "missing-worker");
    assert!(kick.kick().await.is_err());
    // WHEN the trigger uses it THEN the run is accepted with worker_kicked false
    let state = state(&stack, &aws, &[("WORKER_FUNCTION_NAME", "missing-worker")]).await;
    let response = trigger(&state, post_with_key(SSM_KEY)).await.unwrap();
    let body = json(&response);
    assert_eq!(response.status().as_u16(), 202, "{body}");
    assert_eq!(body["worker_kicked"], false);
}

#[tokio::test]
async fn a_missing_ssm_parameter_stops_start_up_with_one_line_naming_it() {
    let stack = TestStack::start();
    let aws = stack.aws().await;
    let config: Config = stack.config_with(&[("ADMIN_API_KEY_PARAM", "/prematch/nope")]);
    let settings = ApiSettings::from_lookup(&config, |_| None).unwrap();
    let err = trigger_state(&config, &settings, &aws)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("ADMIN_API_KEY_PARAM=\"/prematch/nope\": could not read the SSM parameter"),
        "{err}"
    );
    assert!(!err.contains('\n'), "{err}");
}

#[tokio::test]
async fn the_trigger_answers_503_when_redis_is_down() {
    let stand_in = InvokeStandIn::start(202).await;
    let (stack, aws) = stack_with_key(&stand_in).await;
    let state = state(&stack, &aws, &[("PROBE_TIMEOUT_MS", "300")]).await;
    let TestStack { redis, moto } = stack;
    drop(redis);
    let response = trigger(&state, post_with_key(SSM_KEY)).await.unwrap();
    assert_eq!(response.status().as_u16(), 503, "{}", json(&response));
    assert_eq!(json(&response)["error"]["code"], "unavailable");
    drop(moto);
}

#[tokio::test]
async fn once_the_worker_records_the_manual_run_finished_its_date_is_free_again() {
    use prematch_app::jobs::event::Trigger;
    use prematch_app::jobs::runs::RegionSummary;
    // GIVEN a manual run that was accepted and then ran to its end in the worker's run store
    let stand_in = InvokeStandIn::start(202).await;
    let (stack, aws) = stack_with_key(&stand_in).await;
    let state = state(&stack, &aws, &[]).await;
    let first = json(&trigger(&state, post_with_key(SSM_KEY)).await.unwrap());
    let run_id = first["run_id"].as_str().unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
    state
        .runs
        .create(
            run_id,
            Trigger::Manual,
            date,
            &["eu-west".to_string()],
            Utc::now(),
        )
        .await
        .unwrap();
    // (while it runs, the date is taken)
    assert_eq!(
        trigger(&state, post_with_key(SSM_KEY))
            .await
            .unwrap()
            .status()
            .as_u16(),
        409
    );
    state
        .runs
        .report_region(run_id, "eu-west", &RegionSummary::default(), Utc::now())
        .await
        .unwrap();
    // WHEN the same date is asked for again
    let second = trigger(&state, post_with_key(SSM_KEY)).await.unwrap();
    // THEN it is a new run
    let body = json(&second);
    assert_eq!(second.status().as_u16(), 202, "{body}");
    assert_ne!(body["run_id"], first["run_id"]);
}
