//! Errors of the DynamoDB adapters, split into retryable and permanent.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A DynamoDB call failed (after the SDK's own retries).
    #[error("DynamoDB {operation} on {table}: {message}")]
    Dynamo {
        /// The API operation, e.g. `Query`.
        operation: &'static str,
        /// Table (and index) name.
        table: String,
        /// The error with its causes.
        message: String,
        /// True for throttling, timeouts, network and 5xx errors: trying later may work.
        retryable: bool,
    },
    /// A cursor that this adapter did not make.
    #[error("invalid cursor: {0}")]
    Cursor(String),
    /// An item that cannot be stored as given.
    #[error("invalid item: {0}")]
    Item(String),
}

impl StoreError {
    /// True when a retry of the job may succeed (the queue then retries with backoff).
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Dynamo { retryable, .. } => *retryable,
            StoreError::Cursor(_) | StoreError::Item(_) => false,
        }
    }

    pub(crate) fn sdk<E, R>(operation: &'static str, table: &str, err: SdkError<E, R>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let retryable = match &err {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(service) => matches!(
                service.err().code(),
                Some(
                    "ProvisionedThroughputExceededException"
                        | "ThrottlingException"
                        | "RequestLimitExceeded"
                        | "InternalServerError"
                        | "ServiceUnavailable"
                        | "LimitExceededException"
                )
            ),
            _ => false,
        };
        StoreError::Dynamo {
            operation,
            table: table.to_string(),
            message: DisplayErrorContext(&err).to_string(),
            retryable,
        }
    }
}
