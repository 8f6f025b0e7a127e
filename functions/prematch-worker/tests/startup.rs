//! The worker binary refuses to start on a bad environment, with one line naming the setting.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step should stop the test

use std::process::Command;

fn worker(env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prematch-worker"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run prematch-worker");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_missing_redis_url_stops_start_up_with_one_line_naming_it() {
    let (code, stderr) = worker(&[]);
    assert_ne!(code, 0);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("REDIS_URL"), "{stderr}");
}

#[test]
fn a_malformed_job_timeout_stops_start_up_naming_the_variable_and_the_expectation() {
    let (code, stderr) = worker(&[
        ("REDIS_URL", "redis://127.0.0.1:1"),
        ("JOB_TIMEOUT_SECS", "five minutes"),
    ]);
    assert_ne!(code, 0);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("JOB_TIMEOUT_SECS"), "{stderr}");
}

#[test]
fn the_redis_password_is_never_printed() {
    let (code, stderr) = worker(&[
        ("REDIS_URL", "redis://:s3cret-pw@127.0.0.1:1"),
        ("WORKER_CONCURRENCY", "0"),
    ]);
    assert_ne!(code, 0);
    assert!(!stderr.contains("s3cret-pw"), "{stderr}");
}
