//! prematch-check: `GET /api/prematch/check`. The handler and the shared HTTP edge live in `api`.

pub use prematch_app::{api, aws, config, jobs};
