//! The users table: region pages from `region-index` (Query + Limit + ExclusiveStartKey), the
//! list of regions, and writing users (the seeder).

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use futures::stream::{self, StreamExt, TryStreamExt};

use super::batch::{batch_write_items, WriteReport};
use super::{Cursor, Item, Page, StoreError, UserSource};
use crate::setup::REGION_INDEX;

/// Segments of the parallel Scan that lists regions.
const REGION_SCAN_SEGMENTS: i32 = 4;

/// Users in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoUsers {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoUsers {
    /// The users table `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> DynamoUsers {
        DynamoUsers {
            client,
            table: table.into(),
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    async fn scan_regions(&self, segment: i32) -> Result<BTreeSet<String>, StoreError> {
        let mut regions = BTreeSet::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .index_name(REGION_INDEX)
                .projection_expression("#r")
                .expression_attribute_names("#r", "region")
                .segment(segment)
                .total_segments(REGION_SCAN_SEGMENTS)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::sdk("Scan", &self.table, e))?;
            for item in out.items.unwrap_or_default() {
                if let Some(AttributeValue::S(region)) = item.get("region") {
                    regions.insert(region.clone());
                }
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(regions),
            }
        }
    }
}

impl UserSource for DynamoUsers {
    async fn region_page(
        &self,
        region: &str,
        cursor: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page, StoreError> {
        let start = cursor.map(decode_cursor).transpose()?;
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(REGION_INDEX)
            .key_condition_expression("#r = :r")
            .expression_attribute_names("#r", "region")
            .expression_attribute_values(":r", AttributeValue::S(region.to_string()))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| StoreError::sdk("Query", &format!("{}/{REGION_INDEX}", self.table), e))?;
        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(item_to_json)
            .collect();
        let next = match out.last_evaluated_key {
            Some(key) if !key.is_empty() => Some(encode_cursor(&key)?),
            _ => None,
        };
        Ok(Page { items, next })
    }

    /// A parallel Scan of `region-index` projecting only `region`. It reads the whole index, so
    /// it costs a full read of the index's keys: configure `REGIONS` where that matters.
    async fn list_regions(&self) -> Result<Vec<String>, StoreError> {
        let sets: Vec<BTreeSet<String>> = stream::iter(0..REGION_SCAN_SEGMENTS)
            .map(|segment| self.scan_regions(segment))
            .buffer_unordered(REGION_SCAN_SEGMENTS as usize)
            .try_collect()
            .await?;
        let all: BTreeSet<String> = sets.into_iter().flatten().collect();
        Ok(all.into_iter().collect())
    }
}

/// A DynamoDB item as the JSON the engine parses. An item that has no JSON form (binary
/// attributes) becomes `{"user_id": ..., "_unreadable": ...}`, which the engine rejects and
/// counts, rather than failing the page.
fn item_to_json(item: Item) -> serde_json::Value {
    let user_id = match item.get("user_id") {
        Some(AttributeValue::S(id)) => serde_json::Value::String(id.clone()),
        _ => serde_json::Value::Null,
    };
    match serde_dynamo::from_item::<_, serde_json::Value>(item) {
        Ok(value) => value,
        Err(err) => serde_json::json!({"user_id": user_id, "_unreadable": err.to_string()}),
    }
}

/// A cursor is the LastEvaluatedKey as JSON in DynamoDB's typed form (`{"user_id":{"S":..}}`).
fn encode_cursor(key: &Item) -> Result<Cursor, StoreError> {
    let mut typed = serde_json::Map::new();
    for (name, value) in key {
        let (tag, text) = match value {
            AttributeValue::S(s) => ("S", s.clone()),
            AttributeValue::N(n) => ("N", n.clone()),
            other => {
                return Err(StoreError::Cursor(format!(
                    "key attribute {name} has an unsupported type {other:?}"
                )))
            }
        };
        typed.insert(name.clone(), serde_json::json!({ tag: text }));
    }
    Ok(Cursor(serde_json::Value::Object(typed).to_string()))
}

fn decode_cursor(cursor: &Cursor) -> Result<Item, StoreError> {
    let bad = || StoreError::Cursor("not a cursor made by region_page".into());
    let value: serde_json::Value = serde_json::from_str(&cursor.0).map_err(|_| bad())?;
    let object = value.as_object().ok_or_else(bad)?;
    let mut key = HashMap::new();
    for (name, typed) in object {
        let attribute = match (typed.get("S"), typed.get("N")) {
            (Some(serde_json::Value::String(s)), None) => AttributeValue::S(s.clone()),
            (None, Some(serde_json::Value::String(n))) => AttributeValue::N(n.clone()),
            _ => return Err(bad()),
        };
        key.insert(name.clone(), attribute);
    }
    if key.is_empty() {
        return Err(bad());
    }
    Ok(key)
}

/// A user (DESIGN §3.1 JSON) as a DynamoDB item. Refused when it cannot be stored: a non-object,
/// no string `user_id`, or a `region` that is not a non-empty string (the index key would make
/// DynamoDB reject the whole batch).
pub fn user_item(user: &serde_json::Value) -> Result<Item, StoreError> {
    let object = user
        .as_object()
        .ok_or_else(|| StoreError::Item("a user must be a JSON object".into()))?;
    match object.get("user_id") {
        Some(serde_json::Value::String(id)) if !id.is_empty() => {}
        _ => {
            return Err(StoreError::Item(
                "user_id must be a non-empty string".into(),
            ))
        }
    }
    match object.get("region") {
        None => {}
        Some(serde_json::Value::String(r)) if !r.is_empty() => {}
        Some(_) => {
            return Err(StoreError::Item(
                "region must be a non-empty string (it is an index key)".into(),
            ))
        }
    }
    serde_dynamo::to_item(user).map_err(|e| StoreError::Item(e.to_string()))
}

/// Writes users (JSON values) to the users table with BatchWriteItem; users that cannot be stored
/// are counted in `rejected` and skipped. Later duplicates of a `user_id` win.
pub async fn put_users(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    users: &[serde_json::Value],
) -> Result<WriteReport, StoreError> {
    let mut rejected = 0;
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut items: Vec<Item> = Vec::with_capacity(users.len());
    for user in users {
        match user_item(user) {
            Ok(item) => {
                let id = match item.get("user_id") {
                    Some(AttributeValue::S(id)) => id.clone(),
                    _ => String::new(),
                };
                // One BatchWriteItem may not hold the same key twice.
                match by_id.get(&id) {
                    Some(&at) => items[at] = item,
                    None => {
                        by_id.insert(id, items.len());
                        items.push(item);
                    }
                }
            }
            Err(_) => rejected += 1,
        }
    }
    let mut report = batch_write_items(client, table, items).await?;
    report.rejected += rejected;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_string_and_number_keys() {
        let key = Item::from([
            ("user_id".to_string(), AttributeValue::S("u_000001".into())),
            ("region".to_string(), AttributeValue::S("eu-west".into())),
            ("n".to_string(), AttributeValue::N("12".into())),
        ]);
        let cursor = encode_cursor(&key).unwrap();
        assert_eq!(decode_cursor(&cursor).unwrap(), key);
    }

    #[test]
    fn foreign_cursor_is_a_precise_error() {
        for text in [
            "",
            "[]",
            "{}",
            "{\"user_id\":\"u\"}",
            "{\"user_id\":{\"B\":\"x\"}}",
        ] {
            let err = decode_cursor(&Cursor(text.into())).unwrap_err();
            assert!(matches!(err, StoreError::Cursor(_)), "{text}: {err}");
        }
    }

    #[test]
    fn user_with_bad_key_types_is_refused() {
        let ok = serde_json::json!({"user_id":"u_1","region":"eu-west","active":true});
        assert!(user_item(&ok).is_ok());
        for bad in [
            serde_json::json!({"region":"eu-west"}),
            serde_json::json!({"user_id":7,"region":"eu-west"}),
            serde_json::json!({"user_id":"u_1","region":42}),
            serde_json::json!("not an object"),
        ] {
            assert!(user_item(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn item_becomes_the_json_the_engine_parses() {
        let user = serde_json::json!({"user_id":"u_1","region":"eu-west","active":true,
            "seeking":{"genders":["man"],"age_min":27,"age_max":38},"blocked":[]});
        let back = item_to_json(user_item(&user).unwrap());
        assert_eq!(back, user);
    }
}
