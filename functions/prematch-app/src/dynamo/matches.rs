//! The matches table: suggestions written for both users of a pair, and the history read back
//! through the sparse `history-index`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::NaiveDate;
use futures::stream::{self, StreamExt, TryStreamExt};
use prematch_engine::{HistoryPair, Suggestion};
use serde::{Deserialize, Serialize};

use super::batch::{batch_write_items, WriteReport};
use super::{expires_at, HistorySource, Item, RunRef, StoreError, SuggestionSink};
use crate::setup::HISTORY_INDEX;

/// Shards of one region-day in `history-index`: spreads a big region's index writes over
/// several partitions. Fixed: history written under one value is read under the same.
pub const HISTORY_SHARDS: u32 = 8;

/// History Queries in flight at once.
const HISTORY_CONCURRENCY: usize = 8;

/// The shard of a pair: FNV-1a of `a#b` with a murmur3 finaliser (FNV's low bits alone are
/// poorly spread for ids that differ in the last digit). Stable across processes and releases.
pub fn history_shard(a: &str, b: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in a.bytes().chain(std::iter::once(b'#')).chain(b.bytes()) {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash ^= hash >> 16;
    hash = hash.wrapping_mul(0x85eb_ca6b);
    hash ^= hash >> 13;
    hash = hash.wrapping_mul(0xc2b2_ae35);
    hash ^= hash >> 16;
    hash % HISTORY_SHARDS
}

fn history_pk(region: &str, date: NaiveDate, shard: u32) -> String {
    format!("{region}#{date}#{shard}")
}

/// One stored suggestion, as an app reads it for a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSuggestion {
    /// The user the suggestion is for.
    pub user_id: String,
    /// The user suggested.
    pub other_user_id: String,
    /// The night it was made.
    pub run_date: NaiveDate,
    /// The run that wrote it.
    pub run_id: String,
    /// The region.
    pub region: String,
    /// Mutual score.
    pub score: f64,
    /// Why (the engine's `Reasons` as JSON).
    pub reasons: serde_json::Value,
    /// TTL, epoch seconds.
    pub expires_at: i64,
}

/// The two items of a suggestion (one per user), with the pair's `hist_pk` on the item of the
/// smaller id only. Every value derives from the run and the suggestion, so rewriting a
/// suggestion rewrites identical items.
pub fn suggestion_items(
    run: &RunRef,
    suggestion: &Suggestion,
    ttl_days: u32,
) -> Result<[Item; 2], StoreError> {
    let reasons = serde_json::to_string(&suggestion.reasons)
        .map_err(|e| StoreError::Item(format!("reasons: {e}")))?;
    if !suggestion.score.is_finite() {
        return Err(StoreError::Item(format!(
            "score of {}/{} is not a finite number",
            suggestion.a, suggestion.b
        )));
    }
    let (low, high) = if suggestion.a <= suggestion.b {
        (&suggestion.a, &suggestion.b)
    } else {
        (&suggestion.b, &suggestion.a)
    };
    let expires = expires_at(run.run_date, ttl_days).to_string();
    let item = |user: &str, other: &str, canonical: bool| {
        let mut item: Item = HashMap::from([
            ("user_id".into(), AttributeValue::S(user.into())),
            (
                "sk".into(),
                AttributeValue::S(format!("{}#{other}", run.run_date)),
            ),
            ("other_user_id".into(), AttributeValue::S(other.into())),
            (
                "run_date".into(),
                AttributeValue::S(run.run_date.to_string()),
            ),
            ("run_id".into(), AttributeValue::S(run.run_id.clone())),
            ("region".into(), AttributeValue::S(run.region.clone())),
            (
                "score".into(),
                AttributeValue::N(suggestion.score.to_string()),
            ),
            ("reasons".into(), AttributeValue::S(reasons.clone())),
            ("expires_at".into(), AttributeValue::N(expires.clone())),
        ]);
        if canonical {
            item.insert(
                "hist_pk".into(),
                AttributeValue::S(history_pk(
                    &run.region,
                    run.run_date,
                    history_shard(low, high),
                )),
            );
        }
        item
    };
    Ok([item(low, high, true), item(high, low, false)])
}

/// Suggestions and history in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoMatches {
    client: aws_sdk_dynamodb::Client,
    table: String,
    ttl_days: u32,
}

impl DynamoMatches {
    /// The matches table `table`; items expire `ttl_days` after their run date.
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        ttl_days: u32,
    ) -> DynamoMatches {
        DynamoMatches {
            client,
            table: table.into(),
            ttl_days,
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// A user's stored suggestions, of one night or of all, skipping expired ones (DynamoDB
    /// deletes expired items lazily).
    pub async fn suggestions_for(
        &self,
        user_id: &str,
        run_date: Option<NaiveDate>,
    ) -> Result<Vec<StoredSuggestion>, StoreError> {
        let now = chrono::Utc::now().timestamp();
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":u", AttributeValue::S(user_id.into()))
                .set_exclusive_start_key(start.take());
            query = match run_date {
                Some(date) => query
                    .key_condition_expression("user_id = :u AND begins_with(sk, :d)")
                    .expression_attribute_values(":d", AttributeValue::S(format!("{date}#"))),
                None => query.key_condition_expression("user_id = :u"),
            };
            let out = query
                .send()
                .await
                .map_err(|e| StoreError::sdk("Query", &self.table, e))?;
            for item in out.items.unwrap_or_default() {
                let stored = stored_suggestion(&item)?;
                if stored.expires_at > now {
                    found.push(stored);
                }
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(found),
            }
        }
    }

    /// The pairs of one region-day-shard of `history-index`.
    async fn history_partition(
        &self,
        region: &str,
        date: NaiveDate,
        shard: u32,
    ) -> Result<Vec<HistoryPair>, StoreError> {
        let mut pairs = Vec::new();
        let mut start: Option<Item> = None;
        let prefix = format!("{date}#");
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(HISTORY_INDEX)
                .key_condition_expression("hist_pk = :p")
                .expression_attribute_values(
                    ":p",
                    AttributeValue::S(history_pk(region, date, shard)),
                )
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| {
                    StoreError::sdk("Query", &format!("{}/{HISTORY_INDEX}", self.table), e)
                })?;
            for item in out.items.unwrap_or_default() {
                let (Some(AttributeValue::S(user)), Some(AttributeValue::S(sk))) =
                    (item.get("user_id"), item.get("sk"))
                else {
                    continue;
                };
                if let Some(other) = sk.strip_prefix(&prefix) {
                    let (a, b) = if user.as_str() <= other {
                        (user.clone(), other.to_string())
                    } else {
                        (other.to_string(), user.clone())
                    };
                    pairs.push(HistoryPair { a, b, date });
                }
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(pairs),
            }
        }
    }
}

fn stored_suggestion(item: &Item) -> Result<StoredSuggestion, StoreError> {
    let text = |name: &str| -> Result<String, StoreError> {
        match item.get(name) {
            Some(AttributeValue::S(s)) => Ok(s.clone()),
            _ => Err(StoreError::Item(format!(
                "matches item without string {name}"
            ))),
        }
    };
    let number = |name: &str| -> Result<String, StoreError> {
        match item.get(name) {
            Some(AttributeValue::N(n)) => Ok(n.clone()),
            _ => Err(StoreError::Item(format!(
                "matches item without number {name}"
            ))),
        }
    };
    let bad = |what: &str| StoreError::Item(format!("matches item with a bad {what}"));
    Ok(StoredSuggestion {
        user_id: text("user_id")?,
        other_user_id: text("other_user_id")?,
        run_date: text("run_date")?.parse().map_err(|_| bad("run_date"))?,
        run_id: text("run_id")?,
        region: text("region")?,
        score: number("score")?.parse().map_err(|_| bad("score"))?,
        reasons: serde_json::from_str(&text("reasons")?).map_err(|_| bad("reasons"))?,
        expires_at: number("expires_at")?
            .parse()
            .map_err(|_| bad("expires_at"))?,
    })
}

impl SuggestionSink for DynamoMatches {
    async fn write(
        &self,
        run: &RunRef,
        suggestions: &[Suggestion],
    ) -> Result<WriteReport, StoreError> {
        // One BatchWriteItem may not name a key twice: the last suggestion of a pair wins.
        let mut index: HashMap<(String, String), usize> = HashMap::new();
        let mut items: Vec<Item> = Vec::with_capacity(suggestions.len() * 2);
        for suggestion in suggestions {
            for item in suggestion_items(run, suggestion, self.ttl_days)? {
                let key = match (item.get("user_id"), item.get("sk")) {
                    (Some(AttributeValue::S(u)), Some(AttributeValue::S(s))) => {
                        (u.clone(), s.clone())
                    }
                    _ => continue,
                };
                match index.get(&key) {
                    Some(&at) => items[at] = item,
                    None => {
                        index.insert(key, items.len());
                        items.push(item);
                    }
                }
            }
        }
        batch_write_items(&self.client, &self.table, items).await
    }
}

impl HistorySource for DynamoMatches {
    /// `days` × [`HISTORY_SHARDS`] Queries on `history-index` (8 in flight), whatever the number
    /// of users.
    async fn recent_pairs(
        &self,
        region: &str,
        run_date: NaiveDate,
        days: u32,
    ) -> Result<Vec<HistoryPair>, StoreError> {
        let partitions: Vec<(NaiveDate, u32)> = (1..=u64::from(days))
            .filter_map(|d| run_date.checked_sub_days(chrono::Days::new(d)))
            .flat_map(|date| (0..HISTORY_SHARDS).map(move |shard| (date, shard)))
            .collect();
        let parts: Vec<Vec<HistoryPair>> = stream::iter(partitions)
            .map(|(date, shard)| self.history_partition(region, date, shard))
            .buffer_unordered(HISTORY_CONCURRENCY)
            .try_collect()
            .await?;
        let mut pairs: Vec<HistoryPair> = parts.into_iter().flatten().collect();
        pairs.sort_by(|x, y| (x.date, &x.a, &x.b).cmp(&(y.date, &y.a, &y.b)));
        pairs.dedup();
        Ok(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_is_stable_and_in_range() {
        // Fixed expectations: a change here would orphan history already written.
        assert_eq!(history_shard("u_000001", "u_000002"), 4);
        assert_eq!(history_shard("a", "b"), 2);
        let shards: std::collections::HashSet<u32> = (0..200)
            .map(|i| history_shard(&format!("u_{i:06}"), "u_999999"))
            .collect();
        assert!(shards.iter().all(|s| *s < HISTORY_SHARDS));
        assert_eq!(
            shards.len() as u32,
            HISTORY_SHARDS,
            "200 pairs should touch every shard"
        );
    }
}
