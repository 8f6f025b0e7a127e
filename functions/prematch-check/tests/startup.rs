//! The built binary refuses to start on a bad environment, with one line naming the setting.

#[path = "../../../tests/shared/startup.rs"]
mod startup;

use startup::refuses;

const BIN: &str = env!("CARGO_BIN_EXE_prematch-check");

#[test]
fn without_redis_url_it_exits_with_one_line_naming_it() {
    refuses(BIN, &[], "prematch-check: REDIS_URL is not set", None);
}

#[test]
fn a_malformed_setting_is_named_in_one_line() {
    let line = refuses(
        BIN,
        &[
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("CHECK_RATE_LIMIT_PER_MINUTE", "lots"),
        ],
        "prematch-check: CHECK_RATE_LIMIT_PER_MINUTE=\"lots\" is invalid",
        None,
    );
    assert!(
        line.ends_with("expected a whole number of requests from 1 to 100000"),
        "{line}"
    );
    refuses(
        BIN,
        &[("REDIS_URL", "redis://127.0.0.1:1"), ("JOB_ATTEMPTS", "0")],
        "prematch-check: JOB_ATTEMPTS=\"0\" is invalid",
        None,
    );
}

#[test]
fn the_redis_password_is_never_printed() {
    refuses(
        BIN,
        &[
            ("REDIS_URL", "redis://:s3cret-pw@127.0.0.1:1"),
            ("JOB_ATTEMPTS", "0"),
        ],
        "prematch-check: JOB_ATTEMPTS",
        Some("s3cret-pw"),
    );
}
