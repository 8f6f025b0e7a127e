//! `State` is built once from settings: queue on the private Redis, stores and DLQ on moto.

// Integration-test helpers panic on bad fixtures by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use prematch_app::dynamo::{put_users, UserSource};
use prematch_app::State;
use prematch_tests::{free_port, TestStack};

#[tokio::test]
async fn state_connects_the_queue_and_finds_the_dlq_by_name() {
    // GIVEN the local stack with tables and the DLQ, and settings without DLQ_URL
    let stack = TestStack::start();
    let (aws, setup) = stack.aws_with_tables().await;
    let config = stack.config_with(&[("JOB_TIMEOUT_SECS", "42"), ("WORKER_CONCURRENCY", "2")]);
    assert!(config.dlq_url.is_none());
    // WHEN the state is built
    let state = State::with_aws(config, aws).await.unwrap();
    // THEN the queue answers, the DLQ was found by name and the worker options follow the settings
    state.queue.ping().await.unwrap();
    assert_eq!(state.dead_letters.queue_url(), setup.dlq_url);
    assert_eq!(state.dead_letters.depth().await.unwrap().total(), 0);
    let opts = state.worker_options();
    assert_eq!(opts.job_timeout, Duration::from_secs(42));
    assert_eq!(opts.concurrency, 2);
    // AND the stores use the configured tables
    put_users(
        &state.aws.dynamo,
        "users",
        &[serde_json::json!({"user_id":"u_000001","region":"eu-west"})],
    )
    .await
    .unwrap();
    assert_eq!(
        state.users.list_regions().await.unwrap(),
        vec!["eu-west".to_string()]
    );
}

#[tokio::test]
async fn state_from_config_builds_its_own_clients_from_the_endpoint_setting() {
    let stack = TestStack::start();
    let (_, setup) = stack.aws_with_tables().await;
    let config = stack.config_with(&[("DLQ_URL", &setup.dlq_url)]);
    let state = State::from_config(config).await.unwrap();
    assert_eq!(state.dead_letters.queue_url(), setup.dlq_url);
    assert!(state.users.list_regions().await.unwrap().is_empty());
}

#[tokio::test]
async fn unreachable_redis_fails_start_up_in_bounded_time_with_one_line() {
    // GIVEN settings whose Redis port has no server, with a password
    let stack = TestStack::start();
    let (aws, _) = stack.aws_with_tables().await;
    let url = format!("redis://127.0.0.1:{}", free_port());
    let config = stack.config_with(&[("REDIS_URL", &url), ("REDIS_PASSWORD", "s3cret-pw")]);
    // WHEN the state is built
    let started = Instant::now();
    let err = State::with_aws(config, aws).await.unwrap_err();
    // THEN it fails within the connect timeout, naming REDIS_URL without the password
    assert!(
        started.elapsed() < prematch_app::state::REDIS_CONNECT_TIMEOUT + Duration::from_secs(5)
    );
    let line = err.to_string();
    assert!(
        line.starts_with("REDIS_URL (redis://:***@127.0.0.1:"),
        "{line}"
    );
    assert!(!line.contains("s3cret"), "{line}");
    assert!(!line.contains('\n'), "{line}");
}

#[tokio::test]
async fn a_missing_dlq_is_named_at_start_up() {
    let stack = TestStack::start();
    let aws = stack.aws().await; // no set-up: no queue
    let err = State::with_aws(stack.config(), aws).await.unwrap_err();
    let line = err.to_string();
    assert!(
        line.starts_with("DLQ_URL/DLQ_NAME: SQS GetQueueUrl on prematch-dlq: "),
        "{line}"
    );
    // the service's error code, on one line, without the SDK's request details
    assert!(line.contains("NonExistentQueue"), "{line}");
    assert!(
        !line.contains('\n') && !line.to_lowercase().contains("request id"),
        "{line}"
    );
}
