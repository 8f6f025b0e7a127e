//! The split store against a real redis-server: a stored snapshot compiles, chunk by chunk, into
//! exactly the region `compile_compact` makes of the same users, and a damaged snapshot is
//! reported by its key instead of being matched.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step should stop the test

use chrono::NaiveDate;
use fred::prelude::*;
use prematch_app::jobs::split_store::{SelectResult, SplitError, SplitPlan, SplitStore};
use prematch_engine::{compile_compact, parse_user, Edge, HistoryPair, MatchConfig, User};
use prematch_queue::{Queue, QueueSettings};
use prematch_tests::RedisServer;

fn run_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 3).unwrap()
}

/// `n` generated users of one region (more than one snapshot chunk of 20,000 when n > 20,000).
fn users(n: usize) -> Vec<User> {
    let cfg = prematch_gen::GenConfig {
        users: n,
        regions: 1,
        seed: 11,
        malformed_per_mille: 0,
    };
    prematch_gen::generate(&cfg)
        .filter_map(|line| line.value.and_then(|v| parse_user(&v).ok()))
        .collect()
}

async fn store(redis: &RedisServer) -> (Client, SplitStore) {
    let queue = Queue::connect(&redis.url(), QueueSettings::new("bull", "prematchQueue"))
        .await
        .unwrap();
    let client = queue.client().clone();
    let store = SplitStore::new(
        client.clone(),
        "bull",
        "prematchQueue",
        "run-2026-12-03",
        "eu-west",
    );
    (client, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_compiles_chunk_by_chunk_into_the_same_region_as_compiling_it_whole() {
    // GIVEN a snapshot of 25,000 users (two chunks) and a history pair
    let redis = RedisServer::start();
    let (_client, store) = store(&redis).await;
    let users = users(25_000);
    let history = vec![HistoryPair {
        a: users[0].user_id.clone(),
        b: users[1].user_id.clone(),
        date: run_date() - chrono::Days::new(2),
    }];
    let cfg = MatchConfig::default();
    let plan = store
        .save_snapshot(&users, &history, SplitPlan::default())
        .await
        .unwrap();
    assert_eq!(plan.user_chunks, 2);

    // WHEN every split job compiles it
    let streamed = store
        .compiled_snapshot(&plan, run_date(), &cfg)
        .await
        .unwrap();

    // THEN it is the region compile_compact makes of the same users: same users in the same order,
    // same time zones and week masks
    let whole = compile_compact(users, &history, run_date(), &cfg);
    assert_eq!(streamed.len(), whole.len());
    assert!(whole.len() > 20_000);
    for i in 0..whole.len() as u32 {
        assert_eq!(streamed.user_id(i), whole.user_id(i));
        assert_eq!(streamed.timezone(i), whole.timezone(i));
        assert_eq!(streamed.week_mask(i), whole.week_mask(i));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_or_incomplete_snapshot_is_reported_by_its_key() {
    // GIVEN a snapshot of two chunks
    let redis = RedisServer::start();
    let (client, store) = store(&redis).await;
    let cfg = MatchConfig::default();
    let plan = store
        .save_snapshot(&users(21_000), &[], SplitPlan::default())
        .await
        .unwrap();
    let second = "bull:prematchQueue:prematch:split:run-2026-12-03:eu-west:users:1";

    // WHEN the plan claims more users than the chunks hold
    let claims_more = SplitPlan {
        users: plan.users + 5,
        ..plan.clone()
    };
    let err = store
        .compiled_snapshot(&claims_more, run_date(), &cfg)
        .await
        .err()
        .unwrap();
    // THEN the count mismatch is named
    assert!(
        matches!(&err, SplitError::Corrupt { message, .. } if message.contains("the plan says")),
        "{err}"
    );

    // WHEN the second chunk is not JSON
    let _: () = client
        .set(second, "not json", None, None, false)
        .await
        .unwrap();
    let err = store
        .compiled_snapshot(&plan, run_date(), &cfg)
        .await
        .err()
        .unwrap();
    // THEN the error names that chunk's key
    assert!(
        matches!(&err, SplitError::Corrupt { key, .. } if key == second),
        "{err}"
    );

    // WHEN the second chunk is gone (expired)
    let _: i64 = client.del(second).await.unwrap();
    let err = store
        .compiled_snapshot(&plan, run_date(), &cfg)
        .await
        .err()
        .unwrap();
    // THEN it is reported missing, by key
    assert!(
        matches!(&err, SplitError::Corrupt { key, message } if key == second && message.contains("missing")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_part_reads_exactly_its_own_pairs_across_chunk_boundaries() {
    // GIVEN 1,100,000 selected pairs stored in chunks of 500,000
    let redis = RedisServer::start();
    let (client, store) = store(&redis).await;
    let pairs: Vec<Edge> = (0..1_100_000u32)
        .map(|i| Edge {
            a: i,
            b: i + 1,
            score: i % 1_000_000,
        })
        .collect();
    let selected = store
        .finish_select(&pairs, SelectResult::default())
        .await
        .unwrap();
    assert_eq!(selected.pair_chunks, 3);

    // WHEN parts ask for ranges inside a chunk, across a boundary, to the end and past it
    for range in [
        0..100,
        499_990..500_010,
        999_999..1_100_000,
        1_050_000..2_000_000,
        1_200_000..1_300_000,
    ] {
        let got = store.pairs(&selected, range.clone()).await.unwrap();
        // THEN each gets exactly that slice of the pairs (clamped to the pairs stored)
        let (from, to) = (range.start.min(pairs.len()), range.end.min(pairs.len()));
        assert_eq!(got, pairs[from..to], "range {range:?}");
    }

    // WHEN a chunk a part needs is gone
    let middle = "bull:prematchQueue:prematch:split:run-2026-12-03:eu-west:pairs:1";
    let _: i64 = client.del(middle).await.unwrap();
    let err = store
        .pairs(&selected, 499_990..500_010)
        .await
        .err()
        .unwrap();
    // THEN it is reported by key, while a part inside the first chunk still reads
    assert!(
        matches!(&err, SplitError::Corrupt { key, .. } if key == middle),
        "{err}"
    );
    assert_eq!(store.pairs(&selected, 0..10).await.unwrap(), pairs[0..10]);
}
