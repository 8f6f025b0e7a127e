//! The tables and queue `prematch-app::setup` creates are the ones `template.yaml` declares.

// Integration-test helpers panic on bad fixtures by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use prematch_app::setup::{matches_table_spec, users_table_spec, IndexSpec, KeyPart, TableSpec};
use prematch_tests::{repo_root, TestStack};
use serde_yaml::Value;

fn template() -> Value {
    let path = repo_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v:?}"))
        .to_string()
}

/// The key schema of a template table or index, with attribute types, hash key first.
fn keys(schema: &Value, types: &Value) -> Vec<KeyPart> {
    let mut parts: Vec<KeyPart> = schema
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| {
            let name = s(&k["AttributeName"]);
            let attribute_type = types
                .as_sequence()
                .unwrap()
                .iter()
                .find(|d| s(&d["AttributeName"]) == name)
                .map(|d| s(&d["AttributeType"]))
                .unwrap_or_else(|| panic!("{name} has no AttributeDefinition"));
            KeyPart {
                name,
                key_type: s(&k["KeyType"]),
                attribute_type,
            }
        })
        .collect();
    parts.sort_by(|a, b| a.key_type.cmp(&b.key_type));
    parts
}

/// The template's table resource in the same shape as setup's spec (name taken from setup).
fn template_table(logical_id: &str, name: &str) -> TableSpec {
    let doc = template();
    let props = &doc["Resources"][logical_id]["Properties"];
    assert!(props.is_mapping(), "template has no {logical_id}");
    let types = &props["AttributeDefinitions"];
    let mut indexes: Vec<IndexSpec> = props["GlobalSecondaryIndexes"]
        .as_sequence()
        .map(|seq| {
            seq.iter()
                .map(|i| IndexSpec {
                    name: s(&i["IndexName"]),
                    keys: keys(&i["KeySchema"], types),
                    projection: s(&i["Projection"]["ProjectionType"]),
                })
                .collect()
        })
        .unwrap_or_default();
    indexes.sort();
    // Every declared attribute must be a key somewhere (CloudFormation rejects extras).
    let declared: Vec<String> = types
        .as_sequence()
        .unwrap()
        .iter()
        .map(|d| s(&d["AttributeName"]))
        .collect();
    let used: Vec<String> = keys(&props["KeySchema"], types)
        .into_iter()
        .chain(indexes.iter().flat_map(|i| i.keys.clone()))
        .map(|k| k.name)
        .collect();
    for attr in &declared {
        assert!(
            used.contains(attr),
            "{logical_id}: {attr} is declared but not a key"
        );
    }
    let ttl = &props["TimeToLiveSpecification"];
    TableSpec {
        name: name.to_string(),
        keys: keys(&props["KeySchema"], types),
        indexes,
        ttl_attribute: ttl["Enabled"]
            .as_bool()
            .filter(|on| *on)
            .map(|_| s(&ttl["AttributeName"])),
    }
}

#[test]
fn users_table_in_template_matches_setup() {
    // GIVEN the users table setup creates
    let setup = users_table_spec("users");
    // WHEN the template's UsersTable is read
    let declared = template_table("UsersTable", "users");
    // THEN keys, indexes and TTL agree
    assert_eq!(declared, setup);
}

#[test]
fn matches_table_in_template_matches_setup() {
    let setup = matches_table_spec("matches");
    let declared = template_table("MatchesTable", "matches");
    assert_eq!(declared, setup);
}

#[test]
fn template_builds_each_function_with_cargo_lambda_under_its_package_name() {
    let doc = template();
    let globals = &doc["Globals"]["Function"];
    assert_eq!(s(&globals["Runtime"]), "provided.al2023");
    assert_eq!(globals["Architectures"][0].as_str(), Some("arm64"));
    for (logical_id, binary) in [
        ("PrematchCheckFunction", "prematch-check"),
        ("PrematchTriggerFunction", "prematch-trigger"),
        ("PrematchWorkerFunction", "prematch-worker"),
    ] {
        let f = &doc["Resources"][logical_id];
        assert_eq!(
            f["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{logical_id}"
        );
        assert_eq!(
            f["Metadata"]["BuildProperties"]["Binary"].as_str(),
            Some(binary),
            "{logical_id}"
        );
        // The Binary must be a workspace member's package name.
        let manifest = repo_root()
            .join("functions")
            .join(binary)
            .join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        assert!(
            text.contains(&format!("name = \"{binary}\"")),
            "{}",
            manifest.display()
        );
    }
    let worker_events = &doc["Resources"]["PrematchWorkerFunction"]["Properties"]["Events"];
    assert_eq!(
        s(&worker_events["Nightly"]["Properties"]["Schedule"]),
        "cron(0 0 * * ? *)"
    );
    let sweep: serde_json::Value =
        serde_json::from_str(&s(&worker_events["DrainSweep"]["Properties"]["Input"])).unwrap();
    assert_eq!(sweep, serde_json::json!({"kind": "drain"}));
    let trigger = &doc["Resources"]["PrematchTriggerFunction"]["Properties"]["Events"]["Trigger"]
        ["Properties"];
    assert_eq!(s(&trigger["Path"]), "/api/prematch/test");
    assert_eq!(s(&trigger["Method"]), "POST");
    assert_eq!(s(&trigger["Auth"]["Authorizer"]), "AWS_IAM");
    let check =
        &doc["Resources"]["PrematchCheckFunction"]["Properties"]["Events"]["Check"]["Properties"];
    assert_eq!(s(&check["Path"]), "/api/prematch/check");
    assert_eq!(s(&check["Method"]), "GET");
}

#[tokio::test]
async fn setup_creates_the_declared_schema_and_is_idempotent() {
    // GIVEN an empty moto
    let stack = TestStack::start();
    let aws = stack.aws().await;
    // WHEN setup runs twice
    let first = prematch_app::setup::ensure_tables_and_queue(
        &aws.dynamo,
        &aws.sqs,
        "users",
        "matches",
        "prematch-dlq",
    )
    .await
    .unwrap();
    let second = prematch_app::setup::ensure_tables_and_queue(
        &aws.dynamo,
        &aws.sqs,
        "users",
        "matches",
        "prematch-dlq",
    )
    .await
    .unwrap();
    // THEN the first creates both tables, the second nothing, and the queue URL is stable
    assert_eq!(
        first.created_tables,
        vec!["users".to_string(), "matches".to_string()]
    );
    assert!(second.created_tables.is_empty());
    assert_eq!(first.dlq_url, second.dlq_url);
    assert!(
        first.dlq_url.ends_with("/prematch-dlq"),
        "{}",
        first.dlq_url
    );
    // AND what DynamoDB describes is what the template declares
    for (table, logical_id) in [("users", "UsersTable"), ("matches", "MatchesTable")] {
        let described = aws
            .dynamo
            .describe_table()
            .table_name(table)
            .send()
            .await
            .unwrap();
        let ttl = aws
            .dynamo
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .unwrap();
        let ttl_attribute = ttl
            .time_to_live_description
            .filter(|d| d.time_to_live_status.as_ref().map(|s| s.as_str()) == Some("ENABLED"))
            .and_then(|d| d.attribute_name);
        let found =
            prematch_app::setup::spec_from_description(&described.table.unwrap(), ttl_attribute);
        assert_eq!(found, template_table(logical_id, table), "{table}");
    }
}

#[tokio::test]
async fn setup_refuses_a_table_with_another_key_schema() {
    // GIVEN a users table whose key is not user_id
    let stack = TestStack::start();
    let aws = stack.aws().await;
    let mut wrong = users_table_spec("users");
    wrong.keys[0].name = "id".into();
    wrong.indexes.clear();
    aws.dynamo
        .create_table()
        .table_name("users")
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    // WHEN setup runs
    let err = prematch_app::setup::ensure_tables_and_queue(
        &aws.dynamo,
        &aws.sqs,
        "users",
        "matches",
        "prematch-dlq",
    )
    .await
    .unwrap_err();
    // THEN it names the table and the mismatch
    assert!(
        err.to_string()
            .starts_with("table users exists with a different schema"),
        "{err}"
    );
}

#[test]
fn alarms_on_our_metrics_use_names_and_the_roll_up_dimension_the_writer_emits() {
    use prematch_app::metrics::{names, NAMESPACE, SERVICE_DIMENSION};
    let known = [
        names::JOBS_COMPLETED,
        names::JOBS_FAILED,
        names::JOB_DURATION_MS,
        names::QUEUE_WAITING,
        names::QUEUE_DELAYED,
        names::QUEUE_FAILED,
        names::USERS_PROCESSED,
        names::SUGGESTIONS_WRITTEN,
        names::USERS_SKIPPED,
        names::DEAD_LETTER_SEND_FAILURES,
    ];
    let doc = template();
    let mut ours = 0;
    for (id, resource) in doc["Resources"].as_mapping().unwrap() {
        if resource["Type"].as_str() != Some("AWS::CloudWatch::Alarm")
            || resource["Properties"]["Namespace"].as_str() != Some(NAMESPACE)
        {
            continue;
        }
        ours += 1;
        let props = &resource["Properties"];
        let metric = s(&props["MetricName"]);
        assert!(
            known.contains(&metric.as_str()),
            "{id:?}: unknown metric {metric}"
        );
        let dims = props["Dimensions"].as_sequence().unwrap();
        assert_eq!(dims.len(), 1, "{id:?}");
        assert_eq!(s(&dims[0]["Name"]), SERVICE_DIMENSION.0, "{id:?}");
        assert_eq!(s(&dims[0]["Value"]), SERVICE_DIMENSION.1, "{id:?}");
    }
    assert!(
        ours >= 2,
        "expected alarms on JobsFailed and the nightly heartbeat"
    );
}
