//! The SQS dead-letter queue against moto: message shape, list without consuming, delete, depth,
//! and the real worker sending exactly one message for a job that fails for good.

// Integration-test helpers panic on bad fixtures by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use prematch_app::dlq::SqsDeadLetters;
use prematch_queue::{
    Backoff, DeadLetter, DeadLetterSink, JobContext, JobError, JobOptions, JobState, Queue,
    QueueSettings, Worker, WorkerOptions,
};
use prematch_tests::{MotoServer, TestStack};

fn dead_letter(id: &str) -> DeadLetter {
    DeadLetter {
        queue: "bull:prematchQueue".into(),
        id: id.into(),
        name: "region".into(),
        data: serde_json::json!({"run_id":"run:2026-12-03","region":"eu-west","run_date":"2026-12-03"}),
        opts: serde_json::json!({"attempts":3,"backoff":{"type":"exponential","delay":30000}}),
        attempts_made: 3,
        failed_reason: "DynamoDB Query on users: throttled".into(),
        stacktrace: vec!["at region job".into()],
        timestamp: 1_796_292_509_821,
        processed_on: Some(1_796_292_520_645),
        finished_on: 1_796_292_520_656,
    }
}

async fn dlq(moto: &MotoServer) -> SqsDeadLetters {
    let aws = moto.clients().await;
    let url = prematch_app::setup::ensure_queue(&aws.sqs, "prematch-dlq")
        .await
        .unwrap();
    SqsDeadLetters::new(aws.sqs, url)
}

#[tokio::test]
async fn a_sent_dead_letter_is_listed_with_its_run_and_stays_until_deleted() {
    // GIVEN an empty DLQ
    let moto = MotoServer::start();
    let dlq = dlq(&moto).await;
    assert_eq!(dlq.depth().await.unwrap().total(), 0);
    // WHEN a dead letter is sent through the worker's sink trait
    let dead = dead_letter("region-2026-12-03-eu-west");
    dlq.dead_letter(&dead).await.unwrap();
    // THEN it is counted and listed with every field and the run id
    assert_eq!(dlq.depth().await.unwrap().visible, 1);
    let listed = dlq.peek(10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].dead.as_ref(), Some(&dead));
    assert_eq!(listed[0].run_id.as_deref(), Some("run:2026-12-03"));
    assert_eq!(listed[0].body["kind"], "prematch.dead_letter");
    // AND listing did not consume it
    let again = dlq.peek(10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message_id, listed[0].message_id);
    assert!(again[0].receive_count >= 2);
    // WHEN it is received for redrive and deleted
    let received = dlq.receive(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(received.len(), 1);
    dlq.delete(&received[0].receipt_handle).await.unwrap();
    // THEN the queue is empty
    assert_eq!(dlq.depth().await.unwrap().total(), 0);
    assert!(dlq.peek(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn received_messages_are_hidden_from_a_second_receiver_until_released() {
    let moto = MotoServer::start();
    let dlq = dlq(&moto).await;
    for i in 0..12 {
        dlq.send(&dead_letter(&format!("job-{i}"))).await.unwrap();
    }
    let first = dlq.receive(100, Duration::from_secs(60)).await.unwrap();
    assert_eq!(first.len(), 12, "more than one ReceiveMessage batch of 10");
    assert!(dlq
        .receive(100, Duration::from_secs(60))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(dlq.depth().await.unwrap().in_flight, 12);
    dlq.release(&first[0].receipt_handle).await.unwrap();
    let back = dlq.receive(100, Duration::from_secs(60)).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].message_id, first[0].message_id);
}

#[tokio::test]
async fn a_body_that_is_not_ours_is_listed_raw() {
    let moto = MotoServer::start();
    let aws = moto.clients().await;
    let url = prematch_app::setup::ensure_queue(&aws.sqs, "prematch-dlq")
        .await
        .unwrap();
    aws.sqs
        .send_message()
        .queue_url(&url)
        .message_body("hello")
        .send()
        .await
        .unwrap();
    let dlq = SqsDeadLetters::new(aws.sqs, url);
    let listed = dlq.peek(5).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].body, serde_json::json!("hello"));
    assert!(listed[0].dead.is_none());
}

#[tokio::test]
async fn unreachable_sqs_is_an_error_the_worker_can_count() {
    // GIVEN a DLQ URL where nothing listens
    let moto = MotoServer::start();
    let aws = moto.clients().await;
    let dlq = SqsDeadLetters::new(aws.sqs, "http://127.0.0.1:9/123456789012/nowhere");
    // WHEN a dead letter is sent
    let err = dlq.dead_letter(&dead_letter("j")).await.unwrap_err();
    // THEN the sink reports an error naming the operation
    assert!(err.contains("SendMessage"), "{err}");
}

#[tokio::test]
async fn a_job_failing_every_attempt_becomes_exactly_one_sqs_message() {
    // GIVEN a job with 3 attempts and short backoff, and a handler that always fails
    let stack = TestStack::start();
    let (aws, setup) = stack.aws_with_tables().await;
    let dlq = SqsDeadLetters::new(aws.sqs.clone(), setup.dlq_url.clone());
    let queue = Queue::connect(
        &stack.redis.url(),
        QueueSettings::new("bull", "prematchQueue"),
    )
    .await
    .unwrap();
    let opts = JobOptions {
        job_id: Some("region-2026-12-03-eu-west".into()),
        attempts: Some(3),
        backoff: Some(Backoff::exponential(50)),
        ..JobOptions::default()
    };
    let data =
        serde_json::json!({"run_id":"run:2026-12-03","region":"eu-west","run_date":"2026-12-03"});
    queue.add("region", data.clone(), opts).await.unwrap();
    let attempts = AtomicU32::new(0);
    let handler = |_job: JobContext| {
        attempts.fetch_add(1, Ordering::SeqCst);
        async { Err::<serde_json::Value, _>(JobError::retryable("table is throttled")) }
    };
    let worker = Worker::new(
        &queue,
        WorkerOptions {
            job_timeout: Duration::from_secs(2),
            deadline_margin: Duration::from_millis(100),
            idle_wait: Duration::from_millis(300),
            ..WorkerOptions::default()
        },
    );
    // WHEN the worker drains (one drain covers the backoff delays)
    let summary = worker
        .drain(Instant::now() + Duration::from_secs(20), &handler, &dlq)
        .await
        .unwrap();
    // THEN the job was tried 3 times, is in the failed set, and is one SQS message
    assert_eq!(attempts.load(Ordering::SeqCst), 3, "{summary:?}");
    assert_eq!(summary.dead_lettered, 1, "{summary:?}");
    assert_eq!(
        queue.get_state("region-2026-12-03-eu-west").await.unwrap(),
        Some(JobState::Failed)
    );
    let listed = dlq.peek(10).await.unwrap();
    assert_eq!(listed.len(), 1);
    let dead = listed[0].dead.as_ref().unwrap();
    assert_eq!(dead.id, "region-2026-12-03-eu-west");
    assert_eq!(dead.attempts_made, 3);
    assert_eq!(dead.data, data);
    assert_eq!(dead.failed_reason, "table is throttled");
    assert_eq!(listed[0].run_id.as_deref(), Some("run:2026-12-03"));
}
