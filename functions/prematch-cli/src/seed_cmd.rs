//! `prematch seed`: generate users into DynamoDB or a JSON-lines file (owned by the foundation work).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use prematch_gen::{generate, GenConfig, GeneratedLine};

/// Arguments of `prematch seed`.
#[derive(clap::Args, Debug)]
pub struct SeedArgs {
    /// How many users (malformed records included).
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    /// How many regions to spread them over (eu-west, us-east, ap-south, eu-central, ...).
    #[arg(long, default_value_t = 4)]
    pub regions: usize,
    /// Seed: the same seed writes the same users.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Malformed records per thousand.
    #[arg(long, default_value_t = 20)]
    pub malformed_per_mille: u32,
    /// Write JSON lines to this file (`-` for stdout) instead of DynamoDB.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The DynamoDB users table.
    #[arg(long, env = "USERS_TABLE", default_value = "users")]
    pub table: String,
}

/// What a seed run wrote, for the closing summary.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeedSummary {
    /// Where the records went (`users.jsonl`, `DynamoDB table users`).
    pub target: String,
    /// Records written (well-formed and malformed).
    pub written: usize,
    /// Of those, well-formed users.
    pub well_formed: usize,
    /// Malformed records written, by kind.
    pub malformed: BTreeMap<&'static str, usize>,
    /// Lines left out because the target cannot hold them (non-JSON lines cannot go to DynamoDB).
    pub skipped: BTreeMap<&'static str, usize>,
}

impl SeedSummary {
    fn count(&mut self, line: &GeneratedLine) {
        self.written += 1;
        match line.malformed {
            None => self.well_formed += 1,
            Some(kind) => *self.malformed.entry(kind).or_default() += 1,
        }
    }
}

impl fmt::Display for SeedSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bad: usize = self.malformed.values().sum();
        write!(
            f,
            "seeded {} records to {} ({} well-formed, {} malformed",
            self.written, self.target, self.well_formed, bad
        )?;
        if bad > 0 {
            let kinds: Vec<String> = self
                .malformed
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            write!(f, ": {}", kinds.join(", "))?;
        }
        write!(f, ")")?;
        if !self.skipped.is_empty() {
            let kinds: Vec<String> = self
                .skipped
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            write!(f, "; skipped {}", kinds.join(", "))?;
        }
        Ok(())
    }
}

/// Runs `prematch seed`.
pub fn run(args: SeedArgs) -> Result<(), String> {
    let cfg = GenConfig {
        users: args.users,
        regions: args.regions,
        seed: args.seed,
        malformed_per_mille: args.malformed_per_mille,
    };
    let progress = progress_bar(args.users as u64);
    let summary = match &args.out {
        Some(path) => write_file(&cfg, path, &progress)?,
        None => write_dynamo(&cfg, &args.table, &progress)?,
    };
    progress.finish_and_clear();
    // The summary goes to stderr when the records themselves go to stdout.
    if args.out.as_deref().is_some_and(|p| p.as_os_str() == "-") {
        eprintln!("{summary}");
    } else {
        println!("{summary}");
    }
    Ok(())
}

/// A bar on stderr when a person is watching; hidden (and free) otherwise.
fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} seeding [{bar:40}] {pos}/{len} users ({per_sec}, {eta} left)",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Writes every line, malformed ones included, to `path` (or stdout for `-`).
fn write_file(
    cfg: &GenConfig,
    path: &PathBuf,
    progress: &ProgressBar,
) -> Result<SeedSummary, String> {
    let to_stdout = path.as_os_str() == "-";
    let sink: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?)
    };
    let mut out = BufWriter::with_capacity(1 << 20, sink);
    let mut summary = SeedSummary {
        target: if to_stdout {
            "stdout".into()
        } else {
            path.display().to_string()
        },
        ..SeedSummary::default()
    };
    let write_error = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    for (n, line) in generate(cfg).enumerate() {
        out.write_all(line.text.as_bytes()).map_err(write_error)?;
        out.write_all(b"\n").map_err(write_error)?;
        summary.count(&line);
        if n % 4096 == 0 {
            progress.set_position(n as u64);
        }
    }
    out.flush().map_err(write_error)?;
    Ok(summary)
}

fn write_dynamo(
    _cfg: &GenConfig,
    table: &str,
    _progress: &ProgressBar,
) -> Result<SeedSummary, String> {
    Err(format!(
        "writing to DynamoDB table {table} is not built yet; use --out FILE"
    ))
}
