//! BullMQ (Node) adds jobs of every option kind, our worker processes them, Node reads the results.

mod compat_support;

use compat_support::{example, node, Redis};
use serde_json::{json, Value};

fn job<'a>(state: &'a Value, id: &str) -> &'a Value {
    &state["jobs"][id]
}

#[test]
fn jobs_added_by_node_are_processed_by_our_worker_and_read_back_by_node() {
    let redis = Redis::start();
    // GIVEN Node's Queue.add / addBulk with every option kind
    let ids = node(&redis, "fromNode", "add", &[]);
    let id = |k: &str| ids[k].as_str().unwrap().to_string();
    // WHEN our echo_worker drains the queue
    example(
        "echo_worker",
        &[
            "--redis-url",
            &redis.url(),
            "--queue",
            "fromNode",
            "--idle-exit-ms",
            "500",
        ],
    );
    // THEN Node's getJob, getJobCounts and getJobs read what BullMQ would have written
    let all: Vec<String> = [
        "plain",
        "delayed",
        "prioritized",
        "lifo",
        "retried",
        "failed",
        "custom",
        "removed",
        "kept",
        "jitter",
        "bulk1",
        "bulk2",
    ]
    .iter()
    .map(|k| id(k))
    .collect();
    let st = node(&redis, "fromNode", "inspect", &["--ids", &all.join(",")]);
    assert_eq!(
        st["counts"],
        json!({"active": 0, "completed": 10, "delayed": 0, "failed": 1, "prioritized": 0, "waiting": 0, "waiting-children": 0})
    );
    let plain = job(&st, &id("plain"));
    assert_eq!(plain["state"], "completed");
    assert_eq!(plain["returnvalue"], json!({"echo": {"n": 1}}));
    assert_eq!(
        (
            plain["attemptsMade"].as_u64(),
            plain["attemptsStarted"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert!(plain["finishedOn"].as_u64().unwrap() >= plain["processedOn"].as_u64().unwrap());

    let delayed = job(&st, &id("delayed"));
    assert_eq!(delayed["state"], "completed");
    assert!(
        delayed["processedOn"].as_u64().unwrap() >= delayed["timestamp"].as_u64().unwrap() + 400,
        "ran no earlier than due"
    );
    assert_eq!(delayed["delay"], 0, "delay is reset on promotion");

    let retried = job(&st, &id("retried"));
    assert_eq!(retried["state"], "completed");
    assert_eq!(retried["attemptsMade"], 3);
    assert_eq!(retried["stacktrace"].as_array().unwrap().len(), 2);
    assert_eq!(
        retried["failedReason"], "requested failure",
        "BullMQ keeps the last reason after a success"
    );

    let failed = job(&st, &id("failed"));
    assert_eq!(failed["state"], "failed");
    assert_eq!(failed["failedReason"], "requested failure");
    assert_eq!(failed["attemptsMade"], 2);
    assert_eq!(st["failed"], json!([id("failed")]));

    assert_eq!(job(&st, "my-custom-id")["state"], "completed");
    assert_eq!(
        job(&st, &id("removed")),
        &Value::Null,
        "removeOnComplete: true deletes the job"
    );
    assert_eq!(
        job(&st, &id("kept"))["opts"]["removeOnComplete"],
        json!({"age": 3600, "count": 10})
    );
    assert_eq!(job(&st, &id("jitter"))["attemptsMade"], 2);
    assert_eq!(job(&st, &id("bulk2"))["priority"], 1);
    assert_eq!(st["completed"].as_array().unwrap().len(), 10);

    // AND Node's job.retry() on a job we failed puts it back, and we then complete it
    let retry = node(&redis, "fromNode", "retry", &["--id", &id("failed")]);
    assert_eq!(retry["state"], "waiting");
    example(
        "echo_worker",
        &[
            "--redis-url",
            &redis.url(),
            "--queue",
            "fromNode",
            "--idle-exit-ms",
            "300",
        ],
    );
    let st = node(&redis, "fromNode", "inspect", &["--ids", &id("failed")]);
    let again = job(&st, &id("failed"));
    assert_eq!(again["state"], "completed");
    assert_eq!(again["attemptsMade"], 3);
    assert_eq!(
        again["returnvalue"],
        json!({"echo": {"n": 6, "fail_times": 2}})
    );
    assert_eq!(st["counts"]["failed"], 0);
}

#[test]
fn node_flows_release_their_parent_when_our_worker_finishes_the_children() {
    let redis = Redis::start();
    // GIVEN two Node flows: a parent with two children, and one whose child must fail its parent
    let flow = node(&redis, "flows", "flow", &[]);
    let before = node(
        &redis,
        "flows",
        "children",
        &["--id", flow["parent"].as_str().unwrap()],
    );
    assert_eq!(before["state"], "waiting-children");
    // WHEN our worker drains the queue
    example(
        "echo_worker",
        &[
            "--redis-url",
            &redis.url(),
            "--queue",
            "flows",
            "--idle-exit-ms",
            "500",
        ],
    );
    // THEN the parent ran after its children and Node reads the children's values
    let parent = node(
        &redis,
        "flows",
        "children",
        &["--id", flow["parent"].as_str().unwrap()],
    );
    assert_eq!(parent["state"], "completed");
    let mut values: Vec<Value> = parent["values"]
        .as_object()
        .unwrap()
        .values()
        .cloned()
        .collect();
    values.sort_by_key(|v| v["echo"]["c"].as_u64());
    assert_eq!(
        values,
        vec![json!({"echo": {"c": 1}}), json!({"echo": {"c": 2}})]
    );
    for c in flow["children"].as_array().unwrap() {
        let key = format!("bull:flows:{}", c.as_str().unwrap());
        assert!(
            parent["values"].get(&key).is_some(),
            "value keyed by the child's full key {key}"
        );
    }
    // AND a failParentOnFailure child failing fails its parent
    let bad = node(
        &redis,
        "flows",
        "children",
        &["--id", flow["badParent"].as_str().unwrap()],
    );
    assert_eq!(bad["state"], "failed");
    let child_key = format!("bull:flows:{}", flow["badChild"].as_str().unwrap());
    assert_eq!(bad["failedReason"], format!("child {child_key} failed"));
}
