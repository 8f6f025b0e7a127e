//! `docs/openapi.yaml` agrees with the handlers: documented statuses, error codes, and the fields
//! of real responses.

// Test helpers outside #[test] fns unwrap too: a broken fixture must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod http_support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use fred::prelude::ClientLike;
use http_support::{event, json};
use prematch_queue::{Queue, QueueSettings};
use prematch_tests::{repo_root, RedisServer};
use prematch_trigger::api::adapters::redis::lazy_client;
use prematch_trigger::api::adapters::{QueueAdapter, SqsDlqProbe};
use prematch_trigger::api::auth::AdminAuth;
use prematch_trigger::api::check::{check, CheckSettings, CheckState};
use prematch_trigger::api::rate_limit::Unlimited;
use prematch_trigger::api::runs::NoRunRecords;
use prematch_trigger::api::trigger::{trigger, NoKick, TriggerSettings, TriggerState};
use prematch_trigger::api::{ApiError, FieldError};
use prematch_trigger::config::Secret;
use serde_yaml::Value;

fn spec() -> Value {
    let text = std::fs::read_to_string(repo_root().join("docs/openapi.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn statuses(spec: &Value, path: &str, method: &str) -> BTreeSet<u16> {
    spec["paths"][path][method]["responses"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().parse().unwrap())
        .collect()
}

fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn keys(value: &serde_json::Value) -> BTreeSet<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn every_status_a_handler_can_answer_is_documented() {
    let spec = spec();
    assert_eq!(
        statuses(&spec, "/api/prematch/check", "get"),
        BTreeSet::from([200, 405, 429, 503])
    );
    assert_eq!(
        statuses(&spec, "/api/prematch/test", "post"),
        BTreeSet::from([202, 400, 401, 403, 405, 409, 413, 415, 429, 503])
    );
}

#[test]
fn the_documented_error_codes_are_exactly_the_handlers_codes() {
    let every_error = [
        ApiError::BadRequest {
            message: String::new(),
            fields: vec![FieldError::new("x", "empty", "")],
        },
        ApiError::Unauthorized,
        ApiError::Forbidden,
        ApiError::NotFound,
        ApiError::MethodNotAllowed { allow: "GET" },
        ApiError::Conflict {
            message: String::new(),
        },
        ApiError::PayloadTooLarge { limit: 1 },
        ApiError::UnsupportedMediaType,
        ApiError::TooManyRequests {
            retry_after: Duration::from_secs(1),
        },
        ApiError::Unavailable {
            dependency: "redis",
        },
        ApiError::Internal,
    ];
    let codes: BTreeSet<String> = every_error.iter().map(|e| e.code().to_string()).collect();
    let spec = spec();
    assert_eq!(
        strings(
            &spec["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]
                ["enum"]
        ),
        codes
    );
}

#[test]
fn every_field_error_code_the_validator_gives_is_documented() {
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
    let bodies = [
        serde_json::json!({"x": 1, "run_date": "someday", "regions": "eu-west"}),
        serde_json::json!({"run_date": "2020-01-01", "regions": []}),
        serde_json::json!({"regions": (0..51).map(|i| format!("r{i}")).collect::<Vec<_>>()}),
        serde_json::json!({"regions": ["eu-west", "eu-west", "EU"]}),
    ];
    let mut seen = BTreeSet::new();
    for body in bodies {
        match prematch_trigger::api::validate::manual_run_request(body.as_object().unwrap(), today)
        {
            Err(ApiError::BadRequest { fields, .. }) => {
                seen.extend(fields.into_iter().map(|f| f.code.to_string()))
            }
            other => panic!("expected 400, got {other:?}"),
        }
    }
    let documented =
        strings(&spec()["components"]["schemas"]["FieldError"]["properties"]["code"]["enum"]);
    assert_eq!(seen, documented);
}

#[tokio::test]
async fn real_responses_have_the_documented_fields() {
    // GIVEN both handlers on a real Redis
    let redis = RedisServer::start();
    let client = lazy_client(&redis.url(), Duration::from_secs(2)).unwrap();
    client.wait_for_connect().await.unwrap();
    let queue = Queue::from_client(client, QueueSettings::new("bull", "prematchQueue")).unwrap();
    let adapter = QueueAdapter::new(queue, "bull:prematchQueue:prematch:");
    let check_state: CheckState<QueueAdapter, SqsDlqProbe, NoRunRecords, Unlimited> = CheckState {
        queue: adapter.clone(),
        dlq: None,
        runs: NoRunRecords,
        limiter: Unlimited,
        settings: CheckSettings::default(),
        clock: Arc::new(Utc::now),
    };
    let trigger_state = TriggerState {
        auth: AdminAuth::new(Some(Secret::new("local-admin-key-0001"))),
        limiter: Unlimited,
        queue: adapter,
        kick: NoKick,
        runs: NoRunRecords,
        settings: TriggerSettings::default(),
        clock: Arc::new(|| Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap()),
    };
    // WHEN each answers its fixture
    let report = json(
        &check(&check_state, event("apigw-v2-get-check.json"))
            .await
            .unwrap(),
    );
    let accepted = json(
        &trigger(&trigger_state, event("apigw-v2-post-test.json"))
            .await
            .unwrap(),
    );
    let refused = json(
        &trigger(&trigger_state, event("apigw-v2-post-test-bad-body.json"))
            .await
            .unwrap(),
    );
    // THEN their fields are the schemas'
    let spec = spec();
    let schemas = &spec["components"]["schemas"];
    assert_eq!(keys(&report), strings(&schemas["CheckReport"]["required"]));
    let documented_counts = strings(&schemas["QueueCounts"]["required"]);
    assert_eq!(keys(&report["queue"]["counts"]), documented_counts);
    let accepted_fields: BTreeSet<String> = schemas["Accepted"]["properties"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys(&accepted), accepted_fields, "{accepted}");
    assert_eq!(
        keys(&refused["error"]),
        BTreeSet::from([
            "code".to_string(),
            "message".to_string(),
            "fields".to_string()
        ])
    );
    assert_eq!(
        keys(&refused["error"]["fields"][0]),
        strings(&schemas["FieldError"]["required"])
    );
}
