//! Settings of the HTTP edge: taken from `Config`, plus the few only the HTTP functions read.

use std::time::Duration;

use crate::config::{Config, ConfigError, RateLimit};

/// What the two handlers need to know, read once at start-up.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiSettings {
    /// Per-caller limit of `POST /api/prematch/test` (`RATE_LIMIT_PER_MINUTE` / `RATE_LIMIT_BURST`).
    pub trigger_limit: RateLimit,
    /// Per-caller limit of `GET /api/prematch/check` (`CHECK_RATE_LIMIT_PER_MINUTE`, default 60 /
    /// `CHECK_RATE_LIMIT_BURST`, default 30): monitors poll it, so it is looser than the trigger's.
    pub check_limit: RateLimit,
    /// Bound on each dependency probe and on the worker kick (`PROBE_TIMEOUT_MS`, default 2000).
    pub probe_timeout: Duration,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Attempts of a manual run job (`JOB_ATTEMPTS`, default 3).
    pub job_attempts: u32,
    /// First delay of the run job's exponential backoff (`BACKOFF_DELAY_MS`, default 30000).
    pub backoff_delay: Duration,
    /// How long a manual run holds its date against a second one when nothing says it finished:
    /// the longest a run can take (attempts × (timeout + backoff)), at least an hour.
    pub manual_run_hold: Duration,
    /// Prefix of the Redis keys the HTTP edge owns: `{prefix}:{queue}:prematch:`.
    pub key_prefix: String,
    /// The queue's name, shown by the check.
    pub queue_name: String,
    /// The queue's key prefix (`QUEUE_PREFIX`).
    pub queue_prefix: String,
    /// `WORKER_FUNCTION_NAME` only: the trigger must not fall back to `AWS_LAMBDA_FUNCTION_NAME`
    /// as `Config::worker_function` does, since in the trigger that is the trigger itself.
    pub worker_function: Option<String>,
}

/// The trigger accepts a small JSON object; anything near this size is not a legitimate request.
pub const MAX_BODY_BYTES: usize = 4096;

impl ApiSettings {
    /// Reads the settings from `config` and the process environment.
    pub fn from_config(config: &Config) -> Result<ApiSettings, ConfigError> {
        ApiSettings::from_lookup(config, |name| std::env::var(name).ok())
    }

    /// Reads the settings from `config` and `lookup` (name → value); an empty value counts as unset.
    pub fn from_lookup(
        config: &Config,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<ApiSettings, ConfigError> {
        let get = |var: &str| {
            lookup(var)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let number = |var: &'static str,
                      default: u64,
                      min: u64,
                      max: u64,
                      what: &str|
         -> Result<u64, ConfigError> {
            let Some(raw) = get(var) else {
                return Ok(default);
            };
            match raw.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(ConfigError::Invalid {
                    var,
                    value: Some(raw),
                    expected: format!("{what} from {min} to {max}"),
                }),
            }
        };
        let check_limit = RateLimit {
            per_minute: number(
                "CHECK_RATE_LIMIT_PER_MINUTE",
                60,
                1,
                100_000,
                "a whole number of requests",
            )? as u32,
            burst: number(
                "CHECK_RATE_LIMIT_BURST",
                30,
                0,
                100_000,
                "a whole number of requests",
            )? as u32,
        };
        let probe_timeout = Duration::from_millis(number(
            "PROBE_TIMEOUT_MS",
            2000,
            50,
            20_000,
            "a whole number of milliseconds",
        )?);
        let longest_run = (config.job_timeout + config.backoff_delay) * config.job_attempts.max(1);
        Ok(ApiSettings {
            trigger_limit: config.rate_limit.clone(),
            check_limit,
            probe_timeout,
            max_body_bytes: MAX_BODY_BYTES,
            job_attempts: config.job_attempts,
            backoff_delay: config.backoff_delay,
            manual_run_hold: longest_run.max(Duration::from_secs(3600)),
            key_prefix: format!("{}:{}:prematch:", config.queue_prefix, config.queue_name),
            queue_name: config.queue_name.clone(),
            queue_prefix: config.queue_prefix.clone(),
            worker_function: get("WORKER_FUNCTION_NAME"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config() -> Config {
        let vars: HashMap<String, String> =
            [("REDIS_URL".to_string(), "redis://127.0.0.1:1".to_string())].into();
        Config::from_map(&vars).unwrap()
    }

    #[test]
    fn defaults_come_from_config_and_constants() {
        let settings = ApiSettings::from_lookup(&config(), |_| None).unwrap();
        assert_eq!(settings.trigger_limit, config().rate_limit);
        assert_eq!(
            settings.check_limit,
            RateLimit {
                per_minute: 60,
                burst: 30
            }
        );
        assert_eq!(settings.probe_timeout, Duration::from_secs(2));
        assert_eq!(settings.job_attempts, 3);
        assert_eq!(settings.backoff_delay, Duration::from_millis(30_000));
        assert_eq!(settings.key_prefix, "bull:prematchQueue:prematch:");
        assert!(settings.manual_run_hold >= Duration::from_secs(3600));
    }

    #[test]
    fn the_worker_to_kick_is_never_the_function_itself() {
        let lookup =
            |name: &str| (name == "AWS_LAMBDA_FUNCTION_NAME").then(|| "stack-trigger".to_string());
        assert_eq!(
            ApiSettings::from_lookup(&config(), lookup)
                .unwrap()
                .worker_function,
            None
        );
        let lookup =
            |name: &str| (name == "WORKER_FUNCTION_NAME").then(|| "stack-worker".to_string());
        assert_eq!(
            ApiSettings::from_lookup(&config(), lookup)
                .unwrap()
                .worker_function
                .as_deref(),
            Some("stack-worker")
        );
    }

    #[test]
    fn malformed_setting_is_one_line_naming_it() {
        let err = ApiSettings::from_lookup(&config(), |name| {
            (name == "PROBE_TIMEOUT_MS").then(|| "soon".to_string())
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "PROBE_TIMEOUT_MS=\"soon\" is invalid: expected a whole number of milliseconds from 50 to 20000"
        );
    }
}
