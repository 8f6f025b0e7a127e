//! The worker binary refuses to start on a bad environment, with one line naming the setting.

#[path = "../../../tests/shared/startup.rs"]
mod startup;

use startup::refuses;

const BIN: &str = env!("CARGO_BIN_EXE_prematch-worker");

#[test]
fn a_missing_redis_url_stops_start_up_with_one_line_naming_it() {
    refuses(BIN, &[], "prematch-worker: REDIS_URL is not set", None);
}

#[test]
fn a_malformed_job_timeout_stops_start_up_naming_the_variable_and_the_expectation() {
    let line = refuses(
        BIN,
        &[
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("JOB_TIMEOUT_SECS", "five minutes"),
        ],
        "prematch-worker: JOB_TIMEOUT_SECS=\"five minutes\" is invalid",
        None,
    );
    assert!(line.contains("whole number of seconds"), "{line}");
}

#[test]
fn the_redis_password_is_never_printed() {
    refuses(
        BIN,
        &[
            ("REDIS_URL", "redis://:s3cret-pw@127.0.0.1:1"),
            ("WORKER_CONCURRENCY", "0"),
        ],
        "prematch-worker: WORKER_CONCURRENCY",
        Some("s3cret-pw"),
    );
}
