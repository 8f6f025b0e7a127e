//! Redis adapters of the trigger: the one-manual-run-per-date slot.
//!
//! A slot is one key per date holding the run id, with an expiry as a backstop for a run that
//! never reports its end. Taking over and releasing compare the holder first (one script each), so
//! two triggers racing for the same stale slot cannot both win.

use std::time::Duration;

use chrono::NaiveDate;
use fred::prelude::*;

use crate::api::trigger::{QueueFailure, SlotClaim};

// KEYS[1] the slot. ARGV[1] the stale holder, ARGV[2] the new holder, ARGV[3] hold (ms).
const TAKE_OVER: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"#;

// KEYS[1] the slot. ARGV[1] the holder that may release it.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// Manual-run slots under `{key_prefix}manual-run:{date}`.
#[derive(Clone)]
pub struct ManualRunSlots {
    client: Client,
    prefix: String,
}

fn failure(e: fred::error::Error) -> QueueFailure {
    QueueFailure(format!("redis: {e}"))
}

fn millis(d: Duration) -> i64 {
    d.as_millis().clamp(1, i64::MAX as u128) as i64
}

impl ManualRunSlots {
    /// Slots on `client` under `key_prefix` (e.g. `bull:prematchQueue:prematch:`).
    pub fn new(client: Client, key_prefix: &str) -> ManualRunSlots {
        ManualRunSlots {
            client,
            prefix: format!("{key_prefix}manual-run:"),
        }
    }

    fn key(&self, run_date: NaiveDate) -> String {
        format!("{}{run_date}", self.prefix)
    }

    /// Claims `run_date` for `run_id` unless held.
    pub async fn claim(
        &self,
        run_date: NaiveDate,
        run_id: &str,
        hold: Duration,
    ) -> Result<SlotClaim, QueueFailure> {
        let key = self.key(run_date);
        let set: Option<String> = self
            .client
            .set(
                &key,
                run_id,
                Some(Expiration::PX(millis(hold))),
                Some(SetOptions::NX),
                false,
            )
            .await
            .map_err(failure)?;
        if set.is_some() {
            return Ok(SlotClaim::Claimed);
        }
        let holder: Option<String> = self.client.get(&key).await.map_err(failure)?;
        match holder {
            Some(run_id) => Ok(SlotClaim::Held { run_id }),
            // Expired between SET and GET: try once more.
            None => {
                let set: Option<String> = self
                    .client
                    .set(
                        &key,
                        run_id,
                        Some(Expiration::PX(millis(hold))),
                        Some(SetOptions::NX),
                        false,
                    )
                    .await
                    .map_err(failure)?;
                match set {
                    Some(_) => Ok(SlotClaim::Claimed),
                    None => Ok(SlotClaim::Held {
                        run_id: "(unknown)".to_string(),
                    }),
                }
            }
        }
    }

    /// Moves the slot from `stale` to `run_id`; false when `stale` no longer holds it.
    pub async fn take_over(
        &self,
        run_date: NaiveDate,
        stale: &str,
        run_id: &str,
        hold: Duration,
    ) -> Result<bool, QueueFailure> {
        let moved: i64 = self
            .client
            .eval(
                TAKE_OVER,
                vec![self.key(run_date)],
                vec![
                    stale.to_string(),
                    run_id.to_string(),
                    millis(hold).to_string(),
                ],
            )
            .await
            .map_err(failure)?;
        Ok(moved == 1)
    }

    /// Releases the slot if `run_id` holds it.
    pub async fn release(&self, run_date: NaiveDate, run_id: &str) -> Result<(), QueueFailure> {
        let _: i64 = self
            .client
            .eval(RELEASE, vec![self.key(run_date)], vec![run_id.to_string()])
            .await
            .map_err(failure)?;
        Ok(())
    }

    /// The run holding `run_date`, if any.
    pub async fn holder(&self, run_date: NaiveDate) -> Result<Option<String>, QueueFailure> {
        self.client.get(self.key(run_date)).await.map_err(failure)
    }
}

/// A Redis client for an HTTP function. It connects in the background and reconnects forever, so
/// a function starts (and answers 503 or `down`) while Redis is unreachable, and recovers without a
/// cold start when Redis is back. Every command gives up after `command_timeout`.
pub fn lazy_client(
    redis_url: &str,
    command_timeout: Duration,
) -> Result<Client, fred::error::Error> {
    let config = Config::from_url(redis_url)?;
    let client = Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = command_timeout;
            c.internal_command_timeout = command_timeout;
        })
        .with_performance_config(|p| p.default_command_timeout = command_timeout)
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
        .build()?;
    // Not awaited: commands queue until the connection is up and time out on their own.
    let _connection = client.connect();
    Ok(client)
}
