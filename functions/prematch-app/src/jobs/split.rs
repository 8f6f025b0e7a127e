//! Regions too large for one job: scored in shards, selected once, written in parts.
//!
//! A `region` job that reads more than `REGION_SHARD_USERS` active users stores a snapshot of them
//! (with the history) and adds one `region-shard` job per slice of users. Each shard compiles the
//! snapshot and builds the candidate lists of its own users only ([`owner_candidates`]), so the
//! shards' edges together are exactly the unsplit candidate graph. The shard that finds all shards
//! done adds `region-select`, which merges the edges, selects and stores the pairs, then adds
//! `region-write` jobs that write the suggestions in parts. The last part reports the region to its
//! run with the same summary an unsplit region gives. Every step is idempotent: ids are
//! deterministic, a retried step rewrites its own keys with the same values, and a step that finds
//! its region already reported ends at once.

use std::time::Instant;

use chrono::{NaiveDate, Utc};
use prematch_engine::{
    owner_candidates, select, suggestions, users_on, CandidateSet, HistoryPair, SelectionMethod,
};
use prematch_queue::{JobContext, JobError, JobOptions, NewJob};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::region::{self, RegionJob, RegionUsers};
use super::runs::RegionSummary;
use super::split_store::{
    SelectResult, ShardResult, SplitError, SplitPlan, SplitStore, WriteResult,
};
use super::{report_region, store_error, NightlyJobs};
use crate::dynamo::{HistorySource, RunRef, SuggestionSink, UserSource};
use crate::metrics::{names, MetricRecord};

/// Job name of a scoring shard.
pub const SHARD_JOB: &str = "region-shard";
/// Job name of the selection of a split region.
pub const SELECT_JOB: &str = "region-select";
/// Job name of one write part of a split region.
pub const WRITE_JOB: &str = "region-write";

/// Measured cost of the ε-scaled auction per candidate edge at a million users (29–44 s for 25 M
/// edges on this project's 2-core machine, engine README §5), rounded up: the budget check below
/// uses it.
const AUCTION_SECS_PER_EDGE: f64 = 2.5e-6;

/// The payload of `region-shard`, `region-select` and `region-write` jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitJob {
    /// The run.
    pub run_id: String,
    /// The region.
    pub region: String,
    /// The date matched for.
    pub run_date: NaiveDate,
    /// The shard or write part (0 for the selection).
    #[serde(default)]
    pub part: u32,
}

impl SplitJob {
    /// Reads the payload; a malformed one is a permanent failure.
    pub fn from_data(name: &str, data: &Value) -> Result<SplitJob, JobError> {
        serde_json::from_value(data.clone())
            .map_err(|e| JobError::permanent(format!("malformed {name} job data: {e}")))
    }

    /// `shard-2026-12-03-eu-west-3`, `select-2026-12-03-eu-west`, `write-2026-12-03-eu-west-0`.
    pub fn job_id(name: &str, run_id: &str, region: &str, part: u32) -> String {
        let region_id = RegionJob::job_id(run_id, region);
        let tail = region_id.strip_prefix("region-").unwrap_or(&region_id);
        match name {
            SELECT_JOB => format!("select-{tail}"),
            SHARD_JOB => format!("shard-{tail}-{part}"),
            _ => format!("write-{tail}-{part}"),
        }
    }

    fn new_job(
        name: &str,
        run_id: &str,
        region: &str,
        run_date: NaiveDate,
        part: u32,
        opts: &JobOptions,
    ) -> NewJob {
        let data =
            json!({ "run_id": run_id, "region": region, "run_date": run_date, "part": part });
        NewJob::new(name, data).with_opts(JobOptions {
            job_id: Some(SplitJob::job_id(name, run_id, region, part)),
            ..opts.clone()
        })
    }
}

/// How many scoring shards `users` users need at `per_shard` users each.
pub fn shard_count(users: usize, per_shard: u32) -> u32 {
    users.div_ceil(per_shard.max(1) as usize).max(1) as u32
}

/// The users (compiled indices) of shard `part` of `shards` in a region of `n`: equal slices.
pub fn shard_range(n: usize, shards: u32, part: u32) -> std::ops::Range<u32> {
    let slice = |p: u32| (n as u64 * u64::from(p) / u64::from(shards.max(1))) as u32;
    slice(part)..slice(part + 1)
}

/// The selection method that fits a job: the auction unless its measured cost for `edges`
/// candidate edges would take more than half the job timeout, then greedy (about 3× faster at a
/// million users, ~7% less total score).
pub fn method_for(edges: usize, configured: SelectionMethod, timeout_secs: u64) -> SelectionMethod {
    if configured == SelectionMethod::Auction
        && edges as f64 * AUCTION_SECS_PER_EDGE > timeout_secs as f64 / 2.0
    {
        SelectionMethod::Greedy
    } else {
        configured
    }
}

fn split_error(e: SplitError) -> JobError {
    match e {
        SplitError::Redis(_) => JobError::retryable(e.to_string()),
        SplitError::Corrupt { .. } => JobError::permanent(e.to_string()),
        SplitError::Task(_) => JobError::retryable(e.to_string()),
    }
}

fn blocking_error(e: tokio::task::JoinError) -> JobError {
    JobError::retryable(format!("matching task failed: {e}"))
}

impl<U: UserSource, S: SuggestionSink, H: HistorySource> NightlyJobs<U, S, H> {
    pub(super) fn split_store(&self, run_id: &str, region: &str) -> SplitStore {
        let q = self.queue.settings();
        SplitStore::new(
            self.queue.client().clone(),
            &q.prefix,
            &q.name,
            run_id,
            region,
        )
    }

    fn shard_jobs(&self, rj: &RegionJob, shards: u32) -> Vec<NewJob> {
        (0..shards)
            .map(|k| {
                SplitJob::new_job(
                    SHARD_JOB,
                    &rj.run_id,
                    &rj.region,
                    rj.run_date,
                    k,
                    &self.settings.job_options,
                )
            })
            .collect()
    }

    /// A retried `region` job whose snapshot is complete only makes sure its shards are queued.
    pub(super) async fn resume_split(&self, rj: &RegionJob) -> Result<Option<Value>, JobError> {
        let store = self.split_store(&rj.run_id, &rj.region);
        let Some(plan) = store.plan().await.map_err(split_error)? else {
            return Ok(None);
        };
        let (added, _) = self
            .add_and_kick(self.shard_jobs(rj, plan.shards), &rj.run_id)
            .await?;
        Ok(Some(
            json!({ "split": plan.shards, "users": plan.users, "shard_jobs_added": added }),
        ))
    }

    /// Stores the snapshot of a large region and adds its scoring shards.
    pub(super) async fn split_region(
        &self,
        job: &JobContext,
        rj: &RegionJob,
        users: RegionUsers,
        history: Vec<HistoryPair>,
        phases: region::PhaseMillis,
        started_ms: i64,
    ) -> Result<Value, JobError> {
        let shards = shard_count(users.users.len(), self.settings.region_shard_users);
        let store = self.split_store(&rj.run_id, &rj.region);
        let plan = SplitPlan {
            started_ms,
            users_read: users.read,
            skipped: users.skipped.clone(),
            shards,
            read_ms: phases.read,
            history_ms: phases.history,
            ..SplitPlan::default()
        };
        let plan = store
            .save_snapshot(&users.users, &history, plan)
            .await
            .map_err(split_error)?;
        let (added, _) = self
            .add_and_kick(self.shard_jobs(rj, shards), &rj.run_id)
            .await?;
        region::report_progress(
            job,
            "split",
            json!({ "users": plan.users, "shards": shards }),
        )
        .await;
        tracing::info!(run_id = %rj.run_id, region = %rj.region, users = plan.users, shards, added, "region split into scoring shards");
        Ok(json!({ "split": shards, "users": plan.users, "shard_jobs_added": added }))
    }

    /// Reads a step's payload and its split's plan; a step of a region already reported has
    /// nothing left to do (a late duplicate, or a retry after its work was counted).
    async fn begin(&self, name: &str, job: &JobContext) -> Result<Step, JobError> {
        let sj = SplitJob::from_data(name, &job.data)?;
        let store = self.split_store(&sj.run_id, &sj.region);
        if store.is_reported().await.map_err(split_error)? {
            tracing::info!(run_id = %sj.run_id, region = %sj.region, job = name, part = sj.part, "region already reported; nothing to do");
            return Ok(Step::Done(json!({ "skipped": "region already reported" })));
        }
        let plan = store.plan().await.map_err(split_error)?.ok_or_else(|| {
            JobError::permanent(
                "the region's snapshot is missing (expired, or its region job never finished)",
            )
        })?;
        Ok(Step::Go(sj, store, plan))
    }

    /// `region-shard`: the candidate lists of one slice of the region's users.
    pub(super) async fn shard_job(&self, job: &JobContext) -> Result<Value, JobError> {
        let (sj, store, plan) = match self.begin(SHARD_JOB, job).await? {
            Step::Go(sj, store, plan) => (sj, store, plan),
            Step::Done(value) => return Ok(value),
        };
        if sj.part >= plan.shards {
            return Err(JobError::permanent(format!(
                "shard {} of a region split into {}",
                sj.part, plan.shards
            )));
        }
        let cfg = self.settings.matching.clone();
        let region = store
            .compiled_snapshot(&plan, sj.run_date, &cfg)
            .await
            .map_err(split_error)?;
        region::report_progress(
            job,
            "scoring",
            json!({ "shard": sj.part, "shards": plan.shards }),
        )
        .await;
        let t = Instant::now();
        let (shards, part) = (plan.shards, sj.part);
        let (n, cands) = tokio::task::spawn_blocking(move || {
            let range = shard_range(region.len(), shards, part);
            let k = cfg.suggestions_per_user.max(1);
            let cands =
                owner_candidates(&region, range, cfg.candidates_per_user(), k, &cfg.weights);
            (region.len(), cands)
        })
        .await
        .map_err(blocking_error)?;
        let result = ShardResult {
            users: n as u64,
            pairs_scanned: cands.pairs_scanned,
            feasible_directed: cands.feasible_directed,
            best_k_half_sum: cands.best_k_half_sum,
            ms: region::millis_since(t),
            ..ShardResult::default()
        };
        let edges = cands.edges.len();
        let done = store
            .finish_shard(sj.part, &cands.edges, result)
            .await
            .map_err(split_error)?;
        if done >= plan.shards {
            let select = SplitJob::new_job(
                SELECT_JOB,
                &sj.run_id,
                &sj.region,
                sj.run_date,
                0,
                &self.settings.job_options,
            );
            self.add_and_kick(vec![select], &sj.run_id).await?;
        }
        tracing::info!(run_id = %sj.run_id, region = %sj.region, shard = sj.part, shards = plan.shards, edges, done, "shard scored");
        Ok(
            json!({ "shard": sj.part, "shards": plan.shards, "edges": edges, "pairs_scanned": cands.pairs_scanned, "shards_done": done }),
        )
    }

    /// `region-select`: merges the shards' edges, selects, stores the pairs and adds the writes.
    pub(super) async fn select_job(&self, job: &JobContext) -> Result<Value, JobError> {
        let (sj, store, plan) = match self.begin(SELECT_JOB, job).await? {
            Step::Go(sj, store, plan) => (sj, store, plan),
            Step::Done(value) => return Ok(value),
        };
        let shards = store
            .shard_results(plan.shards)
            .await
            .map_err(split_error)?
            .ok_or_else(|| JobError::retryable("not every shard of the region is done yet"))?;
        let t = Instant::now();
        let mut parts = Vec::with_capacity(shards.len());
        for (k, r) in shards.iter().enumerate() {
            let mut edges = Vec::with_capacity(r.edges as usize);
            store
                .shard_edges(k as u32, r, &mut edges)
                .await
                .map_err(split_error)?;
            parts.push(CandidateSet {
                edges,
                ..CandidateSet::default()
            });
        }
        let n = shards.first().map_or(0, |r| r.users) as usize;
        if shards.iter().any(|r| r.users as usize != n) {
            return Err(JobError::permanent(
                "the shards compiled different numbers of users",
            ));
        }
        let mut cfg = self.settings.matching.selection_config();
        let timeout = self.settings.job_timeout_secs;
        let (pairs, with_partner, covered, method, fell_back) =
            tokio::task::spawn_blocking(move || {
                let merged = CandidateSet::merge(parts);
                cfg.method = method_for(merged.edges.len(), cfg.method, timeout);
                let selection = select(n, &merged.edges, &cfg);
                let with_partner = users_on(n, &merged.edges);
                let covered = users_on(n, &selection.pairs);
                (
                    selection.pairs,
                    with_partner,
                    covered,
                    selection.method_used,
                    selection.fell_back,
                )
            })
            .await
            .map_err(blocking_error)?;
        let per_part = self.settings.region_write_pairs.max(1) as usize;
        let result = SelectResult {
            parts: pairs.len().div_ceil(per_part).max(1) as u32,
            users_with_feasible_partner: with_partner as u64,
            users_covered: covered as u64,
            method: match method {
                SelectionMethod::Auction => "auction".to_string(),
                SelectionMethod::Greedy => "greedy".to_string(),
            },
            ms: region::millis_since(t),
            ..SelectResult::default()
        };
        let result = store
            .finish_select(&pairs, result)
            .await
            .map_err(split_error)?;
        let writes = (0..result.parts)
            .map(|w| {
                SplitJob::new_job(
                    WRITE_JOB,
                    &sj.run_id,
                    &sj.region,
                    sj.run_date,
                    w,
                    &self.settings.job_options,
                )
            })
            .collect();
        let (added, _) = self.add_and_kick(writes, &sj.run_id).await?;
        tracing::info!(run_id = %sj.run_id, region = %sj.region, pairs = result.pairs, method = %result.method, fell_back, parts = result.parts, "split region selected");
        Ok(
            json!({ "pairs": result.pairs, "method": result.method, "fell_back": fell_back, "write_parts": result.parts, "write_jobs_added": added }),
        )
    }

    /// `region-write`: the suggestions of one part of the selected pairs; the last part reports
    /// the region.
    pub(super) async fn write_job(&self, job: &JobContext) -> Result<Value, JobError> {
        let (sj, store, plan) = match self.begin(WRITE_JOB, job).await? {
            Step::Go(sj, store, plan) => (sj, store, plan),
            Step::Done(value) => return Ok(value),
        };
        let selected = store
            .select_result()
            .await
            .map_err(split_error)?
            .ok_or_else(|| JobError::permanent("the region's selection is missing"))?;
        if sj.part >= selected.parts {
            return Err(JobError::permanent(format!(
                "write part {} of {}",
                sj.part, selected.parts
            )));
        }
        let t = Instant::now();
        let per_part = self.settings.region_write_pairs.max(1) as usize;
        let from = sj.part as usize * per_part;
        let slice = store
            .pairs(&selected, from..from + per_part)
            .await
            .map_err(split_error)?;
        let region = store
            .compiled_snapshot(&plan, sj.run_date, &self.settings.matching)
            .await
            .map_err(split_error)?;
        let made = tokio::task::spawn_blocking(move || suggestions(&region, &slice))
            .await
            .map_err(blocking_error)?;
        let run_ref = RunRef {
            run_id: sj.run_id.clone(),
            run_date: sj.run_date,
            region: sj.region.clone(),
        };
        let report = self
            .sink
            .write(&run_ref, &made)
            .await
            .map_err(store_error)?;
        if !report.is_complete() {
            return Err(JobError::retryable(format!(
                "{} of {} suggestion items stayed unprocessed after retries",
                report.failed,
                report.failed + report.written
            )));
        }
        let result = WriteResult {
            items_written: report.written as u64,
            ms: region::millis_since(t),
        };
        let done = store
            .finish_write(sj.part, &result)
            .await
            .map_err(split_error)?;
        region::report_progress(
            job,
            "done",
            json!({ "items_written": result.items_written }),
        )
        .await;
        if done >= selected.parts {
            self.close_split(&store, &sj, &plan, &selected).await?;
        }
        Ok(
            json!({ "part": sj.part, "parts": selected.parts, "items_written": result.items_written, "parts_done": done }),
        )
    }

    /// Reports the split region to its run with totals over all its jobs, then frees its keys.
    async fn close_split(
        &self,
        store: &SplitStore,
        sj: &SplitJob,
        plan: &SplitPlan,
        selected: &SelectResult,
    ) -> Result<(), JobError> {
        let shards = store
            .shard_results(plan.shards)
            .await
            .map_err(split_error)?
            .unwrap_or_default();
        let writes = store.write_results().await.map_err(split_error)?;
        let users_matched = shards.first().map_or(0, |r| r.users);
        let summary = RegionSummary {
            users_read: plan.users_read,
            users_matched,
            skipped: plan.skipped.clone(),
            suggestions: selected.pairs,
            items_written: writes.iter().map(|w| w.items_written).sum(),
            users_uncovered: selected
                .users_with_feasible_partner
                .saturating_sub(selected.users_covered),
            duration_ms: (Utc::now().timestamp_millis() - plan.started_ms).max(0) as u64,
            read_ms: plan.read_ms,
            history_ms: plan.history_ms,
            match_ms: shards.iter().map(|r| r.ms).sum::<u64>() + selected.ms,
            write_ms: writes.iter().map(|w| w.ms).sum(),
            shards: Some(plan.shards),
            error: None,
        };
        report_region(&self.runs, &sj.run_id, &sj.region, &summary).await;
        MetricRecord::new()
            .dimension("JobName", "region")
            .count(names::USERS_PROCESSED, summary.users_matched)
            .count(
                names::USERS_SKIPPED,
                summary
                    .skipped
                    .iter()
                    .filter(|(k, _)| k.as_str() != "inactive")
                    .map(|(_, v)| v)
                    .sum(),
            )
            .count(names::SUGGESTIONS_WRITTEN, summary.items_written)
            .property("run_id", sj.run_id.as_str())
            .property("region", sj.region.as_str())
            .emit();
        tracing::info!(
            run_id = %sj.run_id, region = %sj.region, users = summary.users_read, matched = summary.users_matched,
            suggestions = summary.suggestions, uncovered = summary.users_uncovered, shards = plan.shards,
            method = %selected.method, "split region matched"
        );
        if let Err(e) = store.close(plan).await {
            // The keys expire anyway; the region's result is already recorded.
            tracing::warn!(run_id = %sj.run_id, region = %sj.region, error = %e, "could not free a split region's keys");
        }
        Ok(())
    }
}

/// Whether a step of a split region has work to do.
enum Step {
    /// Its region is already reported: this value is the job's result.
    Done(Value),
    /// The payload, the split's store and its plan.
    Go(SplitJob, SplitStore, SplitPlan),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_job_ids_are_deterministic_and_valid_bullmq_ids() {
        assert_eq!(
            SplitJob::job_id(SHARD_JOB, "run-2026-12-03", "eu-west", 3),
            "shard-2026-12-03-eu-west-3"
        );
        assert_eq!(
            SplitJob::job_id(SELECT_JOB, "run-2026-12-03", "eu-west", 0),
            "select-2026-12-03-eu-west"
        );
        assert_eq!(
            SplitJob::job_id(WRITE_JOB, "manual-2026-12-03-6f1c2a9b", "eu-west", 0),
            "write-manual-2026-12-03-6f1c2a9b-eu-west-0"
        );
        assert!(!SplitJob::job_id(WRITE_JOB, "run-2026-12-03", "eu-west", 1).contains(':'));
    }

    #[test]
    fn shards_cover_every_user_once_in_equal_slices() {
        for (n, shards) in [(10usize, 3u32), (1_000_001, 10), (5, 7), (0, 2)] {
            let ranges: Vec<_> = (0..shards).map(|p| shard_range(n, shards, p)).collect();
            assert_eq!(ranges[0].start, 0);
            assert_eq!(ranges.last().unwrap().end as usize, n);
            for w in ranges.windows(2) {
                assert_eq!(w[0].end, w[1].start);
            }
            let sizes: Vec<u32> = ranges.iter().map(|r| r.end - r.start).collect();
            assert!(
                sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
                "{sizes:?}"
            );
        }
        assert_eq!(shard_count(100_000, 100_000), 1);
        assert_eq!(shard_count(100_001, 100_000), 2);
        assert_eq!(shard_count(1_000_000, 100_000), 10);
        assert_eq!(shard_count(0, 100_000), 1);
    }

    #[test]
    fn the_auction_gives_way_to_greedy_only_when_it_would_not_fit_the_timeout() {
        assert_eq!(
            method_for(2_000_000, SelectionMethod::Auction, 300),
            SelectionMethod::Auction
        );
        assert_eq!(
            method_for(25_000_000, SelectionMethod::Auction, 300),
            SelectionMethod::Auction
        );
        assert_eq!(
            method_for(70_000_000, SelectionMethod::Auction, 300),
            SelectionMethod::Greedy
        );
        assert_eq!(
            method_for(70_000_000, SelectionMethod::Auction, 900),
            SelectionMethod::Auction
        );
        assert_eq!(
            method_for(10, SelectionMethod::Greedy, 300),
            SelectionMethod::Greedy
        );
    }

    #[test]
    fn malformed_split_data_is_a_permanent_failure_naming_the_job() {
        let err = SplitJob::from_data(SHARD_JOB, &json!({"run_id": "run-2026-12-03"})).unwrap_err();
        assert!(matches!(err, JobError::Permanent(_)));
        assert!(err.reason().contains("region-shard"), "{}", err.reason());
    }
}
