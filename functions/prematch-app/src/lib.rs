//! What the three Lambda binaries and the CLI share: configuration, telemetry, AWS adapters, state.

pub mod api;
pub mod aws;
pub mod config;
pub mod dlq;
pub mod dynamo;
pub mod jobs;
pub mod metrics;
pub mod setup;
pub mod state;
pub mod telemetry;

pub use config::{Config, ConfigError};
pub use state::{State, StateError};
