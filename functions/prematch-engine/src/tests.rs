//! Whole-pipeline tests on small hand-made regions, and property tests of the guarantees.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::*;

/// `users` generated records over `regions` regions, parsed; the generator's malformed lines are
/// turned off. Shared by the engine's test modules.
pub(crate) fn generated_users(users: usize, regions: usize, seed: u64) -> Vec<User> {
    prematch_gen::generate(&prematch_gen::GenConfig {
        users,
        regions,
        seed,
        malformed_per_mille: 0,
    })
    .filter_map(|line| line.value)
    .filter_map(|v| parse_user(&v).ok())
    .collect()
}

fn run_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 3).expect("date")
}

/// A user record with sensible defaults; `edit` changes what a test is about.
fn record(id: &str, gender: &str, seeks: &[&str], edit: impl FnOnce(&mut Value)) -> Value {
    let mut v = json!({
        "user_id": id, "region": "eu-west", "active": true, "timezone": "Europe/Berlin",
        "gender": gender, "birth_date": "1994-05-02",
        "seeking": {"genders": seeks, "age_min": 25, "age_max": 40},
        "languages": ["en"], "interests": ["climbing", "jazz"],
        "availability": [{"day": "sat", "start": "10:00", "end": "14:00"}],
        "blocked": []
    });
    edit(&mut v);
    v
}

fn user(v: Value) -> User {
    parse_user(&v).expect("test record is valid")
}

fn pair_ids(out: &RegionOutcome) -> Vec<(String, String)> {
    out.suggestions
        .iter()
        .map(|s| (s.a.clone(), s.b.clone()))
        .collect()
}

fn run(users: Vec<User>, history: &[HistoryPair]) -> RegionOutcome {
    match_region(users, history, run_date(), &MatchConfig::default())
}

#[test]
fn compatible_pair_is_suggested_with_its_reasons_in_each_local_time() {
    // GIVEN a woman in Berlin and a man in London, both free on Saturday morning.
    let a = user(record("u_000001", "woman", &["man"], |_| {}));
    let b = user(record("u_000002", "man", &["woman"], |v| {
        v["timezone"] = json!("Europe/London");
        v["interests"] = json!(["climbing", "chess"]);
        v["availability"] = json!([{"day": "sat", "start": "09:00", "end": "11:00"}]);
    }));
    // WHEN the region is matched
    let out = run(vec![a, b], &[]);
    // THEN they are suggested to each other, free Saturday 10:00-12:00 Berlin = 09:00-11:00 London.
    assert_eq!(pair_ids(&out), vec![("u_000001".into(), "u_000002".into())]);
    let r = &out.suggestions[0].reasons;
    assert_eq!(r.overlap_minutes, 120);
    assert_eq!(r.times.len(), 1);
    assert_eq!(
        (
            r.times[0].a.day,
            r.times[0].a.start.as_str(),
            r.times[0].a.end.as_str()
        ),
        (Weekday::Sat, "10:00", "12:00")
    );
    assert_eq!(
        (r.times[0].b.start.as_str(), r.times[0].b.end.as_str()),
        ("09:00", "11:00")
    );
    assert_eq!(r.interests, vec!["climbing".to_string()]);
    assert_eq!(r.languages, vec!["en".to_string()]);
    let s = out.suggestions[0].score;
    assert!(s > 0.0 && s <= 1.0, "{s}");
    assert_eq!(out.stats.users_covered, 2);
    assert_eq!(out.stats.feasible_pairs, 1);
}

/// Two users who match, then one change that must make them not match.
fn forbidden_by(change: impl FnOnce(&mut Value)) -> RegionOutcome {
    let a = user(record("u_000001", "woman", &["man"], change));
    let b = user(record("u_000002", "man", &["woman"], |_| {}));
    run(vec![a, b], &[])
}

#[test]
fn each_hard_rule_alone_forbids_the_pair() {
    type Change = Box<dyn FnOnce(&mut Value)>;
    let cases: Vec<(&str, Change)> = vec![
        ("inactive", Box::new(|v| v["active"] = json!(false))),
        ("other region", Box::new(|v| v["region"] = json!("us-east"))),
        (
            "gender not sought",
            Box::new(|v| v["seeking"]["genders"] = json!(["woman"])),
        ),
        (
            "too young for the other",
            Box::new(|v| v["birth_date"] = json!("2004-01-01")),
        ),
        (
            "other too old for me",
            Box::new(|v| v["seeking"]["age_max"] = json!(30)),
        ),
        (
            "no shared language",
            Box::new(|v| v["languages"] = json!(["de"])),
        ),
        (
            "30 minutes overlap",
            Box::new(|v| {
                v["availability"] = json!([{"day": "sat", "start": "13:30", "end": "18:00"}])
            }),
        ),
        (
            "I blocked them",
            Box::new(|v| v["blocked"] = json!(["u_000002"])),
        ),
    ];
    for (why, change) in cases {
        let out = forbidden_by(change);
        assert!(out.suggestions.is_empty(), "{why}: {:?}", pair_ids(&out));
        assert_eq!(out.stats.users_covered, 0, "{why}");
    }
}

#[test]
fn a_block_by_the_other_side_also_forbids_the_pair() {
    let a = user(record("u_000001", "woman", &["man"], |_| {}));
    let b = user(record("u_000002", "man", &["woman"], |v| {
        v["blocked"] = json!(["u_000001"])
    }));
    assert!(run(vec![a, b], &[]).suggestions.is_empty());
}

#[test]
fn exactly_the_minimum_overlap_is_enough() {
    let out = forbidden_by(|v| {
        v["availability"] = json!([{"day": "sat", "start": "13:00", "end": "18:00"}])
    });
    assert_eq!(out.suggestions.len(), 1);
    assert_eq!(out.suggestions[0].reasons.overlap_minutes, 60);
}

#[test]
fn seeking_without_genders_accepts_anyone() {
    let a = user(record("u_000001", "nonbinary", &[], |v| {
        v["seeking"]["genders"] = Value::Null
    }));
    let b = user(record("u_000002", "man", &["nonbinary"], |_| {}));
    assert_eq!(run(vec![a, b], &[]).suggestions.len(), 1);
}

#[test]
fn history_within_the_window_forbids_and_older_history_does_not() {
    let users = || {
        vec![
            user(record("u_000001", "woman", &["man"], |_| {})),
            user(record("u_000002", "man", &["woman"], |_| {})),
        ]
    };
    let on = |y, m, d| HistoryPair {
        a: "u_000002".into(),
        b: "u_000001".into(),
        date: NaiveDate::from_ymd_opt(y, m, d).expect("date"),
    };
    // Run date 2026-12-03, 14 days: 2026-11-19 ..= 2026-12-02 count.
    assert!(run(users(), &[on(2026, 11, 19)]).suggestions.is_empty());
    assert!(run(users(), &[on(2026, 12, 2)]).suggestions.is_empty());
    assert_eq!(run(users(), &[on(2026, 11, 18)]).suggestions.len(), 1);
    assert_eq!(run(users(), &[on(2026, 12, 3)]).suggestions.len(), 1);
}

#[test]
fn midnight_crossing_slots_overlap_across_time_zones() {
    // GIVEN New York Friday 20:00-23:00 (= Sat 01:00-04:00 UTC) and Berlin Friday 23:30-03:00
    // (= Fri 22:30 - Sat 02:00 UTC): one hour in common, after midnight UTC.
    let a = user(record("u_000001", "woman", &["man"], |v| {
        v["timezone"] = json!("America/New_York");
        v["availability"] = json!([{"day": "fri", "start": "20:00", "end": "23:00"}]);
    }));
    let b = user(record("u_000002", "man", &["woman"], |v| {
        v["availability"] = json!([{"day": "fri", "start": "23:30", "end": "03:00"}]);
    }));
    let out = run(vec![a, b], &[]);
    assert_eq!(out.suggestions.len(), 1);
    let t = &out.suggestions[0].reasons.times[0];
    assert_eq!(t.minutes, 60);
    assert_eq!(
        (t.a.day, t.a.start.as_str(), t.a.end.as_str()),
        (Weekday::Fri, "20:00", "21:00")
    );
    assert_eq!(
        (t.b.day, t.b.start.as_str(), t.b.end.as_str()),
        (Weekday::Sat, "02:00", "03:00")
    );
}

#[test]
fn sunday_night_into_monday_counts_as_one_window() {
    let slot = json!([{"day": "sun", "start": "23:00", "end": "01:00"}]);
    let a = user(record("u_000001", "woman", &["man"], |v| {
        v["timezone"] = json!("UTC");
        v["availability"] = slot.clone();
    }));
    let b = user(record("u_000002", "man", &["woman"], |v| {
        v["timezone"] = json!("UTC");
        v["availability"] = json!([{"day": "mon", "start": "00:00", "end": "02:00"},
                                   {"day": "sun", "start": "22:00", "end": "24:00"}]);
    }));
    let out = run(vec![a, b], &[]);
    assert_eq!(out.suggestions.len(), 1);
    let r = &out.suggestions[0].reasons;
    assert_eq!(r.overlap_minutes, 120);
    assert_eq!(r.times.len(), 1, "{:?}", r.times);
    assert_eq!(
        (r.times[0].a.day, r.times[0].a.start.as_str()),
        (Weekday::Sun, "23:00")
    );
    assert_eq!(r.times[0].a.end, "01:00");
}

#[test]
fn user_with_no_feasible_partner_gets_none_and_others_still_match() {
    let users = vec![
        user(record("u_000001", "woman", &["man"], |_| {})),
        user(record("u_000002", "man", &["woman"], |_| {})),
        user(record("u_000003", "man", &["woman"], |v| {
            v["languages"] = json!(["ja"])
        })),
    ];
    let out = run(users, &[]);
    assert_eq!(pair_ids(&out), vec![("u_000001".into(), "u_000002".into())]);
    assert_eq!(out.stats.users_with_feasible_partner, 2);
}

#[test]
fn popular_user_is_capped_at_k_and_everyone_else_is_covered_if_possible() {
    // GIVEN one woman every man likes best, and four more women each liked by a different man.
    let mut users = vec![user(record("u_000000", "woman", &["man"], |v| {
        v["interests"] = json!(["climbing", "jazz", "chess", "film"])
    }))];
    for i in 1..=6 {
        users.push(user(record(
            &format!("u_00010{i}"),
            "man",
            &["woman"],
            |v| v["interests"] = json!(["climbing", "jazz", "chess", "film"]),
        )));
    }
    for i in 1..=6 {
        users.push(user(record(
            &format!("u_00020{i}"),
            "woman",
            &["man"],
            |v| v["interests"] = json!([format!("tag{i}")]),
        )));
    }
    let out = run(users, &[]);
    let mut degree: BTreeMap<String, usize> = BTreeMap::new();
    for s in &out.suggestions {
        *degree.entry(s.a.clone()).or_default() += 1;
        *degree.entry(s.b.clone()).or_default() += 1;
    }
    assert!(degree.values().all(|&d| d <= 3));
    assert_eq!(out.stats.users_covered, 13, "{degree:?}");
}

#[test]
fn input_order_does_not_change_the_result() {
    let make = || -> Vec<User> {
        (0..30)
            .map(|i| {
                let gender = if i % 2 == 0 { "woman" } else { "man" };
                let seeks = if i % 2 == 0 { ["man"] } else { ["woman"] };
                user(record(&format!("u_{i:06}"), gender, &seeks, |v| {
                    v["interests"] = json!([format!("t{}", i % 4), format!("t{}", i % 7)]);
                    v["birth_date"] =
                        json!(format!("19{}-0{}-1{}", 85 + i % 10, 1 + i % 9, i % 10));
                }))
            })
            .collect()
    };
    let forward = run(make(), &[]);
    let mut reversed = make();
    reversed.reverse();
    assert_eq!(
        forward,
        RegionOutcome {
            stats: forward.stats.clone(),
            ..run(reversed, &[])
        }
    );
    assert!(!forward.suggestions.is_empty());
}

#[test]
fn duplicates_and_inactive_users_are_counted_not_matched() {
    let users = vec![
        user(record("u_000001", "woman", &["man"], |_| {})),
        user(record("u_000001", "woman", &["man"], |_| {})),
        user(record("u_000002", "man", &["woman"], |v| {
            v["active"] = json!(false)
        })),
    ];
    let out = run(users, &[]);
    assert_eq!(
        (out.stats.users, out.stats.duplicates, out.stats.inactive),
        (3, 1, 1)
    );
    assert_eq!(out.stats.matched_users, 1);
}

// ---------- property tests ----------

const ZONES: [&str; 6] = [
    "UTC",
    "Europe/Berlin",
    "Asia/Kolkata",
    "America/New_York",
    "Pacific/Auckland",
    "Asia/Kathmandu",
];
const GENDERS: [&str; 3] = ["woman", "man", "nonbinary"];

fn arb_user(id: usize, n: usize) -> impl Strategy<Value = Value> {
    let slot = (0usize..7, 0u32..96, 1u32..24).prop_map(|(d, q, len)| {
        let start = q * 15;
        let end = (start + len * 15) % 1440;
        let day = Weekday::ALL[d].as_str();
        json!({"day": day, "start": format!("{:02}:{:02}", start / 60, start % 60),
               "end": format!("{:02}:{:02}", end / 60, end % 60)})
    });
    (
        0usize..ZONES.len(),
        0usize..3,
        proptest::option::weighted(0.8, proptest::sample::subsequence(GENDERS.to_vec(), 1..=3)),
        (1975i32..2006, 1u32..13, 1u32..29),
        (18u8..40, 0u8..25),
        proptest::sample::subsequence(vec!["en", "de", "fr"], 1..=2),
        proptest::sample::subsequence(vec!["a", "b", "c", "d", "e", "f", "g", "h"], 0..=4),
        proptest::collection::vec(slot, 1..4),
        proptest::collection::vec(0..n, 0..2),
        prop::bool::weighted(0.9),
    )
        .prop_map(
            move |(z, g, seeks, (y, m, d), (lo, span), langs, tags, slots, blocked, active)| {
                json!({
                    "user_id": format!("u_{id:06}"), "region": if id % 5 == 4 { "us-east" } else { "eu-west" },
                    "active": active, "timezone": ZONES[z], "gender": GENDERS[g],
                    "birth_date": format!("{y}-{m:02}-{d:02}"),
                    "seeking": {"genders": seeks, "age_min": lo, "age_max": lo + span},
                    "languages": langs, "interests": tags, "availability": slots,
                    "blocked": blocked.iter().map(|b| format!("u_{b:06}")).collect::<Vec<_>>(),
                })
            },
        )
}

fn arb_region() -> impl Strategy<Value = (Vec<Value>, Vec<(usize, usize, i64)>)> {
    (2usize..40).prop_flat_map(|n| {
        (
            (0..n).map(|i| arb_user(i, n)).collect::<Vec<_>>(),
            proptest::collection::vec((0..n, 0..n, 1i64..20), 0..10),
        )
    })
}

fn history_of(raw: &[(usize, usize, i64)]) -> Vec<HistoryPair> {
    raw.iter()
        .map(|&(a, b, days)| HistoryPair {
            a: format!("u_{a:06}"),
            b: format!("u_{b:06}"),
            date: run_date() - chrono::Duration::days(days),
        })
        .collect()
}

/// The hard rules of DESIGN §3.1 restated on the records, independent of the compiled form.
fn allowed(a: &User, b: &User, history: &[HistoryPair], cfg: &MatchConfig) -> bool {
    let date = run_date();
    let ages_ok = |seeker: &User, other: &User| {
        let age = other.age_on(date);
        seeker.seeking.age_min.is_none_or(|lo| age >= u32::from(lo))
            && seeker.seeking.age_max.is_none_or(|hi| age <= u32::from(hi))
    };
    let gender_ok = |seeker: &User, other: &User| {
        seeker
            .seeking
            .genders
            .as_ref()
            .is_none_or(|g| g.contains(&other.gender))
    };
    let overlap: u32 = week_mask(a.timezone, &a.availability, date)
        .iter()
        .zip(week_mask(b.timezone, &b.availability, date))
        .map(|(x, y)| (x & y).count_ones() * CELL_MINUTES)
        .sum();
    let recent = history.iter().any(|h| {
        let same = (h.a == a.user_id && h.b == b.user_id) || (h.a == b.user_id && h.b == a.user_id);
        let age = (date - h.date).num_days();
        same && (1..=i64::from(cfg.history_days)).contains(&age)
    });
    a.active
        && b.active
        && a.region == b.region
        && !a.blocked.contains(&b.user_id)
        && !b.blocked.contains(&a.user_id)
        && gender_ok(a, b)
        && gender_ok(b, a)
        && ages_ok(a, b)
        && ages_ok(b, a)
        && a.languages.iter().any(|l| b.languages.contains(l))
        && overlap >= cfg.min_overlap_minutes
        && !recent
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn selection_obeys_every_hard_rule_and_the_cap((records, raw_history) in arb_region(), k in 1usize..4, greedy in any::<bool>()) {
        let users: Vec<User> = records.iter().map(|r| parse_user(r).expect("generated record is valid")).collect();
        let history = history_of(&raw_history);
        let cfg = MatchConfig {
            suggestions_per_user: k,
            selection: if greedy { SelectionMethod::Greedy } else { SelectionMethod::Auction },
            ..MatchConfig::default()
        };
        let by_id: BTreeMap<&str, &User> = users.iter().map(|u| (u.user_id.as_str(), u)).collect();
        let out = match_region(users.clone(), &history, run_date(), &cfg);
        let mut degree: BTreeMap<&str, usize> = BTreeMap::new();
        let mut seen = HashSet::new();
        for s in &out.suggestions {
            prop_assert!(s.a < s.b, "pairs are canonical");
            prop_assert!(seen.insert((s.a.clone(), s.b.clone())), "no pair twice");
            prop_assert!(allowed(by_id[s.a.as_str()], by_id[s.b.as_str()], &history, &cfg), "{} {}", s.a, s.b);
            *degree.entry(&s.a).or_default() += 1;
            *degree.entry(&s.b).or_default() += 1;
        }
        prop_assert!(degree.values().all(|&d| d <= k));
        prop_assert!(out.stats.total_score <= out.stats.upper_bound + 1e-6);
        // The feasible count agrees with the independent rules over all pairs.
        let mut feasible = 0u64;
        for (i, a) in users.iter().enumerate() {
            for b in &users[i + 1..] {
                feasible += u64::from(allowed(a, b, &history, &cfg));
            }
        }
        prop_assert_eq!(out.stats.feasible_pairs, feasible);
    }

    #[test]
    fn results_are_the_same_on_one_and_two_threads((records, raw_history) in arb_region()) {
        let users: Vec<User> = records.iter().map(|r| parse_user(r).expect("valid")).collect();
        let history = history_of(&raw_history);
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
            pool.install(|| match_region(users.clone(), &history, run_date(), &MatchConfig::default()))
        };
        let (one, two) = (on(1), on(2));
        prop_assert_eq!(&one.suggestions, &two.suggestions);
        prop_assert_eq!(one.stats.feasible_pairs, two.stats.feasible_pairs);
    }

    #[test]
    fn kernel_and_slow_rules_agree_on_every_pair((records, raw_history) in arb_region()) {
        let users: Vec<User> = records.iter().map(|r| parse_user(r).expect("valid")).collect();
        let history = history_of(&raw_history);
        let cfg = MatchConfig::default();
        let region = compile(users, &history, run_date(), &cfg);
        let graph: HashSet<(u32, u32)> = feasible_graph(&region, &cfg.weights).iter().map(|e| (e.a, e.b)).collect();
        for a in 0..region.len() as u32 {
            for b in a + 1..region.len() as u32 {
                prop_assert_eq!(graph.contains(&(a, b)), feasible(&region, a, b), "{} {}", a, b);
            }
        }
    }

    #[test]
    fn utc_offset_of_masks_matches_chrono_for_any_slot(z in 0usize..ZONES.len(), d in 0usize..7, q in 0u32..48, month in 1u32..13) {
        let tz: chrono_tz::Tz = ZONES[z].parse().expect("zone");
        let date = NaiveDate::from_ymd_opt(2026, month, 15).expect("date");
        let slot = Slot { day: Weekday::ALL[d], start_minute: q * 30, end_minute: (q * 30 + 120) % 1440 };
        let mask = week_mask(tz, &[slot], date);
        let cells: u32 = mask.iter().map(|w| w.count_ones()).sum();
        // A two-hour slot is 4 cells unless a DST change or a 45-minute offset cuts it.
        prop_assert!((2..=6).contains(&cells), "{cells}");
    }
}

#[test]
fn compact_region_explains_and_checks_pairs_exactly_like_the_full_one() {
    // GIVEN a generated region, some of its users' pairs in recent history
    let users = generated_users(1_200, 2, 5);
    let history: Vec<HistoryPair> = users
        .windows(2)
        .step_by(7)
        .map(|w| HistoryPair {
            a: w[0].user_id.clone(),
            b: w[1].user_id.clone(),
            date: run_date() - chrono::Days::new(3),
        })
        .collect();
    let cfg = MatchConfig::default();
    // WHEN it is compiled with and without the parsed records
    let full = compile(users.clone(), &history, run_date(), &cfg);
    let compact = compile_compact(users, &history, run_date(), &cfg);
    // THEN only the full one keeps the records, and ids, time zones, rules, scores, candidate
    // edges and the explained suggestions are the same
    assert!(full.has_records() && !compact.has_records());
    assert!(compact.users().is_empty());
    assert_eq!(full.len(), compact.len());
    for i in 0..full.len() as u32 {
        assert_eq!(compact.user_id(i), full.user(i).user_id);
        assert_eq!(compact.timezone(i), full.user(i).timezone);
    }
    let n = full.len() as u32;
    for a in (0..n).step_by(13) {
        for b in (0..n).step_by(17) {
            assert_eq!(
                score_pair(&full, a, b, &cfg.weights),
                score_pair(&compact, a, b, &cfg.weights)
            );
        }
    }
    let (c, k) = (cfg.candidates_per_user(), cfg.suggestions_per_user);
    let edges = candidate_edges(&full, 0..n, c, k, &cfg.weights).edges;
    assert_eq!(
        edges,
        candidate_edges(&compact, 0..n, c, k, &cfg.weights).edges
    );
    let picked = select(full.len(), &edges, &cfg.selection_config()).pairs;
    assert!(!picked.is_empty());
    let explained = suggestions(&compact, &picked);
    assert_eq!(suggestions(&full, &picked), explained);
    assert!(explained.iter().any(|s| !s.reasons.interests.is_empty()));
}

// ---------- the streaming compile against the whole-Vec reference ----------

/// The previous session's compile of a whole `Vec<User>`, kept as the reference.
fn reference(
    users: Vec<User>,
    history: &[HistoryPair],
    cfg: &MatchConfig,
    keep: bool,
) -> CompiledRegion {
    crate::compile::reference::compile_with(users, history, run_date(), cfg, keep)
}

/// Generated users of several regions, with inactive users, duplicated ids (active and
/// inactive copies, with other fields) and blocks, plus recent, old and unknown history.
fn generated_region(n: usize, seed: u64) -> (Vec<Value>, Vec<HistoryPair>) {
    let mut records: Vec<Value> = prematch_gen::generate(&prematch_gen::GenConfig {
        users: n,
        regions: 3,
        seed,
        malformed_per_mille: 0,
    })
    .filter_map(|line| line.value)
    .collect();
    let copies: Vec<Value> = records
        .iter()
        .step_by(17)
        .enumerate()
        .map(|(j, r)| {
            let mut copy = r.clone();
            copy["interests"] = json!(["a-new-interest", "climbing"]);
            copy["gender"] = json!("another-gender");
            copy["active"] = json!(j % 3 != 0);
            copy
        })
        .collect();
    for (j, copy) in copies.into_iter().enumerate() {
        // Duplicates arrive before and after their first record.
        let at = (j * 131) % records.len();
        records.insert(at, copy);
    }
    for r in records.iter_mut().step_by(11) {
        r["active"] = json!(false);
    }
    let ids: Vec<String> = records
        .iter()
        .filter_map(|r| r["user_id"].as_str().map(str::to_string))
        .collect();
    let history = ids
        .windows(2)
        .step_by(5)
        .enumerate()
        .map(|(j, w)| HistoryPair {
            a: w[j % 2].clone(),
            b: if j % 23 == 0 {
                "u_unknown".to_string()
            } else {
                w[1 - j % 2].clone()
            },
            date: run_date() - chrono::Duration::days((j % 20) as i64),
        })
        .collect();
    (records, history)
}

fn parsed(records: &[Value]) -> Vec<User> {
    records
        .iter()
        .map(|r| parse_user(r).expect("generated record is valid"))
        .collect()
}

#[test]
fn streaming_compile_is_identical_to_the_whole_vec_compile_on_generated_regions() {
    // GIVEN generated regions with blocks, history, duplicates and inactive users
    for (n, seed) in [(3_000, 11), (1_500, 12)] {
        let (records, history) = generated_region(n, seed);
        let cfg = MatchConfig::default();
        let want = reference(parsed(&records), &history, &cfg, false);
        // WHEN the records are pushed one by one, page by page, as JSON values
        let mut builder = RegionBuilder::new(run_date(), &cfg);
        for page in records.chunks(100) {
            for r in page {
                builder.push_value(r).expect("valid");
            }
        }
        assert_eq!(builder.input_users(), records.len());
        let streamed = builder.finish(&history);
        // THEN the compiled region is the same, field for field
        assert!(
            want.duplicates > 0 && want.inactive > 0,
            "the data has both"
        );
        assert!(want.excl.len() > 100, "blocks and history exclude pairs");
        assert_eq!(streamed, want);
        // AND compile_compact and compile (with the records) are the same as their references
        assert_eq!(
            compile_compact(parsed(&records), &history, run_date(), &cfg),
            want
        );
        let full = compile(parsed(&records), &history, run_date(), &cfg);
        assert!(full.has_records());
        assert_eq!(full, reference(parsed(&records), &history, &cfg, true));
    }
}

#[test]
fn streaming_compile_is_identical_on_every_field_form() {
    // GIVEN users with every form a field can take: no sought genders, a sought gender nobody has,
    // more than 63 genders (checked by name), open and closed age ranges, no interests, repeated
    // list entries (a hand-made User), blocks of oneself, of unknown and of duplicated ids, a
    // duplicate id with other fields, an inactive one, and history inside, outside and at the
    // edges of the window, reversed, of oneself and of unknown users
    let mut users: Vec<User> = Vec::new();
    for i in 0..120usize {
        users.push(user(record(
            &format!("u_{:06}", 120 - i),
            &format!("g{}", i % 90),
            &[],
            |v| {
                match i % 5 {
                    0 => v["seeking"] = json!({}),
                    1 => {
                        v["seeking"]["genders"] =
                            json!(["g1", "nobody", format!("g{}", 69 - i % 70)])
                    }
                    2 => v["seeking"] = json!({"age_min": 30}),
                    3 => v["seeking"] = json!({"genders": ["g3", "g65"], "age_max": 35}),
                    _ => v["seeking"]["genders"] = json!(["g0", "g2", "g66"]),
                }
                if i % 7 == 0 {
                    v["interests"] = json!([]);
                }
                if i % 4 == 0 {
                    v["languages"] = json!(["de", "en", format!("x{}", i % 3)]);
                }
                if i % 6 == 0 {
                    v["active"] = json!(false);
                }
                v["timezone"] =
                    json!(["Europe/Berlin", "Asia/Kathmandu", "America/New_York"][i % 3]);
                v["blocked"] = json!([
                    format!("u_{:06}", 120 - i),
                    "u_nobody",
                    format!("u_{:06}", (i * 7) % 120 + 1)
                ]);
                v["region"] = json!(if i % 9 == 0 { "us-east" } else { "eu-west" });
            },
        )));
    }
    let mut repeated = users[3].clone();
    repeated.interests = vec!["jazz".into(), "jazz".into(), "zoo".into()];
    repeated.languages = vec!["en".into(), "en".into()];
    repeated.blocked = vec![users[5].user_id.clone(), users[5].user_id.clone()];
    users.push(repeated);
    let mut duplicate = users[10].clone();
    duplicate.gender = "g69".into();
    duplicate.interests = vec!["only-in-the-duplicate".into()];
    users.insert(2, duplicate);
    let mut inactive_duplicate = users[20].clone();
    inactive_duplicate.active = false;
    users.insert(0, inactive_duplicate);
    let id = |i: usize| format!("u_{i:06}");
    let history: Vec<HistoryPair> = [
        (1, 2, 1),
        (3, 2, 14),
        (4, 5, 15),
        (6, 7, 0),
        (8, 8, 2),
        (9, 999, 2),
        (12, 13, -1),
        (2, 1, 3),
    ]
    .iter()
    .map(|&(a, b, days)| HistoryPair {
        a: id(a),
        b: id(b),
        date: run_date() - chrono::Duration::days(days),
    })
    .collect();
    for history_days in [14, 0, 30] {
        let cfg = MatchConfig {
            history_days,
            min_overlap_minutes: 90,
            ..MatchConfig::default()
        };
        let want = reference(users.clone(), &history, &cfg, true);
        assert!(
            want.profiles.iter().any(|p| p.flags & 2 != 0),
            "some gender by name"
        );
        // WHEN they are pushed into a builder (with and without the records)
        let mut full = RegionBuilder::new(run_date(), &cfg).keep_records(true);
        let mut compact = RegionBuilder::new(run_date(), &cfg);
        for u in &users {
            full.push(u.clone());
            compact.push(u.clone());
        }
        // THEN both are identical to the reference
        assert_eq!(full.finish(&history), want);
        assert_eq!(
            compact.finish(&history),
            reference(users.clone(), &history, &cfg, false)
        );
    }
}

#[test]
fn builder_rejects_a_malformed_record_exactly_as_parse_user_and_keeps_going() {
    // GIVEN a valid record, a malformed one and another valid one
    let good = record("u_000001", "woman", &["man"], |_| {});
    let bad = record("u_000002", "man", &["woman"], |v| {
        v["timezone"] = json!("Mars/Base")
    });
    let other = record("u_000003", "man", &["woman"], |_| {});
    let cfg = MatchConfig::default();
    let mut builder = RegionBuilder::new(run_date(), &cfg);
    // WHEN they are pushed
    builder.push_value(&good).expect("valid");
    let rejection = builder.push_value(&bad).expect_err("malformed");
    builder
        .push_value(&json!("not an object"))
        .expect_err("not an object");
    builder.push_value(&other).expect("valid");
    // THEN the rejection is parse_user's, and the region holds the two valid users only
    assert_eq!(Err(rejection), parse_user(&bad).map(|_| ()));
    assert_eq!(builder.input_users(), 2);
    let region = builder.finish(&[]);
    assert_eq!(
        region,
        reference(vec![user(good), user(other)], &[], &cfg, false)
    );
    assert_eq!(region.len(), 2);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn streaming_compile_is_identical_for_any_region_and_order(
        (records, raw_history) in arb_region(),
        rotate in 0usize..40,
        dup in proptest::collection::vec(0usize..40, 0..4),
    ) {
        let mut users: Vec<User> = records.iter().map(|r| parse_user(r).expect("valid")).collect();
        let len = users.len();
        users.rotate_left(rotate % len);
        for d in dup {
            let mut copy = users[d % len].clone();
            copy.languages.reverse();
            users.push(copy);
        }
        let history = history_of(&raw_history);
        let cfg = MatchConfig::default();
        let mut builder = RegionBuilder::new(run_date(), &cfg);
        for u in users.clone() {
            builder.push(u);
        }
        prop_assert_eq!(builder.finish(&history), reference(users, &history, &cfg, false));
    }
}

#[test]
fn match_compiled_on_a_streamed_region_gives_match_region_s_outcome() {
    // GIVEN a generated region with duplicates, inactive users and history
    let (records, history) = generated_region(1_200, 21);
    let cfg = MatchConfig::default();
    // WHEN it is matched from a Vec<User>, and from a builder fed page by page
    let whole = match_region(parsed(&records), &history, run_date(), &cfg);
    let mut builder = RegionBuilder::new(run_date(), &cfg);
    for page in records.chunks(250) {
        for r in page {
            builder.push_value(r).expect("valid");
        }
    }
    let streamed = match_compiled(&builder.finish(&history), &cfg);
    // THEN the suggestions and the counts are the same (only the times differ)
    assert!(!whole.suggestions.is_empty());
    assert_eq!(streamed.suggestions, whole.suggestions);
    let counts = |o: &RegionOutcome| {
        let s = &o.stats;
        (
            s.users,
            s.inactive,
            s.duplicates,
            s.matched_users,
            s.feasible_pairs,
        )
    };
    assert_eq!(counts(&streamed), counts(&whole));
    assert_eq!(streamed.stats.times.compile_ms, 0.0);
}
