//! CloudWatch Embedded Metric Format (EMF): one JSON line per job and per drain, namespace `Prematch`.
//!
//! EMF must not go through the tracing formatter (it would nest the object under `fields`), so a
//! record is written straight to stdout and flushed before the handler returns.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value};

static EMF_ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns EMF output on or off for the process: on in Lambda (CloudWatch reads stdout), off in the
/// local CLI, whose stdout is for people.
pub fn set_enabled(enabled: bool) {
    EMF_ENABLED.store(enabled, Ordering::Relaxed);
}

/// The CloudWatch namespace of every prematch metric.
pub const NAMESPACE: &str = "Prematch";

/// The roll-up dimension every record also carries (`Service = prematch`), so alarms can watch a
/// metric across all job names and events with one dimension.
pub const SERVICE_DIMENSION: (&str, &str) = ("Service", "prematch");

/// Metric names used by the worker (one place, so alarms and code agree).
pub mod names {
    /// Jobs that completed in this job/drain.
    pub const JOBS_COMPLETED: &str = "JobsCompleted";
    /// Jobs that failed (any attempt) in this job/drain.
    pub const JOBS_FAILED: &str = "JobsFailed";
    /// Wall time of a job or drain.
    pub const JOB_DURATION_MS: &str = "JobDurationMs";
    /// Jobs waiting in the queue when the record was made.
    pub const QUEUE_WAITING: &str = "QueueWaiting";
    /// Jobs delayed (retries with backoff) in the queue.
    pub const QUEUE_DELAYED: &str = "QueueDelayed";
    /// Jobs in the queue's failed set.
    pub const QUEUE_FAILED: &str = "QueueFailed";
    /// Users read and matched.
    pub const USERS_PROCESSED: &str = "UsersProcessed";
    /// Suggestion items written to the matches table.
    pub const SUGGESTIONS_WRITTEN: &str = "SuggestionsWritten";
    /// Bad user records skipped.
    pub const USERS_SKIPPED: &str = "UsersSkipped";
    /// Dead letters that could not be sent to SQS (kept in Redis only).
    pub const DEAD_LETTER_SEND_FAILURES: &str = "DeadLetterSendFailures";
}

/// The unit of a metric, as CloudWatch spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A plain count.
    Count,
    /// Milliseconds.
    Milliseconds,
    /// Seconds.
    Seconds,
    /// No unit.
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
            Unit::None => "None",
        }
    }
}

/// One EMF record: low-cardinality dimensions, metric values and free properties.
///
/// ```
/// use prematch_app::metrics::{names, MetricRecord};
/// let line = MetricRecord::new()
///     .dimension("Function", "prematch-worker")
///     .dimension("JobName", "region")
///     .count(names::JOBS_COMPLETED, 1)
///     .millis(names::JOB_DURATION_MS, 1234)
///     .property("run_id", "run:2026-12-03")
///     .to_line();
/// assert!(line.starts_with('{') && !line.contains('\n'));
/// ```
#[derive(Debug, Clone, Default)]
pub struct MetricRecord {
    namespace: Option<String>,
    dimensions: Vec<(String, String)>,
    metrics: Vec<(String, Unit, f64)>,
    properties: Map<String, Value>,
    timestamp_ms: Option<i64>,
}

impl MetricRecord {
    /// An empty record in the `Prematch` namespace.
    pub fn new() -> MetricRecord {
        MetricRecord::default()
    }

    /// Another namespace (tests).
    pub fn namespace(mut self, namespace: impl Into<String>) -> MetricRecord {
        self.namespace = Some(namespace.into());
        self
    }

    /// A dimension. Keep them low-cardinality (function, job name, outcome): never a user id.
    pub fn dimension(mut self, name: impl Into<String>, value: impl Into<String>) -> MetricRecord {
        let name = name.into();
        self.dimensions.retain(|(n, _)| *n != name);
        self.dimensions.push((name, value.into()));
        self
    }

    /// A metric value with a unit; a later value of the same name replaces an earlier one.
    pub fn metric(mut self, name: impl Into<String>, unit: Unit, value: f64) -> MetricRecord {
        let name = name.into();
        self.metrics.retain(|(n, _, _)| *n != name);
        self.metrics.push((name, unit, value));
        self
    }

    /// A count metric.
    pub fn count(self, name: impl Into<String>, value: u64) -> MetricRecord {
        self.metric(name, Unit::Count, value as f64)
    }

    /// A duration metric in milliseconds.
    pub fn millis(self, name: impl Into<String>, value: u64) -> MetricRecord {
        self.metric(name, Unit::Milliseconds, value as f64)
    }

    /// A property: searchable in Logs Insights, not a metric (run id, job id, region).
    pub fn property(mut self, name: impl Into<String>, value: impl Into<Value>) -> MetricRecord {
        self.properties.insert(name.into(), value.into());
        self
    }

    /// A fixed timestamp (epoch ms) instead of now (tests).
    pub fn at(mut self, timestamp_ms: i64) -> MetricRecord {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }

    /// The record as a JSON object in EMF shape.
    pub fn to_value(&self) -> Value {
        let mut root = self.properties.clone();
        for (name, value) in &self.dimensions {
            root.insert(name.clone(), Value::String(value.clone()));
        }
        for (name, _, value) in &self.metrics {
            root.insert(name.clone(), serde_json::json!(value));
        }
        let (service, service_value) = SERVICE_DIMENSION;
        root.insert(service.into(), Value::String(service_value.into()));
        let own: Vec<Value> = self
            .dimensions
            .iter()
            .filter(|(n, _)| n != service)
            .map(|(n, _)| Value::String(n.clone()))
            .collect();
        // Each metric is published under the record's own dimensions and under the roll-up.
        let mut dimension_sets = vec![Value::Array(vec![Value::String(service.into())])];
        if !own.is_empty() {
            dimension_sets.insert(0, Value::Array(own));
        }
        let metric_defs: Vec<Value> = self
            .metrics
            .iter()
            .map(|(n, u, _)| serde_json::json!({"Name": n, "Unit": u.as_str()}))
            .collect();
        let timestamp = self
            .timestamp_ms
            .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
        root.insert(
            "_aws".into(),
            serde_json::json!({
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace.as_deref().unwrap_or(NAMESPACE),
                    "Dimensions": dimension_sets,
                    "Metrics": metric_defs,
                }]
            }),
        );
        Value::Object(root)
    }

    /// The record as one JSON line (no trailing newline).
    pub fn to_line(&self) -> String {
        self.to_value().to_string()
    }

    /// Writes the record as one line to `out` and flushes it.
    pub fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut line = self.to_line();
        line.push('\n');
        out.write_all(line.as_bytes())?;
        out.flush()
    }

    /// Writes the record to stdout and flushes; a failed write is logged, never fatal.
    pub fn emit(&self) {
        if !EMF_ENABLED.load(Ordering::Relaxed) {
            return;
        }
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        if let Err(err) = self.write_to(&mut lock) {
            tracing::warn!(error = %err, "could not write EMF metrics line");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_is_one_emf_line_with_dimensions_metrics_and_properties() {
        // GIVEN a job record
        let record = MetricRecord::new()
            .dimension("Function", "prematch-worker")
            .count(names::JOBS_COMPLETED, 2)
            .millis(names::JOB_DURATION_MS, 1500)
            .property("run_id", "run:2026-12-03")
            .at(1_796_292_520_000);
        // WHEN written
        let mut out = Vec::new();
        record.write_to(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        // THEN it is exactly one line of EMF JSON
        assert_eq!(text.matches('\n').count(), 1);
        let v: Value = serde_json::from_str(text.trim_end()).unwrap();
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(v["_aws"]["Timestamp"], 1_796_292_520_000i64);
        assert_eq!(directive["Namespace"], "Prematch");
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["Function"], ["Service"]])
        );
        assert_eq!(v["Service"], "prematch");
        assert_eq!(
            directive["Metrics"],
            serde_json::json!([{"Name":"JobsCompleted","Unit":"Count"},{"Name":"JobDurationMs","Unit":"Milliseconds"}])
        );
        assert_eq!(v["Function"], "prematch-worker");
        assert_eq!(v["JobsCompleted"], 2.0);
        assert_eq!(v["JobDurationMs"], 1500.0);
        assert_eq!(v["run_id"], "run:2026-12-03");
    }

    #[test]
    fn record_without_dimensions_is_published_under_the_roll_up_only() {
        let v = MetricRecord::new()
            .count(names::JOBS_COMPLETED, 1)
            .to_value();
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Service"]])
        );
    }

    #[test]
    fn repeated_metric_keeps_the_last_value_once() {
        let v = MetricRecord::new()
            .count(names::JOBS_FAILED, 1)
            .count(names::JOBS_FAILED, 3)
            .to_value();
        assert_eq!(v["JobsFailed"], 3.0);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
}
