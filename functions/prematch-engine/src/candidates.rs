//! Candidate generation: blocked, pruned, bit-parallel scoring of the pairs that can pass.
//!
//! For a user `a` only the compatible blocking groups are visited (same region, mutual gender
//! acceptance), and in each only the age window `[a.age_min, a.age_max]` (groups are age-sorted);
//! each unordered pair is visited once. The kernel then tests the other side's age range, a shared
//! language and the overlap with AND + popcount on the 64-byte profiles; only pairs that pass are
//! scored, and offered to both users' top-C lists. The candidate graph is the union of those lists
//! (an edge is kept when it is in the top-C of *either* side), so unpopular users keep their edges
//! to popular ones.

use std::ops::Range;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::compile::CompiledRegion;
use crate::score::Weights;

// The scan's inner loops (word-major layout, tiled kernel, batched scoring) live in `src/scan.rs`,
// a child of this module: only the candidate functions use them.
#[path = "scan.rs"]
pub(crate) mod scan;

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
    /// Σ over all users of their best K scores among the pairs scanned, halved: an upper bound on
    /// any selection's total over those pairs (summed over merged shards it stays a valid, looser
    /// bound).
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

/// Every user's best `c` partners, as flat binary min-heaps of keys (score << 32 | !partner), so
/// the weakest kept partner is at the root and a candidate is one comparison away from rejection.
struct TopLists<'f> {
    c: usize,
    keys: Vec<u64>,
    len: Vec<u32>,
    /// The highest root key of a full heap of each owner, over *all* workers' lists (0 until one
    /// is full): a compact array that stays in cache, so most offers are rejected without
    /// touching a heap. Sharing it is exact: a key at or below another worker's root has C
    /// better keys there (keys are distinct: each pair is offered once), so it cannot be in the
    /// union's top C; and it lets each worker reject what the other has already beaten, so the
    /// lists see about half the inserts. Relaxed loads and stores suffice: any root value ever
    /// published is a valid floor (roots only rise), whichever store wins.
    floor: &'f [AtomicU64],
    /// Queued offers (owner, key): the first `pending` entries.
    pending_owner: Vec<u32>,
    pending_key: Vec<u64>,
    pending: usize,
}

/// Raises a shared floor to `root` (a lost race only leaves a lower, still valid, floor).
#[inline]
fn raise(floor: &AtomicU64, root: u64) {
    if root > floor.load(Relaxed) {
        floor.store(root, Relaxed);
    }
}

/// Offers that passed their owner's floor, waiting to be inserted (see [`TopLists::offer_batch`]);
/// at least twice a scoring batch.
const PENDING: usize = 1024;

impl<'f> TopLists<'f> {
    fn new(n: usize, c: usize, floor: &'f [AtomicU64]) -> TopLists<'f> {
        TopLists {
            c,
            keys: vec![0; n * c],
            len: vec![0; n],
            floor,
            pending_owner: vec![0; PENDING],
            pending_key: vec![0; PENDING],
            pending: 0,
        }
    }

    /// Offers every pair (a, b) of a batch (scores in the same order) to both lists, without a
    /// branch on the outcome: an offer above its owner's floor is queued, and the queue is
    /// inserted by [`Self::flush`]. The lists are n × C × 8 bytes (24 MB per worker at 100,000
    /// users, 240 MB at a million), so inserting at once would wait on a cache miss per offer;
    /// the flush first touches all the queued heaps, so their misses overlap, then inserts. The
    /// result does not depend on when an offer is inserted (each list keeps its best C keys under
    /// one total order), nor on a floor read before the batch's own inserts (it is only lower).
    #[inline(always)]
    fn offer_batch(&mut self, a: u32, bs: &[u32], scores: &[u32]) {
        for (bs, scores) in bs.chunks(PENDING / 2).zip(scores.chunks(PENDING / 2)) {
            if self.pending + 2 * bs.len() > PENDING {
                self.flush();
            }
            let floor_a = self.floor[a as usize].load(Relaxed);
            let mut i = self.pending;
            for (&b, &s) in bs.iter().zip(scores) {
                let (ka, kb) = (TopLists::key(b, s), TopLists::key(a, s));
                self.pending_owner[i] = a;
                self.pending_key[i] = ka;
                i += usize::from(ka > floor_a);
                self.pending_owner[i] = b;
                self.pending_key[i] = kb;
                i += usize::from(kb > self.floor[b as usize].load(Relaxed));
            }
            self.pending = i;
        }
    }

    /// Inserts the queued offers (a queued offer may have fallen below its floor meanwhile: the
    /// insert checks again).
    #[inline(never)]
    fn flush(&mut self) {
        let (c, n) = (self.c, self.pending);
        let mut touched = 0u64;
        for &owner in &self.pending_owner[..n] {
            let heap = &self.keys[owner as usize * c..(owner as usize + 1) * c];
            // One load per cache line of the heap, independent of each other.
            for j in (0..c).step_by(8) {
                touched ^= heap[j];
            }
            touched ^= heap[c - 1];
        }
        std::hint::black_box(touched);
        for i in 0..n {
            let (owner, key) = (self.pending_owner[i], self.pending_key[i]);
            self.insert(owner as usize, key);
        }
        self.pending = 0;
    }

    #[inline]
    fn key(partner: u32, score: u32) -> u64 {
        // Higher score first, then lower index: one total order, so ties do not depend on order.
        (u64::from(score) << 32) | u64::from(u32::MAX - partner)
    }

    fn partner(key: u64) -> u32 {
        u32::MAX - key as u32
    }

    fn score(key: u64) -> u32 {
        (key >> 32) as u32
    }

    #[inline(never)]
    fn insert(&mut self, owner: usize, key: u64) {
        let c = self.c;
        let heap = &mut self.keys[owner * c..(owner + 1) * c];
        let len = self.len[owner] as usize;
        if len < c {
            // Sift up.
            let mut i = len;
            heap[i] = key;
            while i > 0 {
                let parent = (i - 1) / 2;
                if heap[parent] <= heap[i] {
                    break;
                }
                heap.swap(parent, i);
                i = parent;
            }
            self.len[owner] += 1;
            if len + 1 == c {
                raise(&self.floor[owner], heap[0]);
            }
        } else if key > heap[0] {
            // Replace the root and sift down.
            heap[0] = key;
            let mut i = 0;
            loop {
                let (l, r) = (2 * i + 1, 2 * i + 2);
                let mut m = i;
                if l < c && heap[l] < heap[m] {
                    m = l;
                }
                if r < c && heap[r] < heap[m] {
                    m = r;
                }
                if m == i {
                    break;
                }
                heap.swap(i, m);
                i = m;
            }
            raise(&self.floor[owner], heap[0]);
        }
    }

    fn list(&self, owner: usize) -> &[u64] {
        &self.keys[owner * self.c..owner * self.c + self.len[owner] as usize]
    }
}

/// Candidate edges from the rows `shard` (user indices): every feasible pair (a, b) with `a` in the
/// shard and `b > a` is scored once and offered to both users' top-`per_user` lists. With the whole
/// region as one shard the result is exactly the union of every user's best `per_user` partners
/// (ties by lower index); merged shards give a superset of it. Exclusions (blocks, recent history)
/// are applied inside the scan, before the truncation, so the pool does not run dry night after
/// night. Memory: one n × `per_user` list per worker thread (at most 4), one shared floor per
/// user (8 B) and the scan's word-major copy of the profiles (about 68 B a user), freed on return.
pub fn candidate_edges(
    region: &CompiledRegion,
    shard: Range<u32>,
    per_user: usize,
    k: usize,
    weights: &Weights,
) -> CandidateSet {
    let weights = weights.normalised();
    let n = region.len();
    let c = per_user.max(k).max(1);
    let end = shard.end.min(n as u32);
    let start = shard.start.min(end);
    const CHUNK: u32 = 64;
    let chunks: Vec<u32> = (start..end).step_by(CHUNK as usize).collect();
    let workers = rayon::current_num_threads()
        .clamp(1, 4)
        .min(chunks.len().max(1));
    // Chunks are dealt round-robin so every worker gets rows from every group.
    let layout = scan::Layout::new(region);
    let floor: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
    let parts: Vec<(TopLists<'_>, u64, u64)> = (0..workers)
        .into_par_iter()
        .map(|w| {
            let mut top = TopLists::new(n, c, &floor);
            let (mut scanned, mut feasible) = (0u64, 0u64);
            let mut sink = |a: u32, bs: &[u32], scores: &[u32]| {
                feasible += bs.len() as u64;
                top.offer_batch(a, bs, scores);
            };
            for &c0 in chunks.iter().skip(w).step_by(workers) {
                let rows = c0 as usize..(c0 + CHUNK).min(end) as usize;
                scan::tiles(region, rows, |tile| {
                    scanned += scan::scan_tile::<false>(region, &layout, tile, &weights, &mut sink);
                });
            }
            top.flush();
            (top, scanned, feasible)
        })
        .collect();
    drop(layout);
    let mut parts = parts.into_iter();
    let Some((mut top, mut pairs_scanned, mut feasible)) = parts.next() else {
        return CandidateSet::default();
    };
    for (other, scanned, f) in parts {
        pairs_scanned += scanned;
        feasible += f;
        for owner in 0..n {
            for &key in other.list(owner) {
                top.insert(owner, key);
            }
        }
    }
    let mut best_k_half_sum = 0f64;
    let mut edges = Vec::with_capacity(n * c);
    let mut sorted: Vec<u64> = Vec::with_capacity(c);
    for owner in 0..n {
        sorted.clear();
        sorted.extend_from_slice(top.list(owner));
        sorted.sort_unstable_by(|x, y| y.cmp(x));
        best_k_half_sum += sorted
            .iter()
            .take(k)
            .map(|&key| f64::from(TopLists::score(key)))
            .sum::<f64>()
            / 2.0;
        let a = owner as u32;
        for &key in &sorted {
            let b = TopLists::partner(key);
            let (x, y) = if a < b { (a, b) } else { (b, a) };
            edges.push(Edge {
                a: x,
                b: y,
                score: TopLists::score(key),
            });
        }
    }
    drop(top);
    edges.par_sort_unstable();
    edges.dedup_by_key(|e| (e.a, e.b));
    CandidateSet {
        edges,
        pairs_scanned,
        feasible_directed: feasible * 2,
        best_k_half_sum,
    }
}

/// Every feasible pair of the region with its score, no truncation (for quality checks on small
/// inputs: the number of pairs grows with the square of the users).
pub fn feasible_graph(region: &CompiledRegion, weights: &Weights) -> Vec<Edge> {
    let weights = weights.normalised();
    let layout = scan::Layout::new(region);
    let n = region.len();
    let mut edges: Vec<Edge> = (0..n.div_ceil(scan::TILE))
        .into_par_iter()
        .flat_map_iter(|t| {
            let mut own = Vec::new();
            let rows = t * scan::TILE..((t + 1) * scan::TILE).min(n);
            scan::tiles(region, rows, |tile| {
                scan::scan_tile::<false>(region, &layout, tile, &weights, &mut |a, bs, ss| {
                    own.extend(bs.iter().zip(ss).map(|(&b, &score)| Edge { a, b, score }));
                });
            });
            own
        })
        .collect();
    edges.par_sort_unstable();
    edges
}
