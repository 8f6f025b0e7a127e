//! `prematch`: the local tool — seed users, match a file offline, run the night locally, queue and DLQ admin.

mod dlq_cmd;
mod match_cmd;
mod night_cmd;
mod seed_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The prematch command-line tool.
#[derive(Parser)]
#[command(name = "prematch", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate realistic users (with a share of malformed records) into DynamoDB or a JSON-lines file.
    Seed(seed_cmd::SeedArgs),
    /// Match a JSON-lines file of users offline and write the suggestions.
    Match(match_cmd::MatchArgs),
    /// Run the whole night locally: tables, generated users, the worker on the schedule's event.
    Night(night_cmd::NightArgs),
    /// Show or redrive the dead-letter queue.
    Dlq(dlq_cmd::DlqArgs),
    /// Queue admin: counts, pause, resume, the last run.
    Queue(dlq_cmd::QueueArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Seed(args) => seed_cmd::run(args),
        Command::Match(args) => match_cmd::run(args),
        Command::Night(args) => night_cmd::run(args),
        Command::Dlq(args) => dlq_cmd::run_dlq(args),
        Command::Queue(args) => dlq_cmd::run_queue(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("prematch: {message}");
            ExitCode::FAILURE
        }
    }
}
