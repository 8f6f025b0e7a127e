//! Candidate generation: blocked, pruned, bit-parallel scoring of the pairs that can pass.
//!
//! For a user `a` only the compatible blocking groups are visited (same region, mutual gender
//! acceptance), and in each only the age window `[a.age_min, a.age_max]` (groups are age-sorted).
//! The kernel then tests the other side's age range, a shared language and the overlap with
//! AND + popcount on the 64-byte profiles; only pairs that pass are scored. Each user keeps its
//! best `C` partners; the candidate graph is the union of those lists (an edge is kept when it is in
//! the top-C of *either* side), so unpopular users keep their edges to popular ones.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Range;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::compile::{CompiledRegion, Profile};
use crate::score::{self, Weights};

/// An undirected scored pair of user indices, `a < b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Edge {
    /// Smaller user index.
    pub a: u32,
    /// Larger user index.
    pub b: u32,
    /// Fixed-point mutual score ([`crate::SCORE_SCALE`] is 1.0).
    pub score: u32,
}

/// The candidate edges found for a shard of users, with the counters of the scan.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CandidateSet {
    /// Union of the shard users' top-C lists, sorted by (a, b), unique.
    pub edges: Vec<Edge>,
    /// Ordered pairs that reached the bit-level kernel (after blocking by group and age window).
    pub pairs_scanned: u64,
    /// Ordered feasible pairs seen from the shard's users.
    pub feasible_directed: u64,
    /// Σ over the shard's users of their best K scores, halved: with the other shards, an upper
    /// bound on any selection's total over all feasible pairs.
    pub best_k_half_sum: f64,
}

impl CandidateSet {
    /// Merges shard results into one candidate set (edges from both sides of a shard boundary are
    /// deduplicated).
    pub fn merge(parts: Vec<CandidateSet>) -> CandidateSet {
        let mut out = CandidateSet::default();
        for p in parts {
            out.edges.extend(p.edges);
            out.pairs_scanned += p.pairs_scanned;
            out.feasible_directed += p.feasible_directed;
            out.best_k_half_sum += p.best_k_half_sum;
        }
        out.edges.par_sort_unstable();
        out.edges.dedup_by_key(|e| (e.a, e.b));
        out
    }
}

/// The bit-level filter: the other side's age range, a shared language word, enough overlap.
/// Branch-free so unpredictable outcomes cost nothing; returns the overlap or 0.
#[inline(always)]
fn kernel(pa: &Profile, pb: &Profile, min_cells: u32, lang_fast: bool) -> (bool, u32) {
    let mut ov = 0u32;
    for w in 0..pa.avail.len() {
        ov += (pa.avail[w] & pb.avail[w]).count_ones();
    }
    let age_ok = (pb.age_min <= pa.age) & (pa.age <= pb.age_max);
    let lang_ok = !lang_fast | ((pa.lang & pb.lang) != 0);
    (age_ok & lang_ok & (ov >= min_cells), ov)
}

/// Visits every feasible partner of user `a`, calling `sink(b, score)`; returns pairs scanned.
pub(crate) fn scan_user(
    region: &CompiledRegion,
    a: usize,
    weights: &Weights,
    mut sink: impl FnMut(u32, u32),
) -> u64 {
    let pa = region.profiles[a];
    let lang_fast = region.lang_words == 1;
    let min_cells = region.min_overlap_cells;
    let mut scanned = 0u64;
    let group = &region.groups[region.group_of[a] as usize];
    for &h in &group.compatible {
        let g = &region.groups[h as usize];
        let members = &region.profiles[g.start as usize..g.end as usize];
        let lo = members.partition_point(|p| p.age < pa.age_min);
        let hi = members.partition_point(|p| p.age <= pa.age_max);
        if lo >= hi {
            continue;
        }
        scanned += (hi - lo) as u64;
        for (off, pb) in members[lo..hi].iter().enumerate() {
            let b = g.start as usize + lo + off;
            let (pass, ov) = kernel(&pa, pb, min_cells, lang_fast);
            if !pass || b == a {
                continue;
            }
            if !lang_fast
                && !region
                    .langs_of(a)
                    .iter()
                    .zip(region.langs_of(b))
                    .any(|(x, y)| x & y != 0)
            {
                continue;
            }
            if !score::passes_slow_rules(region, a, b) {
                continue;
            }
            sink(b as u32, score::mutual(region, a, b, ov, weights));
        }
    }
    scanned
}

/// Candidate edges for the users `shard` (user indices) against the whole region: each shard user's
/// best `per_user` feasible partners (ties by lower index), plus the scan counters. Exclusions
/// (blocks, recent history) are applied inside the scan, before the truncation.
pub fn candidate_edges(
    region: &CompiledRegion,
    shard: Range<u32>,
    per_user: usize,
    k: usize,
    weights: &Weights,
) -> CandidateSet {
    let weights = weights.normalised();
    let per_user = per_user.max(k).max(1);
    let end = shard.end.min(region.len() as u32);
    let start = shard.start.min(end);
    const CHUNK: u32 = 256;
    let chunks: Vec<u32> = (start..end).step_by(CHUNK as usize).collect();
    let parts: Vec<(Vec<Edge>, u64, u64, f64)> = chunks
        .into_par_iter()
        .map(|c0| {
            let mut edges = Vec::new();
            let (mut scanned, mut feasible, mut best) = (0u64, 0u64, 0f64);
            let mut heap: BinaryHeap<Reverse<u64>> = BinaryHeap::with_capacity(per_user + 1);
            let mut top: Vec<u64> = Vec::with_capacity(per_user);
            for a in c0..(c0 + CHUNK).min(end) {
                heap.clear();
                scanned += scan_user(region, a as usize, &weights, |b, s| {
                    feasible += 1;
                    // Higher score first, then lower index: one total order, so ties are stable.
                    let key = (u64::from(s) << 32) | u64::from(u32::MAX - b);
                    if heap.len() < per_user {
                        heap.push(Reverse(key));
                    } else if heap.peek().is_some_and(|m| key > m.0) {
                        heap.pop();
                        heap.push(Reverse(key));
                    }
                });
                top.clear();
                top.extend(heap.drain().map(|r| r.0));
                top.sort_unstable_by(|x, y| y.cmp(x));
                best += top
                    .iter()
                    .take(k)
                    .map(|key| f64::from((key >> 32) as u32))
                    .sum::<f64>()
                    / 2.0;
                for key in &top {
                    let b = u32::MAX - (*key as u32);
                    let s = (key >> 32) as u32;
                    let (x, y) = if a < b { (a, b) } else { (b, a) };
                    edges.push(Edge {
                        a: x,
                        b: y,
                        score: s,
                    });
                }
            }
            (edges, scanned, feasible, best)
        })
        .collect();
    CandidateSet::merge(
        parts
            .into_iter()
            .map(
                |(edges, pairs_scanned, feasible_directed, best_k_half_sum)| CandidateSet {
                    edges,
                    pairs_scanned,
                    feasible_directed,
                    best_k_half_sum,
                },
            )
            .collect(),
    )
}

/// Every feasible pair of the region with its score, no truncation (for quality checks on small
/// inputs: the number of pairs grows with the square of the users).
pub fn feasible_graph(region: &CompiledRegion, weights: &Weights) -> Vec<Edge> {
    let weights = weights.normalised();
    let mut edges: Vec<Edge> = (0..region.len() as u32)
        .into_par_iter()
        .flat_map_iter(|a| {
            let mut own = Vec::new();
            scan_user(region, a as usize, &weights, |b, s| {
                if a < b {
                    own.push(Edge { a, b, score: s });
                }
            });
            own
        })
        .collect();
    edges.par_sort_unstable();
    edges
}
