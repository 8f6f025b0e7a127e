//! The candidate scan's inner loops: a word-major copy of the profiles and a tiled kernel over it.
//!
//! [`Layout`] holds, per user index, each 64-bit word of the week mask in its own array (word w
//! of user i at `avail[w * stride + i]`), and the ages, language word and scoring counts as
//! separate arrays, so the kernel tests [`LANES`] partners at once with straight-line vector code
//! (AND, popcount, compares) instead of one 64-byte profile at a time.
//!
//! [`scan_tile`] visits the partners of a *tile* of seekers of one blocking group (adjacent in
//! index, so adjacent in age: their age windows nearly coincide) block by block: each block of
//! partners is read from memory once and tested against every seeker of the tile while it is in
//! L1, instead of each seeker streaming its whole window (at a million users a window is about
//! 9 MB, far beyond L2). Every seeker still visits exactly its own window, so the pairs, their
//! scores and the counters are those of the one-seeker-at-a-time scan; only the order in which
//! pairs are offered to the top-C lists changes, and those lists keep the best C under one total
//! order, which does not depend on the order of the offers.

use std::ops::Range;

use crate::compile::{CompiledRegion, ScoreInfo, FLAG_EXCLUSIONS, FLAG_GENDER_BY_NAME, MASK_WORDS};
use crate::score::{self, Weights};

/// Partners tested per kernel call (one bit each in the survivor mask).
pub(crate) const LANES: usize = 64;

/// Seekers scanned together (a tile never spans two blocking groups).
pub(crate) const TILE: usize = 32;

/// Word-major copy of the scan-relevant parts of every profile, padded by [`LANES`] entries that
/// pass no test, so a kernel call may read a whole block past the last user.
pub(crate) struct Layout {
    stride: usize,
    avail: Vec<u64>,
    lang: Vec<u64>,
    age: Vec<u8>,
    age_min: Vec<u8>,
    age_max: Vec<u8>,
    flags: Vec<u8>,
    /// Whether any user's gender (or a sought one) must be checked by name: usually none, and
    /// then the partners' flags need not be read at all.
    by_name: bool,
    /// What scoring reads of a partner, packed so a survivor costs one load here.
    info: Vec<PartnerInfo>,
}

/// A partner's side of the score (as in its profile): one 8-byte load per scored pair.
#[derive(Clone, Copy, Default)]
struct PartnerInfo {
    age: u8,
    age_min: u8,
    age_max: u8,
    n_langs: u8,
    n_interests: u16,
    avail_cells: u16,
}

impl Layout {
    /// Builds the layout of a compiled region (about 64 bytes a user, like the profiles).
    pub(crate) fn new(region: &CompiledRegion) -> Layout {
        let n = region.len();
        let stride = n.div_ceil(LANES) * LANES + LANES;
        let mut l = Layout {
            stride,
            avail: vec![0; MASK_WORDS * stride],
            lang: vec![0; stride],
            age: vec![0; stride],
            // Padding rows accept no age at all.
            age_min: vec![u8::MAX; stride],
            age_max: vec![0; stride],
            flags: vec![0; stride],
            by_name: false,
            info: vec![PartnerInfo::default(); stride],
        };
        for (i, p) in region.profiles.iter().enumerate() {
            for (w, &word) in p.avail.iter().enumerate() {
                l.avail[w * stride + i] = word;
            }
            l.lang[i] = p.lang;
            l.age[i] = p.age;
            l.age_min[i] = p.age_min;
            l.age_max[i] = p.age_max;
            l.flags[i] = p.flags;
            l.by_name |= p.flags & FLAG_GENDER_BY_NAME != 0;
            l.info[i] = PartnerInfo {
                age: p.age,
                age_min: p.age_min,
                age_max: p.age_max,
                n_langs: region.n_langs[i],
                n_interests: p.n_interests,
                avail_cells: p.avail_cells,
            };
        }
        l
    }

    /// The age of user `i` (for the window's binary searches).
    #[inline]
    fn age(&self, i: usize) -> u8 {
        self.age[i]
    }
}

/// What the kernel needs of a seeker, by value.
#[derive(Clone, Copy)]
struct Key {
    avail: [u64; MASK_WORDS],
    lang: u64,
    age: u8,
}

/// Survivor bits of the block `base..base + LANES` for one seeker: the partner's age range holds
/// the seeker's age, they share a language word (unless `check_lang` is false: more than one
/// language word, checked later), and they overlap by at least `min_cells`. Also writes each
/// lane's overlap. Straight-line over the block so it compiles to vector code.
#[inline(always)]
fn block_mask(
    l: &Layout,
    base: usize,
    k: &Key,
    min_cells: u32,
    check_lang: bool,
    ov_out: &mut [u16; LANES],
) -> u64 {
    let s = l.stride;
    let w0 = &l.avail[base..base + LANES];
    let w1 = &l.avail[s + base..s + base + LANES];
    let w2 = &l.avail[2 * s + base..2 * s + base + LANES];
    let w3 = &l.avail[3 * s + base..3 * s + base + LANES];
    let w4 = &l.avail[4 * s + base..4 * s + base + LANES];
    let w5 = &l.avail[5 * s + base..5 * s + base + LANES];
    let lang = &l.lang[base..base + LANES];
    let amin = &l.age_min[base..base + LANES];
    let amax = &l.age_max[base..base + LANES];
    let no_lang = !check_lang;
    let mut pass = [0u8; LANES];
    for j in 0..LANES {
        // Summed in 64-bit lanes, as the vector popcount produces them (no narrowing per word).
        let ov = u64::from((k.avail[0] & w0[j]).count_ones())
            + u64::from((k.avail[1] & w1[j]).count_ones())
            + u64::from((k.avail[2] & w2[j]).count_ones())
            + u64::from((k.avail[3] & w3[j]).count_ones())
            + u64::from((k.avail[4] & w4[j]).count_ones())
            + u64::from((k.avail[5] & w5[j]).count_ones());
        let ok = (ov >= u64::from(min_cells))
            & (amin[j] <= k.age)
            & (k.age <= amax[j])
            & (no_lang | ((k.lang & lang[j]) != 0));
        pass[j] = u8::from(ok);
        ov_out[j] = ov as u16;
    }
    // Eight 0/1 bytes to eight bits: the multiply moves byte b's low bit to bit 56 + b, and no two
    // partial products overlap, so nothing carries.
    let mut m = 0u64;
    for (c, bytes) in pass.chunks_exact(8).enumerate() {
        let mut x = [0u8; 8];
        x.copy_from_slice(bytes);
        let x = u64::from_le_bytes(x);
        m |= (x.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * c);
    }
    m
}

/// Bits `lo..hi` of a block (0 ≤ lo < hi ≤ 64).
#[inline(always)]
fn range_bits(lo: usize, hi: usize) -> u64 {
    let upto = if hi >= 64 { u64::MAX } else { (1u64 << hi) - 1 };
    upto & !((1u64 << lo) - 1)
}

/// Set bits in common of two equally long bitsets; `N` > 0 fixes the length so the loop unrolls.
#[inline(always)]
fn common<const N: usize>(x: &[u64], y: &[u64]) -> u32 {
    if N > 0 {
        let mut c = 0;
        for i in 0..N {
            c += (x[i] & y[i]).count_ones();
        }
        c
    } else {
        x.iter().zip(y).map(|(a, b)| (a & b).count_ones()).sum()
    }
}

/// One seeker of a tile: its index, kernel key, scoring side and window in the current group.
struct TileSeeker<'r> {
    a: usize,
    age: u8,
    key: Key,
    flags: u8,
    info: ScoreInfo,
    interests: &'r [u64],
    langs: &'r [u64],
    excl: &'r [u32],
    lo: usize,
    hi: usize,
}

/// The scoring side of partner `b`, exactly as [`CompiledRegion::score_info_of`] computes it.
#[inline(always)]
fn partner_info(region: &CompiledRegion, p: PartnerInfo) -> ScoreInfo {
    let (age_min, age_max) = (p.age_min, p.age_max);
    let open = age_min == 0 || age_max == u8::MAX;
    let span = usize::from(age_max.wrapping_sub(age_min)) + 2;
    ScoreInfo {
        inv_interests: region.recip[usize::from(p.n_interests)],
        inv_cells: region.recip[usize::from(p.avail_cells)],
        inv_langs: region.recip[usize::from(p.n_langs.max(1))],
        age_sum: f64::from(age_min) + f64::from(age_max),
        inv_span: if open { 0.0 } else { region.recip[span] },
    }
}

/// Scans the seekers `tile` (user indices of one blocking group, at most [`TILE`]) against their
/// partners, calling `sink(a, partners, scores)` with the feasible pairs, a batch at a time (the
/// partners and their scores, in the same order): partners with a larger index only
/// (`ALL = false`, so each unordered pair once over all seekers) or every partner (`ALL = true`).
/// Returns the pairs scanned (each seeker's window lengths, as the one-seeker scan counts them).
pub(crate) fn scan_tile<const ALL: bool>(
    region: &CompiledRegion,
    layout: &Layout,
    tile: Range<usize>,
    weights: &Weights,
    sink: &mut impl FnMut(u32, &[u32], &[u32]),
) -> u64 {
    match region.interest_words {
        1 => scan_tile_n::<ALL, 1>(region, layout, tile, weights, sink),
        2 => scan_tile_n::<ALL, 2>(region, layout, tile, weights, sink),
        3 => scan_tile_n::<ALL, 3>(region, layout, tile, weights, sink),
        4 => scan_tile_n::<ALL, 4>(region, layout, tile, weights, sink),
        _ => scan_tile_n::<ALL, 0>(region, layout, tile, weights, sink),
    }
}

fn scan_tile_n<const ALL: bool, const IW: usize>(
    region: &CompiledRegion,
    layout: &Layout,
    tile: Range<usize>,
    weights: &Weights,
    sink: &mut impl FnMut(u32, &[u32], &[u32]),
) -> u64 {
    if tile.is_empty() {
        return 0;
    }
    let own = region.group_of[tile.start];
    let lang_fast = region.lang_words == 1;
    let min_cells = region.min_overlap_cells;
    let mut seekers: Vec<TileSeeker<'_>> = tile
        .clone()
        .map(|a| {
            let p = &region.profiles[a];
            TileSeeker {
                a,
                age: p.age,
                key: Key {
                    avail: p.avail,
                    lang: p.lang,
                    age: p.age,
                },
                flags: p.flags,
                info: region.score_info(a),
                interests: region.interests_of(a),
                langs: region.langs_of(a),
                excl: region.exclusions_of(a),
                lo: 0,
                hi: 0,
            }
        })
        .collect();
    let mut scanned = 0u64;
    let mut ov = [0u16; LANES];
    // Each seeker's feasible partners and overlaps, scored BATCH at a time.
    let mut pend_b = [[0u32; BATCH]; TILE];
    let mut pend_ov = [[0u16; BATCH]; TILE];
    let mut pend = [0usize; TILE];
    let mut scratch = Scratch::new();
    for &h in &region.groups[own as usize].compatible {
        if !ALL && h < own {
            continue;
        }
        let g = &region.groups[h as usize];
        let (gs, ge) = (g.start as usize, g.end as usize);
        let (mut lo_all, mut hi_all) = (usize::MAX, 0usize);
        for s in seekers.iter_mut() {
            let p = &region.profiles[s.a];
            let first = partition(layout, gs, ge, |age| age < p.age_min);
            let mut lo = first;
            let hi = partition(layout, first, ge, |age| age <= p.age_max);
            if !ALL && h == own {
                lo = lo.max(s.a + 1);
            }
            if lo >= hi {
                (s.lo, s.hi) = (0, 0);
                continue;
            }
            scanned += (hi - lo) as u64;
            (s.lo, s.hi) = (lo, hi);
            lo_all = lo_all.min(lo);
            hi_all = hi_all.max(hi);
        }
        if lo_all >= hi_all {
            continue;
        }
        let mut base = lo_all - lo_all % LANES;
        while base < hi_all {
            let end = base + LANES;
            for (t, s) in seekers.iter().enumerate() {
                if s.hi <= base || s.lo >= end {
                    continue;
                }
                let mut m = block_mask(layout, base, &s.key, min_cells, lang_fast, &mut ov)
                    & range_bits(s.lo.max(base) - base, s.hi.min(end) - base);
                while m != 0 {
                    let j = m.trailing_zeros() as usize;
                    m &= m - 1;
                    let b = base + j;
                    if ALL && b == s.a {
                        continue;
                    }
                    // The rare rules: genders beyond the coded ones, by
                    // name; exclusions from the seeker's own sorted list (`excluded` reads only
                    // that one, so a partner's flag alone needs no look-up).
                    if layout.by_name
                        && (s.flags | layout.flags[b]) & FLAG_GENDER_BY_NAME != 0
                        && !region.genders_accept(s.a, b)
                    {
                        continue;
                    }
                    if s.flags & FLAG_EXCLUSIONS != 0 && s.excl.binary_search(&(b as u32)).is_ok() {
                        continue;
                    }
                    if !lang_fast
                        && !s
                            .langs
                            .iter()
                            .zip(region.langs_of(b))
                            .any(|(x, y)| x & y != 0)
                    {
                        continue;
                    }
                    pend_b[t][pend[t]] = b as u32;
                    pend_ov[t][pend[t]] = ov[j];
                    pend[t] += 1;
                }
                if pend[t] > BATCH - LANES {
                    score_batch::<IW>(
                        region,
                        layout,
                        s,
                        &pend_b[t][..pend[t]],
                        &pend_ov[t],
                        weights,
                        &mut scratch,
                        sink,
                    );
                    pend[t] = 0;
                }
            }
            base = end;
        }
    }
    for (t, s) in seekers.iter().enumerate() {
        score_batch::<IW>(
            region,
            layout,
            s,
            &pend_b[t][..pend[t]],
            &pend_ov[t],
            weights,
            &mut scratch,
            sink,
        );
    }
    scanned
}

/// Feasible pairs of one seeker queued for scoring.
const BATCH: usize = 256;

/// The batched scorer's columns, allocated once per tile rather than zeroed per batch.
struct Scratch {
    ci: [f64; BATCH],
    cl: [f64; BATCH],
    cells: [f64; BATCH],
    age_b: [f64; BATCH],
    inv_i: [f64; BATCH],
    inv_c: [f64; BATCH],
    inv_l: [f64; BATCH],
    age_sum: [f64; BATCH],
    inv_span: [f64; BATCH],
    q: [u32; BATCH],
}

impl Scratch {
    fn new() -> Box<Scratch> {
        Box::new(Scratch {
            ci: [0.0; BATCH],
            cl: [0.0; BATCH],
            cells: [0.0; BATCH],
            age_b: [0.0; BATCH],
            inv_i: [0.0; BATCH],
            inv_c: [0.0; BATCH],
            inv_l: [0.0; BATCH],
            age_sum: [0.0; BATCH],
            inv_span: [0.0; BATCH],
            q: [0; BATCH],
        })
    }
}

/// Scores seeker `s` with the partners `bs` (overlaps `ovs`, same order) and calls the sink. The
/// partners' inputs are gathered first, so the arithmetic runs in a loop of its own that
/// vectorises; the formula is `score::side_parts_f64` on both sides, the harmonic mean and the
/// rounding of [`score::quantise`], operation for operation, so the scores are bit-identical.
#[inline(never)]
#[allow(clippy::too_many_arguments)] // the hot loop's inputs, passed as they are
fn score_batch<const IW: usize>(
    region: &CompiledRegion,
    layout: &Layout,
    s: &TileSeeker<'_>,
    bs: &[u32],
    ovs: &[u16; BATCH],
    weights: &Weights,
    scratch: &mut Scratch,
    sink: &mut impl FnMut(u32, &[u32], &[u32]),
) {
    let n = bs.len().min(BATCH);
    let lang_fast = region.lang_words == 1;
    let Scratch {
        ci,
        cl,
        cells,
        age_b,
        inv_i,
        inv_c,
        inv_l,
        age_sum,
        inv_span,
        q,
    } = scratch;
    for k in 0..n {
        let b = bs[k] as usize;
        ci[k] = f64::from(common::<IW>(s.interests, region.interests_of(b)));
        cl[k] = f64::from(if lang_fast {
            (s.key.lang & layout.lang[b]).count_ones()
        } else {
            common::<0>(s.langs, region.langs_of(b))
        });
        cells[k] = f64::from(ovs[k]);
        let pb = layout.info[b];
        age_b[k] = f64::from(pb.age);
        let ib = partner_info(region, pb);
        inv_i[k] = ib.inv_interests;
        inv_c[k] = ib.inv_cells;
        inv_l[k] = ib.inv_langs;
        age_sum[k] = ib.age_sum;
        inv_span[k] = ib.inv_span;
    }
    let age_a = f64::from(s.age);
    for k in 0..n {
        let ib = ScoreInfo {
            inv_interests: inv_i[k],
            inv_cells: inv_c[k],
            inv_langs: inv_l[k],
            age_sum: age_sum[k],
            inv_span: inv_span[k],
        };
        let sa = score::side_parts_f64(&s.info, age_b[k], ci[k], cl[k], cells[k]).total(weights);
        let sb = score::side_parts_f64(&ib, age_a, ci[k], cl[k], cells[k]).total(weights);
        q[k] = score::quantise(score::harmonic_mean(sa, sb));
    }
    if n > 0 {
        sink(s.a as u32, &bs[..n], &q[..n]);
    }
}

/// The first index in `lo..hi` whose age fails `pred` (ages are sorted within a group).
#[inline]
fn partition(l: &Layout, lo: usize, hi: usize, pred: impl Fn(u8) -> bool) -> usize {
    let (mut lo, mut hi) = (lo, hi);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(l.age(mid)) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Calls `f` with every tile of the user indices `rows`: runs of at most [`TILE`] users of one
/// blocking group.
pub(crate) fn tiles(region: &CompiledRegion, rows: Range<usize>, mut f: impl FnMut(Range<usize>)) {
    let mut start = rows.start;
    while start < rows.end {
        let g = &region.groups[region.group_of[start] as usize];
        let end = rows.end.min(g.end as usize).min(start + TILE);
        f(start..end);
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::tests::generated_users;
    use crate::{
        candidate_edges, compile, feasible_graph, owner_candidates, score_pair, CandidateSet,
        CompiledRegion, Edge, HistoryPair, MatchConfig, NaiveDate, User, Weights,
    };

    fn run_date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 3).unwrap()
    }

    /// Recent suggestions between some users: they must be excluded before the truncation.
    fn history_of(users: &[User]) -> Vec<HistoryPair> {
        users
            .windows(7)
            .step_by(3)
            .map(|w| HistoryPair {
                a: w[0].user_id.clone(),
                b: w[6].user_id.clone(),
                date: run_date() - chrono::Days::new(3),
            })
            .collect()
    }

    /// The candidate graph the slow, obvious way: every pair a < b checked and scored by
    /// `score_pair` (the rules one by one, no blocking, no kernel), each user's best `c` partners
    /// by (score descending, partner index ascending), and the union of those lists.
    fn reference(region: &CompiledRegion, c: usize, w: &Weights) -> (Vec<Edge>, Vec<Edge>) {
        let n = region.len() as u32;
        let mut all = Vec::new();
        let mut lists: BTreeMap<u32, Vec<(u32, u32)>> = BTreeMap::new();
        for a in 0..n {
            for b in a + 1..n {
                if let Some(s) = score_pair(region, a, b, w) {
                    all.push(Edge { a, b, score: s });
                    lists.entry(a).or_default().push((s, b));
                    lists.entry(b).or_default().push((s, a));
                }
            }
        }
        let mut top = Vec::new();
        for (owner, mut list) in lists {
            list.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
            for &(s, other) in list.iter().take(c) {
                let (a, b) = (owner.min(other), owner.max(other));
                top.push(Edge { a, b, score: s });
            }
        }
        top.sort_unstable();
        top.dedup_by_key(|e| (e.a, e.b));
        (all, top)
    }

    fn assert_scan_matches_reference(region: &CompiledRegion, cfg: &MatchConfig, what: &str) {
        let n = region.len() as u32;
        let (c, k) = (cfg.candidates_per_user(), cfg.suggestions_per_user);
        let (all, top) = reference(region, c, &cfg.weights);
        assert!(top.len() > n as usize, "{what}: a dense enough region");
        assert!(all.len() > top.len(), "{what}: the truncation matters");
        // WHEN the tiled scan builds the candidate graph, whole and in uneven shards
        let whole = candidate_edges(region, 0..n, c, k, &cfg.weights);
        let cuts = [0, 1, n / 7, n / 2, n / 2 + 3, n];
        let shards: Vec<CandidateSet> = cuts
            .windows(2)
            .map(|w| candidate_edges(region, w[0]..w[1], c, k, &cfg.weights))
            .collect();
        let owners: Vec<CandidateSet> = cuts
            .windows(2)
            .map(|w| owner_candidates(region, w[0]..w[1], c, k, &cfg.weights))
            .collect();
        // THEN every feasible pair has the reference score, and the graph is the reference's:
        // same pairs, same scores, same tie order
        assert_eq!(
            feasible_graph(region, &cfg.weights),
            all,
            "{what}: feasible"
        );
        assert_eq!(whole.edges, top, "{what}: candidate_edges");
        assert_eq!(whole.feasible_directed, 2 * all.len() as u64, "{what}");
        assert_eq!(CandidateSet::merge(owners).edges, top, "{what}: owners");
        // (shards each keep a superset of their rows' lists; merged they cover the whole graph)
        let merged = CandidateSet::merge(shards);
        assert!(
            top.iter().all(|e| merged.edges.binary_search(e).is_ok()),
            "{what}: shards"
        );
        assert_eq!(merged.feasible_directed, whole.feasible_directed, "{what}");
    }

    #[test]
    fn tiled_scan_gives_exactly_the_reference_candidate_graph() {
        // GIVEN generated regions (one and several) with blocks and recent history
        for (users, regions, seed) in [(1_200, 1, 7), (1_600, 3, 11), (700, 1, 5)] {
            let users = generated_users(users, regions, seed);
            let history = history_of(&users);
            let cfg = MatchConfig::default();
            let region = compile(users, &history, run_date(), &cfg);
            assert_scan_matches_reference(&region, &cfg, &format!("seed {seed}"));
        }
    }

    #[test]
    fn tiled_scan_is_exact_whatever_the_overlap_threshold() {
        // GIVEN one region compiled with minimum overlaps of 0 to 4 cells
        let users = generated_users(900, 1, 17);
        let history = history_of(&users);
        for minutes in [0, 30, 60, 90, 120] {
            let cfg = MatchConfig {
                min_overlap_minutes: minutes,
                ..MatchConfig::default()
            };
            let region = compile(users.clone(), &history, run_date(), &cfg);
            assert_eq!(region.min_overlap_cells, minutes / 30);
            assert_scan_matches_reference(&region, &cfg, &format!("{minutes} minutes"));
        }
    }

    #[test]
    fn tiled_scan_is_exact_with_many_languages_and_interests_and_other_settings() {
        // GIVEN users with more than 64 languages and 256 interests in the region (the kernel
        // then leaves the language test to the survivors, and interests take the general path),
        // a small C and other weights and minimum overlap
        let mut users = generated_users(1_000, 1, 13);
        for (i, u) in users.iter_mut().enumerate() {
            u.languages.push(format!("l{}", i % 90));
            u.interests.push(format!("x{}", i % 300));
            u.interests.push(format!("y{}", i % 7));
        }
        let history = history_of(&users);
        let cfg = MatchConfig {
            candidates_per_user: Some(5),
            suggestions_per_user: 2,
            min_overlap_minutes: 30,
            weights: Weights {
                interests: 0.1,
                time: 0.5,
                languages: 0.3,
                age: 0.1,
            },
            ..MatchConfig::default()
        };
        let region = compile(users, &history, run_date(), &cfg);
        assert!(region.lang_words > 1 && region.interest_words > 4);
        assert_scan_matches_reference(&region, &cfg, "wide dictionaries");
    }
}
