//! Turning a well-formed user into a malformed record of one named kind, the way bad data arrives.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

use crate::GeneratedLine;

/// The kinds of malformed record, as [`GeneratedLine::malformed`] names them. Each record has
/// exactly one defect of its kind; everything else about it is well-formed.
pub const MALFORMED_KINDS: [&str; 7] = [
    // A field of the wrong JSON type: `"active":"yes"`, `"age_min":"27"`, `"languages":"de"`, ...
    "wrong_type",
    // A required field left out: timezone, gender, birth_date, seeking, languages or availability.
    "missing_field",
    // A time zone that is not in the IANA database.
    "unknown_timezone",
    // A slot time that is not a clock time, such as `25:00` or `12:60`.
    "invalid_time",
    // A slot day that is not one of mon..sun.
    "unknown_day",
    // A slot whose end equals its start.
    "zero_length_slot",
    // A line that is not JSON at all (truncated, single-quoted, CSV, ...).
    "not_json",
];

/// Fields a malformed record may lack; `user_id` and `region` always stay (DynamoDB keys).
const REQUIRED: [&str; 6] = [
    "timezone",
    "gender",
    "birth_date",
    "seeking",
    "languages",
    "availability",
];

const BAD_TIMEZONES: [&str; 6] = [
    "Europe/Atlantis",
    "Mars/Olympus_Mons",
    "UTC+25",
    "America/New York",
    "CEST+1",
    "Asia/Bombay_",
];

const BAD_TIMES: [&str; 6] = ["25:00", "24:30", "12:60", "18:75", "99:99", "-1:00"];

const BAD_DAYS: [&str; 6] = ["funday", "mon-fri", "xyz", "8", "weekend", "mondays"];

/// Applies one defect of `kind` to `user`.
pub(crate) fn corrupt(
    rng: &mut ChaCha8Rng,
    kind: &'static str,
    mut user: Map<String, Value>,
    region: String,
) -> GeneratedLine {
    match kind {
        "wrong_type" => wrong_type(rng, &mut user),
        "missing_field" => {
            user.remove(REQUIRED[rng.random_range(0..REQUIRED.len())]);
        }
        "unknown_timezone" => {
            let tz = BAD_TIMEZONES[rng.random_range(0..BAD_TIMEZONES.len())];
            user.insert("timezone".into(), Value::String(tz.into()));
        }
        "invalid_time" => {
            let bad = BAD_TIMES[rng.random_range(0..BAD_TIMES.len())];
            let end = if rng.random_bool(0.5) { "start" } else { "end" };
            with_a_slot(rng, &mut user, |slot| {
                slot.insert(end.into(), Value::String(bad.into()));
            });
        }
        "unknown_day" => {
            let bad = BAD_DAYS[rng.random_range(0..BAD_DAYS.len())];
            with_a_slot(rng, &mut user, |slot| {
                slot.insert("day".into(), Value::String(bad.into()));
            });
        }
        "zero_length_slot" => with_a_slot(rng, &mut user, |slot| {
            if let Some(start) = slot.get("start").cloned() {
                slot.insert("end".into(), start);
            }
        }),
        _ => return not_json(rng, user),
    }
    let value = Value::Object(user);
    GeneratedLine {
        text: crate::json_line(&value),
        value: Some(value),
        region: Some(region),
        malformed: Some(kind),
    }
}

fn wrong_type(rng: &mut ChaCha8Rng, user: &mut Map<String, Value>) {
    match rng.random_range(0..9) {
        0 => {
            user.insert("active".into(), Value::String("yes".into()));
        }
        1 => {
            user.insert("birth_date".into(), Value::from(19_940_502));
        }
        2 => {
            if let Some(Value::Object(seeking)) = user.get_mut("seeking") {
                let age = seeking.get("age_min").and_then(Value::as_u64).unwrap_or(27);
                seeking.insert("age_min".into(), Value::String(age.to_string()));
            }
        }
        3 => {
            user.insert("languages".into(), Value::String("en".into()));
        }
        4 => {
            // An object where a list of slots belongs.
            let first = match user.get("availability") {
                Some(Value::Array(slots)) => slots.first().cloned(),
                _ => None,
            };
            user.insert("availability".into(), first.unwrap_or(Value::Null));
        }
        5 => {
            user.insert("gender".into(), Value::from(1));
        }
        6 => with_a_slot(rng, user, |slot| {
            // 18:00 written as the number 1800.
            let number = slot
                .get("start")
                .and_then(Value::as_str)
                .map(|s| s.replace(':', ""))
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(1800);
            slot.insert("start".into(), Value::from(number));
        }),
        7 => {
            user.insert("timezone".into(), Value::from(2));
        }
        _ => {
            if let Some(Value::Object(seeking)) = user.get_mut("seeking") {
                seeking.insert("genders".into(), Value::String("woman,man".into()));
            }
        }
    }
}

/// Runs `change` on one random slot of the user's availability.
fn with_a_slot(
    rng: &mut ChaCha8Rng,
    user: &mut Map<String, Value>,
    change: impl FnOnce(&mut Map<String, Value>),
) {
    if let Some(Value::Array(slots)) = user.get_mut("availability") {
        if slots.is_empty() {
            return;
        }
        let pick = rng.random_range(0..slots.len());
        if let Some(Value::Object(slot)) = slots.get_mut(pick) {
            change(slot);
        }
    }
}

fn not_json(rng: &mut ChaCha8Rng, user: Map<String, Value>) -> GeneratedLine {
    let id = user
        .get("user_id")
        .and_then(Value::as_str)
        .unwrap_or("u_000000")
        .to_string();
    let region = user
        .get("region")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let full = Value::Object(user).to_string();
    let text = match rng.random_range(0..4) {
        // A line cut short, as a partial write leaves it.
        0 => {
            let cut = rng.random_range(full.len() / 4..full.len() * 3 / 4);
            full[..cut].to_string()
        }
        1 => format!("{{'user_id': '{id}', 'region': '{region}', 'active': True}}"),
        2 => format!("{id},{region},true,Europe/Berlin,woman"),
        _ => format!("{{\"user_id\":\"{id}\",\"region\":\"{region}\",}}"),
    };
    GeneratedLine {
        text,
        value: None,
        region: None,
        malformed: Some("not_json"),
    }
}
