//! Deterministic generator of realistic prematch users (DESIGN §3.1), with a share of malformed records.
//!
//! Every user is drawn from its own ChaCha8 stream (the seed picks the key, the user's index the
//! stream), so user `n` is the same whatever the total count, the output is the same on every
//! machine for a seed, and generation needs no state shared between users.
//!
//! Well-formed users carry every field of §3.1. Malformed ones (`malformed_per_mille` of them, one
//! defect each, named by [`GeneratedLine::malformed`]) keep a valid `user_id` and `region`, so they
//! can be stored in DynamoDB and reach the region job that must skip and count them; the `not_json`
//! kind is a line that does not parse at all.

mod interests;
mod malformed;
mod regions;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde_json::{Map, Value};

pub use malformed::MALFORMED_KINDS;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenConfig {
    /// How many records (well-formed and malformed together).
    pub users: usize,
    /// How many regions the users are spread over (0 is taken as 1).
    pub regions: usize,
    /// The seed: the same seed gives the same records, byte for byte.
    pub seed: u64,
    /// Malformed records per thousand (default 20, capped at 1000).
    pub malformed_per_mille: u32,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            users: 10_000,
            regions: 4,
            seed: 42,
            malformed_per_mille: 20,
        }
    }
}

/// One generated record, as a JSON line and (when it is JSON) as a value.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedLine {
    /// One JSON-lines line, without the newline; not JSON for the `not_json` kind.
    pub text: String,
    /// The parsed record; `None` when `text` is not JSON.
    pub value: Option<Value>,
    /// The record's `region`; `None` when `text` is not JSON.
    pub region: Option<String>,
    /// `None` for a well-formed user, else the kind of defect (one of [`MALFORMED_KINDS`]).
    pub malformed: Option<&'static str>,
}

/// The names of the first `regions` regions: `"eu-west"`, `"us-east"`, `"ap-south"`, `"eu-central"`,
/// ... and, past the ten profiles, the same names with `-2`, `-3` suffixes.
pub fn region_names(regions: usize) -> Vec<String> {
    (0..regions).map(regions::name).collect()
}

/// The user id of the `n`-th generated user (1-based): `u_000123`, zero-padded to 6 digits.
pub fn user_id(n: u64) -> String {
    format!("u_{n:06}")
}

/// Generates `cfg.users` records, deterministically for `cfg.seed`.
///
/// Records are made in chunks on the rayon pool (each record is independent, so the order and the
/// bytes do not depend on the number of threads) and handed out one by one.
pub fn generate(cfg: &GenConfig) -> impl Iterator<Item = GeneratedLine> {
    let generator = Generator::new(cfg);
    let users = cfg.users as u64;
    (0..users.div_ceil(CHUNK)).flat_map(move |chunk| {
        let end = ((chunk + 1) * CHUNK).min(users);
        (chunk * CHUNK..end)
            .into_par_iter()
            .map(|index| generator.line(index))
            .collect::<Vec<_>>()
    })
}

/// Records per parallel chunk: large enough to amortise the fork-join, small enough to stream.
const CHUNK: u64 = 4096;

/// The date ages and birth dates are drawn against; fixed so the output does not depend on today.
const REFERENCE_DATE: (i32, u32, u32) = (2026, 12, 1);

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Shared, read-only tables and the per-user stream factory.
struct Generator {
    /// Key-only ChaCha8 state; each user clones it and selects its own stream.
    base: ChaCha8Rng,
    /// Mixes the seed into the region assignment, which must be computable for any index.
    region_key: u64,
    users: u64,
    malformed_per_mille: u32,
    region_names: Vec<String>,
    /// Cumulative region weights (last entry is the total).
    region_cdf: Vec<u64>,
    /// Cumulative Zipf weights of the interest vocabulary.
    interest_cdf: Vec<f64>,
    reference: NaiveDate,
    updated_base: NaiveDateTime,
}

impl Generator {
    fn new(cfg: &GenConfig) -> Generator {
        let regions = cfg.regions.max(1);
        let mut total = 0u64;
        let region_cdf = (0..regions)
            .map(|i| {
                total += u64::from(regions::profile(i).weight);
                total
            })
            .collect();
        let mut acc = 0.0f64;
        // Zipf with s slightly above 1: a few tags are everywhere, most are rare.
        let interest_cdf = (0..interests::INTERESTS.len())
            .map(|rank| {
                acc += 1.0 / ((rank + 1) as f64).powf(1.07);
                acc
            })
            .collect();
        let (y, m, d) = REFERENCE_DATE;
        let reference = NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
        let updated_base = reference
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .checked_sub_signed(Duration::seconds(1))
            .unwrap_or_default();
        Generator {
            base: ChaCha8Rng::seed_from_u64(cfg.seed),
            region_key: splitmix64(cfg.seed ^ 0x05EE_D0F2_E610),
            users: cfg.users as u64,
            malformed_per_mille: cfg.malformed_per_mille.min(1000),
            region_names: region_names(regions),
            region_cdf,
            interest_cdf,
            reference,
            updated_base,
        }
    }

    /// The region of the user at `index`, from a hash so any user's region is known without state
    /// (blocked lists use it to pick people from the same region).
    fn region_of(&self, index: u64) -> usize {
        let total = self.region_cdf.last().copied().unwrap_or(1).max(1);
        let ticket =
            splitmix64(self.region_key ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15)) % total;
        self.region_cdf.partition_point(|&c| c <= ticket)
    }

    fn line(&self, index: u64) -> GeneratedLine {
        let mut rng = self.base.clone();
        rng.set_stream(index);
        let region_index = self.region_of(index);
        let user = self.user(&mut rng, index, region_index);
        let region = self.region_names[region_index].clone();
        if rng.random_range(0..1000u32) < self.malformed_per_mille {
            let kind = MALFORMED_KINDS[rng.random_range(0..MALFORMED_KINDS.len())];
            return malformed::corrupt(&mut rng, kind, user, region);
        }
        let value = Value::Object(user);
        GeneratedLine {
            text: json_line(&value),
            value: Some(value),
            region: Some(region),
            malformed: None,
        }
    }

    fn user(&self, rng: &mut ChaCha8Rng, index: u64, region_index: usize) -> Map<String, Value> {
        let profile = regions::profile(region_index);
        let mut user = Map::new();
        user.insert("user_id".into(), Value::String(user_id(index + 1)));
        user.insert(
            "region".into(),
            Value::String(self.region_names[region_index].clone()),
        );
        user.insert(
            "active".into(),
            Value::Bool(rng.random_range(0..1000) >= 20),
        );
        let timezone = pick_weighted(rng, profile.timezones);
        user.insert("timezone".into(), Value::String(timezone.into()));

        let gender = match rng.random_range(0..100) {
            0..47 => "woman",
            47..95 => "man",
            _ => "nonbinary",
        };
        user.insert("gender".into(), Value::String(gender.into()));
        let age = sample_age(rng);
        user.insert(
            "birth_date".into(),
            Value::String(self.birth_date(rng, age)),
        );
        user.insert("seeking".into(), seeking(rng, gender, age));
        user.insert("languages".into(), languages(rng, profile.languages));
        user.insert("interests".into(), self.interests(rng));
        user.insert("availability".into(), availability(rng));
        // Blocked ids are drawn from the total count, so they get their own stream: nothing else
        // about a user then depends on how many users there are.
        let mut blocked_rng = self.base.clone();
        blocked_rng.set_stream(index | 1 << 63);
        user.insert(
            "blocked".into(),
            self.blocked(&mut blocked_rng, index, region_index),
        );
        user.insert("updated_at".into(), Value::String(self.updated_at(rng)));
        user
    }

    /// A birth date that makes the user exactly `age` on the reference date.
    fn birth_date(&self, rng: &mut ChaCha8Rng, age: u32) -> String {
        let anniversary = self
            .reference
            .with_year(self.reference.year() - age as i32)
            .unwrap_or(self.reference);
        let birth = anniversary - Duration::days(rng.random_range(0..365));
        format!(
            "{:04}-{:02}-{:02}",
            birth.year(),
            birth.month(),
            birth.day()
        )
    }

    fn interests(&self, rng: &mut ChaCha8Rng) -> Value {
        let count = match rng.random_range(0..100) {
            0..3 => 0,
            3..10 => 1,
            10..20 => 2,
            20..40 => 3,
            40..60 => 4,
            60..75 => 5,
            75..85 => 6,
            85..93 => 7,
            _ => rng.random_range(8..=12),
        };
        let total = self.interest_cdf.last().copied().unwrap_or(1.0);
        let mut chosen: Vec<usize> = Vec::with_capacity(count);
        let mut tries = 0;
        while chosen.len() < count && tries < count * 8 {
            tries += 1;
            let x = rng.random::<f64>() * total;
            let rank = self
                .interest_cdf
                .partition_point(|&c| c <= x)
                .min(interests::INTERESTS.len() - 1);
            if !chosen.contains(&rank) {
                chosen.push(rank);
            }
        }
        Value::Array(
            chosen
                .into_iter()
                .map(|rank| Value::String(interests::INTERESTS[rank].into()))
                .collect(),
        )
    }

    /// Most users block nobody; some block one to three people, mostly in their own region, and a
    /// few block ids that do not exist (deleted accounts).
    fn blocked(&self, rng: &mut ChaCha8Rng, index: u64, region_index: usize) -> Value {
        if self.users < 2 || rng.random_range(0..100) >= 8 {
            return Value::Array(Vec::new());
        }
        let count = rng.random_range(1..=3);
        let mut ids: Vec<Value> = Vec::with_capacity(count);
        for _ in 0..count {
            let id = match rng.random_range(0..100) {
                0..5 => user_id(self.users + 1 + rng.random_range(0..1000)),
                5..85 => {
                    // Someone from the same region: walk on from a random user until one is
                    // (region_of is a cheap hash; the walk is bounded for tiny regions).
                    let start = self.other_index(rng, index);
                    let same = (0..512u64)
                        .map(|step| (start + step) % self.users)
                        .find(|&j| j != index && self.region_of(j) == region_index)
                        .unwrap_or(start);
                    user_id(same + 1)
                }
                _ => user_id(self.other_index(rng, index) + 1),
            };
            let id = Value::String(id);
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Value::Array(ids)
    }

    fn other_index(&self, rng: &mut ChaCha8Rng, index: u64) -> u64 {
        let other = rng.random_range(0..self.users - 1);
        if other >= index {
            other + 1
        } else {
            other
        }
    }

    fn updated_at(&self, rng: &mut ChaCha8Rng) -> String {
        let t = self.updated_base - Duration::seconds(rng.random_range(0..90 * 86_400));
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
}

/// The record as one line of JSON, written into one buffer sized for nearly every record (instead
/// of growing it step by step) and then trimmed to fit.
pub(crate) fn json_line(value: &Value) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(1000);
    // Writing a Value to a String cannot fail.
    let _ = write!(text, "{value}");
    text.shrink_to_fit();
    text
}

/// Ages 18–70, most between 25 and 40.
fn sample_age(rng: &mut ChaCha8Rng) -> u32 {
    match rng.random_range(0..100) {
        // Triangular-ish around 32.
        0..62 => {
            let u = (rng.random::<f64>() + rng.random::<f64>() + rng.random::<f64>()) / 3.0;
            25 + (u * 16.0) as u32
        }
        62..80 => rng.random_range(18..25),
        // A thinning tail up to 70.
        _ => 41 + (rng.random::<f64>().powi(2) * 30.0) as u32,
    }
}

fn seeking(rng: &mut ChaCha8Rng, gender: &str, age: u32) -> Value {
    let roll = rng.random_range(0..100);
    let genders: &[&str] = match gender {
        "woman" => match roll {
            0..84 => &["man"],
            84..92 => &["woman"],
            92..96 => &["man", "nonbinary"],
            _ => &["woman", "man", "nonbinary"],
        },
        "man" => match roll {
            0..86 => &["woman"],
            86..93 => &["man"],
            93..96 => &["woman", "nonbinary"],
            _ => &["woman", "man", "nonbinary"],
        },
        _ => match roll {
            0..40 => &["woman", "man", "nonbinary"],
            40..55 => &["nonbinary"],
            55..75 => &["woman", "nonbinary"],
            75..90 => &["man", "nonbinary"],
            90..95 => &["woman"],
            _ => &["man"],
        },
    };
    // Ranges around the user's own age, sometimes wide, sometimes narrow; a few are odd
    // (not containing the user's own age) as real preferences are.
    let (age_min, age_max) = match rng.random_range(0..100) {
        0..70 => (
            age.saturating_sub(rng.random_range(1..=8)),
            age + rng.random_range(1..=10),
        ),
        70..85 => (
            age.saturating_sub(rng.random_range(5..=15)),
            age + rng.random_range(5..=20),
        ),
        85..95 => (age.saturating_sub(1), age + rng.random_range(0..=3)),
        _ => {
            let a = rng.random_range(18..=60);
            (a, a + rng.random_range(0..=20))
        }
    };
    let age_min = age_min.max(18);
    let age_max = age_max.max(age_min).min(99);
    let mut seeking = Map::new();
    seeking.insert(
        "genders".into(),
        Value::Array(genders.iter().map(|g| Value::String((*g).into())).collect()),
    );
    seeking.insert("age_min".into(), Value::from(age_min));
    seeking.insert("age_max".into(), Value::from(age_max));
    Value::Object(seeking)
}

/// One to three languages for most users (a few speak four), the region's big ones most often.
fn languages(rng: &mut ChaCha8Rng, table: &[(&'static str, u32)]) -> Value {
    let count = match rng.random_range(0..100) {
        0..45 => 1,
        45..85 => 2,
        85..97 => 3,
        _ => 4,
    }
    .min(table.len());
    let mut chosen: Vec<&str> = Vec::with_capacity(count);
    let mut tries = 0;
    while chosen.len() < count && tries < 32 {
        tries += 1;
        let lang = pick_weighted(rng, table);
        if !chosen.contains(&lang) {
            chosen.push(lang);
        }
    }
    Value::Array(
        chosen
            .into_iter()
            .map(|l| Value::String(l.into()))
            .collect(),
    )
}

/// One to five weekly slots in local time: weekday evenings, weekend days, some late nights that
/// cross midnight (`22:00`–`01:00`), some lunch breaks.
fn availability(rng: &mut ChaCha8Rng) -> Value {
    let count = match rng.random_range(0..100) {
        0..20 => 1,
        20..45 => 2,
        45..70 => 3,
        70..88 => 4,
        _ => 5,
    };
    let mut slots: Vec<(usize, u32, u32)> = Vec::with_capacity(count);
    let mut tries = 0;
    while slots.len() < count && tries < 32 {
        tries += 1;
        let slot = random_slot(rng);
        // One slot per day keeps the records plausible (people list an evening, not three).
        if slots.iter().all(|s| s.0 != slot.0) {
            slots.push(slot);
        }
    }
    slots.sort_unstable();
    Value::Array(
        slots
            .into_iter()
            .map(|(day, start, end)| {
                let mut slot = Map::new();
                slot.insert("day".into(), Value::String(DAYS[day].into()));
                slot.insert("start".into(), Value::String(hhmm(start)));
                slot.insert("end".into(), Value::String(hhmm(end % 1440)));
                Value::Object(slot)
            })
            .collect(),
    )
}

/// `(day, start minute, end minute)`; an end past 1440 crosses midnight.
fn random_slot(rng: &mut ChaCha8Rng) -> (usize, u32, u32) {
    let half_hours = |rng: &mut ChaCha8Rng, lo: u32, hi: u32| rng.random_range(lo..=hi) * 30;
    match rng.random_range(0..100) {
        // Weekday evening: start 17:00–20:30, 1–4 hours (up to midnight).
        0..50 => {
            let start = half_hours(rng, 34, 41);
            (
                rng.random_range(0..5),
                start,
                start + half_hours(rng, 2, 8).min(1440 - start),
            )
        }
        // Weekend daytime: start 09:00–15:00, 2–6 hours.
        50..75 => {
            let start = half_hours(rng, 18, 30);
            (
                rng.random_range(5..7),
                start,
                start + half_hours(rng, 4, 12),
            )
        }
        // Late night, often crossing midnight: start 21:00–23:30, 1–4 hours.
        75..88 => {
            let start = half_hours(rng, 42, 47);
            (
                [3, 4, 5, 6][rng.random_range(0..4)],
                start,
                start + half_hours(rng, 2, 8),
            )
        }
        // Lunch break on a weekday: 11:30–13:00 start, 45–90 minutes, in quarter hours.
        88..95 => {
            let start = rng.random_range(46..=52) * 15;
            (
                rng.random_range(0..5),
                start,
                start + rng.random_range(3..=6) * 15,
            )
        }
        // Early morning: 06:00–08:00 start, 1–2 hours.
        _ => {
            let start = half_hours(rng, 12, 16);
            (rng.random_range(0..7), start, start + half_hours(rng, 2, 4))
        }
    }
}

fn hhmm(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn pick_weighted(rng: &mut ChaCha8Rng, table: &[(&'static str, u32)]) -> &'static str {
    let total: u32 = table.iter().map(|(_, w)| w).sum();
    let mut ticket = rng.random_range(0..total.max(1));
    for (item, weight) in table {
        if ticket < *weight {
            return item;
        }
        ticket -= weight;
    }
    table.first().map(|(item, _)| *item).unwrap_or("")
}

/// SplitMix64 finaliser: a cheap, well-mixed hash for the stateless region assignment.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
