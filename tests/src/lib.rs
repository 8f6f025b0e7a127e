//! Test harness shared by the end-to-end tests: private redis-server and moto server.
//!
//! Every test starts its own servers on free loopback ports in a temporary directory and they
//! are killed when the handle drops (also when the test panics), so no test ever touches a Redis
//! or DynamoDB that someone else uses.
//!
//! ```no_run
//! # async fn demo() {
//! let stack = prematch_tests::TestStack::start();
//! let (aws, setup) = stack.aws_with_tables().await;   // users + matches tables and the DLQ
//! let config = stack.config();                          // a Config pointing at both servers
//! # let _ = (aws, setup, config);
//! # }
//! ```

// Test infrastructure: a server that cannot start must stop the test loudly, so panicking
// helpers are the right failure mode here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prematch_app::aws::AwsClients;
use prematch_app::setup::SetupReport;
use prematch_app::Config;

/// How long a server may take to answer its first request.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The repository root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The shared event fixtures (`tests/fixtures/events/<name>`), as text.
pub fn event_fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/events")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A free TCP port on 127.0.0.1 (the OS picks it; a race with another process is retried by
/// the callers, which try a few ports).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A private temporary directory, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `$TMPDIR/prematch-<label>-<pid>-<n>`.
    pub fn new(label: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "prematch-{label}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (and reaped) on drop.
#[derive(Debug)]
struct Guarded {
    child: Child,
    what: &'static str,
    log: PathBuf,
}

impl Guarded {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Waits until `probe` succeeds, failing early when the process died.
    fn wait_ready(&mut self, port: u16, probe: fn(u16) -> bool) -> Result<(), String> {
        let start = Instant::now();
        while start.elapsed() < READY_TIMEOUT {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited early ({status}):\n{}",
                    self.what,
                    self.log_tail()
                ));
            }
            if probe(port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "{} not ready on port {port} after {READY_TIMEOUT:?}:\n{}",
            self.what,
            self.log_tail()
        ))
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(what: &'static str, mut cmd: Command, log: PathBuf) -> Result<Guarded, String> {
    let out = std::fs::File::create(&log).map_err(|e| format!("{what} log: {e}"))?;
    let err = out.try_clone().map_err(|e| format!("{what} log: {e}"))?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .map_err(|e| format!("cannot start {what} ({cmd:?}): {e}"))?;
    Ok(Guarded { child, what, log })
}

fn connect(port: u16) -> Option<TcpStream> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    Some(stream)
}

fn redis_answers_ping(port: u16) -> bool {
    let Some(mut stream) = connect(port) else {
        return false;
    };
    let mut buf = [0u8; 16];
    stream.write_all(b"PING\r\n").is_ok()
        && stream
            .read(&mut buf)
            .map(|n| buf[..n].starts_with(b"+PONG"))
            .unwrap_or(false)
}

fn http_answers(port: u16) -> bool {
    let Some(mut stream) = connect(port) else {
        return false;
    };
    let mut buf = [0u8; 16];
    stream
        .write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_ok()
        && stream
            .read(&mut buf)
            .map(|n| buf[..n].starts_with(b"HTTP/1."))
            .unwrap_or(false)
}

/// A private `redis-server` (no persistence) on a free loopback port.
#[derive(Debug)]
pub struct RedisServer {
    process: Guarded,
    port: u16,
    _dir: TempDir,
}

impl RedisServer {
    /// Starts `redis-server` (or `$PREMATCH_REDIS_SERVER`) and waits until it answers PING.
    /// Panics with the server's log when it cannot.
    pub fn start() -> RedisServer {
        let binary =
            std::env::var("PREMATCH_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_string());
        let mut last = String::new();
        for _ in 0..3 {
            let dir = TempDir::new("redis");
            let port = free_port();
            let mut cmd = Command::new(&binary);
            cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(dir.path());
            let mut process = match spawn("redis-server", cmd, dir.path().join("redis.log")) {
                Ok(p) => p,
                Err(e) => {
                    panic!("{e} (install Debian's redis-server or set PREMATCH_REDIS_SERVER)")
                }
            };
            match process.wait_ready(port, redis_answers_ping) {
                Ok(()) => {
                    return RedisServer {
                        process,
                        port,
                        _dir: dir,
                    }
                }
                Err(e) => last = e,
            }
        }
        panic!("redis-server did not start: {last}");
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The process id (for tests that kill it on purpose).
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }
}

/// The moto server binary: `$PREMATCH_VENV/bin/moto_server`, else `<repo>/.venv/bin/moto_server`.
pub fn moto_binary() -> PathBuf {
    let venv = std::env::var_os("PREMATCH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"));
    venv.join("bin").join("moto_server")
}

/// A private moto server (DynamoDB, SQS, ...) on a free loopback port.
#[derive(Debug)]
pub struct MotoServer {
    process: Guarded,
    port: u16,
    _dir: TempDir,
}

impl MotoServer {
    /// Starts moto and waits until it answers HTTP. Panics with its log when it cannot.
    pub fn start() -> MotoServer {
        let binary = moto_binary();
        assert!(
            binary.exists(),
            "{} not found: create the venv (infra/local/venv.sh) or set PREMATCH_VENV",
            binary.display()
        );
        let mut last = String::new();
        for _ in 0..3 {
            let dir = TempDir::new("moto");
            let port = free_port();
            let mut cmd = Command::new(&binary);
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .current_dir(dir.path());
            let mut process = match spawn("moto_server", cmd, dir.path().join("moto.log")) {
                Ok(p) => p,
                Err(e) => panic!("{e}"),
            };
            match process.wait_ready(port, http_answers) {
                Ok(()) => {
                    return MotoServer {
                        process,
                        port,
                        _dir: dir,
                    }
                }
                Err(e) => last = e,
            }
        }
        panic!("moto_server did not start: {last}");
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// AWS clients pointed at this server with dummy credentials.
    pub async fn clients(&self) -> AwsClients {
        AwsClients::from_sdk_config(&prematch_app::aws::local_sdk_config(&self.url()).await)
    }
}

/// Redis plus moto: the whole local stack of one test.
#[derive(Debug)]
pub struct TestStack {
    /// The private Redis.
    pub redis: RedisServer,
    /// The private moto.
    pub moto: MotoServer,
}

impl TestStack {
    /// Starts both servers (in parallel: moto takes most of a second).
    pub fn start() -> TestStack {
        let moto = std::thread::spawn(MotoServer::start);
        let redis = RedisServer::start();
        let moto = match moto.join() {
            Ok(m) => m,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        TestStack { redis, moto }
    }

    /// The environment a binary would get locally: Redis, moto endpoint, dummy credentials.
    pub fn env(&self) -> HashMap<String, String> {
        [
            ("REDIS_URL", self.redis.url()),
            ("AWS_ENDPOINT_URL", self.moto.url()),
            ("AWS_REGION", prematch_app::aws::LOCAL_REGION.to_string()),
            ("AWS_ACCESS_KEY_ID", "test".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// A `Config` for this stack with `extra` settings on top of [`TestStack::env`].
    pub fn config_with(&self, extra: &[(&str, &str)]) -> Config {
        let mut vars = self.env();
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        Config::from_map(&vars).expect("test config")
    }

    /// A `Config` for this stack with the defaults.
    pub fn config(&self) -> Config {
        self.config_with(&[])
    }

    /// AWS clients against moto.
    pub async fn aws(&self) -> AwsClients {
        self.moto.clients().await
    }

    /// AWS clients with the default tables (`users`, `matches`) and DLQ created.
    pub async fn aws_with_tables(&self) -> (AwsClients, SetupReport) {
        let aws = self.aws().await;
        let cfg = self.config();
        let report = prematch_app::setup::ensure_tables_and_queue(
            &aws.dynamo,
            &aws.sqs,
            &cfg.users_table,
            &cfg.matches_table,
            &cfg.dlq_name,
        )
        .await
        .expect("create tables and queue");
        (aws, report)
    }
}
