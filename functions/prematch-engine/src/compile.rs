//! Compiles validated users into the compact, scan-ordered form the scoring kernel reads.
//!
//! Every user becomes one 64-byte [`Profile`] (UTC week mask, first language word, ages), plus
//! dictionary-coded interest and language bitsets. Users are ordered by (region, gender, seeking
//! mask, age, id) so that each blocking group is a contiguous, age-sorted range.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::model::{age_on, Slot, User};
use crate::{HistoryPair, MatchConfig};

/// Minutes per cell of the UTC week mask.
pub const CELL_MINUTES: u32 = 30;
/// Cells in one week (7 × 24 × 2).
pub const WEEK_CELLS: u32 = 7 * 24 * 60 / CELL_MINUTES;
/// 64-bit words holding one week mask.
pub const MASK_WORDS: usize = WEEK_CELLS.div_ceil(64) as usize;
const WEEK_MINUTES: i64 = 7 * 24 * 60;

/// A UTC week, one bit per [`CELL_MINUTES`] cell, Monday 00:00 UTC first.
pub type WeekMask = [u64; MASK_WORDS];

/// Profile flag: the user has blocked pairs or recent partners to exclude.
pub(crate) const FLAG_EXCLUSIONS: u8 = 1;
/// Profile flag: the user's gender (or a sought one) is beyond the 63 coded genders; check by name.
pub(crate) const FLAG_GENDER_BY_NAME: u8 = 2;

/// The hot part of a compiled user: everything the pruning kernel reads, in one cache line.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
pub(crate) struct Profile {
    pub avail: WeekMask,
    pub lang: u64,
    pub age: u8,
    pub age_min: u8,
    pub age_max: u8,
    pub flags: u8,
    pub avail_cells: u16,
    pub n_interests: u16,
}

/// The seeker's side of the one-sided score, precomputed: `s(a→b)` is
/// `wi·ci·inv_interests + wt·ov·inv_cells + wl·cl·inv_langs + wg·(1 − |2·age_b − age_sum|·inv_span)`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ScoreInfo {
    pub inv_interests: f64,
    pub inv_cells: f64,
    pub inv_langs: f64,
    pub age_sum: f64,
    /// 0 when the range is open (the age part is then 1).
    pub inv_span: f64,
}

/// A blocking group: users of one region with one gender and one seeking mask, sorted by age.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub start: u32,
    pub end: u32,
    /// Groups whose members may pair with this group's (mutual gender acceptance, same region).
    pub compatible: Vec<u32>,
}

/// Users of one region (or several), compiled for scoring. Indices into it are "user indices".
#[derive(Debug)]
pub struct CompiledRegion {
    pub(crate) run_date: NaiveDate,
    pub(crate) week_start_utc: DateTime<Utc>,
    /// The parsed records, in index order: kept by [`compile`], empty after [`compile_compact`].
    pub(crate) users: Vec<User>,
    /// What suggestions, reasons and the exact rules need of each user, in either case.
    pub(crate) cols: Columns,
    pub(crate) profiles: Vec<Profile>,
    pub(crate) groups: Vec<Group>,
    pub(crate) group_of: Vec<u32>,
    pub(crate) interest_words: usize,
    pub(crate) interests: Vec<u64>,
    pub(crate) lang_words: usize,
    pub(crate) langs: Vec<u64>,
    /// Languages listed per user (capped at 255): the one-sided score divides by it.
    pub(crate) n_langs: Vec<u8>,
    /// `recip[x]` = 1/x (0 for x = 0) for every count a score divides by (interests, cells,
    /// languages, age spans), so scoring a pair needs no division and stays bit-identical.
    pub(crate) recip: Vec<f64>,
    pub(crate) excl_offsets: Vec<u32>,
    pub(crate) excl: Vec<u32>,
    pub(crate) min_overlap_cells: u32,
    pub(crate) inactive: usize,
    pub(crate) duplicates: usize,
    pub(crate) input_users: usize,
}

/// A list per user, flattened: user i's items are `items[end[i-1]..end[i]]`.
#[derive(Debug, Default)]
pub(crate) struct Lists {
    items: Vec<u32>,
    end: Vec<u32>,
}

impl Lists {
    fn push(&mut self, list: impl IntoIterator<Item = u32>) {
        self.items.extend(list);
        self.end.push(self.items.len() as u32);
    }
    pub(crate) fn of(&self, i: usize) -> &[u32] {
        let start = if i == 0 { 0 } else { self.end[i - 1] as usize };
        &self.items[start..self.end[i] as usize]
    }
}

/// The parts of the records that outlive compilation, as ids and flat arrays (about 70 bytes a
/// user instead of about 1.2 KB of parsed strings).
#[derive(Debug, Default)]
pub(crate) struct Columns {
    ids: String,
    id_end: Vec<u32>,
    pub(crate) timezone: Vec<Tz>,
    pub(crate) region: Vec<u32>,
    /// Gender ids in a dictionary of every gender named (own or sought).
    gender: Vec<u32>,
    /// Sought gender ids; `seeks_anyone` when the record names none.
    seek: Lists,
    seeks_anyone: Vec<bool>,
    /// Interest and language ids in record order (for the reasons), into the names below.
    pub(crate) interest_list: Lists,
    pub(crate) lang_list: Lists,
    pub(crate) interest_names: Vec<String>,
    pub(crate) language_names: Vec<String>,
}

impl CompiledRegion {
    /// Number of compiled (active, unique) users.
    pub fn len(&self) -> usize {
        self.profiles.len()
    }
    /// Whether no user was compiled.
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }
    /// The compiled users, in index order; empty when the region was built by
    /// [`compile_compact`], which drops the records (use [`Self::user_id`]).
    pub fn users(&self) -> &[User] {
        &self.users
    }
    /// Whether the parsed records were kept ([`compile`]) or dropped ([`compile_compact`]).
    pub fn has_records(&self) -> bool {
        self.users.len() == self.profiles.len()
    }
    /// The user at a user index. Panics when the region was built by [`compile_compact`]
    /// (check [`Self::has_records`], or use [`Self::user_id`], which always works).
    pub fn user(&self, index: u32) -> &User {
        &self.users[index as usize]
    }
    /// The `user_id` of the user at a user index.
    pub fn user_id(&self, index: u32) -> &str {
        let i = index as usize;
        let start = if i == 0 {
            0
        } else {
            self.cols.id_end[i - 1] as usize
        };
        &self.cols.ids[start..self.cols.id_end[i] as usize]
    }
    /// The IANA time zone of the user at a user index.
    pub fn timezone(&self, index: u32) -> Tz {
        self.cols.timezone[index as usize]
    }
    /// The UTC week mask of a user.
    pub fn week_mask(&self, index: u32) -> &WeekMask {
        &self.profiles[index as usize].avail
    }
    /// Monday 00:00 UTC of the run week: bit 0 of every mask.
    pub fn week_start_utc(&self) -> DateTime<Utc> {
        self.week_start_utc
    }
    /// The run date the region was compiled for.
    pub fn run_date(&self) -> NaiveDate {
        self.run_date
    }
    /// The seeker's side of the one-sided score of user `i`, from the reciprocal table.
    #[inline(always)]
    pub(crate) fn score_info(&self, i: usize) -> ScoreInfo {
        self.score_info_of(&self.profiles[i], self.n_langs[i])
    }
    /// [`Self::score_info`] from a profile already at hand.
    #[inline(always)]
    pub(crate) fn score_info_of(&self, p: &Profile, n_langs: u8) -> ScoreInfo {
        let open = p.age_min == 0 || p.age_max == u8::MAX;
        let span = usize::from(p.age_max.wrapping_sub(p.age_min)) + 2;
        ScoreInfo {
            inv_interests: self.recip[usize::from(p.n_interests)],
            inv_cells: self.recip[usize::from(p.avail_cells)],
            inv_langs: self.recip[usize::from(n_langs.max(1))],
            age_sum: f64::from(p.age_min) + f64::from(p.age_max),
            inv_span: if open { 0.0 } else { self.recip[span] },
        }
    }
    pub(crate) fn interests_of(&self, i: usize) -> &[u64] {
        &self.interests[i * self.interest_words..(i + 1) * self.interest_words]
    }
    pub(crate) fn langs_of(&self, i: usize) -> &[u64] {
        &self.langs[i * self.lang_words..(i + 1) * self.lang_words]
    }
    pub(crate) fn exclusions_of(&self, i: usize) -> &[u32] {
        &self.excl[self.excl_offsets[i] as usize..self.excl_offsets[i + 1] as usize]
    }
    /// Whether a pair is excluded by a block (either direction) or recent history.
    pub(crate) fn excluded(&self, a: usize, b: u32) -> bool {
        self.profiles[a].flags & FLAG_EXCLUSIONS != 0
            && self.exclusions_of(a).binary_search(&b).is_ok()
    }
    /// Whether each one's gender is in the other's sought genders, by name (the exact rule).
    pub(crate) fn genders_accept(&self, a: usize, b: usize) -> bool {
        let c = &self.cols;
        let accepts = |seeker: usize, other: usize| {
            c.seeks_anyone[seeker] || c.seek.of(seeker).contains(&c.gender[other])
        };
        accepts(a, b) && accepts(b, a)
    }
}

/// Monday of the ISO week holding `date`.
pub fn week_monday(date: NaiveDate) -> NaiveDate {
    date - Duration::days(i64::from(date.weekday().num_days_from_monday()))
}

/// The UTC instant of a local wall-clock time. A time skipped by a daylight-saving jump counts from
/// the first valid instant after it; a repeated time counts from its first occurrence.
pub fn local_to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local;
    // Gaps are at most a few hours; step in cells until the wall clock exists again.
    for _ in 0..=(24 * 60 / 15) {
        match tz.from_local_datetime(&probe) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => return first.with_timezone(&Utc),
            LocalResult::None => probe += Duration::minutes(15),
        }
    }
    // Unreachable for real zones; treat the wall clock as UTC rather than fail.
    Utc.from_utc_datetime(&local)
}

/// The UTC week mask of a set of local slots, for the week (Monday to Sunday, local dates) holding
/// the run date. Cells partly covered are not counted (start rounded up, end rounded down), so the
/// mask never claims time the user did not give. The week wraps: Sunday night runs into Monday.
pub fn week_mask(tz: Tz, slots: &[Slot], run_date: NaiveDate) -> WeekMask {
    let monday = week_monday(run_date);
    let week_start = Utc.from_utc_datetime(&monday.and_time(chrono::NaiveTime::MIN));
    let mut mask = [0u64; MASK_WORDS];
    for slot in slots {
        let day = monday + Duration::days(i64::from(slot.day.index()));
        let start_local =
            day.and_time(chrono::NaiveTime::MIN) + Duration::minutes(i64::from(slot.start_minute));
        let start = local_to_utc(tz, start_local);
        let end_local = start_local + Duration::minutes(i64::from(slot.minutes()));
        let end = local_to_utc(tz, end_local);
        let start_off = (start - week_start).num_minutes();
        let end_off = (end - week_start).num_minutes();
        let cell = i64::from(CELL_MINUTES);
        let first = start_off.div_euclid(cell) + i64::from(start_off.rem_euclid(cell) != 0);
        let last = end_off.div_euclid(cell);
        for c in first..last {
            let c = c.rem_euclid(WEEK_MINUTES / cell) as usize;
            mask[c / 64] |= 1u64 << (c % 64);
        }
    }
    mask
}

/// Count of set cells in a mask.
pub fn mask_cells(mask: &WeekMask) -> u32 {
    mask.iter().map(|w| w.count_ones()).sum()
}

/// A dictionary from names to dense ids, most frequent first (ties by name), so the common values
/// land in the first bitset word.
fn dictionary<'a>(names: impl Iterator<Item = &'a str>) -> (HashMap<&'a str, u32>, Vec<String>) {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for name in names {
        *counts.entry(name).or_default() += 1;
    }
    let mut ordered: Vec<(&str, u64)> = counts.into_iter().collect();
    ordered.sort_unstable_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(y.0)));
    let ids = ordered
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (*n, i as u32))
        .collect();
    let names = ordered.into_iter().map(|(n, _)| n.to_string()).collect();
    (ids, names)
}

fn set_bits(words: &mut [u64], ids: impl Iterator<Item = u32>) {
    for id in ids {
        words[(id / 64) as usize] |= 1u64 << (id % 64);
    }
}

/// Compiles the active users (inactive ones are dropped; of two records with one id, the first in
/// id-sorted, then input order is kept) for `run_date`, with the exclusions from blocks and from
/// `history` pairs dated within the `history_days` days before the run date. The parsed records
/// are kept ([`CompiledRegion::user`]); [`compile_compact`] is the same without them.
pub fn compile(
    users: Vec<User>,
    history: &[HistoryPair],
    run_date: NaiveDate,
    cfg: &MatchConfig,
) -> CompiledRegion {
    compile_with(users, history, run_date, cfg, true)
}

/// [`compile`], dropping the parsed records once compiled: everything the scan, the selection,
/// [`crate::suggestions`] and [`crate::reasons`] need stays, as ids and flat arrays, which at a
/// million users is about 70 MB instead of about 1.2 GB. [`CompiledRegion::users`] is then
/// empty; [`CompiledRegion::user_id`] gives the ids.
pub fn compile_compact(
    users: Vec<User>,
    history: &[HistoryPair],
    run_date: NaiveDate,
    cfg: &MatchConfig,
) -> CompiledRegion {
    compile_with(users, history, run_date, cfg, false)
}

fn compile_with(
    users: Vec<User>,
    history: &[HistoryPair],
    run_date: NaiveDate,
    cfg: &MatchConfig,
    keep_records: bool,
) -> CompiledRegion {
    let input_users = users.len();
    let mut active: Vec<User> = Vec::with_capacity(users.len());
    let mut inactive = 0;
    for u in users {
        if u.active {
            active.push(u);
        } else {
            inactive += 1;
        }
    }
    // Stable sort then dedup: the result does not depend on page order except among duplicates.
    active.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    let before = active.len();
    active.dedup_by(|later, first| later.user_id == first.user_id);
    let duplicates = before - active.len();

    let (gender_ids, _) = dictionary(active.iter().map(|u| u.gender.as_str()));
    let (region_ids, _) = dictionary(active.iter().map(|u| u.region.as_str()));
    let gender_bit = |g: &str| -> (u64, bool) {
        match gender_ids.get(g) {
            Some(&id) if id < 63 => (1u64 << id, false),
            Some(_) => (1u64 << 63, true),
            // A sought gender nobody has: no bit needed.
            None => (0, false),
        }
    };

    // Blocking key and age for every user, then the scan order.
    struct Key {
        region: u32,
        gender: u64,
        seek: u64,
        by_name: bool,
        age: u8,
    }
    let keys: Vec<Key> = active
        .iter()
        .map(|u| {
            let (gender, mut by_name) = gender_bit(&u.gender);
            let seek = match &u.seeking.genders {
                None => u64::MAX,
                Some(list) => list.iter().fold(0u64, |m, g| {
                    let (bit, overflow) = gender_bit(g);
                    by_name |= overflow;
                    m | bit
                }),
            };
            Key {
                region: region_ids.get(u.region.as_str()).copied().unwrap_or(0),
                gender,
                seek,
                by_name,
                age: u8::try_from(age_on(u.birth_date, run_date)).unwrap_or(u8::MAX),
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..active.len()).collect();
    order.sort_by(|&x, &y| {
        let (kx, ky) = (&keys[x], &keys[y]);
        (kx.region, kx.gender, kx.seek, kx.age)
            .cmp(&(ky.region, ky.gender, ky.seek, ky.age))
            .then_with(|| active[x].user_id.cmp(&active[y].user_id))
    });

    // Groups over the scan order.
    let mut groups: Vec<Group> = Vec::new();
    let mut group_keys: Vec<(u32, u64, u64)> = Vec::new();
    let mut group_of = vec![0u32; order.len()];
    for (pos, &i) in order.iter().enumerate() {
        let k = (keys[i].region, keys[i].gender, keys[i].seek);
        if group_keys.last() != Some(&k) {
            group_keys.push(k);
            groups.push(Group {
                start: pos as u32,
                end: pos as u32,
                compatible: Vec::new(),
            });
        }
        let g = groups.len() - 1;
        groups[g].end = pos as u32 + 1;
        group_of[pos] = g as u32;
    }
    for (g, &(region, gender, seek)) in group_keys.iter().enumerate() {
        groups[g].compatible = group_keys
            .iter()
            .enumerate()
            .filter(|(_, &(r2, g2, s2))| r2 == region && seek & g2 != 0 && s2 & gender != 0)
            .map(|(h, _)| h as u32)
            .collect();
    }

    // Reorder users into scan order.
    let mut slots: Vec<Option<User>> = active.into_iter().map(Some).collect();
    let users: Vec<User> = order.iter().filter_map(|&i| slots[i].take()).collect();
    let keys: Vec<Key> = {
        let mut keyed: Vec<Option<Key>> = keys.into_iter().map(Some).collect();
        order.iter().filter_map(|&i| keyed[i].take()).collect()
    };

    let (interest_ids, interest_names) = dictionary(
        users
            .iter()
            .flat_map(|u| u.interests.iter().map(String::as_str)),
    );
    let (lang_ids, language_names) = dictionary(
        users
            .iter()
            .flat_map(|u| u.languages.iter().map(String::as_str)),
    );
    let interest_words = interest_names.len().div_ceil(64).max(1);
    let lang_words = language_names.len().div_ceil(64).max(1);
    let mut interests = vec![0u64; users.len() * interest_words];
    let mut langs = vec![0u64; users.len() * lang_words];

    // Exclusions: blocks in either direction, plus recent history, as sorted per-user lists.
    let index_of: HashMap<&str, u32> = users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.user_id.as_str(), i as u32))
        .collect();
    let mut excluded: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let mut exclude = |a: u32, b: u32| {
        if a != b {
            excluded.entry(a).or_default().push(b);
            excluded.entry(b).or_default().push(a);
        }
    };
    for (i, u) in users.iter().enumerate() {
        for other in &u.blocked {
            if let Some(&j) = index_of.get(other.as_str()) {
                exclude(i as u32, j);
            }
        }
    }
    let earliest = run_date - Duration::days(i64::from(cfg.history_days));
    for pair in history {
        if pair.date >= earliest && pair.date < run_date {
            if let (Some(&a), Some(&b)) =
                (index_of.get(pair.a.as_str()), index_of.get(pair.b.as_str()))
            {
                exclude(a, b);
            }
        }
    }
    drop(index_of);
    let mut excl_offsets = Vec::with_capacity(users.len() + 1);
    let mut excl = Vec::new();
    excl_offsets.push(0u32);
    for i in 0..users.len() as u32 {
        if let Some(list) = excluded.get_mut(&i) {
            list.sort_unstable();
            list.dedup();
            excl.extend_from_slice(list);
        }
        excl_offsets.push(excl.len() as u32);
    }

    let week_start = Utc.from_utc_datetime(&week_monday(run_date).and_time(chrono::NaiveTime::MIN));
    let mut profiles = Vec::with_capacity(users.len());
    for (i, u) in users.iter().enumerate() {
        let iw = &mut interests[i * interest_words..(i + 1) * interest_words];
        set_bits(
            iw,
            u.interests
                .iter()
                .filter_map(|x| interest_ids.get(x.as_str()).copied()),
        );
        let lw = &mut langs[i * lang_words..(i + 1) * lang_words];
        set_bits(
            lw,
            u.languages
                .iter()
                .filter_map(|x| lang_ids.get(x.as_str()).copied()),
        );
        let avail = week_mask(u.timezone, &u.availability, run_date);
        let mut flags = 0;
        if excl_offsets[i + 1] > excl_offsets[i] {
            flags |= FLAG_EXCLUSIONS;
        }
        if keys[i].by_name {
            flags |= FLAG_GENDER_BY_NAME;
        }
        profiles.push(Profile {
            avail,
            lang: lw[0],
            age: keys[i].age,
            age_min: u.seeking.age_min.unwrap_or(0),
            age_max: u.seeking.age_max.unwrap_or(u8::MAX),
            flags,
            avail_cells: mask_cells(&avail) as u16,
            n_interests: u.interests.len() as u16,
        });
    }

    let n_langs: Vec<u8> = users
        .iter()
        .map(|u| u8::try_from(u.languages.len()).unwrap_or(u8::MAX))
        .collect();
    // Every divisor of a one-sided score is a small count: tabulate 1/x up to the largest.
    let largest = profiles
        .iter()
        .map(|p| usize::from(p.n_interests).max(usize::from(p.avail_cells)))
        .max()
        .unwrap_or(0)
        .max(usize::from(u8::MAX) + 2);
    let recip: Vec<f64> = (0..=largest)
        .map(|x| if x == 0 { 0.0 } else { 1.0 / x as f64 })
        .collect();
    // The columns that outlive the records.
    let mut gender_names: HashMap<&str, u32> = HashMap::new();
    fn gender_id<'u>(names: &mut HashMap<&'u str, u32>, g: &'u str) -> u32 {
        let next = names.len() as u32;
        *names.entry(g).or_insert(next)
    }
    let mut cols = Columns {
        interest_names,
        language_names,
        ..Columns::default()
    };
    for (u, key) in users.iter().zip(&keys) {
        cols.ids.push_str(&u.user_id);
        cols.id_end.push(cols.ids.len() as u32);
        cols.timezone.push(u.timezone);
        cols.region.push(key.region);
        cols.gender.push(gender_id(&mut gender_names, &u.gender));
        match &u.seeking.genders {
            None => {
                cols.seeks_anyone.push(true);
                cols.seek.push([]);
            }
            Some(list) => {
                cols.seeks_anyone.push(false);
                let ids: Vec<u32> = list
                    .iter()
                    .map(|g| gender_id(&mut gender_names, g))
                    .collect();
                cols.seek.push(ids);
            }
        }
        cols.interest_list.push(
            u.interests
                .iter()
                .filter_map(|x| interest_ids.get(x.as_str()).copied()),
        );
        cols.lang_list.push(
            u.languages
                .iter()
                .filter_map(|x| lang_ids.get(x.as_str()).copied()),
        );
    }
    drop(gender_names);
    drop(interest_ids);
    drop(lang_ids);
    let users = if keep_records { users } else { Vec::new() };
    CompiledRegion {
        run_date,
        week_start_utc: week_start,
        users,
        cols,
        profiles,
        groups,
        group_of,
        interest_words,
        interests,
        lang_words,
        langs,
        n_langs,
        recip,
        excl_offsets,
        excl,
        min_overlap_cells: cfg.min_overlap_minutes.div_ceil(CELL_MINUTES),
        inactive,
        duplicates,
        input_users,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Weekday;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    fn slot(day: Weekday, start: (u32, u32), end: (u32, u32)) -> Slot {
        Slot {
            day,
            start_minute: start.0 * 60 + start.1,
            end_minute: end.0 * 60 + end.1,
        }
    }

    /// Cells set in a mask, as (day index, "HH:MM") of each cell start in UTC.
    fn cells(mask: &WeekMask) -> Vec<u32> {
        (0..WEEK_CELLS)
            .filter(|c| mask[(c / 64) as usize] >> (c % 64) & 1 == 1)
            .collect()
    }

    fn cell_of(day: u32, h: u32, m: u32) -> u32 {
        (day * 24 * 60 + h * 60 + m) / CELL_MINUTES
    }

    #[test]
    fn utc_user_maps_local_hours_to_the_same_cells() {
        let mask = week_mask(
            chrono_tz::UTC,
            &[slot(Weekday::Mon, (18, 0), (19, 30))],
            date(2026, 12, 3),
        );
        assert_eq!(
            cells(&mask),
            (cell_of(0, 18, 0)..cell_of(0, 19, 30)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn berlin_in_winter_is_one_hour_ahead_and_in_summer_two() {
        let s = [slot(Weekday::Sat, (10, 0), (12, 0))];
        let winter = week_mask(chrono_tz::Europe::Berlin, &s, date(2026, 12, 3));
        assert_eq!(cells(&winter)[0], cell_of(5, 9, 0));
        let summer = week_mask(chrono_tz::Europe::Berlin, &s, date(2026, 7, 1));
        assert_eq!(cells(&summer)[0], cell_of(5, 8, 0));
        assert_eq!(mask_cells(&summer), 4);
    }

    #[test]
    fn slot_on_the_night_clocks_go_forward_is_an_hour_shorter() {
        // Europe/Berlin jumps from 02:00 to 03:00 on Sunday 2026-03-29.
        let s = [slot(Weekday::Sun, (1, 0), (4, 0))];
        let mask = week_mask(chrono_tz::Europe::Berlin, &s, date(2026, 3, 25));
        // 01:00 CET = 00:00 UTC; 04:00 CEST = 02:00 UTC.
        assert_eq!(
            cells(&mask),
            (cell_of(6, 0, 0)..cell_of(6, 2, 0)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn slot_on_the_night_clocks_go_back_is_an_hour_longer() {
        // Europe/Berlin goes from 03:00 back to 02:00 on Sunday 2026-10-25.
        let s = [slot(Weekday::Sun, (1, 0), (4, 0))];
        let mask = week_mask(chrono_tz::Europe::Berlin, &s, date(2026, 10, 22));
        // 01:00 CEST = 23:00 UTC Saturday; 04:00 CET = 03:00 UTC Sunday.
        assert_eq!(mask_cells(&mask), 8);
        assert_eq!(cells(&mask)[0], cell_of(5, 23, 0));
    }

    #[test]
    fn slot_starting_inside_a_skipped_hour_starts_when_the_clock_resumes() {
        let s = [slot(Weekday::Sun, (2, 30), (4, 0))];
        let mask = week_mask(chrono_tz::Europe::Berlin, &s, date(2026, 3, 25));
        // 02:30 does not exist; it counts from 03:00 CEST = 01:00 UTC.
        assert_eq!(
            cells(&mask),
            (cell_of(6, 1, 0)..cell_of(6, 2, 0)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn half_hour_offset_zone_lands_on_half_hour_cells() {
        // Asia/Kolkata is UTC+05:30: 10:00 local is 04:30 UTC.
        let s = [slot(Weekday::Wed, (10, 0), (11, 0))];
        let mask = week_mask(chrono_tz::Asia::Kolkata, &s, date(2026, 12, 3));
        assert_eq!(cells(&mask), vec![cell_of(2, 4, 30), cell_of(2, 5, 0)]);
    }

    #[test]
    fn quarter_hour_offset_keeps_only_whole_cells() {
        // Asia/Kathmandu is UTC+05:45: 10:00-11:00 local is 04:15-05:15 UTC -> one whole cell.
        let s = [slot(Weekday::Wed, (10, 0), (11, 0))];
        let mask = week_mask(chrono_tz::Asia::Kathmandu, &s, date(2026, 12, 3));
        assert_eq!(cells(&mask), vec![cell_of(2, 4, 30)]);
    }

    #[test]
    fn slot_crossing_midnight_continues_into_the_next_day() {
        let s = [slot(Weekday::Fri, (22, 0), (1, 0))];
        let mask = week_mask(chrono_tz::UTC, &s, date(2026, 12, 3));
        assert_eq!(
            cells(&mask),
            (cell_of(4, 22, 0)..cell_of(5, 1, 0)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn sunday_night_slot_wraps_into_monday_morning() {
        let s = [slot(Weekday::Sun, (23, 0), (2, 0))];
        let mask = week_mask(chrono_tz::UTC, &s, date(2026, 12, 3));
        let mut expected: Vec<u32> = (0..cell_of(0, 2, 0)).collect();
        expected.extend(cell_of(6, 23, 0)..WEEK_CELLS);
        assert_eq!(cells(&mask), expected);
    }

    #[test]
    fn monday_morning_east_of_utc_wraps_to_sunday_evening_utc() {
        // Pacific/Auckland is UTC+13 in December: Monday 08:00 local is Sunday 19:00 UTC.
        let s = [slot(Weekday::Mon, (8, 0), (9, 0))];
        let mask = week_mask(chrono_tz::Pacific::Auckland, &s, date(2026, 12, 3));
        assert_eq!(cells(&mask), vec![cell_of(6, 19, 0), cell_of(6, 19, 30)]);
    }

    #[test]
    fn week_starts_on_monday_of_the_run_date() {
        assert_eq!(week_monday(date(2026, 12, 3)), date(2026, 11, 30));
        assert_eq!(week_monday(date(2026, 11, 30)), date(2026, 11, 30));
        assert_eq!(week_monday(date(2026, 12, 6)), date(2026, 11, 30));
    }
}
