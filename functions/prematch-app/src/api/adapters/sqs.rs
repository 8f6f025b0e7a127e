//! DLQ depth from SQS `GetQueueAttributes(ApproximateNumberOfMessages)`.

use aws_sdk_sqs::error::DisplayErrorContext;
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

fn sqs_error(e: impl std::error::Error) -> ProbeError {
    ProbeError(format!("sqs: {}", DisplayErrorContext(&e)))
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
