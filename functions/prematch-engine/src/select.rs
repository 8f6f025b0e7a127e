//! Selection: a weighted b-matching on the candidate graph (each user at most K mutual suggestions).
//!
//! The main method is an ε-scaled forward–reverse auction (Bertsekas) on the bipartite double
//! cover of the graph ([`auction`], where its guarantee is proved), rounded (full edges, then half
//! edges, then a greedy fill), improved by local moves (edge swaps, alternating cycles) and
//! followed by a coverage repair. Greedy by score is the fallback
//! (and the baseline). Weights carry a per-edge coverage bonus λ so that filling more slots is
//! worth a little score. See the crate README for the formulas.

mod auction;

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
    /// ε as a fraction of the largest weight: the step of the auction's last phase, which sets its
    /// guarantee (each phase before it has 8× the next one's step, the first at most 0.1 × the
    /// largest weight; 10⁻³ gives three phases).
    pub epsilon: f64,
    /// The auction gives up (and greedy runs) after `bid_budget × arcs + users` bids (forward
    /// bids and reverse steps, over all phases).
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
    /// Bids the auction made: forward bids and reverse steps, over all phases (0 for greedy).
    pub auction_bids: u64,
    /// Whether the auction hit its bid budget and greedy was used instead.
    pub fell_back: bool,
    /// Upper bound on the total score of any b-matching of the candidate graph
    /// (min of the LP dual bound from the auction's prices and Σ best-K halves).
    pub candidate_upper_bound: f64,
    /// Users given a first suggestion by the coverage repair.
    pub repaired: usize,
}

/// Largest arc value: score + λ is capped here so bids, prices and their differences fit an i32.
const MAX_VALUE: i64 = 1 << 29;

const NONE: u32 = u32::MAX;

/// A candidate edge seen from one end: the other end and the edge's value (score + λ). The
/// auction scans only these 8 bytes; the edge's index sits in a parallel array.
#[derive(Clone, Copy, Debug)]
struct Arc {
    to: u32,
    value: i32,
}

/// An arc with its edge index.
#[derive(Clone, Copy, Debug)]
struct Link {
    to: u32,
    value: i32,
    edge: u32,
}

/// Compressed adjacency of the candidate graph: each user's arcs in one run, 12 bytes an arc
/// in two parallel arrays — the one copy of the graph that the auction, the rounding, the
/// improvement, the repair and the bound share.
struct Graph {
    offsets: Vec<u32>,
    arcs: Vec<Arc>,
    edge: Vec<u32>,
}

/// Whether an edge can be selected at all: both ends are users, and they differ.
fn usable(e: &Edge, n: usize) -> bool {
    (e.a as usize) < n && (e.b as usize) < n && e.a != e.b
}

/// The weight the selection maximises: score + λ (capped, see [`MAX_VALUE`]).
fn value_of(score: u32, lambda: i64) -> i32 {
    (i64::from(score) + lambda).min(MAX_VALUE) as i32
}

impl Graph {
    /// Arcs in edge order; unusable edges (an end out of range, or a loop) are left out.
    fn new(n: usize, edges: &[Edge], lambda: i64) -> Graph {
        let mut offsets = vec![0u32; n + 1];
        for e in edges.iter().filter(|e| usable(e, n)) {
            offsets[e.a as usize + 1] += 1;
            offsets[e.b as usize + 1] += 1;
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        let mut fill = offsets.clone();
        let mut arcs = vec![Arc { to: 0, value: 0 }; offsets[n] as usize];
        let mut edge = vec![0u32; offsets[n] as usize];
        for (idx, e) in edges.iter().enumerate() {
            if !usable(e, n) {
                continue;
            }
            let value = value_of(e.score, lambda);
            for (from, to) in [(e.a, e.b), (e.b, e.a)] {
                let at = fill[from as usize] as usize;
                arcs[at] = Arc { to, value };
                edge[at] = idx as u32;
                fill[from as usize] += 1;
            }
        }
        Graph {
            offsets,
            arcs,
            edge,
        }
    }

    fn users(&self) -> usize {
        self.offsets.len() - 1
    }

    fn range(&self, i: usize) -> std::ops::Range<usize> {
        self.offsets[i] as usize..self.offsets[i + 1] as usize
    }

    /// User i's arcs (other end and value).
    fn of(&self, i: usize) -> &[Arc] {
        &self.arcs[self.range(i)]
    }

    /// User i's arcs with their edge indices.
    fn links(&self, i: usize) -> impl Iterator<Item = Link> + '_ {
        let r = self.range(i);
        self.arcs[r.clone()]
            .iter()
            .zip(&self.edge[r])
            .map(|(a, &edge)| Link {
                to: a.to,
                value: a.value,
                edge,
            })
    }

    /// Orders every user's arcs by value, best first (ties by edge index), so a bidder can stop
    /// scanning once no remaining arc can beat its current choices (prices are never negative).
    fn sort_best_first(&mut self) {
        let mut arcs_rest: &mut [Arc] = &mut self.arcs;
        let mut edge_rest: &mut [u32] = &mut self.edge;
        let mut segments = Vec::with_capacity(self.offsets.len().saturating_sub(1));
        for w in self.offsets.windows(2) {
            let len = (w[1] - w[0]) as usize;
            let (a, a_tail) = arcs_rest.split_at_mut(len);
            let (e, e_tail) = edge_rest.split_at_mut(len);
            segments.push((a, e));
            arcs_rest = a_tail;
            edge_rest = e_tail;
        }
        segments
            .into_par_iter()
            .for_each_init(Vec::new, |buf: &mut Vec<Link>, (a, e)| {
                buf.clear();
                buf.extend(a.iter().zip(e.iter()).map(|(x, &edge)| Link {
                    to: x.to,
                    value: x.value,
                    edge,
                }));
                buf.sort_unstable_by(|x, y| y.value.cmp(&x.value).then(x.edge.cmp(&y.edge)));
                for ((slot, id), l) in a.iter_mut().zip(e.iter_mut()).zip(buf.iter()) {
                    *slot = Arc {
                        to: l.to,
                        value: l.value,
                    };
                    *id = l.edge;
                }
            });
    }
}

/// Selects at most `cfg.k` mutual suggestions per user among `edges` (user indices `< n`, each pair
/// once), maximising Σ (score + λ) approximately, then repairing coverage: a user with a candidate
/// edge but no suggestion gets one when an augmenting move of length 1 or 3 allows it.
/// Deterministic: the same edges give the same selection. Edges with an end `≥ n` or both ends
/// equal are never selected.
pub fn select(n: usize, edges: &[Edge], cfg: &SelectionConfig) -> Selection {
    let lambda = coverage_lambda(edges, cfg.coverage_bonus);
    let mut graph = Graph::new(n, edges, lambda);
    // Nobody can have more suggestions than candidate edges: a K above the largest degree
    // selects the same, and would only size the per-user arrays (n·K) for nothing.
    let max_degree = (0..n).map(|i| graph.of(i).len()).max().unwrap_or(0);
    let k = cfg.k.clamp(1, max_degree.max(1));
    let (outcome, zero_part) = match cfg.method {
        SelectionMethod::Greedy => (None, best_k_sum(edges, &graph, lambda, None, k)),
        SelectionMethod::Auction => {
            graph.sort_best_first();
            let budget = cfg
                .bid_budget
                .saturating_mul(graph.arcs.len() as u64)
                .saturating_add(n as u64);
            // The auction is sequential: the price-free bound runs beside it on the other cores.
            let g = &graph;
            rayon::join(
                || auction::run(g, k, cfg.epsilon, budget),
                || best_k_sum(edges, g, lambda, None, k),
            )
        }
    };
    let fell_back = cfg.method == SelectionMethod::Auction && outcome.is_none();
    let (mut chosen, bids, prices) = match outcome {
        Some(out) => {
            let mut chosen = round(n, edges, &graph, lambda, k, &out.held);
            improve(n, edges, &graph, lambda, k, &mut chosen);
            (chosen, out.bids, Some(out.price))
        }
        None => (
            greedy(n, edges, lambda, k, vec![false; edges.len()]),
            0,
            None,
        ),
    };
    let repaired = repair_coverage(n, edges, &graph, k, &mut chosen);

    let mut pairs: Vec<Edge> = chosen
        .iter()
        .enumerate()
        .filter(|(_, &c)| c)
        .map(|(i, _)| edges[i])
        .collect();
    pairs.sort_unstable();
    // The smaller of the bounds for p = 0 and for the auction's prices (both valid).
    let mut candidate_upper_bound = zero_part as f64 / 2.0;
    if let Some(p) = &prices {
        let sum: i64 = p.iter().map(|&x| i64::from(x)).sum();
        let priced = best_k_sum(edges, &graph, lambda, Some(p), k) + sum * k as i64;
        candidate_upper_bound = candidate_upper_bound.min(priced as f64 / 2.0);
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
        candidate_upper_bound,
        repaired,
    }
}

/// λ = bonus × median score (integer, ≥ 0, capped so that score + λ fits the auction's values).
fn coverage_lambda(edges: &[Edge], bonus: f64) -> i64 {
    if edges.is_empty() || !(bonus.is_finite() && bonus > 0.0) {
        return 0;
    }
    let mut scores: Vec<u32> = edges.iter().map(|e| e.score).collect();
    let mid = scores.len() / 2;
    let (_, median, _) = scores.select_nth_unstable(mid);
    ((f64::from(*median) * bonus).round() as i64).clamp(0, MAX_VALUE / 2)
}

/// Σ over users of the sum of their K largest (w_ij − p_j)⁺ (p = 0 when `price` is None), with
/// raw scores w (no λ). By weak LP duality for the double-cover LP, for any prices p ≥ 0 on the
/// right copies, 2·OPT ≤ K·Σ p + this sum; for p = 0 it is Σ of each user's best K scores.
fn best_k_sum(edges: &[Edge], g: &Graph, lambda: i64, price: Option<&[i32]>, k: usize) -> i64 {
    let score = |arc: &Link| -> i64 {
        if i64::from(arc.value) < MAX_VALUE {
            i64::from(arc.value) - lambda
        } else {
            i64::from(edges[arc.edge as usize].score)
        }
    };
    (0..g.users())
        .into_par_iter()
        .map_init(Vec::new, |buf: &mut Vec<i64>, i| {
            buf.clear();
            buf.extend(g.links(i).map(|arc| {
                let p = price.map_or(0, |p| i64::from(p[arc.to as usize]));
                (score(&arc) - p).max(0)
            }));
            let take = k.min(buf.len());
            if take == 0 {
                return 0;
            }
            if take < buf.len() {
                buf.select_nth_unstable_by(take - 1, |x, y| y.cmp(x));
            }
            buf[..take].iter().sum::<i64>()
        })
        .sum()
}

/// Greedy b-matching by (value desc, a, b) on top of the edges already `chosen`: only the edges
/// whose two ends both have room at the start are sorted (the others can never be taken).
fn greedy(n: usize, edges: &[Edge], lambda: i64, k: usize, mut chosen: Vec<bool>) -> Vec<bool> {
    let mut deg = vec![0usize; n];
    for (e, _) in edges.iter().zip(&chosen).filter(|(_, &c)| c) {
        deg[e.a as usize] += 1;
        deg[e.b as usize] += 1;
    }
    let mut order: Vec<u32> = (0..edges.len() as u32)
        .filter(|&i| {
            let e = &edges[i as usize];
            !chosen[i as usize] && usable(e, n) && deg[e.a as usize] < k && deg[e.b as usize] < k
        })
        .collect();
    order.par_sort_unstable_by(|&x, &y| {
        let (ex, ey) = (&edges[x as usize], &edges[y as usize]);
        value_of(ey.score, lambda)
            .cmp(&value_of(ex.score, lambda))
            .then((ex.a, ex.b).cmp(&(ey.a, ey.b)))
    });
    for idx in order {
        let e = &edges[idx as usize];
        let (a, b) = (e.a as usize, e.b as usize);
        if deg[a] < k && deg[b] < k {
            chosen[idx as usize] = true;
            deg[a] += 1;
            deg[b] += 1;
        }
    }
    chosen
}

/// Rounds the auction's double-cover assignment: x_e = (copies of e held) / 2 ∈ {0, ½, 1}. Keeps
/// the full edges (a user's full edges never exceed K), adds the half edges by value while both
/// ends have room, then fills greedily.
fn round(n: usize, edges: &[Edge], g: &Graph, lambda: i64, k: usize, held: &[u32]) -> Vec<bool> {
    let mut count = vec![0u8; edges.len()];
    for i in 0..n {
        for &j in &held[i * k..(i + 1) * k] {
            if let Some(arc) = g.links(i).find(|a| a.to == j) {
                count[arc.edge as usize] += 1;
            }
        }
    }
    let mut chosen: Vec<bool> = count.iter().map(|&c| c == 2).collect();
    let mut deg = vec![0usize; n];
    for (e, _) in edges.iter().zip(&chosen).filter(|(_, &c)| c) {
        deg[e.a as usize] += 1;
        deg[e.b as usize] += 1;
    }
    let mut halves: Vec<u32> = (0..edges.len() as u32)
        .filter(|&e| count[e as usize] == 1)
        .collect();
    drop(count);
    halves.sort_unstable_by(|&x, &y| {
        value_of(edges[y as usize].score, lambda)
            .cmp(&value_of(edges[x as usize].score, lambda))
            .then(x.cmp(&y))
    });
    for e in halves {
        let (a, b) = (edges[e as usize].a as usize, edges[e as usize].b as usize);
        if deg[a] < k && deg[b] < k {
            chosen[e as usize] = true;
            deg[a] += 1;
            deg[b] += 1;
        }
    }
    greedy(n, edges, lambda, k, chosen)
}

/// Local improvement of a b-matching by value (score + λ), in two kinds of moves, each of which
/// gains value (so they end):
/// * an unselected edge (u, v) replaces u's and v's lowest-valued selected edges (when they are
///   full) if it is worth more than both together; the partners so freed are refilled with
///   their best edge to a user with room. A dropped partner keeps another suggestion, unless
///   u or v gets its first one by the move: the number of users covered never drops. Two passes
///   over the arcs, best first, in user order.
/// * alternating cycles of length 4 and 6 (below): degrees do not change.
fn improve(n: usize, edges: &[Edge], g: &Graph, lambda: i64, k: usize, chosen: &mut [bool]) -> u64 {
    // Each user's selected edges (edge, value, other end), NONE-padded.
    type Sel = (u32, i32, u32);
    let mut sel = vec![(NONE, 0i32, 0u32); n * k];
    let mut deg = vec![0usize; n];
    let add = |sel: &mut [Sel], deg: &mut [usize], u: usize, e: u32, value: i32, to: usize| {
        if let Some(s) = sel[u * k..(u + 1) * k].iter_mut().find(|s| s.0 == NONE) {
            *s = (e, value, to as u32);
        }
        deg[u] += 1;
    };
    let remove = |sel: &mut [Sel], deg: &mut [usize], u: usize, e: u32| {
        if let Some(s) = sel[u * k..(u + 1) * k].iter_mut().find(|s| s.0 == e) {
            *s = (NONE, 0, 0);
        }
        deg[u] -= 1;
    };
    for u in 0..n {
        for arc in g.links(u) {
            if chosen[arc.edge as usize] && (arc.to as usize) > u {
                add(&mut sel, &mut deg, u, arc.edge, arc.value, arc.to as usize);
                add(&mut sel, &mut deg, arc.to as usize, arc.edge, arc.value, u);
            }
        }
    }
    // What making room at u for an edge to v costs: 0 with a free slot, else the value of u's
    // lowest selected edge whose other end keeps a suggestion — or loses its only one when `v`
    // gains its first (the number of users covered stays) — None: no such edge.
    let cost = |sel: &[Sel], deg: &[usize], u: usize, v: usize| -> Option<(i32, u32, usize)> {
        if deg[u] < k {
            return Some((0, NONE, 0));
        }
        let mut best: Option<(i32, u32, usize)> = None;
        for &(e, value, x) in &sel[u * k..(u + 1) * k] {
            if e == NONE {
                continue;
            }
            let x = x as usize;
            if x == v || (deg[x] < 2 && deg[v] > 0) {
                continue;
            }
            if best.is_none_or(|b| value < b.0) {
                best = Some((value, e, x));
            }
        }
        best
    };
    let mut moves = 0u64;
    for _pass in 0..2 {
        let before = moves;
        for u in 0..n {
            for arc in g.links(u) {
                let v = arc.to as usize;
                if v < u || chosen[arc.edge as usize] {
                    continue;
                }
                let Some((cu, du, xu)) = cost(&sel, &deg, u, v) else {
                    continue;
                };
                if cu >= arc.value {
                    continue;
                }
                let Some((cv, dv, xv)) = cost(&sel, &deg, v, u) else {
                    continue;
                };
                if i64::from(cu) + i64::from(cv) >= i64::from(arc.value) {
                    continue;
                }
                // Both drops on the same partner: it must keep a third suggestion.
                if du != NONE && dv != NONE && xu == xv && deg[xu] < 3 {
                    continue;
                }
                let mut freed = [NONE as usize; 2];
                for (slot, (d, end, x)) in [(du, u, xu), (dv, v, xv)].into_iter().enumerate() {
                    if d != NONE {
                        chosen[d as usize] = false;
                        remove(&mut sel, &mut deg, end, d);
                        remove(&mut sel, &mut deg, x, d);
                        freed[slot] = x;
                    }
                }
                chosen[arc.edge as usize] = true;
                add(&mut sel, &mut deg, u, arc.edge, arc.value, v);
                add(&mut sel, &mut deg, v, arc.edge, arc.value, u);
                moves += 1;
                for x in freed.into_iter().filter(|&x| x != NONE as usize) {
                    if deg[x] >= k {
                        continue;
                    }
                    if let Some(xy) = g
                        .links(x)
                        .find(|xy| !chosen[xy.edge as usize] && deg[xy.to as usize] < k)
                    {
                        chosen[xy.edge as usize] = true;
                        add(&mut sel, &mut deg, x, xy.edge, xy.value, xy.to as usize);
                        add(&mut sel, &mut deg, xy.to as usize, xy.edge, xy.value, x);
                    }
                }
            }
        }
        if moves == before {
            break;
        }
    }
    // Alternating cycles of length 4 and 6: drop a selected edge (w, u), then add (u, v), drop
    // (v, x), and either close with (x, w) or go on: add (x, y), drop (y, z), close with (z, w).
    // Every user on the cycle gets one edge and loses one, so degrees (and coverage) are kept,
    // and K = 1 gains too. The partial gain must stay positive (arcs are best first, so a scan
    // stops early), the best closing cycle of each dropped edge is applied.
    let mut stamp = vec![u32::MAX; n];
    let mut mark = vec![(0i32, 0u32); n];
    let mut round = 0u32;
    let selected = |sel: &[Sel], u: usize| -> Vec<Sel> {
        sel[u * k..(u + 1) * k]
            .iter()
            .copied()
            .filter(|s| s.0 != NONE)
            .collect()
    };
    for w in 0..n {
        for (e0, w0, u) in selected(&sel, w) {
            if !chosen[e0 as usize] {
                continue;
            }
            let u = u as usize;
            round += 1;
            for wz in g.links(w) {
                stamp[wz.to as usize] = round;
                mark[wz.to as usize] = (wz.value, wz.edge);
            }
            let closing = |z: usize| -> Option<(i32, u32)> {
                (stamp[z] == round && !chosen[mark[z].1 as usize]).then(|| mark[z])
            };
            // (gain, adds, drops)
            let mut best: Option<(i64, [u32; 3], [u32; 3])> = None;
            let g0 = -i64::from(w0);
            for uv in g.links(u) {
                let v = uv.to as usize;
                if g0 + i64::from(uv.value) <= 0 {
                    break;
                }
                if v == w || chosen[uv.edge as usize] {
                    continue;
                }
                for &(e_vx, w_vx, x) in &sel[v * k..(v + 1) * k] {
                    if e_vx == NONE {
                        continue;
                    }
                    let x = x as usize;
                    if x == u || x == w {
                        continue;
                    }
                    let g1 = g0 + i64::from(uv.value) - i64::from(w_vx);
                    if let Some((w_xw, e_xw)) = closing(x) {
                        let total = g1 + i64::from(w_xw);
                        if total > 0 && best.is_none_or(|b| total > b.0) {
                            best = Some((total, [uv.edge, e_xw, NONE], [e0, e_vx, NONE]));
                        }
                    }
                    if g1 <= 0 {
                        continue;
                    }
                    for xy in g.links(x) {
                        let y = xy.to as usize;
                        if g1 + i64::from(xy.value) <= 0 {
                            break;
                        }
                        if y == w || y == u || y == v || chosen[xy.edge as usize] {
                            continue;
                        }
                        for &(e_yz, w_yz, z) in &sel[y * k..(y + 1) * k] {
                            if e_yz == NONE {
                                continue;
                            }
                            let z = z as usize;
                            if z == w || z == u || z == v || z == x {
                                continue;
                            }
                            let g2 = g1 + i64::from(xy.value) - i64::from(w_yz);
                            if let Some((w_zw, e_zw)) = closing(z) {
                                let total = g2 + i64::from(w_zw);
                                if total > 0 && best.is_none_or(|b| total > b.0) {
                                    best =
                                        Some((total, [uv.edge, xy.edge, e_zw], [e0, e_vx, e_yz]));
                                }
                            }
                        }
                    }
                }
            }
            if let Some((_, adds, drops)) = best {
                for e in drops.into_iter().filter(|&e| e != NONE) {
                    let (a, b) = (edges[e as usize].a as usize, edges[e as usize].b as usize);
                    chosen[e as usize] = false;
                    remove(&mut sel, &mut deg, a, e);
                    remove(&mut sel, &mut deg, b, e);
                }
                for e in adds.into_iter().filter(|&e| e != NONE) {
                    let (a, b) = (edges[e as usize].a as usize, edges[e as usize].b as usize);
                    let value = value_of(edges[e as usize].score, lambda);
                    chosen[e as usize] = true;
                    add(&mut sel, &mut deg, a, e, value, b);
                    add(&mut sel, &mut deg, b, e, value, a);
                }
                moves += 1;
            }
        }
    }
    moves
}

/// Gives a first suggestion to every user with a candidate edge but none selected, when a move
/// allows it without leaving anyone else without one: add a free edge (length 1), swap out an edge
/// of a partner whose other end keeps a suggestion, or re-route that end to a free partner (length 3).
fn repair_coverage(n: usize, edges: &[Edge], g: &Graph, k: usize, chosen: &mut [bool]) -> usize {
    let mut deg = vec![0usize; n];
    for (e, _) in edges.iter().zip(chosen.iter()).filter(|(_, &c)| c) {
        deg[e.a as usize] += 1;
        deg[e.b as usize] += 1;
    }
    let mut repaired = 0;
    let mut visited = vec![0u32; n];
    let mut stamp = 0u32;
    for u in 0..n {
        if deg[u] > 0 || g.of(u).is_empty() {
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
        for uv in g.links(u) {
            let v = uv.to as usize;
            if deg[v] < k {
                consider(0, i64::from(uv.value), [uv.edge, NONE], [NONE]);
                continue;
            }
            for vx in g.links(v) {
                if !chosen[vx.edge as usize] {
                    continue;
                }
                let x = vx.to as usize;
                let base = i64::from(uv.value) - i64::from(vx.value);
                if deg[x] >= 2 {
                    consider(1, base, [uv.edge, NONE], [vx.edge]);
                    continue;
                }
                for xy in g.links(x) {
                    let y = xy.to as usize;
                    if y != v && y != u && !chosen[xy.edge as usize] && deg[y] < k {
                        consider(2, base + i64::from(xy.value), [uv.edge, xy.edge], [vx.edge]);
                    }
                }
            }
        }
        if best.is_none() {
            // No short move: look for a longer augmenting path (alternating add / drop, ending at
            // a user with a free slot), depth-first, bounded.
            stamp += 1;
            visited[u] = stamp;
            let mut search = PathSearch {
                g,
                k,
                chosen,
                deg: &deg,
                visited: &mut visited,
                stamp,
                budget: 4096,
                path: Vec::new(),
            };
            if search.from(u, 0) {
                let path = search.path;
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

/// A bounded depth-first search for an augmenting path (see [`PathSearch::from`]).
struct PathSearch<'a> {
    g: &'a Graph,
    k: usize,
    chosen: &'a [bool],
    deg: &'a [usize],
    visited: &'a mut [u32],
    stamp: u32,
    budget: u32,
    /// (edge added, edge dropped) pairs, innermost first.
    path: Vec<(u32, u32)>,
}

impl PathSearch<'_> {
    /// From `x`: add an unselected edge (x, v); if `v` has a free slot, done; else drop one of
    /// `v`'s selected edges (v, y) and continue from `y`. Every vertex appears once, so every
    /// inner vertex keeps its degree. Pushes (add, drop) pairs.
    fn from(&mut self, x: usize, depth: u32) -> bool {
        const MAX_DEPTH: u32 = 6;
        let g = self.g;
        for xv in g.links(x) {
            let v = xv.to as usize;
            if self.chosen[xv.edge as usize] || self.visited[v] == self.stamp {
                continue;
            }
            if self.deg[v] < self.k {
                self.path.push((xv.edge, NONE));
                return true;
            }
        }
        if depth >= MAX_DEPTH {
            return false;
        }
        for xv in g.links(x) {
            let v = xv.to as usize;
            if self.chosen[xv.edge as usize] || self.visited[v] == self.stamp {
                continue;
            }
            self.visited[v] = self.stamp;
            for vy in g.links(v) {
                let y = vy.to as usize;
                if !self.chosen[vy.edge as usize] || self.visited[y] == self.stamp {
                    continue;
                }
                if self.budget == 0 {
                    return false;
                }
                self.budget -= 1;
                self.visited[y] = self.stamp;
                if self.from(y, depth + 1) {
                    self.path.push((xv.edge, vy.edge));
                    return true;
                }
            }
        }
        false
    }
}

/// Exposure of each user under independent top-K lists: how many users' own K best candidates
/// (one-sided, no capacities) include them. The baseline that b-matching is compared against.
pub fn independent_top_k_exposure(n: usize, edges: &[Edge], k: usize) -> Vec<u32> {
    let g = Graph::new(n, edges, 0);
    let mut exposure = vec![0u32; n];
    let mut buf: Vec<(u32, u32)> = Vec::new();
    for i in 0..n {
        buf.clear();
        buf.extend(g.links(i).map(|a| (edges[a.edge as usize].score, a.to)));
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
        // WHEN selecting with K = 1
        let plain = greedy(4, &edges, 0, 1, vec![false; 3]);
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
    fn improvement_gains_value_and_keeps_caps_and_coverage() {
        let mut seed = 17u64;
        let mut rnd = |m: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % m
        };
        let (mut moves, mut gained) = (0u64, 0i64);
        for _ in 0..200 {
            // GIVEN a random graph and a maximal b-matching on it (greedy by unrelated weights)
            let n = 4 + rnd(40) as usize;
            let mut edges = Vec::new();
            for a in 0..n as u32 {
                for b in a + 1..n as u32 {
                    if rnd(100) < 25 {
                        edges.push(e(a, b, 1 + rnd(1000) as u32));
                    }
                }
            }
            let k = 1 + rnd(3) as usize;
            let mut g = Graph::new(n, &edges, 0);
            g.sort_best_first();
            let shuffled: Vec<Edge> = edges
                .iter()
                .map(|x| e(x.a, x.b, rnd(1000) as u32))
                .collect();
            let mut chosen = greedy(n, &shuffled, 0, k, vec![false; edges.len()]);
            let before = chosen.clone();
            // WHEN improving it
            moves += improve(n, &edges, &g, 0, k, &mut chosen);
            // THEN the value does not drop, nobody exceeds K, no fewer users are covered, and a
            // user loses its only suggestion only to one who had none.
            let value = |c: &[bool]| -> i64 {
                edges
                    .iter()
                    .zip(c)
                    .filter(|(_, &x)| x)
                    .map(|(e, _)| i64::from(e.score))
                    .sum()
            };
            assert!(value(&chosen) >= value(&before));
            gained += value(&chosen) - value(&before);
            let pick = |c: &[bool]| -> Vec<Edge> {
                edges
                    .iter()
                    .zip(c)
                    .filter(|(_, &x)| x)
                    .map(|(e, _)| *e)
                    .collect()
            };
            let (d0, d1) = (degrees(n, &pick(&before)), degrees(n, &pick(&chosen)));
            assert!(d1.iter().all(|&d| d <= k));
            let covered = |d: &[usize]| d.iter().filter(|&&x| x > 0).count();
            assert!(covered(&d1) >= covered(&d0));
            let lost = d0
                .iter()
                .zip(&d1)
                .filter(|(&a, &b)| a > 0 && b == 0)
                .count();
            let new = d0
                .iter()
                .zip(&d1)
                .filter(|(&a, &b)| a == 0 && b > 0)
                .count();
            assert!(lost <= new, "{lost} uncovered, {new} newly covered");
        }
        // AND it does improve such matchings.
        assert!(moves > 0 && gained > 0, "{moves} moves, {gained} gained");
    }

    #[test]
    fn improvement_exchanges_along_an_alternating_cycle_when_k_is_one() {
        // GIVEN K = 1, the light pairs 0-1 and 2-3 selected, the heavy 0-2 and 1-3 not
        let edges = [e(0, 1, 10), e(2, 3, 10), e(0, 2, 100), e(1, 3, 100)];
        let mut g = Graph::new(4, &edges, 0);
        g.sort_best_first();
        let mut chosen = vec![true, true, false, false];
        // WHEN improving
        let moves = improve(4, &edges, &g, 0, 1, &mut chosen);
        // THEN the cycle 0-1-3-2 is flipped: everyone keeps one suggestion, now the heavy ones.
        assert_eq!(chosen, vec![false, false, true, true]);
        assert!(moves >= 1);
    }

    #[test]
    fn a_k_above_every_degree_selects_what_the_largest_degree_does() {
        // GIVEN a small graph whose largest degree is 3
        let edges = [e(0, 1, 500), e(0, 2, 400), e(0, 3, 300), e(1, 2, 200)];
        for method in [SelectionMethod::Greedy, SelectionMethod::Auction] {
            // WHEN K is absurdly large, or equal to that degree
            let huge = select(4, &edges, &cfg(1_000_000_000, method));
            let three = select(4, &edges, &cfg(3, method));
            // THEN both select every edge, without sizing arrays by K.
            assert_eq!(huge.pairs, three.pairs, "{method:?}");
            assert_eq!(huge.pairs.len(), 4);
        }
    }

    #[test]
    fn a_user_with_an_edge_out_of_range_or_a_loop_is_never_selected_with_it() {
        // GIVEN edges naming user 9 of 3, and a loop on user 0
        let edges = [e(0, 1, 500), e(1, 9, 900), e(0, 0, 1000), e(1, 2, 400)];
        for method in [SelectionMethod::Greedy, SelectionMethod::Auction] {
            // WHEN selecting
            let s = select(3, &edges, &cfg(2, method));
            // THEN only the usable edges are selected, and nothing panics.
            assert_eq!(s.pairs, vec![e(0, 1, 500), e(1, 2, 400)], "{method:?}");
        }
    }

    #[test]
    fn gini_is_zero_for_equal_and_high_for_concentrated_exposure() {
        assert_eq!(gini(&[3, 3, 3, 3]), 0.0);
        assert!(gini(&[0, 0, 0, 12]) > 0.7);
    }
}
