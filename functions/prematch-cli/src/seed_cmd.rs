//! `prematch seed`: generate users into DynamoDB or a JSON-lines file (owned by the foundation work).

/// Arguments of `prematch seed`.
#[derive(clap::Args)]
pub struct SeedArgs {}

/// Runs `prematch seed`.
pub fn run(_args: SeedArgs) -> Result<(), String> {
    Err("prematch seed is not built yet".to_string())
}
