//! `prematch match`: offline matching of a JSON-lines file of users, region by region.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use prematch_engine::{
    compile, feasible_graph, match_region, parse_user, HistoryPair, MatchConfig, MatchStats,
    NaiveDate, Rejection, SelectionMethod, User, SCORE_SCALE,
};
use serde::Serialize;

/// Arguments of `prematch match`.
#[derive(clap::Args, Debug)]
pub struct MatchArgs {
    /// Users, one DESIGN §3.1 JSON record per line (several regions may be mixed).
    #[arg(long)]
    pub input: PathBuf,
    /// The run date (YYYY-MM-DD): ages, the availability week and the history window count from it.
    #[arg(long, value_parser = parse_date)]
    pub run_date: NaiveDate,
    /// K: the most suggestions per user.
    #[arg(long, default_value_t = 3)]
    pub k: usize,
    /// Recent suggestions, lines `{"a":ID,"b":ID,"date":"YYYY-MM-DD"}`.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Where to write the selected pairs, lines `{"a","b","score","reasons"}`.
    #[arg(long)]
    pub output: PathBuf,
    /// Also write every feasible pair with its score, lines `{"a","b","score"}` (small inputs).
    #[arg(long)]
    pub graph: Option<PathBuf>,
    /// Selection algorithm.
    #[arg(long, value_enum, default_value_t = Method::Auction)]
    pub method: Method,
    /// Days of history that forbid a repeat.
    #[arg(long, default_value_t = 14)]
    pub history_days: u32,
    /// Minimum overlapping availability in minutes.
    #[arg(long, default_value_t = 60)]
    pub min_overlap_minutes: u32,
    /// C: candidates kept per user before selection (default max(10·K, 24)).
    #[arg(long)]
    pub candidates_per_user: Option<usize>,
    /// Coverage bonus λ, as a fraction of the median candidate score.
    #[arg(long, default_value_t = 0.25)]
    pub coverage_bonus: f64,
    /// Print the summary as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Selection algorithm, as the command line names it.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// ε-auction on the double cover, rounded (greedy if it runs out of bids).
    Auction,
    /// Greedy by score.
    Greedy,
}

fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| format!("{text:?} is not YYYY-MM-DD: {e}"))
}

/// The closing summary (also printed as JSON with `--json`).
#[derive(Debug, Default, Serialize)]
struct Summary {
    lines: usize,
    users: usize,
    rejected: BTreeMap<&'static str, usize>,
    history_pairs: usize,
    history_rejected: usize,
    regions: BTreeMap<String, MatchStats>,
    feasible_pairs: u64,
    selected_pairs: usize,
    users_with_feasible_partner: usize,
    users_covered: usize,
    total_score: f64,
    upper_bound: f64,
}

/// Runs `prematch match`.
pub fn run(args: MatchArgs) -> Result<(), String> {
    if args.k == 0 {
        return Err("--k must be at least 1".into());
    }
    let mut summary = Summary::default();
    let mut by_region: BTreeMap<String, Vec<User>> = BTreeMap::new();
    for_each_line(&args.input, |number, line| {
        summary.lines += 1;
        let parsed = serde_json::from_str::<serde_json::Value>(line)
            .map_err(|e| Rejection::not_json(e.to_string()))
            .and_then(|v| parse_user(&v));
        match parsed {
            Ok(user) => {
                summary.users += 1;
                by_region.entry(user.region.clone()).or_default().push(user);
            }
            Err(rejection) => {
                *summary.rejected.entry(rejection.code()).or_default() += 1;
                eprintln!("{}:{number}: skipped: {rejection}", args.input.display());
            }
        }
    })?;

    let mut history = Vec::new();
    if let Some(path) = &args.history {
        for_each_line(path, |number, line| {
            match serde_json::from_str::<HistoryPair>(line) {
                Ok(pair) => history.push(pair),
                Err(e) => {
                    summary.history_rejected += 1;
                    eprintln!("{}:{number}: skipped history line: {e}", path.display());
                }
            }
        })?;
    }
    summary.history_pairs = history.len();

    let cfg = MatchConfig {
        suggestions_per_user: args.k,
        history_days: args.history_days,
        min_overlap_minutes: args.min_overlap_minutes,
        selection: match args.method {
            Method::Auction => SelectionMethod::Auction,
            Method::Greedy => SelectionMethod::Greedy,
        },
        candidates_per_user: args.candidates_per_user,
        coverage_bonus: args.coverage_bonus,
        ..MatchConfig::default()
    };

    let mut output = create(&args.output)?;
    let mut graph = args.graph.as_deref().map(create).transpose()?;
    for (region, users) in by_region {
        if let Some(out) = graph.as_mut() {
            let compiled = compile(users.clone(), &history, args.run_date, &cfg);
            for e in feasible_graph(&compiled, &cfg.weights) {
                let line = serde_json::json!({
                    "a": compiled.user(e.a).user_id,
                    "b": compiled.user(e.b).user_id,
                    "score": f64::from(e.score) / f64::from(SCORE_SCALE),
                });
                writeln!(out, "{line}").map_err(|e| write_error(&args.graph, e))?;
            }
        }
        let outcome = match_region(users, &history, args.run_date, &cfg);
        for s in &outcome.suggestions {
            let line = serde_json::to_string(s).map_err(|e| e.to_string())?;
            writeln!(output, "{line}").map_err(|e| write_error(&Some(args.output.clone()), e))?;
        }
        let st = outcome.stats;
        summary.feasible_pairs += st.feasible_pairs;
        summary.selected_pairs += st.selected_pairs;
        summary.users_with_feasible_partner += st.users_with_feasible_partner;
        summary.users_covered += st.users_covered;
        summary.total_score += st.total_score;
        summary.upper_bound += st.upper_bound;
        summary.regions.insert(region, st);
    }
    output
        .flush()
        .map_err(|e| write_error(&Some(args.output.clone()), e))?;
    if let Some(mut out) = graph {
        out.flush().map_err(|e| write_error(&args.graph, e))?;
    }

    if args.json {
        println!(
            "{}",
            serde_json::to_string(&summary).map_err(|e| e.to_string())?
        );
    } else {
        print_summary(&summary);
    }
    Ok(())
}

fn create(path: &Path) -> Result<BufWriter<File>, String> {
    File::create(path)
        .map(BufWriter::new)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))
}

fn write_error(path: &Option<PathBuf>, e: std::io::Error) -> String {
    let name = path
        .as_deref()
        .map_or("output".into(), |p| p.display().to_string());
    format!("cannot write {name}: {e}")
}

/// Calls `f(line_number, line)` for every non-blank line (numbers from 1).
fn for_each_line(path: &Path, mut f: impl FnMut(usize, &str)) -> Result<(), String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line =
            line.map_err(|e| format!("cannot read {} line {}: {e}", path.display(), i + 1))?;
        if !line.trim().is_empty() {
            f(i + 1, &line);
        }
    }
    Ok(())
}

fn pct(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        format!("{:.2}%", 100.0 * part / whole)
    } else {
        "-".into()
    }
}

fn print_summary(s: &Summary) {
    let rejected: usize = s.rejected.values().sum();
    println!("lines read           {}", s.lines);
    println!("users                {}", s.users);
    println!("rejected             {rejected}");
    for (code, n) in &s.rejected {
        println!("  {code:<19}{n}");
    }
    if s.history_pairs + s.history_rejected > 0 {
        println!(
            "history pairs        {} ({} skipped)",
            s.history_pairs, s.history_rejected
        );
    }
    for (region, st) in &s.regions {
        println!(
            "region {region}: {} matched of {} ({} inactive, {} duplicate), {} feasible pairs, {} candidate edges, \
{} selected, covered {}/{} ({}), score {:.3} / bound {:.3} ({}), {:?}{}; \
compile {:.0} ms, candidates {:.0} ms, select {:.0} ms, reasons {:.0} ms",
            st.matched_users,
            st.users,
            st.inactive,
            st.duplicates,
            st.feasible_pairs,
            st.candidate_edges,
            st.selected_pairs,
            st.users_covered,
            st.users_with_feasible_partner,
            pct(st.users_covered as f64, st.users_with_feasible_partner as f64),
            st.total_score,
            st.upper_bound,
            pct(st.total_score, st.upper_bound),
            st.selection,
            if st.fell_back { " (auction fell back)" } else { "" },
            st.times.compile_ms,
            st.times.candidates_ms,
            st.times.select_ms,
            st.times.reasons_ms,
        );
    }
    println!("feasible pairs       {}", s.feasible_pairs);
    println!("selected pairs       {}", s.selected_pairs);
    println!(
        "coverage             {}/{} users with a feasible partner ({})",
        s.users_covered,
        s.users_with_feasible_partner,
        pct(s.users_covered as f64, s.users_with_feasible_partner as f64)
    );
    println!("total score          {:.3}", s.total_score);
    println!(
        "upper bound          {:.3} (score is {} of it)",
        s.upper_bound,
        pct(s.total_score, s.upper_bound)
    );
}
