//! A job as read from its Redis hash, job states, per-state counts and events-stream entries.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::QueueError;
use crate::options::JobOptions;

/// The state structure that holds a job id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobState {
    /// In the `wait` list (also while the queue is paused, in v6).
    Waiting,
    /// In the `active` list.
    Active,
    /// In the `delayed` set.
    Delayed,
    /// In the `prioritized` set.
    Prioritized,
    /// In the `completed` set.
    Completed,
    /// In the `failed` set.
    Failed,
    /// In the `waiting-children` set (flow parents).
    WaitingChildren,
    /// In the legacy v5 `paused` list.
    Paused,
}

impl JobState {
    /// Every state, in BullMQ's `getJobCounts` default order plus legacy `paused`.
    pub const ALL: [JobState; 8] = [
        JobState::Active,
        JobState::Completed,
        JobState::Delayed,
        JobState::Failed,
        JobState::Prioritized,
        JobState::Waiting,
        JobState::WaitingChildren,
        JobState::Paused,
    ];

    /// Key suffix of the structure holding the state.
    pub fn key_suffix(self) -> &'static str {
        match self {
            JobState::Waiting => "wait",
            JobState::Active => "active",
            JobState::Delayed => "delayed",
            JobState::Prioritized => "prioritized",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::WaitingChildren => "waiting-children",
            JobState::Paused => "paused",
        }
    }

    /// Whether the structure is a LIST (else a ZSET).
    pub fn is_list(self) -> bool {
        matches!(
            self,
            JobState::Waiting | JobState::Active | JobState::Paused
        )
    }
}

/// Number of jobs per state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCounts {
    /// Ready jobs in `wait` (including those of a paused queue).
    pub waiting: u64,
    /// Jobs being processed.
    pub active: u64,
    /// Jobs waiting for a due time.
    pub delayed: u64,
    /// Ready jobs with a priority.
    pub prioritized: u64,
    /// Finished jobs kept by retention.
    pub completed: u64,
    /// Failed jobs kept by retention.
    pub failed: u64,
    /// Jobs in the legacy v5 `paused` list (v6 writes none).
    pub paused: u64,
    /// Flow parents waiting for children.
    pub waiting_children: u64,
}

impl JobCounts {
    /// Jobs not yet finished: waiting + active + delayed + prioritized + paused + waiting-children.
    pub fn unfinished(&self) -> u64 {
        self.waiting
            + self.active
            + self.delayed
            + self.prioritized
            + self.paused
            + self.waiting_children
    }
}

/// A job read from its hash `{prefix}:{queue}:{id}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Job {
    /// Job id (the key suffix).
    pub id: String,
    /// Job name.
    pub name: String,
    /// Payload.
    pub data: Value,
    /// Options (compact BullMQ names decoded).
    #[serde(skip)]
    pub opts: JobOptions,
    /// The stored `opts` JSON as is.
    pub opts_json: Value,
    /// Creation time, ms.
    pub timestamp: u64,
    /// Current delay in ms (0 once promoted).
    pub delay: u64,
    /// Priority (0 = none).
    pub priority: u32,
    /// Start of the current or last attempt, ms.
    pub processed_on: Option<u64>,
    /// End of processing, ms.
    pub finished_on: Option<u64>,
    /// `atm`: attempts finished (completed, failed or retried).
    pub attempts_made: u32,
    /// `ats`: attempts started.
    pub attempts_started: u32,
    /// `stc`: times found stalled.
    pub stalled_counter: u32,
    /// Last progress (JSON).
    pub progress: Option<Value>,
    /// Return value once completed (JSON).
    pub return_value: Option<Value>,
    /// Last failure reason.
    pub failed_reason: Option<String>,
    /// Stack traces, one per failed attempt.
    pub stacktrace: Vec<String>,
    /// `defa`: the job must be failed with this reason when next fetched.
    pub deferred_failure: Option<String>,
    /// Parent job key for flow children.
    pub parent_key: Option<String>,
}

fn num(v: Option<&str>) -> Option<u64> {
    v.and_then(|v| v.parse::<f64>().ok())
        .map(|f| f.max(0.0) as u64)
}

impl Job {
    /// Parses a job hash (HGETALL). `None` when the hash is empty (no such job).
    pub fn from_hash(id: &str, h: &HashMap<String, String>) -> Result<Option<Job>, QueueError> {
        if h.is_empty() {
            return Ok(None);
        }
        Job::from_fields(id, |k| h.get(k).map(String::as_str))
    }

    /// Parses a job hash given as the flat field/value list HGETALL returns (the worker's hot path:
    /// no map is built). `None` when the list is empty (no such job).
    pub(crate) fn from_pairs(id: &str, pairs: &[(&str, &str)]) -> Result<Option<Job>, QueueError> {
        if pairs.is_empty() {
            return Ok(None);
        }
        Job::from_fields(id, |k| pairs.iter().find(|(f, _)| *f == k).map(|(_, v)| *v))
    }

    fn from_fields<'a>(
        id: &str,
        get: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<Option<Job>, QueueError> {
        let json = |field: &'static str| -> Result<Option<Value>, QueueError> {
            match get(field) {
                None => Ok(None),
                Some(s) => {
                    serde_json::from_str(s)
                        .map(Some)
                        .map_err(|e| QueueError::MalformedJob {
                            id: id.to_string(),
                            field,
                            detail: e.to_string(),
                        })
                }
            }
        };
        let opts_json = json("opts")?.unwrap_or_else(|| Value::Object(Default::default()));
        let opts = JobOptions::from_json(&opts_json).map_err(|e| QueueError::MalformedJob {
            id: id.to_string(),
            field: "opts",
            detail: e.to_string(),
        })?;
        let stacktrace = match json("stacktrace")? {
            Some(Value::Array(a)) => a
                .into_iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect(),
            _ => Vec::new(),
        };
        let text = |k: &str| get(k).map(str::to_string);
        Ok(Some(Job {
            id: id.to_string(),
            name: text("name").unwrap_or_default(),
            data: json("data")?.unwrap_or(Value::Object(Default::default())),
            opts,
            opts_json,
            timestamp: num(get("timestamp")).unwrap_or(0),
            delay: num(get("delay")).unwrap_or(0),
            priority: num(get("priority")).unwrap_or(0) as u32,
            processed_on: num(get("processedOn")),
            finished_on: num(get("finishedOn")),
            attempts_made: num(get("attemptsMade"))
                .or_else(|| num(get("atm")))
                .unwrap_or(0) as u32,
            attempts_started: num(get("ats")).unwrap_or(0) as u32,
            stalled_counter: num(get("stc")).unwrap_or(0) as u32,
            progress: json("progress")?,
            return_value: json("returnvalue")?,
            failed_reason: text("failedReason"),
            stacktrace,
            deferred_failure: text("defa"),
            parent_key: text("parentKey"),
        }))
    }
}

/// One entry of the queue's events stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QueueEvent {
    /// Stream entry id.
    pub id: String,
    /// The `event` field (added, waiting, active, completed, ...).
    pub event: String,
    /// The other fields (jobId, prev, returnvalue, ...).
    pub fields: HashMap<String, String>,
}
