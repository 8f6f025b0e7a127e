//! Test fixture worker: echoes every job's data, sleeping or failing on request, until the queue idles.
//!
//! `cargo run -p prematch-queue --example echo_worker -- --redis-url URL --queue NAME [--prefix P]
//!  [--concurrency N] [--idle-exit-ms MS]`
//! A job sleeps `data.sleep_ms` if given, fails with reason `requested failure` while its attempts made
//! are below `data.fail_times`, else completes with `{"echo": data}`. Exits 0 once no job is waiting,
//! delayed or active for `--idle-exit-ms` (default 2000).

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use prematch_queue::{
    JobContext, JobError, NoDeadLetters, Queue, QueueSettings, Worker, WorkerOptions,
};
use serde_json::{json, Value};

fn parse_args() -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let key = flag
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {flag:?}"))?;
        let value = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

async fn echo(job: JobContext) -> Result<Value, JobError> {
    if let Some(ms) = job.data.get("sleep_ms").and_then(Value::as_u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let fail_times = job
        .data
        .get("fail_times")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if u64::from(job.attempts_made) < fail_times {
        return Err(JobError::retryable("requested failure"));
    }
    Ok(json!({ "echo": job.data }))
}

async fn run() -> Result<(), String> {
    let args = parse_args()?;
    let url = args.get("redis-url").ok_or("--redis-url is required")?;
    let name = args.get("queue").ok_or("--queue is required")?;
    let prefix = args.get("prefix").map(String::as_str).unwrap_or("bull");
    let num = |k: &str, default: u64| -> Result<u64, String> {
        args.get(k)
            .map(|v| v.parse::<u64>().map_err(|e| format!("--{k} {v:?}: {e}")))
            .unwrap_or(Ok(default))
    };
    let concurrency = num("concurrency", 1)? as usize;
    let idle = Duration::from_millis(num("idle-exit-ms", 2000)?);
    let queue = Queue::connect(url, QueueSettings::new(prefix, name.as_str()))
        .await
        .map_err(|e| e.to_string())?;
    let opts = WorkerOptions {
        concurrency,
        idle_wait: idle,
        job_timeout: Duration::from_secs(60),
        deadline_margin: Duration::from_secs(1),
        stalled_interval: Duration::from_secs(5),
        ..WorkerOptions::default()
    };
    let worker = Worker::new(&queue, opts);
    loop {
        let summary = worker
            .drain(
                Instant::now() + Duration::from_secs(3600),
                &echo,
                &NoDeadLetters,
            )
            .await
            .map_err(|e| e.to_string())?;
        eprintln!("{}", serde_json::to_string(&summary).unwrap_or_default());
        let c = queue.counts().await.map_err(|e| e.to_string())?;
        if c.waiting + c.delayed + c.active + c.prioritized == 0 {
            return Ok(());
        }
        // Jobs remain (another worker's active job, or a delayed job past this drain's budget).
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_worker: {e}");
            ExitCode::FAILURE
        }
    }
}
