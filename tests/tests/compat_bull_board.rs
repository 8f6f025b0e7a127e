//! bull-board (`@bull-board/api` + express) lists our queue's jobs and counts correctly.

mod compat_support;

use compat_support::{example, node, Redis};
use serde_json::json;

#[test]
fn bull_board_shows_our_queue_with_correct_counts_and_jobs() {
    let redis = Redis::start();
    let url = redis.url();
    let q = ["--redis-url", url.as_str(), "--queue", "board"];
    // GIVEN three completed jobs, one failed job and one delayed job, all written by us
    example(
        "producer",
        &[
            &q[..],
            &["--count", "3", "--name", "ok", "--data", r#"{"v":1}"#],
        ]
        .concat(),
    );
    example(
        "producer",
        &[
            &q[..],
            &[
                "--count",
                "1",
                "--name",
                "bad",
                "--data",
                r#"{"fail_times":9}"#,
            ],
        ]
        .concat(),
    );
    example(
        "echo_worker",
        &[&q[..], &["--idle-exit-ms", "300"]].concat(),
    );
    example(
        "producer",
        &[
            &q[..],
            &["--count", "1", "--name", "later", "--delay-ms", "600000"],
        ]
        .concat(),
    );
    // WHEN bull-board's API is asked about the queue
    let board = node(&redis, "board", "board", &[]);
    // THEN its counts and job lists match
    let queue = &board["completed"]["queues"][0];
    assert_eq!(queue["name"], "board");
    assert_eq!(queue["isPaused"], false);
    let counts = &queue["counts"];
    assert_eq!(
        (
            counts["completed"].as_u64(),
            counts["failed"].as_u64(),
            counts["delayed"].as_u64()
        ),
        (Some(3), Some(1), Some(1))
    );
    assert_eq!(
        (counts["waiting"].as_u64(), counts["active"].as_u64()),
        (Some(0), Some(0))
    );
    let jobs = queue["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 3);
    for job in jobs {
        assert_eq!(job["returnValue"], json!({"echo": {"v": 1}}));
        assert_eq!(job["name"], "ok");
        assert!(job["finishedOn"].as_u64().unwrap() >= job["processedOn"].as_u64().unwrap());
    }
    let failed = &board["failed"]["queues"][0]["jobs"];
    assert_eq!(failed.as_array().unwrap().len(), 1);
    assert_eq!(failed[0]["failedReason"], "requested failure");
    assert_eq!(failed[0]["stacktrace"].as_array().unwrap().len(), 1);
    let delayed = &board["delayed"]["queues"][0]["jobs"];
    assert_eq!(delayed[0]["name"], "later");
    assert_eq!(delayed[0]["delay"], 600000);
}
