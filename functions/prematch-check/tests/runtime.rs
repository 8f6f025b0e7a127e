//! The built `prematch-check` binary served through a stand-in Lambda Runtime API: the real `main`,
//! the real runtime loop, the stored API Gateway fixture in, an API Gateway response out.

// Test helpers outside #[test] fns unwrap too: a broken fixture must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the stand-in sends when the function first asks for an event (it is ready).
const READY: &str = "(ready)";

const FIXTURE: &str = include_str!("../../../tests/fixtures/events/apigw-v2-get-check.json");

/// Reads one HTTP request: (request line, body).
fn read_request(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((
        line.trim_end().to_string(),
        String::from_utf8_lossy(&body).into_owned(),
    ))
}

fn reply(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &str) {
    let mut text = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    let _ = stream.write_all(text.as_bytes());
}

/// Serves one invocation of `event`, then sends what the function answered on the channel.
fn runtime_api(event: &'static str) -> (String, mpsc::Receiver<(Instant, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut served = false;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            while let Some((line, body)) = read_request(&mut stream) {
                if line.starts_with("GET /2018-06-01/runtime/invocation/next") {
                    if served {
                        // Park the second poll: the test is over.
                        std::thread::sleep(Duration::from_secs(600));
                        return;
                    }
                    served = true;
                    let _ = tx.send((Instant::now(), READY.to_string()));
                    let deadline = (std::time::SystemTime::now() + Duration::from_secs(30))
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_millis();
                    let headers = [
                        ("lambda-runtime-aws-request-id", "req-1".to_string()),
                        ("lambda-runtime-deadline-ms", deadline.to_string()),
                        (
                            "lambda-runtime-invoked-function-arn",
                            "arn:aws:lambda:us-east-1:123456789012:function:prematch-check"
                                .to_string(),
                        ),
                        ("content-type", "application/json".to_string()),
                    ];
                    reply(&mut stream, "200 OK", &headers, event);
                } else if line.starts_with("POST /2018-06-01/runtime/invocation/req-1/response") {
                    reply(&mut stream, "202 Accepted", &[], "");
                    let _ = tx.send((Instant::now(), body));
                } else {
                    // An init or invocation error report: pass it on so the test shows it.
                    reply(&mut stream, "202 Accepted", &[], "");
                    let _ = tx.send((Instant::now(), format!("{line} {body}")));
                }
            }
        }
    });
    (address, rx)
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs the binary for one invocation: (start to ready, start to answer, the answer).
fn invoke_with_redis_at(redis_url: &str) -> (Duration, Duration, serde_json::Value) {
    let (runtime, answers) = runtime_api(FIXTURE);
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_prematch-check"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("AWS_LAMBDA_RUNTIME_API", &runtime)
        .env("AWS_LAMBDA_FUNCTION_NAME", "prematch-check")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/prematch-check")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        // Nothing listens here: the DLQ probe fails fast and is reported, never awaited forever.
        .env(
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", free_port()),
        )
        .env("REDIS_URL", redis_url)
        .env("PROBE_TIMEOUT_MS", "500")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _child = Killed(child);
    let (ready_at, ready) = answers
        .recv_timeout(Duration::from_secs(60))
        .expect("the function polled");
    assert_eq!(
        ready, READY,
        "the function reported an error before polling"
    );
    let (at, body) = answers
        .recv_timeout(Duration::from_secs(60))
        .expect("the function answered");
    let response: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("not a response: {body}"));
    (ready_at - started, at - started, response)
}

#[test]
fn the_binary_answers_the_fixture_with_503_down_when_redis_is_unreachable() {
    // GIVEN the binary, a Redis URL nobody listens on, and the stored GET fixture
    let (ready, elapsed, response) =
        invoke_with_redis_at(&format!("redis://127.0.0.1:{}", free_port()));
    // THEN it starts anyway and answers the gateway with a 503 "down" report
    assert_eq!(response["statusCode"], 503, "{response}");
    let body: serde_json::Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["status"], "down");
    assert_eq!(body["redis"]["status"], "unavailable");
    assert_eq!(response["headers"]["content-type"], "application/json");
    println!(
        "Redis down: process start to ready {} ms, to first answer {} ms (500 ms probes)",
        ready.as_millis(),
        elapsed.as_millis()
    );
}

#[test]
fn the_binary_answers_the_fixture_with_a_report_when_redis_is_up() {
    // GIVEN a private redis-server on a free loopback port
    let port = free_port();
    let dir = std::env::temp_dir().join(format!(
        "prematch-check-runtime-{}-{port}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let redis = Command::new(
        std::env::var("PREMATCH_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into()),
    )
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
    .spawn()
    .unwrap();
    let _redis = Killed(redis);
    let ready = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            ready.elapsed() < Duration::from_secs(10),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // WHEN the binary serves the fixture
    let (ready, elapsed, response) = invoke_with_redis_at(&format!("redis://127.0.0.1:{port}"));
    // THEN Redis is reported up; the unreachable DLQ only degrades the status
    assert_eq!(response["statusCode"], 200, "{response}");
    let body: serde_json::Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["redis"]["status"], "ok", "{body}");
    assert_eq!(body["queue"]["counts"]["waiting"], 0);
    assert_eq!(body["dlq"]["status"], "unavailable");
    assert_eq!(body["status"], "degraded");
    println!(
        "Redis up: process start to ready {} ms, to first answer {} ms (the DLQ probe times out at 500 ms)",
        ready.as_millis(),
        elapsed.as_millis()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
