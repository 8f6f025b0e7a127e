//! `prematch night`: the whole night locally — tables, generated users, the worker on the schedule's
//! event, scale-out to local worker tasks, and a summary of the run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use indicatif::ProgressBar;
use prematch_app::dlq::MemoryDeadLetters;
use prematch_app::dynamo::memory::{MemoryMatches, MemoryUsers};
use prematch_app::dynamo::{HistorySource, SuggestionSink, UserSource};
use prematch_app::jobs::event::WorkerEvent;
use prematch_app::jobs::kick::ChannelKick;
use prematch_app::jobs::runs::RunStore;
use prematch_app::jobs::runs::{RegionSummary, RunRecord};
use prematch_app::jobs::worker::{
    nightly_runtime, run_store, WorkerReport, WorkerRuntime, RUN_RETENTION_SECS,
};
use prematch_app::jobs::{JobSettings, NightlyJobs, RunAwareDeadLetters};
use prematch_app::{Config, State};
use prematch_gen::GenConfig;
use prematch_queue::{DeadLetterSink, JobState, Queue};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Arguments of `prematch night`.
#[derive(clap::Args, Debug)]
pub struct NightArgs {
    /// Users to generate into the users table first (0: use what is there).
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    /// Regions to spread them over.
    #[arg(long, default_value_t = 4)]
    pub regions: usize,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The worker's event (EventBridge Scheduled Event, drain or manual run JSON).
    #[arg(long, default_value = "tests/fixtures/events/scheduled-event.json")]
    pub event: PathBuf,
    /// Forget earlier local runs first (the queue's keys in Redis), so the same event runs again.
    #[arg(long)]
    pub fresh: bool,
    /// Keep users, suggestions and dead letters in memory instead of DynamoDB and SQS (Redis and
    /// the worker stay real): for nights too big for moto, such as a million users in one region.
    #[arg(long)]
    pub in_memory: bool,
}

/// Runs `prematch night`.
pub fn run(args: NightArgs) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(night(args))
}

async fn night(args: NightArgs) -> Result<(), String> {
    // EMF lines are for CloudWatch; here stdout is for the person running the night.
    prematch_app::metrics::set_enabled(false);
    let mut config = Config::from_env().map_err(|e| e.to_string())?;
    if args.in_memory {
        return night_in_memory(args, config).await;
    }
    let Some(endpoint) = config.aws_endpoint_url.clone() else {
        return Err(
            "AWS_ENDPOINT_URL is not set: `prematch night` runs against the local stack only \
                    (make local-up; set -a; source .local/env; set +a)"
                .to_string(),
        );
    };
    let payload = read_event(&args)?;
    let event =
        WorkerEvent::from_json(&payload).map_err(|e| format!("{}: {e}", args.event.display()))?;

    let aws = prematch_app::aws::clients(&config).await;
    let setup = prematch_app::setup::ensure_tables_and_queue(
        &aws.dynamo,
        &aws.sqs,
        &config.users_table,
        &config.matches_table,
        &config.dlq_name,
    )
    .await
    .map_err(|e| e.to_string())?;
    config.dlq_url = Some(setup.dlq_url.clone());
    println!(
        "local stack: DynamoDB/SQS at {endpoint}, Redis at {}",
        config.redis_url.redacted()
    );
    if !setup.created_tables.is_empty() {
        println!("created tables {}", setup.created_tables.join(", "));
    }
    if args.users > 0 {
        let gen = GenConfig {
            users: args.users,
            regions: args.regions,
            seed: args.seed,
            ..GenConfig::default()
        };
        let t = Instant::now();
        let summary = crate::seed_cmd::seed_dynamo(
            &config,
            &gen,
            &config.users_table,
            false,
            &ProgressBar::hidden(),
        )
        .await?;
        println!("{summary} in {:.1} s", t.elapsed().as_secs_f64());
    }

    let state = State::with_aws(config, aws)
        .await
        .map_err(|e| e.to_string())?;
    if args.fresh {
        forget_local_runs(&state.queue).await?;
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let runtime = Arc::new(nightly_runtime(&state, Arc::new(ChannelKick(tx))));
    let max_workers = state.config.max_workers;

    let started = Instant::now();
    println!("worker: invoking on {} ...", args.event.display());
    let reports = drain_with_local_workers(runtime, payload, rx, max_workers).await?;
    let elapsed = started.elapsed();

    let run_id = event.run_request().map(|r| r.run_id);
    let runs = run_store(&state);
    let record = match &run_id {
        Some(id) => runs.get(id).await.map_err(|e| e.to_string())?,
        None => runs.latest().await.map_err(|e| e.to_string())?,
    };
    let counts = state.queue.counts().await.map_err(|e| e.to_string())?;
    let dlq = state
        .dead_letters
        .depth()
        .await
        .map_err(|e| e.to_string())?;
    let completed: u64 = reports.iter().map(|r| r.drain.completed).sum();
    let failed: u64 = reports.iter().map(|r| r.drain.failed).sum();
    println!(
        "worker: {} invocation(s) ({} kicked), {completed} jobs completed, {failed} failed, in {:.1} s",
        reports.len(),
        reports.len().saturating_sub(1),
        elapsed.as_secs_f64()
    );
    if let Some(run) = reports.first().and_then(|r| r.run.as_ref()) {
        if !run.created {
            println!("note: run {} already existed (same event delivered again): nothing new was added; use --fresh to run it again", run.run_id);
        }
    }
    match &record {
        Some(run) => print_run(run),
        None => println!("no run record found"),
    }
    println!(
        "queue {}: waiting {}, active {}, delayed {}, completed {}, failed {}; dead-letter queue: {} message(s)",
        state.config.queue_name,
        counts.waiting + counts.prioritized,
        counts.active,
        counts.delayed,
        counts.completed,
        counts.failed,
        dlq.total()
    );
    Ok(())
}

/// `--in-memory`: generated users in memory, the real queue and worker on Redis, suggestions kept
/// in memory; prints the run and the longest job of each kind against the job timeout.
async fn night_in_memory(args: NightArgs, config: Config) -> Result<(), String> {
    let payload = read_event(&args)?;
    let event =
        WorkerEvent::from_json(&payload).map_err(|e| format!("{}: {e}", args.event.display()))?;
    let queue = prematch_app::state::connect_queue(&config)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "in memory: users and suggestions in this process, Redis at {}",
        config.redis_url.redacted()
    );
    let users = MemoryUsers::new();
    let t = Instant::now();
    let gen = GenConfig {
        users: args.users,
        regions: args.regions,
        seed: args.seed,
        ..GenConfig::default()
    };
    let mut stored = 0usize;
    let mut batch = Vec::with_capacity(10_000);
    for line in prematch_gen::generate(&gen) {
        if let Some(value) = line.value {
            batch.push(value);
        }
        if batch.len() == 10_000 {
            stored += users.insert_all(&batch);
            batch.clear();
        }
    }
    stored += users.insert_all(&batch);
    println!(
        "generated {stored} user records in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    if args.fresh {
        forget_local_runs(&queue).await?;
    }
    let runs = RunStore::new(
        queue.client().clone(),
        &config.queue_prefix,
        &config.queue_name,
        RUN_RETENTION_SECS,
    );
    let (tx, rx) = mpsc::unbounded_channel();
    let runtime = Arc::new(WorkerRuntime {
        jobs: NightlyJobs {
            queue: queue.clone(),
            runs: runs.clone(),
            users,
            sink: MemoryMatches::new(config.match_ttl_days),
            history: MemoryMatches::new(config.match_ttl_days),
            kick: Arc::new(ChannelKick(tx)),
            settings: JobSettings::from_config(&config),
        },
        dead: RunAwareDeadLetters {
            runs: runs.clone(),
            inner: MemoryDeadLetters::new(),
        },
        worker: prematch_app::state::worker_options(&config),
        fallback_budget: config.worker_budget,
    });
    let started = Instant::now();
    println!("worker: invoking on {} ...", args.event.display());
    let reports = drain_with_local_workers(runtime, payload, rx, config.max_workers).await?;
    let completed: u64 = reports.iter().map(|r| r.drain.completed).sum();
    let failed: u64 = reports.iter().map(|r| r.drain.failed).sum();
    println!(
        "worker: {} invocation(s), {completed} jobs completed, {failed} failed, in {:.1} s",
        reports.len(),
        started.elapsed().as_secs_f64()
    );
    let record = match event.run_request().map(|r| r.run_id) {
        Some(id) => runs.get(&id).await.map_err(|e| e.to_string())?,
        None => runs.latest().await.map_err(|e| e.to_string())?,
    };
    match &record {
        Some(run) => print_run(run),
        None => println!("no run record found"),
    }
    print_longest_jobs(&queue, config.job_timeout.as_secs()).await
}

/// The longest completed job of each name, against the job timeout.
async fn print_longest_jobs(queue: &Queue, timeout_secs: u64) -> Result<(), String> {
    let jobs = queue
        .get_jobs(&[JobState::Completed], 0, -1)
        .await
        .map_err(|e| e.to_string())?;
    let mut longest: BTreeMap<String, (u64, usize)> = BTreeMap::new();
    for job in &jobs {
        if let (Some(start), Some(end)) = (job.processed_on, job.finished_on) {
            let entry = longest.entry(job.name.clone()).or_default();
            entry.0 = entry.0.max(end.saturating_sub(start));
            entry.1 += 1;
        }
    }
    for (name, (ms, count)) in longest {
        println!(
            "jobs {name:<14} {count:>4} completed, longest {:>7.1} s (timeout {timeout_secs} s)",
            ms as f64 / 1e3
        );
    }
    Ok(())
}

fn read_event(args: &NightArgs) -> Result<Value, String> {
    std::fs::read_to_string(&args.event)
        .map_err(|e| format!("{}: {e}", args.event.display()))
        .and_then(|text| {
            serde_json::from_str(&text)
                .map_err(|e| format!("{}: not JSON: {e}", args.event.display()))
        })
}

/// Runs the first invocation and every worker it (or its successors) kicks, up to `max_workers` at once.
async fn drain_with_local_workers<U, S, H, D>(
    runtime: Arc<WorkerRuntime<U, S, H, D>>,
    payload: Value,
    mut kicks: mpsc::UnboundedReceiver<u32>,
    max_workers: u32,
) -> Result<Vec<WorkerReport>, String>
where
    U: UserSource + 'static,
    S: SuggestionSink + 'static,
    H: HistorySource + 'static,
    D: DeadLetterSink + Send + Sync + 'static,
{
    let mut workers = JoinSet::new();
    let first = runtime.clone();
    workers.spawn(async move {
        first
            .handle(&payload, None)
            .await
            .map_err(|e| e.to_string())
    });
    let drain = serde_json::json!({"kind": "drain"});
    let mut reports = Vec::new();
    // Kicks beyond MAX_WORKERS wait, as Lambda's async invoke queue holds invocations while the
    // function is at its concurrency: a worker that stops claiming before its budget ends hands its
    // work on this way, and dropping those kicks ended the night with work left.
    let mut pending = 0usize;
    loop {
        tokio::select! {
            Some(n) = kicks.recv() => pending += n as usize,
            done = workers.join_next() => match done {
                Some(Ok(Ok(report))) => reports.push(report),
                Some(Ok(Err(e))) => return Err(format!("worker invocation failed: {e}")),
                Some(Err(e)) => return Err(format!("worker task failed: {e}")),
                // No worker left: a kick sent just before the last one ended may still be queued.
                None => match kicks.try_recv() {
                    Ok(n) => pending += n as usize,
                    Err(_) if pending == 0 => break,
                    Err(_) => {}
                },
            },
        }
        while pending > 0 && workers.len() < max_workers as usize {
            pending -= 1;
            let rt = runtime.clone();
            let payload = drain.clone();
            workers
                .spawn(async move { rt.handle(&payload, None).await.map_err(|e| e.to_string()) });
        }
    }
    Ok(reports)
}

/// Deletes the local queue's keys (jobs, run records, caches): only ever against the local stack.
async fn forget_local_runs(queue: &Queue) -> Result<(), String> {
    use fred::prelude::*;
    let pattern = format!("{}*", queue.key(""));
    let client = queue.client();
    let mut cursor = "0".to_string();
    loop {
        let (next, keys): (String, Vec<String>) = client
            .scan_page(cursor.clone(), pattern.clone(), Some(1000), None)
            .await
            .map_err(|e| e.to_string())?;
        if !keys.is_empty() {
            let _: i64 = client.del(keys).await.map_err(|e| e.to_string())?;
        }
        if next == "0" {
            return Ok(());
        }
        cursor = next;
    }
}

fn print_run(run: &RunRecord) {
    let totals = run.totals();
    println!(
        "run {} ({:?}, {}): {:?} in {:.1} s",
        run.run_id,
        run.trigger,
        run.run_date,
        run.state,
        run.duration_ms().unwrap_or(0) as f64 / 1e3
    );
    println!(
        "users read {}, matched {}, skipped {} ({}); suggestions {} pairs, {} items written; users with a feasible partner left without one: {}",
        totals.users_read,
        totals.users_matched,
        totals.skipped.values().sum::<u64>(),
        reasons(&totals.skipped),
        totals.suggestions,
        totals.items_written,
        totals.users_uncovered,
    );
    println!(
        "{:<12} {:>6} {:>7} {:>7} {:>11} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "region",
        "users",
        "matched",
        "skipped",
        "suggestions",
        "uncovered",
        "read",
        "history",
        "match",
        "write",
        "total"
    );
    for (region, r) in &run.results {
        print_region(region, r);
    }
    for region in &run.failed_regions {
        println!("region {region} FAILED for good: see `prematch dlq list`");
    }
}

fn print_region(region: &str, r: &RegionSummary) {
    let skipped: u64 = r.skipped.values().sum();
    let s = |ms: u64| format!("{:.2} s", ms as f64 / 1e3);
    println!(
        "{:<12} {:>6} {:>7} {:>7} {:>11} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}",
        region,
        r.users_read,
        r.users_matched,
        skipped,
        r.suggestions,
        r.users_uncovered,
        s(r.read_ms),
        s(r.history_ms),
        s(r.match_ms),
        s(r.write_ms),
        s(r.duration_ms)
    );
}

fn reasons(skipped: &BTreeMap<String, u64>) -> String {
    skipped
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
