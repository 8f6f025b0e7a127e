//! The ε-scaled forward–reverse auction on the double cover of the candidate graph.
//!
//! Every user is a person (left copy) and an object (right copy), each with K slots; the arc
//! i→j is worth a_ij = w_ij + λ. Objects keep K slots, each holding a bid (its copy's price) and
//! the person who made it, or nobody (a "phantom" slot whose bid is a price floor left by an
//! earlier phase). An object's price p_j is the lowest bid among its slots: a bid replaces that
//! slot, and evicts its holder.
//!
//! **ε-complementary slackness (ε-CS)** with prices p ≥ 0, for a person i holding the set S_i
//! (|S_i| ≤ K, values u_ij = a_ij − p_j) and M_i = max over j ∉ S_i of (a_ij − p_j)⁺:
//!   (1) u_ij ≥ −ε for j ∈ S_i;
//!   (2) if |S_i| = K, u_ij ≥ M_i − ε for every j ∈ S_i; if |S_i| < K, M_i ≤ ε;
//!   (3) an object with a free (phantom) slot has price 0.
//!
//! **Guarantee.** At the end of the last phase (ε = the configured step) (1)–(3) hold, so with
//! A = Σ_{i, j∈S_i} a_ij the double-cover value of the assignment and
//! D(p) = K·Σ_j p_j + Σ_i (sum of the K largest (a_ij − p_j)⁺), an upper bound on the
//! double-cover optimum OPT_dc for any p ≥ 0 (LP weak duality):
//!   * person i's K largest values are at most Σ_{j∈S_i} u_ij + K·ε: each held j counts at most
//!     u_ij⁺ ≤ u_ij + ε by (1), and each of the other picks is at most M_i, which is ≤ ε or
//!     (when i is full) ≤ u_ij + ε for a held j not already counted, by (2);
//!   * summing, Σ_i Σ_{j∈S_i} u_ij = A − Σ_j (holders of j)·p_j = A − K·Σ_j p_j, since by (3)
//!     an object with fewer than K holders has p_j = 0.
//!
//! So OPT_dc ≤ D(p) ≤ A + n·K·ε, and since OPT_dc = 2·LP* (the general graph's b-matching LP
//! without odd-set constraints; x_uv = (y_uv + y_vu)/2), the rounded start is within n·K·ε/2 of
//! LP*. The same prices give the reported dual bound.
//!
//! **Why the invariants hold.** Forward step (a person i with r free slots): take the r best
//! objects by a_ij − p_j, bid a_ij − next + ε on each (next = the best value left, or 0): i then
//! holds each at value ≥ next − ε ≥ M_i − ε and ≥ −ε; prices only rise in forward steps, which
//! only lowers M for everyone, and a holder's value at the lowest bid is at least its value at
//! its own bid. A person keeps bidding until it is full or nothing has positive value (M_i ≤ 0).
//! Reverse step (an object j with a phantom slot priced f > 0, all persons satisfying (1)–(2)):
//! with π_i = 0 for a person with a free slot, else its lowest held value, β_i = a_ij − π_i over
//! the persons not holding j, β* the best (person i*) and ω the second best: if β* ≤ ε the slot's
//! price becomes 0 (then a_ij − 0 ≤ π_i + ε for everyone); else the slot's price becomes
//! f' = max(0, ω − ε) and i* takes it, dropping its lowest-valued object (whose slot keeps its
//! bid as a floor). Everyone else still has a_ij − f' ≤ π_i + ε (β_i ≤ ω), and i*'s value at j is
//! ≥ π_i* + ε ≥ every value it does not hold. By (2) before the step, f' ≤ f: prices never rise in
//! reverse steps, and i*'s total held value rises by ≥ ε, so the reverse steps end. They never
//! free a person's slot, so no forward work is created.
//!
//! **ε-scaling.** Phases run with ε₀ > ε₁ > … > ε (a factor per phase). Each phase starts from
//! the previous prices, each lowered by 2 × the previous ε (at least 0), with every assignment
//! cleared (an object's K slots become phantoms at that price), runs forward steps until no
//! person can bid, then reverse steps until no phantom has a price.
//! A coarse phase puts the prices near their final values cheaply; the last phase (the
//! configured ε) then needs few bids, and its end state satisfies (1)–(3) whatever the prices
//! it started from, so the guarantee is the single-phase one.

use std::collections::VecDeque;

use super::{Graph, NONE};

/// What the auction hands to the rounding: each person's held objects and the final prices.
pub(super) struct Outcome {
    /// `held[i·K + s]`: the object person i holds in slot s, or `NONE`.
    pub held: Vec<u32>,
    /// Final prices p_j (in value units: score + λ).
    pub price: Vec<i32>,
    /// Forward bids and reverse steps made, over all phases.
    pub bids: u64,
    /// The last phase's ε (the configured step, in value units).
    #[cfg_attr(not(test), allow(dead_code))]
    pub eps: i32,
}

/// One object slot: the bid held (the copy's price) and where its holder keeps it — the index
/// of the holder's person slot in `holds`, so the holder is `hold / K` (`NONE`: a phantom floor).
/// Both sides point at each other, so evicting a holder is a store, not a search.
#[derive(Clone, Copy)]
struct Slot {
    bid: i32,
    hold: u32,
}

/// One person slot: the object held (`NONE`: free) and the arc's value a_ij.
#[derive(Clone, Copy)]
struct Hold {
    obj: u32,
    value: i32,
    /// Index of the object's slot in `slots`.
    slot: u32,
}

const FREE: Hold = Hold {
    obj: NONE,
    value: 0,
    slot: NONE,
};

const PHANTOM: Slot = Slot { bid: 0, hold: NONE };

/// The first phase's ε is at most this fraction of the largest value.
const FIRST_STEP: f64 = 0.1;
/// ε shrinks by this factor per phase. Measured at 100,000 users (2.3 M edges): factors 4–12 and
/// first steps 0.05–0.5 all cost 3.6–4.8 M bids (a phase costs about 2–3 bids per slot whatever
/// its ε, the first one more); 8 and 0.1 (three phases) were among the cheapest.
const STEP_FACTOR: i64 = 8;

/// A phase starts from the previous prices lowered by this many of the previous phase's ε.
/// The previous phase's prices carry up to about its ε of overbidding, so an object priced just
/// above what its marginal holder will pay now ends the forward steps unfilled and costs reverse
/// steps; lowered, it is re-bid instead. Measured at 100,000 users (factor 8): 0 → 3.92 M bids,
/// 1 → 3.61 M, 2 → 3.54 M, 3 → 4.40 M, 4 → 5.58 M; 2 was also the fastest (about 15% less
/// selection time than 0).
const PRICE_DROP: i32 = 2;

/// The phase steps: ε, ×`factor` per phase, up to at most `start` × the largest value.
fn schedule(max_value: i32, eps: i32, start: f64, factor: i64) -> Vec<i32> {
    let top = (f64::from(max_value) * start).max(f64::from(eps));
    let mut steps = vec![eps];
    let mut e = i64::from(eps);
    while factor > 1 && ((e * factor) as f64) <= top {
        e *= factor;
        steps.push(e as i32);
    }
    steps.reverse();
    steps
}

/// Runs the auction; `None` when it makes more than `budget` bids (the caller falls back).
pub(super) fn run(g: &Graph, k: usize, epsilon: f64, budget: u64) -> Option<Outcome> {
    let n = g.users();
    let max_value = g.arcs.iter().map(|a| a.value).max().unwrap_or(0).max(0);
    // ε in value units: at least 1, at most the largest value (a bigger step buys nothing).
    let eps = (f64::from(max_value) * epsilon.max(0.0)).round();
    let eps =
        if eps.is_finite() { eps as i64 } else { 1 }.clamp(1, i64::from(max_value.max(1))) as i32;
    let steps = schedule(max_value, eps, FIRST_STEP, STEP_FACTOR);
    let mut st = State {
        g,
        k,
        slots: vec![PHANTOM; n * k],
        holds: vec![FREE; n * k],
        price: vec![0; n],
        queued: vec![false; n],
        queue: VecDeque::new(),
        bids: 0,
        budget,
    };
    for (phase, &e) in steps.iter().enumerate() {
        if phase > 0 {
            st.clear_assignments(steps[phase - 1].saturating_mul(PRICE_DROP));
        }
        st.queue_all();
        st.forward(e)?;
        // Every phase ends with the reverse fix, not only the last: the next phase then starts
        // from prices that are not too high for unfilled objects (measured: skipping it in the
        // coarse phases leaves millions of reverse steps to the last one).
        st.reverse(e)?;
    }
    Some(Outcome {
        held: st.holds.iter().map(|h| h.obj).collect(),
        price: st.price,
        bids: st.bids,
        eps,
    })
}

struct State<'g> {
    g: &'g Graph,
    k: usize,
    /// Object side, K slots per object.
    slots: Vec<Slot>,
    /// Person side, K slots per person.
    holds: Vec<Hold>,
    /// p_j = the lowest bid among j's slots.
    price: Vec<i32>,
    queued: Vec<bool>,
    queue: VecDeque<u32>,
    bids: u64,
    budget: u64,
}

impl State<'_> {
    /// Frees every slot on both sides; each object's K slots become phantoms at its price less
    /// `drop` (at least 0).
    fn clear_assignments(&mut self, drop: i32) {
        for (obj, p) in self
            .slots
            .chunks_exact_mut(self.k)
            .zip(self.price.iter_mut())
        {
            *p = p.saturating_sub(drop).max(0);
            for s in obj {
                *s = Slot {
                    bid: *p,
                    hold: NONE,
                };
            }
        }
        self.holds.fill(FREE);
    }

    fn queue_all(&mut self) {
        for i in 0..self.price.len() {
            if !self.g.of(i).is_empty() && !self.queued[i] {
                self.queued[i] = true;
                self.queue.push_back(i as u32);
            }
        }
    }

    fn count_bid(&mut self) -> Option<()> {
        self.bids += 1;
        (self.bids <= self.budget).then_some(())
    }

    /// Forward steps until no person with a free slot has an object of positive value.
    fn forward(&mut self, eps: i32) -> Option<()> {
        let k = self.k;
        // The r best (value − price, object, value) for a person with r free slots, plus the
        // (r+1)-th.
        let mut best: Vec<(i32, u32, i32)> = Vec::with_capacity(k + 1);
        while let Some(i) = self.queue.pop_front() {
            let i = i as usize;
            self.queued[i] = false;
            let mine = &self.holds[i * k..(i + 1) * k];
            let free = mine.iter().filter(|h| h.obj == NONE).count();
            if free == 0 {
                continue;
            }
            best.clear();
            for arc in self.g.of(i) {
                if best.len() > free && arc.value <= best[free].0 {
                    // Arcs are sorted by value and prices are ≥ 0: none later can beat this.
                    break;
                }
                let v = arc.value - self.price[arc.to as usize];
                if best.len() > free && v <= best[free].0 {
                    continue;
                }
                if mine.iter().any(|h| h.obj == arc.to) {
                    continue;
                }
                // Insertion into a short list sorted by value desc (ties: first seen).
                let at = best.iter().position(|b| v > b.0).unwrap_or(best.len());
                if best.len() > free {
                    best.pop();
                }
                best.insert(at, (v, arc.to, arc.value));
            }
            // Competitor value: the best object not bid on now, or the outside option 0.
            let next = best.get(free).map_or(0, |b| b.0.max(0));
            for &(v, j, value) in best.iter().take(free) {
                if v <= 0 {
                    break;
                }
                self.count_bid()?;
                self.place(i, j as usize, value - next + eps, value);
            }
        }
        Some(())
    }

    /// Person i's bid on object j replaces j's lowest slot (evicting its holder, if any).
    fn place(&mut self, i: usize, j: usize, bid: i32, value: i32) {
        let k = self.k;
        let Some(free) = self.holds[i * k..(i + 1) * k]
            .iter()
            .position(|h| h.obj == NONE)
        else {
            return;
        };
        let obj = &mut self.slots[j * k..(j + 1) * k];
        let mut low = 0;
        for s in 1..k {
            if obj[s].bid < obj[low].bid {
                low = s;
            }
        }
        let loser = obj[low].hold;
        obj[low] = Slot {
            bid,
            hold: (i * k + free) as u32,
        };
        self.price[j] = obj.iter().map(|s| s.bid).min().unwrap_or(0);
        self.holds[i * k + free] = Hold {
            obj: j as u32,
            value,
            slot: (j * k + low) as u32,
        };
        if loser != NONE {
            self.holds[loser as usize] = FREE;
            let l = loser as usize / k;
            if !self.queued[l] {
                self.queued[l] = true;
                self.queue.push_back(l as u32);
            }
        }
    }

    /// A phantom slot of j with a positive price, if any.
    fn overpriced_slot(&self, j: usize) -> Option<usize> {
        let k = self.k;
        self.slots[j * k..(j + 1) * k]
            .iter()
            .position(|s| s.hold == NONE && s.bid > 0)
    }

    /// π_i: 0 for a person with a free slot, else its lowest held value a_ij − p_j.
    fn profit(&self, i: usize) -> i32 {
        let mut pi = i32::MAX;
        for h in &self.holds[i * self.k..(i + 1) * self.k] {
            if h.obj == NONE {
                return 0;
            }
            pi = pi.min(h.value - self.price[h.obj as usize]);
        }
        pi
    }

    /// Reverse steps until no object has a phantom slot with a positive price.
    fn reverse(&mut self, eps: i32) -> Option<()> {
        let k = self.k;
        let n = self.price.len();
        // π of every person, kept current: it changes only for the holders of an object whose
        // price drops and for the person who takes a slot.
        let mut pi: Vec<i32> = (0..n).map(|i| self.profit(i)).collect();
        let mut waiting: Vec<bool> = (0..n).map(|j| self.overpriced_slot(j).is_some()).collect();
        let mut queue: VecDeque<u32> = (0..n as u32).filter(|&j| waiting[j as usize]).collect();
        let mut holders: Vec<u32> = Vec::with_capacity(k);
        while let Some(j) = queue.pop_front() {
            let j = j as usize;
            waiting[j] = false;
            while let Some(s) = self.overpriced_slot(j) {
                // Best and second-best β_i = a_ij − π_i over the persons not holding j.
                holders.clear();
                holders.extend(
                    self.slots[j * k..(j + 1) * k]
                        .iter()
                        .filter(|x| x.hold != NONE)
                        .map(|x| x.hold / k as u32),
                );
                let mut first: Option<(i32, usize, i32)> = None;
                let mut second: Option<i32> = None;
                for arc in self.g.of(j) {
                    if holders.contains(&arc.to) {
                        continue;
                    }
                    let beta = arc.value - pi[arc.to as usize];
                    match first {
                        Some((b, _, _)) if beta <= b => {
                            if second.is_none_or(|s2| beta > s2) {
                                second = Some(beta);
                            }
                        }
                        _ => {
                            second = first.map(|f| f.0);
                            first = Some((beta, arc.to as usize, arc.value));
                        }
                    }
                }
                match first {
                    Some((beta, i, value)) if beta > eps => {
                        self.count_bid()?;
                        let f = second.map_or(0, |w| w.saturating_sub(eps).max(0));
                        // i takes the slot: into a free slot, or in place of its worst object.
                        let mine = &self.holds[i * k..(i + 1) * k];
                        let at = match mine.iter().position(|h| h.obj == NONE) {
                            Some(at) => at,
                            None => {
                                let mut worst = 0;
                                let mut worst_v = i32::MAX;
                                for (at, h) in mine.iter().enumerate() {
                                    let v = h.value - self.price[h.obj as usize];
                                    if v < worst_v {
                                        worst_v = v;
                                        worst = at;
                                    }
                                }
                                let dropped = mine[worst].obj as usize;
                                let slot = &mut self.slots[mine[worst].slot as usize];
                                slot.hold = NONE;
                                if slot.bid > 0 && !waiting[dropped] {
                                    waiting[dropped] = true;
                                    queue.push_back(dropped as u32);
                                }
                                worst
                            }
                        };
                        self.holds[i * k + at] = Hold {
                            obj: j as u32,
                            value,
                            slot: (j * k + s) as u32,
                        };
                        self.slots[j * k + s] = Slot {
                            bid: f,
                            hold: (i * k + at) as u32,
                        };
                    }
                    _ => self.slots[j * k + s].bid = 0,
                }
                self.price[j] = self.slots[j * k..(j + 1) * k]
                    .iter()
                    .map(|x| x.bid)
                    .min()
                    .unwrap_or(0);
                // The holders of j (the new one included) see a lower price, or a new object.
                for s in 0..k {
                    let h = self.slots[j * k + s].hold;
                    if h != NONE {
                        let h = h as usize / k;
                        pi[h] = self.profit(h);
                    }
                }
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Edge, Graph};
    use super::*;

    /// A small deterministic generator (tests must be reproducible).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, m: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % m
        }
    }

    /// A random simple graph on n users, scores in [lo, lo + span).
    fn random_edges(rng: &mut Lcg, n: u32, density: u64, lo: u32, span: u64) -> Vec<Edge> {
        let mut edges = Vec::new();
        for a in 0..n {
            for b in a + 1..n {
                if rng.next(100) < density {
                    edges.push(Edge {
                        a,
                        b,
                        score: lo + rng.next(span) as u32,
                    });
                }
            }
        }
        edges
    }

    fn graph(n: usize, edges: &[Edge]) -> Graph {
        let mut g = Graph::new(n, edges, 0);
        g.sort_best_first();
        g
    }

    /// Checks (1)–(3) of the module comment; returns the double-cover value A.
    fn check_eps_cs(g: &Graph, k: usize, out: &Outcome) -> i64 {
        let n = g.users();
        let eps = i64::from(out.eps);
        let mut holders = vec![0usize; n];
        let mut total = 0i64;
        for i in 0..n {
            let held: Vec<u32> = out.held[i * k..(i + 1) * k]
                .iter()
                .copied()
                .filter(|&j| j != NONE)
                .collect();
            let mut sorted = held.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), held.len(), "person {i} holds an object twice");
            let mut worst = i64::MAX;
            let mut best_other = 0i64;
            for arc in g.of(i) {
                let u = i64::from(arc.value) - i64::from(out.price[arc.to as usize]);
                if held.contains(&arc.to) {
                    assert!(u >= -eps, "(1) person {i}: held value {u} < -ε {eps}");
                    worst = worst.min(u);
                    total += i64::from(arc.value);
                    holders[arc.to as usize] += 1;
                } else {
                    best_other = best_other.max(u);
                }
            }
            assert_eq!(
                held.iter()
                    .filter(|&&j| g.of(i).iter().any(|a| a.to == j))
                    .count(),
                held.len(),
                "person {i} holds an object it has no arc to"
            );
            if held.len() == k {
                assert!(
                    worst >= best_other - eps,
                    "(2) person {i}: worst held {worst} < best other {best_other} - ε {eps}"
                );
            } else {
                assert!(
                    best_other <= eps,
                    "(2) person {i} has a free slot but values {best_other} > ε {eps}"
                );
            }
        }
        for (j, (&p, &h)) in out.price.iter().zip(&holders).enumerate() {
            assert!(p >= 0);
            if h < k {
                assert_eq!(p, 0, "(3) object {j} not full has a price");
            }
        }
        total
    }

    /// The exact optimum of the double cover (bipartite b-matching, capacity K on both sides) by
    /// successive shortest paths (Bellman–Ford), stopping when no path gains.
    fn exact_double_cover(g: &Graph, k: usize) -> i64 {
        let n = g.users();
        let (s, t) = (2 * n, 2 * n + 1);
        // (to, capacity, cost, reverse index)
        let mut adj: Vec<Vec<(usize, i64, i64, usize)>> = vec![Vec::new(); 2 * n + 2];
        let add = |adj: &mut Vec<Vec<(usize, i64, i64, usize)>>,
                   a: usize,
                   b: usize,
                   cap: i64,
                   cost: i64| {
            let (ra, rb) = (adj[b].len(), adj[a].len());
            adj[a].push((b, cap, cost, ra));
            adj[b].push((a, 0, -cost, rb));
        };
        for i in 0..n {
            add(&mut adj, s, i, k as i64, 0);
            add(&mut adj, n + i, t, k as i64, 0);
            for arc in g.of(i) {
                add(&mut adj, i, n + arc.to as usize, 1, -i64::from(arc.value));
            }
        }
        let mut value = 0i64;
        loop {
            let mut dist = vec![i64::MAX; 2 * n + 2];
            let mut prev = vec![(usize::MAX, 0usize); 2 * n + 2];
            dist[s] = 0;
            for _ in 0..2 * n + 2 {
                let mut changed = false;
                for a in 0..2 * n + 2 {
                    if dist[a] == i64::MAX {
                        continue;
                    }
                    for (idx, &(b, cap, cost, _)) in adj[a].iter().enumerate() {
                        if cap > 0 && dist[a] + cost < dist[b] {
                            dist[b] = dist[a] + cost;
                            prev[b] = (a, idx);
                            changed = true;
                        }
                    }
                }
                if !changed {
                    break;
                }
            }
            if dist[t] >= 0 {
                return value;
            }
            let mut v = t;
            while v != s {
                let (a, idx) = prev[v];
                adj[a][idx].1 -= 1;
                let r = adj[a][idx].3;
                adj[v][r].1 += 1;
                v = a;
            }
            value -= dist[t];
        }
    }

    #[test]
    fn the_phases_shrink_to_the_configured_step() {
        // GIVEN values up to 1,000,000 and ε = 1,000
        let steps = schedule(1_000_000, 1_000, FIRST_STEP, STEP_FACTOR);
        // THEN several phases run, each ε a factor of the next, the last one the configured ε.
        assert!(steps.len() >= 3, "{steps:?}");
        assert_eq!(*steps.last().unwrap_or(&0), 1_000);
        assert!(steps.windows(2).all(|w| w[0] == w[1] * STEP_FACTOR as i32));
        assert!(f64::from(steps[0]) <= 1_000_000.0 * FIRST_STEP);
        // AND a step as big as the largest value is a single phase.
        assert_eq!(schedule(1_000, 1_000, FIRST_STEP, STEP_FACTOR), vec![1_000]);
    }

    #[test]
    fn the_scaled_auction_ends_eps_complementary_slack_on_random_graphs() {
        let mut rng = Lcg(11);
        let mut multi_phase = 0;
        for case in 0..300 {
            // GIVEN a random graph (sparse to dense, narrow to wide score ranges) and K in 1..=4
            let n = 2 + rng.next(40) as u32;
            let density = 5 + rng.next(70);
            let (lo, span) = if case % 3 == 0 {
                (900_000, 100_000)
            } else {
                (1_000, 1_000_000)
            };
            let edges = random_edges(&mut rng, n, density, lo, span);
            let k = 1 + rng.next(4) as usize;
            let g = graph(n as usize, &edges);
            // WHEN the auction runs with the default step
            let out = run(&g, k, 1e-3, u64::MAX).unwrap();
            let max_value = g.arcs.iter().map(|a| a.value).max().unwrap_or(0);
            if schedule(max_value.max(0), out.eps, FIRST_STEP, STEP_FACTOR).len() > 1 {
                multi_phase += 1;
            }
            // THEN its end state satisfies ε-CS with the configured ε and zero prices on
            // objects that are not full.
            check_eps_cs(&g, k, &out);
        }
        assert!(
            multi_phase > 250,
            "the cases must exercise the scaling ({multi_phase})"
        );
    }

    #[test]
    fn the_scaled_auction_is_within_nk_eps_of_the_exact_double_cover_optimum() {
        let mut rng = Lcg(5);
        for _ in 0..150 {
            // GIVEN a small random graph, K in 1..=3, and a coarse ε (so the gap can show)
            let n = 2 + rng.next(16) as u32;
            let density = 20 + rng.next(60);
            let edges = random_edges(&mut rng, n, density, 1_000, 1_000_000);
            let k = 1 + rng.next(3) as usize;
            let g = graph(n as usize, &edges);
            for epsilon in [1e-3, 2e-2] {
                // WHEN the auction runs
                let out = run(&g, k, epsilon, u64::MAX).unwrap();
                let value = check_eps_cs(&g, k, &out);
                let exact = exact_double_cover(&g, k);
                // THEN A ≥ OPT − n·K·ε, and the dual bound D(p) lies in [OPT, A + n·K·ε].
                let slack = n as i64 * k as i64 * i64::from(out.eps);
                assert!(value <= exact, "{value} > exact {exact}");
                assert!(value >= exact - slack, "{value} < {exact} - {slack}");
                let mut dual: i64 = out.price.iter().map(|&p| i64::from(p)).sum::<i64>() * k as i64;
                for i in 0..n as usize {
                    let mut v: Vec<i64> = g
                        .of(i)
                        .iter()
                        .map(|a| (i64::from(a.value) - i64::from(out.price[a.to as usize])).max(0))
                        .collect();
                    v.sort_unstable_by(|x, y| y.cmp(x));
                    dual += v.iter().take(k).sum::<i64>();
                }
                assert!(dual >= exact, "dual {dual} < exact {exact}");
                assert!(dual <= value + slack, "dual {dual} > {value} + {slack}");
            }
        }
    }

    #[test]
    fn the_auction_gives_up_past_its_budget() {
        // GIVEN a contested complete graph and a budget of 10 bids
        let mut rng = Lcg(3);
        let edges = random_edges(&mut rng, 30, 100, 1_000, 1_000_000);
        let g = graph(30, &edges);
        // THEN the auction returns None (the caller falls back to greedy)
        assert!(run(&g, 2, 1e-3, 10).is_none());
        assert!(run(&g, 2, 1e-3, u64::MAX).is_some());
    }
}
