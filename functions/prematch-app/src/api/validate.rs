//! Request validation helpers: method, media type, size, JSON object, and the trigger's body.
//!
//! Every check names the bad field and what a good value looks like, and never repeats the value
//! sent: a body may carry anything, including personal data.

use chrono::{Duration as Days, NaiveDate};
use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::http::Method;
use lambda_http::{Body, Request};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{ApiError, FieldError};

/// 405 unless the request uses `allowed`.
pub fn require_method(req: &Request, allowed: &'static str) -> Result<(), ApiError> {
    if req.method().as_str() == allowed || (allowed == "GET" && req.method() == Method::HEAD) {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed { allow: allowed })
    }
}

/// The body's bytes: 413 over `limit`, 415 when a non-empty body is not JSON.
pub fn json_body(req: &Request, limit: usize) -> Result<&[u8], ApiError> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        // Future body kinds (streams) are not something a JSON API accepts.
        _ => return Err(ApiError::UnsupportedMediaType),
    };
    if bytes.len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(&[]);
    }
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let essence = v
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            essence == "application/json"
                || (essence.starts_with("application/") && essence.ends_with("+json"))
        })
        .unwrap_or(false);
    if is_json {
        Ok(bytes)
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

/// Parses a JSON object; an empty body is an empty object. Syntax errors give a position, not content.
pub fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::BadRequest {
            message: "the body must be a JSON object".into(),
            fields: vec![],
        }),
        Err(e) => Err(ApiError::BadRequest {
            // Only the position: serde's own message can quote the input.
            message: format!(
                "the body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
            fields: vec![],
        }),
    }
}

/// The most regions one manual run may name.
pub const MAX_REGIONS: usize = 50;
/// How far back a manual run may be dated (re-running a recent night).
pub const MAX_DAYS_BACK: i64 = 31;
/// How far ahead a manual run may be dated (testing tomorrow's night today).
pub const MAX_DAYS_AHEAD: i64 = 7;

/// The trigger's body. Every field is optional; unknown fields are refused.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerBody {
    /// The date to match for; today (UTC) when absent.
    #[serde(default)]
    pub run_date: Option<NaiveDate>,
    /// Only these regions; all when absent.
    #[serde(default)]
    pub regions: Option<Vec<String>>,
}

/// A validated trigger request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualRunRequest {
    /// The date to match for.
    pub run_date: NaiveDate,
    /// Only these regions, when given (distinct, in the order sent).
    pub regions: Option<Vec<String>>,
}

/// True for a name such as `eu-west`: `^[a-z0-9-]{1,32}$`.
pub fn is_region_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A field name we may repeat in an error: a short identifier. Others are described, not quoted.
fn shown_field_name(name: &str) -> String {
    let safe = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if safe {
        name.to_string()
    } else {
        "(an unknown field)".to_string()
    }
}

/// Validates the trigger's body against `today` (UTC), collecting every bad field.
pub fn manual_run_request(
    body: &Map<String, Value>,
    today: NaiveDate,
) -> Result<ManualRunRequest, ApiError> {
    let mut errors = Vec::new();
    for key in body.keys() {
        if key != "run_date" && key != "regions" {
            errors.push(FieldError::new(
                shown_field_name(key),
                "unknown_field",
                "not a field of this request; allowed: run_date, regions",
            ));
        }
    }
    let run_date = match body.get("run_date") {
        None | Some(Value::Null) => Some(today),
        Some(value) => check_run_date(value, today, &mut errors),
    };
    let regions = match body.get("regions") {
        None | Some(Value::Null) => None,
        Some(value) => check_regions(value, &mut errors),
    };
    if !errors.is_empty() {
        let message = match errors.len() {
            1 => "1 field is invalid".to_string(),
            n => format!("{n} fields are invalid"),
        };
        return Err(ApiError::BadRequest {
            message,
            fields: errors,
        });
    }
    // Belt and braces: the typed body agrees with the checks above (deny_unknown_fields included).
    let typed: TriggerBody =
        serde_json::from_value(Value::Object(body.clone())).map_err(|_| ApiError::BadRequest {
            message: "the body does not match the request schema".into(),
            fields: vec![],
        })?;
    match run_date {
        Some(run_date) => Ok(ManualRunRequest {
            run_date: typed.run_date.unwrap_or(run_date),
            regions,
        }),
        None => Err(ApiError::Internal),
    }
}

fn check_run_date(
    value: &Value,
    today: NaiveDate,
    errors: &mut Vec<FieldError>,
) -> Option<NaiveDate> {
    let parsed = value
        .as_str()
        .filter(|s| s.len() == 10)
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok());
    let Some(date) = parsed else {
        errors.push(FieldError::new(
            "run_date",
            "invalid_date",
            "a calendar date as a string YYYY-MM-DD",
        ));
        return None;
    };
    let earliest = today - Days::days(MAX_DAYS_BACK);
    let latest = today + Days::days(MAX_DAYS_AHEAD);
    if date < earliest || date > latest {
        errors.push(FieldError::new(
            "run_date",
            "date_out_of_range",
            format!("a date from {MAX_DAYS_BACK} days before to {MAX_DAYS_AHEAD} days after today (UTC)"),
        ));
        return None;
    }
    Some(date)
}

fn check_regions(value: &Value, errors: &mut Vec<FieldError>) -> Option<Vec<String>> {
    let Some(items) = value.as_array() else {
        errors.push(FieldError::new(
            "regions",
            "invalid_type",
            "a list of region names",
        ));
        return None;
    };
    if items.is_empty() {
        errors.push(FieldError::new(
            "regions",
            "empty",
            "at least one region; leave the field out for all regions",
        ));
        return None;
    }
    if items.len() > MAX_REGIONS {
        errors.push(FieldError::new(
            "regions",
            "too_many",
            format!("at most {MAX_REGIONS} regions"),
        ));
        return None;
    }
    let before = errors.len();
    let mut regions: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.as_str() {
            Some(name) if is_region_name(name) => {
                if regions.iter().any(|r| r == name) {
                    errors.push(FieldError::new(
                        format!("regions[{i}]"),
                        "duplicate_region",
                        "each region once",
                    ));
                } else {
                    regions.push(name.to_string());
                }
            }
            _ => errors.push(FieldError::new(
                format!("regions[{i}]"),
                "invalid_region",
                "a region name of 1 to 32 characters a-z, 0-9 and '-'",
            )),
        }
    }
    (errors.len() == before).then_some(regions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 3).unwrap()
    }

    fn validate(body: Value) -> Result<ManualRunRequest, ApiError> {
        manual_run_request(body.as_object().unwrap(), today())
    }

    fn fields(err: ApiError) -> Vec<(String, &'static str)> {
        match err {
            ApiError::BadRequest { fields, .. } => {
                fields.into_iter().map(|f| (f.field, f.code)).collect()
            }
            other => panic!("expected 400, got {other:?}"),
        }
    }

    #[test]
    fn empty_body_means_today_and_all_regions() {
        assert_eq!(
            validate(json!({})).unwrap(),
            ManualRunRequest {
                run_date: today(),
                regions: None
            }
        );
        assert_eq!(json_object(b"").unwrap(), Map::new());
    }

    #[test]
    fn a_valid_body_is_taken_as_sent() {
        let req = validate(json!({"run_date": "2026-12-01", "regions": ["eu-west", "us-east-2"]}))
            .unwrap();
        assert_eq!(req.run_date, NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
        assert_eq!(
            req.regions,
            Some(vec!["eu-west".to_string(), "us-east-2".to_string()])
        );
    }

    #[test]
    fn every_bad_field_is_named_once_without_its_value() {
        // GIVEN a body with a bad date, two bad regions, a duplicate and an unknown field
        let body = json!({"run_date": "2026-02-30", "regions": ["eu-west", "EU West", 7, "eu-west"], "email": "someone@example.com"});
        // WHEN it is validated
        let err = validate(body).unwrap_err();
        let text = format!("{:?}", err);
        // THEN each bad field is listed, and no value is repeated
        assert_eq!(
            fields(err),
            vec![
                ("email".to_string(), "unknown_field"),
                ("run_date".to_string(), "invalid_date"),
                ("regions[1]".to_string(), "invalid_region"),
                ("regions[2]".to_string(), "invalid_region"),
                ("regions[3]".to_string(), "duplicate_region"),
            ]
        );
        assert!(
            !text.contains("someone@example.com")
                && !text.contains("EU West")
                && !text.contains("02-30"),
            "{text}"
        );
    }

    #[test]
    fn dates_outside_the_window_or_badly_written_are_refused() {
        for date in [
            "2026-10-01",
            "2026-12-11",
            "2026-12-3",
            "20261203",
            "2026-12-03T00:00:00Z",
        ] {
            let codes = fields(validate(json!({"run_date": date})).unwrap_err());
            assert_eq!(codes.len(), 1, "{date}");
            assert_eq!(codes[0].0, "run_date");
        }
        assert_eq!(
            fields(validate(json!({"run_date": 20261203})).unwrap_err())[0].1,
            "invalid_date"
        );
        // The edges of the window are allowed.
        assert!(validate(json!({"run_date": "2026-11-02"})).is_ok());
        assert!(validate(json!({"run_date": "2026-12-10"})).is_ok());
    }

    #[test]
    fn regions_must_be_a_short_non_empty_list() {
        assert_eq!(
            fields(validate(json!({"regions": "eu-west"})).unwrap_err())[0].1,
            "invalid_type"
        );
        assert_eq!(
            fields(validate(json!({"regions": []})).unwrap_err())[0].1,
            "empty"
        );
        let many: Vec<String> = (0..51).map(|i| format!("r{i}")).collect();
        assert_eq!(
            fields(validate(json!({"regions": many})).unwrap_err())[0].1,
            "too_many"
        );
        let fifty: Vec<String> = (0..50).map(|i| format!("r{i}")).collect();
        assert_eq!(
            validate(json!({"regions": fifty}))
                .unwrap()
                .regions
                .unwrap()
                .len(),
            50
        );
        assert_eq!(
            fields(validate(json!({"regions": ["a".repeat(33)]})).unwrap_err())[0].1,
            "invalid_region"
        );
    }

    #[test]
    fn null_fields_mean_absent() {
        assert_eq!(
            validate(json!({"run_date": null, "regions": null})).unwrap(),
            ManualRunRequest {
                run_date: today(),
                regions: None
            }
        );
    }

    #[test]
    fn an_unknown_field_with_an_odd_name_is_described_not_quoted() {
        let codes = fields(validate(json!({"jane.doe@example.com": 1})).unwrap_err());
        assert_eq!(
            codes,
            vec![("(an unknown field)".to_string(), "unknown_field")]
        );
    }

    #[test]
    fn non_object_and_broken_json_are_bad_requests_that_do_not_quote_the_body() {
        assert!(matches!(
            json_object(b"[1,2]"),
            Err(ApiError::BadRequest { .. })
        ));
        let err = json_object(br#"{"run_date": "secret-value"#).unwrap_err();
        assert!(!err.to_string().contains("secret-value"), "{err}");
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn region_names_follow_the_pattern() {
        assert!(is_region_name("eu-west") && is_region_name("ap-south-1") && is_region_name("x"));
        assert!(
            !is_region_name("")
                && !is_region_name("EU")
                && !is_region_name("eu_west")
                && !is_region_name("eu west")
        );
    }
}
