//! Engine benchmark: generated regions of given sizes, per-phase times, pairs/s, peak memory,
//! coverage, score against the upper bound, auction against greedy, and networkx on a small region.
//!
//! `cargo run --release -p prematch-engine --example bench_engine -- [--sizes 10000,100000,1000000]
//!  [--k 3] [--seed 7] [--networkx-users 3000] [--python PATH]`; one size in this process:
//! `-- --single N [--k 3] [--seed 7] [--epsilon 0.001] [--load stream|records] [--compile-only]`
//! (`--load records` parses the whole region into a `Vec<User>` before `compile_compact`, the
//! default streams pages of 1,000 records into a `RegionBuilder`; `--compile-only` stops after
//! the compile and prints its time and memory).
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
    status_mib("VmHWM:")
}

/// Resident memory now.
fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| {
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

/// One region of `n` generated users compiled as it streams in: generated, parsed and pushed
/// into a [`RegionBuilder`] a page of `PAGE` records at a time, as the region job reads DynamoDB,
/// so the parsed records of the whole region never exist at once. Returns the builder (finish it
/// to compile) and the wall and CPU seconds spent in `push` (the compile's share of the load).
fn load_streaming(n: usize, seed: u64, cfg: &MatchConfig) -> (RegionBuilder, f64, f64) {
    const PAGE: usize = 1000;
    let gen = prematch_gen::GenConfig {
        users: n,
        regions: 1,
        seed,
        malformed_per_mille: 0,
    };
    let mut builder = RegionBuilder::new(run_date(), cfg);
    let mut lines = prematch_gen::generate(&gen);
    let (mut push_s, mut push_cpu) = (0.0, 0.0);
    loop {
        let page: Vec<_> = lines.by_ref().take(PAGE).collect();
        if page.is_empty() {
            break;
        }
        let users: Vec<User> = page
            .into_iter()
            .filter_map(|line| line.value.and_then(|v| parse_user(&v).ok()))
            .collect();
        let ((), s, c) = timed(|| users.into_iter().for_each(|u| builder.push(u)));
        push_s += s;
        push_cpu += c;
    }
    (builder, push_s, push_cpu)
}

/// Process CPU seconds (user + system), from /proc/self/stat.
fn cpu_s() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(f64::NAN)
}

/// Wall and CPU seconds of a closure.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64, f64) {
    let (t, c) = (Instant::now(), cpu_s());
    let out = f();
    (out, t.elapsed().as_secs_f64(), cpu_s() - c)
}

fn single(n: usize, k: usize, seed: u64, epsilon: Option<f64>, compile_only: bool, records: bool) {
    let threads = rayon::current_num_threads();
    let mut cfg = MatchConfig {
        suggestions_per_user: k,
        ..MatchConfig::default()
    };
    if let Some(eps) = epsilon {
        cfg.auction_epsilon = eps;
    }
    // The phases of match_region, timed one by one (wall and CPU: the machine may be shared).
    // The compile is the builder's pushes plus its finish (streaming), or compile_compact of the
    // whole parsed Vec<User> (`--load records`, the way of the previous session).
    let (region, load_s, compile_s, compile_cpu, rss_loaded) = if records {
        let (users, load_s, _) = timed(|| load(n, seed));
        let rss_loaded = rss_mib();
        let (region, s, c) = timed(|| compile_compact(users, &[], run_date(), &cfg));
        (region, load_s, s, c, rss_loaded)
    } else {
        let ((builder, push_s, push_cpu), load_s, _) = timed(|| load_streaming(n, seed, &cfg));
        let rss_loaded = rss_mib();
        let (region, s, c) = timed(|| builder.finish(&[]));
        // load_s is generation and parsing only, as with `--load records`.
        (
            region,
            load_s - push_s,
            push_s + s,
            push_cpu + c,
            rss_loaded,
        )
    };
    let rss_compiled = rss_mib();
    let region_heap = region.heap_bytes() as f64 / 1048576.0;
    if compile_only {
        println!(
            "{{\"users\":{n},\"matched_users\":{},\"load_s\":{load_s:.2},\"compile_s\":{compile_s:.3},\"compile_cpu_s\":{compile_cpu:.2},\"rss_loaded_mib\":{rss_loaded:.0},\"rss_compiled_mib\":{rss_compiled:.0},\"region_heap_mib\":{:.0},\"peak_rss_mib\":{:.0}}}",
            region.len(),
            region_heap,
            peak_rss_mib()
        );
        return;
    }
    let (cands, cand_s, cand_cpu) = timed(|| {
        candidate_edges(
            &region,
            0..region.len() as u32,
            cfg.candidates_per_user(),
            k,
            &cfg.weights,
        )
    });
    let rss_candidates = rss_mib();
    let peak_candidates = peak_rss_mib();
    let (sel, select_s, select_cpu) =
        timed(|| select(region.len(), &cands.edges, &cfg.selection_config()));
    let peak_select = peak_rss_mib();
    let greedy_cfg = SelectionConfig {
        method: SelectionMethod::Greedy,
        coverage_bonus: 0.0,
        ..cfg.selection_config()
    };
    let (greedy, greedy_s, greedy_cpu) = timed(|| select(region.len(), &cands.edges, &greedy_cfg));
    let peak_greedy = peak_rss_mib();
    let total = |pairs: &[Edge]| pairs.iter().map(|e| f64::from(e.score)).sum::<f64>() / 1e6;
    let covered = |pairs: &[Edge]| users_on(region.len(), pairs);
    let with_partner = covered(&cands.edges);
    // As in match_compiled: the edges are freed before the suggestions are built.
    let (pairs_scanned, feasible_directed, n_edges, best_k_half_sum) = (
        cands.pairs_scanned,
        cands.feasible_directed,
        cands.edges.len(),
        cands.best_k_half_sum,
    );
    drop(cands);
    let (sugg, reasons_s, reasons_cpu) = timed(|| suggestions(&region, &sel.pairs));
    let peak_reasons = peak_rss_mib();
    let n_suggestions = sugg.len();
    drop(sugg);
    let wall_rate = pairs_scanned as f64 / cand_s / threads as f64;
    let cpu_rate = pairs_scanned as f64 / cand_cpu;
    println!(
        "{{\"users\":{n},\"matched_users\":{},\"k\":{k},\"threads\":{threads},\"load_s\":{load_s:.2},\
\"compile_s\":{compile_s:.3},\"compile_cpu_s\":{compile_cpu:.2},\"candidates_s\":{cand_s:.3},\"candidates_cpu_s\":{cand_cpu:.2},\
\"select_s\":{select_s:.3},\"select_cpu_s\":{select_cpu:.2},\"reasons_s\":{reasons_s:.3},\"reasons_cpu_s\":{reasons_cpu:.2},\
\"match_total_s\":{:.2},\"pairs_scanned\":{},\"pairs_per_s_per_core_wall\":{wall_rate:.0},\"pairs_per_cpu_s\":{cpu_rate:.0},\
\"feasible_pairs\":{},\"candidate_edges\":{},\"selected\":{},\"suggestions\":{},\"users_with_partner\":{with_partner},\
\"covered\":{},\"total_score\":{:.1},\"upper_bound\":{:.1},\"candidate_bound\":{:.1},\"score_vs_candidate_bound\":{:.4},\
\"bids\":{},\"fell_back\":{},\"greedy_score\":{:.1},\"greedy_vs_auction\":{:.4},\"greedy_covered\":{},\"greedy_select_s\":{greedy_s:.3},\
\"greedy_select_cpu_s\":{greedy_cpu:.2},\"rss_loaded_mib\":{rss_loaded:.0},\"rss_compiled_mib\":{rss_compiled:.0},\"region_heap_mib\":{region_heap:.0},\"rss_candidates_mib\":{rss_candidates:.0},\"peak_after_candidates_mib\":{peak_candidates:.0},\"peak_after_select_mib\":{peak_select:.0},\"peak_after_greedy_mib\":{peak_greedy:.0},\"peak_after_reasons_mib\":{peak_reasons:.0},\"peak_rss_mib\":{:.0}}}",
        region.len(),
        compile_s + cand_s + select_s + reasons_s,
        pairs_scanned,
        feasible_directed / 2,
        n_edges,
        sel.pairs.len(),
        n_suggestions,
        covered(&sel.pairs),
        total(&sel.pairs),
        best_k_half_sum / 1e6,
        sel.candidate_upper_bound / 1e6,
        total(&sel.pairs) / (sel.candidate_upper_bound / 1e6),
        sel.auction_bids,
        sel.fell_back,
        total(&greedy.pairs),
        total(&greedy.pairs) / total(&sel.pairs),
        covered(&greedy.pairs),
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
        let epsilon = arg(&args, "--epsilon").map(|v| v.parse().unwrap());
        let flag = |name: &str| args.iter().any(|a| a == name);
        let records = arg(&args, "--load").is_some_and(|v| v == "records");
        single(
            n.parse().unwrap(),
            k,
            seed,
            epsilon,
            flag("--compile-only"),
            records,
        );
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
