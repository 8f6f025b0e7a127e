//! Shared helpers of the BullMQ compatibility tests: a private redis-server, the Node driver
//! (`tests/compat/compat.mjs`) and the prematch-queue example binaries.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// A redis-server on a free loopback port, killed on drop.
pub struct Redis {
    pub port: u16,
    dir: PathBuf,
    child: Child,
}

impl Redis {
    pub fn start() -> Redis {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let dir = std::env::temp_dir().join(format!("compat-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        let t = Instant::now();
        loop {
            let out = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "PING"])
                .output()
                .expect("redis-cli");
            if String::from_utf8_lossy(&out.stdout).trim() == "PONG" {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(30));
        }
        Redis { port, dir, child }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `node compat.mjs <cmd> --port P --queue Q <args>` and parses its JSON output.
pub fn node(redis: &Redis, queue: &str, cmd: &str, args: &[&str]) -> Value {
    require_node_modules();
    let out = Command::new("node")
        .current_dir(compat_dir())
        .arg("compat.mjs")
        .arg(cmd)
        .args(["--port", &redis.port.to_string(), "--queue", queue])
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
