//! The built binary refuses to start on a bad environment, with one line naming the setting.

// Test helpers outside #[test] fns unwrap too: a broken fixture must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn run(env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prematch-check"));
    cmd.env_clear().env("PATH", "/usr/bin:/bin");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn without_redis_url_it_exits_with_one_line_naming_it() {
    let (code, stderr) = run(&[]);
    assert_eq!(code, 2);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("prematch-check: REDIS_URL is not set"),
        "{stderr}"
    );
}

#[test]
fn a_malformed_setting_is_named_in_one_line() {
    let (code, stderr) = run(&[
        ("REDIS_URL", "redis://127.0.0.1:1"),
        ("CHECK_RATE_LIMIT_PER_MINUTE", "lots"),
    ]);
    assert_eq!(code, 2);
    assert_eq!(stderr.trim_end(), "prematch-check: CHECK_RATE_LIMIT_PER_MINUTE=\"lots\" is invalid: expected a whole number of requests from 1 to 100000");
    let (code, stderr) = run(&[("REDIS_URL", "redis://127.0.0.1:1"), ("JOB_ATTEMPTS", "0")]);
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("prematch-check: JOB_ATTEMPTS=\"0\" is invalid"),
        "{stderr}"
    );
}
