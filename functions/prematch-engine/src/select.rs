//! Selection: a weighted b-matching on the candidate graph (each user at most K mutual suggestions).
//!
//! The main method is a forward ε-auction (Bertsekas) on the bipartite double cover of the graph,
//! rounded (full edges, then half edges, then a greedy fill) and followed by a coverage repair.
//! Greedy by score is the fallback (and the baseline). Weights carry a per-edge coverage bonus λ so
//! that filling more slots is worth a little score. See the crate README for the formulas.

use std::collections::VecDeque;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::candidates::Edge;

/// Which selection algorithm to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SelectionMethod {
    /// ε-auction on the double cover, rounded; falls back to greedy past its bid budget.
    #[default]
    Auction,
    /// Greedy by score (a 1/2-approximation; about 94% of the optimum on realistic data).
    Greedy,
}

/// Parameters of [`select`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SelectionConfig {
    /// Capacity K of every user.
    pub k: usize,
    /// Algorithm.
    pub method: SelectionMethod,
    /// λ as a fraction of the median candidate score, added to every edge's weight.
    pub coverage_bonus: f64,
    /// ε as a fraction of the largest weight.
    pub epsilon: f64,
    /// The auction gives up (and greedy runs) after `bid_budget × arcs + users` bids.
    pub bid_budget: u64,
}

impl Default for SelectionConfig {
    fn default() -> Self {
        SelectionConfig {
            k: 3,
            method: SelectionMethod::Auction,
            coverage_bonus: 0.25,
            epsilon: 1e-3,
            bid_budget: 50,
        }
    }
}

/// The selected pairs and how they were found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Selection {
    /// Selected edges, sorted by (a, b).
    pub pairs: Vec<Edge>,
    /// The method that produced `pairs` (greedy when the auction fell back).
    pub method_used: SelectionMethod,
    /// Bids the auction made (0 for greedy).
    pub auction_bids: u64,
    /// Whether the auction hit its bid budget and greedy was used instead.
    pub fell_back: bool,
    /// Upper bound on the total score of any b-matching of the candidate graph
    /// (min of the LP dual bound from the auction's prices and Σ best-K halves).
    pub candidate_upper_bound: f64,
    /// Users given a first suggestion by the coverage repair.
    pub repaired: usize,
}

/// Compressed adjacency of the candidate graph: for each user, (neighbour, edge index). The
/// auction reads `values` (the arc weights, in arc order) alongside, so a bid scans memory in order.
struct Adjacency {
    offsets: Vec<u32>,
    arcs: Vec<(u32, u32)>,
}

impl Adjacency {
    /// Orders every user's arcs by value, best first (ties by edge index), so a bidder can stop
    /// scanning once no remaining arc can beat its current choices (prices are never negative).
    fn sort_by_value(&mut self, value: &[i64]) {
        let offsets = &self.offsets;
        let mut rest: &mut [(u32, u32)] = &mut self.arcs;
        let mut segments = Vec::with_capacity(offsets.len().saturating_sub(1));
        for w in offsets.windows(2) {
            let (seg, tail) = rest.split_at_mut((w[1] - w[0]) as usize);
            segments.push(seg);
            rest = tail;
        }
        segments.into_par_iter().for_each(|seg| {
            seg.sort_unstable_by(|x, y| {
                value[y.1 as usize]
                    .cmp(&value[x.1 as usize])
                    .then(x.1.cmp(&y.1))
            });
        });
    }
}

impl Adjacency {
    fn new(n: usize, edges: &[Edge]) -> Adjacency {
        let mut offsets = vec![0u32; n + 1];
        for e in edges {
            offsets[e.a as usize + 1] += 1;
            offsets[e.b as usize + 1] += 1;
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        let mut fill = offsets.clone();
        let mut arcs = vec![(0u32, 0u32); edges.len() * 2];
        for (idx, e) in edges.iter().enumerate() {
            arcs[fill[e.a as usize] as usize] = (e.b, idx as u32);
            fill[e.a as usize] += 1;
            arcs[fill[e.b as usize] as usize] = (e.a, idx as u32);
            fill[e.b as usize] += 1;
        }
        Adjacency { offsets, arcs }
    }
    fn of(&self, i: usize) -> &[(u32, u32)] {
        &self.arcs[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }
}

const NONE: u32 = u32::MAX;

/// Selects at most `cfg.k` mutual suggestions per user among `edges` (user indices `< n`, each pair
/// once), maximising Σ (score + λ) approximately, then repairing coverage: a user with a candidate
/// edge but no suggestion gets one when an augmenting move of length 1 or 3 allows it.
/// Deterministic: the same edges give the same selection.
pub fn select(n: usize, edges: &[Edge], cfg: &SelectionConfig) -> Selection {
    let k = cfg.k.max(1);
    let mut adj = Adjacency::new(n, edges);
    let lambda = coverage_lambda(edges, cfg.coverage_bonus);
    let value: Vec<i64> = edges.iter().map(|e| i64::from(e.score) + lambda).collect();
    let mut result = match cfg.method {
        SelectionMethod::Greedy => None,
        SelectionMethod::Auction => {
            adj.sort_by_value(&value);
            auction(n, edges, &adj, &value, k, cfg)
        }
    };
    let fell_back = cfg.method == SelectionMethod::Auction && result.is_none();
    let (mut chosen, bids, prices) = match result.take() {
        Some((chosen, bids, prices)) => (chosen, bids, Some(prices)),
        None => (greedy(n, edges, &value, k, None), 0, None),
    };
    let repaired = repair_coverage(n, edges, &adj, &value, k, &mut chosen);
    let mut pairs: Vec<Edge> = chosen
        .iter()
        .enumerate()
        .filter(|(_, &c)| c)
        .map(|(i, _)| edges[i])
        .collect();
    pairs.sort_unstable();
    let zero = vec![0i64; n];
    let mut bound = dual_bound(n, edges, &adj, &zero, k);
    if let Some(p) = &prices {
        bound = bound.min(dual_bound(n, edges, &adj, p, k));
    }
    Selection {
        pairs,
        method_used: if prices.is_some() {
            SelectionMethod::Auction
        } else {
            SelectionMethod::Greedy
        },
        auction_bids: bids,
        fell_back,
        candidate_upper_bound: bound,
        repaired,
    }
}

/// λ = bonus × median score (integer, ≥ 0).
fn coverage_lambda(edges: &[Edge], bonus: f64) -> i64 {
    if edges.is_empty() || !(bonus.is_finite() && bonus > 0.0) {
        return 0;
    }
    let mut scores: Vec<u32> = edges.iter().map(|e| e.score).collect();
    let mid = scores.len() / 2;
    let (_, median, _) = scores.select_nth_unstable(mid);
    (f64::from(*median) * bonus).round() as i64
}

/// Weak LP duality for the double-cover LP: for prices p ≥ 0 on the right copies,
/// 2·OPT ≤ K·Σ p + Σ_i (sum of the K largest (w_ij − p_j)⁺), with raw scores w (no λ).
fn dual_bound(n: usize, edges: &[Edge], adj: &Adjacency, price: &[i64], k: usize) -> f64 {
    let person_part: f64 =
        (0..n)
            .into_par_iter()
            .map_init(Vec::new, |buf: &mut Vec<i64>, i| {
                buf.clear();
                buf.extend(adj.of(i).iter().map(|&(j, e)| {
                    (i64::from(edges[e as usize].score) - price[j as usize]).max(0)
                }));
                let take = k.min(buf.len());
                if take == 0 {
                    return 0.0;
                }
                if take < buf.len() {
                    buf.select_nth_unstable_by(take - 1, |x, y| y.cmp(x));
                }
                buf[..take].iter().sum::<i64>() as f64
            })
            .sum();
    let price_part: f64 = price.iter().map(|&p| p as f64).sum::<f64>() * k as f64;
    (person_part + price_part) / 2.0
}

/// Greedy b-matching by (value desc, a, b), optionally seeded with already chosen edges.
fn greedy(n: usize, edges: &[Edge], value: &[i64], k: usize, seed: Option<Vec<bool>>) -> Vec<bool> {
    let mut chosen = seed.unwrap_or_else(|| vec![false; edges.len()]);
    let mut deg = vec![0usize; n];
    for (i, &c) in chosen.iter().enumerate() {
        if c {
            deg[edges[i].a as usize] += 1;
            deg[edges[i].b as usize] += 1;
        }
    }
    let mut order: Vec<u32> = (0..edges.len() as u32).collect();
    order.par_sort_unstable_by(|&x, &y| {
        let (ex, ey) = (&edges[x as usize], &edges[y as usize]);
        value[y as usize]
            .cmp(&value[x as usize])
            .then((ex.a, ex.b).cmp(&(ey.a, ey.b)))
    });
    for idx in order {
        let e = &edges[idx as usize];
        let (a, b) = (e.a as usize, e.b as usize);
        if !chosen[idx as usize] && deg[a] < k && deg[b] < k {
            chosen[idx as usize] = true;
            deg[a] += 1;
            deg[b] += 1;
        }
    }
    chosen
}

/// Forward ε-auction on the double cover. Persons are the left copies, objects the right copies,
/// both with K slots; a full object's price is its lowest held bid. Returns the rounded selection,
/// the bid count and the final prices, or `None` past the bid budget.
fn auction(
    n: usize,
    edges: &[Edge],
    adj: &Adjacency,
    value: &[i64],
    k: usize,
    cfg: &SelectionConfig,
) -> Option<(Vec<bool>, u64, Vec<i64>)> {
    let max_value = value.iter().copied().max().unwrap_or(0);
    let eps = ((max_value as f64 * cfg.epsilon.max(0.0)).round() as i64).max(1);
    let budget = cfg
        .bid_budget
        .saturating_mul(adj.arcs.len() as u64)
        .saturating_add(n as u64);
    // Person side: objects held (NONE = free slot); a person has one arc to an object.
    let mut held = vec![NONE; n * k];
    // Object side: K slots per object, each a held bid, in one array so an object's slots share
    // a cache line.
    #[derive(Clone, Copy)]
    struct HeldBid {
        bid: i64,
        person: u32,
        edge: u32,
    }
    let mut slots = vec![
        HeldBid {
            bid: 0,
            person: NONE,
            edge: NONE,
        };
        n * k
    ];
    let mut filled = vec![0u32; n];
    let mut price = vec![0i64; n];
    let mut queued: Vec<bool> = (0..n).map(|i| !adj.of(i).is_empty()).collect();
    let mut queue: VecDeque<u32> = (0..n as u32).filter(|&i| queued[i as usize]).collect();
    // Each person's arcs with their values inline, best first: a bid reads one contiguous run
    // and usually stops after a few arcs.
    // (Scores and λ are at most a few million, so a value fits an i32: 8 bytes an arc.)
    let arcs: Vec<(u32, i32)> = adj
        .arcs
        .iter()
        .map(|&(j, e)| (j, i32::try_from(value[e as usize]).unwrap_or(i32::MAX)))
        .collect();
    let mut bids = 0u64;
    // The r best (value − price, object, arc position, value) for a person with r free slots,
    // plus the (r+1)-th.
    let mut best: Vec<(i64, u32, usize, i64)> = Vec::with_capacity(k + 1);
    {
        while let Some(i) = queue.pop_front() {
            let i = i as usize;
            queued[i] = false;
            let mine = &held[i * k..(i + 1) * k];
            let free = mine.iter().filter(|&&e| e == NONE).count();
            if free == 0 {
                continue;
            }
            best.clear();
            let (lo, hi) = (adj.offsets[i] as usize, adj.offsets[i + 1] as usize);
            for (pos, &(j, arc_value)) in arcs[lo..hi].iter().enumerate() {
                let arc_value = i64::from(arc_value);
                if best.len() == free + 1 && arc_value <= best[free].0 {
                    // Sorted arcs: no later one can be worth more than this one before its price.
                    break;
                }
                let v = arc_value - price[j as usize];
                if best.len() == free + 1 && v <= best[free].0 {
                    continue;
                }
                if mine.contains(&j) {
                    continue;
                }
                // Insertion into a short list sorted by value desc (ties: first seen, i.e. adjacency order).
                let at = best.iter().position(|b| v > b.0).unwrap_or(best.len());
                if best.len() == free + 1 {
                    best.pop();
                }
                best.insert(at, (v, j, lo + pos, arc_value));
            }
            // Competitor value: the best object not bid on now, or the outside option 0.
            let next = if best.len() > free {
                best[free].0.max(0)
            } else {
                0
            };
            for &(v, j, pos, arc_value) in best.iter().take(free) {
                if v <= 0 {
                    break;
                }
                bids += 1;
                if bids > budget {
                    return None;
                }
                let bid = arc_value - next + eps;
                let e = adj.arcs[pos].1;
                let j = j as usize;
                let object = &mut slots[j * k..(j + 1) * k];
                let s = if (filled[j] as usize) < k {
                    filled[j] += 1;
                    match object.iter().position(|h| h.person == NONE) {
                        Some(s) => s,
                        None => continue,
                    }
                } else {
                    // Evict the lowest bid (first such slot).
                    let mut low = 0;
                    for s in 1..k {
                        if object[s].bid < object[low].bid {
                            low = s;
                        }
                    }
                    let loser = object[low].person as usize;
                    if let Some(h) = held[loser * k..(loser + 1) * k]
                        .iter()
                        .position(|&x| x == j as u32)
                    {
                        held[loser * k + h] = NONE;
                    }
                    if !queued[loser] && loser != i {
                        queued[loser] = true;
                        queue.push_back(loser as u32);
                    }
                    low
                };
                object[s] = HeldBid {
                    bid,
                    person: i as u32,
                    edge: e,
                };
                if filled[j] as usize == k {
                    price[j] = object.iter().map(|h| h.bid).min().unwrap_or(0);
                }
                if let Some(h) = held[i * k..(i + 1) * k].iter().position(|&x| x == NONE) {
                    held[i * k + h] = j as u32;
                }
            }
        }
    }

    // The bid arrays are done with; free them before the rounding allocates.
    drop(arcs);
    drop(held);

    // Rounding: x_e = (count of copies holding e) / 2 ∈ {0, ½, 1}.
    let mut count = vec![0u8; edges.len()];
    for h in &slots {
        if h.person != NONE {
            count[h.edge as usize] += 1;
        }
    }
    let mut chosen: Vec<bool> = count.iter().map(|&c| c == 2).collect();
    let mut deg = vec![0usize; n];
    for (idx, &c) in chosen.iter().enumerate() {
        if c {
            deg[edges[idx].a as usize] += 1;
            deg[edges[idx].b as usize] += 1;
        }
    }
    let mut halves: Vec<u32> = (0..edges.len() as u32)
        .filter(|&e| count[e as usize] == 1)
        .collect();
    halves.sort_unstable_by(|&x, &y| value[y as usize].cmp(&value[x as usize]).then(x.cmp(&y)));
    for e in halves {
        let (a, b) = (edges[e as usize].a as usize, edges[e as usize].b as usize);
        if deg[a] < k && deg[b] < k {
            chosen[e as usize] = true;
            deg[a] += 1;
            deg[b] += 1;
        }
    }
    let chosen = greedy(n, edges, value, k, Some(chosen));
    Some((chosen, bids, price))
}

/// Gives a first suggestion to every user with a candidate edge but none selected, when a move
/// allows it without leaving anyone else without one: add a free edge (length 1), swap out an edge
/// of a partner whose other end keeps a suggestion, or re-route that end to a free partner (length 3).
fn repair_coverage(
    n: usize,
    edges: &[Edge],
    adj: &Adjacency,
    value: &[i64],
    k: usize,
    chosen: &mut [bool],
) -> usize {
    let mut deg = vec![0usize; n];
    for (idx, &c) in chosen.iter().enumerate() {
        if c {
            deg[edges[idx].a as usize] += 1;
            deg[edges[idx].b as usize] += 1;
        }
    }
    let mut repaired = 0;
    let mut visited = vec![0u32; n];
    let mut stamp = 0u32;
    for u in 0..n {
        if deg[u] > 0 || adj.of(u).is_empty() {
            continue;
        }
        // Best move: (class, gain, edges to add, edges to drop); class 0 beats 1 beats 2.
        let mut best: Option<(u8, i64, [u32; 2], [u32; 1])> = None;
        let mut consider = |class: u8, gain: i64, add: [u32; 2], drop: [u32; 1]| {
            let better = match &best {
                None => true,
                Some((c, g, _, _)) => class < *c || (class == *c && gain > *g),
            };
            if better {
                best = Some((class, gain, add, drop));
            }
        };
        for &(v, e_uv) in adj.of(u) {
            let v = v as usize;
            if deg[v] < k {
                consider(0, value[e_uv as usize], [e_uv, NONE], [NONE]);
                continue;
            }
            for &(x, e_vx) in adj.of(v) {
                if !chosen[e_vx as usize] {
                    continue;
                }
                let x = x as usize;
                let base = value[e_uv as usize] - value[e_vx as usize];
                if deg[x] >= 2 {
                    consider(1, base, [e_uv, NONE], [e_vx]);
                    continue;
                }
                for &(y, e_xy) in adj.of(x) {
                    let y = y as usize;
                    if y != v && y != u && !chosen[e_xy as usize] && deg[y] < k {
                        consider(2, base + value[e_xy as usize], [e_uv, e_xy], [e_vx]);
                    }
                }
            }
        }
        if best.is_none() {
            // No short move: look for a longer augmenting path (alternating add / drop, ending at
            // a user with a free slot), depth-first, bounded.
            stamp += 1;
            visited[u] = stamp;
            let mut budget = 4096u32;
            let mut path = Vec::new();
            if augmenting_path(
                u,
                0,
                adj,
                k,
                chosen,
                &deg,
                &mut visited,
                stamp,
                &mut budget,
                &mut path,
            ) {
                for (add, drop) in path {
                    if drop != NONE {
                        chosen[drop as usize] = false;
                        deg[edges[drop as usize].a as usize] -= 1;
                        deg[edges[drop as usize].b as usize] -= 1;
                    }
                    chosen[add as usize] = true;
                    deg[edges[add as usize].a as usize] += 1;
                    deg[edges[add as usize].b as usize] += 1;
                }
                repaired += 1;
            }
            continue;
        }
        if let Some((_, _, add, drop)) = best {
            for e in drop.into_iter().filter(|&e| e != NONE) {
                chosen[e as usize] = false;
                deg[edges[e as usize].a as usize] -= 1;
                deg[edges[e as usize].b as usize] -= 1;
            }
            for e in add.into_iter().filter(|&e| e != NONE) {
                chosen[e as usize] = true;
                deg[edges[e as usize].a as usize] += 1;
                deg[edges[e as usize].b as usize] += 1;
            }
            repaired += 1;
        }
    }
    repaired
}

/// Depth-first search for an augmenting path from `x`: add an unselected edge (x, v); if `v` has a
/// free slot, done; else drop one of `v`'s selected edges (v, y) and continue from `y`. Every
/// vertex appears once, so every inner vertex keeps its degree. Pushes (add, drop) pairs.
#[allow(clippy::too_many_arguments)]
fn augmenting_path(
    x: usize,
    depth: u32,
    adj: &Adjacency,
    k: usize,
    chosen: &[bool],
    deg: &[usize],
    visited: &mut [u32],
    stamp: u32,
    budget: &mut u32,
    path: &mut Vec<(u32, u32)>,
) -> bool {
    const MAX_DEPTH: u32 = 6;
    for &(v, e) in adj.of(x) {
        let v = v as usize;
        if chosen[e as usize] || visited[v] == stamp {
            continue;
        }
        if deg[v] < k {
            path.push((e, NONE));
            return true;
        }
    }
    if depth >= MAX_DEPTH {
        return false;
    }
    for &(v, e) in adj.of(x) {
        let v = v as usize;
        if chosen[e as usize] || visited[v] == stamp {
            continue;
        }
        visited[v] = stamp;
        for &(y, f) in adj.of(v) {
            let y = y as usize;
            if !chosen[f as usize] || visited[y] == stamp {
                continue;
            }
            if *budget == 0 {
                return false;
            }
            *budget -= 1;
            visited[y] = stamp;
            if augmenting_path(
                y,
                depth + 1,
                adj,
                k,
                chosen,
                deg,
                visited,
                stamp,
                budget,
                path,
            ) {
                path.push((e, f));
                return true;
            }
        }
    }
    false
}

/// Exposure of each user under independent top-K lists: how many users' own K best candidates
/// (one-sided, no capacities) include them. The baseline that b-matching is compared against.
pub fn independent_top_k_exposure(n: usize, edges: &[Edge], k: usize) -> Vec<u32> {
    let adj = Adjacency::new(n, edges);
    let mut exposure = vec![0u32; n];
    let mut buf: Vec<(u32, u32)> = Vec::new();
    for i in 0..n {
        buf.clear();
        buf.extend(adj.of(i).iter().map(|&(j, e)| (edges[e as usize].score, j)));
        buf.sort_unstable_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
        for &(_, j) in buf.iter().take(k) {
            exposure[j as usize] += 1;
        }
    }
    exposure
}

/// Gini coefficient of non-negative counts (0 = everyone equal, → 1 = one user has everything).
pub fn gini(values: &[u32]) -> f64 {
    let n = values.len();
    let total: f64 = values.iter().map(|&v| f64::from(v)).sum();
    if n == 0 || total == 0.0 {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let weighted: f64 = sorted
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as f64 + 1.0) * f64::from(v))
        .sum();
    (2.0 * weighted) / (n as f64 * total) - (n as f64 + 1.0) / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(a: u32, b: u32, score: u32) -> Edge {
        Edge { a, b, score }
    }

    fn degrees(n: usize, pairs: &[Edge]) -> Vec<usize> {
        let mut d = vec![0; n];
        for p in pairs {
            d[p.a as usize] += 1;
            d[p.b as usize] += 1;
        }
        d
    }

    fn total(pairs: &[Edge]) -> u64 {
        pairs.iter().map(|p| u64::from(p.score)).sum()
    }

    fn cfg(k: usize, method: SelectionMethod) -> SelectionConfig {
        SelectionConfig {
            k,
            method,
            coverage_bonus: 0.0,
            ..SelectionConfig::default()
        }
    }

    #[test]
    fn auction_beats_greedy_on_the_classic_path() {
        // GIVEN a path 0-1-2-3 where the heavy middle edge tempts greedy.
        let edges = [e(0, 1, 600), e(1, 2, 1000), e(2, 3, 600)];
        let value: Vec<i64> = edges.iter().map(|x| i64::from(x.score)).collect();
        // WHEN selecting with K = 1
        let plain = greedy(4, &edges, &value, 1, None);
        let a = select(4, &edges, &cfg(1, SelectionMethod::Auction));
        let g = select(4, &edges, &cfg(1, SelectionMethod::Greedy));
        // THEN bare greedy takes the middle edge, the auction the two outer ones, and the coverage
        // repair moves greedy's result to the outer ones too.
        assert_eq!(plain, vec![false, true, false]);
        assert_eq!(total(&a.pairs), 1200);
        assert_eq!(a.method_used, SelectionMethod::Auction);
        assert_eq!(a.repaired, 0);
        assert_eq!(total(&g.pairs), 1200);
        assert!(g.repaired >= 1);
        assert!(a.candidate_upper_bound >= 1200.0);
    }

    #[test]
    fn nobody_exceeds_k_and_pairs_come_from_the_edges() {
        let mut edges = Vec::new();
        for a in 0..12u32 {
            for b in a + 1..12 {
                edges.push(e(a, b, 1000 + (a * 31 + b * 17) % 500));
            }
        }
        for method in [SelectionMethod::Greedy, SelectionMethod::Auction] {
            let s = select(12, &edges, &cfg(3, method));
            assert!(degrees(12, &s.pairs).iter().all(|&d| d <= 3), "{method:?}");
            assert!(s.pairs.iter().all(|p| edges.contains(p)));
            assert_eq!(s.pairs.len(), 18, "a complete graph fills every slot");
        }
    }

    #[test]
    fn coverage_repair_uses_an_augmenting_path_of_length_three() {
        // GIVEN 0-1 heavy, 1-2 and 0-3 light; with K = 1 greedy picks 0-1 and leaves 2, 3 out.
        let edges = [e(0, 1, 1000), e(1, 2, 100), e(0, 3, 100)];
        let s = select(4, &edges, &cfg(1, SelectionMethod::Greedy));
        // THEN the repair moves to 1-2 and 0-3: everyone with a candidate is covered.
        assert_eq!(s.pairs, vec![e(0, 3, 100), e(1, 2, 100)]);
        assert!(s.repaired >= 1);
    }

    #[test]
    fn coverage_repair_follows_a_longer_augmenting_path() {
        // GIVEN the path 0-1-2-3-4-5 where greedy takes 1-2 and 3-4 and leaves both ends out.
        let edges = [
            e(0, 1, 100),
            e(1, 2, 1000),
            e(2, 3, 100),
            e(3, 4, 1000),
            e(4, 5, 100),
        ];
        let s = select(6, &edges, &cfg(1, SelectionMethod::Greedy));
        // THEN the repair flips the whole path: everyone is covered.
        assert_eq!(s.pairs, vec![e(0, 1, 100), e(2, 3, 100), e(4, 5, 100)]);
    }

    #[test]
    fn bound_is_never_below_the_selection() {
        let edges: Vec<Edge> = (0..40u32)
            .flat_map(|a| (1..4u32).map(move |d| e(a, (a + d) % 40, 100 + (a * 7 + d * 13) % 90)))
            .map(|x| if x.a < x.b { x } else { e(x.b, x.a, x.score) })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let s = select(40, &edges, &SelectionConfig::default());
        assert!(s.candidate_upper_bound + 1e-9 >= total(&s.pairs) as f64);
    }

    #[test]
    fn tiny_bid_budget_falls_back_to_greedy() {
        let c = SelectionConfig {
            bid_budget: 0,
            ..cfg(1, SelectionMethod::Auction)
        };
        // A budget of one bid per user cannot settle a contested complete graph.
        let mut big = Vec::new();
        for a in 0..200u32 {
            for b in a + 1..200 {
                big.push(e(a, b, 500 + (a ^ b) % 400));
            }
        }
        let s = select(200, &big, &c);
        assert!(s.fell_back);
        assert_eq!(s.method_used, SelectionMethod::Greedy);
        assert_eq!(s.pairs.len(), 100);
    }

    #[test]
    fn gini_is_zero_for_equal_and_high_for_concentrated_exposure() {
        assert_eq!(gini(&[3, 3, 3, 3]), 0.0);
        assert!(gini(&[0, 0, 0, 12]) > 0.7);
    }
}
