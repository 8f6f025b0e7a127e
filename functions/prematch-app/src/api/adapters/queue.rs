//! The queue behind the check's `QueueProbe` and the trigger's `RunQueue`: `prematch_queue::Queue`
//! plus the manual-run slots on the same Redis connection.

use fred::prelude::*;
use prematch_queue::{JobOptions, JobState, Queue};

use super::redis::ManualRunSlots;
use crate::api::check::{JobTiming, Outcomes, ProbeError, QueueCounts, QueueProbe};
use crate::api::trigger::{JobPhase, QueueFailure, RunJob, RunQueue, SlotClaim};

/// The job name of a run (DESIGN §3.3).
pub const RUN_JOB_NAME: &str = "run";

/// The queue and the slots, sharing one Redis client.
#[derive(Clone)]
pub struct QueueAdapter {
    queue: Queue,
    slots: ManualRunSlots,
}

impl QueueAdapter {
    /// Wraps `queue`; the slots live under `key_prefix` on the queue's client.
    pub fn new(queue: Queue, key_prefix: &str) -> QueueAdapter {
        let slots = ManualRunSlots::new(queue.client().clone(), key_prefix);
        QueueAdapter { queue, slots }
    }

    /// The queue itself.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }
}

fn probe_error(e: impl std::fmt::Display) -> ProbeError {
    ProbeError(e.to_string())
}

impl QueueProbe for QueueAdapter {
    async fn ping(&self) -> Result<std::time::Duration, ProbeError> {
        self.queue.ping().await.map_err(probe_error)
    }

    async fn counts(&self) -> Result<QueueCounts, ProbeError> {
        let c = self.queue.counts().await.map_err(probe_error)?;
        Ok(QueueCounts {
            // BullMQ v6 counts a legacy `paused` list as waiting.
            waiting: c.waiting + c.paused,
            active: c.active,
            delayed: c.delayed,
            prioritized: c.prioritized,
            waiting_children: c.waiting_children,
            completed: c.completed,
            failed: c.failed,
        })
    }

    async fn is_paused(&self) -> Result<bool, ProbeError> {
        self.queue.is_paused().await.map_err(probe_error)
    }

    async fn outcomes_since(&self, since_ms: i64) -> Result<Outcomes, ProbeError> {
        // `completed` and `failed` are scored by finishedOn (ms), so a window is one ZCOUNT each.
        // Jobs removed by removeOnComplete/removeOnFail are not counted: the rates are of kept jobs.
        let client = self.queue.client();
        let pipeline = client.pipeline();
        let _: () = pipeline
            .zcount(self.queue.key("completed"), since_ms as f64, f64::INFINITY)
            .await
            .map_err(probe_error)?;
        let _: () = pipeline
            .zcount(self.queue.key("failed"), since_ms as f64, f64::INFINITY)
            .await
            .map_err(probe_error)?;
        let counts: Vec<u64> = pipeline.all().await.map_err(probe_error)?;
        match counts.as_slice() {
            [completed, failed] => Ok(Outcomes {
                completed: *completed,
                failed: *failed,
            }),
            _ => Err(ProbeError("redis: unexpected ZCOUNT reply".into())),
        }
    }

    async fn recent_timings(&self, limit: usize) -> Result<Vec<JobTiming>, ProbeError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Only the two timestamps of each job: the job data is never read (and never shown).
        let client = self.queue.client();
        let ids: Vec<String> = client
            .zrevrange(self.queue.key("completed"), 0, limit as i64 - 1, false)
            .await
            .map_err(probe_error)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let pipeline = client.pipeline();
        for id in &ids {
            let _: () = pipeline
                .hmget(self.queue.key(id), vec!["processedOn", "finishedOn"])
                .await
                .map_err(probe_error)?;
        }
        let rows: Vec<Vec<Option<String>>> = pipeline.all().await.map_err(probe_error)?;
        Ok(rows
            .iter()
            .filter_map(|row| match row.as_slice() {
                [Some(p), Some(f)] => Some(JobTiming {
                    processed_on: p.parse().ok()?,
                    finished_on: f.parse().ok()?,
                }),
                _ => None,
            })
            .collect())
    }
}

fn queue_failure(e: impl std::fmt::Display) -> QueueFailure {
    QueueFailure(e.to_string())
}

impl RunQueue for QueueAdapter {
    async fn claim_manual_slot(
        &self,
        run_date: chrono::NaiveDate,
        run_id: &str,
        hold: std::time::Duration,
    ) -> Result<SlotClaim, QueueFailure> {
        self.slots.claim(run_date, run_id, hold).await
    }

    async fn take_over_manual_slot(
        &self,
        run_date: chrono::NaiveDate,
        stale: &str,
        run_id: &str,
        hold: std::time::Duration,
    ) -> Result<bool, QueueFailure> {
        self.slots.take_over(run_date, stale, run_id, hold).await
    }

    async fn release_manual_slot(
        &self,
        run_date: chrono::NaiveDate,
        run_id: &str,
    ) -> Result<(), QueueFailure> {
        self.slots.release(run_date, run_id).await
    }

    async fn add_run_job(&self, job: &RunJob) -> Result<String, QueueFailure> {
        // The worker's defaults (attempts, exponential backoff, retention), so a manual run is kept
        // and retried exactly like a scheduled one.
        let opts = JobOptions {
            job_id: Some(job.job_id.clone()),
            ..crate::jobs::default_job_options(job.attempts, job.backoff_delay)
        };
        let added = self
            .queue
            .add(RUN_JOB_NAME, job.data.clone(), opts)
            .await
            .map_err(queue_failure)?;
        if !added.created {
            // The id is random; an existing job means a collision, and that job is not ours.
            return Err(QueueFailure(format!(
                "a job with id {} already exists",
                added.id
            )));
        }
        Ok(added.id)
    }

    async fn job_phase(&self, job_id: &str) -> Result<Option<JobPhase>, QueueFailure> {
        let state = self.queue.get_state(job_id).await.map_err(queue_failure)?;
        Ok(state.map(|s| match s {
            JobState::Completed => JobPhase::Completed,
            JobState::Failed => JobPhase::Failed,
            JobState::Waiting
            | JobState::Active
            | JobState::Delayed
            | JobState::Prioritized
            | JobState::WaitingChildren
            | JobState::Paused => JobPhase::Pending,
        }))
    }
}
