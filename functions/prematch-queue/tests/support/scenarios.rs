//! Behaviour scenarios run against one Redis (tests/queue.rs) and a three-node cluster (tests/cluster.rs).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fred::prelude::*;
use prematch_queue::*;
use serde_json::{json, Value};

use super::queue;

/// A dead-letter sink that remembers what it got.
#[derive(Default, Clone)]
pub struct Recorder(pub Arc<Mutex<Vec<DeadLetter>>>);

impl DeadLetterSink for Recorder {
    async fn dead_letter(&self, dead: &DeadLetter) -> Result<(), String> {
        self.0.lock().unwrap().push(dead.clone());
        Ok(())
    }
}

pub fn quick() -> WorkerOptions {
    WorkerOptions {
        concurrency: 1,
        job_timeout: Duration::from_secs(5),
        deadline_margin: Duration::from_millis(100),
        idle_wait: Duration::from_millis(200),
        ..WorkerOptions::default()
    }
}

pub fn far() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

pub async fn ok_handler(job: JobContext) -> Result<Value, JobError> {
    Ok(json!({ "echo": job.data }))
}

pub async fn hget(q: &Queue, id: &str, field: &str) -> Option<String> {
    q.client().hget(q.key(id), field).await.unwrap()
}

pub async fn events_of(q: &Queue) -> Vec<QueueEvent> {
    q.events("-", 100_000).await.unwrap()
}

pub async fn add_routes_jobs_by_their_options(url: &str, prefix: &str) {
    let q = queue(url, prefix, "routes").await;
    // GIVEN a plain, a delayed, a prioritized and a lifo job
    let plain = q
        .add("plain", json!({"n": 1}), JobOptions::default())
        .await
        .unwrap();
    let ts = 1_800_000_000_000u64;
    let delayed = q
        .add(
            "delayed",
            json!({"n": 2}),
            JobOptions {
                delay: Some(Duration::from_secs(3600)),
                timestamp: Some(ts),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let prio = q
        .add(
            "prio",
            json!({"n": 3}),
            JobOptions {
                priority: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let lifo = q
        .add(
            "lifo",
            json!({"n": 4}),
            JobOptions {
                lifo: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // THEN each lands in BullMQ's structure with BullMQ's scores
    let c = q.counts().await.unwrap();
    assert_eq!((c.waiting, c.delayed, c.prioritized), (2, 1, 1));
    let wait: Vec<String> = q.client().lrange(q.key("wait"), 0, -1).await.unwrap();
    assert_eq!(
        wait,
        vec![plain.id.clone(), lifo.id.clone()],
        "LPUSH for fifo, RPUSH (front) for lifo"
    );
    let dscore: f64 = q
        .client()
        .zscore(q.key("delayed"), &delayed.id)
        .await
        .unwrap();
    assert_eq!(dscore as u64, scores::delayed_score(ts + 3_600_000, 0));
    let pscore: f64 = q
        .client()
        .zscore(q.key("prioritized"), &prio.id)
        .await
        .unwrap();
    assert_eq!(pscore as u64, scores::priority_score(5, 1));
    let job = q.get_job(&delayed.id).await.unwrap().unwrap();
    assert_eq!(
        job.opts_json,
        json!({"attempts": 0, "delay": 3_600_000, "timestamp": ts})
    );
    assert_eq!(
        (job.delay, job.timestamp, job.name.as_str()),
        (3_600_000, ts, "delayed")
    );
    assert_eq!(hget(&q, &prio.id, "priority").await.as_deref(), Some("5"));
    let marker: Vec<(String, f64)> = q
        .client()
        .zrange(q.key("marker"), 0, -1, None, false, None, true)
        .await
        .unwrap();
    assert!(
        marker.contains(&("0".to_string(), 0.0)),
        "ready marker: {marker:?}"
    );
    assert!(
        marker.contains(&("1".to_string(), (ts + 3_600_000) as f64)),
        "delay marker: {marker:?}"
    );
    let ev = events_of(&q).await;
    assert!(ev
        .iter()
        .any(|e| e.event == "delayed" && e.fields["delay"] == (ts + 3_600_000).to_string()));
    assert_eq!(ev.iter().filter(|e| e.event == "added").count(), 4);
}

pub async fn custom_id_is_added_once(url: &str, prefix: &str) {
    let q = queue(url, prefix, "dup").await;
    // GIVEN a job with a custom id
    let first = q
        .add(
            "a",
            json!({"v": 1}),
            JobOptions {
                job_id: Some("run-1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // WHEN the same id is added again with other data
    let second = q
        .add(
            "a",
            json!({"v": 2}),
            JobOptions {
                job_id: Some("run-1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // THEN nothing is added and the existing job is returned unchanged
    assert_eq!(
        first,
        AddedJob {
            id: "run-1".into(),
            created: true
        }
    );
    assert_eq!(
        second,
        AddedJob {
            id: "run-1".into(),
            created: false
        }
    );
    assert_eq!(
        q.get_job("run-1").await.unwrap().unwrap().data,
        json!({"v": 1})
    );
    assert_eq!(q.counts().await.unwrap().waiting, 1);
    // AND ids breaking BullMQ's rules are refused with a precise error
    let err = q
        .add(
            "a",
            json!({}),
            JobOptions {
                job_id: Some("12".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::InvalidJobId { .. }), "{err}");
    let err = q
        .add(
            "a",
            json!({}),
            JobOptions {
                priority: Some(1 << 22),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            QueueError::InvalidOption {
                option: "priority",
                ..
            }
        ),
        "{err}"
    );
}

pub async fn bulk_add_keeps_order_across_chunks(url: &str, prefix: &str) {
    let q = queue(url, prefix, "bulk").await;
    let jobs: Vec<NewJob> = (0..1200)
        .map(|i| NewJob::new("b", json!({"i": i})))
        .collect();
    let added = q.add_bulk(jobs).await.unwrap();
    assert_eq!(added.len(), 1200);
    let ids: Vec<String> = added.iter().map(|a| a.id.clone()).collect();
    let expected: Vec<String> = (1..=1200).map(|i| i.to_string()).collect();
    assert_eq!(ids, expected);
    assert_eq!(q.counts().await.unwrap().waiting, 1200);
}

pub async fn worker_completes_jobs_with_bullmq_fields(url: &str, prefix: &str) {
    let q = queue(url, prefix, "complete").await;
    let a = q
        .add("echo", json!({"x": 1}), JobOptions::default())
        .await
        .unwrap();
    let w = Worker::new(&q, quick());
    let s = w.drain(far(), &ok_handler, &NoDeadLetters).await.unwrap();
    assert_eq!((s.processed, s.completed, s.stopped_by), (1, 1, "idle"));
    let job = q.get_job(&a.id).await.unwrap().unwrap();
    assert_eq!(job.return_value, Some(json!({"echo": {"x": 1}})));
    assert_eq!((job.attempts_made, job.attempts_started), (1, 1));
    let finished = job.finished_on.unwrap();
    let score: f64 = q.client().zscore(q.key("completed"), &a.id).await.unwrap();
    assert_eq!(score as u64, finished);
    assert!(job.processed_on.unwrap() <= finished);
    let lock: Option<String> = q
        .client()
        .get(format!("{}:lock", q.key(&a.id)))
        .await
        .unwrap();
    assert_eq!(lock, None, "the lock is released");
    let names: Vec<String> = events_of(&q).await.into_iter().map(|e| e.event).collect();
    assert_eq!(
        names,
        vec!["added", "waiting", "active", "completed", "drained"]
    );
}

pub async fn retry_with_exponential_backoff_lands_at_the_right_times(url: &str, prefix: &str) {
    let q = queue(url, prefix, "backoff").await;
    let opts = JobOptions {
        attempts: Some(3),
        backoff: Some(Backoff::exponential(200)),
        ..Default::default()
    };
    let a = q.add("flaky", json!({}), opts).await.unwrap();
    let starts = Arc::new(Mutex::new(Vec::new()));
    let st = starts.clone();
    let handler = move |job: JobContext| {
        let st = st.clone();
        async move {
            st.lock().unwrap().push(std::time::SystemTime::now());
            if job.attempts_made < 2 {
                Err(JobError::retryable(format!(
                    "fail #{}",
                    job.attempts_made + 1
                )))
            } else {
                Ok(json!("ok"))
            }
        }
    };
    let s = Worker::new(&q, quick())
        .drain(far(), &handler, &NoDeadLetters)
        .await
        .unwrap();
    assert_eq!((s.completed, s.retried, s.failed), (1, 2, 0));
    let job = q.get_job(&a.id).await.unwrap().unwrap();
    assert_eq!((job.attempts_made, job.attempts_started), (3, 3));
    assert_eq!(job.stacktrace.len(), 2);
    assert_eq!(
        job.failed_reason.as_deref(),
        Some("fail #2"),
        "BullMQ keeps the last reason"
    );
    // THEN the delayed events carry due = failure time + 200 ms, then + 400 ms. The failure time
    // is taken when the handler returns and the event is written when its batch's script runs, a
    // few ms later (more on a loaded machine), so due − backoff lies just before the event's time.
    let ev = events_of(&q).await;
    let delayed: Vec<&QueueEvent> = ev.iter().filter(|e| e.event == "delayed").collect();
    assert_eq!(delayed.len(), 2);
    let mut failed_at = Vec::new();
    for (e, want) in delayed.iter().zip([200u64, 400]) {
        let at: i64 = e.id.split('-').next().unwrap().parse().unwrap();
        let due: i64 = e.fields["delay"].parse().unwrap();
        let failed = due - want as i64;
        assert!(
            (at - 1_000..=at + 5).contains(&failed),
            "due {due} − {want} should be the failure time, just before the event at {at}"
        );
        failed_at.push(failed);
    }
    // AND the second failure came after the first retry's 200 ms delay
    assert!(failed_at[1] - failed_at[0] >= 200, "{failed_at:?}");
    assert!(
        !ev.iter().any(|e| e.event == "failed"),
        "no failed event for a retry that is not the last"
    );
    // AND each retry started no earlier than its due time
    let starts = starts.lock().unwrap().clone();
    for (i, e) in delayed.iter().enumerate() {
        let due: u64 = e.fields["delay"].parse().unwrap();
        let start = starts[i + 1]
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(
            start >= due,
            "attempt {} started at {start} before due {due}",
            i + 2
        );
    }
}

pub async fn permanent_error_fails_at_once_and_dead_letters(url: &str, prefix: &str) {
    let q = queue(url, prefix, "perm").await;
    let a = q
        .add(
            "bad",
            json!({"k": "v"}),
            JobOptions {
                attempts: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let dead = Recorder::default();
    let h = |_j: JobContext| async { Err::<Value, _>(JobError::permanent("bad input: no region")) };
    let s = Worker::new(&q, quick())
        .drain(far(), &h, &dead)
        .await
        .unwrap();
    assert_eq!((s.failed, s.retried, s.dead_lettered), (1, 0, 1));
    let job = q.get_job(&a.id).await.unwrap().unwrap();
    assert_eq!(job.attempts_made, 1);
    assert_eq!(job.failed_reason.as_deref(), Some("bad input: no region"));
    let d = dead.0.lock().unwrap().clone();
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0].id.as_str(), d[0].name.as_str(), d[0].attempts_made),
        (a.id.as_str(), "bad", 1)
    );
    assert_eq!(d[0].data, json!({"k": "v"}));
    assert_eq!(d[0].opts["attempts"], json!(5));
    assert_eq!(d[0].failed_reason, "bad input: no region");
    let ev = events_of(&q).await;
    assert!(ev
        .iter()
        .any(|e| e.event == "failed" && e.fields["failedReason"] == "bad input: no region"));
    assert!(
        !ev.iter().any(|e| e.event == "retries-exhausted"),
        "attempts were not exhausted"
    );
}

pub async fn last_attempt_failure_dead_letters_once(url: &str, prefix: &str) {
    let q = queue(url, prefix, "exhaust").await;
    let a = q
        .add(
            "always",
            json!({}),
            JobOptions {
                attempts: Some(2),
                backoff: Some(Backoff::fixed(20)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let dead = Recorder::default();
    let h = |_j: JobContext| async { Err::<Value, _>(JobError::retryable("boom")) };
    let s = Worker::new(&q, quick())
        .drain(far(), &h, &dead)
        .await
        .unwrap();
    assert_eq!((s.retried, s.failed, s.dead_lettered), (1, 1, 1));
    let d = dead.0.lock().unwrap().clone();
    assert_eq!(d.len(), 1, "called exactly once");
    assert_eq!((d[0].attempts_made, d[0].stacktrace.len()), (2, 2));
    let job = q.get_job(&a.id).await.unwrap().unwrap();
    assert_eq!(job.attempts_made, 2);
    let score: f64 = q.client().zscore(q.key("failed"), &a.id).await.unwrap();
    assert_eq!(score as u64, job.finished_on.unwrap());
    let ev = events_of(&q).await;
    assert!(ev
        .iter()
        .any(|e| e.event == "retries-exhausted" && e.fields["attemptsMade"] == "2"));
    assert_eq!(ev.iter().filter(|e| e.event == "failed").count(), 1);
}

struct DropFlag(Arc<AtomicUsize>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

pub async fn timed_out_job_fails_and_its_future_is_dropped(url: &str, prefix: &str) {
    let q = queue(url, prefix, "timeout").await;
    let a = q
        .add("slow", json!({}), JobOptions::default())
        .await
        .unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    let h = move |_j: JobContext| {
        let guard = DropFlag(d.clone());
        async move {
            let _g = guard;
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(json!(null))
        }
    };
    let opts = WorkerOptions {
        job_timeout: Duration::from_millis(300),
        ..quick()
    };
    let s = Worker::new(&q, opts)
        .drain(far(), &h, &NoDeadLetters)
        .await
        .unwrap();
    assert_eq!((s.failed, s.timed_out), (1, 1));
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the handler future was dropped"
    );
    let job = q.get_job(&a.id).await.unwrap().unwrap();
    assert_eq!(
        job.failed_reason.as_deref(),
        Some("job timed out after 0.3s")
    );
}

/// Starts a drain whose handler blocks forever, waits until it holds the job, then kills it (drops
/// the drain without completing), as a killed Lambda would.
async fn claim_and_kill(q: &Queue, lock: Duration) {
    let started = Arc::new(tokio::sync::Notify::new());
    let s2 = started.clone();
    let qc = q.clone();
    let task = tokio::spawn(async move {
        let h = move |_j: JobContext| {
            let s2 = s2.clone();
            async move {
                s2.notify_one();
                std::future::pending::<()>().await;
                Ok(json!(null))
            }
        };
        let opts = WorkerOptions {
            lock_duration: lock,
            stalled_interval: Duration::from_secs(60),
            ..quick()
        };
        let _ = Worker::new(&qc, opts)
            .drain(far(), &h, &NoDeadLetters)
            .await;
    });
    started.notified().await;
    task.abort();
    let _ = task.await;
}

pub async fn job_of_a_killed_worker_is_recovered_by_another(url: &str, prefix: &str) {
    let q = queue(url, prefix, "stall").await;
    let a = q
        .add("j", json!({"n": 1}), JobOptions::default())
        .await
        .unwrap();
    // GIVEN a worker killed while processing the job
    claim_and_kill(&q, Duration::from_millis(300)).await;
    assert_eq!(q.counts().await.unwrap().active, 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // WHEN another worker drains (its stalled check runs at the start)
    let s = Worker::new(&q, quick())
        .drain(far(), &ok_handler, &NoDeadLetters)
        .await
        .unwrap();
    // THEN the job is recovered and completed once
    assert_eq!((s.stalled_recovered, s.completed), (1, 1));
    let job = q.get_job(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (job.stalled_counter, job.attempts_made, job.attempts_started),
        (1, 1, 2)
    );
    let ev = events_of(&q).await;
    assert!(ev
        .iter()
        .any(|e| e.event == "stalled" && e.fields["jobId"] == a.id));
}

pub async fn job_stalled_too_often_fails_with_the_stalled_reason(url: &str, prefix: &str) {
    let q = queue(url, prefix, "stall2").await;
    let a = q
        .add(
            "j",
            json!({}),
            JobOptions {
                attempts: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for round in 1..=2u32 {
        claim_and_kill(&q, Duration::from_millis(200)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let ids = q
            .recover_stalled(1, Duration::from_millis(100))
            .await
            .unwrap();
        assert_eq!(ids, vec![a.id.clone()], "round {round}");
    }
    assert_eq!(
        hget(&q, &a.id, "defa").await.as_deref(),
        Some("job stalled more than allowable limit")
    );
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let h = move |_j: JobContext| {
        r.fetch_add(1, Ordering::SeqCst);
        async { Ok(json!(null)) }
    };
    let dead = Recorder::default();
    let s = Worker::new(&q, quick())
        .drain(far(), &h, &dead)
        .await
        .unwrap();
    assert_eq!(
        (s.failed, ran.load(Ordering::SeqCst)),
        (1, 0),
        "failed without running the handler"
    );
    let job = q.get_job(&a.id).await.unwrap().unwrap();
    assert_eq!(
        job.failed_reason.as_deref(),
        Some("job stalled more than allowable limit")
    );
    assert_eq!(job.deferred_failure, None, "defa is removed on failure");
    assert_eq!(dead.0.lock().unwrap().len(), 1);
}

pub async fn stale_completion_is_rejected(url: &str, prefix: &str) {
    let q = queue(url, prefix, "stale").await;
    let a = q.add("j", json!({}), JobOptions::default()).await.unwrap();
    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let lost_tx = Mutex::new(Some(lost_tx));
    let go_rx = Arc::new(tokio::sync::Mutex::new(Some(go_rx)));
    let qa = q.clone();
    let id = a.id.clone();
    // GIVEN worker A whose lock vanishes while it runs (a frozen Lambda)
    let h_a = move |_j: JobContext| {
        let qa = qa.clone();
        let id = id.clone();
        let tx = lost_tx.lock().unwrap().take();
        let go = go_rx.clone();
        async move {
            let _: i64 = qa
                .client()
                .del(format!("{}:lock", qa.key(&id)))
                .await
                .unwrap();
            if let Some(tx) = tx {
                let _ = tx.send(());
            }
            if let Some(rx) = go.lock().await.take() {
                let _ = rx.await;
            }
            Ok(json!("from A"))
        }
    };
    let wa = Worker::new(&q, quick());
    let qb = q.clone();
    let b = async move {
        lost_rx.await.unwrap();
        // WHEN the job is recovered and worker B completes it
        let ids = qb
            .recover_stalled(1, Duration::from_millis(100))
            .await
            .unwrap();
        assert_eq!(ids.len(), 1);
        let h_b = |_j: JobContext| async { Ok(json!("from B")) };
        let s = Worker::new(&qb, quick())
            .drain(far(), &h_b, &NoDeadLetters)
            .await
            .unwrap();
        go_tx.send(()).unwrap();
        s
    };
    let (sa, sb) = tokio::join!(wa.drain(far(), &h_a, &NoDeadLetters), b);
    let sa = sa.unwrap();
    // THEN A's late completion is rejected and B's result stands
    assert_eq!((sa.completed, sa.lost), (0, 1));
    assert_eq!(sb.completed, 1);
    let job = q.get_job(&a.id).await.unwrap().unwrap();
    assert_eq!(job.return_value, Some(json!("from B")));
    assert_eq!(job.attempts_made, 1);
    let completed = events_of(&q)
        .await
        .into_iter()
        .filter(|e| e.event == "completed")
        .count();
    assert_eq!(completed, 1);
}

pub async fn pause_keeps_jobs_waiting_and_resume_releases_them(url: &str, prefix: &str) {
    let q = queue(url, prefix, "pause").await;
    q.pause().await.unwrap();
    assert!(q.is_paused().await.unwrap());
    for i in 0..3 {
        q.add("p", json!({"i": i}), JobOptions::default())
            .await
            .unwrap();
    }
    let w = Worker::new(&q, quick());
    let s = w.drain(far(), &ok_handler, &NoDeadLetters).await.unwrap();
    assert_eq!(
        (s.processed, s.left_waiting),
        (0, 3),
        "paused: nothing is claimed, jobs stay in wait"
    );
    let c = q.counts().await.unwrap();
    assert_eq!(
        (c.waiting, c.paused),
        (3, 0),
        "v6: jobs stay in wait, not in the legacy paused list"
    );
    q.resume().await.unwrap();
    assert!(!q.is_paused().await.unwrap());
    let s = w.drain(far(), &ok_handler, &NoDeadLetters).await.unwrap();
    assert_eq!(s.completed, 3);
    let ev: Vec<String> = events_of(&q).await.into_iter().map(|e| e.event).collect();
    assert!(ev.contains(&"paused".to_string()) && ev.contains(&"resumed".to_string()));
}

pub async fn drain_claims_only_within_its_budget(url: &str, prefix: &str) {
    let q = queue(url, prefix, "budget").await;
    q.add("j", json!({}), JobOptions::default()).await.unwrap();
    let opts = WorkerOptions {
        job_timeout: Duration::from_secs(2),
        deadline_margin: Duration::from_secs(1),
        ..quick()
    };
    // GIVEN less time left than job timeout + margin
    let s = Worker::new(&q, opts)
        .drain(
            Instant::now() + Duration::from_millis(2500),
            &ok_handler,
            &NoDeadLetters,
        )
        .await
        .unwrap();
    // THEN nothing is claimed
    assert_eq!(
        (s.processed, s.left_waiting, s.stopped_by),
        (0, 1, "deadline")
    );
}

pub async fn drain_waits_for_delayed_jobs_inside_its_budget(url: &str, prefix: &str) {
    let q = queue(url, prefix, "delayed").await;
    let soon = q
        .add(
            "soon",
            json!({}),
            JobOptions {
                delay: Some(Duration::from_millis(600)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let later = q
        .add(
            "later",
            json!({}),
            JobOptions {
                delay: Some(Duration::from_secs(120)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let t0 = crate::support::now_ms();
    let s = Worker::new(&q, quick())
        .drain(
            Instant::now() + Duration::from_secs(20),
            &ok_handler,
            &NoDeadLetters,
        )
        .await
        .unwrap();
    // THEN the job due inside the budget ran, the other is reported
    assert_eq!((s.completed, s.left_delayed, s.stopped_by), (1, 1, "idle"));
    let job = q.get_job(&soon.id).await.unwrap().unwrap();
    assert!(job.processed_on.unwrap() >= t0 + 600 - 5);
    let due = s.next_delayed_at_ms.unwrap();
    let later_job = q.get_job(&later.id).await.unwrap().unwrap();
    assert_eq!(due, later_job.timestamp + 120_000);
    assert!(s.next_delayed_at.is_some());
}

pub async fn retention_removes_or_trims_finished_jobs(url: &str, prefix: &str) {
    let q = queue(url, prefix, "retain").await;
    let gone = q
        .add(
            "r",
            json!({}),
            JobOptions {
                remove_on_complete: Some(KeepJobs::Remove),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut kept = Vec::new();
    for _ in 0..4 {
        kept.push(
            q.add(
                "k",
                json!({}),
                JobOptions {
                    remove_on_complete: Some(KeepJobs::Count(2)),
                    ..Default::default()
                },
            )
            .await
            .unwrap(),
        );
    }
    let failing = q
        .add(
            "f",
            json!({}),
            JobOptions {
                remove_on_fail: Some(KeepJobs::Remove),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let h = |j: JobContext| async move {
        if j.name == "f" {
            Err(JobError::permanent("no"))
        } else {
            Ok(json!(1))
        }
    };
    Worker::new(&q, quick())
        .drain(far(), &h, &NoDeadLetters)
        .await
        .unwrap();
    assert!(q.get_job(&gone.id).await.unwrap().is_none());
    assert!(q.get_job(&failing.id).await.unwrap().is_none());
    let completed: Vec<String> = q
        .client()
        .zrange(q.key("completed"), 0, -1, None, false, None, false)
        .await
        .unwrap();
    assert_eq!(completed.len(), 2, "{completed:?}");
    assert!(
        q.get_job(&kept[0].id).await.unwrap().is_none(),
        "the oldest kept job was trimmed with its hash"
    );
    assert_eq!(q.counts().await.unwrap().failed, 0);
}

pub async fn rate_limiter_spaces_jobs_per_window(url: &str, prefix: &str) {
    let q = queue(url, prefix, "limit").await;
    q.set_rate_limit(Some(RateLimit {
        max: 4,
        duration: Duration::from_millis(700),
    }))
    .await
    .unwrap();
    for i in 0..10 {
        q.add("l", json!({"i": i}), JobOptions::default())
            .await
            .unwrap();
    }
    let t = Instant::now();
    let s = Worker::new(
        &q,
        WorkerOptions {
            concurrency: 10,
            ..quick()
        },
    )
    .drain(far(), &ok_handler, &NoDeadLetters)
    .await
    .unwrap();
    assert_eq!(s.completed, 10);
    // 4 + 4 + 2 over three windows: at least two full windows passed
    assert!(
        t.elapsed() >= Duration::from_millis(1350),
        "elapsed {:?}",
        t.elapsed()
    );
    let mut starts: Vec<u64> = Vec::new();
    for job in q.get_jobs(&[JobState::Completed], 0, -1).await.unwrap() {
        starts.push(job.processed_on.unwrap());
    }
    starts.sort();
    for w in starts.windows(5) {
        assert!(
            w[4] - w[0] >= 600,
            "5 jobs started within one window: {w:?}"
        );
    }
}

pub async fn replay_requeues_a_dead_letter_with_attempts_reset(url: &str, prefix: &str) {
    let q = queue(url, prefix, "replay").await;
    let a = q
        .add(
            "x",
            json!({"z": 1}),
            JobOptions {
                attempts: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let dead = Recorder::default();
    let fail = |_j: JobContext| async { Err::<Value, _>(JobError::retryable("down")) };
    Worker::new(&q, quick())
        .drain(far(), &fail, &dead)
        .await
        .unwrap();
    let dl = dead.0.lock().unwrap()[0].clone();
    // WHEN it is replayed (twice, as a redrive may deliver twice)
    assert_eq!(
        q.replay(&dl).await.unwrap(),
        AddedJob {
            id: a.id.clone(),
            created: true
        }
    );
    assert_eq!(
        q.replay(&dl).await.unwrap(),
        AddedJob {
            id: a.id.clone(),
            created: false
        }
    );
    let job = q.get_job(&a.id).await.unwrap().unwrap();
    assert_eq!((job.attempts_made, job.failed_reason.clone()), (0, None));
    let s = Worker::new(&q, quick())
        .drain(far(), &ok_handler, &dead)
        .await
        .unwrap();
    assert_eq!(s.completed, 1);
    // AND a dead letter whose job is gone is added again
    let gone = DeadLetter {
        id: "999".into(),
        ..dl
    };
    let again = q.replay(&gone).await.unwrap();
    assert!(again.created);
    assert_eq!(
        q.get_job(&again.id).await.unwrap().unwrap().data,
        json!({"z": 1})
    );
}

pub async fn progress_is_stored_and_emitted(url: &str, prefix: &str) {
    let q = queue(url, prefix, "progress").await;
    let a = q.add("p", json!({}), JobOptions::default()).await.unwrap();
    let h = |j: JobContext| async move {
        j.progress(json!({"pct": 50}))
            .await
            .map_err(JobError::retryable)?;
        j.log("half way").await.map_err(JobError::retryable)?;
        Ok(json!(null))
    };
    Worker::new(&q, quick())
        .drain(far(), &h, &NoDeadLetters)
        .await
        .unwrap();
    assert_eq!(
        q.get_job(&a.id).await.unwrap().unwrap().progress,
        Some(json!({"pct": 50}))
    );
    let ev = events_of(&q).await;
    assert!(ev
        .iter()
        .any(|e| e.event == "progress" && e.fields["data"] == r#"{"pct":50}"#));
    let logs: Vec<String> = q
        .client()
        .lrange(format!("{}:logs", q.key(&a.id)), 0, -1)
        .await
        .unwrap();
    assert_eq!(logs, vec!["half way"]);
}

pub async fn concurrency_runs_n_jobs_at_once(url: &str, prefix: &str) {
    let q = queue(url, prefix, "conc").await;
    q.add_bulk((0..30).map(|i| NewJob::new("c", json!({"i": i}))).collect())
        .await
        .unwrap();
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (n2, p2) = (now.clone(), peak.clone());
    let h = move |_j: JobContext| {
        let (n, p) = (n2.clone(), p2.clone());
        async move {
            let c = n.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(c, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(80)).await;
            n.fetch_sub(1, Ordering::SeqCst);
            Ok(json!(null))
        }
    };
    let s = Worker::new(
        &q,
        WorkerOptions {
            concurrency: 10,
            ..quick()
        },
    )
    .drain(far(), &h, &NoDeadLetters)
    .await
    .unwrap();
    assert_eq!(s.completed, 30);
    assert_eq!(peak.load(Ordering::SeqCst), 10);
}

pub async fn several_workers_never_complete_a_job_twice(url: &str, prefix: &str) {
    let q = queue(url, prefix, "many").await;
    q.add_bulk(
        (0..600)
            .map(|i| NewJob::new("m", json!({"i": i})))
            .collect(),
    )
    .await
    .unwrap();
    let opts = WorkerOptions {
        concurrency: 8,
        prefetch: 8,
        ..quick()
    };
    let (w1, w2, w3) = (
        Worker::new(&q, opts.clone()),
        Worker::new(&q, opts.clone()),
        Worker::new(&q, opts),
    );
    let (a, b, c) = tokio::join!(
        w1.drain(far(), &ok_handler, &NoDeadLetters),
        w2.drain(far(), &ok_handler, &NoDeadLetters),
        w3.drain(far(), &ok_handler, &NoDeadLetters)
    );
    let total = a.unwrap().completed + b.unwrap().completed + c.unwrap().completed;
    assert_eq!(total, 600);
    assert_eq!(q.counts().await.unwrap().completed, 600);
    let mut per_job: HashMap<String, usize> = HashMap::new();
    for e in events_of(&q)
        .await
        .into_iter()
        .filter(|e| e.event == "completed")
    {
        *per_job.entry(e.fields["jobId"].clone()).or_default() += 1;
    }
    assert_eq!(per_job.len(), 600);
    assert!(per_job.values().all(|n| *n == 1));
}

pub async fn priorities_and_lifo_set_the_order(url: &str, prefix: &str) {
    let q = queue(url, prefix, "order").await;
    for (name, prio, lifo) in [
        ("p3", 3, false),
        ("p1", 1, false),
        ("a", 0, false),
        ("p2", 2, false),
        ("b", 0, false),
        ("front", 0, true),
    ] {
        q.add(
            name,
            json!({}),
            JobOptions {
                priority: Some(prio).filter(|p| *p > 0),
                lifo,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    let order = Arc::new(Mutex::new(Vec::new()));
    let o2 = order.clone();
    let h = move |j: JobContext| {
        o2.lock().unwrap().push(j.name.clone());
        async { Ok(json!(null)) }
    };
    Worker::new(&q, quick())
        .drain(far(), &h, &NoDeadLetters)
        .await
        .unwrap();
    assert_eq!(
        *order.lock().unwrap(),
        vec!["front", "a", "b", "p1", "p2", "p3"]
    );
}

pub async fn deferred_failure_on_a_fetched_job_is_honoured(url: &str, prefix: &str) {
    let q = queue(url, prefix, "defa").await;
    let a = q
        .add(
            "d",
            json!({}),
            JobOptions {
                attempts: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let _: i64 = q
        .client()
        .hset(q.key(&a.id), ("defa", "child bull:x:1 failed"))
        .await
        .unwrap();
    let s = Worker::new(&q, quick())
        .drain(far(), &ok_handler, &NoDeadLetters)
        .await
        .unwrap();
    assert_eq!(s.failed, 1);
    assert_eq!(
        q.get_job(&a.id)
            .await
            .unwrap()
            .unwrap()
            .failed_reason
            .as_deref(),
        Some("child bull:x:1 failed")
    );
}

pub async fn malformed_job_data_fails_the_job_not_the_worker(url: &str, prefix: &str) {
    let q = queue(url, prefix, "malformed").await;
    let a = q.add("m", json!({}), JobOptions::default()).await.unwrap();
    let b = q.add("ok", json!({}), JobOptions::default()).await.unwrap();
    let _: i64 = q
        .client()
        .hset(q.key(&a.id), ("data", "{not json"))
        .await
        .unwrap();
    let s = Worker::new(&q, quick())
        .drain(far(), &ok_handler, &NoDeadLetters)
        .await
        .unwrap();
    assert_eq!((s.failed, s.completed), (1, 1));
    let reason = hget(&q, &a.id, "failedReason").await.unwrap();
    assert!(reason.contains("field data"), "{reason}");
    assert!(q
        .get_job(&b.id)
        .await
        .unwrap()
        .unwrap()
        .return_value
        .is_some());
}

pub async fn lock_is_extended_while_a_long_job_runs(url: &str, prefix: &str) {
    let q = queue(url, prefix, "extend").await;
    let a = q
        .add("long", json!({}), JobOptions::default())
        .await
        .unwrap();
    let opts = WorkerOptions {
        lock_duration: Duration::from_millis(300),
        stalled_interval: Duration::from_millis(100),
        ..quick()
    };
    let h = |_j: JobContext| async {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        Ok(json!("done"))
    };
    // GIVEN a job running four times longer than its lock, and a stalled checker running meanwhile
    let checker = async {
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let ids = q
                .recover_stalled(1, Duration::from_millis(100))
                .await
                .unwrap();
            assert!(
                ids.is_empty(),
                "a job with a renewed lock was taken as stalled"
            );
        }
    };
    let w = Worker::new(&q, opts);
    let (s, ()) = tokio::join!(w.drain(far(), &h, &NoDeadLetters), checker);
    // THEN the lock was renewed and the job completed normally
    let s = s.unwrap();
    assert_eq!((s.completed, s.lost, s.stalled_recovered), (1, 0, 0));
    assert_eq!(q.get_job(&a.id).await.unwrap().unwrap().stalled_counter, 0);
}

pub async fn events_stream_is_capped_by_max_len(url: &str, prefix: &str) {
    let q = queue(url, prefix, "maxlen").await;
    let _: i64 = q
        .client()
        .hset(q.key("meta"), ("opts.maxLenEvents", "100"))
        .await
        .unwrap();
    q.add_bulk(
        (0..600)
            .map(|i| NewJob::new("e", json!({"i": i})))
            .collect(),
    )
    .await
    .unwrap();
    Worker::new(
        &q,
        WorkerOptions {
            concurrency: 10,
            ..quick()
        },
    )
    .drain(far(), &ok_handler, &NoDeadLetters)
    .await
    .unwrap();
    let len: u64 = q.client().xlen(q.key("events")).await.unwrap();
    // 600 jobs write ~2400 events; MAXLEN ~ 100 trims by whole stream nodes (100 entries each)
    assert!(len <= 300, "events stream has {len} entries");
}

pub async fn unstarted_prefetched_jobs_are_released_when_the_budget_ends(url: &str, prefix: &str) {
    let q = queue(url, prefix, "release").await;
    let added = q
        .add_bulk((0..6).map(|i| NewJob::new("s", json!({"i": i}))).collect())
        .await
        .unwrap();
    let h = |_j: JobContext| async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(json!(null))
    };
    // GIVEN a worker that claims ahead (prefetch 5) with a budget that ends during the first job
    let opts = WorkerOptions {
        prefetch: 5,
        job_timeout: Duration::from_secs(1),
        deadline_margin: Duration::from_millis(100),
        ..quick()
    };
    let s = Worker::new(&q, opts)
        .drain(
            Instant::now() + Duration::from_millis(1300),
            &h,
            &NoDeadLetters,
        )
        .await
        .unwrap();
    // THEN the unstarted jobs go back to the front of the queue, unchanged, and the started ones finish
    assert_eq!(s.stopped_by, "deadline");
    assert!(s.released >= 3, "{s:?}");
    assert_eq!(s.completed + s.released, 6, "{s:?}");
    let c = q.counts().await.unwrap();
    assert_eq!((c.waiting, c.active), (s.released, 0));
    let wait: Vec<String> = q.client().lrange(q.key("wait"), 0, -1).await.unwrap();
    let mut expected: Vec<String> = added
        .iter()
        .rev()
        .take(s.released as usize)
        .map(|a| a.id.clone())
        .collect();
    expected.sort_by_key(|id| std::cmp::Reverse(id.parse::<u64>().unwrap()));
    assert_eq!(
        wait, expected,
        "released jobs keep their FIFO order at the front"
    );
    for id in &wait {
        let job = q.get_job(id).await.unwrap().unwrap();
        assert_eq!(job.attempts_made, 0, "a release does not count an attempt");
    }
}

pub async fn global_concurrency_caps_active_jobs_across_workers(url: &str, prefix: &str) {
    let q = queue(url, prefix, "global").await;
    q.set_global_concurrency(Some(2)).await.unwrap();
    q.add_bulk((0..12).map(|i| NewJob::new("g", json!({"i": i}))).collect())
        .await
        .unwrap();
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (n2, p2) = (now.clone(), peak.clone());
    let h = move |_j: JobContext| {
        let (n, p) = (n2.clone(), p2.clone());
        async move {
            let c = n.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(c, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(60)).await;
            n.fetch_sub(1, Ordering::SeqCst);
            Ok(json!(null))
        }
    };
    let opts = WorkerOptions {
        concurrency: 5,
        idle_wait: Duration::from_millis(500),
        ..quick()
    };
    let (w1, w2) = (Worker::new(&q, opts.clone()), Worker::new(&q, opts));
    let (a, b) = tokio::join!(
        w1.drain(far(), &h, &NoDeadLetters),
        w2.drain(far(), &h, &NoDeadLetters)
    );
    assert_eq!(a.unwrap().completed + b.unwrap().completed, 12);
    assert!(
        peak.load(Ordering::SeqCst) <= 2,
        "peak {}",
        peak.load(Ordering::SeqCst)
    );
}

/// Batched finishes take jobs out of `active` with one LTRIM when they are its tail and one LREM per
/// job otherwise; either way exactly our jobs leave it, and another worker's stay.
pub async fn finishes_leave_other_workers_jobs_in_active(url: &str, prefix: &str) {
    let q = queue(url, prefix, "activeorder").await;
    // GIVEN another worker's job in active, older than ours (at the tail), with its lock
    let c = q.client();
    let _: () = c.lpush(q.key("active"), "foreign-old").await.unwrap();
    let _: () = c
        .set(
            q.key("foreign-old:lock"),
            "other-token",
            Some(Expiration::PX(60_000)),
            None,
            false,
        )
        .await
        .unwrap();
    // AND jobs that finish in the reverse of their claim order
    q.add_bulk(
        (0..8)
            .map(|i| NewJob::new("o", json!({ "sleep": (8 - i) * 25 })))
            .collect(),
    )
    .await
    .unwrap();
    let q2 = q.clone();
    let h = move |j: JobContext| {
        let q = q2.clone();
        async move {
            if j.data["sleep"] == json!(200) {
                // A job another worker claims while ours run: newer than ours (at the head).
                let _: () = q
                    .client()
                    .lpush(q.key("active"), "foreign-new")
                    .await
                    .unwrap();
            }
            let ms = j.data["sleep"].as_u64().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(json!(null))
        }
    };
    // WHEN one worker drains them with room for all at once
    let s = Worker::new(
        &q,
        WorkerOptions {
            concurrency: 8,
            ..quick()
        },
    )
    .drain(far(), &h, &NoDeadLetters)
    .await
    .unwrap();
    // THEN every job completed once and only the other worker's jobs are left in active
    assert_eq!((s.completed, s.lost), (8, 0));
    let active: Vec<String> = c.lrange(q.key("active"), 0, -1).await.unwrap();
    assert_eq!(active, vec!["foreign-new", "foreign-old"]);
    let completed = events_of(&q)
        .await
        .iter()
        .filter(|e| e.event == "completed")
        .count();
    assert_eq!(completed, 8);
    assert_eq!(q.counts().await.unwrap().completed, 8);
}

/// Every scenario, in order, on one Redis (used by the cluster test).
pub async fn all(url: &str, prefix: &str) {
    add_routes_jobs_by_their_options(url, prefix).await;
    custom_id_is_added_once(url, prefix).await;
    bulk_add_keeps_order_across_chunks(url, prefix).await;
    worker_completes_jobs_with_bullmq_fields(url, prefix).await;
    retry_with_exponential_backoff_lands_at_the_right_times(url, prefix).await;
    permanent_error_fails_at_once_and_dead_letters(url, prefix).await;
    last_attempt_failure_dead_letters_once(url, prefix).await;
    timed_out_job_fails_and_its_future_is_dropped(url, prefix).await;
    job_of_a_killed_worker_is_recovered_by_another(url, prefix).await;
    job_stalled_too_often_fails_with_the_stalled_reason(url, prefix).await;
    stale_completion_is_rejected(url, prefix).await;
    pause_keeps_jobs_waiting_and_resume_releases_them(url, prefix).await;
    drain_claims_only_within_its_budget(url, prefix).await;
    drain_waits_for_delayed_jobs_inside_its_budget(url, prefix).await;
    retention_removes_or_trims_finished_jobs(url, prefix).await;
    rate_limiter_spaces_jobs_per_window(url, prefix).await;
    replay_requeues_a_dead_letter_with_attempts_reset(url, prefix).await;
    progress_is_stored_and_emitted(url, prefix).await;
    concurrency_runs_n_jobs_at_once(url, prefix).await;
    several_workers_never_complete_a_job_twice(url, prefix).await;
    priorities_and_lifo_set_the_order(url, prefix).await;
    deferred_failure_on_a_fetched_job_is_honoured(url, prefix).await;
    malformed_job_data_fails_the_job_not_the_worker(url, prefix).await;
    lock_is_extended_while_a_long_job_runs(url, prefix).await;
    events_stream_is_capped_by_max_len(url, prefix).await;
    unstarted_prefetched_jobs_are_released_when_the_budget_ends(url, prefix).await;
    global_concurrency_caps_active_jobs_across_workers(url, prefix).await;
    finishes_leave_other_workers_jobs_in_active(url, prefix).await;
}
