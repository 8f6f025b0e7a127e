//! The SQS dead-letter queue: one message per job that failed its last attempt, and the
//! list/receive/delete operations `prematch dlq` uses to show and redrive them.

use std::time::Duration;

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};
use prematch_queue::{DeadLetter, DeadLetterSink};
use serde_json::Value;

use crate::config::Config;

/// SQS's limit is 256 KiB per message; stay clear of it with attributes included.
const MAX_BODY_BYTES: usize = 240 * 1024;
/// A stack trace kept in a message is cut to this many characters when the body is too big.
const MAX_STACK_CHARS: usize = 4000;

/// An SQS call failed, or a message is not one of ours.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    /// An SQS call failed (after the SDK's retries).
    #[error("SQS {operation} on {queue}: {message}")]
    Sqs {
        /// The API operation.
        operation: &'static str,
        /// Queue URL or name.
        queue: String,
        /// The error with its causes.
        message: String,
    },
    /// The dead letter cannot be encoded.
    #[error("dead letter {id}: {message}")]
    Body {
        /// Job id.
        id: String,
        /// What went wrong.
        message: String,
    },
}

impl DlqError {
    fn sdk<E, R>(operation: &'static str, queue: &str, err: SdkError<E, R>) -> DlqError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        // The full context (request ids, raw response) goes to the log only: this message ends up
        // in start-up lines and job failure reasons, which bull-board shows.
        tracing::debug!(operation, error = %DisplayErrorContext(&err), "SQS call failed");
        let message = match (&err, err.code()) {
            (_, Some(code)) => match err.message() {
                Some(text) => format!("{code}: {text}"),
                None => code.to_string(),
            },
            (SdkError::TimeoutError(_), None) => "timed out".to_string(),
            // A connection failure carries no request details, and its cause is what an operator needs.
            (SdkError::DispatchFailure(_), None) => {
                format!("unreachable: {}", DisplayErrorContext(&err))
            }
            (SdkError::ResponseError(_), None) => "unreadable response".to_string(),
            (SdkError::ConstructionFailure(_), None) => "request could not be built".to_string(),
            (_, None) => "request failed".to_string(),
        };
        DlqError::Sqs {
            operation,
            queue: queue.to_string(),
            message,
        }
    }
}

/// Approximate message counts of the DLQ (for `/check`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueDepth {
    /// Messages ready to be received.
    pub visible: u64,
    /// Messages received and not yet deleted or released.
    pub in_flight: u64,
    /// Messages sent with a delay.
    pub delayed: u64,
}

impl QueueDepth {
    /// Every message in the queue.
    pub fn total(&self) -> u64 {
        self.visible + self.in_flight + self.delayed
    }
}

/// One received DLQ message.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetterMessage {
    /// SQS message id.
    pub message_id: String,
    /// Handle to delete or release this receipt.
    pub receipt_handle: String,
    /// The body as JSON (`Value::String` with the raw text when it is not JSON).
    pub body: Value,
    /// The dead letter, when the body is one of ours.
    pub dead: Option<DeadLetter>,
    /// The run the job belonged to.
    pub run_id: Option<String>,
    /// How often the message was received (SQS's ApproximateReceiveCount).
    pub receive_count: u32,
}

/// The message body of a dead letter: the dead letter's JSON plus `run_id` (from the job's data)
/// and `kind: "prematch.dead_letter"`. Stack traces are shortened when the body would exceed the
/// SQS limit (`truncated: true` then says so).
pub fn message_body(dead: &DeadLetter) -> Result<String, DlqError> {
    let encode_err = |e: serde_json::Error| DlqError::Body {
        id: dead.id.clone(),
        message: e.to_string(),
    };
    let mut value = serde_json::to_value(dead).map_err(encode_err)?;
    if let Value::Object(map) = &mut value {
        map.insert("kind".into(), Value::String("prematch.dead_letter".into()));
        map.insert(
            "run_id".into(),
            run_id_of(dead).map(Value::String).unwrap_or(Value::Null),
        );
    }
    let text = serde_json::to_string(&value).map_err(encode_err)?;
    if text.len() <= MAX_BODY_BYTES {
        return Ok(text);
    }
    if let Value::Object(map) = &mut value {
        let stacks: Vec<Value> = dead
            .stacktrace
            .iter()
            .rev()
            .take(3)
            .rev()
            .map(|s| Value::String(s.chars().take(MAX_STACK_CHARS).collect()))
            .collect();
        map.insert("stacktrace".into(), Value::Array(stacks));
        map.insert("truncated".into(), Value::Bool(true));
    }
    let text = serde_json::to_string(&value).map_err(encode_err)?;
    if text.len() <= MAX_BODY_BYTES {
        Ok(text)
    } else {
        Err(DlqError::Body {
            id: dead.id.clone(),
            message: format!("{} bytes even with stack traces cut", text.len()),
        })
    }
}

/// `data.run_id` of the job, if it has one.
pub fn run_id_of(dead: &DeadLetter) -> Option<String> {
    dead.data
        .get("run_id")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The dead-letter queue in SQS.
#[derive(Debug, Clone)]
pub struct SqsDeadLetters {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsDeadLetters {
    /// The queue at `queue_url`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> SqsDeadLetters {
        SqsDeadLetters {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// The queue `DLQ_URL` names, else the one called `DLQ_NAME` (looked up once).
    pub async fn from_config(
        client: aws_sdk_sqs::Client,
        config: &Config,
    ) -> Result<SqsDeadLetters, DlqError> {
        if let Some(url) = &config.dlq_url {
            return Ok(SqsDeadLetters::new(client, url.clone()));
        }
        let out = client
            .get_queue_url()
            .queue_name(&config.dlq_name)
            .send()
            .await
            .map_err(|e| DlqError::sdk("GetQueueUrl", &config.dlq_name, e))?;
        let url = out.queue_url.ok_or_else(|| DlqError::Sqs {
            operation: "GetQueueUrl",
            queue: config.dlq_name.clone(),
            message: "no QueueUrl in the answer".into(),
        })?;
        Ok(SqsDeadLetters::new(client, url))
    }

    /// The queue URL.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Sends one dead letter; returns the SQS message id.
    pub async fn send(&self, dead: &DeadLetter) -> Result<String, DlqError> {
        let body = message_body(dead)?;
        let attr = |v: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
        };
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body);
        // Attributes let a console user filter without parsing bodies. Empty strings are
        // invalid attribute values, so only present ones are set.
        let mut attributes = vec![("job_id", dead.id.clone()), ("job_name", dead.name.clone())];
        if let Some(run) = run_id_of(dead) {
            attributes.push(("run_id", run));
        }
        for (name, value) in attributes.into_iter().filter(|(_, v)| !v.is_empty()) {
            let value = attr(&value).map_err(|e| DlqError::Body {
                id: dead.id.clone(),
                message: e.to_string(),
            })?;
            request = request.message_attributes(name, value);
        }
        let out = request
            .send()
            .await
            .map_err(|e| DlqError::sdk("SendMessage", &self.queue_url, e))?;
        Ok(out.message_id.unwrap_or_default())
    }

    /// Receives up to `max` messages, hiding them for `visibility` (so a redrive does not meet
    /// them twice); they reappear unless deleted or released.
    pub async fn receive(
        &self,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<DeadLetterMessage>, DlqError> {
        let mut found: Vec<DeadLetterMessage> = Vec::new();
        while found.len() < max {
            let batch = (max - found.len()).min(10) as i32;
            let out = self
                .client
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(batch)
                .visibility_timeout(i32::try_from(visibility.as_secs()).unwrap_or(i32::MAX))
                .wait_time_seconds(0)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send()
                .await
                .map_err(|e| DlqError::sdk("ReceiveMessage", &self.queue_url, e))?;
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                let receive_count = m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                let text = m.body.unwrap_or_default();
                let body: Value =
                    serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
                let dead = serde_json::from_value::<DeadLetter>(body.clone()).ok();
                let run_id = body
                    .get("run_id")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let message_id = m.message_id.unwrap_or_default();
                if found.iter().any(|f| f.message_id == message_id) {
                    continue;
                }
                found.push(DeadLetterMessage {
                    message_id,
                    receipt_handle: m.receipt_handle.unwrap_or_default(),
                    body,
                    dead,
                    run_id,
                    receive_count,
                });
            }
        }
        Ok(found)
    }

    /// Shows up to `max` messages without consuming them: receives, then makes them visible again.
    pub async fn peek(&self, max: usize) -> Result<Vec<DeadLetterMessage>, DlqError> {
        let messages = self.receive(max, Duration::from_secs(30)).await?;
        for m in &messages {
            self.release(&m.receipt_handle).await?;
        }
        Ok(messages)
    }

    /// Makes a received message visible again at once.
    pub async fn release(&self, receipt_handle: &str) -> Result<(), DlqError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|e| DlqError::sdk("ChangeMessageVisibility", &self.queue_url, e))?;
        Ok(())
    }

    /// Deletes a received message (after its job was added back).
    pub async fn delete(&self, receipt_handle: &str) -> Result<(), DlqError> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(|e| DlqError::sdk("DeleteMessage", &self.queue_url, e))?;
        Ok(())
    }

    /// Approximate counts of the queue.
    pub async fn depth(&self) -> Result<QueueDepth, DlqError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| DlqError::sdk("GetQueueAttributes", &self.queue_url, e))?;
        let attributes = out.attributes.unwrap_or_default();
        let get = |name: QueueAttributeName| {
            attributes
                .get(&name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(QueueDepth {
            visible: get(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }
}

impl DeadLetterSink for SqsDeadLetters {
    /// Sends the dead letter; a failure is logged here (job id and reason only, no payload)
    /// and returned so the worker retries it and, failing that, counts it. The job itself stays
    /// in Redis's failed set either way.
    async fn dead_letter(&self, dead: &DeadLetter) -> Result<(), String> {
        match self.send(dead).await {
            Ok(message_id) => {
                tracing::info!(job_id = %dead.id, job_name = %dead.name, run_id = ?run_id_of(dead),
                    message_id = %message_id, "dead letter sent to SQS");
                Ok(())
            }
            Err(err) => {
                tracing::warn!(job_id = %dead.id, job_name = %dead.name, error = %err,
                    "could not send dead letter to SQS; the job stays in the failed set");
                Err(err.to_string())
            }
        }
    }
}

/// An in-memory dead-letter sink for handler tests: keeps what it is given, and can be told to
/// fail like an unreachable SQS.
#[derive(Debug, Default)]
pub struct MemoryDeadLetters {
    letters: std::sync::Mutex<Vec<DeadLetter>>,
    failing: std::sync::atomic::AtomicBool,
    refused: std::sync::atomic::AtomicUsize,
}

impl MemoryDeadLetters {
    /// An empty sink that accepts everything.
    pub fn new() -> MemoryDeadLetters {
        MemoryDeadLetters::default()
    }

    /// From now on refuse (`true`) or accept (`false`) dead letters.
    pub fn set_failing(&self, failing: bool) {
        self.failing
            .store(failing, std::sync::atomic::Ordering::SeqCst);
    }

    /// The dead letters accepted so far, in order.
    pub fn letters(&self) -> Vec<DeadLetter> {
        self.letters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many sends were refused.
    pub fn refused(&self) -> usize {
        self.refused.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl DeadLetterSink for MemoryDeadLetters {
    async fn dead_letter(&self, dead: &DeadLetter) -> Result<(), String> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            self.refused
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return Err("SQS SendMessage: simulated outage".into());
        }
        self.letters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(dead.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError;

    #[test]
    fn an_sqs_failure_names_its_kind_without_request_details() {
        // GIVEN a timeout whose source text carries request details
        let err: SdkError<GetQueueUrlError, ()> =
            SdkError::timeout_error("x-amzn-requestid: 8f1c; server: amazon.com");
        // WHEN it becomes a DLQ error (start-up lines, job failure reasons)
        let text = DlqError::sdk("GetQueueUrl", "prematch-dlq", err).to_string();
        // THEN it names the call, the queue and the kind of failure only
        assert_eq!(text, "SQS GetQueueUrl on prematch-dlq: timed out");
    }

    fn dead(stack_len: usize) -> DeadLetter {
        DeadLetter {
            queue: "bull:prematchQueue".into(),
            id: "region:2026-12-03:eu-west".into(),
            name: "region".into(),
            data: serde_json::json!({"run_id":"run:2026-12-03","region":"eu-west","run_date":"2026-12-03"}),
            opts: serde_json::json!({"attempts":3}),
            attempts_made: 3,
            failed_reason: "boom".into(),
            stacktrace: vec!["x".repeat(stack_len); 3],
            timestamp: 1,
            processed_on: Some(2),
            finished_on: 3,
        }
    }

    #[test]
    fn body_is_the_dead_letter_plus_its_run_id() {
        let d = dead(10);
        let body: Value = serde_json::from_str(&message_body(&d).unwrap()).unwrap();
        assert_eq!(body["run_id"], "run:2026-12-03");
        assert_eq!(body["kind"], "prematch.dead_letter");
        let back: DeadLetter = serde_json::from_value(body).unwrap();
        assert_eq!(back, d);
    }

    #[tokio::test]
    async fn memory_sink_keeps_letters_and_can_simulate_an_outage() {
        let sink = MemoryDeadLetters::new();
        sink.dead_letter(&dead(1)).await.unwrap();
        sink.set_failing(true);
        assert!(sink.dead_letter(&dead(2)).await.is_err());
        assert_eq!(sink.letters(), vec![dead(1)]);
        assert_eq!(sink.refused(), 1);
    }

    #[test]
    fn oversized_stack_traces_are_cut_to_fit_sqs() {
        let body = message_body(&dead(200_000)).unwrap();
        assert!(body.len() <= MAX_BODY_BYTES);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["truncated"], true);
        assert_eq!(v["failed_reason"], "boom");
    }
}
