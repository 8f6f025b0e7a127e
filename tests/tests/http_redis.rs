//! The HTTP edge's Redis adapters against a real redis-server: rate limiter, manual-run slots,
//! and the queue adapter (probes and run jobs) on prematch-queue.

// Test helpers outside #[test] fns unwrap too: a broken fixture must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use fred::prelude::*;
use prematch_queue::{
    JobError, JobState, NoDeadLetters, Queue, QueueSettings, Worker, WorkerOptions,
};
use prematch_tests::RedisServer;
use prematch_trigger::api::adapters::redis::lazy_client;
use prematch_trigger::api::adapters::{ManualRunSlots, QueueAdapter};
use prematch_trigger::api::check::QueueProbe;
use prematch_trigger::api::rate_limit::{RateLimiter, RedisRateLimiter};
use prematch_trigger::api::trigger::{JobPhase, RunJob, RunQueue, SlotClaim};
use prematch_trigger::config::RateLimit;
use serde_json::json;

const PREFIX: &str = "bull:prematchQueue:prematch:";

async fn client(redis: &RedisServer) -> Client {
    let client = lazy_client(&redis.url(), Duration::from_secs(2)).unwrap();
    client.wait_for_connect().await.unwrap();
    client
}

fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 3).unwrap()
}

#[tokio::test]
async fn a_caller_gets_burst_plus_one_requests_then_waits_one_interval() {
    // GIVEN a limit of 6 a minute with a burst of 3 (one every 10 s, four at once)
    let redis = RedisServer::start();
    let limiter = RedisRateLimiter::new(
        client(&redis).await,
        PREFIX,
        "trigger",
        RateLimit {
            per_minute: 6,
            burst: 3,
        },
    );
    // WHEN one caller sends five requests at once
    let mut decisions = Vec::new();
    for _ in 0..5 {
        decisions.push(limiter.acquire("iam:arn:aws:iam::1:user/a").await.unwrap());
    }
    // THEN four pass, counting down, and the fifth is told to wait about one interval
    let allowed: Vec<bool> = decisions.iter().map(|d| d.allowed).collect();
    assert_eq!(allowed, vec![true, true, true, true, false]);
    let remaining: Vec<u64> = decisions[..4].iter().map(|d| d.remaining).collect();
    assert_eq!(remaining, vec![3, 2, 1, 0]);
    let wait = decisions[4].retry_after;
    assert!(
        wait > Duration::from_secs(9) && wait <= Duration::from_secs(10),
        "{wait:?}"
    );
    // AND another caller is not affected
    assert!(
        limiter
            .acquire("iam:arn:aws:iam::1:user/b")
            .await
            .unwrap()
            .allowed
    );
}

#[tokio::test]
async fn the_limit_is_shared_by_every_instance_and_refills() {
    // GIVEN two limiters (two Lambda instances) on the same Redis, 600 a minute, no burst
    let redis = RedisServer::start();
    let limit = RateLimit {
        per_minute: 600,
        burst: 0,
    };
    let a = RedisRateLimiter::new(client(&redis).await, PREFIX, "check", limit.clone());
    let b = RedisRateLimiter::new(client(&redis).await, PREFIX, "check", limit);
    // WHEN the caller uses its one token through `a`
    assert!(a.acquire("203.0.113.7").await.unwrap().allowed);
    // THEN `b` refuses it too, and after one interval (100 ms) it is allowed again
    let denied = b.acquire("203.0.113.7").await.unwrap();
    assert!(!denied.allowed);
    tokio::time::sleep(denied.retry_after + Duration::from_millis(20)).await;
    assert!(b.acquire("203.0.113.7").await.unwrap().allowed);
}

#[tokio::test]
async fn an_idle_callers_bucket_expires() {
    let redis = RedisServer::start();
    let c = client(&redis).await;
    let limiter = RedisRateLimiter::new(
        c.clone(),
        PREFIX,
        "trigger",
        RateLimit {
            per_minute: 6,
            burst: 3,
        },
    );
    limiter.acquire("admin-key").await.unwrap();
    let ttl: i64 = c
        .pttl(format!("{PREFIX}ratelimit:trigger:admin-key"))
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 10_000, "{ttl}");
}

#[tokio::test]
async fn a_date_slot_is_held_taken_over_only_from_its_holder_and_released_only_by_it() {
    let redis = RedisServer::start();
    let slots = ManualRunSlots::new(client(&redis).await, PREFIX);
    let hold = Duration::from_secs(60);
    // GIVEN run a holding the date
    assert_eq!(
        slots
            .claim(date(), "manual-2026-12-03-aaaaaaaa", hold)
            .await
            .unwrap(),
        SlotClaim::Claimed
    );
    // WHEN b claims it THEN it is told a holds it
    assert_eq!(
        slots
            .claim(date(), "manual-2026-12-03-bbbbbbbb", hold)
            .await
            .unwrap(),
        SlotClaim::Held {
            run_id: "manual-2026-12-03-aaaaaaaa".into()
        }
    );
    // Another date is free.
    assert_eq!(
        slots
            .claim(
                date().succ_opt().unwrap(),
                "manual-2026-12-04-cccccccc",
                hold
            )
            .await
            .unwrap(),
        SlotClaim::Claimed
    );
    // A take-over naming the wrong stale holder fails; naming the right one wins once.
    assert!(!slots
        .take_over(
            date(),
            "manual-2026-12-03-zzzzzzzz",
            "manual-2026-12-03-bbbbbbbb",
            hold
        )
        .await
        .unwrap());
    assert!(slots
        .take_over(
            date(),
            "manual-2026-12-03-aaaaaaaa",
            "manual-2026-12-03-bbbbbbbb",
            hold
        )
        .await
        .unwrap());
    assert!(!slots
        .take_over(
            date(),
            "manual-2026-12-03-aaaaaaaa",
            "manual-2026-12-03-dddddddd",
            hold
        )
        .await
        .unwrap());
    // Only the holder releases it.
    slots
        .release(date(), "manual-2026-12-03-aaaaaaaa")
        .await
        .unwrap();
    assert_eq!(
        slots.holder(date()).await.unwrap().as_deref(),
        Some("manual-2026-12-03-bbbbbbbb")
    );
    slots
        .release(date(), "manual-2026-12-03-bbbbbbbb")
        .await
        .unwrap();
    assert_eq!(slots.holder(date()).await.unwrap(), None);
}

#[tokio::test]
async fn a_slot_expires_after_its_hold() {
    let redis = RedisServer::start();
    let slots = ManualRunSlots::new(client(&redis).await, PREFIX);
    slots
        .claim(
            date(),
            "manual-2026-12-03-aaaaaaaa",
            Duration::from_millis(50),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(
        slots
            .claim(
                date(),
                "manual-2026-12-03-bbbbbbbb",
                Duration::from_secs(60)
            )
            .await
            .unwrap(),
        SlotClaim::Claimed
    );
}

async fn adapter(redis: &RedisServer) -> QueueAdapter {
    let queue = Queue::from_client(
        client(redis).await,
        QueueSettings::new("bull", "prematchQueue"),
    )
    .unwrap();
    QueueAdapter::new(queue, PREFIX)
}

#[tokio::test]
async fn a_run_job_is_added_with_the_agreed_name_id_data_and_options() {
    // GIVEN the queue adapter on a fresh Redis
    let redis = RedisServer::start();
    let adapter = adapter(&redis).await;
    let job = RunJob {
        job_id: "manual-2026-12-03-0a1b2c3d".into(),
        data: json!({"run_id": "manual-2026-12-03-0a1b2c3d", "trigger": "manual", "run_date": "2026-12-03", "regions": ["eu-west"]}),
        attempts: 3,
        backoff_delay: Duration::from_millis(30_000),
    };
    // WHEN the run job is added
    let id = adapter.add_run_job(&job).await.unwrap();
    // THEN it waits in the queue as BullMQ would store it
    assert_eq!(id, "manual-2026-12-03-0a1b2c3d");
    let stored = adapter.queue().get_job(&id).await.unwrap().unwrap();
    assert_eq!(stored.name, "run");
    assert_eq!(stored.data, job.data);
    assert_eq!(stored.opts_json["attempts"], 3);
    assert_eq!(
        stored.opts_json["backoff"],
        json!({"type": "exponential", "delay": 30000})
    );
    assert_eq!(
        adapter.queue().get_state(&id).await.unwrap(),
        Some(JobState::Waiting)
    );
    assert_eq!(
        adapter.job_phase(&id).await.unwrap(),
        Some(JobPhase::Pending)
    );
    assert_eq!(
        adapter
            .job_phase("manual-2026-12-03-ffffffff")
            .await
            .unwrap(),
        None
    );
    // AND adding the same id again is refused rather than silently merged
    assert!(adapter.add_run_job(&job).await.is_err());
    let counts = adapter.counts().await.unwrap();
    assert_eq!(counts.waiting, 1);
    assert!(!adapter.is_paused().await.unwrap());
}

#[tokio::test]
async fn probes_read_counts_timings_and_outcomes_of_jobs_a_real_worker_finished() {
    // GIVEN five jobs that complete after about 30 ms and two that fail for good
    let redis = RedisServer::start();
    let adapter = adapter(&redis).await;
    let queue = adapter.queue().clone();
    for i in 0..7 {
        let opts = prematch_queue::JobOptions {
            attempts: Some(1),
            ..Default::default()
        };
        queue.add("region", json!({"n": i}), opts).await.unwrap();
    }
    let worker = Worker::new(
        &queue,
        WorkerOptions {
            job_timeout: Duration::from_secs(5),
            deadline_margin: Duration::from_secs(1),
            idle_wait: Duration::from_millis(200),
            ..Default::default()
        },
    );
    let handler = |job: prematch_queue::JobContext| async move {
        tokio::time::sleep(Duration::from_millis(30)).await;
        if job.data["n"].as_i64().unwrap_or(0) >= 5 {
            Err(JobError::permanent("no users"))
        } else {
            Ok(json!({"ok": true}))
        }
    };
    let before_ms = chrono::Utc::now().timestamp_millis() - 1;
    let summary = worker
        .drain(
            Instant::now() + Duration::from_secs(30),
            &handler,
            &NoDeadLetters,
        )
        .await
        .unwrap();
    assert_eq!(summary.processed, 7, "{summary:?}");
    // WHEN the check's probes read the queue
    let counts = adapter.counts().await.unwrap();
    let timings = adapter.recent_timings(100).await.unwrap();
    let recent = adapter.outcomes_since(before_ms).await.unwrap();
    let later = adapter
        .outcomes_since(chrono::Utc::now().timestamp_millis() + 60_000)
        .await
        .unwrap();
    let latency = adapter.ping().await.unwrap();
    // THEN they see what the worker did
    assert_eq!((counts.completed, counts.failed, counts.waiting), (5, 2, 0));
    assert_eq!(timings.len(), 5);
    assert!(
        timings.iter().all(|t| t.finished_on - t.processed_on >= 30),
        "{timings:?}"
    );
    assert_eq!((recent.completed, recent.failed), (5, 2));
    assert_eq!((later.completed, later.failed), (0, 0));
    assert!(latency < Duration::from_secs(2));
    assert_eq!(adapter.recent_timings(2).await.unwrap().len(), 2);
}

#[tokio::test]
async fn probes_fail_promptly_when_redis_is_gone() {
    // GIVEN an adapter whose Redis is stopped
    let redis = RedisServer::start();
    let adapter = adapter(&redis).await;
    drop(redis);
    // WHEN it is probed THEN it errors (bounded by the client's command timeout) instead of hanging
    let result = tokio::time::timeout(Duration::from_secs(15), adapter.ping()).await;
    assert!(matches!(result, Ok(Err(_))), "{result:?}");
}
