//! `prematch match`: offline matching of a JSON-lines file (owned by the engine work).

/// Arguments of `prematch match`.
#[derive(clap::Args)]
pub struct MatchArgs {}

/// Runs `prematch match`.
pub fn run(_args: MatchArgs) -> Result<(), String> {
    Err("prematch match is not built yet".to_string())
}
