//! The validated user of DESIGN §3.1, and the precise rejection of a record that is not one.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A day of the week, Monday first (the order of `Weekday::index`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl Weekday {
    /// All days, Monday first.
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    /// Days since Monday (0..=6).
    pub fn index(self) -> u32 {
        self as u32
    }

    /// The three-letter lowercase name used in records ("mon").
    pub fn as_str(self) -> &'static str {
        match self {
            Weekday::Mon => "mon",
            Weekday::Tue => "tue",
            Weekday::Wed => "wed",
            Weekday::Thu => "thu",
            Weekday::Fri => "fri",
            Weekday::Sat => "sat",
            Weekday::Sun => "sun",
        }
    }

    /// Parses "mon".."sun" or the full English name, in any case.
    pub fn parse(text: &str) -> Option<Weekday> {
        let lower = text.to_ascii_lowercase();
        Weekday::ALL
            .into_iter()
            .find(|d| lower == d.as_str() || lower == d.full_name())
    }

    fn full_name(self) -> &'static str {
        match self {
            Weekday::Mon => "monday",
            Weekday::Tue => "tuesday",
            Weekday::Wed => "wednesday",
            Weekday::Thu => "thursday",
            Weekday::Fri => "friday",
            Weekday::Sat => "saturday",
            Weekday::Sun => "sunday",
        }
    }

    /// The weekday of a chrono weekday.
    pub fn from_chrono(day: chrono::Weekday) -> Weekday {
        Weekday::ALL[day.num_days_from_monday() as usize]
    }
}

/// One weekly availability slot in the user's local time. `end_minute <= start_minute` means the slot
/// ends the next day (it crosses midnight); `end_minute` is 1..=1440 (`24:00` allowed as an end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// The local day the slot starts on.
    pub day: Weekday,
    /// Minutes after local midnight at which it starts (0..1440).
    pub start_minute: u32,
    /// Minutes after local midnight at which it ends (0..=1440).
    pub end_minute: u32,
}

impl Slot {
    /// Length in minutes, counting a midnight crossing.
    pub fn minutes(&self) -> u32 {
        if self.end_minute > self.start_minute {
            self.end_minute - self.start_minute
        } else {
            1440 - self.start_minute + self.end_minute
        }
    }
}

/// What a user is looking for. `None` means "no constraint".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seeking {
    /// Genders accepted; `None` when the record gives none (anyone).
    pub genders: Option<Vec<String>>,
    /// Youngest accepted age, inclusive.
    pub age_min: Option<u8>,
    /// Oldest accepted age, inclusive.
    pub age_max: Option<u8>,
}

/// A validated user record (DESIGN §3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Unique id, e.g. "u_000123".
    pub user_id: String,
    /// Region the user is matched in.
    pub region: String,
    /// Inactive users are never matched.
    pub active: bool,
    /// IANA time zone of `availability`.
    pub timezone: Tz,
    /// The user's gender, as written.
    pub gender: String,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// Preferences.
    pub seeking: Seeking,
    /// Spoken languages (deduplicated, in record order).
    pub languages: Vec<String>,
    /// Interests (deduplicated, in record order).
    pub interests: Vec<String>,
    /// Weekly availability in local time.
    pub availability: Vec<Slot>,
    /// Users this one never wants to see.
    pub blocked: Vec<String>,
    /// Last update, as written, if given.
    pub updated_at: Option<String>,
}

impl User {
    /// The user's id.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }
    /// The user's region.
    pub fn region(&self) -> &str {
        &self.region
    }
    /// Whether the user takes part in matching.
    pub fn is_active(&self) -> bool {
        self.active
    }
    /// Age in whole years on `date` (0 when born after it).
    pub fn age_on(&self, date: NaiveDate) -> u32 {
        age_on(self.birth_date, date)
    }
}

/// Age in whole years on `date` of someone born on `birth` (0 when born after `date`).
pub fn age_on(birth: NaiveDate, date: NaiveDate) -> u32 {
    let mut years = date.year() - birth.year();
    if (date.month(), date.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    u32::try_from(years).unwrap_or(0)
}

/// Why a record was rejected: a stable kind for counting, plus where and what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionKind {
    /// The line is not JSON at all.
    NotJson,
    /// The record is JSON but not an object.
    NotAnObject,
    /// A required field is absent (or null).
    MissingField,
    /// A field has the wrong JSON type.
    WrongType,
    /// A string that must say something is empty.
    EmptyValue,
    /// `timezone` is not an IANA time zone name.
    UnknownTimezone,
    /// A date is not `YYYY-MM-DD` or is not a real date.
    InvalidDate,
    /// A time is not `HH:MM` within 00:00–23:59 (24:00 allowed as an end).
    InvalidTime,
    /// A day is not one of mon..sun.
    UnknownDay,
    /// A slot starts and ends at the same time.
    ZeroLengthSlot,
    /// An age is not a whole number within 0..=150.
    InvalidAge,
    /// `age_min` is greater than `age_max`.
    InvalidAgeRange,
}

impl RejectionKind {
    /// All kinds, for reports that list every reason.
    pub const ALL: [RejectionKind; 12] = [
        RejectionKind::NotJson,
        RejectionKind::NotAnObject,
        RejectionKind::MissingField,
        RejectionKind::WrongType,
        RejectionKind::EmptyValue,
        RejectionKind::UnknownTimezone,
        RejectionKind::InvalidDate,
        RejectionKind::InvalidTime,
        RejectionKind::UnknownDay,
        RejectionKind::ZeroLengthSlot,
        RejectionKind::InvalidAge,
        RejectionKind::InvalidAgeRange,
    ];

    /// Stable snake_case code, e.g. "unknown_timezone".
    pub fn code(self) -> &'static str {
        match self {
            RejectionKind::NotJson => "not_json",
            RejectionKind::NotAnObject => "not_an_object",
            RejectionKind::MissingField => "missing_field",
            RejectionKind::WrongType => "wrong_type",
            RejectionKind::EmptyValue => "empty_value",
            RejectionKind::UnknownTimezone => "unknown_timezone",
            RejectionKind::InvalidDate => "invalid_date",
            RejectionKind::InvalidTime => "invalid_time",
            RejectionKind::UnknownDay => "unknown_day",
            RejectionKind::ZeroLengthSlot => "zero_length_slot",
            RejectionKind::InvalidAge => "invalid_age",
            RejectionKind::InvalidAgeRange => "invalid_age_range",
        }
    }
}

/// A record that is not a valid user: which user (if its id could be read), which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct Rejection {
    /// The record's `user_id`, when it is a readable string.
    pub user_id: Option<String>,
    /// Path of the offending field, e.g. `availability[1].start` (empty for the whole record).
    pub field: String,
    /// The value and the rule it breaks.
    pub detail: String,
    /// Stable kind, for counting.
    pub kind: RejectionKind,
}

impl Rejection {
    /// Stable snake_case reason code, for counting.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// A rejection for a line that is not JSON (for readers of JSON-lines files).
    pub fn not_json(detail: impl Into<String>) -> Rejection {
        Rejection {
            user_id: None,
            field: String::new(),
            detail: detail.into(),
            kind: RejectionKind::NotJson,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = self.user_id.as_deref().unwrap_or("<unknown user>");
        if self.field.is_empty() {
            write!(f, "{who}: {} ({})", self.detail, self.code())
        } else {
            write!(
                f,
                "{who}: {}: {} ({})",
                self.field,
                self.detail,
                self.code()
            )
        }
    }
}

/// Shorthand for the value printed in a rejection, cut so a huge value stays readable.
fn shown(value: &Value) -> String {
    let mut text = value.to_string();
    if text.len() > 60 {
        let mut cut = 57;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads fields of one record, remembering the user id for every rejection.
struct Reader<'a> {
    user_id: Option<String>,
    object: &'a Map<String, Value>,
}

impl<'a> Reader<'a> {
    fn reject(&self, field: &str, kind: RejectionKind, detail: String) -> Rejection {
        Rejection {
            user_id: self.user_id.clone(),
            field: field.to_string(),
            detail,
            kind,
        }
    }

    fn wrong_type(&self, field: &str, expected: &str, value: &Value) -> Rejection {
        self.reject(
            field,
            RejectionKind::WrongType,
            format!(
                "expected {expected}, got {} {}",
                type_name(value),
                shown(value)
            ),
        )
    }

    /// A field that must be present and not null.
    fn required(&self, name: &str) -> Result<&'a Value, Rejection> {
        match self.object.get(name) {
            None | Some(Value::Null) => Err(self.reject(
                name,
                RejectionKind::MissingField,
                "required field is missing".to_string(),
            )),
            Some(v) => Ok(v),
        }
    }

    fn optional(&self, name: &str) -> Option<&'a Value> {
        match self.object.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    fn string(&self, field: &str, value: &'a Value) -> Result<&'a str, Rejection> {
        match value {
            Value::String(s) if s.trim().is_empty() => Err(self.reject(
                field,
                RejectionKind::EmptyValue,
                "must not be empty".to_string(),
            )),
            Value::String(s) => Ok(s.as_str()),
            other => Err(self.wrong_type(field, "a string", other)),
        }
    }

    fn required_string(&self, name: &str) -> Result<&'a str, Rejection> {
        let value = self.required(name)?;
        self.string(name, value)
    }

    /// An array of non-empty strings, deduplicated in order.
    fn string_list(&self, field: &str, value: &'a Value) -> Result<Vec<String>, Rejection> {
        let Value::Array(items) = value else {
            return Err(self.wrong_type(field, "an array of strings", value));
        };
        let mut out: Vec<String> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let text = self.string(&format!("{field}[{i}]"), item)?;
            if !out.iter().any(|s| s == text) {
                out.push(text.to_string());
            }
        }
        Ok(out)
    }

    fn age(&self, field: &str, value: &Value) -> Result<u8, Rejection> {
        let Value::Number(n) = value else {
            return Err(self.wrong_type(field, "a whole number", value));
        };
        match n.as_u64() {
            Some(age) if age <= 150 => Ok(age as u8),
            _ => Err(self.reject(
                field,
                RejectionKind::InvalidAge,
                format!("{n} is not a whole number of years within 0..=150"),
            )),
        }
    }
}

/// Parses "HH:MM" into minutes after midnight; `24:00` only when `allow_end_of_day`.
fn parse_time(text: &str, allow_end_of_day: bool) -> Option<u32> {
    let bytes = text.as_bytes();
    if bytes.len() != 5 || bytes[2] != b':' {
        return None;
    }
    let digit = |b: u8| -> Option<u32> { b.is_ascii_digit().then(|| u32::from(b - b'0')) };
    let hours = digit(bytes[0])? * 10 + digit(bytes[1])?;
    let minutes = digit(bytes[3])? * 10 + digit(bytes[4])?;
    if minutes > 59 {
        return None;
    }
    match hours {
        0..=23 => Some(hours * 60 + minutes),
        24 if allow_end_of_day && minutes == 0 => Some(1440),
        _ => None,
    }
}

/// Parses one user record (DESIGN §3.1) into a validated [`User`], or says precisely what is wrong
/// with it: the field, the value, and the rule. Never panics; unknown extra fields are ignored.
pub fn parse_user(value: &Value) -> Result<User, Rejection> {
    let Value::Object(object) = value else {
        return Err(Rejection {
            user_id: None,
            field: String::new(),
            detail: format!(
                "a user record must be a JSON object, got {}",
                type_name(value)
            ),
            kind: RejectionKind::NotAnObject,
        });
    };
    let user_id_value = object.get("user_id");
    let mut reader = Reader {
        user_id: None,
        object,
    };
    if let Some(Value::String(id)) = user_id_value {
        if !id.trim().is_empty() {
            reader.user_id = Some(id.clone());
        }
    }
    let user_id = reader.required_string("user_id")?.to_string();
    let region = reader.required_string("region")?.to_string();

    let active = match reader.required("active")? {
        Value::Bool(b) => *b,
        other => return Err(reader.wrong_type("active", "a boolean", other)),
    };

    let tz_name = reader.required_string("timezone")?;
    let timezone: Tz = tz_name.parse().map_err(|_| {
        reader.reject(
            "timezone",
            RejectionKind::UnknownTimezone,
            format!("{tz_name:?} is not an IANA time zone name"),
        )
    })?;

    let gender = reader.required_string("gender")?.to_string();

    let birth_text = reader.required_string("birth_date")?;
    let birth_date = NaiveDate::parse_from_str(birth_text, "%Y-%m-%d")
        .ok()
        .filter(|d| birth_text.len() == 10 && d.year() >= 1850)
        .ok_or_else(|| {
            reader.reject(
                "birth_date",
                RejectionKind::InvalidDate,
                format!("{birth_text:?} is not a date YYYY-MM-DD after 1850"),
            )
        })?;

    let seeking = parse_seeking(&reader)?;

    let languages = reader.string_list("languages", reader.required("languages")?)?;
    let interests = match reader.optional("interests") {
        Some(v) => reader.string_list("interests", v)?,
        None => Vec::new(),
    };
    let availability = parse_availability(&reader)?;
    let blocked = match reader.optional("blocked") {
        Some(v) => reader.string_list("blocked", v)?,
        None => Vec::new(),
    };
    let updated_at = match reader.optional("updated_at") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(reader.wrong_type("updated_at", "a string", other)),
        None => None,
    };

    Ok(User {
        user_id,
        region,
        active,
        timezone,
        gender,
        birth_date,
        seeking,
        languages,
        interests,
        availability,
        blocked,
        updated_at,
    })
}

fn parse_seeking(reader: &Reader<'_>) -> Result<Seeking, Rejection> {
    let value = reader.required("seeking")?;
    let Value::Object(seeking) = value else {
        return Err(reader.wrong_type("seeking", "an object", value));
    };
    let get = |name: &str| match seeking.get(name) {
        None | Some(Value::Null) => None,
        Some(v) => Some(v),
    };
    let genders = match get("genders") {
        Some(v) => Some(reader.string_list("seeking.genders", v)?),
        None => None,
    };
    let age_min = match get("age_min") {
        Some(v) => Some(reader.age("seeking.age_min", v)?),
        None => None,
    };
    let age_max = match get("age_max") {
        Some(v) => Some(reader.age("seeking.age_max", v)?),
        None => None,
    };
    if let (Some(lo), Some(hi)) = (age_min, age_max) {
        if lo > hi {
            return Err(reader.reject(
                "seeking",
                RejectionKind::InvalidAgeRange,
                format!("age_min {lo} is greater than age_max {hi}"),
            ));
        }
    }
    Ok(Seeking {
        genders,
        age_min,
        age_max,
    })
}

fn parse_availability(reader: &Reader<'_>) -> Result<Vec<Slot>, Rejection> {
    let value = reader.required("availability")?;
    let Value::Array(items) = value else {
        return Err(reader.wrong_type("availability", "an array of slots", value));
    };
    let mut slots = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("availability[{i}]");
        let Value::Object(slot) = item else {
            return Err(reader.wrong_type(&path, "an object {day, start, end}", item));
        };
        let field = |name: &str| -> Result<&str, Rejection> {
            let fpath = format!("{path}.{name}");
            match slot.get(name) {
                None | Some(Value::Null) => Err(reader.reject(
                    &fpath,
                    RejectionKind::MissingField,
                    "required field is missing".to_string(),
                )),
                Some(v) => reader.string(&fpath, v),
            }
        };
        let day_text = field("day")?;
        let day = Weekday::parse(day_text).ok_or_else(|| {
            reader.reject(
                &format!("{path}.day"),
                RejectionKind::UnknownDay,
                format!("{day_text:?} is not a day (mon, tue, wed, thu, fri, sat, sun)"),
            )
        })?;
        let start_text = field("start")?;
        let start_minute = parse_time(start_text, false).ok_or_else(|| {
            reader.reject(
                &format!("{path}.start"),
                RejectionKind::InvalidTime,
                format!("{start_text:?} is not a time HH:MM within 00:00-23:59"),
            )
        })?;
        let end_text = field("end")?;
        let end_minute = parse_time(end_text, true).ok_or_else(|| {
            reader.reject(
                &format!("{path}.end"),
                RejectionKind::InvalidTime,
                format!("{end_text:?} is not a time HH:MM within 00:00-24:00"),
            )
        })?;
        if start_minute == end_minute % 1440 {
            return Err(reader.reject(
                &path,
                RejectionKind::ZeroLengthSlot,
                format!("slot starts and ends at {start_text}"),
            ));
        }
        slots.push(Slot {
            day,
            start_minute,
            end_minute,
        });
    }
    Ok(slots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({"user_id":"u_000123","region":"eu-west","active":true,"timezone":"Europe/Berlin",
         "gender":"woman","birth_date":"1994-05-02",
         "seeking":{"genders":["man","nonbinary"],"age_min":27,"age_max":38},
         "languages":["de","en"],"interests":["climbing","jazz","board-games"],
         "availability":[{"day":"mon","start":"18:00","end":"21:30"},{"day":"sat","start":"10:00","end":"14:00"}],
         "blocked":["u_000777"],"updated_at":"2026-11-30T08:12:00Z"})
    }

    fn with(path: &[&str], value: Value) -> Value {
        let mut record = valid();
        let mut cursor = &mut record;
        for (i, key) in path.iter().enumerate() {
            let next = if let Ok(index) = key.parse::<usize>() {
                &mut cursor[index]
            } else {
                &mut cursor[*key]
            };
            if i + 1 == path.len() {
                *next = value;
                break;
            }
            cursor = next;
        }
        record
    }

    fn without(field: &str) -> Value {
        let mut record = valid();
        if let Value::Object(map) = &mut record {
            map.remove(field);
        }
        record
    }

    fn rejected(record: Value) -> Rejection {
        parse_user(&record).expect_err("record should be rejected")
    }

    #[test]
    fn design_example_parses_into_a_user() {
        let user = parse_user(&valid()).expect("valid");
        assert_eq!(user.user_id(), "u_000123");
        assert_eq!(user.region(), "eu-west");
        assert!(user.is_active());
        assert_eq!(user.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(user.seeking.age_min, Some(27));
        assert_eq!(user.availability[0].start_minute, 18 * 60);
        assert_eq!(user.availability[0].end_minute, 21 * 60 + 30);
        assert_eq!(user.availability[1].day, Weekday::Sat);
        assert_eq!(user.blocked, vec!["u_000777".to_string()]);
    }

    #[test]
    fn non_object_is_not_an_object() {
        let r = rejected(json!([1, 2]));
        assert_eq!(r.code(), "not_an_object");
        assert_eq!(r.user_id, None);
    }

    #[test]
    fn missing_timezone_names_the_field_and_the_user() {
        let r = rejected(without("timezone"));
        assert_eq!(r.code(), "missing_field");
        assert_eq!(r.field, "timezone");
        assert_eq!(r.user_id.as_deref(), Some("u_000123"));
    }

    #[test]
    fn null_required_field_is_missing() {
        let r = rejected(with(&["gender"], Value::Null));
        assert_eq!((r.code(), r.field.as_str()), ("missing_field", "gender"));
    }

    #[test]
    fn active_as_string_is_wrong_type() {
        let r = rejected(with(&["active"], json!("yes")));
        assert_eq!((r.code(), r.field.as_str()), ("wrong_type", "active"));
        assert!(r.detail.contains("\"yes\""), "{}", r.detail);
    }

    #[test]
    fn languages_with_a_number_is_wrong_type_at_its_index() {
        let r = rejected(with(&["languages"], json!(["de", 7])));
        assert_eq!((r.code(), r.field.as_str()), ("wrong_type", "languages[1]"));
    }

    #[test]
    fn empty_user_id_is_empty_value() {
        let r = rejected(with(&["user_id"], json!("  ")));
        assert_eq!((r.code(), r.field.as_str()), ("empty_value", "user_id"));
    }

    #[test]
    fn unknown_timezone_is_rejected_with_its_name() {
        let r = rejected(with(&["timezone"], json!("Mars/Olympus")));
        assert_eq!(r.code(), "unknown_timezone");
        assert!(r.detail.contains("Mars/Olympus"));
    }

    #[test]
    fn impossible_birth_date_is_invalid_date() {
        for bad in ["1994-02-30", "94-05-02", "1994/05/02", "1994-5-2"] {
            let r = rejected(with(&["birth_date"], json!(bad)));
            assert_eq!(
                (r.code(), r.field.as_str()),
                ("invalid_date", "birth_date"),
                "{bad}"
            );
        }
    }

    #[test]
    fn hour_25_is_invalid_time() {
        let r = rejected(with(&["availability", "0", "start"], json!("25:00")));
        assert_eq!(
            (r.code(), r.field.as_str()),
            ("invalid_time", "availability[0].start")
        );
        for bad in ["9:00", "12:60", "24:00", "12-00", "ab:cd"] {
            let r = rejected(with(&["availability", "0", "start"], json!(bad)));
            assert_eq!(r.code(), "invalid_time", "{bad}");
        }
    }

    #[test]
    fn end_of_day_is_a_valid_end_only() {
        let user = parse_user(&with(&["availability", "0", "end"], json!("24:00"))).expect("ok");
        assert_eq!(user.availability[0].end_minute, 1440);
        assert_eq!(user.availability[0].minutes(), 6 * 60);
    }

    #[test]
    fn unknown_day_is_rejected() {
        let r = rejected(with(&["availability", "1", "day"], json!("funday")));
        assert_eq!(
            (r.code(), r.field.as_str()),
            ("unknown_day", "availability[1].day")
        );
    }

    #[test]
    fn full_and_capitalised_day_names_are_accepted() {
        let user = parse_user(&with(&["availability", "1", "day"], json!("Saturday"))).expect("ok");
        assert_eq!(user.availability[1].day, Weekday::Sat);
    }

    #[test]
    fn zero_length_slot_is_rejected() {
        let r = rejected(with(&["availability", "0", "end"], json!("18:00")));
        assert_eq!(
            (r.code(), r.field.as_str()),
            ("zero_length_slot", "availability[0]")
        );
        let r = rejected(with(
            &["availability", "0"],
            json!({"day":"mon","start":"00:00","end":"24:00"}),
        ));
        assert_eq!(r.code(), "zero_length_slot");
    }

    #[test]
    fn slot_crossing_midnight_counts_its_minutes() {
        let user = parse_user(&with(
            &["availability", "0"],
            json!({"day":"sun","start":"22:00","end":"01:00"}),
        ))
        .expect("ok");
        assert_eq!(user.availability[0].minutes(), 180);
    }

    #[test]
    fn age_out_of_range_is_invalid_age() {
        let r = rejected(with(&["seeking", "age_max"], json!(200)));
        assert_eq!(
            (r.code(), r.field.as_str()),
            ("invalid_age", "seeking.age_max")
        );
        let r = rejected(with(&["seeking", "age_min"], json!(-3)));
        assert_eq!(r.code(), "invalid_age");
        let r = rejected(with(&["seeking", "age_min"], json!(20.5)));
        assert_eq!(r.code(), "invalid_age");
    }

    #[test]
    fn inverted_age_range_is_invalid_age_range() {
        let r = rejected(with(&["seeking", "age_min"], json!(40)));
        assert_eq!(
            (r.code(), r.field.as_str()),
            ("invalid_age_range", "seeking")
        );
    }

    #[test]
    fn slot_missing_end_is_missing_field() {
        let r = rejected(with(
            &["availability", "0"],
            json!({"day":"mon","start":"10:00"}),
        ));
        assert_eq!(
            (r.code(), r.field.as_str()),
            ("missing_field", "availability[0].end")
        );
    }

    #[test]
    fn optional_fields_may_be_absent() {
        let mut record = without("blocked");
        if let Value::Object(map) = &mut record {
            map.remove("interests");
            map.remove("updated_at");
            map.insert("seeking".into(), json!({}));
        }
        let user = parse_user(&record).expect("ok");
        assert!(user.blocked.is_empty() && user.interests.is_empty());
        assert_eq!(user.seeking.genders, None);
    }

    #[test]
    fn every_rejection_kind_has_a_distinct_code() {
        let mut codes: Vec<&str> = RejectionKind::ALL.iter().map(|k| k.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), RejectionKind::ALL.len());
        assert_eq!(Rejection::not_json("eof").code(), "not_json");
    }

    #[test]
    fn age_counts_whole_years_on_the_date() {
        let birth = NaiveDate::from_ymd_opt(1994, 5, 2).expect("date");
        let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).expect("date");
        assert_eq!(age_on(birth, day(5, 1)), 31);
        assert_eq!(age_on(birth, day(5, 2)), 32);
        assert_eq!(age_on(day(12, 1), day(5, 2)), 0);
    }
}
