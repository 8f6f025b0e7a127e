//! Redis restarted in the middle of a drain: nothing is lost and each job completes once.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prematch_queue::{JobContext, JobError, NewJob, NoDeadLetters, Worker, WorkerOptions};
use serde_json::{json, Value};
use support::{queue, RedisServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_mid_drain_loses_no_job_and_completes_each_once() {
    let mut redis = RedisServer::start_durable();
    let q = queue(&redis.url(), "bull", "restart").await;
    q.add_bulk(
        (0..1000)
            .map(|i| NewJob::new("r", json!({"i": i})))
            .collect(),
    )
    .await
    .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let handler = move |_j: JobContext| {
        let c = c2.clone();
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(3)).await;
            Ok::<Value, JobError>(json!("ok"))
        }
    };
    let opts = WorkerOptions {
        concurrency: 10,
        lock_duration: Duration::from_secs(2),
        stalled_interval: Duration::from_millis(500),
        idle_wait: Duration::from_millis(300),
        job_timeout: Duration::from_secs(5),
        deadline_margin: Duration::from_millis(100),
        ..WorkerOptions::default()
    };
    let worker = Worker::new(&q, opts);
    // WHEN Redis is killed and restarted once about 300 jobs are done
    let c3 = calls.clone();
    let restarter = tokio::task::spawn_blocking(move || {
        while c3.load(Ordering::SeqCst) < 300 {
            std::thread::sleep(Duration::from_millis(5));
        }
        redis.kill();
        let at_kill = c3.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(500));
        redis.restart();
        (redis, at_kill)
    });
    let t = Instant::now();
    let mut completed = 0;
    // Drain like successive Lambda invocations until nothing is left (claims whose reply was lost in
    // the restart come back through the stalled check once their lock expires).
    loop {
        let s = worker
            .drain(
                Instant::now() + Duration::from_secs(60),
                &handler,
                &NoDeadLetters,
            )
            .await
            .unwrap();
        completed += s.completed;
        let c = q.counts().await.unwrap();
        if c.unfinished() == 0 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "drain did not finish: {c:?}"
        );
    }
    let (_redis, at_kill) = restarter.await.unwrap();
    assert!(
        at_kill < 1000,
        "Redis went down mid-drain ({at_kill} handler calls before the kill)"
    );
    // THEN every job completed exactly once
    let c = q.counts().await.unwrap();
    assert_eq!(c.completed, 1000);
    assert!(completed <= 1000);
    let mut per_job: HashMap<String, usize> = HashMap::new();
    for e in q
        .events("-", 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "completed")
    {
        *per_job.entry(e.fields["jobId"].clone()).or_default() += 1;
    }
    assert_eq!(per_job.len(), 1000);
    assert!(per_job.values().all(|n| *n == 1), "a job completed twice");
    for job in q
        .get_jobs(&[prematch_queue::JobState::Completed], 0, -1)
        .await
        .unwrap()
    {
        assert_eq!(
            job.attempts_made, 1,
            "job {} finished more than once",
            job.id
        );
    }
    eprintln!(
        "handler calls: {} for 1000 jobs (at-least-once)",
        calls.load(Ordering::SeqCst)
    );
}
