//! Exactness of the matching engine against exact optima (networkx for K = 1, HiGHS for K = 3),
//! an independent re-check of the hard rules from the input records, and the exposure report.
//!
//! The oracles run in the test virtualenv: `$PREMATCH_VENV` or `<repo>/.venv`, with networkx and
//! highspy installed from `tests/requirements.txt`.

// Test helpers fail loudly by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use prematch_engine::{
    compile, feasible_graph, gini, independent_top_k_exposure, match_region, parse_user,
    MatchConfig, NaiveDate, RegionOutcome, SelectionMethod, User, SCORE_SCALE,
};
use serde_json::Value;

fn run_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 3).expect("date")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The virtualenv's python, or a panic that says how to get one.
fn python() -> PathBuf {
    let venv = std::env::var_os("PREMATCH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv"));
    let python = venv.join("bin").join("python");
    assert!(
        python.exists(),
        "the engine exactness tests need the test virtualenv at {} (set PREMATCH_VENV, or create it \
         with `python3 -m venv .venv && .venv/bin/pip install -r tests/requirements.txt`)",
        venv.display()
    );
    python
}

fn oracle(args: &[&str]) -> Value {
    let script = repo().join("tests/python/engine_oracle.py");
    let out = Command::new(python())
        .arg(&script)
        .args(args)
        .output()
        .expect("run the python oracle");
    assert!(
        out.status.success(),
        "oracle {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("oracle prints JSON")
}

/// One generated region: its raw records (as lines) and the users that parse.
fn region(users: usize, seed: u64) -> (Vec<String>, Vec<User>) {
    let cfg = prematch_gen::GenConfig {
        users,
        regions: 1,
        seed,
        malformed_per_mille: 0,
    };
    let mut lines = Vec::new();
    let mut parsed = Vec::new();
    for line in prematch_gen::generate(&cfg) {
        if let Some(v) = &line.value {
            if let Ok(u) = parse_user(v) {
                parsed.push(u);
            }
        }
        lines.push(line.text);
    }
    (lines, parsed)
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("prematch-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
    fn write(&self, name: &str, lines: impl IntoIterator<Item = String>) -> String {
        let path = self.0.join(name);
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        for line in lines {
            writeln!(f, "{line}").expect("write");
        }
        f.flush().expect("flush");
        path.display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The full feasible graph of a region (no pruning), as `--graph` lines.
fn graph_lines(users: &[User], cfg: &MatchConfig) -> Vec<String> {
    let compiled = compile(users.to_vec(), &[], run_date(), cfg);
    feasible_graph(&compiled, &cfg.weights)
        .into_iter()
        .map(|e| {
            serde_json::json!({
                "a": compiled.user(e.a).user_id,
                "b": compiled.user(e.b).user_id,
                "score": f64::from(e.score) / f64::from(SCORE_SCALE),
            })
            .to_string()
        })
        .collect()
}

fn suggestion_lines(out: &RegionOutcome) -> Vec<String> {
    out.suggestions
        .iter()
        .map(|s| serde_json::to_string(s).expect("serialise"))
        .collect()
}

/// Re-checks every selected pair against the records with the Python rules (zoneinfo etc.).
fn assert_rules_hold(scratch: &Scratch, lines: &[String], out: &RegionOutcome, k: usize) {
    let users = scratch.write("users.jsonl", lines.iter().cloned());
    let sugg = scratch.write("suggestions.jsonl", suggestion_lines(out));
    let check = oracle(&[
        "check-rules",
        "--users",
        &users,
        "--suggestions",
        &sugg,
        "--run-date",
        "2026-12-03",
        "--k",
        &k.to_string(),
    ]);
    assert_eq!(
        check["checked"].as_u64(),
        Some(out.suggestions.len() as u64)
    );
    assert_eq!(check["violations"], serde_json::json!({}), "{check}");
    assert_eq!(check["over_k"].as_u64(), Some(0), "{check}");
}

fn total(out: &RegionOutcome) -> f64 {
    out.suggestions.iter().map(|s| s.score).sum()
}

#[test]
fn k1_selection_reaches_99_percent_of_the_networkx_optimum_in_pairs_and_score() {
    // Sizes of 500-3,000 users; PREMATCH_EXACTNESS_SIZES overrides (networkx is slow past 2,000).
    let sizes: Vec<usize> = std::env::var("PREMATCH_EXACTNESS_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![500, 1000]);
    for (i, n) in sizes.into_iter().enumerate() {
        // GIVEN a generated region and its full feasible graph
        let (lines, users) = region(n, 100 + i as u64);
        let cfg = MatchConfig {
            suggestions_per_user: 1,
            ..MatchConfig::default()
        };
        let scratch = Scratch::new(&format!("k1-{n}"));
        let graph = scratch.write("graph.jsonl", graph_lines(&users, &cfg));
        // WHEN we select with K = 1 (production path, pruned candidates) and networkx finds the
        // maximum-cardinality, then maximum-weight matching on the unpruned graph
        let ours = match_region(users, &[], run_date(), &cfg);
        let exact = oracle(&["networkx", "--graph", &graph]);
        // THEN we select at least 99% as many pairs, with at least 99% of its total score
        let (pairs, score) = (
            exact["pairs"].as_f64().expect("pairs"),
            exact["total"].as_f64().expect("total"),
        );
        println!(
            "K=1 n={n}: ours {} pairs, score {:.3} ({:.2}% of pairs, {:.2}% of score); networkx {pairs} pairs, score {score:.3} in {}s",
            ours.suggestions.len(),
            total(&ours),
            100.0 * ours.suggestions.len() as f64 / pairs,
            100.0 * total(&ours) / score,
            exact["seconds"]
        );
        assert!(pairs > 0.0, "the region has feasible pairs");
        assert!(
            ours.suggestions.len() as f64 >= 0.99 * pairs,
            "pairs {} vs {pairs}",
            ours.suggestions.len()
        );
        assert!(
            total(&ours) >= 0.99 * score,
            "score {} vs {score}",
            total(&ours)
        );
        // AND every selected pair passes every hard rule, re-checked from the records
        assert_rules_hold(&scratch, &lines, &ours, 1);
    }
}

#[test]
fn k3_selection_reaches_99_5_percent_of_the_exact_highs_b_matching() {
    for (i, n) in [800usize, 2000].into_iter().enumerate() {
        // GIVEN a generated region and its full feasible graph
        let (lines, users) = region(n, 200 + i as u64);
        let cfg = MatchConfig::default();
        let scratch = Scratch::new(&format!("k3-{n}"));
        let graph = scratch.write("graph.jsonl", graph_lines(&users, &cfg));
        // WHEN we select with K = 3 and HiGHS solves the b-matching integer program exactly
        let ours = match_region(users.clone(), &[], run_date(), &cfg);
        let greedy = match_region(
            users,
            &[],
            run_date(),
            &MatchConfig {
                selection: SelectionMethod::Greedy,
                coverage_bonus: 0.0,
                ..MatchConfig::default()
            },
        );
        let exact = oracle(&["highs", "--graph", &graph, "--k", "3"]);
        let score = exact["total"].as_f64().expect("total");
        println!(
            "K=3 n={n}: auction {:.3} ({:.2}%), greedy {:.3} ({:.2}%), HiGHS {score:.3} in {}s ({})",
            total(&ours),
            100.0 * total(&ours) / score,
            total(&greedy),
            100.0 * total(&greedy) / score,
            exact["seconds"],
            exact["status"]
        );
        assert_eq!(exact["status"].as_str(), Some("Optimal"));
        // THEN the auction reaches 99.5% of the optimum, and the bound we report is above it
        assert!(total(&ours) >= 0.995 * score, "{} vs {score}", total(&ours));
        assert!(ours.stats.upper_bound + 1e-6 >= score);
        assert_rules_hold(&scratch, &lines, &ours, 3);
    }
}

#[test]
fn b_matching_spreads_exposure_where_independent_top_k_lists_concentrate_it() {
    // GIVEN a generated region
    let (_, users) = region(4000, 300);
    let cfg = MatchConfig::default();
    let k = cfg.suggestions_per_user;
    let compiled = compile(users.clone(), &[], run_date(), &cfg);
    let graph = feasible_graph(&compiled, &cfg.weights);
    // WHEN we match it, and when every user instead gets their own K best (no capacities)
    let out = match_region(users, &[], run_date(), &cfg);
    let index: std::collections::HashMap<&str, usize> = compiled
        .users()
        .iter()
        .enumerate()
        .map(|(i, u)| (u.user_id.as_str(), i))
        .collect();
    let mut ours = vec![0u32; compiled.len()];
    for s in &out.suggestions {
        ours[index[s.a.as_str()]] += 1;
        ours[index[s.b.as_str()]] += 1;
    }
    let naive = independent_top_k_exposure(compiled.len(), &graph, k);
    let with_partner = out.stats.users_with_feasible_partner as f64;
    let left_out = (with_partner - out.stats.users_covered as f64) / with_partner;
    let never_shown = naive.iter().filter(|&&x| x == 0).count() as f64 / compiled.len() as f64;
    println!(
        "exposure n={}: b-matching max {} Gini {:.3}, {:.2}% of users with a feasible partner get none; \
         independent top-{k}: max {} Gini {:.3}, {:.1}% never shown",
        compiled.len(),
        ours.iter().max().copied().unwrap_or(0),
        gini(&ours),
        100.0 * left_out,
        naive.iter().max().copied().unwrap_or(0),
        gini(&naive),
        100.0 * never_shown
    );
    // THEN nobody is shown more than K times, almost everyone who can be matched is, and exposure is
    // far more even than with independent lists
    assert!(ours.iter().all(|&x| x as usize <= k));
    assert!(left_out < 0.01, "{left_out}");
    assert!(
        gini(&ours) < gini(&naive) / 2.0,
        "{} vs {}",
        gini(&ours),
        gini(&naive)
    );
    assert!(naive.iter().max().copied().unwrap_or(0) as usize > 3 * k);
}

#[test]
fn every_generated_defect_is_rejected_under_its_own_code() {
    // GIVEN generated records with a high share of defects
    let cfg = prematch_gen::GenConfig {
        users: 3000,
        regions: 3,
        seed: 9,
        malformed_per_mille: 300,
    };
    let mut seen = std::collections::BTreeSet::new();
    for line in prematch_gen::generate(&cfg) {
        // WHEN the engine parses each line
        let result = serde_json::from_str::<Value>(&line.text)
            .map_err(|e| prematch_engine::Rejection::not_json(e.to_string()))
            .and_then(|v| parse_user(&v));
        // THEN well-formed records parse and each defect is rejected with the kind's code
        match (line.malformed, result) {
            (None, Ok(_)) => {}
            (None, Err(r)) => panic!("well-formed record rejected: {r}"),
            (Some(kind), Ok(u)) => panic!("{kind} record {} accepted", u.user_id),
            (Some(kind), Err(r)) => {
                assert_eq!(r.code(), kind, "{r}");
                seen.insert(kind);
            }
        }
    }
    assert_eq!(seen.len(), prematch_gen::MALFORMED_KINDS.len(), "{seen:?}");
}
