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

/// The bit-level filter: the other side's age range, a shared language word, enough overlap.
/// Branch-free so unpredictable outcomes cost nothing; returns whether it passes and the overlap.
#[inline(always)]
fn kernel(pa: &Profile, pb: &Profile, min_cells: u32, lang_fast: bool) -> (bool, u32) {
    // Written out word by word: six scalar POPCNTs are cheaper than a vector popcount emulation.
    let ov = (pa.avail[0] & pb.avail[0]).count_ones()
        + (pa.avail[1] & pb.avail[1]).count_ones()
        + (pa.avail[2] & pb.avail[2]).count_ones()
        + (pa.avail[3] & pb.avail[3]).count_ones()
        + (pa.avail[4] & pb.avail[4]).count_ones()
        + (pa.avail[5] & pb.avail[5]).count_ones();
    let age_ok = (pb.age_min <= pa.age) & (pa.age <= pb.age_max);
    let lang_ok = !lang_fast | ((pa.lang & pb.lang) != 0);
    (age_ok & lang_ok & (ov >= min_cells), ov)
}

/// Rows of a scan window filtered at a time: the survivors' offsets fit on the stack.
const BATCH: usize = 256;

/// Visits the feasible partners `b > a` of user `a` (so each unordered pair once), calling
/// `sink(b, score)`; returns the pairs scanned.
pub(crate) fn scan_user(
    region: &CompiledRegion,
    a: usize,
    weights: &Weights,
    sink: impl FnMut(u32, u32),
) -> u64 {
    scan_partners::<false>(region, a, weights, sink)
}

/// Visits the feasible partners of `a`: those with a larger index only (`ALL = false`), or every
/// one (`ALL = true`, for [`crate::owner_candidates`], where each user's list is built by its own
/// shard). Returns the pairs scanned.
///
/// Two passes per batch of the window: the kernel writes the survivors' offsets without a branch
/// (so a 16% pass rate costs no mispredictions), then only the survivors are checked against the
/// rare rules and scored, in a loop whose loads do not wait on each other.
pub(crate) fn scan_partners<const ALL: bool>(
    region: &CompiledRegion,
    a: usize,
    weights: &Weights,
    mut sink: impl FnMut(u32, u32),
) -> u64 {
    let seeker = score::Seeker::new(region, a);
    let pa = seeker.profile;
    let lang_fast = region.lang_words == 1;
    let min_cells = region.min_overlap_cells;
    let mut scanned = 0u64;
    let own = region.group_of[a];
    let group = &region.groups[own as usize];
    let mut pass_off = [0u32; BATCH];
    let mut pass_ov = [0u32; BATCH];
    for &h in &group.compatible {
        if !ALL && h < own {
            continue;
        }
        let g = &region.groups[h as usize];
        let members = &region.profiles[g.start as usize..g.end as usize];
        let mut lo = members.partition_point(|p| p.age < pa.age_min);
        let hi = members.partition_point(|p| p.age <= pa.age_max);
        if !ALL && h == own {
            lo = lo.max(a + 1 - g.start as usize);
        }
        if lo >= hi {
            continue;
        }
        scanned += (hi - lo) as u64;
        let mut base = lo;
        while base < hi {
            let batch = &members[base..hi.min(base + BATCH)];
            let mut m = 0usize;
            for (off, pb) in batch.iter().enumerate() {
                let (pass, ov) = kernel(&pa, pb, min_cells, lang_fast);
                pass_off[m] = off as u32;
                pass_ov[m] = ov;
                m += usize::from(pass);
            }
            for (&off, &ov) in pass_off[..m].iter().zip(&pass_ov[..m]) {
                let pb = &batch[off as usize];
                let b = g.start as usize + base + off as usize;
                if ALL && b == a {
                    continue;
                }
                if (pa.flags | pb.flags) != 0 && !score::passes_slow_rules(region, a, b) {
                    continue;
                }
                if !lang_fast
                    && !seeker
                        .langs
                        .iter()
                        .zip(region.langs_of(b))
                        .any(|(x, y)| x & y != 0)
                {
                    continue;
                }
                sink(b as u32, seeker.mutual(region, b, pb, ov, weights));
            }
            base += BATCH;
        }
    }
    scanned
}

/// Every user's best `c` partners, as flat binary min-heaps of keys (score << 32 | !partner), so
/// the weakest kept partner is at the root and a candidate is one comparison away from rejection.
struct TopLists {
    c: usize,
    keys: Vec<u64>,
    len: Vec<u32>,
    /// The root key of each full heap (0 while not full): a compact array that stays in cache, so
    /// most offers are rejected without touching the heap itself.
    floor: Vec<u64>,
}

impl TopLists {
    fn new(n: usize, c: usize) -> TopLists {
        TopLists {
            c,
            keys: vec![0; n * c],
            len: vec![0; n],
            floor: vec![0; n],
        }
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

    #[inline(always)]
    fn offer(&mut self, owner: usize, key: u64) {
        if key > self.floor[owner] {
            self.insert(owner, key);
        }
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
                self.floor[owner] = heap[0];
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
            self.floor[owner] = heap[0];
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
/// night. Memory: one n × `per_user` list per worker thread (at most 4).
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
    let parts: Vec<(TopLists, u64, u64)> = (0..workers)
        .into_par_iter()
        .map(|w| {
            let mut top = TopLists::new(n, c);
            let (mut scanned, mut feasible) = (0u64, 0u64);
            for &c0 in chunks.iter().skip(w).step_by(workers) {
                for a in c0..(c0 + CHUNK).min(end) {
                    scanned += scan_user(region, a as usize, &weights, |b, s| {
                        feasible += 1;
                        top.offer(a as usize, TopLists::key(b, s));
                        top.offer(b as usize, TopLists::key(a, s));
                    });
                }
            }
            (top, scanned, feasible)
        })
        .collect();
    let mut parts = parts.into_iter();
    let Some((mut top, mut pairs_scanned, mut feasible)) = parts.next() else {
        return CandidateSet::default();
    };
    for (other, scanned, f) in parts {
        pairs_scanned += scanned;
        feasible += f;
        for owner in 0..n {
            for &key in other.list(owner) {
                top.offer(owner, key);
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
    let mut edges: Vec<Edge> = (0..region.len() as u32)
        .into_par_iter()
        .flat_map_iter(|a| {
            let mut own = Vec::new();
            scan_user(region, a as usize, &weights, |b, s| {
                own.push(Edge { a, b, score: s });
            });
            own
        })
        .collect();
    edges.par_sort_unstable();
    edges
}
