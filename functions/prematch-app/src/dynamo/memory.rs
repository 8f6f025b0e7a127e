//! In-memory fakes of the stores, for handler tests without moto. Same contracts, no I/O;
//! not for production.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use chrono::NaiveDate;
use prematch_engine::{HistoryPair, Suggestion};

use super::{
    expires_at, Cursor, HistorySource, Page, RunRef, StoreError, StoredSuggestion, SuggestionSink,
    UserSource, WriteReport,
};

/// Users kept in memory, paged by `user_id` like `region-index`.
#[derive(Debug, Default)]
pub struct MemoryUsers {
    by_region: Mutex<BTreeMap<String, BTreeMap<String, serde_json::Value>>>,
}

impl MemoryUsers {
    /// An empty store.
    pub fn new() -> MemoryUsers {
        MemoryUsers::default()
    }

    /// Users from JSON values; those without a string `user_id` and `region` are not indexed
    /// (as in DynamoDB, where they would not appear in `region-index`). Returns how many were kept.
    pub fn insert_all<'a>(&self, users: impl IntoIterator<Item = &'a serde_json::Value>) -> usize {
        let mut kept = 0;
        let mut map = self.by_region.lock().unwrap_or_else(|p| p.into_inner());
        for user in users {
            if let (Some(id), Some(region)) = (
                user.get("user_id").and_then(|v| v.as_str()),
                user.get("region").and_then(|v| v.as_str()),
            ) {
                map.entry(region.to_string())
                    .or_default()
                    .insert(id.to_string(), user.clone());
                kept += 1;
            }
        }
        kept
    }
}

impl UserSource for MemoryUsers {
    async fn region_page(
        &self,
        region: &str,
        cursor: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page, StoreError> {
        let map = self.by_region.lock().unwrap_or_else(|p| p.into_inner());
        let Some(users) = map.get(region) else {
            return Ok(Page::default());
        };
        let after = cursor.map(|c| c.0.clone());
        let mut items = Vec::new();
        let mut last = None;
        let range = match &after {
            Some(id) => users.range::<String, _>((
                std::ops::Bound::Excluded(id.clone()),
                std::ops::Bound::Unbounded,
            )),
            None => users.range::<String, _>(..),
        };
        for (id, user) in range.take(limit.max(1) as usize) {
            items.push(user.clone());
            last = Some(id.clone());
        }
        // Like DynamoDB, a full page carries a cursor even when nothing follows.
        let next = match last {
            Some(id) if items.len() == limit.max(1) as usize => Some(Cursor(id)),
            _ => None,
        };
        Ok(Page { items, next })
    }

    async fn list_regions(&self) -> Result<Vec<String>, StoreError> {
        let map = self.by_region.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map.keys().cloned().collect())
    }
}

/// Suggestions kept in memory, keyed like the matches table (`user_id`, `sk`).
#[derive(Debug)]
pub struct MemoryMatches {
    ttl_days: u32,
    items: Mutex<BTreeMap<(String, String), StoredSuggestion>>,
    writes: Mutex<usize>,
}

impl MemoryMatches {
    /// An empty store whose items expire `ttl_days` after their run date.
    pub fn new(ttl_days: u32) -> MemoryMatches {
        MemoryMatches {
            ttl_days,
            items: Mutex::new(BTreeMap::new()),
            writes: Mutex::new(0),
        }
    }

    /// Every stored suggestion, ordered by (`user_id`, `sk`).
    pub fn all(&self) -> Vec<StoredSuggestion> {
        let items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        items.values().cloned().collect()
    }

    /// Item writes so far (each suggestion counts two).
    pub fn writes(&self) -> usize {
        *self.writes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SuggestionSink for MemoryMatches {
    async fn write(
        &self,
        run: &RunRef,
        suggestions: &[Suggestion],
    ) -> Result<WriteReport, StoreError> {
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        let mut written = 0;
        for s in suggestions {
            let reasons = serde_json::to_value(&s.reasons)
                .map_err(|e| StoreError::Item(format!("reasons: {e}")))?;
            for (user, other) in [(&s.a, &s.b), (&s.b, &s.a)] {
                items.insert(
                    (user.clone(), format!("{}#{other}", run.run_date)),
                    StoredSuggestion {
                        user_id: user.clone(),
                        other_user_id: other.clone(),
                        run_date: run.run_date,
                        run_id: run.run_id.clone(),
                        region: run.region.clone(),
                        score: s.score,
                        reasons: reasons.clone(),
                        expires_at: expires_at(run.run_date, self.ttl_days),
                    },
                );
                written += 1;
            }
        }
        *self.writes.lock().unwrap_or_else(|p| p.into_inner()) += written;
        Ok(WriteReport {
            written,
            calls: written.div_ceil(25),
            ..WriteReport::default()
        })
    }
}

impl HistorySource for MemoryMatches {
    async fn recent_pairs(
        &self,
        region: &str,
        run_date: NaiveDate,
        days: u32,
    ) -> Result<Vec<HistoryPair>, StoreError> {
        let from = run_date
            .checked_sub_days(chrono::Days::new(u64::from(days)))
            .unwrap_or(NaiveDate::MIN);
        let items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        let pairs: BTreeSet<(NaiveDate, String, String)> = items
            .values()
            .filter(|s| s.region == region && s.run_date >= from && s.run_date < run_date)
            .map(|s| {
                let (a, b) = if s.user_id <= s.other_user_id {
                    (s.user_id.clone(), s.other_user_id.clone())
                } else {
                    (s.other_user_id.clone(), s.user_id.clone())
                };
                (s.run_date, a, b)
            })
            .collect();
        Ok(pairs
            .into_iter()
            .map(|(date, a, b)| HistoryPair { a, b, date })
            .collect())
    }
}
