//! `prematch seed`: generate users into DynamoDB or a JSON-lines file (owned by the foundation work).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use prematch_app::dynamo::{batch_write_with, user_item, BatchPolicy, Item};
use prematch_app::Config;
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
    /// Allow writing to real AWS when AWS_ENDPOINT_URL (a local moto) is not set.
    #[arg(long)]
    pub remote: bool,
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
        None => write_dynamo(&cfg, &args.table, args.remote, &progress)?,
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
fn write_file(cfg: &GenConfig, path: &Path, progress: &ProgressBar) -> Result<SeedSummary, String> {
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

/// Items handed to one `batch_write_items` call (it splits them into BatchWriteItem calls of 25,
/// a few in flight); bounded so a million users never sit in memory at once.
const WRITE_CHUNK: usize = 2_500;

/// Writes every JSON record to the users table; lines that are not JSON cannot be items and are
/// skipped (and counted), type-malformed records are stored as they are.
fn write_dynamo(
    cfg: &GenConfig,
    table: &str,
    remote: bool,
    progress: &ProgressBar,
) -> Result<SeedSummary, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(seed_dynamo(
        &aws_only_config()?,
        cfg,
        table,
        remote,
        progress,
    ))
}

pub(crate) async fn seed_dynamo(
    config: &Config,
    cfg: &GenConfig,
    table: &str,
    remote: bool,
    progress: &ProgressBar,
) -> Result<SeedSummary, String> {
    let target = match (&config.aws_endpoint_url, remote) {
        (Some(endpoint), _) => format!("DynamoDB table {table} at {endpoint}"),
        (None, true) => format!("DynamoDB table {table} (AWS)"),
        (None, false) => {
            return Err("AWS_ENDPOINT_URL is not set: source the local stack's env file \
                 (make local-up; set -a; source .local/env; set +a), pass --remote to write to real AWS, \
                 or --out FILE"
                .to_string())
        }
    };
    let clients = prematch_app::aws::clients(config).await;
    let mut summary = SeedSummary {
        target,
        ..SeedSummary::default()
    };
    let mut pending: Vec<Item> = Vec::with_capacity(WRITE_CHUNK);
    let mut pending_lines: Vec<Option<&'static str>> = Vec::with_capacity(WRITE_CHUNK);
    for (n, line) in generate(cfg).enumerate() {
        if n % 1024 == 0 {
            progress.set_position(n as u64);
        }
        let Some(value) = &line.value else {
            *summary.skipped.entry("not_json").or_default() += 1;
            continue;
        };
        match user_item(value) {
            Ok(item) => {
                pending.push(item);
                pending_lines.push(line.malformed);
            }
            // The generator keeps user_id and region valid; should that ever change, say so.
            Err(_) => *summary.skipped.entry("not_storable").or_default() += 1,
        }
        if pending.len() == WRITE_CHUNK {
            flush(
                &clients.dynamo,
                table,
                &mut pending,
                &mut pending_lines,
                &mut summary,
            )
            .await?;
        }
    }
    flush(
        &clients.dynamo,
        table,
        &mut pending,
        &mut pending_lines,
        &mut summary,
    )
    .await?;
    Ok(summary)
}

/// The library's batch policy with more calls in flight: seeding is a bulk load, and both moto and
/// DynamoDB on demand take more parallel writers than a region job needs.
fn write_policy() -> BatchPolicy {
    BatchPolicy {
        concurrency: 8,
        ..BatchPolicy::default()
    }
}

/// Writes the pending items and counts them once DynamoDB has them all.
async fn flush(
    dynamo: &aws_sdk_dynamodb::Client,
    table: &str,
    pending: &mut Vec<Item>,
    pending_lines: &mut Vec<Option<&'static str>>,
    summary: &mut SeedSummary,
) -> Result<(), String> {
    if pending.is_empty() {
        return Ok(());
    }
    let report = batch_write_with(dynamo, table, std::mem::take(pending), &write_policy())
        .await
        .map_err(|e| {
            let message = e.to_string();
            if message.contains("ResourceNotFoundException") {
                // The SDK's full error is long and says no more than this.
                format!(
                    "DynamoDB table {table} does not exist; create the tables first \
                     (the local set-up does, or pass --table NAME)"
                )
            } else {
                message
            }
        })?;
    if !report.is_complete() || report.rejected > 0 {
        return Err(format!(
            "DynamoDB {table}: {} items still unprocessed after retries, {} rejected; \
             {} written so far (seeding again is safe: items are plain puts)",
            report.failed,
            report.rejected,
            summary.written + report.written
        ));
    }
    for malformed in pending_lines.drain(..) {
        summary.written += 1;
        match malformed {
            None => summary.well_formed += 1,
            Some(kind) => *summary.malformed.entry(kind).or_default() += 1,
        }
    }
    Ok(())
}

/// The shared configuration, for its AWS settings only: seeding does not touch Redis, so a
/// missing `REDIS_URL` must not stop it (any placeholder satisfies the parser and is never used).
fn aws_only_config() -> Result<Config, String> {
    Config::from_lookup(|name| match std::env::var(name) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if name == "REDIS_URL" => Some("redis://127.0.0.1:6379".to_string()),
        _ => None,
    })
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::TcpListener;
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;

    fn repo_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn temp_dir(label: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("prematch-seed-{label}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A private moto server on a free loopback port, killed on drop.
    struct Moto {
        child: Child,
        endpoint: String,
    }

    impl Moto {
        fn start() -> Moto {
            let bin = std::env::var_os("PREMATCH_VENV")
                .map(PathBuf::from)
                .unwrap_or_else(|| repo_root().join(".venv"))
                .join("bin/moto_server");
            assert!(
                bin.exists(),
                "{} missing: run infra/local/venv.sh",
                bin.display()
            );
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = Command::new(bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let moto = Moto {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
            };
            let started = Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "moto did not start"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            moto
        }

        fn config(&self) -> Config {
            Config::from_map(&HashMap::from([
                ("REDIS_URL".to_string(), "redis://127.0.0.1:1".to_string()),
                ("AWS_ENDPOINT_URL".to_string(), self.endpoint.clone()),
                ("AWS_REGION".to_string(), "us-east-1".to_string()),
            ]))
            .unwrap()
        }
    }

    impl Drop for Moto {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[test]
    fn file_output_is_the_generator_output_line_for_line_with_an_exact_summary() {
        // GIVEN a configuration with malformed records
        let cfg = GenConfig {
            users: 5_000,
            regions: 3,
            seed: 77,
            malformed_per_mille: 40,
        };
        let path = temp_dir("file").join("users.jsonl");
        // WHEN seeding to a file
        let summary = write_file(&cfg, &path, &ProgressBar::hidden()).unwrap();
        // THEN the file holds every generated line, in order, one per line
        let written = std::fs::read_to_string(&path).unwrap();
        let expected: Vec<GeneratedLine> = generate(&cfg).collect();
        let lines: Vec<&str> = written.lines().collect();
        assert_eq!(lines.len(), expected.len());
        for (line, want) in lines.iter().zip(&expected) {
            assert_eq!(*line, want.text);
        }
        // AND the summary counts them by kind
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for line in expected.iter().filter_map(|l| l.malformed) {
            *kinds.entry(line).or_default() += 1;
        }
        assert_eq!(summary.written, 5_000);
        assert_eq!(summary.well_formed + kinds.values().sum::<usize>(), 5_000);
        assert_eq!(summary.malformed, kinds);
        assert!(summary.to_string().contains("not_json"), "{summary}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn an_unwritable_file_is_a_precise_error() {
        let cfg = GenConfig {
            users: 10,
            ..GenConfig::default()
        };
        let err = write_file(
            &cfg,
            Path::new("/nonexistent-dir/users.jsonl"),
            &ProgressBar::hidden(),
        )
        .unwrap_err();
        assert!(
            err.starts_with("cannot create /nonexistent-dir/users.jsonl"),
            "{err}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn seeding_dynamodb_stores_every_json_record_and_skips_only_non_json_lines() {
        // GIVEN moto with the users table, and users with plenty of malformed ones
        let moto = Moto::start();
        let config = moto.config();
        let clients = prematch_app::aws::clients(&config).await;
        prematch_app::setup::ensure_tables_and_queue(
            &clients.dynamo,
            &clients.sqs,
            "users",
            "matches",
            "dlq",
        )
        .await
        .unwrap();
        let cfg = GenConfig {
            users: 1_200,
            regions: 2,
            seed: 5,
            malformed_per_mille: 100,
        };
        let expected: Vec<GeneratedLine> = generate(&cfg).collect();
        let not_json = expected.iter().filter(|l| l.value.is_none()).count();
        assert!(not_json > 0);

        // WHEN seeding (more than one write chunk's worth is not needed: chunks are the library's)
        let summary = seed_dynamo(&config, &cfg, "users", false, &ProgressBar::hidden())
            .await
            .unwrap();

        // THEN every JSON record is in the table, malformed ones as they were, and only the
        // non-JSON lines were skipped
        assert_eq!(summary.written, 1_200 - not_json);
        assert_eq!(summary.skipped.get("not_json"), Some(&not_json));
        let mut stored = 0;
        let mut start = None;
        loop {
            let page = clients
                .dynamo
                .scan()
                .table_name("users")
                .set_exclusive_start_key(start)
                .select(aws_sdk_dynamodb::types::Select::Count)
                .send()
                .await
                .unwrap();
            stored += page.count() as usize;
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        assert_eq!(stored, summary.written);
        // AND a wrong-type record kept its wrong type
        let wrong = expected
            .iter()
            .find(|l| {
                l.malformed == Some("wrong_type")
                    && l.value.as_ref().is_some_and(|v| v["active"] == "yes")
            })
            .or_else(|| expected.iter().find(|l| l.malformed == Some("wrong_type")))
            .unwrap();
        let value = wrong.value.as_ref().unwrap();
        let id = value["user_id"].as_str().unwrap();
        let item = clients
            .dynamo
            .get_item()
            .table_name("users")
            .key("user_id", AttributeValue::S(id.to_string()))
            .send()
            .await
            .unwrap()
            .item
            .unwrap();
        let back: serde_json::Value = serde_dynamo::from_item(item).unwrap();
        assert_eq!(&back, value);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn without_a_local_endpoint_seeding_refuses_to_reach_real_aws() {
        let config = Config::from_map(&HashMap::from([(
            "REDIS_URL".to_string(),
            "redis://127.0.0.1:1".to_string(),
        )]))
        .unwrap();
        let cfg = GenConfig {
            users: 3,
            ..GenConfig::default()
        };
        let err = seed_dynamo(&config, &cfg, "users", false, &ProgressBar::hidden())
            .await
            .unwrap_err();
        assert!(err.starts_with("AWS_ENDPOINT_URL is not set"), "{err}");
    }
}
