//! The region job: page a region's users out of DynamoDB, match them as a whole, write the suggestions.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::NaiveDate;
use prematch_engine::{match_region, parse_user, HistoryPair, MatchConfig, RegionOutcome, User};
use prematch_queue::{JobContext, JobError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::runs::RegionSummary;

/// The payload of a `region` job (DESIGN §3.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionJob {
    /// The run this region belongs to.
    pub run_id: String,
    /// The region to match.
    pub region: String,
    /// The date matched for.
    pub run_date: NaiveDate,
}

impl RegionJob {
    /// Reads the payload; a malformed one is a permanent failure (retrying cannot fix it).
    pub fn from_data(data: &Value) -> Result<RegionJob, JobError> {
        serde_json::from_value(data.clone())
            .map_err(|e| JobError::permanent(format!("malformed region job data: {e}")))
    }

    /// `region-2026-12-03-eu-west` for the scheduled run; the run id's date part keeps manual runs apart.
    pub fn job_id(run_id: &str, region: &str) -> String {
        let run_key = run_id.strip_prefix("run-").unwrap_or(run_id);
        format!("region-{run_key}-{region}")
    }
}

/// Users of one region, read page by page; bad records counted by reason, never fatal.
#[derive(Debug, Default)]
pub struct RegionUsers {
    /// Well-formed, active users.
    pub users: Vec<User>,
    /// Records read.
    pub read: u64,
    /// Skipped records by reason code.
    pub skipped: BTreeMap<String, u64>,
    /// Pages read.
    pub pages: u64,
}

/// How many skipped records are logged one by one before the rest are only counted.
const LOGGED_REJECTIONS: u64 = 50;

impl RegionUsers {
    /// Parses one stored record; a rejection is logged by user id and reason only (no personal data).
    pub fn add_record(&mut self, region: &str, item: &Value) {
        self.read += 1;
        match parse_user(item) {
            Ok(user) if !user.is_active() => {
                *self.skipped.entry("inactive".to_string()).or_default() += 1
            }
            Ok(user) if user.region() != region => {
                *self.skipped.entry("other_region".to_string()).or_default() += 1
            }
            Ok(user) => self.users.push(user),
            Err(rejection) => {
                let total: u64 = self.skipped.values().sum();
                if total < LOGGED_REJECTIONS {
                    tracing::warn!(
                        region,
                        user_id = rejection.user_id.as_deref().unwrap_or("?"),
                        reason = rejection.code(),
                        field = %rejection.field,
                        "skipped a malformed user record"
                    );
                }
                *self
                    .skipped
                    .entry(rejection.code().to_string())
                    .or_default() += 1;
            }
        }
    }

    /// Records skipped for a reason other than being inactive.
    pub fn malformed(&self) -> u64 {
        self.skipped
            .iter()
            .filter(|(k, _)| k.as_str() != "inactive")
            .map(|(_, v)| v)
            .sum()
    }
}

/// Runs the engine off the async threads (it is CPU-bound and uses rayon).
pub async fn match_users(
    users: Vec<User>,
    history: Vec<HistoryPair>,
    run_date: NaiveDate,
    cfg: MatchConfig,
) -> Result<RegionOutcome, JobError> {
    tokio::task::spawn_blocking(move || match_region(users, &history, run_date, &cfg))
        .await
        .map_err(|e| JobError::retryable(format!("matching task failed: {e}")))
}

/// Builds the summary a region job reports to its run.
pub fn summarize(
    users: &RegionUsers,
    outcome: &RegionOutcome,
    items_written: u64,
    started: Instant,
    phases: PhaseMillis,
) -> RegionSummary {
    let stats = &outcome.stats;
    RegionSummary {
        users_read: users.read,
        users_matched: stats.matched_users as u64,
        skipped: users.skipped.clone(),
        suggestions: outcome.suggestions.len() as u64,
        items_written,
        users_uncovered: stats
            .users_with_feasible_partner
            .saturating_sub(stats.users_covered) as u64,
        duration_ms: started.elapsed().as_millis() as u64,
        read_ms: phases.read,
        history_ms: phases.history,
        match_ms: phases.matching,
        write_ms: phases.write,
        shards: None,
        error: None,
    }
}

/// Wall time of each phase of a region job, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct PhaseMillis {
    /// Paging the users.
    pub read: u64,
    /// Recent history.
    pub history: u64,
    /// The engine.
    pub matching: u64,
    /// Writing suggestions.
    pub write: u64,
}

/// Milliseconds since `t`.
pub fn millis_since(t: Instant) -> u64 {
    t.elapsed().as_millis() as u64
}

/// Reports a phase on the job, for bull-board and `prematch queue`; progress is best-effort.
pub async fn report_progress(job: &JobContext, phase: &str, detail: Value) {
    let mut progress = json!({ "phase": phase });
    if let (Some(p), Value::Object(d)) = (progress.as_object_mut(), detail) {
        p.extend(d);
    }
    if let Err(e) = job.progress(progress).await {
        tracing::debug!(job_id = %job.id, error = %e, "progress update failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_job_ids_are_deterministic_and_valid_bullmq_ids() {
        assert_eq!(
            RegionJob::job_id("run-2026-12-03", "eu-west"),
            "region-2026-12-03-eu-west"
        );
        assert_eq!(
            RegionJob::job_id("manual-2026-12-03-6f1c2a9b", "eu-west"),
            "region-manual-2026-12-03-6f1c2a9b-eu-west"
        );
        assert!(!RegionJob::job_id("run-2026-12-03", "eu-west").contains(':'));
    }

    #[test]
    fn malformed_region_data_is_a_permanent_failure_naming_the_field() {
        let err = RegionJob::from_data(&json!({"run_id": "run-2026-12-03", "region": "eu-west"}))
            .unwrap_err();
        assert!(matches!(err, JobError::Permanent(_)));
        assert!(err.reason().contains("run_date"), "{}", err.reason());
    }

    #[test]
    fn bad_records_are_counted_by_reason_and_good_ones_kept() {
        let mut users = RegionUsers::default();
        let good = json!({"user_id":"u_000001","region":"eu-west","active":true,"timezone":"Europe/Berlin",
            "gender":"woman","birth_date":"1994-05-02","seeking":{"genders":["man"],"age_min":27,"age_max":38},
            "languages":["de"],"interests":["jazz"],"availability":[{"day":"mon","start":"18:00","end":"21:30"}],
            "blocked":[],"updated_at":"2026-11-30T08:12:00Z"});
        let mut bad_tz = good.clone();
        bad_tz["user_id"] = json!("u_000002");
        bad_tz["timezone"] = json!("Mars/Olympus");
        let mut inactive = good.clone();
        inactive["user_id"] = json!("u_000003");
        inactive["active"] = json!(false);
        users.add_record("eu-west", &good);
        users.add_record("eu-west", &bad_tz);
        users.add_record("eu-west", &inactive);
        assert_eq!(users.read, 3);
        assert_eq!(users.users.len(), 1);
        assert_eq!(users.skipped.get("inactive"), Some(&1));
        assert_eq!(users.malformed(), 1);
    }
}
