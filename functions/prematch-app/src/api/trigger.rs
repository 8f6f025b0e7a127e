//! `POST /api/prematch/test`: an admin adds a manual run to the queue and wakes a worker (202).
//!
//! Order of checks: method (405), credentials (401/403), rate limit per caller (429), body size and
//! type (413/415), body fields (400), one manual run per date at a time (409). Only then is the run
//! job added and a worker kicked. The run is never executed inline: API Gateway gives us 30 s.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::time::timeout;

use super::auth::AdminAuth;
use super::check::source_ip;
use super::error::json_response;
use super::rate_limit::RateLimiter;
use super::runs::{RunPhase, RunStatusSource};
use super::validate::{
    json_body, json_object, manual_run_request, require_method, ManualRunRequest,
};
use super::ApiError;

/// The queue could not be used; the message is for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("queue: {0}")]
pub struct QueueFailure(pub String);

/// Where a queued job stands, as far as "is a run still going" is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobPhase {
    /// Waiting, delayed, prioritized, active or waiting for children.
    Pending,
    /// Completed.
    Completed,
    /// Failed its last attempt.
    Failed,
}

/// A run job to add: name `run`, with BullMQ options.
#[derive(Debug, Clone, PartialEq)]
pub struct RunJob {
    /// The job id, equal to the run id: `manual-{run_date}-{8 hex}` (BullMQ refuses `:` in custom ids).
    pub job_id: String,
    /// `{run_id, trigger: "manual", run_date, regions?}`.
    pub data: Value,
    /// Attempts (default 3).
    pub attempts: u32,
    /// First delay of the exponential backoff (default 30 s).
    pub backoff_delay: Duration,
}

/// Outcome of claiming a date for a manual run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotClaim {
    /// The date is ours.
    Claimed,
    /// Another manual run holds the date.
    Held {
        /// The run holding it.
        run_id: String,
    },
}

/// What the trigger does with the queue.
pub trait RunQueue: Send + Sync {
    /// Claims `run_date` for `run_id` for at most `hold`, unless another run holds it.
    fn claim_manual_slot(
        &self,
        run_date: NaiveDate,
        run_id: &str,
        hold: Duration,
    ) -> impl Future<Output = Result<SlotClaim, QueueFailure>> + Send;
    /// Moves the date from the finished run `stale` to `run_id`; false when someone else moved it first.
    fn take_over_manual_slot(
        &self,
        run_date: NaiveDate,
        stale: &str,
        run_id: &str,
        hold: Duration,
    ) -> impl Future<Output = Result<bool, QueueFailure>> + Send;
    /// Gives the date back (the job could not be added), if `run_id` still holds it.
    fn release_manual_slot(
        &self,
        run_date: NaiveDate,
        run_id: &str,
    ) -> impl Future<Output = Result<(), QueueFailure>> + Send;
    /// Adds the run job; returns its id.
    fn add_run_job(
        &self,
        job: &RunJob,
    ) -> impl Future<Output = Result<String, QueueFailure>> + Send;
    /// Where the job stands; `None` when it is not in the queue (removed, or never added).
    fn job_phase(
        &self,
        job_id: &str,
    ) -> impl Future<Output = Result<Option<JobPhase>, QueueFailure>> + Send;
}

/// The kick could not be sent; the job is queued all the same and the sweep schedule will run it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("worker kick: {0}")]
pub struct KickError(pub String);

/// Wakes a worker to drain the queue now instead of at the next sweep.
pub trait WorkerKick: Send + Sync {
    /// Starts a worker asynchronously; returns once the start was accepted.
    fn kick(&self) -> impl Future<Output = Result<(), KickError>> + Send;
}

/// Kicks nothing: for local set-ups where a worker polls (`prematch` CLI) and for tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoKick;

impl WorkerKick for NoKick {
    async fn kick(&self) -> Result<(), KickError> {
        tracing::info!("no worker to kick in this set-up; the job waits for the next drain");
        Ok(())
    }
}

/// Tunables of the trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerSettings {
    /// Largest body, bytes.
    pub max_body_bytes: usize,
    /// Attempts of the run job.
    pub job_attempts: u32,
    /// First backoff delay of the run job.
    pub backoff_delay: Duration,
    /// How long a manual run holds its date when nothing says it finished.
    pub manual_run_hold: Duration,
    /// Bound on Redis calls and on the kick.
    pub call_timeout: Duration,
}

impl Default for TriggerSettings {
    fn default() -> Self {
        TriggerSettings {
            max_body_bytes: super::settings::MAX_BODY_BYTES,
            job_attempts: 3,
            backoff_delay: Duration::from_millis(30_000),
            manual_run_hold: Duration::from_secs(3600),
            call_timeout: Duration::from_secs(2),
        }
    }
}

/// Everything the trigger handler uses, built once per process.
pub struct TriggerState<Q, K, R, L> {
    /// Who may call.
    pub auth: AdminAuth,
    /// Per-caller limit.
    pub limiter: L,
    /// The queue.
    pub queue: Q,
    /// Wakes a worker.
    pub kick: K,
    /// Run records (to tell a finished manual run from one still going).
    pub runs: R,
    /// Tunables.
    pub settings: TriggerSettings,
    /// The clock (tests pin it).
    pub clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

/// The 202 body.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted {
    /// The run's id.
    pub run_id: String,
    /// The queue job's id (the same as the run id).
    pub job_id: String,
    /// Always `queued`: the run starts when a worker drains the queue.
    pub status: &'static str,
    /// The date matched for.
    pub run_date: NaiveDate,
    /// Only these regions, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regions: Option<Vec<String>>,
    /// False when the worker could not be woken; the next sweep picks the job up.
    pub worker_kicked: bool,
}

/// A new manual run id: `manual-{run_date}-{8 hex chars}`.
pub fn new_run_id(run_date: NaiveDate) -> String {
    format!("manual-{run_date}-{:08x}", rand::random::<u32>())
}

/// The handler of `POST /api/prematch/test`. Never fails: every outcome is an HTTP answer.
#[tracing::instrument(skip_all, fields(route = "trigger"))]
pub async fn trigger<Q, K, R, L>(
    state: &TriggerState<Q, K, R, L>,
    req: Request,
) -> Result<Response<Body>, std::convert::Infallible>
where
    Q: RunQueue,
    K: WorkerKick,
    R: RunStatusSource,
    L: RateLimiter,
{
    Ok(match accept(state, &req).await {
        Ok(accepted) => json_response(StatusCode::ACCEPTED, &accepted),
        Err(e) => {
            tracing::info!(
                status = e.status().as_u16(),
                code = e.code(),
                "trigger refused"
            );
            e.to_response()
        }
    })
}

async fn accept<Q, K, R, L>(
    state: &TriggerState<Q, K, R, L>,
    req: &Request,
) -> Result<Accepted, ApiError>
where
    Q: RunQueue,
    K: WorkerKick,
    R: RunStatusSource,
    L: RateLimiter,
{
    let limit = state.settings.call_timeout;
    require_method(req, "POST")?;
    let principal = match state.auth.authenticate(req) {
        Ok(principal) => principal,
        Err(ApiError::Forbidden) => {
            // Wrong credentials count against the source address, so guessing keys is slow too.
            rate_limit(state, &format!("denied:{}", source_ip(req))).await?;
            return Err(ApiError::Forbidden);
        }
        Err(e) => return Err(e),
    };
    rate_limit(state, &principal.id()).await?;
    let body = json_object(json_body(req, state.settings.max_body_bytes)?)?;
    let today = (state.clock)().date_naive();
    let ManualRunRequest { run_date, regions } = manual_run_request(&body, today)?;

    let run_id = new_run_id(run_date);
    let hold = state.settings.manual_run_hold;
    let unavailable = |what: &str, e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "{what}");
        ApiError::Unavailable {
            dependency: "queue",
        }
    };
    let claim = bounded(
        limit,
        state.queue.claim_manual_slot(run_date, &run_id, hold),
    )
    .await
    .map_err(|e| unavailable("claiming the run date failed", &e))?;
    if let SlotClaim::Held { run_id: holder } = claim {
        if still_running(state, &holder).await? {
            return Err(ApiError::Conflict {
                message: format!("a manual run for this date is already in progress: {holder}"),
            });
        }
        let taken = bounded(
            limit,
            state
                .queue
                .take_over_manual_slot(run_date, &holder, &run_id, hold),
        )
        .await
        .map_err(|e| unavailable("taking over the run date failed", &e))?;
        if !taken {
            return Err(ApiError::Conflict {
                message: "another manual run for this date was just started".into(),
            });
        }
    }

    let mut data = json!({"run_id": run_id, "trigger": "manual", "run_date": run_date});
    if let (Some(regions), Some(map)) = (&regions, data.as_object_mut()) {
        map.insert("regions".into(), json!(regions));
    }
    let job = RunJob {
        job_id: run_id.clone(),
        data,
        attempts: state.settings.job_attempts,
        backoff_delay: state.settings.backoff_delay,
    };
    let job_id = match bounded(limit, state.queue.add_run_job(&job)).await {
        Ok(id) => id,
        Err(e) => {
            // Give the date back so a retry is not refused with 409 for a run that never existed.
            if let Err(release) =
                bounded(limit, state.queue.release_manual_slot(run_date, &run_id)).await
            {
                tracing::warn!(error = %release, "could not release the run date");
            }
            return Err(unavailable("adding the run job failed", &e));
        }
    };
    let worker_kicked = match timeout(limit, state.kick.kick()).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "worker kick failed; the sweep will drain the queue");
            false
        }
        Err(_) => {
            tracing::warn!("worker kick timed out; the sweep will drain the queue");
            false
        }
    };
    tracing::info!(run_id = %run_id, %run_date, worker_kicked, "manual run queued");
    Ok(Accepted {
        run_id,
        job_id,
        status: "queued",
        run_date,
        regions,
        worker_kicked,
    })
}

async fn rate_limit<Q, K, R, L: RateLimiter>(
    state: &TriggerState<Q, K, R, L>,
    caller: &str,
) -> Result<(), ApiError> {
    match timeout(state.settings.call_timeout, state.limiter.acquire(caller)).await {
        Ok(Ok(decision)) if decision.allowed => Ok(()),
        Ok(Ok(decision)) => Err(ApiError::TooManyRequests {
            retry_after: decision.retry_after,
        }),
        // Fail closed: an admin action without a working limiter (and Redis) cannot proceed anyway.
        Ok(Err(e)) => {
            tracing::error!(error = %e, "rate limiter unavailable");
            Err(ApiError::Unavailable {
                dependency: "redis",
            })
        }
        Err(_) => Err(ApiError::Unavailable {
            dependency: "redis",
        }),
    }
}

/// True when the manual run `holder` has not finished: its run record says running, or (no record
/// yet) its run job is still pending in the queue.
async fn still_running<Q: RunQueue, K, R: RunStatusSource, L>(
    state: &TriggerState<Q, K, R, L>,
    holder: &str,
) -> Result<bool, ApiError> {
    let limit = state.settings.call_timeout;
    let record = match timeout(limit, state.runs.run(holder)).await {
        Ok(Ok(record)) => record,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "reading the run record failed");
            return Err(ApiError::Unavailable {
                dependency: "run records",
            });
        }
        Err(_) => {
            return Err(ApiError::Unavailable {
                dependency: "run records",
            })
        }
    };
    if let Some(run) = record {
        return Ok(run.state == RunPhase::Running);
    }
    match bounded(limit, state.queue.job_phase(holder)).await {
        Ok(phase) => Ok(phase == Some(JobPhase::Pending)),
        Err(e) => {
            tracing::error!(error = %e, "reading the run job failed");
            Err(ApiError::Unavailable {
                dependency: "queue",
            })
        }
    }
}

async fn bounded<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, QueueFailure>>,
) -> Result<T, QueueFailure> {
    timeout(limit, call).await.unwrap_or_else(|_| {
        Err(QueueFailure(format!(
            "no answer within {} ms",
            limit.as_millis()
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::rate_limit::{RateDecision, RateLimitError, Unlimited};
    use crate::api::runs::{MemoryRuns, NoRunRecords, RunStatus};
    use crate::config::Secret;
    use chrono::TimeZone;
    use std::collections::{BTreeMap, HashMap};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// An in-memory queue that records what the handler did.
    #[derive(Default)]
    struct FakeQueue {
        slots: Mutex<HashMap<NaiveDate, String>>,
        jobs: Mutex<Vec<RunJob>>,
        phases: Mutex<HashMap<String, JobPhase>>,
        fail_add: bool,
    }

    impl RunQueue for FakeQueue {
        async fn claim_manual_slot(
            &self,
            run_date: NaiveDate,
            run_id: &str,
            _hold: Duration,
        ) -> Result<SlotClaim, QueueFailure> {
            let mut slots = self.slots.lock().unwrap();
            match slots.get(&run_date) {
                Some(holder) => Ok(SlotClaim::Held {
                    run_id: holder.clone(),
                }),
                None => {
                    slots.insert(run_date, run_id.to_string());
                    Ok(SlotClaim::Claimed)
                }
            }
        }
        async fn take_over_manual_slot(
            &self,
            run_date: NaiveDate,
            stale: &str,
            run_id: &str,
            _hold: Duration,
        ) -> Result<bool, QueueFailure> {
            let mut slots = self.slots.lock().unwrap();
            if slots.get(&run_date).map(String::as_str) == Some(stale) {
                slots.insert(run_date, run_id.to_string());
                Ok(true)
            } else {
                Ok(false)
            }
        }
        async fn release_manual_slot(
            &self,
            run_date: NaiveDate,
            run_id: &str,
        ) -> Result<(), QueueFailure> {
            let mut slots = self.slots.lock().unwrap();
            if slots.get(&run_date).map(String::as_str) == Some(run_id) {
                slots.remove(&run_date);
            }
            Ok(())
        }
        async fn add_run_job(&self, job: &RunJob) -> Result<String, QueueFailure> {
            if self.fail_add {
                return Err(QueueFailure("connection refused".into()));
            }
            self.jobs.lock().unwrap().push(job.clone());
            self.phases
                .lock()
                .unwrap()
                .insert(job.job_id.clone(), JobPhase::Pending);
            Ok(job.job_id.clone())
        }
        async fn job_phase(&self, job_id: &str) -> Result<Option<JobPhase>, QueueFailure> {
            Ok(self.phases.lock().unwrap().get(job_id).copied())
        }
    }

    #[derive(Default)]
    struct CountingKick {
        kicks: AtomicUsize,
        fail: bool,
    }
    impl WorkerKick for CountingKick {
        async fn kick(&self) -> Result<(), KickError> {
            self.kicks.fetch_add(1, Ordering::SeqCst);
            if self.fail {
                Err(KickError("throttled".into()))
            } else {
                Ok(())
            }
        }
    }

    /// Allows `n` requests per caller, then denies.
    struct Budget(Mutex<HashMap<String, u32>>, u32);
    impl RateLimiter for Budget {
        async fn acquire(&self, caller: &str) -> Result<RateDecision, RateLimitError> {
            let mut used = self.0.lock().unwrap();
            let n = used.entry(caller.to_string()).or_default();
            *n += 1;
            Ok(RateDecision {
                allowed: *n <= self.1,
                remaining: 0,
                retry_after: Duration::from_millis(2500),
            })
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap()
    }

    fn state<R: RunStatusSource, L: RateLimiter>(
        queue: FakeQueue,
        kick: CountingKick,
        runs: R,
        limiter: L,
    ) -> TriggerState<FakeQueue, CountingKick, R, L> {
        TriggerState {
            auth: AdminAuth::new(Some(Secret::new("local-admin-key-0001"))),
            limiter,
            queue,
            kick,
            runs,
            settings: TriggerSettings::default(),
            clock: Arc::new(now),
        }
    }

    fn fixture(name: &str) -> Request {
        let path = format!(
            "{}/../../tests/fixtures/events/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        lambda_http::request::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    async fn call<R: RunStatusSource, L: RateLimiter>(
        state: &TriggerState<FakeQueue, CountingKick, R, L>,
        name: &str,
    ) -> (u16, Value, Response<Body>) {
        let response = trigger(state, fixture(name)).await.unwrap();
        let body = serde_json::from_slice(response.body().as_ref()).unwrap();
        (response.status().as_u16(), body, response)
    }

    #[tokio::test]
    async fn an_admin_request_adds_one_run_job_and_kicks_a_worker() {
        // GIVEN the fixture POST with the admin key, regions [eu-west] and run_date 2026-12-03
        let state = state(
            FakeQueue::default(),
            CountingKick::default(),
            NoRunRecords,
            Unlimited,
        );
        // WHEN it is handled
        let (status, body, _) = call(&state, "apigw-v2-post-test.json").await;
        // THEN 202 with the run id, one job with the agreed id, data and options, and one kick
        assert_eq!(status, 202, "{body}");
        let run_id = body["run_id"].as_str().unwrap();
        assert_eq!(body["job_id"], run_id);
        assert_eq!(body["status"], "queued");
        assert_eq!(body["worker_kicked"], true);
        let suffix = run_id.strip_prefix("manual-2026-12-03-").unwrap();
        assert!(
            suffix.len() == 8 && suffix.bytes().all(|b| b.is_ascii_hexdigit()),
            "{run_id}"
        );
        let jobs = state.queue.jobs.lock().unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(
            jobs[0].data,
            json!({"run_id": run_id, "trigger": "manual", "run_date": "2026-12-03", "regions": ["eu-west"]})
        );
        assert_eq!(
            (jobs[0].attempts, jobs[0].backoff_delay),
            (3, Duration::from_millis(30_000))
        );
        assert_eq!(state.kick.kicks.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_empty_body_runs_today_for_all_regions() {
        let state = state(
            FakeQueue::default(),
            CountingKick::default(),
            NoRunRecords,
            Unlimited,
        );
        let (status, body, _) = call(&state, "apigw-v2-post-test-empty-body.json").await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["run_date"], "2026-12-03");
        assert!(body.get("regions").is_none());
        assert!(state.queue.jobs.lock().unwrap()[0]
            .data
            .get("regions")
            .is_none());
    }

    #[tokio::test]
    async fn credentials_are_checked_before_anything_else() {
        let state = state(
            FakeQueue::default(),
            CountingKick::default(),
            NoRunRecords,
            Unlimited,
        );
        let (status, body, response) = call(&state, "apigw-v2-post-test-no-key.json").await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("unauthorized"))
        );
        assert!(response.headers().contains_key("www-authenticate"));
        let (status, body, _) = call(&state, "apigw-v2-post-test-wrong-key.json").await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("forbidden"))
        );
        assert!(state.queue.jobs.lock().unwrap().is_empty());
        assert_eq!(state.kick.kicks.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn an_iam_principal_is_an_admin_without_a_key() {
        let mut state = state(
            FakeQueue::default(),
            CountingKick::default(),
            NoRunRecords,
            Unlimited,
        );
        state.auth = AdminAuth::new(None);
        let (status, body, _) = call(&state, "apigw-v2-post-test-iam.json").await;
        assert_eq!(status, 202, "{body}");
    }

    #[tokio::test]
    async fn a_bad_body_names_each_field_and_echoes_no_value() {
        let state = state(
            FakeQueue::default(),
            CountingKick::default(),
            NoRunRecords,
            Unlimited,
        );
        let (status, body, _) = call(&state, "apigw-v2-post-test-bad-body.json").await;
        assert_eq!(status, 400);
        let fields: Vec<&str> = body["error"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            vec!["dry_run", "email", "run_date", "regions[1]", "regions[2]"]
        );
        let text = body.to_string();
        assert!(
            !text.contains("someone@example.com")
                && !text.contains("EU West")
                && !text.contains("2026-13-45"),
            "{text}"
        );
        assert!(state.queue.jobs.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn broken_json_is_400_and_wrong_method_is_405() {
        let state = state(
            FakeQueue::default(),
            CountingKick::default(),
            NoRunRecords,
            Unlimited,
        );
        let (status, body, _) = call(&state, "apigw-v2-post-test-not-json.json").await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_request"))
        );
        let (status, _, response) = call(&state, "apigw-v2-get-test-wrong-method.json").await;
        assert_eq!(status, 405);
        assert_eq!(response.headers()["allow"], "POST");
    }

    #[tokio::test]
    async fn oversized_and_non_json_bodies_are_413_and_415() {
        let state = state(
            FakeQueue::default(),
            CountingKick::default(),
            NoRunRecords,
            Unlimited,
        );
        let mut req = fixture("apigw-v2-post-test.json");
        *req.body_mut() = Body::Text(format!("{{\"regions\":[\"{}\"]}}", "a".repeat(5000)));
        let response = trigger(&state, req).await.unwrap();
        assert_eq!(response.status().as_u16(), 413);
        let mut req = fixture("apigw-v2-post-test.json");
        req.headers_mut()
            .insert("content-type", "text/plain".parse().unwrap());
        let response = trigger(&state, req).await.unwrap();
        assert_eq!(response.status().as_u16(), 415);
    }

    #[tokio::test]
    async fn a_second_manual_run_for_the_same_date_is_409_while_the_first_is_pending() {
        // GIVEN one accepted manual run for 2026-12-03 whose job is still waiting
        let state = state(
            FakeQueue::default(),
            CountingKick::default(),
            NoRunRecords,
            Unlimited,
        );
        let (status, first, _) = call(&state, "apigw-v2-post-test.json").await;
        assert_eq!(status, 202);
        // WHEN the same run is asked for again
        let (status, body, _) = call(&state, "apigw-v2-post-test.json").await;
        // THEN 409 names the run in progress, and nothing more was queued
        assert_eq!(status, 409);
        assert_eq!(body["error"]["code"], "conflict");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(first["run_id"].as_str().unwrap()));
        assert_eq!(state.queue.jobs.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_finished_manual_run_frees_its_date() {
        // GIVEN a first run, whose record then says it finished
        let mut state = state(
            FakeQueue::default(),
            CountingKick::default(),
            MemoryRuns::default(),
            Unlimited,
        );
        let (_, first, _) = call(&state, "apigw-v2-post-test.json").await;
        let run_id = first["run_id"].as_str().unwrap().to_string();
        state.runs.runs.push(RunStatus {
            run_id: run_id.clone(),
            trigger: "manual".into(),
            run_date: now().date_naive(),
            state: RunPhase::Finished,
            started_at: now(),
            finished_at: Some(now()),
            duration_ms: Some(10),
            pending_regions: 0,
            regions: BTreeMap::new(),
        });
        // WHEN the same date is asked for again
        let (status, second, _) = call(&state, "apigw-v2-post-test.json").await;
        // THEN it is accepted as a new run
        assert_eq!(status, 202, "{second}");
        assert_ne!(second["run_id"], first["run_id"]);
        assert_eq!(state.queue.jobs.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_failed_run_job_without_a_record_frees_its_date() {
        let state = state(
            FakeQueue::default(),
            CountingKick::default(),
            NoRunRecords,
            Unlimited,
        );
        let (_, first, _) = call(&state, "apigw-v2-post-test.json").await;
        state.queue.phases.lock().unwrap().insert(
            first["run_id"].as_str().unwrap().to_string(),
            JobPhase::Failed,
        );
        let (status, _, _) = call(&state, "apigw-v2-post-test.json").await;
        assert_eq!(status, 202);
    }

    #[tokio::test]
    async fn over_the_limit_is_429_with_retry_after_and_queues_nothing() {
        let state = state(
            FakeQueue::default(),
            CountingKick::default(),
            NoRunRecords,
            Budget(Mutex::default(), 1),
        );
        let (status, _, _) = call(&state, "apigw-v2-post-test-empty-body.json").await;
        assert_eq!(status, 202);
        let (status, body, response) = call(&state, "apigw-v2-post-test-empty-body.json").await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (429, Some("rate_limited"))
        );
        assert_eq!(response.headers()["retry-after"], "3");
        assert_eq!(state.queue.jobs.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn wrong_keys_are_rate_limited_by_source_address() {
        let state = state(
            FakeQueue::default(),
            CountingKick::default(),
            NoRunRecords,
            Budget(Mutex::default(), 2),
        );
        let codes: Vec<u16> = futures_codes(&state, "apigw-v2-post-test-wrong-key.json", 3).await;
        assert_eq!(codes, vec![403, 403, 429]);
    }

    async fn futures_codes<R: RunStatusSource, L: RateLimiter>(
        state: &TriggerState<FakeQueue, CountingKick, R, L>,
        name: &str,
        n: usize,
    ) -> Vec<u16> {
        let mut codes = Vec::new();
        for _ in 0..n {
            codes.push(call(state, name).await.0);
        }
        codes
    }

    #[tokio::test]
    async fn a_queue_failure_is_503_and_gives_the_date_back() {
        let state = state(
            FakeQueue {
                fail_add: true,
                ..Default::default()
            },
            CountingKick::default(),
            NoRunRecords,
            Unlimited,
        );
        let (status, body, _) = call(&state, "apigw-v2-post-test.json").await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (503, Some("unavailable"))
        );
        assert!(state.queue.slots.lock().unwrap().is_empty());
        assert_eq!(state.kick.kicks.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_failed_kick_still_accepts_the_queued_run() {
        let state = state(
            FakeQueue::default(),
            CountingKick {
                fail: true,
                ..Default::default()
            },
            NoRunRecords,
            Unlimited,
        );
        let (status, body, _) = call(&state, "apigw-v2-post-test.json").await;
        assert_eq!(status, 202);
        assert_eq!(body["worker_kicked"], false);
        assert_eq!(state.queue.jobs.lock().unwrap().len(), 1);
    }
}
