//! DynamoDB in and out: users by region, suggestions with TTL, recent history; ports and fakes.
//!
//! Each capability is one small trait ([`UserSource`], [`SuggestionSink`], [`HistorySource`])
//! implemented by a DynamoDB adapter and by an in-memory fake ([`memory`]). The engine never sees
//! them: job handlers read plain data through them and hand plain data to the engine.

mod batch;
mod error;
mod matches;
pub mod memory;
mod users;

use std::future::Future;

use chrono::NaiveDate;
use prematch_engine::{HistoryPair, Suggestion};
use serde::{Deserialize, Serialize};

pub use batch::{batch_write_items, batch_write_with, BatchPolicy, BatchWriter, WriteReport};
pub use error::StoreError;
pub use matches::{
    history_shard, suggestion_items, DynamoMatches, StoredSuggestion, HISTORY_SHARDS,
};
pub use users::{put_users, user_item, DynamoUsers};

/// A DynamoDB item.
pub type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

/// Where the next page of a region starts: opaque, JSON-serialisable (it can ride in a job's data
/// so a big region is read page by page across jobs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(pub String);

/// One page of a region's users, as JSON values for `prematch_engine::parse_user`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// The users of this page (possibly malformed: the engine judges them).
    pub items: Vec<serde_json::Value>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// The run a region job writes for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRef {
    /// Run id, e.g. `run:2026-12-03` (stored on each item).
    pub run_id: String,
    /// Run date: the `{run_date}` of each item's sort key and the base of `expires_at`.
    pub run_date: NaiveDate,
    /// The region the suggestions belong to (for the history index).
    pub region: String,
}

/// Reads users, one region page at a time.
pub trait UserSource: Send + Sync {
    /// Up to `limit` users of `region` after `cursor` (all users, active or not; bad records too).
    fn region_page(
        &self,
        region: &str,
        cursor: Option<&Cursor>,
        limit: u32,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send;

    /// Every region that has at least one user, sorted.
    fn list_regions(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}

/// Stores a night's suggestions, idempotently: writing the same suggestions again leaves the
/// same items.
pub trait SuggestionSink: Send + Sync {
    /// Writes each suggestion for both of its users.
    fn write(
        &self,
        run: &RunRef,
        suggestions: &[Suggestion],
    ) -> impl Future<Output = Result<WriteReport, StoreError>> + Send;
}

/// Reads who was suggested to whom lately.
pub trait HistorySource: Send + Sync {
    /// Pairs of `region` suggested on the `days` days before `run_date` (run_date − days ..=
    /// run_date − 1), each pair once with `a < b`.
    fn recent_pairs(
        &self,
        region: &str,
        run_date: NaiveDate,
        days: u32,
    ) -> impl Future<Output = Result<Vec<HistoryPair>, StoreError>> + Send;
}

/// `expires_at` (epoch seconds) of a suggestion made on `run_date`: midnight UTC `ttl_days` later.
/// Derived from the run date only, so a retried job writes the very same value.
pub fn expires_at(run_date: NaiveDate, ttl_days: u32) -> i64 {
    let day = run_date + chrono::Days::new(u64::from(ttl_days));
    day.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp())
        .unwrap_or(i64::MAX)
}
