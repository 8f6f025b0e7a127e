//! The built binary refuses to start on a bad environment, with one line naming the setting.

#[path = "../../../tests/shared/startup.rs"]
mod startup;

use startup::refuses;

const BIN: &str = env!("CARGO_BIN_EXE_prematch-trigger");

#[test]
fn without_redis_url_it_exits_with_one_line_naming_it() {
    refuses(BIN, &[], "prematch-trigger: REDIS_URL is not set", None);
}

#[test]
fn a_malformed_setting_is_named_in_one_line() {
    let line = refuses(
        BIN,
        &[
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("RATE_LIMIT_PER_MINUTE", "lots"),
        ],
        "prematch-trigger: RATE_LIMIT_PER_MINUTE=\"lots\" is invalid",
        None,
    );
    assert!(
        line.ends_with("expected a whole number of requests from 1 to 10000"),
        "{line}"
    );
    refuses(
        BIN,
        &[("REDIS_URL", "redis://127.0.0.1:1"), ("JOB_ATTEMPTS", "0")],
        "prematch-trigger: JOB_ATTEMPTS=\"0\" is invalid",
        None,
    );
}

#[test]
fn a_short_admin_key_is_refused_without_echoing_it() {
    let line = refuses(
        BIN,
        &[
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("ADMIN_API_KEY", "hunter2"),
        ],
        "prematch-trigger: ADMIN_API_KEY is invalid",
        Some("hunter2"),
    );
    assert!(line.contains("at least 16 characters"), "{line}");
}
