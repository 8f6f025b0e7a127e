//! `GET /api/prematch/check`: health of Redis, the queue, the DLQ and the last run, as JSON.
//!
//! Every probe runs at the same time under its own timeout, so the check answers within about one
//! timeout even when Redis or SQS hangs. `down` (503) means jobs cannot run at all (Redis is gone);
//! `degraded` (200) means they run but something needs a look (DLQ messages, a paused queue, a
//! partial run, a high error rate, a probe that failed).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use tokio::time::timeout;

use super::error::{json_response, set_header};
use super::rate_limit::RateLimiter;
use super::runs::{RunPhase, RunStatus, RunStatusSource};
use super::validate::require_method;
use super::ApiError;

/// A probe failed or timed out. The message is for operators: no personal data, no secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProbeError(pub String);

/// Jobs per state, BullMQ's names (a paused queue's jobs count as `waiting`, as in BullMQ v6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueCounts {
    /// Ready to run.
    pub waiting: u64,
    /// Being processed.
    pub active: u64,
    /// Waiting for a delay or a retry backoff.
    pub delayed: u64,
    /// Ready, with a priority.
    pub prioritized: u64,
    /// Parents waiting for their children.
    pub waiting_children: u64,
    /// Kept completed jobs.
    pub completed: u64,
    /// Kept jobs that failed their last attempt.
    pub failed: u64,
}

/// Start and end of one finished job, epoch milliseconds (BullMQ's `processedOn` / `finishedOn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobTiming {
    /// When its last attempt started.
    pub processed_on: i64,
    /// When it finished.
    pub finished_on: i64,
}

/// Jobs that finished in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcomes {
    /// Completed in the window.
    pub completed: u64,
    /// Failed their last attempt in the window.
    pub failed: u64,
}

/// What the check reads from the queue.
pub trait QueueProbe: Send + Sync {
    /// Round trip to Redis.
    fn ping(&self) -> impl Future<Output = Result<Duration, ProbeError>> + Send;
    /// Jobs per state.
    fn counts(&self) -> impl Future<Output = Result<QueueCounts, ProbeError>> + Send;
    /// True when the queue is paused.
    fn is_paused(&self) -> impl Future<Output = Result<bool, ProbeError>> + Send;
    /// Jobs completed and failed since `since_ms` (by their `finishedOn`).
    fn outcomes_since(
        &self,
        since_ms: i64,
    ) -> impl Future<Output = Result<Outcomes, ProbeError>> + Send;
    /// Timings of up to `limit` most recently completed jobs.
    fn recent_timings(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<JobTiming>, ProbeError>> + Send;
}

/// What the check reads from the dead-letter queue.
pub trait DlqProbe: Send + Sync {
    /// Messages waiting in the DLQ (SQS `ApproximateNumberOfMessages`).
    fn depth(&self) -> impl Future<Output = Result<u64, ProbeError>> + Send;
}

/// Tunables of the check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSettings {
    /// Bound on each probe.
    pub probe_timeout: Duration,
    /// Window of the success and error rates.
    pub rate_window: Duration,
    /// How many recent completed jobs the percentiles are taken over.
    pub timing_sample: usize,
    /// Error rate above which the status is `degraded` (with at least `min_jobs_for_rate` jobs).
    pub degraded_error_rate: f64,
    /// Fewer finished jobs than this in the window say nothing about the error rate.
    pub min_jobs_for_rate: u64,
    /// The queue's name, shown in the report.
    pub queue_name: String,
}

impl Default for CheckSettings {
    fn default() -> Self {
        CheckSettings {
            probe_timeout: Duration::from_secs(2),
            rate_window: Duration::from_secs(24 * 3600),
            timing_sample: 200,
            degraded_error_rate: 0.05,
            min_jobs_for_rate: 10,
            queue_name: "prematchQueue".to_string(),
        }
    }
}

/// Everything the check handler uses, built once per process.
pub struct CheckState<Q, D, R, L> {
    /// The queue (Redis).
    pub queue: Q,
    /// The DLQ, when one is configured.
    pub dlq: Option<D>,
    /// Run records.
    pub runs: R,
    /// Per-caller limit (by source address).
    pub limiter: L,
    /// Tunables.
    pub settings: CheckSettings,
    /// The clock (tests pin it).
    pub clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

/// Overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// All good.
    Ok,
    /// Working, but something needs a look (see `problems`).
    Degraded,
    /// Jobs cannot run.
    Down,
}

/// The JSON body of the check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// `ok`, `degraded` or `down`.
    pub status: Health,
    /// When the check ran.
    pub checked_at: DateTime<Utc>,
    /// Stable codes of what made the status less than ok (`dlq_not_empty`, `queue_paused`, ...).
    pub problems: Vec<&'static str>,
    /// Redis reachability.
    pub redis: Probe<RedisHealth>,
    /// Queue counts and paused flag.
    pub queue: Probe<QueueHealth>,
    /// DLQ depth.
    pub dlq: Probe<DlqHealth>,
    /// The latest run, `null` when none is recorded.
    pub last_run: Probe<Option<RunStatus>>,
    /// Processing time of recent completed jobs.
    pub processing: Probe<Processing>,
    /// Success and error rates over the window.
    pub rates: Probe<Rates>,
}

/// One probe's outcome: the value, or why there is none.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Probe<T> {
    /// The probe answered.
    Ok {
        /// What it found.
        #[serde(flatten)]
        value: T,
    },
    /// The probe failed or timed out.
    Unavailable {
        /// Why (no personal data).
        error: String,
    },
    /// Nothing to probe in this set-up.
    NotConfigured,
}

impl<T> Probe<T> {
    fn is_ok(&self) -> bool {
        matches!(self, Probe::Ok { .. })
    }
    fn value(&self) -> Option<&T> {
        match self {
            Probe::Ok { value } => Some(value),
            _ => None,
        }
    }
}

/// Redis round trip.
#[derive(Debug, Clone, Serialize)]
pub struct RedisHealth {
    /// Milliseconds, fractional.
    pub latency_ms: f64,
}

/// Queue state.
#[derive(Debug, Clone, Serialize)]
pub struct QueueHealth {
    /// The queue's name.
    pub name: String,
    /// True when paused.
    pub paused: bool,
    /// Jobs per state.
    pub counts: QueueCounts,
}

/// DLQ state.
#[derive(Debug, Clone, Serialize)]
pub struct DlqHealth {
    /// Messages waiting.
    pub depth: u64,
}

/// Processing time percentiles (nearest rank) of recent completed jobs.
#[derive(Debug, Clone, Serialize)]
pub struct Processing {
    /// Jobs measured.
    pub sample: usize,
    /// Median, ms; `null` without jobs.
    pub p50_ms: Option<i64>,
    /// 95th percentile, ms; `null` without jobs.
    pub p95_ms: Option<i64>,
}

/// Success and error rates of jobs that finished in the window.
#[derive(Debug, Clone, Serialize)]
pub struct Rates {
    /// The window, hours.
    pub window_hours: u64,
    /// Completed in the window.
    pub completed: u64,
    /// Failed for good in the window.
    pub failed: u64,
    /// completed / (completed + failed); `null` without jobs.
    pub success_rate: Option<f64>,
    /// failed / (completed + failed); `null` without jobs.
    pub error_rate: Option<f64>,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Runs `probe` under `limit`; a timeout becomes an error naming the bound.
async fn bounded<T>(
    limit: Duration,
    probe: impl Future<Output = Result<T, ProbeError>>,
) -> Result<T, ProbeError> {
    match timeout(limit, probe).await {
        Ok(result) => result,
        Err(_) => Err(ProbeError(format!(
            "no answer within {} ms",
            limit.as_millis()
        ))),
    }
}

fn probe<T>(result: Result<T, ProbeError>) -> Probe<T> {
    match result {
        Ok(value) => Probe::Ok { value },
        Err(e) => Probe::Unavailable { error: e.0 },
    }
}

/// Builds the report. Exposed for the CLI (`prematch queue status`) as well as the handler.
pub async fn report<Q, D, R, L>(state: &CheckState<Q, D, R, L>) -> CheckReport
where
    Q: QueueProbe,
    D: DlqProbe,
    R: RunStatusSource,
{
    let settings = &state.settings;
    let limit = settings.probe_timeout;
    let now = (state.clock)();
    let since_ms = now.timestamp_millis() - settings.rate_window.as_millis() as i64;
    let dlq = async {
        match &state.dlq {
            Some(dlq) => Some(bounded(limit, dlq.depth()).await),
            None => None,
        }
    };
    let last_run = bounded(limit, async {
        state
            .runs
            .latest_run()
            .await
            .map_err(|e| ProbeError(e.to_string()))
    });
    let (ping, counts, paused, outcomes, timings, dlq, last_run) = tokio::join!(
        bounded(limit, state.queue.ping()),
        bounded(limit, state.queue.counts()),
        bounded(limit, state.queue.is_paused()),
        bounded(limit, state.queue.outcomes_since(since_ms)),
        bounded(limit, state.queue.recent_timings(settings.timing_sample)),
        dlq,
        last_run,
    );

    let redis = probe(ping.map(|d| RedisHealth {
        latency_ms: d.as_secs_f64() * 1000.0,
    }));
    let queue = match (counts, paused) {
        (Ok(counts), Ok(paused)) => Probe::Ok {
            value: QueueHealth {
                name: settings.queue_name.clone(),
                paused,
                counts,
            },
        },
        (Err(e), _) | (_, Err(e)) => Probe::Unavailable { error: e.0 },
    };
    let dlq = match dlq {
        Some(result) => probe(result.map(|depth| DlqHealth { depth })),
        None => Probe::NotConfigured,
    };
    let processing = probe(timings.map(|timings| {
        let mut ms: Vec<i64> = timings
            .iter()
            .filter(|t| t.finished_on >= t.processed_on && t.processed_on > 0)
            .map(|t| t.finished_on - t.processed_on)
            .collect();
        ms.sort_unstable();
        Processing {
            sample: ms.len(),
            p50_ms: percentile(&ms, 50.0),
            p95_ms: percentile(&ms, 95.0),
        }
    }));
    let rates = probe(outcomes.map(|o| {
        let total = o.completed + o.failed;
        let rate = |n: u64| (total > 0).then(|| n as f64 / total as f64);
        Rates {
            window_hours: settings.rate_window.as_secs() / 3600,
            completed: o.completed,
            failed: o.failed,
            success_rate: rate(o.completed),
            error_rate: rate(o.failed),
        }
    }));
    let last_run = probe(last_run);

    let mut problems = Vec::new();
    let status = if !redis.is_ok() {
        problems.push("redis_unreachable");
        Health::Down
    } else {
        if !queue.is_ok() || !processing.is_ok() || !rates.is_ok() {
            problems.push("queue_probe_failed");
        }
        if queue.value().is_some_and(|q| q.paused) {
            problems.push("queue_paused");
        }
        match &dlq {
            Probe::Unavailable { .. } => problems.push("dlq_unreachable"),
            Probe::Ok { value } if value.depth > 0 => problems.push("dlq_not_empty"),
            _ => {}
        }
        match &last_run {
            Probe::Unavailable { .. } => problems.push("run_records_unavailable"),
            Probe::Ok { value: Some(run) }
                if matches!(run.state, RunPhase::Partial | RunPhase::Failed) =>
            {
                problems.push("last_run_failed")
            }
            _ => {}
        }
        if let Some(r) = rates.value() {
            if r.completed + r.failed >= settings.min_jobs_for_rate
                && r.error_rate
                    .is_some_and(|e| e > settings.degraded_error_rate)
            {
                problems.push("high_error_rate");
            }
        }
        if problems.is_empty() {
            Health::Ok
        } else {
            Health::Degraded
        }
    };
    CheckReport {
        status,
        checked_at: now,
        problems,
        redis,
        queue,
        dlq,
        last_run,
        processing,
        rates,
    }
}

/// The caller's id for the rate limit: its source address as the gateway saw it.
pub fn source_ip(req: &Request) -> String {
    match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => ctx
            .http
            .source_ip
            .clone()
            .unwrap_or_else(|| "unknown".to_string()),
        _ => "unknown".to_string(),
    }
}

/// The handler of `GET /api/prematch/check`. Never fails: every outcome is an HTTP answer.
#[tracing::instrument(skip_all, fields(route = "check"))]
pub async fn check<Q, D, R, L>(
    state: &CheckState<Q, D, R, L>,
    req: Request,
) -> Result<Response<Body>, std::convert::Infallible>
where
    Q: QueueProbe,
    D: DlqProbe,
    R: RunStatusSource,
    L: RateLimiter,
{
    if let Err(e) = require_method(&req, "GET") {
        return Ok(e.to_response());
    }
    // Fail open: when Redis is down the limiter cannot count, and the check must still say so.
    // A quarter of the probe bound is ample for one script call and keeps a dead Redis from
    // costing the caller two full timeouts.
    let caller = source_ip(&req);
    match timeout(
        state.settings.probe_timeout / 4,
        state.limiter.acquire(&caller),
    )
    .await
    {
        Ok(Ok(decision)) if !decision.allowed => {
            return Ok(ApiError::TooManyRequests {
                retry_after: decision.retry_after,
            }
            .to_response());
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "rate limiter unavailable; check not limited"),
        Err(_) => tracing::warn!("rate limiter timed out; check not limited"),
        Ok(Ok(_)) => {}
    }
    let report = report(state).await;
    tracing::info!(status = ?report.status, problems = ?report.problems, "check");
    let status = match report.status {
        Health::Down => StatusCode::SERVICE_UNAVAILABLE,
        Health::Ok | Health::Degraded => StatusCode::OK,
    };
    let mut response = json_response(status, &report);
    if report.status == Health::Down {
        set_header(&mut response, "retry-after", "5".to_string());
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::rate_limit::{RateDecision, RateLimitError, Unlimited};
    use crate::api::runs::{MemoryRuns, NoRunRecords, RegionCounts};
    use chrono::TimeZone;
    use serde_json::Value;
    use std::collections::BTreeMap;

    #[derive(Clone)]
    struct FakeQueue {
        down: bool,
        hang: bool,
        paused: bool,
        outcomes: Outcomes,
        timings: Vec<JobTiming>,
    }

    impl Default for FakeQueue {
        fn default() -> Self {
            FakeQueue {
                down: false,
                hang: false,
                paused: false,
                outcomes: Outcomes {
                    completed: 98,
                    failed: 2,
                },
                timings: vec![],
            }
        }
    }

    impl FakeQueue {
        async fn gate(&self) -> Result<(), ProbeError> {
            if self.hang {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            if self.down {
                return Err(ProbeError("connection refused".into()));
            }
            Ok(())
        }
    }

    impl QueueProbe for FakeQueue {
        async fn ping(&self) -> Result<Duration, ProbeError> {
            self.gate().await.map(|_| Duration::from_micros(1500))
        }
        async fn counts(&self) -> Result<QueueCounts, ProbeError> {
            self.gate().await.map(|_| QueueCounts {
                waiting: 4,
                active: 1,
                completed: 98,
                failed: 2,
                ..Default::default()
            })
        }
        async fn is_paused(&self) -> Result<bool, ProbeError> {
            self.gate().await.map(|_| self.paused)
        }
        async fn outcomes_since(&self, _since_ms: i64) -> Result<Outcomes, ProbeError> {
            self.gate().await.map(|_| self.outcomes)
        }
        async fn recent_timings(&self, limit: usize) -> Result<Vec<JobTiming>, ProbeError> {
            self.gate()
                .await
                .map(|_| self.timings.iter().take(limit).copied().collect())
        }
    }

    struct FakeDlq(Result<u64, ProbeError>);
    impl DlqProbe for FakeDlq {
        async fn depth(&self) -> Result<u64, ProbeError> {
            self.0.clone()
        }
    }

    struct Deny;
    impl RateLimiter for Deny {
        async fn acquire(&self, _caller: &str) -> Result<RateDecision, RateLimitError> {
            Ok(RateDecision {
                allowed: false,
                remaining: 0,
                retry_after: Duration::from_secs(7),
            })
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap()
    }

    fn state<R: RunStatusSource, L: RateLimiter>(
        queue: FakeQueue,
        dlq: Option<FakeDlq>,
        runs: R,
        limiter: L,
    ) -> CheckState<FakeQueue, FakeDlq, R, L> {
        CheckState {
            queue,
            dlq,
            runs,
            limiter,
            settings: CheckSettings {
                probe_timeout: Duration::from_millis(100),
                ..Default::default()
            },
            clock: Arc::new(now),
        }
    }

    fn get_check() -> Request {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/events/apigw-v2-get-check.json"
        );
        lambda_http::request::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    async fn call<R: RunStatusSource, L: RateLimiter>(
        state: &CheckState<FakeQueue, FakeDlq, R, L>,
    ) -> (u16, Value) {
        let response = check(state, get_check()).await.unwrap();
        let body = serde_json::from_slice(response.body().as_ref()).unwrap();
        (response.status().as_u16(), body)
    }

    #[tokio::test]
    async fn all_healthy_is_ok_with_every_section() {
        let (status, body) = call(&state(
            FakeQueue::default(),
            Some(FakeDlq(Ok(0))),
            NoRunRecords,
            Unlimited,
        ))
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["status"], "ok");
        assert_eq!(body["problems"], serde_json::json!([]));
        assert_eq!(body["redis"]["status"], "ok");
        assert_eq!(body["redis"]["latency_ms"], 1.5);
        assert_eq!(body["queue"]["counts"]["waiting"], 4);
        assert_eq!(body["queue"]["paused"], false);
        assert_eq!(body["dlq"]["depth"], 0);
        assert_eq!(body["last_run"]["status"], "ok");
        assert_eq!(body["rates"]["success_rate"], 0.98);
        assert_eq!(body["rates"]["window_hours"], 24);
    }

    #[tokio::test]
    async fn redis_down_is_503_down_and_still_reports_the_dlq() {
        let queue = FakeQueue {
            down: true,
            ..Default::default()
        };
        let (status, body) =
            call(&state(queue, Some(FakeDlq(Ok(3))), NoRunRecords, Unlimited)).await;
        assert_eq!(status, 503);
        assert_eq!(body["status"], "down");
        assert_eq!(body["redis"]["status"], "unavailable");
        assert_eq!(body["dlq"]["depth"], 3);
    }

    #[tokio::test]
    async fn a_hanging_redis_is_cut_off_by_the_probe_timeout() {
        // GIVEN a queue that never answers, and probes bounded at 100 ms
        let queue = FakeQueue {
            hang: true,
            ..Default::default()
        };
        let state = state(queue, Some(FakeDlq(Ok(0))), NoRunRecords, Unlimited);
        // WHEN the check runs
        let (status, body) = call(&state).await;
        // THEN it answers down, naming the timeout
        assert_eq!(status, 503);
        assert!(
            body["redis"]["error"].as_str().unwrap().contains("100 ms"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn dlq_messages_a_paused_queue_and_a_partial_run_degrade_the_status() {
        let run = RunStatus {
            run_id: "run-2026-12-03".into(),
            trigger: "schedule".into(),
            run_date: now().date_naive(),
            state: RunPhase::Partial,
            started_at: now(),
            finished_at: Some(now()),
            duration_ms: Some(0),
            pending_regions: 0,
            regions: BTreeMap::from([(
                "eu-west".to_string(),
                RegionCounts {
                    users: 10,
                    skipped: 1,
                    suggestions: 4,
                    failed: true,
                },
            )]),
        };
        let queue = FakeQueue {
            paused: true,
            ..Default::default()
        };
        let (status, body) = call(&state(
            queue,
            Some(FakeDlq(Ok(2))),
            MemoryRuns { runs: vec![run] },
            Unlimited,
        ))
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["status"], "degraded");
        assert_eq!(
            body["problems"],
            serde_json::json!(["queue_paused", "dlq_not_empty", "last_run_failed"])
        );
        assert_eq!(body["last_run"]["run_id"], "run-2026-12-03");
        assert_eq!(body["last_run"]["regions"]["eu-west"]["suggestions"], 4);
    }

    #[tokio::test]
    async fn an_unreachable_dlq_degrades_but_a_missing_one_does_not() {
        let (_, body) = call(&state(
            FakeQueue::default(),
            Some(FakeDlq(Err(ProbeError("timeout".into())))),
            NoRunRecords,
            Unlimited,
        ))
        .await;
        assert_eq!(body["status"], "degraded");
        assert_eq!(body["dlq"]["status"], "unavailable");
        let (_, body) = call(&state(FakeQueue::default(), None, NoRunRecords, Unlimited)).await;
        assert_eq!(body["status"], "ok");
        assert_eq!(body["dlq"]["status"], "not_configured");
    }

    #[tokio::test]
    async fn a_high_error_rate_degrades_only_with_enough_jobs() {
        let queue = FakeQueue {
            outcomes: Outcomes {
                completed: 80,
                failed: 20,
            },
            ..Default::default()
        };
        let (_, body) = call(&state(queue, None, NoRunRecords, Unlimited)).await;
        assert_eq!(body["problems"], serde_json::json!(["high_error_rate"]));
        assert_eq!(body["rates"]["error_rate"], 0.2);
        let queue = FakeQueue {
            outcomes: Outcomes {
                completed: 1,
                failed: 1,
            },
            ..Default::default()
        };
        let (_, body) = call(&state(queue, None, NoRunRecords, Unlimited)).await;
        assert_eq!(body["status"], "ok");
    }

    #[tokio::test]
    async fn processing_percentiles_come_from_job_timings() {
        // GIVEN 20 jobs that took 1..=20 seconds
        let timings = (1..=20)
            .map(|s| JobTiming {
                processed_on: 1_000,
                finished_on: 1_000 + s * 1000,
            })
            .collect();
        let queue = FakeQueue {
            timings,
            ..Default::default()
        };
        let (_, body) = call(&state(queue, None, NoRunRecords, Unlimited)).await;
        // THEN p50 is the 10th and p95 the 19th
        assert_eq!(body["processing"]["sample"], 20);
        assert_eq!(body["processing"]["p50_ms"], 10_000);
        assert_eq!(body["processing"]["p95_ms"], 19_000);
    }

    #[tokio::test]
    async fn over_the_limit_is_429_with_retry_after() {
        let response = check(
            &state(FakeQueue::default(), None, NoRunRecords, Deny),
            get_check(),
        )
        .await
        .unwrap();
        assert_eq!(response.status().as_u16(), 429);
        assert_eq!(response.headers()["retry-after"], "7");
    }

    #[tokio::test]
    async fn another_method_is_405() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/events/apigw-v2-post-check-wrong-method.json"
        );
        let req = lambda_http::request::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let response = check(
            &state(FakeQueue::default(), None, NoRunRecords, Unlimited),
            req,
        )
        .await
        .unwrap();
        assert_eq!(response.status().as_u16(), 405);
        assert_eq!(response.headers()["allow"], "GET");
    }

    #[test]
    fn percentile_is_nearest_rank() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[5], 95.0), Some(5));
        assert_eq!(percentile(&[1, 2, 3, 4], 50.0), Some(2));
        assert_eq!(percentile(&[1, 2, 3, 4], 95.0), Some(4));
    }
}
