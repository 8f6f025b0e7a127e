//! Start-up checks shared by the three Lambda binaries' tests (each includes this file with
//! `#[path]`, since only a binary's own package sees `CARGO_BIN_EXE_*`).

use std::process::Command;

/// Runs `binary` with only `env` (and a PATH), returning its exit code and stderr.
pub fn run(binary: &str, env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(binary);
    cmd.env_clear().env("PATH", "/usr/bin:/bin");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {binary}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The binary exits with code 2 and exactly one stderr line, which starts with `prefix` and
/// never shows `secret` (when given). Returns the line.
pub fn refuses(binary: &str, env: &[(&str, &str)], prefix: &str, secret: Option<&str>) -> String {
    let (code, stderr) = run(binary, env);
    assert_eq!(code, 2, "exit code; stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].starts_with(prefix),
        "{:?} should start with {prefix:?}",
        lines[0]
    );
    if let Some(secret) = secret {
        assert!(!stderr.contains(secret), "the secret was printed: {stderr}");
    }
    lines[0].to_string()
}
