//! Engine benchmark: generated regions of given sizes, per-phase times, pairs/s, peak memory,
//! coverage, score against the upper bound, auction against greedy, and networkx on a small region.
//!
//! `cargo run --release -p prematch-engine --example bench_engine -- [--sizes 10000,100000,1000000]
//!  [--k 3] [--seed 7] [--networkx-users 3000] [--python PATH]`
//! Each size runs in its own child process, so the peak memory (VmHWM) is that size's own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::Command;
use std::time::Instant;

use chrono::NaiveDate;
use prematch_engine::*;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn run_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 3).unwrap()
}

/// One region of `n` generated users, parsed (malformed ones dropped).
fn load(n: usize, seed: u64) -> Vec<User> {
    let cfg = prematch_gen::GenConfig {
        users: n,
        regions: 1,
        seed,
        malformed_per_mille: 0,
    };
    prematch_gen::generate(&cfg)
        .filter_map(|line| line.value.and_then(|v| parse_user(&v).ok()))
        .collect()
}

fn single(n: usize, k: usize, seed: u64) {
    let threads = rayon::current_num_threads();
    let t = Instant::now();
    let users = load(n, seed);
    let load_s = t.elapsed().as_secs_f64();
    let base = MatchConfig {
        suggestions_per_user: k,
        ..MatchConfig::default()
    };
    let t = Instant::now();
    let out = match_region(users.clone(), &[], run_date(), &base);
    let total_s = t.elapsed().as_secs_f64();
    let s = &out.stats;
    // Greedy on the same input, for the quality ratio (only its select phase differs).
    let greedy = match_region(
        users,
        &[],
        run_date(),
        &MatchConfig {
            selection: SelectionMethod::Greedy,
            coverage_bonus: 0.0,
            ..base.clone()
        },
    );
    let g = &greedy.stats;
    let cand_s = s.times.candidates_ms / 1e3;
    let per_core = s.pairs_scanned as f64 / cand_s / threads as f64;
    println!(
        "{{\"users\":{n},\"k\":{k},\"threads\":{threads},\"load_s\":{load_s:.2},\"total_s\":{total_s:.2},\
\"compile_s\":{:.3},\"candidates_s\":{:.3},\"select_s\":{:.3},\"reasons_s\":{:.3},\
\"pairs_scanned\":{},\"pairs_per_s_per_core\":{per_core:.0},\"feasible_pairs\":{},\"candidate_edges\":{},\
\"selected\":{},\"users_with_partner\":{},\"covered\":{},\"total_score\":{:.1},\"upper_bound\":{:.1},\
\"candidate_bound\":{:.1},\"bids\":{},\"fell_back\":{},\"greedy_score\":{:.1},\"greedy_covered\":{},\
\"greedy_select_s\":{:.3},\"peak_rss_mib\":{:.0}}}",
        s.times.compile_ms / 1e3,
        cand_s,
        s.times.select_ms / 1e3,
        s.times.reasons_ms / 1e3,
        s.pairs_scanned,
        s.feasible_pairs,
        s.candidate_edges,
        s.selected_pairs,
        s.users_with_feasible_partner,
        s.users_covered,
        s.total_score,
        s.upper_bound,
        s.candidate_upper_bound,
        s.auction_bids,
        s.fell_back,
        g.total_score,
        g.users_covered,
        g.times.select_ms / 1e3,
        peak_rss_mib(),
    );
}

/// K = 1 on the full feasible graph of an `n`-user region: our selection against networkx.
fn networkx(n: usize, seed: u64, python: &str) {
    let cfg = MatchConfig {
        suggestions_per_user: 1,
        ..MatchConfig::default()
    };
    let region = compile(load(n, seed), &[], run_date(), &cfg);
    let graph = feasible_graph(&region, &cfg.weights);
    let t = Instant::now();
    let ours = select(region.len(), &graph, &cfg.selection_config());
    let ours_s = t.elapsed().as_secs_f64();
    let ours_total: f64 = ours.pairs.iter().map(|e| f64::from(e.score)).sum::<f64>() / 1e6;
    let path =
        std::env::temp_dir().join(format!("prematch-bench-graph-{}.jsonl", std::process::id()));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for e in &graph {
        writeln!(
            f,
            "{{\"a\":{},\"b\":{},\"score\":{}}}",
            e.a,
            e.b,
            f64::from(e.score) / 1e6
        )
        .unwrap();
    }
    drop(f);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/python/engine_oracle.py"
    );
    let out = Command::new(python)
        .args([script, "networkx", "--graph"])
        .arg(&path)
        .output();
    let _ = std::fs::remove_file(&path);
    let theirs = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Ok(o) => format!(
            "{{\"error\":{:?}}}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => format!("{{\"error\":\"{python}: {e}\"}}"),
    };
    println!(
        "{{\"networkx_region_users\":{},\"edges\":{},\"ours_pairs\":{},\"ours_total\":{ours_total:.3},\"ours_select_s\":{ours_s:.3},\"networkx\":{theirs}}}",
        region.len(),
        graph.len(),
        ours.pairs.len()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let k: usize = arg(&args, "--k").map_or(3, |v| v.parse().unwrap());
    let seed: u64 = arg(&args, "--seed").map_or(7, |v| v.parse().unwrap());
    if let Some(n) = arg(&args, "--single") {
        single(n.parse().unwrap(), k, seed);
        return;
    }
    if let Some(n) = arg(&args, "--networkx-single") {
        let python = arg(&args, "--python").unwrap();
        networkx(n.parse().unwrap(), seed, &python);
        return;
    }
    let sizes: Vec<usize> = arg(&args, "--sizes")
        .unwrap_or_else(|| "10000,100000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let venv = std::env::var("PREMATCH_VENV")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv").to_string());
    let python = arg(&args, "--python").unwrap_or_else(|| format!("{venv}/bin/python"));
    let nx_users: usize = arg(&args, "--networkx-users").map_or(3000, |v| v.parse().unwrap());
    let me = std::env::current_exe().unwrap();
    eprintln!(
        "bench_engine: sizes {sizes:?}, K={k}, seed {seed}, {} threads, POPCNT {}",
        rayon::current_num_threads(),
        cfg!(target_feature = "popcnt")
    );
    for n in sizes {
        let status = Command::new(&me)
            .args([
                "--single",
                &n.to_string(),
                "--k",
                &k.to_string(),
                "--seed",
                &seed.to_string(),
            ])
            .status()
            .unwrap();
        if !status.success() {
            eprintln!("size {n} failed: {status}");
        }
    }
    if nx_users > 0 {
        let _ = Command::new(&me)
            .args([
                "--networkx-single",
                &nx_users.to_string(),
                "--seed",
                &seed.to_string(),
                "--python",
                &python,
            ])
            .status();
    }
}
