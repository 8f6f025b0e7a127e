//! The nightly pipeline end to end on a private redis-server and moto: the worker's handler on the
//! real event fixtures, DynamoDB in and out, retries, the SQS dead-letter queue and redrive.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step should stop the test

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use prematch_app::dynamo::memory::{MemoryMatches, MemoryUsers};
use prematch_app::dynamo::{put_users, Cursor, Page, StoreError, UserSource};
use prematch_app::jobs::kick::{ChannelKick, NoKick, WorkerKick};
use prematch_app::jobs::redrive::{redrive, Redrive};
use prematch_app::jobs::runs::{RunState, RunStore};
use prematch_app::jobs::worker::{nightly_runtime, run_store, WorkerRuntime};
use prematch_app::jobs::{JobSettings, NightlyJobs, RunAwareDeadLetters};
use prematch_app::State;
use prematch_engine::{match_region, parse_user, MatchConfig};
use prematch_gen::{generate, GenConfig};
use prematch_queue::JobState;
use prematch_tests::{event_fixture, TestStack};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    serde_json::from_str(&event_fixture(name)).expect("fixture is JSON")
}

/// Generated users as JSON records (the non-JSON lines cannot be stored in DynamoDB).
fn generated(users: usize, regions: usize, seed: u64) -> Vec<Value> {
    generate(&GenConfig {
        users,
        regions,
        seed,
        malformed_per_mille: 30,
    })
    .filter_map(|line| line.value)
    .collect()
}

/// The stack's state with its tables, the users stored, and fast retries for tests.
async fn state_with_users(stack: &TestStack, users: &[Value], extra: &[(&str, &str)]) -> State {
    // EMF lines go straight to stdout (past the test harness capture); the app tests check their shape.
    prematch_app::metrics::set_enabled(false);
    let (aws, report) = stack.aws_with_tables().await;
    let mut vars = vec![
        ("BACKOFF_DELAY_MS", "200"),
        ("DLQ_URL", report.dlq_url.as_str()),
    ];
    vars.extend_from_slice(extra);
    let config = stack.config_with(&vars);
    if !users.is_empty() {
        let written = put_users(&aws.dynamo, &config.users_table, users)
            .await
            .expect("seed users");
        assert!(written.is_complete(), "every user stored: {written:?}");
    }
    State::with_aws(config, aws).await.expect("state")
}

/// Every item of the matches table: (user_id, other_user_id) → run_id.
async fn all_matches(state: &State) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let page = state
            .aws
            .dynamo
            .scan()
            .table_name(&state.config.matches_table)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .expect("scan matches");
        for item in page.items() {
            let s = |k: &str| {
                item.get(k)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            out.insert((s("user_id"), s("other_user_id")), s("run_id"));
        }
        match page.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_night_gives_every_matchable_user_their_suggestions_and_the_totals_add_up() {
    // GIVEN 600 generated users (with malformed records) in 2 regions in DynamoDB
    let stack = TestStack::start();
    let users = generated(600, 2, 7);
    let state = state_with_users(&stack, &users, &[("USER_PAGE_SIZE", "50")]).await;
    let runtime = nightly_runtime(&state, Arc::new(NoKick));

    // WHEN the worker gets the EventBridge Scheduled Event
    let report = runtime
        .handle(&fixture("scheduled-event.json"), None)
        .await
        .expect("worker");

    // THEN the day's run was added and every job completed
    let run = report.run.clone().expect("a run was requested");
    assert_eq!(run.run_id, "run-2026-12-03");
    assert!(run.created);
    assert_eq!(
        report.drain.completed, 3,
        "one run job and two region jobs: {report:?}"
    );
    assert_eq!(report.drain.failed, 0);

    // AND the run record is finished and its totals add up to what was stored
    let record = run_store(&state)
        .get("run-2026-12-03")
        .await
        .unwrap()
        .expect("run record");
    assert_eq!(record.state, RunState::Finished);
    assert_eq!(record.results.len(), 2);
    let totals = record.totals();
    assert_eq!(totals.users_read as usize, users.len());
    let skipped: u64 = totals.skipped.values().sum();
    assert_eq!(totals.users_matched + skipped, totals.users_read);
    let malformed = users.iter().filter(|u| parse_user(u).is_err()).count() as u64;
    let inactive = users
        .iter()
        .filter(|u| parse_user(u).is_ok_and(|p| !p.is_active()))
        .count() as u64;
    assert_eq!(
        skipped,
        malformed + inactive,
        "skipped by reason: {:?}",
        totals.skipped
    );
    assert!(
        malformed > 0,
        "the generator's bad records reach the region job"
    );

    // AND the matches table holds exactly what the engine selects offline, for both users of a pair
    let mut expected = BTreeSet::new();
    let parsed: Vec<_> = users.iter().filter_map(|u| parse_user(u).ok()).collect();
    for region in ["eu-west", "us-east"] {
        let region_users: Vec<_> = parsed
            .iter()
            .filter(|u| u.region() == region)
            .cloned()
            .collect();
        let outcome = match_region(
            region_users,
            &[],
            "2026-12-03".parse().unwrap(),
            &MatchConfig::default(),
        );
        assert!(outcome.stats.users_covered > 0);
        for s in outcome.suggestions {
            expected.insert((s.a.clone(), s.b.clone()));
            expected.insert((s.b, s.a));
        }
    }
    let stored = all_matches(&state).await;
    let stored_pairs: BTreeSet<_> = stored.keys().cloned().collect();
    assert_eq!(stored_pairs, expected);
    assert_eq!(stored.len() as u64, totals.items_written);
    assert!(stored.values().all(|run_id| run_id == "run-2026-12-03"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_schedule_delivered_twice_gives_one_run_and_the_same_items() {
    // GIVEN a night that already ran
    let stack = TestStack::start();
    let users = generated(200, 1, 11);
    let state = state_with_users(&stack, &users, &[]).await;
    let runtime = nightly_runtime(&state, Arc::new(NoKick));
    runtime
        .handle(&fixture("scheduled-event.json"), None)
        .await
        .expect("first delivery");
    let before = all_matches(&state).await;

    // WHEN EventBridge delivers the same event again
    let again = runtime
        .handle(&fixture("scheduled-event.json"), None)
        .await
        .expect("second delivery");

    // THEN nothing new is added and the table is unchanged
    assert!(!again.run.expect("run").created);
    assert_eq!(again.drain.completed, 0);
    let counts = state.queue.counts().await.unwrap();
    assert_eq!(
        counts.completed, 2,
        "one run job and one region job: {counts:?}"
    );
    assert_eq!(all_matches(&state).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_job_that_died_half_way_and_is_retried_leaves_no_duplicates() {
    // GIVEN a region whose first attempt wrote only half of its suggestions before it was killed
    let stack = TestStack::start();
    let users = generated(200, 1, 5);
    let state = state_with_users(&stack, &users, &[]).await;
    let parsed: Vec<_> = users.iter().filter_map(|u| parse_user(u).ok()).collect();
    let outcome = match_region(
        parsed,
        &[],
        "2026-12-03".parse().unwrap(),
        &MatchConfig::default(),
    );
    let half = &outcome.suggestions[..outcome.suggestions.len() / 2];
    let run = prematch_app::dynamo::RunRef {
        run_id: "run-2026-12-03".into(),
        run_date: "2026-12-03".parse().unwrap(),
        region: "eu-west".into(),
    };
    use prematch_app::dynamo::SuggestionSink;
    state
        .matches
        .write(&run, half)
        .await
        .expect("partial write");

    // WHEN the night runs (the retry writes the whole region)
    let runtime = nightly_runtime(&state, Arc::new(NoKick));
    runtime
        .handle(&fixture("scheduled-event.json"), None)
        .await
        .expect("worker");

    // THEN every pair is stored exactly once per user
    let stored = all_matches(&state).await;
    assert_eq!(stored.len(), outcome.suggestions.len() * 2);
}

/// A runtime on the stack's real queue, run records and SQS DLQ, with `users` as the users table and
/// in-memory suggestions.
fn runtime_on<U: UserSource>(
    state: &State,
    users: U,
    kick: Arc<dyn WorkerKick>,
    settings: JobSettings,
    budget: Duration,
) -> WorkerRuntime<U, MemoryMatches, MemoryMatches, prematch_app::dlq::SqsDeadLetters> {
    let runs = run_store(state);
    WorkerRuntime {
        jobs: NightlyJobs {
            queue: state.queue.clone(),
            runs: runs.clone(),
            users,
            sink: MemoryMatches::new(30),
            history: MemoryMatches::new(30),
            kick,
            settings,
        },
        dead: RunAwareDeadLetters {
            runs,
            inner: state.dead_letters.clone(),
        },
        worker: state.worker_options(),
        fallback_budget: budget,
    }
}

/// A users table that is down: every page fails with a retryable error.
struct UnreachableUsers {
    calls: AtomicU32,
    region: String,
}

impl UserSource for UnreachableUsers {
    async fn region_page(
        &self,
        _region: &str,
        _cursor: Option<&Cursor>,
        _limit: u32,
    ) -> Result<Page, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(StoreError::Dynamo {
            operation: "Query",
            table: "users".into(),
            message: "throttled (test)".into(),
            retryable: true,
        })
    }

    async fn list_regions(&self) -> Result<Vec<String>, StoreError> {
        Ok(vec![self.region.clone()])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_that_always_fails_ends_in_the_failed_set_and_one_sqs_message_and_redrive_brings_it_back(
) {
    // GIVEN the real queue and SQS DLQ, and a users table that keeps throttling
    let stack = TestStack::start();
    let state = state_with_users(&stack, &[], &[("JOB_TIMEOUT_SECS", "10")]).await;
    let runs = run_store(&state);
    let failing = UnreachableUsers {
        calls: AtomicU32::new(0),
        region: "eu-west".into(),
    };
    let runtime = runtime_on(
        &state,
        failing,
        Arc::new(NoKick),
        JobSettings::from_config(&state.config),
        Duration::from_secs(60),
    );

    // WHEN the night runs
    let report = runtime
        .handle(&fixture("scheduled-event.json"), None)
        .await
        .expect("worker");

    // THEN the region job was tried exactly 3 times, with backoff between them, and failed for good
    assert_eq!(runtime.jobs.users.calls.load(Ordering::SeqCst), 3);
    assert_eq!(report.drain.failed, 1);
    let job = state
        .queue
        .get_job("region-2026-12-03-eu-west")
        .await
        .unwrap()
        .expect("job kept");
    assert_eq!(
        state.queue.get_state(&job.id).await.unwrap(),
        Some(JobState::Failed)
    );
    assert_eq!(job.attempts_made, 3);
    assert!(job
        .failed_reason
        .as_deref()
        .unwrap_or("")
        .contains("throttled"));
    let events = state.queue.events("-", 1000).await.unwrap();
    let delays: Vec<u64> = events
        .iter()
        .filter(|e| {
            e.event == "delayed"
                && e.fields.get("jobId").map(String::as_str) == Some(job.id.as_str())
        })
        .filter_map(|e| e.fields.get("delay").and_then(|d| d.parse().ok()))
        .collect();
    assert_eq!(delays.len(), 2, "two retries went through the delayed set");
    let finished = job.finished_on.expect("finishedOn");
    assert!(
        finished >= job.timestamp + 200 + 400,
        "exponential backoff of 200 ms then 400 ms elapsed"
    );

    // AND the run is partial, naming the region
    let record = runs.get("run-2026-12-03").await.unwrap().unwrap();
    assert_eq!(record.state, RunState::Partial);
    assert_eq!(record.failed_regions, vec!["eu-west".to_string()]);

    // AND exactly one message is on the DLQ, with the run id
    let letters = state.dead_letters.peek(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].run_id.as_deref(), Some("run-2026-12-03"));
    assert_eq!(letters[0].dead.as_ref().unwrap().attempts_made, 3);

    // WHEN it is redriven
    let redriven = redrive(&state.dead_letters, &state.queue, &Redrive::All)
        .await
        .unwrap();

    // THEN the job is waiting again with its attempts reset and the message is gone
    assert_eq!(redriven.replayed, vec![job.id.clone()]);
    assert_eq!(
        state.queue.get_state(&job.id).await.unwrap(),
        Some(JobState::Waiting)
    );
    assert_eq!(
        state
            .queue
            .get_job(&job.id)
            .await
            .unwrap()
            .unwrap()
            .attempts_made,
        0
    );
    assert_eq!(state.dead_letters.depth().await.unwrap().total(), 0);

    // AND once the users table is back, the next drain finishes the region and settles the run
    let users = MemoryUsers::new();
    users.insert_all(&generated(100, 1, 3));
    let healthy = runtime_on(
        &state,
        users,
        Arc::new(NoKick),
        JobSettings::from_config(&state.config),
        Duration::from_secs(60),
    );
    let drained = healthy.handle(&fixture("drain.json"), None).await.unwrap();
    assert_eq!(drained.drain.completed, 1);
    let record = runs.get("run-2026-12-03").await.unwrap().unwrap();
    assert_eq!(record.state, RunState::Finished);
    assert!(record.failed_regions.is_empty());
}

/// Users that take a while to read, so a drain's budget runs out between jobs.
struct SlowUsers {
    inner: MemoryUsers,
    delay: Duration,
}

impl UserSource for SlowUsers {
    async fn region_page(
        &self,
        region: &str,
        cursor: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page, StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.region_page(region, cursor, limit).await
    }

    async fn list_regions(&self) -> Result<Vec<String>, StoreError> {
        self.inner.list_regions().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_with_a_short_budget_stops_claiming_in_time_and_the_next_invocation_finishes() {
    // GIVEN four regions whose jobs take about 0.6 s each, a 2 s job timeout and a 2.5 s budget
    let stack = TestStack::start();
    let state = state_with_users(
        &stack,
        &[],
        &[("JOB_TIMEOUT_SECS", "2"), ("DEADLINE_MARGIN_SECS", "0")],
    )
    .await;
    let users = MemoryUsers::new();
    users.insert_all(&generated(400, 4, 9));
    let runs = run_store(&state);
    let (tx, mut kicks) = tokio::sync::mpsc::unbounded_channel();
    let kick: Arc<dyn WorkerKick> = Arc::new(ChannelKick(tx));
    let runtime = runtime_on(
        &state,
        SlowUsers {
            inner: users,
            delay: Duration::from_millis(600),
        },
        kick,
        JobSettings {
            max_workers: 1,
            ..JobSettings::from_config(&state.config)
        },
        Duration::from_millis(2500),
    );

    // WHEN the scheduled invocation runs out of budget
    let first = runtime
        .handle(&fixture("scheduled-event.json"), None)
        .await
        .unwrap();

    // THEN it stopped claiming with work left (never starting a job it could not finish), and asked for a worker
    assert_eq!(first.drain.stopped_by, "deadline");
    assert!(first.drain.completed < 5, "{:?}", first.drain);
    assert!(first.counts.waiting > 0, "{:?}", first.counts);
    assert_eq!(first.drain.timed_out, 0);
    assert_eq!(first.kicked, 1);
    assert_eq!(kicks.try_recv().ok(), Some(1));

    // WHEN the kicked invocation drains with a normal budget
    let second = WorkerRuntime {
        fallback_budget: Duration::from_secs(60),
        ..runtime
    };
    let rest = second.handle(&fixture("drain.json"), None).await.unwrap();

    // THEN it finishes every region and the run
    assert_eq!(first.drain.completed + rest.drain.completed, 5);
    let record = runs.get("run-2026-12-03").await.unwrap().unwrap();
    assert_eq!(record.state, RunState::Finished);
    assert_eq!(record.results.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manual_fixture_runs_only_its_regions_and_an_unknown_event_is_refused() {
    // GIVEN users in two regions
    let stack = TestStack::start();
    let users = generated(200, 2, 13);
    let state = state_with_users(&stack, &users, &[]).await;
    let runtime = nightly_runtime(&state, Arc::new(NoKick));

    // WHEN an unknown event arrives THEN it is a clear error and nothing is queued
    let err = runtime
        .handle(&fixture("unknown-event.json"), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown worker event"), "{err}");
    assert_eq!(state.queue.counts().await.unwrap().unfinished(), 0);

    // WHEN the manual-run fixture arrives THEN only eu-west is matched, under the manual run id
    let report = runtime
        .handle(&fixture("manual-run.json"), None)
        .await
        .unwrap();
    assert_eq!(report.run.unwrap().run_id, "manual-2026-12-03-6f1c2a9b");
    let record = RunStore::new(state.queue.client().clone(), "bull", "prematchQueue", 60)
        .get("manual-2026-12-03-6f1c2a9b")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.regions, vec!["eu-west".to_string()]);
    assert_eq!(record.state, RunState::Finished);
    let stored = all_matches(&state).await;
    assert!(!stored.is_empty());
    let eu_west: BTreeSet<String> = users
        .iter()
        .filter(|u| u["region"] == "eu-west")
        .filter_map(|u| u["user_id"].as_str().map(str::to_string))
        .collect();
    assert!(stored
        .keys()
        .all(|(a, b)| eu_west.contains(a) && eu_west.contains(b)));
}

/// Every Redis key matching `pattern` (SCAN, so it is safe on a busy server).
async fn redis_keys(state: &State, pattern: &str) -> Vec<String> {
    use fred::prelude::*;
    let mut keys = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, page): (String, Vec<String>) = state
            .queue
            .client()
            .custom(
                fred::cmd!("SCAN"),
                vec![
                    cursor.clone(),
                    "MATCH".into(),
                    pattern.to_string(),
                    "COUNT".into(),
                    "1000".into(),
                ],
            )
            .await
            .expect("scan");
        keys.extend(page);
        if next == "0" {
            return keys;
        }
        cursor = next;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_too_large_for_one_job_is_split_and_gives_exactly_the_unsplit_suggestions() {
    // GIVEN 900 users in one region, with at most 200 per scoring shard and 150 pairs per write job
    let stack = TestStack::start();
    let users = generated(900, 1, 13);
    let state = state_with_users(
        &stack,
        &users,
        &[
            ("REGION_SHARD_USERS", "200"),
            ("REGION_WRITE_PAIRS", "150"),
            ("USER_PAGE_SIZE", "100"),
        ],
    )
    .await;
    let runtime = nightly_runtime(&state, Arc::new(NoKick));

    // WHEN the night runs
    let report = runtime
        .handle(&fixture("scheduled-event.json"), None)
        .await
        .expect("worker");

    // THEN the region went through its shards, one selection and its write parts, with no failure
    let parsed: Vec<_> = users.iter().filter_map(|u| parse_user(u).ok()).collect();
    let active = parsed.iter().filter(|u| u.is_active()).count();
    let shards = active.div_ceil(200);
    let outcome = match_region(
        parsed.clone(),
        &[],
        "2026-12-03".parse().unwrap(),
        &MatchConfig::default(),
    );
    let writes = outcome.suggestions.len().div_ceil(150);
    assert!(
        shards >= 4 && writes >= 2,
        "{shards} shards, {writes} writes"
    );
    assert_eq!(report.drain.failed, 0, "{report:?}");
    assert_eq!(
        report.drain.completed as usize,
        2 + shards + 1 + writes,
        "run, region, shards, select, writes: {report:?}"
    );
    for (id, state_wanted) in [
        (
            "shard-2026-12-03-eu-west-0".to_string(),
            JobState::Completed,
        ),
        (
            format!("shard-2026-12-03-eu-west-{}", shards - 1),
            JobState::Completed,
        ),
        ("select-2026-12-03-eu-west".to_string(), JobState::Completed),
        (
            format!("write-2026-12-03-eu-west-{}", writes - 1),
            JobState::Completed,
        ),
    ] {
        assert_eq!(
            state.queue.get_state(&id).await.unwrap(),
            Some(state_wanted),
            "{id}"
        );
    }

    // AND the stored suggestions are exactly those of matching the region in one piece
    let mut expected = BTreeSet::new();
    for s in &outcome.suggestions {
        expected.insert((s.a.clone(), s.b.clone()));
        expected.insert((s.b.clone(), s.a.clone()));
    }
    let stored = all_matches(&state).await;
    assert_eq!(stored.keys().cloned().collect::<BTreeSet<_>>(), expected);

    // AND the run's record has the region once, with totals that add up, and says it was split
    let record = run_store(&state)
        .get("run-2026-12-03")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, RunState::Finished);
    let region = &record.results["eu-west"];
    assert_eq!(region.shards, Some(shards as u32));
    assert_eq!(region.users_read as usize, users.len());
    assert_eq!(region.users_matched as usize, outcome.stats.matched_users);
    assert_eq!(region.suggestions as usize, outcome.suggestions.len());
    assert_eq!(region.items_written as usize, stored.len());
    let skipped: u64 = region.skipped.values().sum();
    assert_eq!(region.users_matched + skipped, region.users_read);
    assert_eq!(
        region.users_uncovered as usize,
        outcome.stats.users_with_feasible_partner - outcome.stats.users_covered
    );

    // AND the snapshot, edges and pairs are gone from Redis; only the small marker hash stays
    let left = redis_keys(&state, "*prematch:split:*").await;
    assert_eq!(left.len(), 1, "{left:?}");

    // WHEN a stale copy of the region job and of a shard run again (a duplicate delivery)
    let data = serde_json::json!({"run_id": "run-2026-12-03", "region": "eu-west", "run_date": "2026-12-03", "part": 0});
    let opts = |id: &str| prematch_queue::JobOptions {
        job_id: Some(id.to_string()),
        ..prematch_queue::JobOptions::default()
    };
    state
        .queue
        .add("region-shard", data.clone(), opts("stale-shard"))
        .await
        .unwrap();
    state
        .queue
        .add("region-write", data, opts("stale-write"))
        .await
        .unwrap();
    let region_data = serde_json::json!({"run_id": "run-2026-12-03", "region": "eu-west", "run_date": "2026-12-03"});
    state
        .queue
        .add("region", region_data, opts("stale-region"))
        .await
        .unwrap();
    let again = runtime
        .handle(&fixture("drain.json"), None)
        .await
        .expect("worker");

    // THEN they end at once, add no job and change nothing
    assert_eq!(again.drain.completed, 3, "{again:?}");
    assert_eq!(all_matches(&state).await, stored);
    let after = run_store(&state)
        .get("run-2026-12-03")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.results, record.results);
}

/// Suggestions in memory, refusing every write while `broken` is set.
struct BreakableSink {
    inner: MemoryMatches,
    broken: std::sync::atomic::AtomicBool,
}

impl prematch_app::dynamo::SuggestionSink for BreakableSink {
    async fn write(
        &self,
        run: &prematch_app::dynamo::RunRef,
        suggestions: &[prematch_engine::Suggestion],
    ) -> Result<prematch_app::dynamo::WriteReport, StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Dynamo {
                operation: "BatchWriteItem",
                table: "matches".into(),
                message: "throttled (test)".into(),
                retryable: true,
            });
        }
        self.inner.write(run, suggestions).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_region_whose_writes_fail_for_good_makes_the_run_partial_and_redrive_finishes_it() {
    // GIVEN a 500-user region split into shards, and a matches table that refuses every write
    let stack = TestStack::start();
    let state = state_with_users(&stack, &[], &[("JOB_TIMEOUT_SECS", "30")]).await;
    let records = generated(500, 1, 21);
    let active = records
        .iter()
        .filter(|r| parse_user(r).is_ok_and(|u| u.is_active()))
        .count();
    let users = MemoryUsers::new();
    users.insert_all(&records);
    let runs = run_store(&state);
    let settings = JobSettings {
        region_shard_users: 150,
        region_write_pairs: 200,
        ..JobSettings::from_config(&state.config)
    };
    let runtime = WorkerRuntime {
        jobs: NightlyJobs {
            queue: state.queue.clone(),
            runs: runs.clone(),
            users,
            sink: BreakableSink {
                inner: MemoryMatches::new(30),
                broken: std::sync::atomic::AtomicBool::new(true),
            },
            history: MemoryMatches::new(30),
            kick: Arc::new(NoKick),
            settings,
        },
        dead: RunAwareDeadLetters {
            runs: runs.clone(),
            inner: state.dead_letters.clone(),
        },
        worker: state.worker_options(),
        fallback_budget: Duration::from_secs(120),
    };

    // WHEN the night runs
    let report = runtime
        .handle(&fixture("scheduled-event.json"), None)
        .await
        .expect("worker");

    // THEN the scoring and selection completed, every write part failed for good after 3 attempts,
    // the run is partial naming the region, and each failed part is one SQS message
    let write_parts = report.drain.failed as usize;
    assert!(write_parts >= 2, "{report:?}");
    let first = state
        .queue
        .get_job("write-2026-12-03-eu-west-0")
        .await
        .unwrap()
        .expect("write part kept");
    assert_eq!(first.attempts_made, 3);
    assert_eq!(
        state
            .queue
            .get_state("select-2026-12-03-eu-west")
            .await
            .unwrap(),
        Some(JobState::Completed)
    );
    let record = runs.get("run-2026-12-03").await.unwrap().unwrap();
    assert_eq!(record.state, RunState::Partial);
    assert_eq!(record.failed_regions, vec!["eu-west".to_string()]);
    let letters = state.dead_letters.peek(10).await.unwrap();
    assert_eq!(letters.len(), write_parts);

    // WHEN the table is back and the dead letters are redriven
    runtime.jobs.sink.broken.store(false, Ordering::SeqCst);
    let redriven = redrive(&state.dead_letters, &state.queue, &Redrive::All)
        .await
        .unwrap();
    assert_eq!(redriven.replayed.len(), write_parts);
    let drained = runtime.handle(&fixture("drain.json"), None).await.unwrap();

    // THEN every part is written from the kept snapshot and the run is finished with the region's totals
    assert_eq!(drained.drain.completed as usize, write_parts, "{drained:?}");
    assert_eq!(drained.drain.failed, 0);
    let record = runs.get("run-2026-12-03").await.unwrap().unwrap();
    assert_eq!(record.state, RunState::Finished);
    assert!(record.failed_regions.is_empty());
    let region = &record.results["eu-west"];
    assert_eq!(region.shards, Some(active.div_ceil(150) as u32));
    assert!(region.error.is_none());
    assert_eq!(region.items_written, region.suggestions * 2);
    assert_eq!(
        runtime.jobs.sink.inner.all().len() as u64,
        region.items_written,
        "every suggestion stored for both users"
    );
}
