//! prematch-trigger: `POST /api/prematch/test`. The handler and the shared HTTP edge live in `api`.

pub use prematch_app::{api, aws, config, jobs};
