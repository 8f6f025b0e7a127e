//! Run records in Redis: what a run is, which regions it waits for, and its totals once they are in.
//!
//! One hash per run (`{prefix}:{queue}:prematch:run:{run_id}`) and one sorted set indexing runs by start
//! time. Every transition is one Lua script on the run's hash, so a region reported twice (a retried job,
//! two workers racing on a stalled one) is counted once, and exactly one caller sees the run finish.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use fred::prelude::*;
use serde::{Deserialize, Serialize};

use super::event::Trigger;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Region jobs are still pending.
    Running,
    /// Every region finished.
    Finished,
    /// Every region is over, but at least one failed for good (it is named in `failed_regions`).
    Partial,
}

/// What one region job reports when it is over.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegionSummary {
    /// Records read from the users table.
    pub users_read: u64,
    /// Well-formed, active users that were matched.
    pub users_matched: u64,
    /// Records skipped, by reason code (inactive users are counted under `inactive`).
    pub skipped: BTreeMap<String, u64>,
    /// Pairs the engine selected.
    pub suggestions: u64,
    /// Items written to the matches table (two per pair).
    pub items_written: u64,
    /// Users with a feasible partner who got no suggestion.
    pub users_uncovered: u64,
    /// Wall time of the job, in milliseconds.
    pub duration_ms: u64,
    /// Of that, reading the users (all pages).
    #[serde(default)]
    pub read_ms: u64,
    /// Reading the recent history (or its cache).
    #[serde(default)]
    pub history_ms: u64,
    /// The engine.
    #[serde(default)]
    pub match_ms: u64,
    /// Writing the suggestions.
    #[serde(default)]
    pub write_ms: u64,
    /// Scoring shards, when the region was too large for one job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u32>,
    /// Set when the region failed for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// `run-2026-12-03` for the schedule, `manual-…` for a manual run.
    pub run_id: String,
    /// What started it.
    pub trigger: Trigger,
    /// The date matched for.
    pub run_date: NaiveDate,
    /// Where it stands.
    pub state: RunState,
    /// When the run job recorded it.
    pub started_at: DateTime<Utc>,
    /// When the last region reported.
    pub finished_at: Option<DateTime<Utc>>,
    /// The regions it covers.
    pub regions: Vec<String>,
    /// Regions not yet over.
    pub pending: u64,
    /// Per-region results reported so far.
    pub results: BTreeMap<String, RegionSummary>,
    /// Regions that failed for good.
    pub failed_regions: Vec<String>,
}

impl RunRecord {
    /// Sums the per-region counts.
    pub fn totals(&self) -> RegionSummary {
        let mut total = RegionSummary::default();
        for r in self.results.values() {
            total.users_read += r.users_read;
            total.users_matched += r.users_matched;
            total.suggestions += r.suggestions;
            total.items_written += r.items_written;
            total.users_uncovered += r.users_uncovered;
            total.duration_ms = total.duration_ms.max(r.duration_ms);
            for (k, v) in &r.skipped {
                *total.skipped.entry(k.clone()).or_default() += v;
            }
        }
        total
    }

    /// Wall time from start to finish, when finished.
    pub fn duration_ms(&self) -> Option<i64> {
        self.finished_at
            .map(|f| (f - self.started_at).num_milliseconds())
    }
}

/// Outcome of reporting a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionReport {
    /// Recorded; other regions are still pending.
    Recorded,
    /// Recorded, and it was the last one: the run is now over (this caller alone sees this).
    RunOver,
    /// This region had already reported (a retry or a duplicate): nothing changed.
    Duplicate,
    /// No such run (it expired, or the job's data names a run never recorded).
    UnknownRun,
    /// The region had failed for good and has now succeeded (a redrive): the run was re-settled.
    Recovered,
}

/// Errors of the run store.
#[derive(Debug, thiserror::Error)]
pub enum RunStoreError {
    /// Redis failed or answered something unexpected.
    #[error("run store: redis: {0}")]
    Redis(#[from] fred::error::Error),
    /// A stored field is not what we wrote.
    #[error("run store: run {run_id} has a malformed field {field}: {message}")]
    Corrupt {
        /// The run.
        run_id: String,
        /// The field.
        field: String,
        /// What was wrong.
        message: String,
    },
}

// KEYS[1] run hash, KEYS[2] runs index. ARGV: run_id, trigger, run_date, started_ms, regions JSON, n regions,
// retention seconds. Creates the run once; a retried run job finds it and changes nothing.
const CREATE_RUN: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'run_id', ARGV[1], 'trigger', ARGV[2], 'run_date', ARGV[3], 'started_at', ARGV[4],
  'regions', ARGV[5], 'pending', ARGV[6], 'state', 'running')
if tonumber(ARGV[6]) == 0 then
  redis.call('HSET', KEYS[1], 'state', 'finished', 'finished_at', ARGV[4])
end
redis.call('EXPIRE', KEYS[1], ARGV[7])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return 1
"#;

// KEYS[1] run hash. ARGV: region, summary JSON, now ms, failed '1'/'0'.
// Returns -1 unknown run, 0 duplicate, 1 recorded, 2 recorded and the run is over, 3 a region that had
// failed for good now succeeded (a redrive): its result replaces the failure and the state is recomputed.
const REPORT_REGION: &str = r#"
local function settle()
  local failed = 0
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(f, 1, 7) == 'failed:' then failed = failed + 1 end
  end
  redis.call('HSET', KEYS[1], 'state', failed > 0 and 'partial' or 'finished', 'finished_at', ARGV[3])
end
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local field = 'region:' .. ARGV[1]
if redis.call('HSETNX', KEYS[1], field, ARGV[2]) == 0 then
  if ARGV[4] == '0' and redis.call('HDEL', KEYS[1], 'failed:' .. ARGV[1]) == 1 then
    redis.call('HSET', KEYS[1], field, ARGV[2])
    if tonumber(redis.call('HGET', KEYS[1], 'pending')) <= 0 then settle() end
    return 3
  end
  return 0
end
if ARGV[4] == '1' then redis.call('HSET', KEYS[1], 'failed:' .. ARGV[1], '1') end
local pending = redis.call('HINCRBY', KEYS[1], 'pending', -1)
if pending > 0 then return 1 end
settle()
return 2
"#;

/// Run records on a Redis client (the queue's, so one connection serves both).
#[derive(Clone)]
pub struct RunStore {
    client: Client,
    base: String,
    retention_secs: u64,
}

impl RunStore {
    /// Keeps runs under `{prefix}:{queue}:prematch:` for `retention_secs`.
    pub fn new(client: Client, prefix: &str, queue: &str, retention_secs: u64) -> RunStore {
        RunStore {
            client,
            base: format!("{prefix}:{queue}:prematch:"),
            retention_secs,
        }
    }

    fn run_key(&self, run_id: &str) -> String {
        format!("{}run:{run_id}", self.base)
    }

    fn index_key(&self) -> String {
        format!("{}runs", self.base)
    }

    /// Records a new run waiting for `regions`; returns false when it already existed.
    pub async fn create(
        &self,
        run_id: &str,
        trigger: Trigger,
        run_date: NaiveDate,
        regions: &[String],
        now: DateTime<Utc>,
    ) -> Result<bool, RunStoreError> {
        let trigger = match trigger {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
        };
        let regions_json = serde_json::to_string(regions).unwrap_or_else(|_| "[]".to_string());
        let created: i64 = self
            .client
            .eval(
                CREATE_RUN,
                vec![self.run_key(run_id), self.index_key()],
                vec![
                    run_id.to_string(),
                    trigger.to_string(),
                    run_date.to_string(),
                    now.timestamp_millis().to_string(),
                    regions_json,
                    regions.len().to_string(),
                    self.retention_secs.to_string(),
                ],
            )
            .await?;
        Ok(created == 1)
    }

    /// Records the result of one region, once.
    pub async fn report_region(
        &self,
        run_id: &str,
        region: &str,
        summary: &RegionSummary,
        now: DateTime<Utc>,
    ) -> Result<RegionReport, RunStoreError> {
        let json = serde_json::to_string(summary).unwrap_or_else(|_| "{}".to_string());
        let failed = if summary.error.is_some() { "1" } else { "0" };
        let code: i64 = self
            .client
            .eval(
                REPORT_REGION,
                vec![self.run_key(run_id)],
                vec![
                    region.to_string(),
                    json,
                    now.timestamp_millis().to_string(),
                    failed.to_string(),
                ],
            )
            .await?;
        Ok(match code {
            -1 => RegionReport::UnknownRun,
            0 => RegionReport::Duplicate,
            2 => RegionReport::RunOver,
            3 => RegionReport::Recovered,
            _ => RegionReport::Recorded,
        })
    }

    /// Reads one run.
    pub async fn get(&self, run_id: &str) -> Result<Option<RunRecord>, RunStoreError> {
        let fields: BTreeMap<String, String> = self.client.hgetall(self.run_key(run_id)).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        parse_record(run_id, &fields).map(Some)
    }

    /// The most recently started run.
    pub async fn latest(&self) -> Result<Option<RunRecord>, RunStoreError> {
        let ids: Vec<String> = self.client.zrevrange(self.index_key(), 0, 0, false).await?;
        match ids.first() {
            Some(id) => self.get(id).await,
            None => Ok(None),
        }
    }
}

fn parse_record(
    run_id: &str,
    fields: &BTreeMap<String, String>,
) -> Result<RunRecord, RunStoreError> {
    let corrupt = |field: &str, message: String| RunStoreError::Corrupt {
        run_id: run_id.to_string(),
        field: field.to_string(),
        message,
    };
    let get = |field: &str| {
        fields
            .get(field)
            .ok_or_else(|| corrupt(field, "missing".to_string()))
    };
    let millis = |field: &str| -> Result<DateTime<Utc>, RunStoreError> {
        let raw = get(field)?;
        raw.parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .ok_or_else(|| corrupt(field, format!("not epoch milliseconds: {raw:?}")))
    };
    let trigger = match get("trigger")?.as_str() {
        "schedule" => Trigger::Schedule,
        "manual" => Trigger::Manual,
        other => return Err(corrupt("trigger", format!("unknown {other:?}"))),
    };
    let state = match get("state")?.as_str() {
        "running" => RunState::Running,
        "finished" => RunState::Finished,
        "partial" => RunState::Partial,
        other => return Err(corrupt("state", format!("unknown {other:?}"))),
    };
    let run_date = get("run_date")?
        .parse::<NaiveDate>()
        .map_err(|e| corrupt("run_date", e.to_string()))?;
    let regions: Vec<String> =
        serde_json::from_str(get("regions")?).map_err(|e| corrupt("regions", e.to_string()))?;
    let pending = get("pending")?
        .parse::<i64>()
        .map_err(|e| corrupt("pending", e.to_string()))?
        .max(0) as u64;
    let mut results = BTreeMap::new();
    let mut failed_regions = Vec::new();
    for (field, value) in fields {
        if let Some(region) = field.strip_prefix("region:") {
            let summary: RegionSummary =
                serde_json::from_str(value).map_err(|e| corrupt(field, e.to_string()))?;
            results.insert(region.to_string(), summary);
        } else if let Some(region) = field.strip_prefix("failed:") {
            failed_regions.push(region.to_string());
        }
    }
    let finished_at = if fields.contains_key("finished_at") {
        Some(millis("finished_at")?)
    } else {
        None
    };
    Ok(RunRecord {
        run_id: run_id.to_string(),
        trigger,
        run_date,
        state,
        started_at: millis("started_at")?,
        finished_at,
        regions,
        pending,
        results,
        failed_regions,
    })
}
