//! Why a pair was suggested: their shared times (in each one's local time), interests, languages.

use chrono::{DateTime, Duration, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::compile::{CompiledRegion, CELL_MINUTES, WEEK_CELLS};
use crate::model::Weekday;

/// A window of time as one user reads it: local day and wall-clock start and end
/// (an end earlier than the start is on the next day, as in the records).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalWindow {
    /// Local day the window starts on.
    pub day: Weekday,
    /// Local start, "HH:MM".
    pub start: String,
    /// Local end, "HH:MM".
    pub end: String,
}

/// One contiguous stretch of time both users are free, as each of them reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedTime {
    /// Length in minutes.
    pub minutes: u32,
    /// The window in the first user's local time.
    pub a: LocalWindow,
    /// The window in the second user's local time.
    pub b: LocalWindow,
}

/// The explanation stored with every suggestion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reasons {
    /// Total overlapping minutes in the run week.
    pub overlap_minutes: u32,
    /// The overlapping windows, Monday (UTC) first.
    pub times: Vec<SharedTime>,
    /// Interests both list, in the first user's order.
    pub interests: Vec<String>,
    /// Languages both speak, in the first user's order.
    pub languages: Vec<String>,
}

fn local(tz: Tz, start: DateTime<Utc>, end: DateTime<Utc>) -> LocalWindow {
    let s = start.with_timezone(&tz);
    let e = end.with_timezone(&tz);
    LocalWindow {
        day: Weekday::from_chrono(chrono::Datelike::weekday(&s)),
        start: format!("{:02}:{:02}", s.hour(), s.minute()),
        end: format!("{:02}:{:02}", e.hour(), e.minute()),
    }
}

/// Maximal runs of set cells in a cyclic week mask, as (first cell, length); a run that wraps from
/// Sunday night into Monday is one run starting on Sunday.
pub(crate) fn runs(mask: &[u64]) -> Vec<(u32, u32)> {
    let bit = |c: u32| mask[(c / 64) as usize] >> (c % 64) & 1 == 1;
    let total: u32 = mask.iter().map(|w| w.count_ones()).sum();
    if total == 0 {
        return Vec::new();
    }
    if total == WEEK_CELLS {
        return vec![(0, WEEK_CELLS)];
    }
    // Start scanning just after a clear cell so no run is split by the wrap.
    let origin = (0..WEEK_CELLS).find(|&c| !bit(c)).unwrap_or(0);
    let mut out = Vec::new();
    let mut current: Option<(u32, u32)> = None;
    for step in 1..=WEEK_CELLS {
        let c = (origin + step) % WEEK_CELLS;
        if bit(c) {
            current = Some(match current {
                Some((s, l)) => (s, l + 1),
                None => (c, 1),
            });
        } else if let Some(run) = current.take() {
            out.push(run);
        }
    }
    out.extend(current);
    out.sort_unstable();
    out
}

/// The names of the ids in `list` (one user's, in record order) whose bit is set in `other`
/// (the other user's bitset).
fn shared(list: &[u32], other: &[u64], names: &[String]) -> Vec<String> {
    list.iter()
        .filter(|&&id| other[(id / 64) as usize] >> (id % 64) & 1 == 1)
        .map(|&id| names[id as usize].clone())
        .collect()
}

/// The reasons for suggesting users `a` and `b` (user indices) to each other.
pub fn reasons(region: &CompiledRegion, a: u32, b: u32) -> Reasons {
    let (ma, mb) = (region.week_mask(a), region.week_mask(b));
    let both: Vec<u64> = ma.iter().zip(mb).map(|(x, y)| x & y).collect();
    let week = region.week_start_utc();
    let times: Vec<SharedTime> = runs(&both)
        .into_iter()
        .map(|(first, len)| {
            let start = week + Duration::minutes(i64::from(first * CELL_MINUTES));
            let end = start + Duration::minutes(i64::from(len * CELL_MINUTES));
            SharedTime {
                minutes: len * CELL_MINUTES,
                a: local(region.timezone(a), start, end),
                b: local(region.timezone(b), start, end),
            }
        })
        .collect();
    Reasons {
        overlap_minutes: times.iter().map(|t| t.minutes).sum(),
        times,
        interests: shared(
            region.cols.interest_list.of(a as usize),
            region.interests_of(b as usize),
            &region.cols.interest_names,
        ),
        languages: shared(
            region.cols.lang_list.of(a as usize),
            region.langs_of(b as usize),
            &region.cols.language_names,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_of(cells: &[u32]) -> Vec<u64> {
        let mut m = vec![0u64; WEEK_CELLS.div_ceil(64) as usize];
        for &c in cells {
            m[(c / 64) as usize] |= 1 << (c % 64);
        }
        m
    }

    #[test]
    fn runs_split_at_gaps_and_join_across_the_week_wrap() {
        let last = WEEK_CELLS - 1;
        assert_eq!(runs(&mask_of(&[3, 4, 5, 9])), vec![(3, 3), (9, 1)]);
        assert_eq!(
            runs(&mask_of(&[last - 1, last, 0, 1, 7])),
            vec![(7, 1), (last - 1, 4)]
        );
        assert!(runs(&mask_of(&[])).is_empty());
    }
}
