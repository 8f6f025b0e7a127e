//! The worker: `drain(deadline)` claims and runs jobs in batches until the deadline or an idle queue.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fred::prelude::*;
use fred::types::Value as RedisValue;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::QueueError;
use crate::job::Job;
use crate::options::{JobOptions, KeepJobs, RateLimit};
use crate::queue::Queue;
use crate::scripts::run;

/// How a worker behaves.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Jobs run at the same time inside this worker.
    pub concurrency: usize,
    /// A job running longer is failed ("job timed out after ...") and follows its retry policy.
    pub job_timeout: Duration,
    /// Lock time-to-live; renewed every third of it while the job runs.
    pub lock_duration: Duration,
    /// How often the stalled-job check runs (also once at the start of every drain).
    pub stalled_interval: Duration,
    /// Stalls allowed before a job is failed with "job stalled more than allowable limit".
    pub max_stalled_count: u32,
    /// `drain` claims only while the time left exceeds `job_timeout + deadline_margin`.
    pub deadline_margin: Duration,
    /// Most jobs claimed or finished by one script call.
    pub batch_size: usize,
    /// Jobs claimed ahead of free slots (held locally, locked). Raises throughput of short jobs;
    /// unstarted jobs are released to the front of the queue when the drain ends.
    pub prefetch: usize,
    /// How long `drain` keeps watching an empty queue before it returns.
    pub idle_wait: Duration,
    /// Worker-side rate limit, used when the queue has none in `meta`.
    pub limiter: Option<RateLimit>,
    /// Retention of completed jobs when the job has no `removeOnComplete`.
    pub remove_on_complete: Option<KeepJobs>,
    /// Retention of failed jobs when the job has no `removeOnFail`.
    pub remove_on_fail: Option<KeepJobs>,
    /// How long Redis may stay unreachable during a drain before it gives up.
    pub reconnect_budget: Duration,
    /// Longest single blocking wait on the marker (Redis side); a client-side deadline adds 1 s.
    pub max_block: Duration,
    /// Longest time a finished job's outcome waits to be sent with others in one call.
    pub max_batch_delay: Duration,
}

impl Default for WorkerOptions {
    fn default() -> WorkerOptions {
        WorkerOptions {
            concurrency: 1,
            job_timeout: Duration::from_secs(300),
            lock_duration: Duration::from_secs(30),
            stalled_interval: Duration::from_secs(30),
            max_stalled_count: 1,
            deadline_margin: Duration::from_secs(10),
            batch_size: 50,
            prefetch: 0,
            idle_wait: Duration::from_secs(1),
            limiter: None,
            remove_on_complete: None,
            remove_on_fail: None,
            reconnect_budget: Duration::from_secs(30),
            max_block: Duration::from_secs(5),
            max_batch_delay: Duration::from_millis(2),
        }
    }
}

/// Why a job attempt failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Try again if attempts remain (with the job's backoff).
    #[error("{0}")]
    Retryable(String),
    /// Fail the job now, whatever attempts remain.
    #[error("{0}")]
    Permanent(String),
}

impl JobError {
    /// A failure worth retrying.
    pub fn retryable(reason: impl std::fmt::Display) -> JobError {
        JobError::Retryable(reason.to_string())
    }

    /// A failure that retrying cannot fix.
    pub fn permanent(reason: impl std::fmt::Display) -> JobError {
        JobError::Permanent(reason.to_string())
    }

    /// The failure reason.
    pub fn reason(&self) -> &str {
        match self {
            JobError::Retryable(r) | JobError::Permanent(r) => r,
        }
    }
}

/// What a handler gets for one attempt.
#[derive(Clone, Debug)]
pub struct JobContext {
    /// Job id.
    pub id: String,
    /// Job name.
    pub name: String,
    /// Payload.
    pub data: Value,
    /// Attempts finished before this one (`atm`).
    pub attempts_made: u32,
    /// Attempts started including this one (`ats`).
    pub attempts_started: u32,
    /// The job's options.
    pub opts: JobOptions,
    /// Creation time, ms.
    pub timestamp: u64,
    queue: Queue,
}

impl JobContext {
    /// Records progress (JSON) on the job and emits a `progress` event.
    pub async fn progress(&self, progress: Value) -> Result<(), QueueError> {
        let k = &self.queue.inner.keys;
        let keys = vec![k.job(&self.id), k.key("events"), k.key("meta")];
        let _: i64 = run(
            &self.queue.inner.scripts.progress,
            &self.queue.inner.client,
            keys,
            vec![self.id.clone(), progress.to_string()],
        )
        .await?;
        Ok(())
    }

    /// Appends a line to the job's log (`{id}:logs`, shown by bull-board).
    pub async fn log(&self, line: &str) -> Result<(), QueueError> {
        let _: i64 = self
            .queue
            .inner
            .client
            .rpush(
                format!("{}:logs", self.queue.inner.keys.job(&self.id)),
                line,
            )
            .await?;
        Ok(())
    }
}

/// Processes jobs. Implemented for async closures `Fn(JobContext) -> Future<Output = Result<Value, JobError>>`.
/// Run CPU-heavy work in `spawn_blocking`: handlers share the drain's task.
pub trait JobHandler: Send + Sync {
    /// Runs one attempt; the returned value is stored as the job's JSON return value.
    fn process(&self, job: JobContext) -> impl Future<Output = Result<Value, JobError>> + Send;
}

impl<F, Fut> JobHandler for F
where
    F: Fn(JobContext) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Value, JobError>> + Send,
{
    fn process(&self, job: JobContext) -> impl Future<Output = Result<Value, JobError>> + Send {
        self(job)
    }
}

/// Everything needed to replay a job that failed its last attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// `{prefix}:{queue}` the job came from.
    #[serde(default)]
    pub queue: String,
    /// Job id.
    pub id: String,
    /// Job name.
    pub name: String,
    /// Payload.
    pub data: Value,
    /// Stored options JSON.
    pub opts: Value,
    /// Attempts made, including the last.
    pub attempts_made: u32,
    /// Last failure reason.
    pub failed_reason: String,
    /// Stack traces, one per failed attempt.
    pub stacktrace: Vec<String>,
    /// Creation time, ms.
    pub timestamp: u64,
    /// Start of the last attempt, ms.
    pub processed_on: Option<u64>,
    /// Time of the final failure, ms.
    pub finished_on: u64,
}

/// Receives dead letters; called exactly once per job that fails its last attempt, after Redis
/// recorded the failure.
pub trait DeadLetterSink: Send + Sync {
    /// Stores or forwards the dead letter (e.g. to SQS). An `Err` is retried a few times.
    fn dead_letter(&self, dead: &DeadLetter) -> impl Future<Output = Result<(), String>> + Send;
}

/// A sink that drops dead letters (they stay in the failed set).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoDeadLetters;

impl DeadLetterSink for NoDeadLetters {
    async fn dead_letter(&self, _dead: &DeadLetter) -> Result<(), String> {
        Ok(())
    }
}

/// What one drain did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DrainSummary {
    /// Attempts whose outcome Redis accepted.
    pub processed: u64,
    /// Jobs completed.
    pub completed: u64,
    /// Jobs failed for good (dead-lettered).
    pub failed: u64,
    /// Attempts failed and scheduled for retry.
    pub retried: u64,
    /// Attempts that ran past the job timeout.
    pub timed_out: u64,
    /// Outcomes Redis rejected because the lock was lost (the job is someone else's now).
    pub lost: u64,
    /// Claimed but unstarted jobs handed back at the end.
    pub released: u64,
    /// Dead letters delivered to the sink.
    pub dead_lettered: u64,
    /// Dead letters the sink refused after retries (the jobs are still in the failed set).
    pub dead_letter_errors: u64,
    /// Stalled jobs this drain moved back to wait.
    pub stalled_recovered: u64,
    /// Jobs waiting (incl. prioritized) when the drain returned.
    pub left_waiting: u64,
    /// Jobs delayed when the drain returned.
    pub left_delayed: u64,
    /// When the earliest delayed job is due, if any.
    pub next_delayed_at: Option<SystemTime>,
    /// The same, in ms since the epoch.
    pub next_delayed_at_ms: Option<u64>,
    /// Why the drain stopped: "deadline" or "idle".
    pub stopped_by: &'static str,
    /// Wall time of the drain, ms.
    pub elapsed_ms: u64,
}

/// A worker of one queue. Several workers (in one process or many) may drain the same queue.
pub struct Worker {
    queue: Queue,
    opts: WorkerOptions,
    blocking: Client,
    token_base: String,
    seq: std::sync::atomic::AtomicU64,
}

struct Claimed {
    id: String,
    token: String,
    job: Result<Job, QueueError>,
}

struct ClaimReply {
    rate_limit_ttl: u64,
    next_delayed_ms: u64,
    state: i64,
    jobs: Vec<Claimed>,
}

/// One outcome to send to finish.lua.
struct Entry {
    id: String,
    token: String,
    kind: &'static str,
    value: String,
    stacktrace: String,
    keep: (i64, u64, u64),
    attempts: u32,
    extra: String,
    dead: Option<DeadLetter>,
    timed_out: bool,
    /// The job's `atm` once this attempt is recorded (finish.lua writes it for c/f); None = unknown.
    atm_next: Option<u32>,
}

enum WaitResult {
    Ready,
    DelayedAt(u64),
    TimedOut,
    Failed(QueueError),
}

enum Event {
    JobDone(Box<Entry>),
    Call(
        Result<(Option<Vec<i64>>, Option<ClaimReply>), QueueError>,
        Vec<Entry>,
        usize,
    ),
    Wait(WaitResult),
    Extended(Result<Vec<String>, QueueError>),
    Stalled(Result<Vec<String>, QueueError>),
    DeadDone(bool),
    LockTick,
    StalledTick,
    Wake,
}

/// Script calls a drain keeps in flight at once.
const MAX_CALLS_IN_FLIGHT: usize = 2;

async fn maybe<T>(f: &mut Option<BoxFuture<'_, T>>) -> T {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

fn ms_to_system(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

impl Worker {
    /// A worker for `queue`. It opens its own connection for blocking waits on first drain.
    pub fn new(queue: &Queue, opts: WorkerOptions) -> Worker {
        let mut opts = opts;
        opts.concurrency = opts.concurrency.max(1);
        opts.batch_size = opts.batch_size.max(1);
        Worker {
            blocking: blocking_client(&queue.inner.client),
            queue: queue.clone(),
            opts,
            token_base: uuid::Uuid::new_v4().to_string(),
            seq: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The worker's options.
    pub fn options(&self) -> &WorkerOptions {
        &self.opts
    }

    async fn ensure_blocking(&self) -> Result<(), QueueError> {
        if !self.blocking.is_connected() {
            if self.blocking.state() == ClientState::Disconnected {
                drop(self.blocking.init().await?);
            } else {
                self.blocking.wait_for_connect().await?;
            }
            // Name the blocking connection as BullMQ does, so `getWorkers()` and bull-board see us.
            let name = format!(
                "{}:{}",
                self.queue.inner.settings.prefix,
                base64(self.queue.inner.settings.name.as_bytes())
            );
            let _: Result<(), _> = self.blocking.client_setname(name).await;
        }
        Ok(())
    }

    /// Claims and runs jobs until `deadline` (claiming only while the time left exceeds the job
    /// timeout plus the margin) or until the queue stays empty for `idle_wait` with no delayed job
    /// due inside the budget. Stalled jobs are recovered at the start and every `stalled_interval`.
    pub async fn drain<H: JobHandler, D: DeadLetterSink>(
        &self,
        deadline: Instant,
        handler: &H,
        dead: &D,
    ) -> Result<DrainSummary, QueueError> {
        let started = Instant::now();
        let mut s = DrainSummary::default();
        self.ensure_blocking().await?;
        match self
            .queue
            .stalled_check(
                self.opts.max_stalled_count,
                self.opts.stalled_interval,
                true,
            )
            .await
        {
            Ok(ids) => s.stalled_recovered += ids.len() as u64,
            Err(e) => tracing::warn!(error = %e, "stalled check at drain start failed"),
        }
        let o = &self.opts;
        let budget = o.job_timeout + o.deadline_margin;
        let mut ready: VecDeque<Claimed> = VecDeque::new();
        let mut running: FuturesUnordered<BoxFuture<'_, Entry>> = FuturesUnordered::new();
        let mut pending: Vec<Entry> = Vec::new();
        let mut held: HashMap<String, String> = HashMap::new();
        let mut lost_ids: HashSet<String> = HashSet::new();
        // Up to two script calls in flight: Redis runs one batch while we process the previous one.
        let mut calls: FuturesUnordered<BoxFuture<'_, Event>> = FuturesUnordered::new();
        let mut claiming: usize = 0;
        let mut wait: Option<BoxFuture<'_, WaitResult>> = None;
        let mut extend: Option<BoxFuture<'_, Result<Vec<String>, QueueError>>> = None;
        let mut stalled: Option<BoxFuture<'_, Result<Vec<String>, QueueError>>> = None;
        let mut deads: FuturesUnordered<BoxFuture<'_, bool>> = FuturesUnordered::new();
        let renew_every = (o.lock_duration / 3).max(Duration::from_millis(50));
        let mut lock_tick = tokio::time::interval(renew_every);
        lock_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stalled_tick =
            tokio::time::interval(o.stalled_interval.max(Duration::from_millis(50)));
        stalled_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        lock_tick.tick().await;
        stalled_tick.tick().await;

        let mut source_empty = false;
        let mut wake_at: Option<Instant> = None; // error back-off: no calls before it
        let mut delayed_due: Option<u64> = None; // ms epoch of the earliest delayed job
        let mut idle_since: Option<Instant> = None;
        let mut outage_since: Option<Instant> = None;
        let mut stopping = false;
        let mut oldest_pending: Option<Instant> = None;
        let mut limited_until: Option<Instant> = None; // rate limited: no claims before it

        loop {
            let now = Instant::now();
            let can_claim = !stopping && now + budget <= deadline;
            if !can_claim && !ready.is_empty() {
                // Out of budget: hand unstarted jobs back to the front of the queue at once.
                // In reverse: each release pushes to the front, so the first claimed ends up first again.
                for c in ready.drain(..).rev() {
                    pending.push(release_entry(c.id, c.token));
                }
            }
            while running.len() < o.concurrency {
                let Some(c) = ready.pop_front() else { break };
                running.push(self.start(c, handler));
            }
            let backoff_over = wake_at.is_none_or(|t| now >= t);
            if calls.len() < MAX_CALLS_IN_FLIGHT && backoff_over {
                let in_hand = running.len() + ready.len() + claiming;
                let cap = o.concurrency + o.prefetch;
                let limited = limited_until.is_some_and(|t| now < t);
                let room = if can_claim && !limited {
                    cap.saturating_sub(in_hand).min(o.batch_size)
                } else {
                    0
                };
                // Group commit: outcomes wait for a fuller batch while other jobs are still in hand,
                // at most `max_batch_delay`; claims go out when a slot starves or half the window is free.
                let idle_hands = running.is_empty() && ready.is_empty();
                let flush = !pending.is_empty()
                    && (idle_hands
                        || !can_claim
                        || pending.len() >= o.batch_size
                        || oldest_pending.is_some_and(|t| now >= t + o.max_batch_delay));
                // Starving: some slot would stay empty even once the claims in flight arrive
                // (counting them avoids a stream of tiny claims while short jobs finish one by one).
                let starving = in_hand < o.concurrency;
                let claim =
                    !source_empty && room > 0 && (starving || room * 2 >= cap.min(o.batch_size));
                if flush || claim {
                    // A finish always claims into the free room too (it costs no extra round trip).
                    let n = room;
                    let take = pending.len().min(o.batch_size);
                    let entries: Vec<Entry> = pending.drain(..take).collect();
                    oldest_pending = if pending.is_empty() { None } else { Some(now) };
                    let seq = self
                        .seq
                        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    claiming += n;
                    calls.push(self.call(entries, n, seq).boxed());
                }
            }
            let quiet =
                running.is_empty() && ready.is_empty() && pending.is_empty() && calls.is_empty();
            if quiet && deads.is_empty() && extend.is_none() && stalled.is_none() {
                if !can_claim {
                    s.stopped_by = "deadline";
                    break;
                }
                if source_empty && backoff_over {
                    let idle_start = *idle_since.get_or_insert(now);
                    let due_in_budget = delayed_due.filter(|due| {
                        let left = due.saturating_sub(crate::now_ms());
                        now + Duration::from_millis(left) + budget <= deadline
                    });
                    let idle_end = idle_start + o.idle_wait;
                    if due_in_budget.is_none() && now >= idle_end {
                        s.stopped_by = "idle";
                        break;
                    }
                    if wait.is_none() {
                        let until = match due_in_budget {
                            Some(due) => Duration::from_millis(due.saturating_sub(crate::now_ms())),
                            None => idle_end.saturating_duration_since(now),
                        };
                        wait = Some(self.wait_marker(until).boxed());
                    }
                }
            } else if source_empty
                && wait.is_none()
                && can_claim
                && running.len() < o.concurrency
                && !stopping
            {
                // Jobs still run but the queue looked empty: watch the marker for new work.
                let until = match delayed_due {
                    Some(due) => {
                        Duration::from_millis(due.saturating_sub(crate::now_ms())).min(o.max_block)
                    }
                    None => o.max_block,
                };
                wait = Some(self.wait_marker(until).boxed());
            }

            let lock_enabled = !held.is_empty() && extend.is_none();
            let ev = tokio::select! {
                Some(e) = running.next(), if !running.is_empty() => Event::JobDone(Box::new(e)),
                Some(e) = calls.next(), if !calls.is_empty() => e,
                w = maybe(&mut wait) => Event::Wait(w),
                r = maybe(&mut extend) => Event::Extended(r),
                r = maybe(&mut stalled) => Event::Stalled(r),
                Some(ok) = deads.next(), if !deads.is_empty() => Event::DeadDone(ok),
                _ = lock_tick.tick(), if lock_enabled => Event::LockTick,
                _ = stalled_tick.tick(), if stalled.is_none() => Event::StalledTick,
                _ = sleep_until(wake_at), if wake_at.is_some() => Event::Wake,
                _ = sleep_until(limited_until), if limited_until.is_some() => Event::Wake,
                _ = sleep_until(oldest_pending.map(|t| t + o.max_batch_delay)), if oldest_pending.is_some() && calls.len() < MAX_CALLS_IN_FLIGHT && backoff_over => Event::Wake,
            };
            match ev {
                Event::JobDone(e) => {
                    oldest_pending.get_or_insert(Instant::now());
                    if e.timed_out {
                        s.timed_out += 1;
                    }
                    pending.push(*e);
                    // Take every other job that is already done in the same turn of the loop
                    // (short jobs finish in bursts). Polling without a waker loses nothing: the
                    // select below polls `running` again before the task parks.
                    while pending.len() < o.batch_size {
                        match running.next().now_or_never() {
                            Some(Some(e)) => {
                                if e.timed_out {
                                    s.timed_out += 1;
                                }
                                pending.push(e);
                            }
                            _ => break,
                        }
                    }
                }
                Event::Call(result, entries, asked) => {
                    claiming = claiming.saturating_sub(asked);
                    match result {
                        Err(e) => {
                            let since = *outage_since.get_or_insert(Instant::now());
                            tracing::warn!(error = %e, "queue call failed; will re-issue");
                            if since.elapsed() > o.reconnect_budget {
                                return Err(QueueError::Unreachable(since.elapsed()));
                            }
                            // Re-issue the same outcomes: a repeated finish is fenced by the tokens.
                            let mut back = entries;
                            back.append(&mut pending);
                            pending = back;
                            wake_at = Some(Instant::now() + Duration::from_millis(200));
                        }
                        Ok((codes, claim)) => {
                            outage_since = None;
                            if wake_at.is_some_and(|t| Instant::now() >= t) {
                                wake_at = None;
                            }
                            if let Some(codes) = codes {
                                for (entry, code) in entries.into_iter().zip(codes) {
                                    held.remove(&entry.id);
                                    lost_ids.remove(&entry.id);
                                    self.account(&mut s, entry, code, dead, &mut deads);
                                }
                            }
                            if let Some(c) = claim {
                                delayed_due = (c.next_delayed_ms > 0).then_some(c.next_delayed_ms);
                                let got = c.jobs.len();
                                if got > 0 {
                                    idle_since = None;
                                }
                                if c.rate_limit_ttl > 0 {
                                    limited_until = Some(
                                        Instant::now() + Duration::from_millis(c.rate_limit_ttl),
                                    );
                                } else if got < asked || c.state != 0 {
                                    source_empty = true;
                                }
                                for j in c.jobs {
                                    held.insert(j.id.clone(), j.token.clone());
                                    ready.push_back(j);
                                }
                            }
                        }
                    }
                }
                Event::Wait(w) => {
                    wait = None;
                    match w {
                        WaitResult::Ready | WaitResult::TimedOut => source_empty = false,
                        WaitResult::DelayedAt(t) => {
                            delayed_due = Some(delayed_due.map_or(t, |d| d.min(t)));
                            if t <= crate::now_ms() + 1 {
                                source_empty = false;
                            }
                        }
                        WaitResult::Failed(e) => {
                            tracing::warn!(error = %e, "blocking wait failed; retrying");
                            wake_at = Some(Instant::now() + Duration::from_millis(200));
                            source_empty = false;
                        }
                    }
                }
                Event::Extended(r) => {
                    extend = None;
                    match r {
                        Ok(lost) => {
                            for id in lost {
                                if held.contains_key(&id) {
                                    tracing::warn!(job = %id, "lock lost while running");
                                    lost_ids.insert(id);
                                }
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "lock extension failed"),
                    }
                }
                Event::Stalled(r) => {
                    stalled = None;
                    match r {
                        Ok(ids) => {
                            if !ids.is_empty() {
                                s.stalled_recovered += ids.len() as u64;
                                source_empty = false;
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "stalled check failed"),
                    }
                }
                Event::DeadDone(ok) => {
                    if ok {
                        s.dead_lettered += 1;
                    } else {
                        s.dead_letter_errors += 1;
                    }
                }
                Event::LockTick => {
                    let pairs: Vec<(String, String)> =
                        held.iter().map(|(a, b)| (a.clone(), b.clone())).collect();
                    extend = Some(self.extend_locks(pairs).boxed());
                }
                Event::StalledTick => {
                    let q = self.queue.clone();
                    let (m, i) = (o.max_stalled_count, o.stalled_interval);
                    stalled = Some(async move { q.stalled_check(m, i, false).await }.boxed());
                }
                Event::Wake => {
                    if limited_until.is_some_and(|t| Instant::now() >= t) {
                        limited_until = None;
                    }
                    if wake_at.is_some_and(|t| Instant::now() >= t) {
                        wake_at = None;
                        source_empty = false;
                    }
                }
            }
            if Instant::now() + budget > deadline {
                stopping = true;
            }
        }
        if wait.is_some() {
            // Do not leave a BZPOPMIN parked on the connection for the next drain.
            // CLIENT UNBLOCK first; if the wait is still parked (fred may not have it marked as
            // blocked yet), drop the blocking connection, which ends it at once.
            let _ = self.blocking.unblock_self(None).await;
            if let Some(mut w) = wait.take() {
                if tokio::time::timeout(Duration::from_millis(20), &mut w)
                    .await
                    .is_err()
                {
                    let _ = self.blocking.force_reconnection().await;
                    let _ = tokio::time::timeout(Duration::from_secs(2), w).await;
                }
            }
        }
        let counts = self.queue.counts().await?;
        s.left_waiting = counts.waiting + counts.prioritized;
        s.left_delayed = counts.delayed;
        let first: Vec<(String, f64)> = self
            .queue
            .inner
            .client
            .zrange(self.queue.key("delayed"), 0, 0, None, false, None, true)
            .await?;
        if let Some((_, score)) = first.first() {
            let ms = crate::scores::delayed_due_ms(*score);
            s.next_delayed_at_ms = Some(ms);
            s.next_delayed_at = Some(ms_to_system(ms));
        }
        s.elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(s)
    }

    /// Records the outcome of one accepted or rejected entry.
    fn account<'a, D: DeadLetterSink>(
        &self,
        s: &mut DrainSummary,
        entry: Entry,
        code: i64,
        dead: &'a D,
        deads: &mut FuturesUnordered<BoxFuture<'a, bool>>,
    ) {
        if code != 0 {
            if entry.kind != "w" {
                tracing::warn!(job = %entry.id, code, "outcome rejected: the job's lock was lost");
            }
            s.lost += 1;
            return;
        }
        match entry.kind {
            "c" => {
                s.processed += 1;
                s.completed += 1;
            }
            "f" => {
                s.processed += 1;
                s.failed += 1;
                if let Some(dl) = entry.dead {
                    deads.push(
                        async move {
                            for attempt in 0..3u32 {
                                match dead.dead_letter(&dl).await {
                                    Ok(()) => return true,
                                    Err(e) => {
                                        tracing::warn!(job = %dl.id, error = %e, attempt, "dead-letter sink failed");
                                        tokio::time::sleep(Duration::from_millis(100 << (2 * attempt))).await;
                                    }
                                }
                            }
                            false
                        }
                        .boxed(),
                    );
                }
            }
            "d" | "r" => {
                s.processed += 1;
                s.retried += 1;
            }
            _ => s.released += 1,
        }
    }

    /// Runs one claimed job to an outcome (never panics: a panic or timeout becomes a failure).
    fn start<'a, H: JobHandler>(&'a self, c: Claimed, handler: &'a H) -> BoxFuture<'a, Entry> {
        async move {
            let job = match c.job {
                Ok(job) => job,
                Err(e) => {
                    // Unreadable job (e.g. data is not JSON): fail it for good with the parse error.
                    return Entry {
                        id: c.id,
                        token: c.token,
                        kind: "f",
                        value: e.to_string(),
                        stacktrace: serde_json::json!([e.to_string()]).to_string(),
                        keep: KeepJobs::script_args(self.opts.remove_on_fail.as_ref()),
                        attempts: 0,
                        extra: String::new(),
                        dead: None,
                        timed_out: false,
                        atm_next: None,
                    };
                }
            };
            if let Some(reason) = job.deferred_failure.clone() {
                return self.outcome(c.id, c.token, &job, Err(JobError::Permanent(reason)), false);
            }
            let ctx = JobContext {
                id: job.id.clone(),
                name: job.name.clone(),
                data: job.data.clone(),
                attempts_made: job.attempts_made,
                attempts_started: job.attempts_started,
                opts: job.opts.clone(),
                timestamp: job.timestamp,
                queue: self.queue.clone(),
            };
            let timeout = self.opts.job_timeout;
            let run = AssertUnwindSafe(handler.process(ctx)).catch_unwind();
            let (result, timed_out) = match tokio::time::timeout(timeout, run).await {
                Ok(Ok(r)) => (r, false),
                Ok(Err(panic)) => {
                    let msg = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    (
                        Err(JobError::Retryable(format!("handler panicked: {msg}"))),
                        false,
                    )
                }
                Err(_) => (
                    Err(JobError::Retryable(format!(
                        "job timed out after {}s",
                        timeout.as_secs_f64()
                    ))),
                    true,
                ),
            };
            self.outcome(c.id, c.token, &job, result, timed_out)
        }
        .boxed()
    }

    /// Turns an attempt's result into a finish entry, deciding retry vs final failure as BullMQ does
    /// (`attemptsMade + 1 < attempts` and not permanent).
    fn outcome(
        &self,
        id: String,
        token: String,
        job: &Job,
        result: Result<Value, JobError>,
        timed_out: bool,
    ) -> Entry {
        let attempts = job.opts.attempts.unwrap_or(0);
        // Flow children tell finish.lua to update their parent.
        let parent_flag = if job.parent_key.is_some() {
            "p".to_string()
        } else {
            String::new()
        };
        let base = |kind, value, stacktrace, keep, extra| Entry {
            id: id.clone(),
            token: token.clone(),
            kind,
            value,
            stacktrace,
            keep,
            attempts,
            extra,
            dead: None,
            timed_out,
            atm_next: Some(job.attempts_made + 1),
        };
        match result {
            Ok(v) => {
                let keep = KeepJobs::script_args(
                    job.opts
                        .remove_on_complete
                        .as_ref()
                        .or(self.opts.remove_on_complete.as_ref()),
                );
                base("c", v.to_string(), String::new(), keep, parent_flag.clone())
            }
            Err(err) => {
                let reason = err.reason().to_string();
                let mut stack = job.stacktrace.clone();
                stack.push(format!("Error: {reason}"));
                if let Some(limit) = job.opts.stack_trace_limit {
                    let limit = limit as usize;
                    if stack.len() > limit {
                        stack.drain(..stack.len() - limit);
                    }
                }
                let stack_json = Value::from(stack.clone()).to_string();
                let permanent = matches!(err, JobError::Permanent(_));
                if !permanent && job.attempts_made + 1 < attempts {
                    let delay = job
                        .opts
                        .backoff
                        .as_ref()
                        .map(|b| b.delay_for(job.attempts_made + 1, rand::random::<f64>()))
                        .unwrap_or(0);
                    if delay > 0 {
                        base("d", reason, stack_json, (-1, 0, 0), delay.to_string())
                    } else {
                        base(
                            "r",
                            reason,
                            stack_json,
                            (-1, 0, 0),
                            if job.opts.lifo { "1" } else { "0" }.to_string(),
                        )
                    }
                } else {
                    let keep = KeepJobs::script_args(
                        job.opts
                            .remove_on_fail
                            .as_ref()
                            .or(self.opts.remove_on_fail.as_ref()),
                    );
                    let mut e = base("f", reason.clone(), stack_json, keep, parent_flag.clone());
                    e.dead = Some(DeadLetter {
                        queue: self.queue.inner.keys.base.trim_end_matches(':').to_string(),
                        id: job.id.clone(),
                        name: job.name.clone(),
                        data: job.data.clone(),
                        opts: job.opts_json.clone(),
                        attempts_made: job.attempts_made + 1,
                        failed_reason: reason,
                        stacktrace: stack,
                        timestamp: job.timestamp,
                        processed_on: job.processed_on,
                        finished_on: crate::now_ms(),
                    });
                    e
                }
            }
        }
    }

    /// One script call: finish `entries` (if any) and claim up to `n` jobs.
    async fn call(&self, entries: Vec<Entry>, n: usize, seq: u64) -> Event {
        let q = &self.queue.inner;
        let (wmax, wdur) = self
            .opts
            .limiter
            .map(|l| (l.max, l.duration.as_millis() as u64))
            .unwrap_or((0, 0));
        let lock_ms = (self.opts.lock_duration.as_millis() as u64).max(1);
        let now = crate::now_ms().to_string();
        let result = if entries.is_empty() {
            let args = vec![
                q.keys.base.clone(),
                now,
                n.to_string(),
                self.token_base.clone(),
                seq.to_string(),
                lock_ms.to_string(),
                wmax.to_string(),
                wdur.to_string(),
            ];
            match run::<RedisValue, _, _>(&q.scripts.claim, &q.client, q.keys.worker_keys(), args)
                .await
            {
                Ok(v) => parse_claim(v, &self.token_base, seq).map(|c| (None, Some(c))),
                Err(e) => Err(e),
            }
        } else {
            let mut args = Vec::with_capacity(9 + entries.len() * 11);
            args.extend([
                q.keys.base.clone(),
                now,
                entries.len().to_string(),
                n.to_string(),
                self.token_base.clone(),
                seq.to_string(),
                lock_ms.to_string(),
                wmax.to_string(),
                wdur.to_string(),
            ]);
            for e in &entries {
                push_entry_args(&mut args, e);
            }
            match run::<RedisValue, _, _>(&q.scripts.finish, &q.client, q.keys.worker_keys(), args)
                .await
            {
                Ok(v) => parse_finish(v, entries.len(), &self.token_base, seq),
                Err(e) => Err(e),
            }
        };
        Event::Call(result, entries, n)
    }

    async fn extend_locks(&self, pairs: Vec<(String, String)>) -> Result<Vec<String>, QueueError> {
        let q = &self.queue.inner;
        let mut args = vec![
            q.keys.base.clone(),
            (self.opts.lock_duration.as_millis() as u64).to_string(),
        ];
        for (id, token) in pairs {
            args.push(id);
            args.push(token);
        }
        run(
            &q.scripts.extend_locks,
            &q.client,
            vec![q.keys.key("stalled")],
            args,
        )
        .await
    }

    /// Blocks on the marker for at most `max` (capped by `max_block`), with a client-side deadline of
    /// one more second; a stuck connection is reset, as BullMQ's watchdog does.
    async fn wait_marker(&self, max: Duration) -> WaitResult {
        let secs = max.min(self.opts.max_block).as_secs_f64().max(0.01);
        let key = self.queue.key("marker");
        let call = self.blocking.bzpopmin::<RedisValue, _>(key, secs);
        match tokio::time::timeout(Duration::from_secs_f64(secs) + Duration::from_secs(1), call)
            .await
        {
            Ok(Ok(v)) => {
                let a = v.into_array();
                if a.len() < 3 {
                    return WaitResult::TimedOut;
                }
                let member = a.get(1).and_then(RedisValue::as_string).unwrap_or_default();
                let score = a.get(2).and_then(|s| s.as_f64()).unwrap_or(0.0);
                if member == "1" && score > 0.0 {
                    WaitResult::DelayedAt(score as u64)
                } else {
                    WaitResult::Ready
                }
            }
            Ok(Err(e)) if *e.kind() == fred::error::ErrorKind::Timeout => WaitResult::TimedOut,
            Ok(Err(e)) => {
                if !self.blocking.is_connected() {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        self.blocking.wait_for_connect(),
                    )
                    .await;
                }
                WaitResult::Failed(e.into())
            }
            Err(_) => {
                tracing::warn!("blocking wait outlived its deadline; resetting the connection");
                let _ = self.blocking.force_reconnection().await;
                WaitResult::TimedOut
            }
        }
    }
}

/// The client for blocking waits: same server and reconnect policy as the queue's client, but a
/// command interrupted by a dropped connection is NOT re-sent (a re-sent BZPOPMIN would block again
/// unseen, BullMQ's classic hang); the drain re-issues it itself. No default timeout: each wait
/// carries its own client-side deadline.
fn blocking_client(main: &Client) -> Client {
    let mut conn = main.connection_config().clone();
    conn.max_command_attempts = 1;
    let mut perf = main.perf_config();
    perf.default_command_timeout = Duration::ZERO;
    let mut b = Builder::from_config(main.client_config());
    b.set_connection_config(conn).set_performance_config(perf);
    if let Some(policy) = main.client_reconnect_policy() {
        b.set_policy(policy);
    }
    b.build().unwrap_or_else(|_| main.clone_new())
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Close the blocking connection so a Worker per invocation does not leak connections.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let client = self.blocking.clone();
            rt.spawn(async move {
                let _ = client.quit().await;
            });
        }
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}

fn protocol(detail: impl Into<String>) -> QueueError {
    QueueError::Protocol {
        script: "claim/finish",
        detail: detail.into(),
    }
}

/// Parses one HGETALL reply (a flat field/value array, or a map) into a job without copying it
/// into a map first (the hot path of a claim: maps cost about a third of the worker's CPU). Values that are not text (never written by BullMQ or us) are skipped.
fn parse_job(id: &str, v: &RedisValue) -> Result<Option<Job>, QueueError> {
    fn text(v: &RedisValue) -> Option<&str> {
        match v {
            RedisValue::String(s) => Some(&**s),
            RedisValue::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(16);
    match v {
        RedisValue::Array(a) => {
            for kv in a.chunks(2) {
                if let [k, v] = kv {
                    if let (Some(k), Some(v)) = (text(k), text(v)) {
                        pairs.push((k, v));
                    }
                }
            }
        }
        RedisValue::Map(m) => {
            for (k, v) in m.iter() {
                if let (Some(k), Some(v)) = (k.as_str(), text(v)) {
                    pairs.push((k, v));
                }
            }
        }
        RedisValue::Null => {}
        other => {
            return Err(protocol(format!(
                "job {id}: HGETALL replied {:?}",
                other.kind()
            )))
        }
    }
    Job::from_pairs(id, &pairs)
}

/// A "w" entry: hand a claimed, unstarted job back to the front of wait (no attempt counted).
fn release_entry(id: String, token: String) -> Entry {
    Entry {
        id,
        token,
        kind: "w",
        value: String::new(),
        stacktrace: String::new(),
        keep: (-1, 0, 0),
        attempts: 0,
        extra: String::new(),
        dead: None,
        timed_out: false,
        atm_next: None,
    }
}

/// Appends one entry in finish.lua's variable-length layout (see its header): the common case, a
/// completion that keeps the job and has no flow parent, takes 5 fields instead of 9.
fn push_entry_args(args: &mut Vec<String>, e: &Entry) {
    let atm = || e.atm_next.map(|a| a.to_string()).unwrap_or_default();
    let plain_completion = e.kind == "c" && e.keep == (-1, 0, 0) && e.extra.is_empty();
    let kind = if plain_completion { "C" } else { e.kind };
    args.extend([
        kind.to_string(),
        e.id.clone(),
        e.token.clone(),
        e.value.clone(),
    ]);
    match kind {
        "C" => args.push(atm()),
        "c" => args.extend([
            atm(),
            e.keep.0.to_string(),
            e.keep.1.to_string(),
            e.keep.2.to_string(),
            e.extra.clone(),
        ]),
        "f" => args.extend([
            atm(),
            e.stacktrace.clone(),
            e.keep.0.to_string(),
            e.keep.1.to_string(),
            e.keep.2.to_string(),
            e.attempts.to_string(),
            e.extra.clone(),
        ]),
        "w" => {}
        // "d" (extra = delay ms) and "r" (extra = "1" for lifo).
        _ => args.extend([e.stacktrace.clone(), e.extra.clone()]),
    }
}

/// Parses a claim reply (`{id, hash}` per job); the i-th job's token is `{token_base}:{seq + i}` (the
/// script builds the same tokens and does not send them back).
fn parse_claim(v: RedisValue, token_base: &str, seq: u64) -> Result<ClaimReply, QueueError> {
    let mut a = v.into_array().into_iter();
    let ttl = a
        .next()
        .and_then(|v| v.as_i64())
        .ok_or_else(|| protocol("missing ttl"))?;
    let next = a
        .next()
        .and_then(|v| v.as_i64())
        .ok_or_else(|| protocol("missing next delayed"))?;
    let state = a
        .next()
        .and_then(|v| v.as_i64())
        .ok_or_else(|| protocol("missing state"))?;
    let mut jobs = Vec::new();
    for (i, j) in a.enumerate() {
        let token = format!("{token_base}:{}", seq + i as u64);
        let RedisValue::Array(parts) = j else {
            return Err(protocol("claimed job is not {id, hash}"));
        };
        let id = parts
            .first()
            .and_then(RedisValue::as_string)
            .ok_or_else(|| protocol("missing job id"))?;
        let job = match parse_job(&id, parts.get(1).unwrap_or(&RedisValue::Null)) {
            Ok(Some(job)) => Ok(job),
            Ok(None) => Err(QueueError::MalformedJob {
                id: id.clone(),
                field: "hash",
                detail: "job hash is missing".into(),
            }),
            Err(e) => Err(e),
        };
        jobs.push(Claimed { id, token, job });
    }
    Ok(ClaimReply {
        rate_limit_ttl: ttl.max(0) as u64,
        next_delayed_ms: next.max(0) as u64,
        state,
        jobs,
    })
}

fn parse_finish(
    v: RedisValue,
    n: usize,
    token_base: &str,
    seq: u64,
) -> Result<(Option<Vec<i64>>, Option<ClaimReply>), QueueError> {
    let mut a = v.into_array().into_iter();
    let codes: Vec<i64> = a
        .next()
        .map(RedisValue::into_array)
        .unwrap_or_default()
        .iter()
        .filter_map(RedisValue::as_i64)
        .collect();
    if codes.len() != n {
        return Err(protocol(format!("{} codes for {n} entries", codes.len())));
    }
    let claim = match a.next() {
        Some(RedisValue::Array(arr)) => Some(parse_claim(RedisValue::Array(arr), token_base, seq)?),
        _ => None,
    };
    Ok((Some(codes), claim))
}

/// Standard base64 (for BullMQ's worker connection names).
fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_matches_bullmq_worker_names() {
        // GIVEN the queue name BullMQ encodes in worker connection names
        // THEN it matches what Node's Buffer.toString('base64') gives
        assert_eq!(base64(b"prematchQueue"), "cHJlbWF0Y2hRdWV1ZQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }
}
