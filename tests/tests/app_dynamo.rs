//! DynamoDB adapters against moto: users paged by region, suggestions for both users with TTL,
//! idempotent rewrites, history from the sparse index; the in-memory fakes keep the same contract.

// Integration-test helpers panic on bad fixtures by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::NaiveDate;
use prematch_app::dynamo::memory::{MemoryMatches, MemoryUsers};
use prematch_app::dynamo::{
    batch_write_items, expires_at, put_users, Cursor, DynamoMatches, DynamoUsers, HistorySource,
    Item, RunRef, SuggestionSink, UserSource,
};
use prematch_engine::{parse_user, Reasons, Suggestion};
use prematch_gen::{generate, GenConfig};
use prematch_tests::TestStack;

fn generated(users: usize, regions: usize) -> Vec<serde_json::Value> {
    let cfg = GenConfig {
        users,
        regions,
        seed: 7,
        ..GenConfig::default()
    };
    generate(&cfg).filter_map(|line| line.value).collect()
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn suggestion(a: &str, b: &str, score: f64) -> Suggestion {
    Suggestion {
        a: a.into(),
        b: b.into(),
        score,
        reasons: Reasons {
            overlap_minutes: 90,
            times: Vec::new(),
            interests: vec!["jazz".into()],
            languages: vec!["en".into()],
        },
    }
}

fn run(day: &str, region: &str) -> RunRef {
    RunRef {
        run_id: format!("run:{day}"),
        run_date: date(day),
        region: region.into(),
    }
}

async fn scan_all(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        items.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return items,
        }
    }
}

async fn read_region<U: UserSource>(
    users: &U,
    region: &str,
    limit: u32,
) -> (Vec<serde_json::Value>, usize) {
    let mut all = Vec::new();
    let mut cursor: Option<Cursor> = None;
    let mut pages = 0;
    loop {
        let page = users
            .region_page(region, cursor.as_ref(), limit)
            .await
            .unwrap();
        pages += 1;
        assert!(page.items.len() <= limit as usize);
        all.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return (all, pages),
        }
    }
}

#[tokio::test]
async fn region_pages_return_each_user_of_the_region_once_as_engine_json() {
    // GIVEN 300 generated users (some malformed) over 3 regions in the users table
    let stack = TestStack::start();
    let (aws, _) = stack.aws_with_tables().await;
    let users = generated(300, 3);
    let report = put_users(&aws.dynamo, "users", &users).await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    let stored: Vec<&serde_json::Value> = users
        .iter()
        .filter(|u| prematch_app::dynamo::user_item(u).is_ok())
        .collect();
    assert_eq!(report.written, stored.len());
    let source = DynamoUsers::new(aws.dynamo.clone(), "users");

    // WHEN every region is read in pages of 40
    let regions = source.list_regions().await.unwrap();
    let expected_regions: BTreeSet<String> = stored
        .iter()
        .map(|u| u["region"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        regions,
        expected_regions.iter().cloned().collect::<Vec<_>>()
    );
    let mut seen = BTreeMap::new();
    for region in &regions {
        let (items, pages) = read_region(&source, region, 40).await;
        let in_region = stored
            .iter()
            .filter(|u| u["region"] == region.as_str())
            .count();
        // THEN the region's users come back exactly once each, over several pages
        assert_eq!(items.len(), in_region, "{region}");
        assert!(pages >= in_region.div_ceil(40), "{region}: {pages} pages");
        for item in items {
            assert_eq!(item["region"], region.as_str());
            let id = item["user_id"].as_str().unwrap().to_string();
            assert!(seen.insert(id, item).is_none(), "a user came back twice");
        }
    }
    assert_eq!(seen.len(), stored.len());
    // AND each item is the JSON that was written, so the engine judges it the same way
    for original in stored {
        let back = &seen[original["user_id"].as_str().unwrap()];
        assert_eq!(
            parse_user(back).is_ok(),
            parse_user(original).is_ok(),
            "{}",
            original["user_id"]
        );
        if parse_user(original).is_ok() {
            assert_eq!(back, original);
        }
    }
}

#[tokio::test]
async fn users_that_cannot_be_indexed_are_counted_not_sent() {
    let stack = TestStack::start();
    let (aws, _) = stack.aws_with_tables().await;
    let users = vec![
        serde_json::json!({"user_id":"u_000001","region":"eu-west","active":true}),
        serde_json::json!({"user_id":"u_000002","region":17,"active":true}),
        serde_json::json!({"region":"eu-west"}),
        serde_json::json!({"user_id":"u_000001","region":"eu-west","active":false}),
    ];
    let report = put_users(&aws.dynamo, "users", &users).await.unwrap();
    assert_eq!(report.rejected, 2);
    assert_eq!(report.written, 1);
    let items = scan_all(&aws.dynamo, "users").await;
    assert_eq!(items.len(), 1);
    // The later duplicate wins.
    assert_eq!(items[0]["active"], AttributeValue::Bool(false));
}

#[tokio::test]
async fn batch_write_stores_more_than_one_batch() {
    let stack = TestStack::start();
    let (aws, _) = stack.aws_with_tables().await;
    let items: Vec<Item> = (0..73)
        .map(|i| {
            Item::from([
                (
                    "user_id".to_string(),
                    AttributeValue::S(format!("u_{i:06}")),
                ),
                ("region".to_string(), AttributeValue::S("eu-west".into())),
            ])
        })
        .collect();
    let report = batch_write_items(&aws.dynamo, "users", items)
        .await
        .unwrap();
    assert_eq!((report.written, report.failed), (73, 0));
    assert!(report.calls >= 3);
    assert_eq!(scan_all(&aws.dynamo, "users").await.len(), 73);
}

#[tokio::test]
async fn suggestions_are_written_for_both_users_with_ttl_and_rewrites_change_nothing() {
    // GIVEN two suggestions of a night
    let stack = TestStack::start();
    let (aws, _) = stack.aws_with_tables().await;
    let sink = DynamoMatches::new(aws.dynamo.clone(), "matches", 30);
    let night = run("2026-12-03", "eu-west");
    let suggestions = vec![
        suggestion("u_000001", "u_000002", 0.8),
        suggestion("u_000001", "u_000003", 0.5),
    ];
    // WHEN they are written, then written again (a retried job)
    let first = sink.write(&night, &suggestions).await.unwrap();
    let before = scan_all(&aws.dynamo, "matches").await;
    let second = sink.write(&night, &suggestions).await.unwrap();
    let after = scan_all(&aws.dynamo, "matches").await;
    // THEN each user of each pair has one item, and the rewrite left identical items
    assert_eq!(first.written, 4);
    assert_eq!(second.written, 4);
    assert_eq!(before.len(), 4);
    let key = |i: &Item| {
        (
            i["user_id"].as_s().unwrap().clone(),
            i["sk"].as_s().unwrap().clone(),
        )
    };
    let mut b: Vec<_> = before.iter().map(|i| (key(i), i.clone())).collect();
    let mut a: Vec<_> = after.iter().map(|i| (key(i), i.clone())).collect();
    b.sort_by(|x, y| x.0.cmp(&y.0));
    a.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(a, b);
    // AND an app reading user 2 sees user 1 with score, reasons, run and TTL
    let for_two = sink
        .suggestions_for("u_000002", Some(date("2026-12-03")))
        .await
        .unwrap();
    assert_eq!(for_two.len(), 1);
    let s = &for_two[0];
    assert_eq!(s.other_user_id, "u_000001");
    assert_eq!(s.score, 0.8);
    assert_eq!(s.run_id, "run:2026-12-03");
    assert_eq!(s.reasons["interests"], serde_json::json!(["jazz"]));
    assert_eq!(s.expires_at, expires_at(date("2026-12-03"), 30));
    assert_eq!(s.expires_at, 1_798_848_000); // 2027-01-02T00:00:00Z
    let raw = after
        .iter()
        .find(|i| key(i) == ("u_000002".to_string(), "2026-12-03#u_000001".to_string()));
    assert!(raw.is_some(), "sort key is {{run_date}}#{{other}}");
    assert_eq!(
        sink.suggestions_for("u_000001", None).await.unwrap().len(),
        2
    );
}

/// The history contract, run against DynamoDB and the in-memory fake alike.
async fn history_contract<S: SuggestionSink + HistorySource>(store: &S) {
    // GIVEN suggestions on several nights and in two regions
    let writes = [
        ("2026-12-02", "eu-west", "u_000001", "u_000002"), // yesterday
        ("2026-11-30", "eu-west", "u_000003", "u_000001"), // 3 days ago, ids out of order
        ("2026-11-19", "eu-west", "u_000001", "u_000004"), // 14 days ago: still inside
        ("2026-11-18", "eu-west", "u_000001", "u_000005"), // 15 days ago: outside
        ("2026-12-03", "eu-west", "u_000001", "u_000006"), // the run date itself: outside
        ("2026-12-02", "us-east", "u_000007", "u_000008"), // another region
    ];
    for (day, region, a, b) in writes {
        store
            .write(&run(day, region), &[suggestion(a, b, 0.5)])
            .await
            .unwrap();
    }
    // WHEN the 14 days before 2026-12-03 are read for eu-west
    let pairs = store
        .recent_pairs("eu-west", date("2026-12-03"), 14)
        .await
        .unwrap();
    // THEN exactly the pairs of 2026-11-19 ..= 2026-12-02 come back, once each, smaller id first
    let got: Vec<(String, String, String)> = pairs
        .iter()
        .map(|p| (p.date.to_string(), p.a.clone(), p.b.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("2026-11-19".into(), "u_000001".into(), "u_000004".into()),
            ("2026-11-30".into(), "u_000001".into(), "u_000003".into()),
            ("2026-12-02".into(), "u_000001".into(), "u_000002".into()),
        ]
    );
    assert!(store
        .recent_pairs("eu-west", date("2026-12-03"), 0)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn history_is_the_regions_pairs_of_the_days_before_the_run_date() {
    let stack = TestStack::start();
    let (aws, _) = stack.aws_with_tables().await;
    history_contract(&DynamoMatches::new(aws.dynamo.clone(), "matches", 30)).await;
}

#[tokio::test]
async fn memory_fake_keeps_the_history_contract() {
    history_contract(&MemoryMatches::new(30)).await;
}

#[tokio::test]
async fn history_reads_only_the_index_not_every_user() {
    // GIVEN 200 pairs written yesterday
    let stack = TestStack::start();
    let (aws, _) = stack.aws_with_tables().await;
    let store = DynamoMatches::new(aws.dynamo.clone(), "matches", 30);
    let suggestions: Vec<Suggestion> = (0..200)
        .map(|i| {
            suggestion(
                &format!("u_{:06}", 2 * i),
                &format!("u_{:06}", 2 * i + 1),
                0.5,
            )
        })
        .collect();
    store
        .write(&run("2026-12-02", "eu-west"), &suggestions)
        .await
        .unwrap();
    // THEN only one item per pair carries the history key, spread over the shards
    let items = scan_all(&aws.dynamo, "matches").await;
    let keyed: Vec<&Item> = items.iter().filter(|i| i.contains_key("hist_pk")).collect();
    assert_eq!(items.len(), 400);
    assert_eq!(keyed.len(), 200);
    let shards: BTreeSet<&String> = keyed.iter().map(|i| i["hist_pk"].as_s().unwrap()).collect();
    assert_eq!(shards.len(), prematch_app::dynamo::HISTORY_SHARDS as usize);
    // AND all 200 pairs are read back
    let pairs = store
        .recent_pairs("eu-west", date("2026-12-03"), 14)
        .await
        .unwrap();
    assert_eq!(pairs.len(), 200);
}

#[tokio::test]
async fn memory_users_page_like_the_region_index() {
    let users = generated(120, 2);
    let memory = MemoryUsers::new();
    let kept = memory.insert_all(users.iter());
    let regions = memory.list_regions().await.unwrap();
    let mut total = 0;
    for region in &regions {
        let (items, _) = read_region(&memory, region, 7).await;
        let ids: BTreeSet<&str> = items
            .iter()
            .map(|u| u["user_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), items.len());
        total += items.len();
    }
    assert_eq!(total, kept);
}

#[tokio::test]
async fn a_cursor_from_elsewhere_is_refused() {
    let stack = TestStack::start();
    let (aws, _) = stack.aws_with_tables().await;
    let source = DynamoUsers::new(aws.dynamo.clone(), "users");
    let err = source
        .region_page("eu-west", Some(&Cursor("garbage".into())), 10)
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().starts_with("invalid cursor"), "{err}");
}

/// A figure, not a budget: `cargo test -p prematch-tests --test app_dynamo -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "prints write and history-read throughput against moto"]
async fn figures_suggestion_writes_and_history_reads_against_moto() {
    let stack = TestStack::start();
    let (aws, _) = stack.aws_with_tables().await;
    let store = DynamoMatches::new(aws.dynamo.clone(), "matches", 30);
    let suggestions: Vec<Suggestion> = (0..5000)
        .map(|i| {
            suggestion(
                &format!("u_{:06}", 2 * i),
                &format!("u_{:06}", 2 * i + 1),
                0.5,
            )
        })
        .collect();
    let started = std::time::Instant::now();
    let report = store
        .write(&run("2026-12-02", "eu-west"), &suggestions)
        .await
        .unwrap();
    let write = started.elapsed();
    assert_eq!(report.written, 10_000);
    let started = std::time::Instant::now();
    let pairs = store
        .recent_pairs("eu-west", date("2026-12-03"), 14)
        .await
        .unwrap();
    let read = started.elapsed();
    assert_eq!(pairs.len(), 5000);
    println!(
        "wrote {} items in {:?} ({:.0} items/s, {} calls); read {} history pairs over 14 days x {} shards in {:?}",
        report.written,
        write,
        report.written as f64 / write.as_secs_f64(),
        report.calls,
        pairs.len(),
        prematch_app::dynamo::HISTORY_SHARDS,
        read
    );
}
