//! Per-caller rate limits shared by every Lambda instance: a token bucket (GCRA) kept in Redis.
//!
//! A caller may send `burst + 1` requests at once and then one every `60 s / per_minute`. The state is
//! one key per caller holding the "theoretical arrival time"; a Lua script reads Redis' own clock so
//! the limit holds across Lambda instances whose clocks differ.

use std::future::Future;
use std::time::Duration;

use fred::prelude::*;

use crate::config::RateLimit;

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// True when the request may proceed.
    pub allowed: bool,
    /// How many more requests would be allowed right now.
    pub remaining: u64,
    /// When denied, how long until one would be allowed.
    pub retry_after: Duration,
}

/// The limiter could not decide (Redis unreachable); the caller chooses to fail open or closed.
#[derive(Debug, thiserror::Error)]
#[error("rate limiter: {0}")]
pub struct RateLimitError(pub String);

/// Counts a request of `caller` against its limit.
pub trait RateLimiter: Send + Sync {
    /// Takes one token of `caller` (a stable id such as an IAM ARN or a source address).
    fn acquire(
        &self,
        caller: &str,
    ) -> impl Future<Output = Result<RateDecision, RateLimitError>> + Send;
}

// KEYS[1]: the caller's bucket. ARGV[1]: emission interval (ms per request), ARGV[2]: burst tolerance
// (burst × interval, ms). The stored value is the time (ms) at which the bucket is full again; a
// request is allowed while that time is at most `tolerance` ahead of now. The key expires when the
// bucket would be full, so idle callers cost nothing.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local ahead = tat - now
if ahead > tolerance then
  return {0, 0, ahead - tolerance}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
local remaining = math.floor((tolerance - (new_tat - now)) / interval) + 1
if remaining < 0 then remaining = 0 end
return {1, remaining, 0}
"#;

/// The GCRA parameters of a limit, in milliseconds.
fn gcra_params(limit: &RateLimit) -> (u64, u64) {
    let interval = (60_000 / u64::from(limit.per_minute.max(1))).max(1);
    (interval, interval * u64::from(limit.burst))
}

/// A [`RateLimiter`] on Redis, one bucket per caller under `{key_prefix}ratelimit:{scope}:`.
#[derive(Clone)]
pub struct RedisRateLimiter {
    client: Client,
    bucket_prefix: String,
    limit: RateLimit,
}

impl RedisRateLimiter {
    /// A limiter for one endpoint (`scope`, e.g. `trigger` or `check`).
    pub fn new(
        client: Client,
        key_prefix: &str,
        scope: &str,
        limit: RateLimit,
    ) -> RedisRateLimiter {
        RedisRateLimiter {
            client,
            bucket_prefix: format!("{key_prefix}ratelimit:{scope}:"),
            limit,
        }
    }
}

impl RateLimiter for RedisRateLimiter {
    async fn acquire(&self, caller: &str) -> Result<RateDecision, RateLimitError> {
        let (interval, tolerance) = gcra_params(&self.limit);
        let key = format!("{}{caller}", self.bucket_prefix);
        let reply: Vec<i64> = self
            .client
            .eval(
                GCRA,
                vec![key],
                vec![interval.to_string(), tolerance.to_string()],
            )
            .await
            .map_err(|e| RateLimitError(e.to_string()))?;
        match reply.as_slice() {
            [allowed, remaining, wait_ms] => Ok(RateDecision {
                allowed: *allowed == 1,
                remaining: (*remaining).max(0) as u64,
                retry_after: Duration::from_millis((*wait_ms).max(0) as u64),
            }),
            other => Err(RateLimitError(format!(
                "unexpected script reply of {} values",
                other.len()
            ))),
        }
    }
}

/// No limit at all: for local set-ups without Redis and for tests of other behaviour.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unlimited;

impl RateLimiter for Unlimited {
    async fn acquire(&self, _caller: &str) -> Result<RateDecision, RateLimitError> {
        Ok(RateDecision {
            allowed: true,
            remaining: u64::MAX,
            retry_after: Duration::ZERO,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_a_minute_with_a_burst_of_three_is_one_every_ten_seconds_four_at_once() {
        let (interval, tolerance) = gcra_params(&RateLimit {
            per_minute: 6,
            burst: 3,
        });
        assert_eq!(interval, 10_000);
        assert_eq!(tolerance, 30_000);
    }

    #[test]
    fn absurd_rates_still_give_a_positive_interval() {
        let (interval, _) = gcra_params(&RateLimit {
            per_minute: 1_000_000,
            burst: 0,
        });
        assert_eq!(interval, 1);
    }
}
