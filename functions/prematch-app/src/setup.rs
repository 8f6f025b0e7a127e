//! Creates the `users` and `matches` tables and the DLQ for local runs and tests, with the same
//! key schemas as `template.yaml` (a test in `prematch-tests` compares the two).

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification, TimeToLiveStatus,
};

/// Name of the users table's index by region: (`region`, `user_id`).
pub const REGION_INDEX: &str = "region-index";
/// Name of the matches table's sparse history index: (`hist_pk`) = `{region}#{run_date}#{shard}`.
pub const HISTORY_INDEX: &str = "history-index";
/// The TTL attribute of the matches table (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// Retention of the dead-letter queue: 14 days, SQS's maximum.
pub const DLQ_RETENTION_SECS: u32 = 1_209_600;

/// One key attribute: name, `HASH`/`RANGE`, and scalar type `S`/`N`/`B`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyPart {
    /// Attribute name.
    pub name: String,
    /// `HASH` or `RANGE`.
    pub key_type: String,
    /// `S`, `N` or `B`.
    pub attribute_type: String,
}

/// A global secondary index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct IndexSpec {
    /// Index name.
    pub name: String,
    /// Key schema, hash key first.
    pub keys: Vec<KeyPart>,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection: String,
}

/// The part of a table definition that code depends on: keys, indexes, TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// Table name.
    pub name: String,
    /// Primary key, hash key first.
    pub keys: Vec<KeyPart>,
    /// Global secondary indexes, sorted by name.
    pub indexes: Vec<IndexSpec>,
    /// The TTL attribute, if any.
    pub ttl_attribute: Option<String>,
}

fn key(name: &str, key_type: &str, attribute_type: &str) -> KeyPart {
    KeyPart {
        name: name.into(),
        key_type: key_type.into(),
        attribute_type: attribute_type.into(),
    }
}

/// `users`: key `user_id`; `region-index` (`region`, `user_id`) projecting every attribute,
/// because the region job reads whole users from it.
pub fn users_table_spec(name: &str) -> TableSpec {
    TableSpec {
        name: name.into(),
        keys: vec![key("user_id", "HASH", "S")],
        indexes: vec![IndexSpec {
            name: REGION_INDEX.into(),
            keys: vec![key("region", "HASH", "S"), key("user_id", "RANGE", "S")],
            projection: "ALL".into(),
        }],
        ttl_attribute: None,
    }
}

/// `matches`: key `user_id` + `sk` (`{run_date}#{other}`), TTL on `expires_at`, and the sparse
/// `history-index` on `hist_pk`. Only one item of each pair (the one whose `user_id` sorts
/// first) carries `hist_pk`, so a region's history for a day is a few Queries, not one per user,
/// and the shard suffix spreads a big region's writes over several index partitions.
pub fn matches_table_spec(name: &str) -> TableSpec {
    TableSpec {
        name: name.into(),
        keys: vec![key("user_id", "HASH", "S"), key("sk", "RANGE", "S")],
        indexes: vec![IndexSpec {
            name: HISTORY_INDEX.into(),
            keys: vec![key("hist_pk", "HASH", "S")],
            projection: "KEYS_ONLY".into(),
        }],
        ttl_attribute: Some(TTL_ATTRIBUTE.into()),
    }
}

/// What `ensure_tables_and_queue` found or made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupReport {
    /// Tables created by this call (empty when all existed).
    pub created_tables: Vec<String>,
    /// URL of the dead-letter queue.
    pub dlq_url: String,
}

/// A set-up step failed; names the resource.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A DynamoDB call failed.
    #[error("table {table}: {message}")]
    Table {
        /// The table.
        table: String,
        /// The SDK error with its causes.
        message: String,
    },
    /// The table exists with another key schema or other indexes than the code expects.
    #[error(
        "table {table} exists with a different schema: expected {expected:?}, found {found:?}"
    )]
    SchemaMismatch {
        /// The table.
        table: String,
        /// What the code expects.
        expected: Box<TableSpec>,
        /// What DynamoDB describes.
        found: Box<TableSpec>,
    },
    /// An SQS call failed.
    #[error("queue {queue}: {message}")]
    Queue {
        /// The queue name.
        queue: String,
        /// The SDK error with its causes.
        message: String,
    },
}

/// Creates both tables (waiting until they are usable), enables TTL and creates the DLQ.
/// Idempotent: existing resources are checked against the expected schema and kept.
pub async fn ensure_tables_and_queue(
    dynamo: &aws_sdk_dynamodb::Client,
    sqs: &aws_sdk_sqs::Client,
    users_table: &str,
    matches_table: &str,
    dlq_name: &str,
) -> Result<SetupReport, SetupError> {
    let mut created_tables = Vec::new();
    for spec in [
        users_table_spec(users_table),
        matches_table_spec(matches_table),
    ] {
        if ensure_table(dynamo, &spec).await? {
            created_tables.push(spec.name.clone());
        }
    }
    let dlq_url = ensure_queue(sqs, dlq_name).await?;
    Ok(SetupReport {
        created_tables,
        dlq_url,
    })
}

/// Creates the DLQ if needed and returns its URL.
pub async fn ensure_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> Result<String, SetupError> {
    let out = sqs
        .create_queue()
        .queue_name(name)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::MessageRetentionPeriod,
            DLQ_RETENTION_SECS.to_string(),
        )
        .send()
        .await
        .map_err(|e| SetupError::Queue {
            queue: name.into(),
            message: DisplayErrorContext(&e).to_string(),
        })?;
    out.queue_url.ok_or_else(|| SetupError::Queue {
        queue: name.into(),
        message: "CreateQueue returned no QueueUrl".into(),
    })
}

/// Returns true when the table was created by this call.
async fn ensure_table(
    dynamo: &aws_sdk_dynamodb::Client,
    spec: &TableSpec,
) -> Result<bool, SetupError> {
    let table_err = |message: String| SetupError::Table {
        table: spec.name.clone(),
        message,
    };
    let created = match create_table(dynamo, spec).await {
        Ok(()) => true,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            false
        }
        Err(e) => return Err(table_err(DisplayErrorContext(&e).to_string())),
    };
    wait_active(dynamo, spec).await?;
    if let Some(ttl) = &spec.ttl_attribute {
        let current = dynamo
            .describe_time_to_live()
            .table_name(&spec.name)
            .send()
            .await
            .map_err(|e| table_err(DisplayErrorContext(&e).to_string()))?;
        let status = current
            .time_to_live_description
            .and_then(|d| d.time_to_live_status);
        if !matches!(
            status,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ) {
            let ttl_spec = TimeToLiveSpecification::builder()
                .attribute_name(ttl)
                .enabled(true)
                .build()
                .map_err(|e| table_err(e.to_string()))?;
            dynamo
                .update_time_to_live()
                .table_name(&spec.name)
                .time_to_live_specification(ttl_spec)
                .send()
                .await
                .map_err(|e| table_err(DisplayErrorContext(&e).to_string()))?;
        }
    }
    Ok(created)
}

async fn create_table(
    dynamo: &aws_sdk_dynamodb::Client,
    spec: &TableSpec,
) -> Result<
    (),
    aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::create_table::CreateTableError>,
> {
    let mut attributes: Vec<(String, String)> = spec
        .keys
        .iter()
        .chain(spec.indexes.iter().flat_map(|i| i.keys.iter()))
        .map(|k| (k.name.clone(), k.attribute_type.clone()))
        .collect();
    attributes.sort();
    attributes.dedup();
    let mut request = dynamo
        .create_table()
        .table_name(&spec.name)
        .billing_mode(BillingMode::PayPerRequest);
    for (name, attribute_type) in attributes {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::from(attribute_type.as_str()))
                .build()
                .map_err(aws_sdk_dynamodb::error::SdkError::construction_failure)?,
        );
    }
    for part in &spec.keys {
        request = request.key_schema(
            key_element(part).map_err(aws_sdk_dynamodb::error::SdkError::construction_failure)?,
        );
    }
    for index in &spec.indexes {
        let mut gsi = GlobalSecondaryIndex::builder()
            .index_name(&index.name)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::from(index.projection.as_str()))
                    .build(),
            );
        for part in &index.keys {
            gsi = gsi.key_schema(
                key_element(part)
                    .map_err(aws_sdk_dynamodb::error::SdkError::construction_failure)?,
            );
        }
        request = request.global_secondary_indexes(
            gsi.build()
                .map_err(aws_sdk_dynamodb::error::SdkError::construction_failure)?,
        );
    }
    request.send().await.map(|_| ())
}

fn key_element(part: &KeyPart) -> Result<KeySchemaElement, aws_sdk_dynamodb::error::BuildError> {
    KeySchemaElement::builder()
        .attribute_name(&part.name)
        .key_type(KeyType::from(part.key_type.as_str()))
        .build()
}

/// Polls DescribeTable until the table is ACTIVE (moto is at once; DynamoDB Local takes a moment),
/// then checks that its schema is the expected one.
async fn wait_active(
    dynamo: &aws_sdk_dynamodb::Client,
    spec: &TableSpec,
) -> Result<(), SetupError> {
    let mut delay = std::time::Duration::from_millis(50);
    for _ in 0..40 {
        let described = dynamo
            .describe_table()
            .table_name(&spec.name)
            .send()
            .await
            .map_err(|e| SetupError::Table {
                table: spec.name.clone(),
                message: DisplayErrorContext(&e).to_string(),
            })?;
        let Some(table) = described.table else {
            break;
        };
        let found = spec_from_description(&table, spec.ttl_attribute.clone());
        if found.keys != spec.keys || found.indexes != spec.indexes {
            return Err(SetupError::SchemaMismatch {
                table: spec.name.clone(),
                expected: Box::new(spec.clone()),
                found: Box::new(found),
            });
        }
        if table.table_status == Some(aws_sdk_dynamodb::types::TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(std::time::Duration::from_secs(1));
    }
    Err(SetupError::Table {
        table: spec.name.clone(),
        message: "did not become ACTIVE".into(),
    })
}

/// The spec DynamoDB describes, in the same shape as ours (for the schema check).
pub fn spec_from_description(
    table: &aws_sdk_dynamodb::types::TableDescription,
    ttl_attribute: Option<String>,
) -> TableSpec {
    let types: Vec<(String, String)> = table
        .attribute_definitions()
        .iter()
        .map(|a| {
            (
                a.attribute_name().to_string(),
                a.attribute_type().as_str().to_string(),
            )
        })
        .collect();
    let parts = |schema: &[KeySchemaElement]| -> Vec<KeyPart> {
        let mut parts: Vec<KeyPart> = schema
            .iter()
            .map(|k| {
                let attribute_type = types
                    .iter()
                    .find(|(n, _)| n == k.attribute_name())
                    .map(|(_, t)| t.clone())
                    .unwrap_or_default();
                key(k.attribute_name(), k.key_type().as_str(), &attribute_type)
            })
            .collect();
        // HASH before RANGE, as in our specs.
        parts.sort_by(|a, b| a.key_type.cmp(&b.key_type));
        parts
    };
    let mut indexes: Vec<IndexSpec> = table
        .global_secondary_indexes()
        .iter()
        .map(|i| IndexSpec {
            name: i.index_name().unwrap_or_default().to_string(),
            keys: parts(i.key_schema()),
            projection: i
                .projection()
                .and_then(|p| p.projection_type())
                .map(|p| p.as_str().to_string())
                .unwrap_or_default(),
        })
        .collect();
    indexes.sort();
    TableSpec {
        name: table.table_name().unwrap_or_default().to_string(),
        keys: parts(table.key_schema()),
        indexes,
        ttl_attribute,
    }
}
