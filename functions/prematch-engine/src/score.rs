//! The mutual pair score: each side's fit to the other's preferences, combined by harmonic mean.

use serde::{Deserialize, Serialize};

use crate::compile::{CompiledRegion, Profile, ScoreInfo};

/// Scores are fixed-point integers: `SCORE_SCALE` is 1.0. Integers make every comparison exact
/// and every result independent of thread count.
pub const SCORE_SCALE: u32 = 1_000_000;

/// Relative weights of the four parts of a one-sided score (any non-negative numbers; they are
/// normalised to sum to 1, and all-zero or invalid weights fall back to the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    /// Shared interests relative to the seeker's interests.
    pub interests: f64,
    /// Overlapping time relative to the seeker's availability.
    pub time: f64,
    /// Shared languages relative to the seeker's languages.
    pub languages: f64,
    /// How close the other's age is to the middle of the seeker's range.
    pub age: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            interests: 0.4,
            time: 0.3,
            languages: 0.1,
            age: 0.2,
        }
    }
}

impl Weights {
    /// The weights scaled to sum to 1 (defaults when they cannot be).
    pub fn normalised(&self) -> Weights {
        let parts = [self.interests, self.time, self.languages, self.age];
        let sum: f64 = parts.iter().sum();
        if parts.iter().any(|w| !w.is_finite() || *w < 0.0) || sum <= 0.0 || !sum.is_finite() {
            return Weights::default().normalised();
        }
        Weights {
            interests: self.interests / sum,
            time: self.time / sum,
            languages: self.languages / sum,
            age: self.age / sum,
        }
    }
}

/// The four parts of one side's score, each in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SideScore {
    /// |I_a ∩ I_b| / |I_a| (0 when the seeker lists no interests).
    pub interests: f64,
    /// overlap / availability of the seeker.
    pub time: f64,
    /// |L_a ∩ L_b| / |L_a|.
    pub languages: f64,
    /// 1 − |2·age_b − (min+max)| / (max − min + 2), or 1 without a two-sided range.
    pub age: f64,
}

impl SideScore {
    /// The weighted sum, in [0, 1].
    #[inline]
    pub fn total(&self, w: &Weights) -> f64 {
        w.interests * self.interests
            + w.time * self.time
            + w.languages * self.languages
            + w.age * self.age
    }
}

/// Harmonic mean of the two one-sided scores: near 0 when either side is near 0.
#[inline]
pub fn harmonic_mean(x: f64, y: f64) -> f64 {
    let sum = x + y;
    if sum <= 0.0 {
        0.0
    } else {
        2.0 * x * y / sum
    }
}

/// Fixed-point form of a score in [0, 1].
#[inline]
pub fn quantise(score: f64) -> u32 {
    // Through i32: the same value for everything in [0, SCORE_SCALE] (and 0 for NaN, as `as u32`
    // gives), but a signed conversion is one instruction in vector code and an unsigned one is not.
    (score.clamp(0.0, 1.0) * f64::from(SCORE_SCALE)).round() as i32 as u32
}

#[inline]
fn common(x: &[u64], y: &[u64]) -> u32 {
    x.iter().zip(y).map(|(a, b)| (a & b).count_ones()).sum()
}

/// Age closeness of `age` to the seeker's range `[lo, hi]` (open ends score 1); the reference
/// form of what `ScoreInfo` precomputes.
#[cfg(test)]
fn age_closeness(lo: u8, hi: u8, age: u8) -> f64 {
    if lo == 0 || hi == u8::MAX {
        return 1.0;
    }
    let span = f64::from(hi) - f64::from(lo) + 2.0;
    let off = (2.0 * f64::from(age) - f64::from(lo) - f64::from(hi)).abs();
    (1.0 - off / span).clamp(0.0, 1.0)
}

/// One side's score parts from the pair's shared counts: how well `b` fits `a`'s preferences.
#[inline]
pub(crate) fn side_parts(
    info: &ScoreInfo,
    age_b: u8,
    common_interests: u32,
    common_langs: u32,
    overlap_cells: u32,
) -> SideScore {
    side_parts_f64(
        info,
        f64::from(age_b),
        f64::from(common_interests),
        f64::from(common_langs),
        f64::from(overlap_cells),
    )
}

/// [`side_parts`] with the counts already converted (exactly, they are small integers) to `f64`,
/// for the batched scorer, whose loop is then arithmetic only and vectorises. One formula for both.
#[inline(always)]
pub(crate) fn side_parts_f64(
    info: &ScoreInfo,
    age_b: f64,
    common_interests: f64,
    common_langs: f64,
    overlap_cells: f64,
) -> SideScore {
    SideScore {
        interests: common_interests * info.inv_interests,
        time: (overlap_cells * info.inv_cells).min(1.0),
        languages: (common_langs * info.inv_langs).min(1.0),
        age: (1.0 - (2.0 * age_b - info.age_sum).abs() * info.inv_span).max(0.0),
    }
}

/// One side's score parts: how well `b` fits `a`'s preferences.
pub fn side(region: &CompiledRegion, a: u32, b: u32) -> SideScore {
    let (a, b) = (a as usize, b as usize);
    side_parts(
        &region.score_info(a),
        region.profiles[b].age,
        common(region.interests_of(a), region.interests_of(b)),
        common(region.langs_of(a), region.langs_of(b)),
        overlap_cells(region, a, b),
    )
}

/// The fixed-point mutual score of a pair that passed the hard rules. The shared counts are
/// symmetric, so they are counted once for both sides.
#[inline]
pub(crate) fn mutual(
    region: &CompiledRegion,
    a: usize,
    b: usize,
    overlap_cells: u32,
    w: &Weights,
) -> u32 {
    let seeker = Seeker::new(region, a);
    seeker.mutual(region, b, &region.profiles[b], overlap_cells, w)
}

/// One user's side of every pair it is scored in, looked up once per scan row.
pub(crate) struct Seeker<'r> {
    pub profile: Profile,
    pub info: ScoreInfo,
    pub interests: &'r [u64],
    pub langs: &'r [u64],
}

impl<'r> Seeker<'r> {
    #[inline]
    pub(crate) fn new(region: &'r CompiledRegion, a: usize) -> Seeker<'r> {
        Seeker {
            profile: region.profiles[a],
            info: region.score_info(a),
            interests: region.interests_of(a),
            langs: region.langs_of(a),
        }
    }

    /// The fixed-point mutual score with `b` (profile `pb`), given their overlap.
    #[inline(always)]
    pub(crate) fn mutual(
        &self,
        region: &CompiledRegion,
        b: usize,
        pb: &Profile,
        overlap_cells: u32,
        w: &Weights,
    ) -> u32 {
        let ci = common(self.interests, region.interests_of(b));
        let cl = if region.lang_words == 1 {
            (self.profile.lang & pb.lang).count_ones()
        } else {
            common(self.langs, region.langs_of(b))
        };
        let ib = region.score_info_of(pb, region.n_langs[b]);
        let sa = side_parts(&self.info, pb.age, ci, cl, overlap_cells).total(w);
        let sb = side_parts(&ib, self.profile.age, ci, cl, overlap_cells).total(w);
        quantise(harmonic_mean(sa, sb))
    }
}

/// Overlapping cells of two users' week masks.
pub(crate) fn overlap_cells(region: &CompiledRegion, a: usize, b: usize) -> u32 {
    let (x, y) = (&region.profiles[a].avail, &region.profiles[b].avail);
    x.iter().zip(y).map(|(p, q)| (p & q).count_ones()).sum()
}

/// Checks every hard rule of DESIGN §3.1 for a pair of compiled users (both are active and
/// unique by construction), the slow, obvious way. The kernel must agree with it.
pub fn feasible(region: &CompiledRegion, a: u32, b: u32) -> bool {
    let (a, b) = (a as usize, b as usize);
    if a == b || a >= region.len() || b >= region.len() {
        return false;
    }
    let (pa, pb) = (&region.profiles[a], &region.profiles[b]);
    region.cols.region[a] == region.cols.region[b]
        && region.genders_accept(a, b)
        && pa.age_min <= pb.age
        && pb.age <= pa.age_max
        && pb.age_min <= pa.age
        && pa.age <= pb.age_max
        && common(region.langs_of(a), region.langs_of(b)) > 0
        && overlap_cells(region, a, b) >= region.min_overlap_cells
        && !region.excluded(a, b as u32)
}

/// The mutual score of a pair, or `None` when a hard rule forbids it.
pub fn score_pair(region: &CompiledRegion, a: u32, b: u32, weights: &Weights) -> Option<u32> {
    feasible(region, a, b).then(|| {
        let ov = overlap_cells(region, a as usize, b as usize);
        mutual(region, a as usize, b as usize, ov, &weights.normalised())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harmonic_mean_punishes_one_sided_interest() {
        assert_eq!(harmonic_mean(0.9, 0.0), 0.0);
        assert!(harmonic_mean(0.9, 0.1) < 0.2);
        assert!((harmonic_mean(0.6, 0.6) - 0.6).abs() < 1e-12);
        assert_eq!(harmonic_mean(0.3, 0.7), harmonic_mean(0.7, 0.3));
    }

    #[test]
    fn age_closeness_is_one_in_the_middle_and_positive_at_the_edges() {
        assert_eq!(age_closeness(30, 40, 35), 1.0);
        assert!((age_closeness(30, 40, 30) - 2.0 / 12.0).abs() < 1e-12);
        assert_eq!(age_closeness(0, 40, 39), 1.0);
    }

    #[test]
    fn weights_normalise_and_fall_back_when_invalid() {
        let w = Weights {
            interests: 2.0,
            time: 2.0,
            languages: 0.0,
            age: 0.0,
        }
        .normalised();
        assert_eq!((w.interests, w.time), (0.5, 0.5));
        let bad = Weights {
            interests: -1.0,
            ..Weights::default()
        };
        assert_eq!(bad.normalised(), Weights::default().normalised());
    }

    #[test]
    fn quantise_clamps_to_the_unit_interval() {
        assert_eq!(quantise(1.5), SCORE_SCALE);
        assert_eq!(quantise(-0.1), 0);
        assert_eq!(quantise(0.5), SCORE_SCALE / 2);
    }
}
