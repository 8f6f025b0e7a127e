//! The HTTP edge shared by `prematch-check` and `prematch-trigger`: JSON errors, admin authentication,
//! rate limiting, request validation, the two handlers and the adapters behind their ports.
//!
//! Handlers are plain async functions of `(&State, Request)`; every dependency sits behind a small
//! trait (`QueueProbe`, `DlqProbe`, `RunStatusSource`, `RunQueue`, `WorkerKick`, `RateLimiter`) so a
//! test drives a handler with fakes, and each real adapter is tested against the real service.

pub mod adapters;
pub mod auth;
pub mod check;
pub mod error;
pub mod rate_limit;
pub mod runs;
pub mod settings;
pub mod startup;
pub mod trigger;
pub mod validate;

pub use error::{ApiError, FieldError};
