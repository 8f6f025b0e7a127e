//! Settings read once from the environment (DESIGN §3.4); every one but `REDIS_URL` has a default.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use url::Url;

/// A setting that is missing or malformed; `Display` is one line naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set (or is empty).
    #[error("{var} is not set: expected {expected}")]
    Missing {
        /// The environment variable.
        var: &'static str,
        /// What a valid value looks like.
        expected: &'static str,
    },
    /// A variable is set but cannot be used. `value` is `None` for secrets, which are never echoed.
    #[error("{var}{} is invalid: expected {expected}", shown(.value))]
    Invalid {
        /// The environment variable.
        var: &'static str,
        /// The offending value, unless it may hold a secret.
        value: Option<String>,
        /// What a valid value looks like.
        expected: String,
    },
}

fn shown(value: &Option<String>) -> String {
    match value {
        Some(v) => format!("={v:?}"),
        None => String::new(),
    }
}

/// A secret string: usable, but `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    /// The secret itself, for the one place that needs it (an auth check, a connection).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The Redis connection URL after `REDIS_PORT` and `REDIS_PASSWORD` were merged in.
/// `Debug`/`Display` show it with the password replaced by `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(Url);

impl RedisUrl {
    /// The full URL, password included, for the Redis client only.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
    /// True for `rediss://` and `rediss-cluster://`: the connection uses TLS.
    pub fn is_tls(&self) -> bool {
        self.0.scheme().starts_with("rediss")
    }
    /// True for `redis-cluster://` and `rediss-cluster://`.
    pub fn is_cluster(&self) -> bool {
        self.0.scheme().ends_with("-cluster")
    }
    /// Host name or address.
    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }
    /// Port (6379 when the URL names none).
    pub fn port(&self) -> u16 {
        self.0.port().unwrap_or(DEFAULT_REDIS_PORT)
    }
    /// The URL with any password replaced by `***`: safe for logs.
    pub fn redacted(&self) -> String {
        let mut shown = self.0.clone();
        if shown.password().is_some() {
            // set_password only fails for URLs that cannot have credentials; ours always can.
            let _ = shown.set_password(Some("***"));
        }
        shown.to_string()
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({})", self.redacted())
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

const DEFAULT_REDIS_PORT: u16 = 6379;
const REDIS_SCHEMES: [&str; 4] = ["redis", "rediss", "redis-cluster", "rediss-cluster"];

/// Rate limit of the manual trigger (`POST /api/prematch/test`): a token bucket per caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per minute (`RATE_LIMIT_PER_MINUTE`, default 6).
    pub per_minute: u32,
    /// Extra requests allowed in a burst (`RATE_LIMIT_BURST`, default 3).
    pub burst: u32,
}

/// Everything the three binaries and the CLI read from the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `REDIS_URL` (+ `REDIS_PORT`, `REDIS_PASSWORD`); `rediss://` means TLS.
    pub redis_url: RedisUrl,
    /// `QUEUE_NAME`, default `prematchQueue`.
    pub queue_name: String,
    /// `QUEUE_PREFIX`, default `bull` (use a hash tag such as `{bull}` on Redis Cluster).
    pub queue_prefix: String,
    /// `USERS_TABLE`, default `users`.
    pub users_table: String,
    /// `MATCHES_TABLE`, default `matches`.
    pub matches_table: String,
    /// `DLQ_URL`: the SQS dead-letter queue. When unset the queue is looked up by `dlq_name`.
    pub dlq_url: Option<String>,
    /// `DLQ_NAME`, default `prematch-dlq`: used to find or create the queue when `DLQ_URL` is unset.
    pub dlq_name: String,
    /// `JOB_TIMEOUT_SECS`, default 300 (1..=900).
    pub job_timeout: Duration,
    /// `JOB_ATTEMPTS`, default 3 (1..=25).
    pub job_attempts: u32,
    /// `BACKOFF_DELAY_MS`, default 30000: the first delay of the exponential backoff.
    pub backoff_delay: Duration,
    /// `WORKER_CONCURRENCY`, default 1 (1..=64): jobs one worker runs at once.
    pub worker_concurrency: usize,
    /// `MAX_WORKERS`, default 4 (1..=100): how many workers a scale-out may ask for.
    pub max_workers: u32,
    /// `WORKER_BUDGET_SECS`, default 840 (1..=900): the drain budget when the Lambda deadline is
    /// unknown or already past (local emulators, tests).
    pub worker_budget: Duration,
    /// `DEADLINE_MARGIN_SECS`, default 10: time kept back at the end of a drain for flushing.
    pub deadline_margin: Duration,
    /// `WORKER_FUNCTION_NAME`, else `AWS_LAMBDA_FUNCTION_NAME`: the worker to invoke for scale-out.
    pub worker_function: Option<String>,
    /// `MATCHES_PER_USER`, default 3 (1..=50).
    pub matches_per_user: usize,
    /// `HISTORY_DAYS`, default 14 (0..=365): days before the run date whose pairs are not repeated.
    pub history_days: u32,
    /// `MIN_OVERLAP_MINUTES`, default 60 (1..=10080).
    pub min_overlap_minutes: u32,
    /// `MATCH_TTL_DAYS`, default 30 (1..=3650): `expires_at` of a suggestion, from the run date.
    pub match_ttl_days: u32,
    /// `USER_PAGE_SIZE`, default 500 (1..=10000): `Limit` of one Query page on `region-index`.
    pub user_page_size: u32,
    /// `HISTORY_CACHE_TTL_SECS`, default 3600: how long a region's history stays cached in Redis.
    pub history_cache_ttl: Duration,
    /// `REGION_SHARD_USERS`, default 100000 (10..=10000000): a region with more active users is
    /// split into scoring shards of at most this many users, so each job fits its timeout.
    pub region_shard_users: u32,
    /// `REGION_WRITE_PAIRS`, default 100000 (1..=10000000): suggestions one write job of a split
    /// region stores (two items each).
    pub region_write_pairs: u32,
    /// `REGIONS`: comma-separated list; when unset the regions are read from the users table.
    pub regions: Option<Vec<String>>,
    /// `ADMIN_API_KEY`: the trigger's static key, for set-ups without IAM.
    pub admin_api_key: Option<Secret>,
    /// `ADMIN_API_KEY_PARAM`: name of an SSM parameter holding the key.
    pub admin_api_key_param: Option<String>,
    /// `RATE_LIMIT_PER_MINUTE` / `RATE_LIMIT_BURST`.
    pub rate_limit: RateLimit,
    /// `AWS_ENDPOINT_URL`: a local DynamoDB/SQS (moto). The SDK reads it too; we pass it explicitly.
    pub aws_endpoint_url: Option<String>,
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`; `None` lets the SDK's provider chain decide.
    pub aws_region: Option<String>,
}

impl Config {
    /// Reads the process environment. The error names the first bad variable.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings from a map (tests, the CLI's `--env-file`).
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    /// Reads settings through `lookup` (name → value); an empty value counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Env(&lookup);
        let redis_url = redis_url(&env)?;
        let queue_prefix = env.string("QUEUE_PREFIX", "bull");
        if queue_prefix.contains(':') {
            return Err(invalid(
                "QUEUE_PREFIX",
                Some(queue_prefix),
                "a key prefix without ':' such as bull or {bull}",
            ));
        }
        let queue_name = env.string("QUEUE_NAME", "prematchQueue");
        if queue_name.contains(':') {
            return Err(invalid(
                "QUEUE_NAME",
                Some(queue_name),
                "a queue name without ':'",
            ));
        }
        let dlq_url = env.get("DLQ_URL");
        if let Some(u) = &dlq_url {
            check_http_url(
                "DLQ_URL",
                u,
                "an SQS queue URL such as https://sqs.<region>.amazonaws.com/<account>/<name>",
            )?;
        }
        let aws_endpoint_url = env.get("AWS_ENDPOINT_URL");
        if let Some(u) = &aws_endpoint_url {
            check_http_url(
                "AWS_ENDPOINT_URL",
                u,
                "an http(s) URL such as http://127.0.0.1:5000",
            )?;
        }
        let admin_api_key = env.get("ADMIN_API_KEY").map(Secret::new);
        if let Some(key) = &admin_api_key {
            if key.expose().len() < 16 {
                return Err(ConfigError::Invalid {
                    var: "ADMIN_API_KEY",
                    value: None,
                    expected: "a key of at least 16 characters".into(),
                });
            }
        }
        Ok(Config {
            redis_url,
            queue_name,
            queue_prefix,
            users_table: env.table("USERS_TABLE", "users")?,
            matches_table: env.table("MATCHES_TABLE", "matches")?,
            dlq_url,
            dlq_name: env.queue_name("DLQ_NAME", "prematch-dlq")?,
            job_timeout: Duration::from_secs(env.number(
                "JOB_TIMEOUT_SECS",
                300,
                1..=900,
                "a whole number of seconds",
            )?),
            job_attempts: env.number("JOB_ATTEMPTS", 3, 1..=25, "a whole number of attempts")?
                as u32,
            backoff_delay: Duration::from_millis(env.number(
                "BACKOFF_DELAY_MS",
                30_000,
                0..=3_600_000,
                "a whole number of milliseconds",
            )?),
            worker_concurrency: env.number(
                "WORKER_CONCURRENCY",
                1,
                1..=64,
                "a whole number of jobs",
            )? as usize,
            max_workers: env.number("MAX_WORKERS", 4, 1..=100, "a whole number of workers")? as u32,
            worker_budget: Duration::from_secs(env.number(
                "WORKER_BUDGET_SECS",
                840,
                1..=900,
                "a whole number of seconds",
            )?),
            deadline_margin: Duration::from_secs(env.number(
                "DEADLINE_MARGIN_SECS",
                10,
                0..=300,
                "a whole number of seconds",
            )?),
            worker_function: env
                .get("WORKER_FUNCTION_NAME")
                .or_else(|| env.get("AWS_LAMBDA_FUNCTION_NAME")),
            matches_per_user: env.number(
                "MATCHES_PER_USER",
                3,
                1..=50,
                "a whole number of suggestions",
            )? as usize,
            history_days: env.number("HISTORY_DAYS", 14, 0..=365, "a whole number of days")? as u32,
            min_overlap_minutes: env.number(
                "MIN_OVERLAP_MINUTES",
                60,
                1..=10_080,
                "a whole number of minutes",
            )? as u32,
            match_ttl_days: env.number("MATCH_TTL_DAYS", 30, 1..=3650, "a whole number of days")?
                as u32,
            user_page_size: env.number(
                "USER_PAGE_SIZE",
                500,
                1..=10_000,
                "a whole number of items",
            )? as u32,
            history_cache_ttl: Duration::from_secs(env.number(
                "HISTORY_CACHE_TTL_SECS",
                3600,
                0..=604_800,
                "a whole number of seconds",
            )?),
            region_shard_users: env.number(
                "REGION_SHARD_USERS",
                100_000,
                10..=10_000_000,
                "a whole number of users",
            )? as u32,
            region_write_pairs: env.number(
                "REGION_WRITE_PAIRS",
                100_000,
                1..=10_000_000,
                "a whole number of suggestions",
            )? as u32,
            regions: env.regions("REGIONS")?,
            admin_api_key,
            admin_api_key_param: env.get("ADMIN_API_KEY_PARAM"),
            rate_limit: RateLimit {
                per_minute: env.number(
                    "RATE_LIMIT_PER_MINUTE",
                    6,
                    1..=10_000,
                    "a whole number of requests",
                )? as u32,
                burst: env.number(
                    "RATE_LIMIT_BURST",
                    3,
                    0..=10_000,
                    "a whole number of requests",
                )? as u32,
            },
            aws_endpoint_url,
            aws_region: env
                .get("AWS_REGION")
                .or_else(|| env.get("AWS_DEFAULT_REGION")),
        })
    }
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// The trimmed value; empty counts as unset so `FOO=` in an env file means "default".
    fn get(&self, var: &str) -> Option<String> {
        (self.0)(var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn string(&self, var: &str, default: &str) -> String {
        self.get(var).unwrap_or_else(|| default.to_string())
    }

    fn number(
        &self,
        var: &'static str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
        what: &str,
    ) -> Result<u64, ConfigError> {
        let Some(raw) = self.get(var) else {
            return Ok(default);
        };
        match raw.parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(invalid(
                var,
                Some(raw),
                &format!("{what} from {} to {}", range.start(), range.end()),
            )),
        }
    }

    fn table(&self, var: &'static str, default: &str) -> Result<String, ConfigError> {
        let name = self.string(var, default);
        let ok = (3..=255).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if ok {
            Ok(name)
        } else {
            Err(invalid(
                var,
                Some(name),
                "a DynamoDB table name: 3-255 characters of a-z, A-Z, 0-9, '_', '-', '.'",
            ))
        }
    }

    fn queue_name(&self, var: &'static str, default: &str) -> Result<String, ConfigError> {
        let name = self.string(var, default);
        let ok = (1..=80).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
        if ok {
            Ok(name)
        } else {
            Err(invalid(
                var,
                Some(name),
                "an SQS queue name: 1-80 characters of a-z, A-Z, 0-9, '_', '-'",
            ))
        }
    }

    fn regions(&self, var: &'static str) -> Result<Option<Vec<String>>, ConfigError> {
        let Some(raw) = self.get(var) else {
            return Ok(None);
        };
        let mut regions: Vec<String> = Vec::new();
        for part in raw.split(',') {
            let region = part.trim();
            let ok = !region.is_empty()
                && region.len() <= 64
                && region
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
            if !ok {
                return Err(invalid(
                    var,
                    Some(raw.clone()),
                    "a comma-separated list of region names such as eu-west,us-east",
                ));
            }
            if !regions.iter().any(|r| r == region) {
                regions.push(region.to_string());
            }
        }
        Ok(Some(regions))
    }
}

fn invalid(var: &'static str, value: Option<String>, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        var,
        value,
        expected: expected.to_string(),
    }
}

fn check_http_url(var: &'static str, raw: &str, expected: &str) -> Result<(), ConfigError> {
    match Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        _ => Err(invalid(var, Some(raw.to_string()), expected)),
    }
}

const REDIS_URL_EXPECTED: &str =
    "a URL such as redis://host:6379 or rediss://host:6379 (TLS), or a bare host name";

/// `REDIS_URL` with `REDIS_PORT` and `REDIS_PASSWORD` merged in. A bare host (as some deployment
/// guides give it, next to a separate port and password) becomes `redis://host`.
fn redis_url(env: &Env<'_>) -> Result<RedisUrl, ConfigError> {
    let raw = env.get("REDIS_URL").ok_or(ConfigError::Missing {
        var: "REDIS_URL",
        expected: REDIS_URL_EXPECTED,
    })?;
    // The URL may carry a password: never echo it in an error.
    let bad = || ConfigError::Invalid {
        var: "REDIS_URL",
        value: None,
        expected: REDIS_URL_EXPECTED.to_string(),
    };
    let with_scheme = if raw.contains("://") {
        raw
    } else {
        format!("redis://{raw}")
    };
    let mut url = Url::parse(&with_scheme).map_err(|_| bad())?;
    if !REDIS_SCHEMES.contains(&url.scheme()) || url.host_str().is_none_or(str::is_empty) {
        return Err(bad());
    }
    if let Some(raw_port) = env.get("REDIS_PORT") {
        let port = raw_port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                invalid(
                    "REDIS_PORT",
                    Some(raw_port.clone()),
                    "a TCP port from 1 to 65535",
                )
            })?;
        if let Some(in_url) = url.port() {
            if in_url != port {
                return Err(invalid(
                    "REDIS_PORT",
                    Some(raw_port),
                    &format!("the same port as REDIS_URL ({in_url}), or leave one of them unset"),
                ));
            }
        }
        url.set_port(Some(port)).map_err(|_| bad())?;
    }
    if let Some(password) = env.get("REDIS_PASSWORD") {
        // Url percent-encodes the password, so any character is safe here.
        url.set_password(Some(&password))
            .map_err(|_| ConfigError::Invalid {
                var: "REDIS_PASSWORD",
                value: None,
                expected: "a password usable in a Redis URL".into(),
            })?;
    }
    Ok(RedisUrl(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_map(&vars)
    }

    #[test]
    fn only_redis_url_is_required_and_everything_else_has_a_default() {
        // GIVEN only REDIS_URL
        let cfg = config(&[("REDIS_URL", "redis://127.0.0.1:6390")]).unwrap();
        // THEN the documented defaults apply
        assert_eq!(cfg.queue_name, "prematchQueue");
        assert_eq!(cfg.queue_prefix, "bull");
        assert_eq!(cfg.users_table, "users");
        assert_eq!(cfg.matches_table, "matches");
        assert_eq!(cfg.dlq_url, None);
        assert_eq!(cfg.dlq_name, "prematch-dlq");
        assert_eq!(cfg.job_timeout, Duration::from_secs(300));
        assert_eq!(cfg.job_attempts, 3);
        assert_eq!(cfg.backoff_delay, Duration::from_millis(30_000));
        assert_eq!(cfg.matches_per_user, 3);
        assert_eq!(cfg.history_days, 14);
        assert_eq!(cfg.worker_budget, Duration::from_secs(840));
        assert_eq!(cfg.regions, None);
        assert_eq!(
            cfg.rate_limit,
            RateLimit {
                per_minute: 6,
                burst: 3
            }
        );
        assert!(!cfg.redis_url.is_tls());
    }

    #[test]
    fn missing_redis_url_names_the_variable_in_one_line() {
        let err = config(&[]).unwrap_err();
        let line = err.to_string();
        assert!(line.starts_with("REDIS_URL is not set: expected"), "{line}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn malformed_number_names_variable_value_and_expected_range() {
        let err = config(&[("REDIS_URL", "redis://h"), ("JOB_TIMEOUT_SECS", "5m")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "JOB_TIMEOUT_SECS=\"5m\" is invalid: expected a whole number of seconds from 1 to 900"
        );
        let err = config(&[("REDIS_URL", "redis://h"), ("JOB_TIMEOUT_SECS", "0")]).unwrap_err();
        assert!(
            err.to_string().starts_with("JOB_TIMEOUT_SECS=\"0\""),
            "{err}"
        );
    }

    #[test]
    fn port_and_password_are_merged_into_the_url() {
        // GIVEN a bare host, a port and a password with URL-special characters
        let cfg = config(&[
            ("REDIS_URL", "cache.example.internal"),
            ("REDIS_PORT", "6380"),
            ("REDIS_PASSWORD", "p@ss:w/rd"),
        ])
        .unwrap();
        // THEN they form one URL, password percent-encoded
        assert_eq!(
            cfg.redis_url.expose(),
            "redis://:p%40ss%3Aw%2Frd@cache.example.internal:6380"
        );
        assert_eq!(cfg.redis_url.port(), 6380);
        assert_eq!(cfg.redis_url.host(), "cache.example.internal");
    }

    #[test]
    fn rediss_scheme_means_tls() {
        let cfg = config(&[("REDIS_URL", "rediss://master.cache.amazonaws.com:6379")]).unwrap();
        assert!(cfg.redis_url.is_tls());
        let cfg = config(&[("REDIS_URL", "rediss-cluster://c.example:6379")]).unwrap();
        assert!(cfg.redis_url.is_tls() && cfg.redis_url.is_cluster());
    }

    #[test]
    fn conflicting_port_is_rejected() {
        let err = config(&[("REDIS_URL", "redis://h:6379"), ("REDIS_PORT", "6380")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("REDIS_PORT=\"6380\" is invalid"),
            "{err}"
        );
    }

    #[test]
    fn bad_redis_url_is_rejected_without_echoing_it() {
        let err = config(&[("REDIS_URL", "http://user:hunter2@h:1")]).unwrap_err();
        let line = err.to_string();
        assert!(line.starts_with("REDIS_URL is invalid: expected"), "{line}");
        assert!(!line.contains("hunter2"));
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        let cfg = config(&[
            ("REDIS_URL", "redis://:urlsecret@h:1"),
            ("ADMIN_API_KEY", "admin-secret-0123456789"),
        ])
        .unwrap();
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("urlsecret"), "{shown}");
        assert!(!shown.contains("admin-secret"), "{shown}");
        assert!(shown.contains("redis://:***@h:1"), "{shown}");
        // ...while the code that needs them still gets them
        assert_eq!(
            cfg.admin_api_key.unwrap().expose(),
            "admin-secret-0123456789"
        );
        let cfg = config(&[
            ("REDIS_URL", "redis://h:1"),
            ("REDIS_PASSWORD", "pw-secret"),
        ])
        .unwrap();
        assert!(!format!("{cfg:?}").contains("pw-secret"));
    }

    #[test]
    fn short_admin_key_is_rejected_without_echoing_it() {
        let err = config(&[("REDIS_URL", "redis://h"), ("ADMIN_API_KEY", "short")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ADMIN_API_KEY is invalid: expected a key of at least 16 characters"
        );
    }

    #[test]
    fn regions_list_is_trimmed_and_deduplicated() {
        let cfg = config(&[
            ("REDIS_URL", "redis://h"),
            ("REGIONS", " eu-west, us-east ,eu-west"),
        ])
        .unwrap();
        assert_eq!(
            cfg.regions,
            Some(vec!["eu-west".to_string(), "us-east".to_string()])
        );
        let err = config(&[("REDIS_URL", "redis://h"), ("REGIONS", "eu-west,,x")]).unwrap_err();
        assert!(err.to_string().starts_with("REGIONS="), "{err}");
    }

    #[test]
    fn empty_value_means_default() {
        let cfg = config(&[("REDIS_URL", "redis://h"), ("QUEUE_NAME", "  ")]).unwrap();
        assert_eq!(cfg.queue_name, "prematchQueue");
    }

    #[test]
    fn endpoint_and_dlq_urls_must_be_http_urls() {
        let cfg = config(&[
            ("REDIS_URL", "redis://h"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5055"),
            ("DLQ_URL", "http://127.0.0.1:5055/123456789012/prematch-dlq"),
        ])
        .unwrap();
        assert_eq!(
            cfg.aws_endpoint_url.as_deref(),
            Some("http://127.0.0.1:5055")
        );
        let err = config(&[
            ("REDIS_URL", "redis://h"),
            ("AWS_ENDPOINT_URL", "localhost:5055"),
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("AWS_ENDPOINT_URL=\"localhost:5055\""),
            "{err}"
        );
    }

    #[test]
    fn worker_function_falls_back_to_the_lambda_function_name() {
        let cfg = config(&[
            ("REDIS_URL", "redis://h"),
            ("AWS_LAMBDA_FUNCTION_NAME", "stack-worker"),
        ])
        .unwrap();
        assert_eq!(cfg.worker_function.as_deref(), Some("stack-worker"));
        let cfg = config(&[
            ("REDIS_URL", "redis://h"),
            ("AWS_LAMBDA_FUNCTION_NAME", "stack-trigger"),
            ("WORKER_FUNCTION_NAME", "stack-worker"),
        ])
        .unwrap();
        assert_eq!(cfg.worker_function.as_deref(), Some("stack-worker"));
    }

    #[test]
    fn bad_table_name_is_rejected() {
        let err = config(&[("REDIS_URL", "redis://h"), ("USERS_TABLE", "a b")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("USERS_TABLE=\"a b\" is invalid"),
            "{err}"
        );
    }
}
