//! The producer and admin side: connect, add jobs, read counts and jobs, pause, rate limit, replay.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fred::prelude::*;
use fred::types::Value as RedisValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::QueueError;
use crate::job::{Job, JobCounts, JobState, QueueEvent};
use crate::keys::Keys;
use crate::options::{JobOptions, NewJob, RateLimit};
use crate::scripts::{run, Scripts};
use crate::worker::DeadLetter;

/// Jobs per add script call: large enough to amortise the round trip, small enough not to block
/// Redis for long (a script runs alone).
const ADD_CHUNK: usize = 500;

/// Where the queue lives in Redis and how its client behaves.
#[derive(Clone, Debug)]
pub struct QueueSettings {
    /// Key prefix, BullMQ's default `bull`. Use a hash tag such as `{bull}` on Redis Cluster.
    pub prefix: String,
    /// Queue name, e.g. `prematchQueue`.
    pub name: String,
    /// Client-side deadline of every non-blocking command.
    pub command_timeout: Duration,
    /// Longest pause between reconnection attempts (exponential from 100 ms).
    pub reconnect_max_delay: Duration,
    /// Reconnection attempts per outage before the client gives up (0 = keep trying).
    pub reconnect_max_attempts: u32,
}

impl Default for QueueSettings {
    fn default() -> QueueSettings {
        QueueSettings {
            prefix: "bull".into(),
            name: "prematchQueue".into(),
            command_timeout: Duration::from_secs(10),
            reconnect_max_delay: Duration::from_secs(2),
            reconnect_max_attempts: 0,
        }
    }
}

impl QueueSettings {
    /// Settings for `prefix` and `name`, other fields default.
    pub fn new(prefix: impl Into<String>, name: impl Into<String>) -> QueueSettings {
        QueueSettings {
            prefix: prefix.into(),
            name: name.into(),
            ..QueueSettings::default()
        }
    }
}

/// Result of an add: the job's id and whether this call created it (false: the custom id existed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedJob {
    /// Job id.
    pub id: String,
    /// False when a job with this custom id already existed (nothing was changed).
    pub created: bool,
}

pub(crate) struct QueueInner {
    pub client: Client,
    pub keys: Keys,
    pub settings: QueueSettings,
    pub scripts: Scripts,
}

/// Producer and admin handle of one queue; cheap to clone.
#[derive(Clone)]
pub struct Queue {
    pub(crate) inner: Arc<QueueInner>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("keys", &self.inner.keys.base)
            .finish()
    }
}

impl Queue {
    /// Connects to `redis_url` (`redis://`, `rediss://` for TLS, `redis-cluster://host:port?node=...`).
    pub async fn connect(redis_url: &str, settings: QueueSettings) -> Result<Queue, QueueError> {
        let config = Config::from_url(redis_url)?;
        let client = build_client(config, &settings)?;
        client.init().await?;
        Queue::from_client(client, settings)
    }

    /// Uses an already initialised fred client.
    pub fn from_client(client: Client, settings: QueueSettings) -> Result<Queue, QueueError> {
        if settings.name.is_empty() || settings.name.contains(':') {
            return Err(QueueError::Settings(format!(
                "queue name {:?} must be non-empty and have no ':'",
                settings.name
            )));
        }
        if settings.prefix.is_empty() {
            return Err(QueueError::Settings("prefix must not be empty".into()));
        }
        let keys = Keys::new(&settings.prefix, &settings.name);
        Ok(Queue {
            inner: Arc::new(QueueInner {
                client,
                keys,
                settings,
                scripts: Scripts::new(),
            }),
        })
    }

    /// The fred client (for health checks or sharing).
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The settings this queue was opened with.
    pub fn settings(&self) -> &QueueSettings {
        &self.inner.settings
    }

    /// Full key of a queue structure, e.g. `key("wait")` = `bull:prematchQueue:wait`.
    pub fn key(&self, suffix: &str) -> String {
        self.inner.keys.key(suffix)
    }

    /// Adds one job.
    pub async fn add(
        &self,
        name: &str,
        data: Value,
        opts: JobOptions,
    ) -> Result<AddedJob, QueueError> {
        let mut added = self
            .add_bulk(vec![NewJob {
                name: name.to_string(),
                data,
                opts,
            }])
            .await?;
        added.pop().ok_or(QueueError::Protocol {
            script: "add",
            detail: "empty reply".into(),
        })
    }

    /// Adds many jobs: one script call per 500 jobs, all calls pipelined (one round trip per batch).
    pub async fn add_bulk(&self, jobs: Vec<NewJob>) -> Result<Vec<AddedJob>, QueueError> {
        for j in &jobs {
            j.opts.validate()?;
        }
        let now = crate::now_ms();
        let k = &self.inner.keys;
        let keys: Vec<String> = [
            "wait",
            "meta",
            "id",
            "delayed",
            "prioritized",
            "pc",
            "marker",
            "events",
            "active",
        ]
        .iter()
        .map(|s| k.key(s))
        .collect();
        let mut arg_lists = Vec::new();
        for chunk in jobs.chunks(ADD_CHUNK) {
            let mut args: Vec<String> = Vec::with_capacity(2 + chunk.len() * 8);
            args.push(k.base.clone());
            args.push(chunk.len().to_string());
            for j in chunk {
                let data =
                    serde_json::to_string(&j.data).map_err(|e| QueueError::InvalidOption {
                        option: "data",
                        reason: e.to_string(),
                    })?;
                args.push(j.opts.job_id.clone().unwrap_or_default());
                args.push(j.name.clone());
                args.push(data);
                args.push(j.opts.to_json().to_string());
                args.push(j.opts.timestamp.unwrap_or(now).to_string());
                args.push(j.opts.delay_ms().to_string());
                args.push(j.opts.priority.unwrap_or(0).to_string());
                args.push(if j.opts.lifo { "1" } else { "0" }.to_string());
            }
            arg_lists.push(args);
        }
        // The first chunk goes alone so that a NOSCRIPT reload cannot reorder chunks (ids follow the
        // order of execution); the others are pipelined in one round trip.
        let mut replies = Vec::with_capacity(arg_lists.len());
        let mut rest = arg_lists.into_iter();
        if let Some(first) = rest.next() {
            replies.push(
                run::<RedisValue, _, _>(
                    &self.inner.scripts.add,
                    &self.inner.client,
                    keys.clone(),
                    first,
                )
                .await,
            );
        }
        let calls: Vec<_> = rest
            .map(|args| {
                run::<RedisValue, _, _>(
                    &self.inner.scripts.add,
                    &self.inner.client,
                    keys.clone(),
                    args,
                )
            })
            .collect();
        replies.extend(futures::future::join_all(calls).await);
        let mut out = Vec::with_capacity(jobs.len());
        for reply in replies {
            let flat = reply?.into_array();
            for pair in flat.chunks(2) {
                let (Some(id), Some(created)) = (
                    pair.first().and_then(RedisValue::as_string),
                    pair.get(1).and_then(RedisValue::as_i64),
                ) else {
                    return Err(QueueError::Protocol {
                        script: "add",
                        detail: format!("bad pair {pair:?}"),
                    });
                };
                out.push(AddedJob {
                    id,
                    created: created == 1,
                });
            }
        }
        Ok(out)
    }

    /// Number of jobs in each state (one pipelined round trip).
    pub async fn counts(&self) -> Result<JobCounts, QueueError> {
        let k = &self.inner.keys;
        let p = self.inner.client.pipeline();
        let _: () = p.llen(k.key("wait")).await?;
        let _: () = p.llen(k.key("active")).await?;
        let _: () = p.zcard(k.key("delayed")).await?;
        let _: () = p.zcard(k.key("prioritized")).await?;
        let _: () = p.zcard(k.key("completed")).await?;
        let _: () = p.zcard(k.key("failed")).await?;
        let _: () = p.llen(k.key("paused")).await?;
        let _: () = p.zcard(k.key("waiting-children")).await?;
        let v: Vec<u64> = p.all().await?;
        let g = |i: usize| v.get(i).copied().unwrap_or(0);
        Ok(JobCounts {
            waiting: g(0),
            active: g(1),
            delayed: g(2),
            prioritized: g(3),
            completed: g(4),
            failed: g(5),
            paused: g(6),
            waiting_children: g(7),
        })
    }

    /// Reads one job; `None` if it does not exist.
    pub async fn get_job(&self, id: &str) -> Result<Option<Job>, QueueError> {
        let h: HashMap<String, String> = self.inner.client.hgetall(self.inner.keys.job(id)).await?;
        Job::from_hash(id, &h)
    }

    /// Jobs in the given states, newest first per state (BullMQ's default order), `start..=end` of
    /// each state's range (negative indexes count from the end, -1 = last).
    pub async fn get_jobs(
        &self,
        states: &[JobState],
        start: i64,
        end: i64,
    ) -> Result<Vec<Job>, QueueError> {
        let k = &self.inner.keys;
        let c = &self.inner.client;
        let mut ids: Vec<String> = Vec::new();
        for s in states {
            let key = k.key(s.key_suffix());
            let mut part: Vec<String> = if s.is_list() {
                c.lrange(key, start, end).await?
            } else {
                c.zrevrange(key, start, end, false).await?
            };
            ids.append(&mut part);
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let p = c.pipeline();
        for id in &ids {
            let _: () = p.hgetall(k.job(id)).await?;
        }
        let hashes: Vec<HashMap<String, String>> = p.all().await?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, h) in ids.iter().zip(hashes.iter()) {
            if let Some(job) = Job::from_hash(id, h)? {
                out.push(job);
            }
        }
        Ok(out)
    }

    /// The state structure holding `id`, checked in BullMQ's `getState` order.
    pub async fn get_state(&self, id: &str) -> Result<Option<JobState>, QueueError> {
        let k = &self.inner.keys;
        let c = &self.inner.client;
        for s in [
            JobState::Completed,
            JobState::Failed,
            JobState::Delayed,
            JobState::Prioritized,
        ] {
            let score: Option<f64> = c.zscore(k.key(s.key_suffix()), id).await?;
            if score.is_some() {
                return Ok(Some(s));
            }
        }
        for s in [JobState::Active, JobState::Waiting, JobState::Paused] {
            let pos: Option<i64> = c.lpos(k.key(s.key_suffix()), id, None, None, None).await?;
            if pos.is_some() {
                return Ok(Some(if s == JobState::Paused {
                    JobState::Waiting
                } else {
                    s
                }));
            }
        }
        let score: Option<f64> = c.zscore(k.key("waiting-children"), id).await?;
        Ok(score.map(|_| JobState::WaitingChildren))
    }

    /// Pauses the queue (v6: jobs stay in wait; workers stop claiming).
    pub async fn pause(&self) -> Result<(), QueueError> {
        self.pause_script("paused").await
    }

    /// Resumes a paused queue and wakes workers.
    pub async fn resume(&self) -> Result<(), QueueError> {
        self.pause_script("resumed").await
    }

    async fn pause_script(&self, what: &str) -> Result<(), QueueError> {
        let k = &self.inner.keys;
        let keys: Vec<String> = [
            "meta",
            "marker",
            "events",
            "wait",
            "paused",
            "prioritized",
            "delayed",
        ]
        .iter()
        .map(|s| k.key(s))
        .collect();
        let _: i64 = run(
            &self.inner.scripts.pause,
            &self.inner.client,
            keys,
            vec![what.to_string()],
        )
        .await?;
        Ok(())
    }

    /// Whether the queue is paused (`meta.paused` exists).
    pub async fn is_paused(&self) -> Result<bool, QueueError> {
        Ok(self
            .inner
            .client
            .hexists(self.inner.keys.key("meta"), "paused")
            .await?)
    }

    /// Sets (or with `None` removes) the queue-level rate limit, BullMQ's `meta.max`/`meta.duration`.
    pub async fn set_rate_limit(&self, limit: Option<RateLimit>) -> Result<(), QueueError> {
        let meta = self.inner.keys.key("meta");
        match limit {
            Some(l) => {
                let _: () = self
                    .inner
                    .client
                    .hset(
                        meta,
                        vec![
                            ("max", l.max.to_string()),
                            ("duration", (l.duration.as_millis() as u64).to_string()),
                        ],
                    )
                    .await?;
            }
            None => {
                let _: () = self
                    .inner
                    .client
                    .hdel(meta, vec!["max", "duration"])
                    .await?;
            }
        }
        Ok(())
    }

    /// Sets (or with `None` removes) the global concurrency, BullMQ's `meta.concurrency`.
    pub async fn set_global_concurrency(&self, concurrency: Option<u64>) -> Result<(), QueueError> {
        let meta = self.inner.keys.key("meta");
        match concurrency {
            Some(c) => {
                let _: () = self
                    .inner
                    .client
                    .hset(meta, ("concurrency", c.to_string()))
                    .await?;
            }
            None => {
                let _: () = self.inner.client.hdel(meta, "concurrency").await?;
            }
        }
        Ok(())
    }

    /// Health check: the round-trip time of a PING.
    pub async fn ping(&self) -> Result<Duration, QueueError> {
        let t = Instant::now();
        let _: String = self.inner.client.ping(None).await?;
        Ok(t.elapsed())
    }

    /// Entries of the events stream after `after` (exclusive; "-" for the start), at most `count`.
    pub async fn events(&self, after: &str, count: u64) -> Result<Vec<QueueEvent>, QueueError> {
        let start = if after == "-" {
            "-".to_string()
        } else {
            format!("({after}")
        };
        let entries: Vec<(String, HashMap<String, String>)> = self
            .inner
            .client
            .xrange_values(self.inner.keys.key("events"), start, "+", Some(count))
            .await?;
        Ok(entries
            .into_iter()
            .map(|(id, mut fields)| {
                let event = fields.remove("event").unwrap_or_default();
                QueueEvent { id, event, fields }
            })
            .collect())
    }

    /// Re-adds a dead-lettered job with its attempts reset. If the job is still in the failed set it
    /// is moved back to wait (same id, `created: true`); if it already left the failed set (replayed
    /// before) nothing changes (`created: false`); if it no longer exists it is added again from the
    /// dead letter (its custom id, if it had one).
    pub async fn replay(&self, dead: &DeadLetter) -> Result<AddedJob, QueueError> {
        let k = &self.inner.keys;
        let keys: Vec<String> = [
            "failed",
            "wait",
            "meta",
            "marker",
            "events",
            "prioritized",
            "pc",
            "active",
        ]
        .iter()
        .map(|s| k.key(s))
        .collect();
        let code: i64 = run(
            &self.inner.scripts.reprocess,
            &self.inner.client,
            keys,
            vec![k.base.clone(), dead.id.clone()],
        )
        .await?;
        match code {
            1 => Ok(AddedJob {
                id: dead.id.clone(),
                created: true,
            }),
            -3 => Ok(AddedJob {
                id: dead.id.clone(),
                created: false,
            }),
            -1 => {
                let mut opts = JobOptions::from_json(&dead.opts).unwrap_or_default();
                opts.timestamp = None;
                opts.delay = None;
                if opts.job_id.as_deref() != Some(dead.id.as_str()) {
                    opts.job_id = None;
                }
                self.add(&dead.name, dead.data.clone(), opts).await
            }
            other => Err(QueueError::Protocol {
                script: "reprocess",
                detail: format!("code {other}"),
            }),
        }
    }

    /// Runs the stalled-job check now (ignoring the throttle): jobs whose lock expired go back to
    /// wait. Returns the recovered ids.
    pub async fn recover_stalled(
        &self,
        max_stalled_count: u32,
        stalled_interval: Duration,
    ) -> Result<Vec<String>, QueueError> {
        self.stalled_check(max_stalled_count, stalled_interval, true)
            .await
    }

    pub(crate) async fn stalled_check(
        &self,
        max_stalled_count: u32,
        interval: Duration,
        force: bool,
    ) -> Result<Vec<String>, QueueError> {
        let k = &self.inner.keys;
        let keys: Vec<String> = [
            "stalled",
            "wait",
            "active",
            "stalled-check",
            "meta",
            "marker",
            "events",
        ]
        .iter()
        .map(|s| k.key(s))
        .collect();
        let args = vec![
            k.base.clone(),
            crate::now_ms().to_string(),
            max_stalled_count.to_string(),
            (interval.as_millis().max(1) as u64).to_string(),
            if force { "1" } else { "0" }.to_string(),
        ];
        run(&self.inner.scripts.stalled, &self.inner.client, keys, args).await
    }
}

pub(crate) fn build_client(config: Config, settings: &QueueSettings) -> Result<Client, QueueError> {
    let timeout = settings.command_timeout;
    let client = Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = Duration::from_secs(5);
            c.tcp = fred::types::config::TcpConfig {
                nodelay: Some(true),
                ..Default::default()
            };
        })
        .with_performance_config(|p| {
            p.default_command_timeout = timeout;
        })
        .set_policy(ReconnectPolicy::new_exponential(
            settings.reconnect_max_attempts,
            100,
            settings.reconnect_max_delay.as_millis().max(100) as u32,
            2,
        ))
        .build()?;
    Ok(client)
}
