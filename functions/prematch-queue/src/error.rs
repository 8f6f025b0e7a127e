//! The queue's error type: one variant per way an operation can fail.

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis could not be reached or answered with an error.
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
    /// A custom job id breaks BullMQ's id rules.
    #[error("invalid job id {id:?}: {reason}")]
    InvalidJobId {
        /// The rejected id.
        id: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A job option is out of range or malformed.
    #[error("invalid job option {option}: {reason}")]
    InvalidOption {
        /// The option's BullMQ name, e.g. `priority`.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A job hash in Redis could not be read (e.g. `data` is not JSON).
    #[error("malformed job {id}: field {field}: {detail}")]
    MalformedJob {
        /// The job id.
        id: String,
        /// The hash field that could not be parsed.
        field: &'static str,
        /// The parse error.
        detail: String,
    },
    /// A script replied with something this crate does not understand (a bug or a foreign script).
    #[error("unexpected reply from script {script}: {detail}")]
    Protocol {
        /// The script name.
        script: &'static str,
        /// What was unexpected.
        detail: String,
    },
    /// Queue settings are unusable (e.g. an empty queue name).
    #[error("invalid queue settings: {0}")]
    Settings(String),
    /// Redis stayed unreachable past the worker's reconnect budget.
    #[error("redis unreachable for {0:?}; giving up")]
    Unreachable(std::time::Duration),
}
