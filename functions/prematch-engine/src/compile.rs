//! Compiles validated users into the compact, scan-ordered form the scoring kernel reads.
//!
//! Every user becomes one 64-byte [`Profile`] (UTC week mask, first language word, ages), plus
//! dictionary-coded interest and language bitsets. Users are ordered by (region, gender, seeking
//! mask, age, id) so that each blocking group is a contiguous, age-sorted range.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::model::{age_on, Rejection, Slot, User};
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
#[derive(Debug, Clone, Copy, Default, PartialEq)]
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
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Group {
    pub start: u32,
    pub end: u32,
    /// Groups whose members may pair with this group's (mutual gender acceptance, same region).
    pub compatible: Vec<u32>,
}

/// Users of one region (or several), compiled for scoring. Indices into it are "user indices".
#[derive(Debug, PartialEq)]
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
#[derive(Debug, Default, PartialEq)]
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
#[derive(Debug, Default, PartialEq)]
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
    /// Bytes held on the heap by the compiled region (the arrays' capacities; the parsed records
    /// kept by [`compile`] are counted at their struct size only), for memory reports.
    pub fn heap_bytes(&self) -> usize {
        fn of<T>(v: &Vec<T>) -> usize {
            v.capacity() * std::mem::size_of::<T>()
        }
        let lists = |l: &Lists| of(&l.items) + of(&l.end);
        let c = &self.cols;
        of(&self.users)
            + of(&self.profiles)
            + of(&self.groups)
            + self.groups.iter().map(|g| of(&g.compatible)).sum::<usize>()
            + of(&self.group_of)
            + of(&self.interests)
            + of(&self.langs)
            + of(&self.n_langs)
            + of(&self.recip)
            + of(&self.excl_offsets)
            + of(&self.excl)
            + c.ids.capacity()
            + of(&c.id_end)
            + of(&c.timezone)
            + of(&c.region)
            + of(&c.gender)
            + lists(&c.seek)
            + of(&c.seeks_anyone)
            + lists(&c.interest_list)
            + lists(&c.lang_list)
            + c.interest_names.iter().map(String::capacity).sum::<usize>()
            + c.language_names.iter().map(String::capacity).sum::<usize>()
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

fn set_bits(words: &mut [u64], ids: impl Iterator<Item = u32>) {
    for id in ids {
        words[(id / 64) as usize] |= 1u64 << (id % 64);
    }
}

/// No rank: a name no kept user carries (only duplicates or sought genders nobody has).
const NO_RANK: u32 = u32::MAX;

/// Names to dense ids in order of first arrival; re-coded by frequency when the region is finished
/// (the frequencies are only known then).
#[derive(Debug, Default)]
struct Interner {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.ids.insert(name.to_string(), id);
        self.names.push(name.to_string());
        id
    }

    /// The dictionary of the names counted in `counts` (by arrival id): each arrival id's rank,
    /// most frequent first, ties by name ([`NO_RANK`] when counted 0), and the names by rank.
    fn ranks(&self, counts: &[u64]) -> (Vec<u32>, Vec<String>) {
        let mut ordered: Vec<usize> = (0..self.names.len()).filter(|&i| counts[i] > 0).collect();
        ordered.sort_unstable_by(|&x, &y| {
            counts[y]
                .cmp(&counts[x])
                .then_with(|| self.names[x].cmp(&self.names[y]))
        });
        let mut rank = vec![NO_RANK; self.names.len()];
        for (r, &i) in ordered.iter().enumerate() {
            rank[i] = r as u32;
        }
        let names = ordered.iter().map(|&i| self.names[i].clone()).collect();
        (rank, names)
    }

    /// How often each name occurs in the lists of the given users.
    fn count<'a>(&self, lists: impl Iterator<Item = &'a [u32]>) -> Vec<u64> {
        let mut counts = vec![0u64; self.names.len()];
        for list in lists {
            for &id in list {
                counts[id as usize] += 1;
            }
        }
        counts
    }
}

/// Strings appended one after another: item j is `text[end[j-1]..end[j]]`.
#[derive(Debug, Default)]
struct Strings {
    text: String,
    end: Vec<u32>,
}

impl Strings {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.end.push(self.text.len() as u32);
    }
    fn get(&self, j: usize) -> &str {
        let start = if j == 0 { 0 } else { self.end[j - 1] as usize };
        &self.text[start..self.end[j] as usize]
    }
    fn len(&self) -> usize {
        self.end.len()
    }
}

/// Builds a [`CompiledRegion`] from users handed over one at a time (a page of records after
/// another), so the parsed records of a whole region never exist at once: each active user is
/// turned at once into its week mask, age and interned ids (about 150 bytes instead of about
/// 1.2 KB of strings); the dictionaries are re-coded by frequency, duplicates dropped, users
/// ordered and exclusions resolved in [`Self::finish`]. The result is the same as [`compile`] or
/// [`compile_compact`] of the same users in the same order.
#[derive(Debug)]
pub struct RegionBuilder {
    run_date: NaiveDate,
    history_days: u32,
    min_overlap_cells: u32,
    keep_records: bool,
    /// The active users pushed, in push order, when the records are kept.
    records: Vec<User>,
    input_users: usize,
    inactive: usize,
    // One entry per active user pushed, in push order.
    ids: Strings,
    timezone: Vec<Tz>,
    region: Vec<u32>,
    gender: Vec<u32>,
    seek: Lists,
    seeks_anyone: Vec<bool>,
    age: Vec<u8>,
    age_min: Vec<u8>,
    age_max: Vec<u8>,
    avail: Vec<WeekMask>,
    interests: Lists,
    langs: Lists,
    /// Blocked ids of every user, one after another; user i's are items `blocked_end[i-1]..blocked_end[i]`.
    blocked: Strings,
    blocked_end: Vec<u32>,
    regions: Interner,
    /// Own and sought genders share one interner.
    genders: Interner,
    interest_names: Interner,
    language_names: Interner,
}

impl RegionBuilder {
    /// An empty region to compile for `run_date` with `cfg`'s history window and minimum overlap.
    /// The parsed records are dropped (as [`compile_compact`]); see [`Self::keep_records`].
    pub fn new(run_date: NaiveDate, cfg: &MatchConfig) -> RegionBuilder {
        RegionBuilder {
            run_date,
            history_days: cfg.history_days,
            min_overlap_cells: cfg.min_overlap_minutes.div_ceil(CELL_MINUTES),
            keep_records: false,
            records: Vec::new(),
            input_users: 0,
            inactive: 0,
            ids: Strings::default(),
            timezone: Vec::new(),
            region: Vec::new(),
            gender: Vec::new(),
            seek: Lists::default(),
            seeks_anyone: Vec::new(),
            age: Vec::new(),
            age_min: Vec::new(),
            age_max: Vec::new(),
            avail: Vec::new(),
            interests: Lists::default(),
            langs: Lists::default(),
            blocked: Strings::default(),
            blocked_end: Vec::new(),
            regions: Interner::default(),
            genders: Interner::default(),
            interest_names: Interner::default(),
            language_names: Interner::default(),
        }
    }

    /// Whether to keep the parsed records too (as [`compile`]: [`CompiledRegion::user`] works).
    pub fn keep_records(mut self, keep: bool) -> RegionBuilder {
        self.keep_records = keep;
        self
    }

    /// Users pushed so far (active or not, duplicates included).
    pub fn input_users(&self) -> usize {
        self.input_users
    }

    /// Adds one validated user. Inactive users are only counted.
    pub fn push(&mut self, user: User) {
        self.input_users += 1;
        if !user.active {
            self.inactive += 1;
            return;
        }
        self.ids.push(&user.user_id);
        self.timezone.push(user.timezone);
        self.region.push(self.regions.id(&user.region));
        self.gender.push(self.genders.id(&user.gender));
        match &user.seeking.genders {
            None => {
                self.seeks_anyone.push(true);
                self.seek.push([]);
            }
            Some(list) => {
                self.seeks_anyone.push(false);
                let genders = &mut self.genders;
                self.seek.push(list.iter().map(|g| genders.id(g)));
            }
        }
        self.age
            .push(u8::try_from(age_on(user.birth_date, self.run_date)).unwrap_or(u8::MAX));
        self.age_min.push(user.seeking.age_min.unwrap_or(0));
        self.age_max.push(user.seeking.age_max.unwrap_or(u8::MAX));
        self.avail
            .push(week_mask(user.timezone, &user.availability, self.run_date));
        let names = &mut self.interest_names;
        self.interests
            .push(user.interests.iter().map(|x| names.id(x)));
        let names = &mut self.language_names;
        self.langs.push(user.languages.iter().map(|x| names.id(x)));
        for other in &user.blocked {
            self.blocked.push(other);
        }
        self.blocked_end.push(self.blocked.len() as u32);
        if self.keep_records {
            self.records.push(user);
        }
    }

    /// Parses one record ([`parse_user`](crate::parse_user)) and adds it; a malformed record is
    /// returned as its rejection and not added.
    pub fn push_value(&mut self, record: &serde_json::Value) -> Result<(), Rejection> {
        self.push(crate::model::parse_user(record)?);
        Ok(())
    }

    fn blocked_of(&self, i: usize) -> std::ops::Range<usize> {
        let start = if i == 0 {
            0
        } else {
            self.blocked_end[i - 1] as usize
        };
        start..self.blocked_end[i] as usize
    }

    /// Compiles the users pushed, with the exclusions from their blocks and from `history` pairs
    /// dated within the `history_days` days before the run date. Of two active users with one id,
    /// the first pushed is kept.
    pub fn finish(self, history: &[HistoryPair]) -> CompiledRegion {
        let b = self;
        let pushed = b.ids.len();
        // Stable sort then dedup: the first pushed of each id is kept.
        let mut kept: Vec<u32> = (0..pushed as u32).collect();
        kept.sort_by(|&x, &y| b.ids.get(x as usize).cmp(b.ids.get(y as usize)));
        kept.dedup_by(|later, first| b.ids.get(*later as usize) == b.ids.get(*first as usize));
        let duplicates = pushed - kept.len();

        let mut counts = vec![0u64; b.genders.names.len()];
        for &u in &kept {
            counts[b.gender[u as usize] as usize] += 1;
        }
        let (gender_rank, _) = b.genders.ranks(&counts);
        let mut counts = vec![0u64; b.regions.names.len()];
        for &u in &kept {
            counts[b.region[u as usize] as usize] += 1;
        }
        let (region_rank, _) = b.regions.ranks(&counts);
        let gender_bit = |g: u32| -> (u64, bool) {
            match gender_rank[g as usize] {
                NO_RANK => (0, false),
                r if r < 63 => (1u64 << r, false),
                _ => (1u64 << 63, true),
            }
        };

        // Blocking key of every kept user, then the scan order.
        struct Key {
            region: u32,
            gender: u64,
            seek: u64,
            by_name: bool,
            age: u8,
            user: u32,
        }
        let mut keys: Vec<Key> = kept
            .iter()
            .map(|&u| {
                let i = u as usize;
                let (gender, mut by_name) = gender_bit(b.gender[i]);
                let seek = if b.seeks_anyone[i] {
                    u64::MAX
                } else {
                    b.seek.of(i).iter().fold(0u64, |m, &g| {
                        let (bit, overflow) = gender_bit(g);
                        by_name |= overflow;
                        m | bit
                    })
                };
                Key {
                    region: region_rank[b.region[i] as usize],
                    gender,
                    seek,
                    by_name,
                    age: b.age[i],
                    user: u,
                }
            })
            .collect();
        drop(kept);
        keys.sort_unstable_by(|kx, ky| {
            (kx.region, kx.gender, kx.seek, kx.age)
                .cmp(&(ky.region, ky.gender, ky.seek, ky.age))
                .then_with(|| b.ids.get(kx.user as usize).cmp(b.ids.get(ky.user as usize)))
        });
        let n = keys.len();

        // Groups over the scan order.
        let mut groups: Vec<Group> = Vec::new();
        let mut group_keys: Vec<(u32, u64, u64)> = Vec::new();
        let mut group_of = vec![0u32; n];
        for (pos, key) in keys.iter().enumerate() {
            let k = (key.region, key.gender, key.seek);
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

        let src = |pos: usize| keys[pos].user as usize;
        let (interest_rank, interest_names) = b.interest_names.ranks(
            &b.interest_names
                .count((0..n).map(|p| b.interests.of(src(p)))),
        );
        let (lang_rank, language_names) = b
            .language_names
            .ranks(&b.language_names.count((0..n).map(|p| b.langs.of(src(p)))));
        let interest_words = interest_names.len().div_ceil(64).max(1);
        let lang_words = language_names.len().div_ceil(64).max(1);
        let ranked = |rank: &'_ [u32], list: &'_ [u32]| -> Vec<u32> {
            list.iter()
                .map(|&x| rank[x as usize])
                .filter(|&r| r != NO_RANK)
                .collect()
        };

        // Exclusions: blocks in either direction, plus recent history, as sorted per-user lists.
        let (excl_offsets, excl) = {
            let mut index_of: HashMap<&str, u32> = HashMap::with_capacity(n);
            for pos in 0..n {
                index_of.insert(b.ids.get(src(pos)), pos as u32);
            }
            let mut pairs: Vec<(u32, u32)> = Vec::new();
            let mut exclude = |a: u32, c: u32| {
                if a != c {
                    pairs.push((a, c));
                    pairs.push((c, a));
                }
            };
            for pos in 0..n {
                for j in b.blocked_of(src(pos)) {
                    if let Some(&other) = index_of.get(b.blocked.get(j)) {
                        exclude(pos as u32, other);
                    }
                }
            }
            let earliest = b.run_date - Duration::days(i64::from(b.history_days));
            for pair in history {
                if pair.date >= earliest && pair.date < b.run_date {
                    if let (Some(&x), Some(&y)) =
                        (index_of.get(pair.a.as_str()), index_of.get(pair.b.as_str()))
                    {
                        exclude(x, y);
                    }
                }
            }
            drop(index_of);
            pairs.sort_unstable();
            pairs.dedup();
            let excl: Vec<u32> = pairs.iter().map(|p| p.1).collect();
            let mut offsets = vec![0u32; n + 1];
            let mut at = 0usize;
            for i in 0..n {
                while at < pairs.len() && pairs[at].0 as usize == i {
                    at += 1;
                }
                offsets[i + 1] = at as u32;
            }
            (offsets, excl)
        };

        let week_start =
            Utc.from_utc_datetime(&week_monday(b.run_date).and_time(chrono::NaiveTime::MIN));
        let mut interests = vec![0u64; n * interest_words];
        let mut langs = vec![0u64; n * lang_words];
        let mut profiles = Vec::with_capacity(n);
        let mut n_langs = Vec::with_capacity(n);
        for (pos, key) in keys.iter().enumerate() {
            let i = key.user as usize;
            let iw = &mut interests[pos * interest_words..(pos + 1) * interest_words];
            set_bits(
                iw,
                b.interests
                    .of(i)
                    .iter()
                    .map(|&x| interest_rank[x as usize])
                    .filter(|&r| r != NO_RANK),
            );
            let lw = &mut langs[pos * lang_words..(pos + 1) * lang_words];
            set_bits(
                lw,
                b.langs
                    .of(i)
                    .iter()
                    .map(|&x| lang_rank[x as usize])
                    .filter(|&r| r != NO_RANK),
            );
            let avail = b.avail[i];
            let mut flags = 0;
            if excl_offsets[pos + 1] > excl_offsets[pos] {
                flags |= FLAG_EXCLUSIONS;
            }
            if key.by_name {
                flags |= FLAG_GENDER_BY_NAME;
            }
            profiles.push(Profile {
                avail,
                lang: lw[0],
                age: key.age,
                age_min: b.age_min[i],
                age_max: b.age_max[i],
                flags,
                avail_cells: mask_cells(&avail) as u16,
                n_interests: b.interests.of(i).len() as u16,
            });
            n_langs.push(u8::try_from(b.langs.of(i).len()).unwrap_or(u8::MAX));
        }

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

        // The columns that outlive the records. Gender ids here are in order of first appearance
        // (own gender, then sought ones) in the scan order.
        let mut gender_id = vec![NO_RANK; b.genders.names.len()];
        let mut next_gender = 0u32;
        let mut recode = |g: u32| -> u32 {
            let slot = &mut gender_id[g as usize];
            if *slot == NO_RANK {
                *slot = next_gender;
                next_gender += 1;
            }
            *slot
        };
        let mut cols = Columns {
            interest_names,
            language_names,
            ..Columns::default()
        };
        for key in &keys {
            let i = key.user as usize;
            cols.ids.push_str(b.ids.get(i));
            cols.id_end.push(cols.ids.len() as u32);
            cols.timezone.push(b.timezone[i]);
            cols.region.push(key.region);
            cols.gender.push(recode(b.gender[i]));
            cols.seeks_anyone.push(b.seeks_anyone[i]);
            let sought: Vec<u32> = b.seek.of(i).iter().map(|&g| recode(g)).collect();
            cols.seek.push(sought);
            cols.interest_list
                .push(ranked(&interest_rank, b.interests.of(i)));
            cols.lang_list.push(ranked(&lang_rank, b.langs.of(i)));
        }

        let users = if b.keep_records {
            let mut slots: Vec<Option<User>> = b.records.into_iter().map(Some).collect();
            keys.iter()
                .filter_map(|k| slots[k.user as usize].take())
                .collect()
        } else {
            Vec::new()
        };
        CompiledRegion {
            run_date: b.run_date,
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
            min_overlap_cells: b.min_overlap_cells,
            inactive: b.inactive,
            duplicates,
            input_users: b.input_users,
        }
    }
}

/// Compiles the active users (inactive ones are dropped; of two records with one id, the first in
/// input order is kept) for `run_date`, with the exclusions from blocks and from `history` pairs
/// dated within the `history_days` days before the run date. The parsed records are kept
/// ([`CompiledRegion::user`]); [`compile_compact`] is the same without them, and
/// [`RegionBuilder`] the same from users handed over one by one.
pub fn compile(
    users: Vec<User>,
    history: &[HistoryPair],
    run_date: NaiveDate,
    cfg: &MatchConfig,
) -> CompiledRegion {
    let mut builder = RegionBuilder::new(run_date, cfg).keep_records(true);
    builder.records.reserve(users.len());
    for u in users {
        builder.push(u);
    }
    builder.finish(history)
}

/// [`compile`], dropping the parsed records once compiled: everything the scan, the selection,
/// [`crate::suggestions`] and [`crate::reasons`] need stays, as ids and flat arrays, which at a
/// million users is about 70 MB instead of about 1.2 GB. [`CompiledRegion::users`] is then
/// empty; [`CompiledRegion::user_id`] gives the ids. A caller that reads records page by page
/// should push them into a [`RegionBuilder`] instead, so the whole `Vec<User>` never exists.
pub fn compile_compact(
    users: Vec<User>,
    history: &[HistoryPair],
    run_date: NaiveDate,
    cfg: &MatchConfig,
) -> CompiledRegion {
    let mut builder = RegionBuilder::new(run_date, cfg);
    for u in users {
        builder.push(u);
    }
    builder.finish(history)
}

#[cfg(test)]
pub(crate) mod reference;

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
