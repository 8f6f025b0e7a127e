//! A Redis job queue whose state is BullMQ v6's, written on fred and built for Lambda-style drains.
//!
//! - [`Queue`]: producer and admin (add, bulk add, counts, get jobs, pause/resume, rate limit, replay).
//! - [`Worker`]: [`Worker::drain`] claims and runs jobs until a deadline, with batched, token-fenced
//!   claims and completions, retries with backoff, job timeouts, lock extension and stalled recovery.
//!
//! The Redis layout and each transition follow `shared/reference/bullmq-v6-protocol.md`; the Lua
//! scripts under `src/scripts/` are our own and each says which keys it reads and writes.

mod error;
mod job;
mod keys;
mod options;
mod queue;
pub mod scores;
mod scripts;
mod worker;

pub use error::QueueError;
pub use job::{Job, JobCounts, JobState, QueueEvent};
pub use options::{Backoff, BackoffKind, JobOptions, KeepJobs, NewJob, RateLimit};
pub use queue::{AddedJob, Queue, QueueSettings};
pub use worker::{
    DeadLetter, DeadLetterSink, DrainSummary, JobContext, JobError, JobHandler, NoDeadLetters,
    Worker, WorkerOptions,
};

/// Milliseconds since the Unix epoch on this host's clock (BullMQ's `Date.now()`).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
