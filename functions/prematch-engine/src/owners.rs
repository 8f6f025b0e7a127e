//! Candidate lists built per owner, so a large region can be scored in shards that each store only
//! their own users' lists.
//!
//! [`crate::candidate_edges`] visits each unordered pair once and offers it to both users' lists,
//! which is the cheapest scan for one job but means every shard of a split region would produce a
//! list for every user of the region (n × C edges per shard). [`owner_candidates`] instead scans
//! every partner of each owner in its range and keeps only the owner's own best C: each pair is
//! scanned twice across the shards, and the shards' edges together are n × C, deduplicated by
//! [`CandidateSet::merge`] into exactly the candidate graph of the unsplit region.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Range;

use rayon::prelude::*;

use crate::candidates::{scan, CandidateSet, Edge};
use crate::compile::CompiledRegion;
use crate::score::Weights;

/// The best `per_user` partners of every owner in `owners` (user indices of `region`), as edges
/// `a < b`; merged over shards that cover `0..n` the edges equal those of
/// `candidate_edges(region, 0..n, ..)` (same scores, same tie order), and `best_k_half_sum` and
/// `feasible_directed` add up to that call's. `pairs_scanned` counts both directions.
pub fn owner_candidates(
    region: &CompiledRegion,
    owners: Range<u32>,
    per_user: usize,
    k: usize,
    weights: &Weights,
) -> CandidateSet {
    let weights = weights.normalised();
    let c = per_user.max(k).max(1);
    let end = owners.end.min(region.len() as u32);
    let start = owners.start.min(end);
    const CHUNK: u32 = 256;
    let chunks: Vec<u32> = (start..end).step_by(CHUNK as usize).collect();
    let layout = scan::Layout::new(region);
    let parts: Vec<CandidateSet> = chunks
        .par_iter()
        .map(|&c0| {
            let mut part = CandidateSet::default();
            // Min-heaps of (score << 32 | !partner), one per seeker of a tile: higher score
            // first, then lower index, as in candidate_edges, so ties resolve the same way.
            let mut heaps: Vec<BinaryHeap<Reverse<u64>>> = (0..scan::TILE)
                .map(|_| BinaryHeap::with_capacity(c + 1))
                .collect();
            let mut best: Vec<u64> = Vec::with_capacity(c);
            let rows = c0 as usize..(c0 + CHUNK).min(end) as usize;
            scan::tiles(region, rows, |tile| {
                let first = tile.start as u32;
                for heap in heaps.iter_mut() {
                    heap.clear();
                }
                let mut feasible = 0u64;
                part.pairs_scanned += scan::scan_tile::<true>(
                    region,
                    &layout,
                    tile.clone(),
                    &weights,
                    &mut |a, bs, scores| {
                        feasible += bs.len() as u64;
                        let heap = &mut heaps[(a - first) as usize];
                        for (&b, &s) in bs.iter().zip(scores) {
                            let key = (u64::from(s) << 32) | u64::from(u32::MAX - b);
                            if heap.len() < c {
                                heap.push(Reverse(key));
                            } else if heap.peek().is_some_and(|Reverse(floor)| key > *floor) {
                                heap.pop();
                                heap.push(Reverse(key));
                            }
                        }
                    },
                );
                part.feasible_directed += feasible;
                for (a, heap) in tile.zip(heaps.iter_mut()) {
                    let a = a as u32;
                    best.clear();
                    best.extend(heap.drain().map(|Reverse(key)| key));
                    best.sort_unstable_by(|x, y| y.cmp(x));
                    part.best_k_half_sum += best
                        .iter()
                        .take(k)
                        .map(|&key| f64::from((key >> 32) as u32))
                        .sum::<f64>()
                        / 2.0;
                    for &key in &best {
                        let b = u32::MAX - key as u32;
                        let (x, y) = if a < b { (a, b) } else { (b, a) };
                        part.edges.push(Edge {
                            a: x,
                            b: y,
                            score: (key >> 32) as u32,
                        });
                    }
                }
            });
            part
        })
        .collect();
    CandidateSet::merge(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::generated_users;
    use crate::{candidate_edges, compile, HistoryPair, MatchConfig, NaiveDate};

    #[test]
    fn owner_shards_merged_give_exactly_the_unsplit_candidate_graph() {
        // GIVEN a generated region with blocks, and history excluding some of its pairs
        let run_date = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
        for seed in [7, 11] {
            let users = generated_users(1_500, 1, seed);
            let history: Vec<HistoryPair> = users
                .windows(2)
                .step_by(5)
                .map(|w| HistoryPair {
                    a: w[0].user_id.clone(),
                    b: w[1].user_id.clone(),
                    date: run_date - chrono::Days::new(2),
                })
                .collect();
            let cfg = MatchConfig::default();
            let region = compile(users, &history, run_date, &cfg);
            let n = region.len() as u32;
            let (c, k) = (cfg.candidates_per_user(), cfg.suggestions_per_user);
            let whole = candidate_edges(&region, 0..n, c, k, &cfg.weights);
            // WHEN the owners are split into uneven shards and the shards merged
            let cuts = [0, 1, n / 7, n / 2, n / 2 + 3, n];
            let parts = cuts
                .windows(2)
                .map(|w| owner_candidates(&region, w[0]..w[1], c, k, &cfg.weights))
                .collect();
            let merged = CandidateSet::merge(parts);
            // THEN the edges, scores and bounds are those of the unsplit scan
            assert!(whole.edges.len() > n as usize, "a dense enough region");
            assert_eq!(merged.edges, whole.edges, "seed {seed}");
            assert_eq!(merged.feasible_directed, whole.feasible_directed);
            assert!((merged.best_k_half_sum - whole.best_k_half_sum).abs() < 1e-6);
        }
    }

    #[test]
    fn an_empty_or_out_of_range_shard_has_no_edges() {
        let users = generated_users(200, 1, 3);
        let cfg = MatchConfig::default();
        let region = compile(
            users,
            &[],
            NaiveDate::from_ymd_opt(2026, 12, 3).unwrap(),
            &cfg,
        );
        let n = region.len() as u32;
        assert!(owner_candidates(&region, 5..5, 30, 3, &cfg.weights)
            .edges
            .is_empty());
        assert!(owner_candidates(&region, n..n + 10, 30, 3, &cfg.weights)
            .edges
            .is_empty());
    }
}
