//! What the HTTP edge needs to know about runs, behind `RunStatusSource` (the run records are the worker's).

use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

/// Where a run stands, as the check reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunPhase {
    /// Jobs of the run are still pending.
    Running,
    /// Every region finished.
    Finished,
    /// Every region is over, but some failed for good.
    Partial,
    /// The run failed as a whole (its run job failed its last attempt).
    Failed,
}

/// The counts of one region of a run. Counts only: never a user id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RegionCounts {
    /// Users read from the users table.
    pub users: u64,
    /// Records skipped (bad or inactive).
    pub skipped: u64,
    /// Pairs suggested.
    pub suggestions: u64,
    /// True when the region failed for good.
    pub failed: bool,
}

/// One run, as `GET /api/prematch/check` shows it and the trigger consults it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunStatus {
    /// `run-2026-12-03` (schedule) or `manual-2026-12-03-1a2b3c4d`.
    pub run_id: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    /// The date matched for.
    pub run_date: NaiveDate,
    /// Where it stands.
    pub state: RunPhase,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When it finished, if it did.
    pub finished_at: Option<DateTime<Utc>>,
    /// Wall time from start to finish, when finished.
    pub duration_ms: Option<i64>,
    /// Regions not yet over.
    pub pending_regions: u64,
    /// Counts per region reported so far.
    pub regions: BTreeMap<String, RegionCounts>,
}

/// Why run records could not be read. The message must not carry personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("run records: {0}")]
pub struct RunSourceError(pub String);

/// Where the HTTP edge reads runs from; the worker's run store implements it.
pub trait RunStatusSource: Send + Sync {
    /// The most recently started run, if any.
    fn latest_run(&self) -> impl Future<Output = Result<Option<RunStatus>, RunSourceError>> + Send;
    /// The run with this id, if it is recorded.
    fn run(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<RunStatus>, RunSourceError>> + Send;
}

/// A source that knows no runs: for set-ups (and tests) where run records are not wired yet.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRunRecords;

impl RunStatusSource for NoRunRecords {
    async fn latest_run(&self) -> Result<Option<RunStatus>, RunSourceError> {
        Ok(None)
    }
    async fn run(&self, _run_id: &str) -> Result<Option<RunStatus>, RunSourceError> {
        Ok(None)
    }
}

/// Fixed runs in memory, for tests and the CLI's dry runs.
#[derive(Debug, Clone, Default)]
pub struct MemoryRuns {
    /// Runs, in start order (the last is the latest).
    pub runs: Vec<RunStatus>,
}

impl RunStatusSource for MemoryRuns {
    async fn latest_run(&self) -> Result<Option<RunStatus>, RunSourceError> {
        Ok(self.runs.iter().max_by_key(|r| r.started_at).cloned())
    }
    async fn run(&self, run_id: &str) -> Result<Option<RunStatus>, RunSourceError> {
        Ok(self.runs.iter().find(|r| r.run_id == run_id).cloned())
    }
}

/// The worker's run records (`jobs::runs::RunStore`, in Redis) as the HTTP edge sees them.
impl RunStatusSource for crate::jobs::runs::RunStore {
    async fn latest_run(&self) -> Result<Option<RunStatus>, RunSourceError> {
        let record = self
            .latest()
            .await
            .map_err(|e| RunSourceError(e.to_string()))?;
        Ok(record.as_ref().map(run_status))
    }

    async fn run(&self, run_id: &str) -> Result<Option<RunStatus>, RunSourceError> {
        let record = self
            .get(run_id)
            .await
            .map_err(|e| RunSourceError(e.to_string()))?;
        Ok(record.as_ref().map(run_status))
    }
}

/// The view of a stored run: counts per region, never anything about a user.
pub fn run_status(record: &crate::jobs::runs::RunRecord) -> RunStatus {
    use crate::jobs::event::Trigger;
    use crate::jobs::runs::RunState;
    let regions = record
        .results
        .iter()
        .map(|(region, summary)| {
            let counts = RegionCounts {
                users: summary.users_read,
                skipped: summary.skipped.values().sum(),
                suggestions: summary.suggestions,
                failed: summary.error.is_some()
                    || record.failed_regions.iter().any(|r| r == region),
            };
            (region.clone(), counts)
        })
        .collect();
    RunStatus {
        run_id: record.run_id.clone(),
        trigger: match record.trigger {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
        }
        .to_string(),
        run_date: record.run_date,
        state: match record.state {
            RunState::Running => RunPhase::Running,
            RunState::Finished => RunPhase::Finished,
            RunState::Partial => RunPhase::Partial,
        },
        started_at: record.started_at,
        finished_at: record.finished_at,
        duration_ms: record.duration_ms(),
        pending_regions: record.pending,
        regions,
    }
}
