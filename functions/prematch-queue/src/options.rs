//! Job options in BullMQ's stored form (`opts` JSON of the job hash), their validation and backoff.

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::error::QueueError;
use crate::scores::MAX_PRIORITY;

/// How long to wait before a retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackoffKind {
    /// The same delay before every retry.
    Fixed,
    /// `2^(n-1) * delay` before the n-th retry.
    Exponential,
    /// A custom strategy named by a Node worker; we retry it with the fixed delay.
    Other(String),
}

/// Backoff between attempts, stored as `{type, delay, jitter?}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    /// Fixed or exponential.
    pub kind: BackoffKind,
    /// Base delay in milliseconds.
    pub delay_ms: u64,
    /// Jitter in (0, 1]: the delay is drawn from `[d*(1-j), d]`. `None` means no jitter.
    pub jitter: Option<f64>,
}

impl Backoff {
    /// `delay_ms` before every retry.
    pub fn fixed(delay_ms: u64) -> Backoff {
        Backoff {
            kind: BackoffKind::Fixed,
            delay_ms,
            jitter: None,
        }
    }

    /// `2^(n-1) * delay_ms` before the n-th retry.
    pub fn exponential(delay_ms: u64) -> Backoff {
        Backoff {
            kind: BackoffKind::Exponential,
            delay_ms,
            jitter: None,
        }
    }

    /// The same backoff with jitter in (0, 1].
    pub fn with_jitter(mut self, jitter: f64) -> Backoff {
        self.jitter = Some(jitter);
        self
    }

    /// The delay before retry number `attempts_made` (1 after the first failure), BullMQ's formula.
    /// `unit` is a uniform random number in [0, 1) used only with jitter.
    pub fn delay_for(&self, attempts_made: u32, unit: f64) -> u64 {
        let max = match self.kind {
            BackoffKind::Exponential => {
                let exp = attempts_made.saturating_sub(1).min(52);
                ((2f64).powi(exp as i32) * self.delay_ms as f64).round()
            }
            BackoffKind::Fixed | BackoffKind::Other(_) => self.delay_ms as f64,
        };
        match self.jitter {
            Some(j) if j > 0.0 => {
                let j = j.min(1.0);
                (unit * max * j + max * (1.0 - j)).floor() as u64
            }
            _ => max as u64,
        }
    }

    fn to_json(&self) -> Value {
        let kind = match &self.kind {
            BackoffKind::Fixed => "fixed".to_string(),
            BackoffKind::Exponential => "exponential".to_string(),
            BackoffKind::Other(s) => s.clone(),
        };
        let mut m = Map::new();
        m.insert("type".into(), Value::String(kind));
        m.insert("delay".into(), json!(self.delay_ms));
        if let Some(j) = self.jitter {
            m.insert("jitter".into(), json!(j));
        }
        Value::Object(m)
    }

    fn from_json(v: &Value) -> Result<Backoff, QueueError> {
        let bad = |reason: &str| QueueError::InvalidOption {
            option: "backoff",
            reason: reason.to_string(),
        };
        if let Some(n) = v.as_u64() {
            return Ok(Backoff::fixed(n));
        }
        let obj = v
            .as_object()
            .ok_or_else(|| bad("expected a number or {type, delay}"))?;
        let kind = match obj.get("type").and_then(Value::as_str) {
            Some("fixed") => BackoffKind::Fixed,
            Some("exponential") => BackoffKind::Exponential,
            Some(other) => BackoffKind::Other(other.to_string()),
            None => return Err(bad("missing type")),
        };
        let delay_ms = match obj.get("delay") {
            None | Some(Value::Null) => 0,
            Some(d) => d
                .as_f64()
                .filter(|d| *d >= 0.0)
                .ok_or_else(|| bad("delay must be a number >= 0"))? as u64,
        };
        let jitter = obj.get("jitter").and_then(Value::as_f64);
        Ok(Backoff {
            kind,
            delay_ms,
            jitter,
        })
    }
}

/// Retention of finished jobs (`removeOnComplete` / `removeOnFail`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeepJobs {
    /// `true`: delete the job as soon as it finishes.
    Remove,
    /// `false`: keep every finished job (BullMQ's default).
    KeepAll,
    /// `N`: keep the newest N.
    Count(u64),
    /// `{age, count?, limit?}`: drop jobs older than `age_secs`, keep at most `count`, remove at most
    /// `limit` per finish.
    Age {
        /// Maximum age in seconds.
        age_secs: u64,
        /// Also keep at most this many.
        count: Option<u64>,
        /// Remove at most this many old jobs per call (BullMQ's default 1000).
        limit: Option<u64>,
    },
}

impl KeepJobs {
    /// The script's (count, age seconds, limit): count -1 keeps all, 0 deletes the job.
    pub(crate) fn script_args(option: Option<&KeepJobs>) -> (i64, u64, u64) {
        match option {
            None | Some(KeepJobs::KeepAll) => (-1, 0, 0),
            Some(KeepJobs::Remove) => (0, 0, 0),
            Some(KeepJobs::Count(n)) => (*n as i64, 0, 0),
            Some(KeepJobs::Age {
                age_secs,
                count,
                limit,
            }) => (
                count.map(|c| c as i64).unwrap_or(-1),
                *age_secs,
                limit.unwrap_or(0),
            ),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            KeepJobs::Remove => Value::Bool(true),
            KeepJobs::KeepAll => Value::Bool(false),
            KeepJobs::Count(n) => json!(n),
            KeepJobs::Age {
                age_secs,
                count,
                limit,
            } => {
                let mut m = Map::new();
                m.insert("age".into(), json!(age_secs));
                if let Some(c) = count {
                    m.insert("count".into(), json!(c));
                }
                if let Some(l) = limit {
                    m.insert("limit".into(), json!(l));
                }
                Value::Object(m)
            }
        }
    }

    fn from_json(option: &'static str, v: &Value) -> Result<KeepJobs, QueueError> {
        let bad = |reason: &str| QueueError::InvalidOption {
            option,
            reason: reason.to_string(),
        };
        match v {
            Value::Bool(true) => Ok(KeepJobs::Remove),
            Value::Bool(false) => Ok(KeepJobs::KeepAll),
            Value::Number(n) => n
                .as_u64()
                .map(KeepJobs::Count)
                .ok_or_else(|| bad("count must be >= 0")),
            Value::Object(m) => {
                let num = |k: &str| m.get(k).and_then(Value::as_f64).map(|f| f.max(0.0) as u64);
                match num("age") {
                    Some(age_secs) => Ok(KeepJobs::Age {
                        age_secs,
                        count: num("count"),
                        limit: num("limit"),
                    }),
                    None => num("count")
                        .map(KeepJobs::Count)
                        .ok_or_else(|| bad("expected age or count")),
                }
            }
            _ => Err(bad("expected a bool, a count or {age, count}")),
        }
    }
}

/// Options of one job, as BullMQ's `JobsOptions`. Unknown options read from Node jobs are kept in
/// `extra` so a round trip does not lose them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobOptions {
    /// Custom id; adding an existing id adds nothing and returns the existing job.
    pub job_id: Option<String>,
    /// Delay before the job becomes ready.
    pub delay: Option<Duration>,
    /// 1 (highest) ..= 2^21-1; 0/None = not prioritized (served before any prioritized job).
    pub priority: Option<u32>,
    /// Put the job at the front of the wait list.
    pub lifo: bool,
    /// Total tries including the first (BullMQ stores 0 when unset; 0 and 1 both mean one try).
    pub attempts: Option<u32>,
    /// Delay between tries.
    pub backoff: Option<Backoff>,
    /// Retention once completed.
    pub remove_on_complete: Option<KeepJobs>,
    /// Retention once failed for good.
    pub remove_on_fail: Option<KeepJobs>,
    /// Creation time in ms (default: now).
    pub timestamp: Option<u64>,
    /// How many stack traces to keep across attempts (default: all).
    pub stack_trace_limit: Option<u32>,
    /// Options this crate does not interpret (e.g. `kl`, `de`, `parent`), kept verbatim.
    pub extra: Map<String, Value>,
}

impl JobOptions {
    /// Checks the options against BullMQ's rules (id format, priority range).
    pub fn validate(&self) -> Result<(), QueueError> {
        if let Some(id) = &self.job_id {
            validate_job_id(id)?;
        }
        if let Some(p) = self.priority {
            if p > MAX_PRIORITY {
                return Err(QueueError::InvalidOption {
                    option: "priority",
                    reason: format!("{p} is above the maximum {MAX_PRIORITY}"),
                });
            }
        }
        if let Some(Backoff {
            jitter: Some(j), ..
        }) = &self.backoff
        {
            if !(*j > 0.0 && *j <= 1.0) {
                return Err(QueueError::InvalidOption {
                    option: "backoff",
                    reason: format!("jitter {j} is not in (0, 1]"),
                });
            }
        }
        Ok(())
    }

    /// Delay in ms (0 when none).
    pub fn delay_ms(&self) -> u64 {
        self.delay.map(|d| d.as_millis() as u64).unwrap_or(0)
    }

    /// The stored `opts` JSON, with BullMQ's names; `attempts` is always present.
    pub fn to_json(&self) -> Value {
        let mut m = self.extra.clone();
        m.insert("attempts".into(), json!(self.attempts.unwrap_or(0)));
        if let Some(id) = &self.job_id {
            m.insert("jobId".into(), Value::String(id.clone()));
        }
        if self.delay_ms() > 0 {
            m.insert("delay".into(), json!(self.delay_ms()));
        }
        if let Some(p) = self.priority.filter(|p| *p > 0) {
            m.insert("priority".into(), json!(p));
        }
        if self.lifo {
            m.insert("lifo".into(), Value::Bool(true));
        }
        if let Some(b) = &self.backoff {
            m.insert("backoff".into(), b.to_json());
        }
        if let Some(k) = &self.remove_on_complete {
            m.insert("removeOnComplete".into(), k.to_json());
        }
        if let Some(k) = &self.remove_on_fail {
            m.insert("removeOnFail".into(), k.to_json());
        }
        if let Some(t) = self.timestamp {
            m.insert("timestamp".into(), json!(t));
        }
        if let Some(l) = self.stack_trace_limit {
            m.insert("stackTraceLimit".into(), json!(l));
        }
        Value::Object(m)
    }

    /// Reads a stored `opts` JSON (ours or Node's).
    pub fn from_json(v: &Value) -> Result<JobOptions, QueueError> {
        let obj = v.as_object().ok_or_else(|| QueueError::InvalidOption {
            option: "opts",
            reason: "expected a JSON object".into(),
        })?;
        let mut o = JobOptions::default();
        let num = |k: &'static str, v: &Value| {
            v.as_f64()
                .filter(|f| *f >= 0.0)
                .map(|f| f as u64)
                .ok_or_else(|| QueueError::InvalidOption {
                    option: k,
                    reason: format!("expected a number >= 0, got {v}"),
                })
        };
        for (k, val) in obj {
            match k.as_str() {
                "attempts" => o.attempts = Some(num("attempts", val)? as u32),
                "jobId" => {
                    o.job_id = val
                        .as_str()
                        .map(str::to_string)
                        .or_else(|| Some(val.to_string()))
                }
                "delay" => {
                    o.delay =
                        Some(Duration::from_millis(num("delay", val)?)).filter(|d| !d.is_zero())
                }
                "priority" => o.priority = Some(num("priority", val)? as u32).filter(|p| *p > 0),
                "lifo" => o.lifo = val.as_bool().unwrap_or(false),
                "backoff" => o.backoff = Some(Backoff::from_json(val)?),
                "removeOnComplete" => {
                    o.remove_on_complete = Some(KeepJobs::from_json("removeOnComplete", val)?)
                }
                "removeOnFail" => {
                    o.remove_on_fail = Some(KeepJobs::from_json("removeOnFail", val)?)
                }
                "timestamp" => o.timestamp = Some(num("timestamp", val)?),
                "stackTraceLimit" => {
                    o.stack_trace_limit = Some(num("stackTraceLimit", val)? as u32)
                }
                _ => {
                    o.extra.insert(k.clone(), val.clone());
                }
            }
        }
        Ok(o)
    }
}

/// BullMQ's custom id rules: not an integer (collides with counter ids), no `:`, not `0`.
pub(crate) fn validate_job_id(id: &str) -> Result<(), QueueError> {
    let bad = |reason| {
        Err(QueueError::InvalidJobId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("must not be empty");
    }
    if id.parse::<i64>().is_ok() {
        return bad("must not be an integer (those are counter ids)");
    }
    if id.contains(':') {
        return bad("must not contain ':'");
    }
    Ok(())
}

/// One job of a bulk add.
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    /// Job name.
    pub name: String,
    /// Payload (stored as JSON text).
    pub data: Value,
    /// Options.
    pub opts: JobOptions,
}

impl NewJob {
    /// A job with default options.
    pub fn new(name: impl Into<String>, data: Value) -> NewJob {
        NewJob {
            name: name.into(),
            data,
            opts: JobOptions::default(),
        }
    }

    /// The same job with these options.
    pub fn with_opts(mut self, opts: JobOptions) -> NewJob {
        self.opts = opts;
        self
    }
}

/// Queue-level rate limit: at most `max` jobs started per `duration` (BullMQ's limiter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Jobs per window.
    pub max: u64,
    /// Window length.
    pub duration: Duration,
}
