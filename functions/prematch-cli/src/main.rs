//! `prematch`: the local tool — seed users, match a file offline, run the night locally, queue and DLQ admin.

mod match_cmd;
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Seed(args) => seed_cmd::run(args),
        Command::Match(args) => match_cmd::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("prematch: {message}");
            ExitCode::FAILURE
        }
    }
}
