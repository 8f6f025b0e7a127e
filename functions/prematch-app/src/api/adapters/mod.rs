//! The real implementations of the HTTP edge's ports: the queue (Redis), SQS (DLQ depth), Lambda (worker kick).

pub mod lambda;
pub mod queue;
pub mod redis;
pub mod sqs;

pub use lambda::{ConfiguredKick, LambdaWorkerKick};
pub use queue::QueueAdapter;
pub use redis::ManualRunSlots;
pub use sqs::SqsDlqProbe;
