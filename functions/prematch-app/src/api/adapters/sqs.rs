//! DLQ depth from SQS `GetQueueAttributes(ApproximateNumberOfMessages)`.

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::QueueAttributeName;
use tokio::sync::OnceCell;

use crate::api::check::{DlqProbe, ProbeError};

/// How the DLQ is named in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DlqRef {
    /// `DLQ_URL`.
    Url(String),
    /// `DLQ_NAME`: the URL is looked up once, on first use.
    Name(String),
}

/// Reads the DLQ's depth.
#[derive(Debug)]
pub struct SqsDlqProbe {
    client: aws_sdk_sqs::Client,
    queue: DlqRef,
    url: OnceCell<String>,
}

impl SqsDlqProbe {
    /// A probe of the queue `queue` through `client`.
    pub fn new(client: aws_sdk_sqs::Client, queue: DlqRef) -> SqsDlqProbe {
        SqsDlqProbe {
            client,
            queue,
            url: OnceCell::new(),
        }
    }

    async fn url(&self) -> Result<&str, ProbeError> {
        match &self.queue {
            DlqRef::Url(url) => Ok(url),
            DlqRef::Name(name) => self
                .url
                .get_or_try_init(|| async {
                    let reply = self
                        .client
                        .get_queue_url()
                        .queue_name(name)
                        .send()
                        .await
                        .map_err(sqs_error)?;
                    reply
                        .queue_url
                        .ok_or_else(|| ProbeError("GetQueueUrl returned no URL".into()))
                })
                .await
                .map(String::as_str),
        }
    }
}

/// The full SDK error carries request ids and response headers: it goes to the log, and the answer
/// (which /check shows to anyone) names only the error code.
fn sqs_error<E, R>(e: SdkError<E, R>) -> ProbeError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    tracing::warn!(error = %DisplayErrorContext(&e), "SQS probe failed");
    let what = match (e.code(), &e) {
        (Some(code), _) => code.to_string(),
        (None, SdkError::TimeoutError(_)) => "timed out".to_string(),
        (None, SdkError::DispatchFailure(_)) => "unreachable".to_string(),
        (None, _) => "request failed".to_string(),
    };
    ProbeError(format!("sqs: {what}"))
}

impl DlqProbe for SqsDlqProbe {
    async fn depth(&self) -> Result<u64, ProbeError> {
        let url = self.url().await?;
        let reply = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(sqs_error)?;
        let raw = reply
            .attributes
            .as_ref()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .ok_or_else(|| {
                ProbeError("sqs: ApproximateNumberOfMessages missing from the reply".into())
            })?;
        raw.parse::<u64>().map_err(|_| {
            ProbeError(format!(
                "sqs: ApproximateNumberOfMessages is not a count: {raw:?}"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesError;

    #[test]
    fn a_failed_probe_names_the_failure_without_sdk_internals() {
        // GIVEN an SDK error whose source text carries request details
        let err: SdkError<GetQueueAttributesError, ()> =
            SdkError::timeout_error("x-amzn-requestid: 8f1c; server: amazon.com");
        // WHEN it becomes the probe's answer
        let ProbeError(text) = sqs_error(err);
        // THEN only the kind of failure is shown
        assert_eq!(text, "sqs: timed out");
    }
}
