//! Drains the same no-op jobs with BullMQ's Node Worker and with ours, on one Redis, in one run.
//!
//! `cargo bench -p prematch-queue --bench queue` (needs `npm ci --prefix tests/compat`).
//! Env: `BENCH_JOBS` (default 20000), `BENCH_CONCURRENCY` (default "1,10,50"), `BENCH_RUNS` (median
//! of, default 3), `BENCH_PREFETCH`
//! (default: jobs claimed ahead = max(64 - concurrency, concurrency)), `BENCH_BATCH` (default 64),
//! `BENCH_SKIP_NODE` (ours only), `BENCH_STATS` (per-command calls and µs per job on stderr, from
//! `INFO commandstats`; commands run inside scripts are counted on their own and in the script's µs).
//! Prints jobs/s for each side, the ratio, bulk add rates, Redis CPU (`INFO cpu`), script calls and
//! Redis commands per job, and the draining client's own CPU per job (Node's includes its start-up).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prematch_queue::{
    JobContext, JobError, NewJob, NoDeadLetters, Queue, QueueSettings, Worker, WorkerOptions,
};
use serde_json::{json, Value};

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Redis CPU seconds (user + sys) and per-command (calls, usec), from INFO.
fn redis_usage(port: u16) -> (f64, HashMap<String, (u64, u64)>) {
    let cpu = cli(port, &["INFO", "cpu"]);
    let mut used = 0.0;
    for line in cpu.lines() {
        if let Some((k, v)) = line.trim().split_once(':') {
            if k == "used_cpu_user" || k == "used_cpu_sys" {
                used += v.parse::<f64>().unwrap_or(0.0);
            }
        }
    }
    let mut calls = HashMap::new();
    for line in cli(port, &["INFO", "commandstats"]).lines() {
        if let Some(rest) = line.trim().strip_prefix("cmdstat_") {
            if let Some((name, stats)) = rest.split_once(':') {
                let field = |f: &str| -> u64 {
                    stats
                        .split(',')
                        .find_map(|kv| kv.strip_prefix(f))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0)
                };
                calls.insert(name.to_string(), (field("calls="), field("usec=")));
            }
        }
    }
    (used, calls)
}

/// CPU seconds of this process and of its waited-for children (the Node bench), from /proc/self/stat
/// (clock ticks of 10 ms: good enough over a drain of a few hundred ms or more).
fn client_cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime is field 14 of the whole line.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let tick = 100.0;
    let at = |i: usize| f.get(i).copied().unwrap_or(0.0) / tick;
    // rest[0] is field 3 (state): utime=14 -> 11, stime=15 -> 12, cutime=16 -> 13, cstime=17 -> 14.
    (at(11) + at(12), at(13) + at(14))
}

struct Usage {
    cpu_us_per_job: f64,
    calls_per_job: f64,
    /// CPU of the draining client (the Node process, or this one), µs per job.
    client_us_per_job: f64,
}

fn usage_between(
    before: &(f64, HashMap<String, (u64, u64)>),
    after: &(f64, HashMap<String, (u64, u64)>),
    jobs: u64,
) -> Usage {
    let calls: u64 = after
        .1
        .iter()
        .filter(|(k, _)| k.as_str() != "info")
        .map(|(k, v)| v.0 - before.1.get(k).map_or(0, |b| b.0))
        .sum();
    if std::env::var("BENCH_STATS").is_ok() {
        // Per command: calls and usec per job (commands run inside scripts are counted on their own,
        // and also inside the script's usec).
        let mut rows: Vec<(String, f64, f64)> = after
            .1
            .iter()
            .filter(|(k, _)| k.as_str() != "info")
            .map(|(k, v)| {
                let b = before.1.get(k).copied().unwrap_or((0, 0));
                (
                    k.clone(),
                    (v.0 - b.0) as f64 / jobs as f64,
                    (v.1 - b.1) as f64 / jobs as f64,
                )
            })
            .filter(|r| r.1 > 0.0)
            .collect();
        rows.sort_by(|a, b| b.2.total_cmp(&a.2));
        for (k, c, u) in rows {
            eprintln!("    {k:<18} calls/job {c:>7.3}  usec/job {u:>7.2}");
        }
    }
    Usage {
        cpu_us_per_job: (after.0 - before.0) * 1e6 / jobs as f64,
        calls_per_job: calls as f64 / jobs as f64,
        client_us_per_job: 0.0,
    }
}

fn env_num(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

async fn noop(_job: JobContext) -> Result<Value, JobError> {
    Ok(Value::Null)
}

// One thread, like Node: no cross-thread wake-ups between the socket task and the drain.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let jobs = env_num("BENCH_JOBS").unwrap_or(20_000);
    let concurrencies: Vec<usize> = std::env::var("BENCH_CONCURRENCY")
        .unwrap_or_else(|_| "1,10,50".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let compat = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/compat");
    if !compat.join("node_modules/bullmq").exists() {
        eprintln!(
            "bench: tests/compat/node_modules is missing; run `npm ci --prefix tests/compat` first"
        );
        std::process::exit(2);
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("pq-bench-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut redis = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    while cli(port, &["PING"]).trim() != "PONG" {
        std::thread::sleep(Duration::from_millis(30));
    }
    let url = format!("redis://127.0.0.1:{port}");
    println!("prematch-queue bench: {jobs} no-op jobs per run, one redis-server 127.0.0.1:{port}");
    let node_bench = |args: &[&str]| -> Value {
        let out = Command::new("node")
            .current_dir(&compat)
            .args(["compat.mjs", "bench", "--port", &port.to_string()])
            .args(args)
            .output()
            .expect("node");
        assert!(
            out.status.success(),
            "node bench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("node bench JSON")
    };
    let skip_node = std::env::var("BENCH_SKIP_NODE").is_ok();
    // Bulk add rates, each side into a fresh queue.
    cli(port, &["FLUSHALL"]);
    let node_add = if skip_node {
        0.0
    } else {
        node_bench(&[
            "--queue",
            "nodeadd",
            "--mode",
            "add",
            "--count",
            &jobs.to_string(),
        ])["add_per_s"]
            .as_f64()
            .unwrap_or(0.0)
    };
    cli(port, &["FLUSHALL"]);
    let q = Queue::connect(&url, QueueSettings::new("bull", "rustadd"))
        .await
        .unwrap();
    let t = Instant::now();
    q.add_bulk(
        (0..jobs)
            .map(|i| NewJob::new("noop", json!({ "i": i })))
            .collect(),
    )
    .await
    .unwrap();
    let ours_add = jobs as f64 / t.elapsed().as_secs_f64();
    println!("bulk add: BullMQ addBulk {node_add:.0} jobs/s, ours add_bulk {ours_add:.0} jobs/s ({:.2}x)", ours_add / node_add);
    println!();
    println!("| concurrency | BullMQ Node jobs/s (runs) | ours jobs/s (runs) | ours/BullMQ | Redis CPU µs/job BullMQ | ours | script calls/job BullMQ | ours | Redis commands/job BullMQ | ours | client CPU µs/job BullMQ | ours |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let scripts = |u: &(f64, HashMap<String, (u64, u64)>)| {
        u.1.get("evalsha").map_or(0, |v| v.0) + u.1.get("eval").map_or(0, |v| v.0)
    };
    for &c in &concurrencies {
        // The same jobs for both sides: added by us, drained by BullMQ's Worker, then by ours.
        let mut rows = Vec::new();
        for _ in 0..env_num("BENCH_RUNS").unwrap_or(3).max(1) {
            let mut row = Vec::new();
            for side in ["node", "ours"] {
                if side == "node" && skip_node {
                    row.push((
                        0.0,
                        Usage {
                            cpu_us_per_job: 0.0,
                            calls_per_job: 0.0,
                            client_us_per_job: 0.0,
                        },
                        0.0,
                    ));
                    continue;
                }
                cli(port, &["FLUSHALL"]);
                let name = format!("{side}{c}");
                let queue = Queue::connect(&url, QueueSettings::new("bull", name.as_str()))
                    .await
                    .unwrap();
                queue
                    .add_bulk(
                        (0..jobs)
                            .map(|i| NewJob::new("noop", json!({ "i": i })))
                            .collect(),
                    )
                    .await
                    .unwrap();
                let before = redis_usage(port);
                let cpu_before = client_cpu();
                let jps = if side == "node" {
                    node_bench(&[
                        "--queue",
                        &name,
                        "--mode",
                        "drain",
                        "--count",
                        &jobs.to_string(),
                        "--concurrency",
                        &c.to_string(),
                    ])["jobs_per_s"]
                        .as_f64()
                        .unwrap_or(0.0)
                } else {
                    let prefetch = env_num("BENCH_PREFETCH")
                        .unwrap_or_else(|| 64usize.saturating_sub(c).max(c));
                    let opts = WorkerOptions {
                        concurrency: c,
                        prefetch,
                        batch_size: env_num("BENCH_BATCH").unwrap_or(64),
                        idle_wait: Duration::ZERO,
                        deadline_margin: Duration::from_secs(1),
                        ..WorkerOptions::default()
                    };
                    let worker = Worker::new(&queue, opts);
                    let t = Instant::now();
                    let s = worker
                        .drain(
                            Instant::now() + Duration::from_secs(3600),
                            &noop,
                            &NoDeadLetters,
                        )
                        .await
                        .unwrap();
                    assert_eq!(s.completed, jobs as u64, "drain completed every job");
                    if std::env::var("BENCH_VERBOSE").is_ok() {
                        eprintln!(
                            "ours c={c}: {:?} {}",
                            t.elapsed(),
                            serde_json::to_string(&s).unwrap_or_default()
                        );
                    }
                    jobs as f64 / t.elapsed().as_secs_f64()
                };
                let cpu_after = client_cpu();
                let after = redis_usage(port);
                if std::env::var("BENCH_STATS").is_ok() {
                    eprintln!("  {side} c={c}: Redis commands");
                }
                let mut usage = usage_between(&before, &after, jobs as u64);
                let client = if side == "node" {
                    cpu_after.1 - cpu_before.1
                } else {
                    cpu_after.0 - cpu_before.0
                };
                usage.client_us_per_job = client * 1e6 / jobs as f64;
                row.push((
                    jps,
                    usage,
                    (scripts(&after) - scripts(&before)) as f64 / jobs as f64,
                ));
            }
            rows.push(row);
        }
        // Median run per side (by jobs/s): the machine is shared, single runs are noisy.
        let median = |side: usize| {
            let mut v: Vec<&(f64, Usage, f64)> = rows.iter().map(|r| &r[side]).collect();
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            v[v.len() / 2]
        };
        let all = |side: usize| {
            rows.iter()
                .map(|r| format!("{:.0}", r[side].0))
                .collect::<Vec<_>>()
                .join("/")
        };
        let runs = (all(0), all(1));
        let (n, o) = (median(0), median(1));
        println!(
            "| {c} | {:.0} ({}) | {:.0} ({}) | {:.2}x | {:.1} | {:.1} | {:.3} | {:.3} | {:.1} | {:.1} | {:.1} | {:.1} |",
            n.0,
            runs.0,
            o.0,
            runs.1,
            o.0 / n.0,
            n.1.cpu_us_per_job,
            o.1.cpu_us_per_job,
            n.2,
            o.2,
            n.1.calls_per_job,
            o.1.calls_per_job,
            n.1.client_us_per_job,
            o.1.client_us_per_job
        );
    }
    println!("Redis-bound ceiling = 1e6 / (Redis CPU µs per job) jobs/s on one Redis core.");
    let _ = redis.kill();
    let _ = redis.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
