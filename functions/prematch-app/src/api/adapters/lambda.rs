//! The worker kick as an asynchronous Lambda `Invoke` of the worker with `{"kind":"drain"}`.

use aws_sdk_lambda::error::DisplayErrorContext;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

use crate::api::trigger::{KickError, WorkerKick};

/// The payload the worker reads as `WorkerEvent::Drain`.
pub const DRAIN_EVENT: &str = r#"{"kind":"drain"}"#;

/// Invokes the worker function (`WORKER_FUNCTION_NAME`) with `InvocationType=Event`.
#[derive(Debug, Clone)]
pub struct LambdaWorkerKick {
    client: aws_sdk_lambda::Client,
    function_name: String,
}

impl LambdaWorkerKick {
    /// Kicks `function_name` (a name, ARN or partial ARN) through `client`.
    pub fn new(
        client: aws_sdk_lambda::Client,
        function_name: impl Into<String>,
    ) -> LambdaWorkerKick {
        LambdaWorkerKick {
            client,
            function_name: function_name.into(),
        }
    }
}

impl WorkerKick for LambdaWorkerKick {
    async fn kick(&self) -> Result<(), KickError> {
        let reply = self
            .client
            .invoke()
            .function_name(&self.function_name)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(DRAIN_EVENT))
            .send()
            .await
            .map_err(|e| KickError(DisplayErrorContext(&e).to_string()))?;
        // An accepted asynchronous invoke answers 202; anything else means it was not queued.
        if reply.status_code == 202 {
            Ok(())
        } else {
            Err(KickError(format!(
                "Invoke answered {} instead of 202",
                reply.status_code
            )))
        }
    }
}

/// The kick a set-up has: the worker Lambda when `WORKER_FUNCTION_NAME` is set, else none.
#[derive(Debug, Clone)]
pub enum ConfiguredKick {
    /// Invoke the worker.
    Lambda(LambdaWorkerKick),
    /// Nothing to invoke (local runs; the sweep or the CLI drains).
    None(crate::api::trigger::NoKick),
}

impl WorkerKick for ConfiguredKick {
    async fn kick(&self) -> Result<(), KickError> {
        match self {
            ConfiguredKick::Lambda(kick) => kick.kick().await,
            ConfiguredKick::None(kick) => kick.kick().await,
        }
    }
}
