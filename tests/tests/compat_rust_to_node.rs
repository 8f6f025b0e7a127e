//! Our producer adds jobs, BullMQ's Node Worker processes them with the same retry and delay behaviour.

mod compat_support;

use compat_support::{example, node, Redis};
use serde_json::{json, Value};

fn produce(redis: &Redis, args: &[&str]) -> Vec<String> {
    let mut all = vec!["--redis-url", redis.url().leak(), "--queue", "fromRust"];
    all.extend_from_slice(args);
    example("producer", &all)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn jobs_added_by_our_producer_are_processed_by_a_node_worker() {
    let redis = Redis::start();
    // GIVEN jobs added by our producer with delays, priorities, retries and a custom id
    let plain = produce(
        &redis,
        &["--count", "3", "--name", "plain", "--data", r#"{"k":1}"#],
    );
    let delayed = produce(
        &redis,
        &["--count", "1", "--name", "delayed", "--delay-ms", "300"],
    );
    let prio = produce(
        &redis,
        &["--count", "1", "--name", "prio", "--priority", "2"],
    );
    let retried = produce(
        &redis,
        &[
            "--count",
            "1",
            "--name",
            "retried",
            "--attempts",
            "3",
            "--backoff-ms",
            "100",
            "--backoff-type",
            "exponential",
            "--data",
            r#"{"fail_times":2}"#,
        ],
    );
    let failing = produce(
        &redis,
        &[
            "--count",
            "1",
            "--name",
            "failing",
            "--attempts",
            "2",
            "--backoff-ms",
            "50",
            "--data",
            r#"{"fail_times":5}"#,
        ],
    );
    let custom = produce(
        &redis,
        &["--count", "1", "--name", "custom", "--job-id", "order-42"],
    );
    assert_eq!(plain, vec!["1", "2", "3"]);
    assert_eq!(custom, vec!["order-42"]);
    // WHEN a BullMQ Worker processes the queue
    let run = node(
        &redis,
        "fromRust",
        "worker",
        &["--concurrency", "2", "--idle-ms", "1000"],
    );
    // THEN every job ran with BullMQ's semantics
    let completed: Vec<String> = run["completed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    for id in plain
        .iter()
        .chain(&delayed)
        .chain(&prio)
        .chain(&retried)
        .chain(&custom)
    {
        assert_eq!(
            completed.iter().filter(|c| *c == id).count(),
            1,
            "job {id} completed once"
        );
    }
    assert_eq!(
        run["failedEvents"][&retried[0]], 2,
        "two failed attempts before success"
    );
    assert_eq!(run["failedEvents"][&failing[0]], 2);
    let ids: Vec<String> = plain
        .iter()
        .chain(&delayed)
        .chain(&prio)
        .chain(&retried)
        .chain(&failing)
        .chain(&custom)
        .cloned()
        .collect();
    let st = node(&redis, "fromRust", "inspect", &["--ids", &ids.join(",")]);
    assert_eq!(st["counts"]["completed"], 7);
    assert_eq!(st["counts"]["failed"], 1);
    let j = |id: &str| -> &Value { &st["jobs"][id] };
    assert_eq!(j(&plain[0])["data"], json!({"k": 1}));
    assert_eq!(j(&plain[0])["returnvalue"], json!({"echo": {"k": 1}}));
    assert!(
        j(&delayed[0])["processedOn"].as_u64().unwrap()
            >= j(&delayed[0])["timestamp"].as_u64().unwrap() + 300
    );
    assert_eq!(j(&prio[0])["priority"], 2);
    assert_eq!(j(&retried[0])["attemptsMade"], 3);
    assert_eq!(
        j(&retried[0])["opts"]["backoff"],
        json!({"type": "exponential", "delay": 100})
    );
    let f = j(&failing[0]);
    assert_eq!(
        (
            f["state"].as_str(),
            f["attemptsMade"].as_u64(),
            f["failedReason"].as_str()
        ),
        (Some("failed"), Some(2), Some("requested failure"))
    );
    assert_eq!(j("order-42")["opts"]["jobId"], "order-42");
}
