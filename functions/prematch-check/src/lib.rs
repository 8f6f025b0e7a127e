//! prematch-check: `GET /api/prematch/check`. The handler and the shared HTTP edge live in `api`.

// `api` is written as `prematch_app::api` and reaches its siblings as `crate::config`, `crate::aws` and `crate::jobs`; until
// prematch-app exports it, it is compiled here, where `crate::config` is prematch-app's.
pub use prematch_app::{aws, config, jobs};

#[path = "../../prematch-app/src/api/mod.rs"]
pub mod api;
