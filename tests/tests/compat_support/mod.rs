//! Shared helpers of the BullMQ compatibility tests: a private redis-server, the Node driver
//! (`tests/compat/compat.mjs`) and the prematch-queue example binaries.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

pub fn workspace_root() -> PathBuf {
    // PREMATCH_WORKSPACE lets the same files run from a scratch crate while the workspace is mid-edit.
    if let Ok(root) = std::env::var("PREMATCH_WORKSPACE") {
        return PathBuf::from(root);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

pub fn compat_dir() -> PathBuf {
    workspace_root().join("tests").join("compat")
}

/// Fails the test with the exact fix when the Node dependencies are not installed.
pub fn require_node_modules() {
    let nm = compat_dir().join("node_modules").join("bullmq");
    assert!(
        nm.exists(),
        "tests/compat/node_modules is missing: install the pinned BullMQ with `npm ci --prefix tests/compat` (Node 20)"
    );
}

/// A private redis-server on a free loopback port, killed on drop (the harness's).
pub use prematch_tests::RedisServer as Redis;

/// Runs `node compat.mjs <cmd> --port P --queue Q <args>` and parses its JSON output.
pub fn node(redis: &Redis, queue: &str, cmd: &str, args: &[&str]) -> Value {
    require_node_modules();
    let out = Command::new("node")
        .current_dir(compat_dir())
        .arg("compat.mjs")
        .arg(cmd)
        .args(["--port", &redis.port().to_string(), "--queue", queue])
        .args(args)
        .output()
        .expect("node (v20) must be installed");
    assert!(
        out.status.success(),
        "node {cmd} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "node {cmd} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Runs a prematch-queue example (`cargo run -p prematch-queue --example NAME -- ARGS`), returns stdout.
pub fn example(name: &str, args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "run",
            "--quiet",
            "-p",
            "prematch-queue",
            "--example",
            name,
            "--",
        ])
        .args(args)
        .output()
        .expect("cargo run");
    assert!(
        out.status.success(),
        "example {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}
