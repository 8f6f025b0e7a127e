//! `prematch dlq list|redrive` and `prematch queue counts|pause|resume`: operator commands.

use prematch_app::jobs::redrive::{redrive, Redrive};
use prematch_app::State;

/// Arguments of `prematch dlq`.
#[derive(clap::Args, Debug)]
pub struct DlqArgs {
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(clap::Subcommand, Debug)]
enum DlqCommand {
    /// Shows the dead letters (without consuming them).
    List {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        max: usize,
    },
    /// Adds dead-lettered jobs back to the queue with their attempts reset, then deletes their messages.
    Redrive {
        /// Every dead letter.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// Only these job ids.
        ids: Vec<String>,
    },
}

/// Arguments of `prematch queue`.
#[derive(clap::Args, Debug)]
pub struct QueueArgs {
    #[command(subcommand)]
    command: QueueCommand,
}

#[derive(clap::Subcommand, Debug)]
enum QueueCommand {
    /// Job counts per state, and whether the queue is paused.
    Counts,
    /// Pauses the queue: workers stop claiming, jobs stay waiting.
    Pause,
    /// Resumes a paused queue.
    Resume,
    /// The latest run and its per-region results, as JSON.
    LastRun,
}

fn block_on<F: std::future::Future<Output = Result<(), String>>>(f: F) -> Result<(), String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?
        .block_on(f)
}

/// Runs `prematch dlq`.
pub fn run_dlq(args: DlqArgs) -> Result<(), String> {
    block_on(async move {
        let state = State::from_env().await.map_err(|e| e.to_string())?;
        match args.command {
            DlqCommand::List { max } => {
                let messages = state
                    .dead_letters
                    .peek(max)
                    .await
                    .map_err(|e| e.to_string())?;
                if messages.is_empty() {
                    println!("the dead-letter queue is empty");
                }
                for m in messages {
                    match &m.dead {
                        Some(d) => println!(
                            "{}\t{}\trun {}\tattempts {}\treceived {}x\t{}",
                            d.id,
                            d.name,
                            m.run_id.as_deref().unwrap_or("-"),
                            d.attempts_made,
                            m.receive_count,
                            d.failed_reason
                        ),
                        None => println!("{}\t(not a prematch dead letter)", m.message_id),
                    }
                }
                Ok(())
            }
            DlqCommand::Redrive { all, ids } => {
                let which = match (all, ids.is_empty()) {
                    (true, _) => Redrive::All,
                    (false, false) => Redrive::Ids(ids),
                    (false, true) => {
                        return Err("say which: --all or one or more job ids".to_string())
                    }
                };
                let report = redrive(&state.dead_letters, &state.queue, &which).await?;
                println!(
                    "replayed {} job(s){}; {} failed, {} not selected, {} foreign message(s) left",
                    report.replayed.len(),
                    if report.replayed.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", report.replayed.join(", "))
                    },
                    report.failed.len(),
                    report.skipped,
                    report.foreign
                );
                for (id, reason) in &report.failed {
                    eprintln!("{id}: {reason}");
                }
                if report.failed.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "{} job(s) could not be replayed",
                        report.failed.len()
                    ))
                }
            }
        }
    })
}

/// Runs `prematch queue`.
pub fn run_queue(args: QueueArgs) -> Result<(), String> {
    block_on(async move {
        let config = prematch_app::Config::from_env().map_err(|e| e.to_string())?;
        let queue = prematch_app::state::connect_queue(&config)
            .await
            .map_err(|e| e.to_string())?;
        match args.command {
            QueueCommand::Counts => {
                let counts = queue.counts().await.map_err(|e| e.to_string())?;
                let paused = queue.is_paused().await.map_err(|e| e.to_string())?;
                let mut value = serde_json::to_value(counts).map_err(|e| e.to_string())?;
                value["is_paused"] = serde_json::Value::Bool(paused);
                println!("{value}");
            }
            QueueCommand::Pause => {
                queue.pause().await.map_err(|e| e.to_string())?;
                println!("paused {}", config.queue_name);
            }
            QueueCommand::Resume => {
                queue.resume().await.map_err(|e| e.to_string())?;
                println!("resumed {}", config.queue_name);
            }
            QueueCommand::LastRun => {
                let runs = prematch_app::jobs::runs::RunStore::new(
                    queue.client().clone(),
                    &config.queue_prefix,
                    &config.queue_name,
                    prematch_app::jobs::worker::RUN_RETENTION_SECS,
                );
                match runs.latest().await.map_err(|e| e.to_string())? {
                    Some(run) => println!(
                        "{}",
                        serde_json::to_string_pretty(&run).map_err(|e| e.to_string())?
                    ),
                    None => println!("no run recorded"),
                }
            }
        }
        Ok(())
    })
}
