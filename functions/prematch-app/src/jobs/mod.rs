//! The nightly jobs on the queue: `run` fans out into `region` jobs, each matched as a whole.
//!
//! [`NightlyJobs`] is the queue's [`JobHandler`]: it knows the job names and the ports (users,
//! suggestions, history) but not where they live, so tests run it on in-memory fakes and the worker
//! on DynamoDB. [`RunAwareDeadLetters`] closes a run whose region failed for good before the dead
//! letter goes on to SQS.

pub mod event;
pub mod kick;
pub mod redrive;
pub mod region;
pub mod run;
pub mod runs;
pub mod split;
pub mod split_store;
pub mod worker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use prematch_engine::{HistoryPair, MatchConfig};
use prematch_queue::{
    Backoff, DeadLetter, DeadLetterSink, JobContext, JobError, JobHandler, JobOptions, KeepJobs,
    NewJob, Queue,
};
use serde_json::{json, Value};

use crate::config::Config;
use crate::dynamo::{HistorySource, RunRef, StoreError, SuggestionSink, UserSource};
use crate::metrics::{names, MetricRecord};
use kick::WorkerKick;
use region::{RegionJob, RegionUsers};
use run::RunJob;
use runs::{RegionReport, RegionSummary, RunStore};

/// Settings of the job handlers, taken from [`Config`] once.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Engine settings (K, history days, minimum overlap).
    pub matching: MatchConfig,
    /// `Limit` of one users Query page.
    pub page_size: u32,
    /// How long a region's history stays cached in Redis (a retried job does not re-read it).
    pub history_cache_ttl: Duration,
    /// Fixed regions, else the users table is asked.
    pub regions: Option<Vec<String>>,
    /// Options of every job we add: attempts, backoff, retention.
    pub job_options: JobOptions,
    /// Most workers a run asks for.
    pub max_workers: u32,
    /// Active users above which a region is split into scoring shards of this size.
    pub region_shard_users: u32,
    /// Suggestions per write job of a split region.
    pub region_write_pairs: u32,
    /// The job timeout, which the selection of a split region must fit.
    pub job_timeout_secs: u64,
}

impl JobSettings {
    /// The settings of DESIGN §3.3/§3.4 from the configuration.
    pub fn from_config(config: &Config) -> JobSettings {
        let matching = MatchConfig {
            suggestions_per_user: config.matches_per_user,
            history_days: config.history_days,
            min_overlap_minutes: config.min_overlap_minutes,
            ..MatchConfig::default()
        };
        JobSettings {
            matching,
            page_size: config.user_page_size,
            history_cache_ttl: config.history_cache_ttl,
            regions: config.regions.clone(),
            job_options: default_job_options(config.job_attempts, config.backoff_delay),
            max_workers: config.max_workers,
            region_shard_users: config.region_shard_users,
            region_write_pairs: config.region_write_pairs,
            job_timeout_secs: config.job_timeout.as_secs(),
        }
    }
}

/// `attempts: 3`, exponential backoff from 30 s, completed jobs kept a week (at most 1,000),
/// failed ones a month: enough for bull-board and `prematch dlq`, bounded for Redis memory.
pub fn default_job_options(attempts: u32, backoff_delay: Duration) -> JobOptions {
    JobOptions {
        attempts: Some(attempts),
        backoff: Some(Backoff::exponential(backoff_delay.as_millis() as u64)),
        remove_on_complete: Some(KeepJobs::Age {
            age_secs: 7 * 24 * 3600,
            count: Some(1000),
            limit: None,
        }),
        remove_on_fail: Some(KeepJobs::Age {
            age_secs: 30 * 24 * 3600,
            count: Some(10_000),
            limit: None,
        }),
        ..JobOptions::default()
    }
}

/// The handler of every prematch job.
pub struct NightlyJobs<U, S, H> {
    /// The queue region jobs are added to.
    pub queue: Queue,
    /// Run records.
    pub runs: RunStore,
    /// Users by region.
    pub users: U,
    /// Where suggestions go.
    pub sink: S,
    /// Who was suggested to whom lately.
    pub history: H,
    /// Asks for more workers when a run fans out.
    pub kick: Arc<dyn WorkerKick>,
    /// Settings.
    pub settings: JobSettings,
}

impl<U: UserSource, S: SuggestionSink, H: HistorySource> JobHandler for NightlyJobs<U, S, H> {
    async fn process(&self, job: JobContext) -> Result<Value, JobError> {
        let started = Instant::now();
        let name = job.name.clone();
        let id = job.id.clone();
        let result = match name.as_str() {
            "run" => self.run_job(&job).await,
            "region" => self.region_job(&job, started).await,
            split::SHARD_JOB => self.shard_job(&job).await,
            split::SELECT_JOB => self.select_job(&job).await,
            split::WRITE_JOB => self.write_job(&job).await,
            other => Err(JobError::permanent(format!(
                "unknown job name {other:?}: expected \"run\", \"region\", \"{}\", \"{}\" or \"{}\"",
                split::SHARD_JOB,
                split::SELECT_JOB,
                split::WRITE_JOB
            ))),
        };
        let outcome = if result.is_ok() {
            "completed"
        } else {
            "failed"
        };
        match &result {
            Ok(_) => {
                tracing::info!(job_id = %id, job_name = %name, ms = started.elapsed().as_millis() as u64, "job completed")
            }
            Err(e) => {
                tracing::warn!(job_id = %id, job_name = %name, reason = e.reason(), "job attempt failed")
            }
        }
        MetricRecord::new()
            .dimension("JobName", name.as_str())
            .count(names::JOBS_COMPLETED, u64::from(result.is_ok()))
            .count(names::JOBS_FAILED, u64::from(result.is_err()))
            .millis(names::JOB_DURATION_MS, started.elapsed().as_millis() as u64)
            .property("job_id", id.as_str())
            .property("outcome", outcome)
            .emit();
        result
    }
}

impl<U: UserSource, S: SuggestionSink, H: HistorySource> NightlyJobs<U, S, H> {
    async fn run_job(&self, job: &JobContext) -> Result<Value, JobError> {
        let run = RunJob::from_data(&job.data)?;
        let regions = match (&run.regions, &self.settings.regions) {
            (Some(r), _) | (None, Some(r)) => r.clone(),
            (None, None) => self.users.list_regions().await.map_err(store_error)?,
        };
        let created = self
            .runs
            .create(&run.run_id, run.trigger, run.run_date, &regions, Utc::now())
            .await
            .map_err(|e| JobError::retryable(e.to_string()))?;
        let jobs = run.region_jobs(&regions, &self.settings.job_options);
        let (new_jobs, kicked) = self.add_and_kick(jobs, &run.run_id).await?;
        tracing::info!(run_id = %run.run_id, regions = regions.len(), new_jobs, kicked, created, "run fanned out");
        Ok(
            json!({ "run_id": run.run_id, "regions": regions, "region_jobs_added": new_jobs, "workers_kicked": kicked }),
        )
    }

    /// Adds jobs, then asks for a worker per new job beyond the first (this worker takes one
    /// itself), up to `MAX_WORKERS − 1`. Returns (jobs created, workers asked for).
    async fn add_and_kick(&self, jobs: Vec<NewJob>, run_id: &str) -> Result<(u32, u32), JobError> {
        let added = self
            .queue
            .add_bulk(jobs)
            .await
            .map_err(|e| JobError::retryable(e.to_string()))?;
        let new_jobs = added.iter().filter(|a| a.created).count() as u32;
        let wanted = new_jobs
            .saturating_sub(1)
            .min(self.settings.max_workers.saturating_sub(1));
        let kicked = if wanted > 0 {
            self.kick.kick(wanted).await.unwrap_or_else(|e| {
                tracing::warn!(run_id, error = %e, "could not ask for more workers; the ones running go on");
                0
            })
        } else {
            0
        };
        Ok((new_jobs, kicked))
    }

    async fn region_job(&self, job: &JobContext, started: Instant) -> Result<Value, JobError> {
        let rj = RegionJob::from_data(&job.data)?;
        let started_ms = Utc::now().timestamp_millis();
        if let Some(resumed) = self.resume_split(&rj).await? {
            return Ok(resumed);
        }
        let mut phases = region::PhaseMillis::default();
        let t = Instant::now();
        let mut users = RegionUsers::default();
        let mut cursor = None;
        loop {
            let page = self
                .users
                .region_page(&rj.region, cursor.as_ref(), self.settings.page_size)
                .await
                .map_err(store_error)?;
            users.pages += 1;
            for item in &page.items {
                users.add_record(&rj.region, item);
            }
            if users.pages % 20 == 0 {
                region::report_progress(
                    job,
                    "reading",
                    json!({"pages": users.pages, "users": users.read}),
                )
                .await;
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        phases.read = region::millis_since(t);
        region::report_progress(
            job,
            "matching",
            json!({"pages": users.pages, "users": users.read}),
        )
        .await;

        let t = Instant::now();
        let history = self.region_history(&rj).await?;
        phases.history = region::millis_since(t);
        if users.users.len() > self.settings.region_shard_users as usize {
            return self
                .split_region(job, &rj, users, history, phases, started_ms)
                .await;
        }
        let matched_users = std::mem::take(&mut users.users);
        let t = Instant::now();
        let outcome = region::match_users(
            matched_users,
            history,
            rj.run_date,
            self.settings.matching.clone(),
        )
        .await?;
        phases.matching = region::millis_since(t);
        region::report_progress(
            job,
            "writing",
            json!({"pairs_scanned": outcome.stats.pairs_scanned, "suggestions": outcome.suggestions.len()}),
        )
        .await;

        let run_ref = RunRef {
            run_id: rj.run_id.clone(),
            run_date: rj.run_date,
            region: rj.region.clone(),
        };
        let t = Instant::now();
        let report = self
            .sink
            .write(&run_ref, &outcome.suggestions)
            .await
            .map_err(store_error)?;
        phases.write = region::millis_since(t);
        if !report.is_complete() {
            return Err(JobError::retryable(format!(
                "{} of {} suggestion items stayed unprocessed after retries",
                report.failed,
                report.failed + report.written
            )));
        }
        let summary = region::summarize(&users, &outcome, report.written as u64, started, phases);
        region::report_progress(job, "done", json!({"items_written": report.written})).await;
        MetricRecord::new()
            .dimension("JobName", "region")
            .count(names::USERS_PROCESSED, summary.users_matched)
            .count(names::USERS_SKIPPED, users.malformed())
            .count(names::SUGGESTIONS_WRITTEN, summary.items_written)
            .property("run_id", rj.run_id.as_str())
            .property("region", rj.region.as_str())
            .emit();
        tracing::info!(
            run_id = %rj.run_id, region = %rj.region, users = summary.users_read, matched = summary.users_matched,
            skipped = users.malformed(), suggestions = summary.suggestions, uncovered = summary.users_uncovered,
            select = ?outcome.stats.selection, "region matched"
        );
        self.report(&rj, &summary).await;
        let mut value = serde_json::to_value(&summary).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut value {
            map.insert(
                "engine".to_string(),
                serde_json::to_value(&outcome.stats).unwrap_or(Value::Null),
            );
        }
        Ok(value)
    }

    /// Recent pairs of the region, from the Redis cache when a previous attempt already read them.
    async fn region_history(&self, rj: &RegionJob) -> Result<Vec<HistoryPair>, JobError> {
        let cache = HistoryCache::new(&self.queue, rj, self.settings.history_cache_ttl);
        if let Some(pairs) = cache.get().await {
            return Ok(pairs);
        }
        let pairs = self
            .history
            .recent_pairs(&rj.region, rj.run_date, self.settings.matching.history_days)
            .await
            .map_err(store_error)?;
        cache.put(&pairs).await;
        Ok(pairs)
    }

    async fn report(&self, rj: &RegionJob, summary: &RegionSummary) {
        report_region(&self.runs, &rj.run_id, &rj.region, summary).await;
    }
}

/// Records a region's end on its run and logs the run's totals when it was the last one.
async fn report_region(runs: &RunStore, run_id: &str, region: &str, summary: &RegionSummary) {
    match runs
        .report_region(run_id, region, summary, Utc::now())
        .await
    {
        Ok(RegionReport::RunOver | RegionReport::Recovered) => match runs.get(run_id).await {
            Ok(Some(run)) => {
                let totals = run.totals();
                tracing::info!(
                    run_id, state = ?run.state, regions = run.regions.len(), users = totals.users_read,
                    suggestions = totals.suggestions, failed_regions = ?run.failed_regions,
                    duration_ms = run.duration_ms().unwrap_or(0), "run finished"
                );
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(run_id, error = %e, "run finished but could not be read back"),
        },
        Ok(RegionReport::UnknownRun) => {
            tracing::warn!(run_id, region, "region reported for an unknown run")
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(run_id, region, error = %e, "could not record the region on its run")
        }
    }
}

fn store_error(e: StoreError) -> JobError {
    if e.is_retryable() {
        JobError::retryable(e.to_string())
    } else {
        JobError::permanent(e.to_string())
    }
}

/// The history of a region for a run, cached in Redis as compact JSON.
struct HistoryCache<'a> {
    queue: &'a Queue,
    key: String,
    ttl: Duration,
}

impl<'a> HistoryCache<'a> {
    fn new(queue: &'a Queue, rj: &RegionJob, ttl: Duration) -> HistoryCache<'a> {
        let key = queue.key(&format!("prematch:history:{}:{}", rj.run_date, rj.region));
        HistoryCache { queue, key, ttl }
    }

    async fn get(&self) -> Option<Vec<HistoryPair>> {
        use fred::prelude::*;
        let raw: Option<String> = self.queue.client().get(&self.key).await.ok()?;
        serde_json::from_str(&raw?).ok()
    }

    async fn put(&self, pairs: &[HistoryPair]) {
        use fred::prelude::*;
        if self.ttl.is_zero() {
            return;
        }
        let Ok(json) = serde_json::to_string(pairs) else {
            return;
        };
        let set: Result<(), _> = self
            .queue
            .client()
            .set(
                &self.key,
                json,
                Some(Expiration::EX(self.ttl.as_secs().max(1) as i64)),
                None,
                false,
            )
            .await;
        if let Err(e) = set {
            tracing::debug!(error = %e, "history cache write failed; a retry will read DynamoDB again");
        }
    }
}

/// Dead letters: record a region that failed for good on its run, then pass the letter on (SQS).
pub struct RunAwareDeadLetters<D> {
    /// Run records.
    pub runs: RunStore,
    /// The next sink (SQS in production).
    pub inner: D,
}

impl<D: DeadLetterSink> DeadLetterSink for RunAwareDeadLetters<D> {
    async fn dead_letter(&self, dead: &DeadLetter) -> Result<(), String> {
        let region_of = |data: &Value| match dead.name.as_str() {
            "region" => serde_json::from_value::<RegionJob>(data.clone())
                .ok()
                .map(|rj| (rj.run_id, rj.region)),
            split::SHARD_JOB | split::SELECT_JOB | split::WRITE_JOB => {
                serde_json::from_value::<split::SplitJob>(data.clone())
                    .ok()
                    .map(|sj| (sj.run_id, sj.region))
            }
            _ => None,
        };
        // A region whose job (or any step of its split) failed for good makes the run partial.
        if let Some((run_id, region)) = region_of(&dead.data) {
            let summary = RegionSummary {
                error: Some(dead.failed_reason.clone()),
                ..RegionSummary::default()
            };
            report_region(&self.runs, &run_id, &region, &summary).await;
        }
        tracing::error!(job_id = %dead.id, job_name = %dead.name, attempts = dead.attempts_made, reason = %dead.failed_reason, "job failed for good");
        self.inner.dead_letter(dead).await.inspect_err(|e| {
            MetricRecord::new().count(names::DEAD_LETTER_SEND_FAILURES, 1).property("job_id", dead.id.as_str()).emit();
            tracing::error!(job_id = %dead.id, error = %e, "dead letter not delivered; the job stays in the failed set");
        })
    }
}
