//! The compile of the previous session (whole `Vec<User>` at once), kept only as the reference the
//! streaming [`super::RegionBuilder`] must reproduce field for field.

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, NaiveDate, TimeZone, Utc};

use super::*;
use crate::model::{age_on, User};
use crate::{HistoryPair, MatchConfig};

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
pub(crate) fn compile_with(
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
