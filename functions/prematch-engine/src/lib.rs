//! prematch-engine: who is suggested to whom — validated users in, mutual explained suggestions out.
//!
//! Pure: no I/O, no async, no AWS. The phases are public so a big region can be sharded:
//! [`compile`] (or a [`RegionBuilder`] fed page by page) → [`candidate_edges`] for shards of
//! users → [`CandidateSet::merge`] → [`select`] over the union → [`reasons`] for each selected
//! pair. [`match_region`] runs them all; [`match_compiled`] all but the compile.
//! Scoring and selection are explained, with formulas, in the crate's README.

pub mod candidates;
pub mod compile;
pub mod model;
pub mod owners;
pub mod reasons;
pub mod score;
pub mod select;

use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use candidates::{candidate_edges, feasible_graph, CandidateSet, Edge};
pub use chrono::NaiveDate;
pub use compile::{
    compile, compile_compact, week_mask, CompiledRegion, RegionBuilder, WeekMask, CELL_MINUTES,
};
pub use model::{parse_user, Rejection, RejectionKind, Seeking, Slot, User, Weekday};
pub use owners::owner_candidates;
pub use reasons::{reasons, LocalWindow, Reasons, SharedTime};
pub use score::{feasible, score_pair, Weights, SCORE_SCALE};
pub use select::{
    gini, independent_top_k_exposure, select, Selection, SelectionConfig, SelectionMethod,
};

/// Settings of one matching run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchConfig {
    /// K: the most suggestions a user gets in a night.
    pub suggestions_per_user: usize,
    /// A pair suggested on any of this many days before the run date is not suggested again.
    pub history_days: u32,
    /// Minimum overlapping availability, inclusive.
    pub min_overlap_minutes: u32,
    /// Weights of the one-sided score parts.
    pub weights: Weights,
    /// Selection algorithm.
    pub selection: SelectionMethod,
    /// C: best partners kept per user before selection; `None` means max(10·K, 24).
    pub candidates_per_user: Option<usize>,
    /// λ as a fraction of the median candidate score, added to every edge (favours coverage).
    pub coverage_bonus: f64,
    /// Auction ε as a fraction of the largest edge weight.
    pub auction_epsilon: f64,
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig {
            suggestions_per_user: 3,
            history_days: 14,
            min_overlap_minutes: 60,
            weights: Weights::default(),
            selection: SelectionMethod::Auction,
            candidates_per_user: None,
            coverage_bonus: 0.25,
            auction_epsilon: 1e-3,
        }
    }
}

impl MatchConfig {
    /// The effective C.
    pub fn candidates_per_user(&self) -> usize {
        self.candidates_per_user
            .unwrap_or_else(|| (10 * self.suggestions_per_user).max(24))
            .max(self.suggestions_per_user)
            .max(1)
    }

    /// The selection parameters of this configuration.
    pub fn selection_config(&self) -> SelectionConfig {
        SelectionConfig {
            k: self.suggestions_per_user.max(1),
            method: self.selection,
            coverage_bonus: self.coverage_bonus,
            epsilon: self.auction_epsilon,
            ..SelectionConfig::default()
        }
    }
}

/// Two users suggested to each other on a date (one line of a history file).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HistoryPair {
    /// One user id.
    pub a: String,
    /// The other user id.
    pub b: String,
    /// The run date of that suggestion.
    pub date: NaiveDate,
}

/// One mutual suggestion: `a` is suggested to `b` and `b` to `a` (`a < b` by id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    /// The smaller user id.
    pub a: String,
    /// The larger user id.
    pub b: String,
    /// Mutual score in [0, 1] (6 decimals).
    pub score: f64,
    /// Why.
    pub reasons: Reasons,
}

/// Wall time of each phase, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTimes {
    /// Validation aside: compiling users (masks, dictionaries, blocking groups, exclusions).
    pub compile_ms: f64,
    /// Candidate generation and scoring.
    pub candidates_ms: f64,
    /// Selection (auction or greedy, rounding, coverage repair, bounds).
    pub select_ms: f64,
    /// Building the suggestions with their reasons.
    pub reasons_ms: f64,
}

/// What happened in a region: sizes, quality and time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MatchStats {
    /// Users given to the engine.
    pub users: usize,
    /// Of those, inactive (not matched).
    pub inactive: usize,
    /// Of those, dropped as a repeated `user_id`.
    pub duplicates: usize,
    /// Active unique users matched.
    pub matched_users: usize,
    /// Ordered pairs that reached the bit-level kernel after blocking.
    pub pairs_scanned: u64,
    /// Unordered pairs that pass every hard rule.
    pub feasible_pairs: u64,
    /// Edges of the candidate graph (union of each user's top C).
    pub candidate_edges: usize,
    /// Suggestions (pairs) selected.
    pub selected_pairs: usize,
    /// Users with at least one feasible partner.
    pub users_with_feasible_partner: usize,
    /// Users with at least one suggestion.
    pub users_covered: usize,
    /// Σ selected scores.
    pub total_score: f64,
    /// Upper bound on the total over all feasible pairs: Σ_u (best K scores of u) / 2.
    pub upper_bound: f64,
    /// Upper bound over the candidate graph (LP dual from the auction's prices, or best-K halves).
    pub candidate_upper_bound: f64,
    /// The selection method that produced the result.
    pub selection: SelectionMethod,
    /// Whether the auction fell back to greedy.
    pub fell_back: bool,
    /// Bids the auction made.
    pub auction_bids: u64,
    /// Users covered by the repair step.
    pub repaired: usize,
    /// Time per phase.
    pub times: PhaseTimes,
}

/// The result of matching one region.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegionOutcome {
    /// Selected suggestions, sorted by (a, b).
    pub suggestions: Vec<Suggestion>,
    /// Counters and timings.
    pub stats: MatchStats,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Matches the users of a region as a whole: at most K mutual suggestions each, every one passing
/// the hard rules of DESIGN §3.1, total score near the optimum, coverage favoured. Users of other
/// regions in `users` never pair across regions. Same input (in any order), same output.
pub fn match_region(
    users: Vec<User>,
    history: &[HistoryPair],
    run_date: NaiveDate,
    cfg: &MatchConfig,
) -> RegionOutcome {
    let t = Instant::now();
    // The records are not needed after compiling (the ids and names stay in compact columns).
    let region = compile_compact(users, history, run_date, cfg);
    let compile_ms = ms(t);
    let mut outcome = match_compiled(&region, cfg);
    outcome.stats.times.compile_ms = compile_ms;
    outcome
}

/// [`match_region`] on a region already compiled, e.g. by a [`RegionBuilder`] fed page by page
/// (so the parsed records of the whole region never exist at once). `times.compile_ms` is 0:
/// the caller knows how long its compile took.
pub fn match_compiled(region: &CompiledRegion, cfg: &MatchConfig) -> RegionOutcome {
    let compile_ms = 0.0;
    let t = Instant::now();
    let k = cfg.suggestions_per_user.max(1);
    let cands = candidate_edges(
        region,
        0..region.len() as u32,
        cfg.candidates_per_user(),
        k,
        &cfg.weights,
    );
    let candidates_ms = ms(t);

    let t = Instant::now();
    let selection = select(region.len(), &cands.edges, &cfg.selection_config());
    let select_ms = ms(t);

    // The candidate edges are not needed for the reasons: count from them and free them first
    // (about 340 MB at a million users, while the suggestions' strings are being built).
    let with_partner = users_on(region.len(), &cands.edges);
    let covered = users_on(region.len(), &selection.pairs);
    let (pairs_scanned, feasible_directed, candidate_edges, best_k_half_sum) = (
        cands.pairs_scanned,
        cands.feasible_directed,
        cands.edges.len(),
        cands.best_k_half_sum,
    );
    drop(cands);

    let t = Instant::now();
    let suggestions = suggestions(region, &selection.pairs);
    let reasons_ms = ms(t);

    let stats = MatchStats {
        users: region.input_users,
        inactive: region.inactive,
        duplicates: region.duplicates,
        matched_users: region.len(),
        pairs_scanned,
        feasible_pairs: feasible_directed / 2,
        candidate_edges,
        selected_pairs: selection.pairs.len(),
        users_with_feasible_partner: with_partner,
        users_covered: covered,
        total_score: selection
            .pairs
            .iter()
            .map(|e| f64::from(e.score))
            .sum::<f64>()
            / f64::from(SCORE_SCALE),
        upper_bound: best_k_half_sum / f64::from(SCORE_SCALE),
        candidate_upper_bound: selection.candidate_upper_bound / f64::from(SCORE_SCALE),
        selection: selection.method_used,
        fell_back: selection.fell_back,
        auction_bids: selection.auction_bids,
        repaired: selection.repaired,
        times: PhaseTimes {
            compile_ms,
            candidates_ms,
            select_ms,
            reasons_ms,
        },
    };
    RegionOutcome { suggestions, stats }
}

/// How many distinct users the edges touch (a flag per user: at a million users and 25 million
/// edges a hash set of them cost about a second).
/// How many of the users `0..n` are an end of at least one of `edges` (a flag per user: fast on
/// the 25 M candidate edges of a million-user region). What `MatchStats` reports as users with a
/// feasible partner (on the candidate edges) and users covered (on the selected pairs).
pub fn users_on(n: usize, edges: &[Edge]) -> usize {
    let mut seen = vec![false; n];
    for e in edges {
        for u in [e.a, e.b] {
            if let Some(s) = seen.get_mut(u as usize) {
                *s = true;
            }
        }
    }
    seen.iter().filter(|&&s| s).count()
}

/// The suggestions (ids, score, reasons) of selected edges, sorted by (a, b) ids.
pub fn suggestions(region: &CompiledRegion, pairs: &[Edge]) -> Vec<Suggestion> {
    let mut out: Vec<Suggestion> = pairs
        .iter()
        .map(|e| {
            let (x, y) = if region.user_id(e.a) <= region.user_id(e.b) {
                (e.a, e.b)
            } else {
                (e.b, e.a)
            };
            Suggestion {
                a: region.user_id(x).to_string(),
                b: region.user_id(y).to_string(),
                score: f64::from(e.score) / f64::from(SCORE_SCALE),
                reasons: reasons(region, x, y),
            }
        })
        .collect();
    out.sort_by(|p, q| (&p.a, &p.b).cmp(&(&q.a, &q.b)));
    out
}

#[cfg(test)]
mod tests;
