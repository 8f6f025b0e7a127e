//! Test fixture producer: adds N jobs with the given options and prints their ids, one a line.
//!
//! `cargo run -p prematch-queue --example producer -- --redis-url URL --queue NAME --count N
//!  [--prefix P] [--data JSON] [--name NAME] [--attempts A] [--backoff-ms MS] [--backoff-type fixed|exponential]
//!  [--delay-ms MS] [--priority P] [--job-id ID] [--lifo true]`
//! With `--job-id` and `--count` above 1 the ids are `ID-1`, `ID-2`, ...

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use prematch_queue::{Backoff, JobOptions, NewJob, Queue, QueueSettings};
use serde_json::Value;

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

async fn run() -> Result<(), String> {
    let args = parse_args()?;
    let url = args.get("redis-url").ok_or("--redis-url is required")?;
    let queue_name = args.get("queue").ok_or("--queue is required")?;
    let prefix = args.get("prefix").map(String::as_str).unwrap_or("bull");
    let num = |k: &str| -> Result<Option<u64>, String> {
        args.get(k)
            .map(|v| v.parse::<u64>().map_err(|e| format!("--{k} {v:?}: {e}")))
            .transpose()
    };
    let count = num("count")?.ok_or("--count is required")?;
    let data: Value = match args.get("data") {
        Some(d) => serde_json::from_str(d).map_err(|e| format!("--data is not JSON: {e}"))?,
        None => Value::Object(Default::default()),
    };
    let name = args.get("name").cloned().unwrap_or_else(|| "job".into());
    let backoff = match (
        num("backoff-ms")?,
        args.get("backoff-type").map(String::as_str),
    ) {
        (None, _) => None,
        (Some(ms), None | Some("fixed")) => Some(Backoff::fixed(ms)),
        (Some(ms), Some("exponential")) => Some(Backoff::exponential(ms)),
        (Some(_), Some(other)) => {
            return Err(format!(
                "--backoff-type {other:?}: expected fixed or exponential"
            ))
        }
    };
    let base = JobOptions {
        attempts: num("attempts")?.map(|a| a as u32),
        backoff,
        delay: num("delay-ms")?.map(Duration::from_millis),
        priority: num("priority")?.map(|p| p as u32),
        lifo: args.get("lifo").is_some_and(|v| v == "true"),
        ..JobOptions::default()
    };
    let jobs: Vec<NewJob> = (1..=count)
        .map(|i| {
            let mut opts = base.clone();
            opts.job_id = args.get("job-id").map(|id| {
                if count == 1 {
                    id.clone()
                } else {
                    format!("{id}-{i}")
                }
            });
            NewJob {
                name: name.clone(),
                data: data.clone(),
                opts,
            }
        })
        .collect();
    let queue = Queue::connect(url, QueueSettings::new(prefix, queue_name.as_str()))
        .await
        .map_err(|e| e.to_string())?;
    for added in queue.add_bulk(jobs).await.map_err(|e| e.to_string())? {
        println!("{}", added.id);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("producer: {e}");
            ExitCode::FAILURE
        }
    }
}
