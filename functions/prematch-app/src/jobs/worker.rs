//! The worker Lambda's handler: read the event, add the run it asks for, drain until the deadline.

use std::time::{Duration, Instant, SystemTime};

use prematch_queue::{DeadLetterSink, DrainSummary, JobCounts, QueueError, Worker, WorkerOptions};
use serde::Serialize;
use serde_json::Value;

use std::sync::Arc;

use super::event::{EventError, WorkerEvent};
use super::kick::{LambdaKick, NoKick, WorkerKick};
use super::run::RunJob;
use super::runs::RunStore;
use super::JobSettings;
use super::{NightlyJobs, RunAwareDeadLetters};
use crate::dlq::SqsDeadLetters;
use crate::dynamo::{DynamoMatches, DynamoUsers};
use crate::dynamo::{HistorySource, SuggestionSink, UserSource};
use crate::metrics::{names, MetricRecord};
use crate::state::State;

/// Why an invocation failed. Lambda reports it; the job state in Redis is never lost by it.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The payload is none of the events the worker takes.
    #[error(transparent)]
    Event(#[from] EventError),
    /// Redis failed (adding the run, or the drain itself).
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
}

/// What one invocation did.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerReport {
    /// `scheduled`, `drain` or `manual`.
    pub event: &'static str,
    /// The run this invocation added, if it asked for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunAdded>,
    /// What the drain did.
    pub drain: DrainSummary,
    /// Queue counts when the drain returned.
    pub counts: JobCounts,
    /// Workers asked for because work was left when the budget ran out.
    pub kicked: u32,
}

/// The run job an event added.
#[derive(Debug, Clone, Serialize)]
pub struct RunAdded {
    /// Run id (= job id of the run job).
    pub run_id: String,
    /// False when the same event had been delivered before: nothing new was added.
    pub created: bool,
}

/// Everything one worker invocation needs, built once per process.
pub struct WorkerRuntime<U, S, H, D> {
    /// The job handler.
    pub jobs: NightlyJobs<U, S, H>,
    /// Dead letters: run bookkeeping, then SQS.
    pub dead: RunAwareDeadLetters<D>,
    /// Concurrency, timeout, margin.
    pub worker: WorkerOptions,
    /// Drain budget when the invocation has no usable deadline (local emulators, tests).
    pub fallback_budget: Duration,
}

impl<U: UserSource, S: SuggestionSink, H: HistorySource, D: DeadLetterSink>
    WorkerRuntime<U, S, H, D>
{
    /// Handles one invocation. `deadline` is the Lambda context's deadline, when there is one.
    pub async fn handle(
        &self,
        payload: &Value,
        deadline: Option<SystemTime>,
    ) -> Result<WorkerReport, WorkerError> {
        let event = WorkerEvent::from_json(payload)?;
        let kind = match event {
            WorkerEvent::Scheduled { .. } => "scheduled",
            WorkerEvent::Drain => "drain",
            WorkerEvent::Manual { .. } => "manual",
        };
        let queue = &self.jobs.queue;
        let run = match event.run_request() {
            Some(request) => {
                let job = RunJob::from(request).to_job(&self.jobs.settings.job_options);
                let run_id = job.opts.job_id.clone().unwrap_or_default();
                let added = queue.add(&job.name, job.data, job.opts).await?;
                tracing::info!(run_id = %run_id, created = added.created, "run requested");
                Some(RunAdded {
                    run_id,
                    created: added.created,
                })
            }
            None => None,
        };

        let until = drain_deadline(
            deadline,
            SystemTime::now(),
            Instant::now(),
            self.fallback_budget,
        );
        let worker = Worker::new(queue, self.worker.clone());
        let drain = worker.drain(until, &self.jobs, &self.dead).await?;
        let counts = queue.counts().await?;

        // Out of time with work still ready: hand it to fresh invocations instead of waiting for the sweep.
        let ready = counts.waiting + counts.prioritized;
        let kicked = if drain.stopped_by == "deadline" && ready > 0 {
            let n = (ready.min(u64::from(self.jobs.settings.max_workers))) as u32;
            self.jobs.kick.kick(n).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "could not ask for more workers; the sweep schedule will pick the work up");
                0
            })
        } else {
            0
        };
        MetricRecord::new()
            .dimension("Event", kind)
            .count(names::JOBS_COMPLETED, drain.completed)
            .count(names::JOBS_FAILED, drain.failed)
            .millis(names::JOB_DURATION_MS, drain.elapsed_ms)
            .count(names::QUEUE_WAITING, ready)
            .count(names::QUEUE_DELAYED, counts.delayed)
            .count(names::QUEUE_FAILED, counts.failed)
            .property("stopped_by", drain.stopped_by)
            .emit();
        tracing::info!(
            event = kind,
            completed = drain.completed,
            failed = drain.failed,
            retried = drain.retried,
            left_waiting = drain.left_waiting,
            left_delayed = drain.left_delayed,
            kicked,
            "drain finished"
        );
        Ok(WorkerReport {
            event: kind,
            run,
            drain,
            counts,
            kicked,
        })
    }
}

/// The production wiring: DynamoDB users and matches, SQS dead letters, run records beside the queue.
pub type NightlyRuntime = WorkerRuntime<DynamoUsers, DynamoMatches, DynamoMatches, SqsDeadLetters>;

/// How long run records stay in Redis.
pub const RUN_RETENTION_SECS: u64 = 90 * 24 * 3600;

/// Builds the worker runtime on a [`State`]; `kick` is how it asks for more workers.
pub fn nightly_runtime(state: &State, kick: Arc<dyn WorkerKick>) -> NightlyRuntime {
    let config = &state.config;
    let runs = run_store(state);
    WorkerRuntime {
        jobs: NightlyJobs {
            queue: state.queue.clone(),
            runs: runs.clone(),
            users: state.users.clone(),
            sink: state.matches.clone(),
            history: state.matches.clone(),
            kick,
            settings: JobSettings::from_config(config),
        },
        dead: RunAwareDeadLetters {
            runs,
            inner: state.dead_letters.clone(),
        },
        worker: state.worker_options(),
        fallback_budget: config.worker_budget,
    }
}

/// The run records of the state's queue.
pub fn run_store(state: &State) -> RunStore {
    RunStore::new(
        state.queue.client().clone(),
        &state.config.queue_prefix,
        &state.config.queue_name,
        RUN_RETENTION_SECS,
    )
}

/// The kick for AWS: invoke the worker function when its name is known, else none.
pub fn lambda_kick(state: &State) -> Arc<dyn WorkerKick> {
    match &state.config.worker_function {
        Some(function) => Arc::new(LambdaKick::new(state.aws.lambda.clone(), function.clone())),
        None => Arc::new(NoKick),
    }
}

/// The instant to drain until: the Lambda deadline when it is in the future, else now + `fallback`.
pub fn drain_deadline(
    deadline: Option<SystemTime>,
    now: SystemTime,
    now_instant: Instant,
    fallback: Duration,
) -> Instant {
    match deadline.and_then(|d| d.duration_since(now).ok()) {
        Some(left) if !left.is_zero() => now_instant + left,
        _ => now_instant + fallback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_future_lambda_deadline_is_used_as_is() {
        let now = SystemTime::now();
        let at = Instant::now();
        let until = drain_deadline(
            Some(now + Duration::from_secs(600)),
            now,
            at,
            Duration::from_secs(30),
        );
        assert_eq!(until - at, Duration::from_secs(600));
    }

    #[test]
    fn a_missing_or_past_deadline_falls_back_to_the_configured_budget() {
        let now = SystemTime::now();
        let at = Instant::now();
        assert_eq!(
            drain_deadline(None, now, at, Duration::from_secs(30)) - at,
            Duration::from_secs(30)
        );
        let past = now - Duration::from_secs(5);
        assert_eq!(
            drain_deadline(Some(past), now, at, Duration::from_secs(30)) - at,
            Duration::from_secs(30)
        );
    }
}
