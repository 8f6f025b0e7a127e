//! The worker's input: an EventBridge Scheduled Event, a drain sweep, or a manual run from the trigger.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What woke the worker up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkerEvent {
    /// The nightly EventBridge rule fired at `time`: add that day's run, then drain.
    Scheduled {
        /// The event's `time`; the run date is its UTC date.
        time: DateTime<Utc>,
    },
    /// Only drain: the sweep schedule and scale-out kicks send this.
    Drain,
    /// A manual run added by `POST /api/prematch/test` (or `prematch`), then drain.
    Manual {
        /// The run id the trigger answered with.
        run_id: String,
        /// The date the run matches for.
        run_date: NaiveDate,
        /// Only these regions, when given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        regions: Option<Vec<String>>,
    },
}

/// Why an event could not be understood. Its message names what was expected.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventError {
    /// The event is none of the three kinds.
    #[error("unknown worker event: expected an EventBridge \"Scheduled Event\", {{\"kind\":\"drain\"}} or {{\"kind\":\"manual\",...}}; got {0}")]
    Unknown(String),
    /// The event is of a known kind but a field is wrong.
    #[error("malformed {kind} event: {message}")]
    Malformed {
        /// Which kind of event it looked like.
        kind: &'static str,
        /// What was wrong with it.
        message: String,
    },
}

impl WorkerEvent {
    /// Reads the worker's payload. An unknown shape is an error, never a panic.
    pub fn from_json(value: &Value) -> Result<WorkerEvent, EventError> {
        if let Some(detail_type) = value.get("detail-type") {
            if detail_type.as_str() != Some("Scheduled Event") {
                return Err(EventError::Unknown(format!(
                    "an EventBridge event of detail-type {detail_type}"
                )));
            }
            let time = value.get("time").and_then(Value::as_str).ok_or_else(|| {
                malformed(
                    "scheduled",
                    "field `time` (an RFC 3339 timestamp) is missing",
                )
            })?;
            let time = DateTime::parse_from_rfc3339(time)
                .map_err(|e| {
                    malformed(
                        "scheduled",
                        &format!("field `time` = {time:?} is not RFC 3339: {e}"),
                    )
                })?
                .with_timezone(&Utc);
            return Ok(WorkerEvent::Scheduled { time });
        }
        match value.get("kind").and_then(Value::as_str) {
            Some("drain") => Ok(WorkerEvent::Drain),
            Some("manual") => serde_json::from_value(value.clone())
                .map_err(|e| malformed("manual", &e.to_string())),
            Some("scheduled") => serde_json::from_value(value.clone())
                .map_err(|e| malformed("scheduled", &e.to_string())),
            Some(other) => Err(EventError::Unknown(format!("kind {other:?}"))),
            None => Err(EventError::Unknown(describe(value))),
        }
    }

    /// The run this event asks for, if any: `(run_id, run_date, trigger, regions)`.
    pub fn run_request(&self) -> Option<RunRequest> {
        match self {
            WorkerEvent::Scheduled { time } => {
                let run_date = time.date_naive();
                Some(RunRequest {
                    run_id: scheduled_run_id(run_date),
                    run_date,
                    trigger: Trigger::Schedule,
                    regions: None,
                })
            }
            WorkerEvent::Manual {
                run_id,
                run_date,
                regions,
            } => Some(RunRequest {
                run_id: run_id.clone(),
                run_date: *run_date,
                trigger: Trigger::Manual,
                regions: regions.clone(),
            }),
            WorkerEvent::Drain => None,
        }
    }
}

/// How a run was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The nightly schedule.
    Schedule,
    /// `POST /api/prematch/test` or the CLI.
    Manual,
}

/// A run to add to the queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRequest {
    /// Deterministic for a schedule (`run-2026-12-03`), unique for a manual run.
    pub run_id: String,
    /// The date matched for.
    pub run_date: NaiveDate,
    /// What started it.
    pub trigger: Trigger,
    /// Only these regions, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<Vec<String>>,
}

/// The id of the scheduled run of a day: a second delivery of the same event maps to the same job.
pub fn scheduled_run_id(run_date: NaiveDate) -> String {
    format!("run-{run_date}")
}

fn malformed(kind: &'static str, message: &str) -> EventError {
    EventError::Malformed {
        kind,
        message: message.to_string(),
    }
}

/// A short description of an unknown payload: its top-level keys, never its values (they may be personal).
fn describe(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let keys: Vec<&str> = map.keys().map(String::as_str).take(8).collect();
            format!("an object with keys {keys:?}")
        }
        Value::Array(_) => "an array".to_string(),
        Value::String(_) => "a string".to_string(),
        Value::Number(_) => "a number".to_string(),
        Value::Bool(_) => "a boolean".to_string(),
        Value::Null => "null".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../../tests/fixtures/events/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn scheduled_event_fixture_becomes_the_days_run() {
        // GIVEN the EventBridge fixture WHEN it is read THEN the run id comes from its time
        let event = WorkerEvent::from_json(&fixture("scheduled-event.json")).unwrap();
        let run = event.run_request().unwrap();
        assert_eq!(run.run_id, "run-2026-12-03");
        assert_eq!(run.trigger, Trigger::Schedule);
        assert_eq!(run.run_date.to_string(), "2026-12-03");
    }

    #[test]
    fn the_same_schedule_delivered_twice_asks_for_the_same_run() {
        let a = WorkerEvent::from_json(&fixture("scheduled-event.json")).unwrap();
        let b = WorkerEvent::from_json(&fixture("scheduled-event.json")).unwrap();
        assert_eq!(
            a.run_request().unwrap().run_id,
            b.run_request().unwrap().run_id
        );
    }

    #[test]
    fn drain_fixture_asks_for_no_run() {
        let event = WorkerEvent::from_json(&fixture("drain.json")).unwrap();
        assert_eq!(event, WorkerEvent::Drain);
        assert!(event.run_request().is_none());
    }

    #[test]
    fn manual_fixture_keeps_its_run_id_and_regions() {
        let event = WorkerEvent::from_json(&fixture("manual-run.json")).unwrap();
        let run = event.run_request().unwrap();
        assert_eq!(run.trigger, Trigger::Manual);
        assert_eq!(run.regions, Some(vec!["eu-west".to_string()]));
        assert!(run.run_id.starts_with("manual-"));
    }

    #[test]
    fn unknown_event_is_a_clear_error_naming_its_keys_not_values() {
        let err = WorkerEvent::from_json(&fixture("unknown-event.json")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("unknown worker event"), "{text}");
        assert!(text.contains("Records"), "{text}");
        assert!(!text.contains("ObjectCreated"), "{text}");
    }

    #[test]
    fn scheduled_event_with_a_bad_time_names_the_field() {
        let err = WorkerEvent::from_json(
            &serde_json::json!({"detail-type": "Scheduled Event", "time": "yesterday"}),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            EventError::Malformed {
                kind: "scheduled",
                ..
            }
        ));
        assert!(err.to_string().contains("`time`"));
    }

    #[test]
    fn other_eventbridge_detail_types_are_unknown() {
        let err = WorkerEvent::from_json(
            &serde_json::json!({"detail-type": "Object Created", "time": "2026-12-03T00:00:00Z"}),
        )
        .unwrap_err();
        assert!(matches!(err, EventError::Unknown(_)));
    }
}
