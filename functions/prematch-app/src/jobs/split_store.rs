//! What the jobs of a split region share, in Redis: the users snapshot, each shard's candidate
//! edges, the selected pairs and who has finished.
//!
//! Every job of a split region compiles the very same users (the snapshot the `region` job took),
//! so user indices agree between jobs and edges can be stored as plain `(a, b, score)` triples.
//! Keys live under `{prefix}:{queue}:prematch:split:{run_id}:{region}` (one hash-tag slot with a
//! `{bull}` prefix) and expire after [`SPLIT_TTL_SECS`]; the data keys are deleted as soon as the
//! region is reported. Large values are chunked so no single command moves more than a few MB.

use std::collections::BTreeMap;

use fred::bytes::Bytes;
use fred::prelude::*;
use prematch_engine::{
    CompiledRegion, Edge, HistoryPair, MatchConfig, NaiveDate, RegionBuilder, User,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// How long a split's keys live when nobody cleans them up (a run abandoned half-way).
pub const SPLIT_TTL_SECS: i64 = 2 * 24 * 3600;
/// Users per snapshot chunk (about 6 MB of JSON).
const USERS_PER_CHUNK: usize = 20_000;
/// Edges per chunk (12 bytes each: about 6 MB).
const EDGES_PER_CHUNK: usize = 500_000;

fn edges_per_chunk() -> u64 {
    EDGES_PER_CHUNK as u64
}

/// Errors of the split store.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// Redis failed.
    #[error("split store: redis: {0}")]
    Redis(#[from] fred::error::Error),
    /// A stored value is not what we wrote, or a part is missing.
    #[error("split store: {key}: {message}")]
    Corrupt {
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The blocking task that compiles the snapshot failed (it panicked or was cancelled).
    #[error("split store: {0}")]
    Task(String),
}

/// What the `region` job read, kept for the region's final summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitPlan {
    /// When the `region` job started (epoch ms), for the region's duration.
    pub started_ms: i64,
    /// Records read from the users table.
    pub users_read: u64,
    /// Records skipped, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Users in the snapshot.
    pub users: u64,
    /// Snapshot chunks.
    pub user_chunks: u32,
    /// Scoring shards.
    pub shards: u32,
    /// Time spent paging the users, ms.
    pub read_ms: u64,
    /// Time spent reading the history, ms.
    pub history_ms: u64,
}

/// What one scoring shard found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardResult {
    /// Users the shard compiled (the same in every shard: the snapshot's, deduplicated).
    pub users: u64,
    /// Edges stored.
    pub edges: u64,
    /// Chunks they are stored in.
    pub edge_chunks: u32,
    /// Pairs scanned.
    pub pairs_scanned: u64,
    /// Directed feasible pairs seen.
    pub feasible_directed: u64,
    /// Σ best-K halves of the shard's owners (fixed-point score units).
    pub best_k_half_sum: f64,
    /// Scoring time, ms.
    pub ms: u64,
}

/// What the selection found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SelectResult {
    /// Pairs selected.
    pub pairs: u64,
    /// Chunks they are stored in.
    pub pair_chunks: u32,
    /// Pairs per chunk (the last may hold fewer), so a write part reads only its own chunks.
    #[serde(default = "edges_per_chunk")]
    pub pairs_per_chunk: u64,
    /// Write jobs they are split into.
    pub parts: u32,
    /// Users with at least one candidate.
    pub users_with_feasible_partner: u64,
    /// Users with at least one suggestion.
    pub users_covered: u64,
    /// The method used (`auction` or `greedy`).
    pub method: String,
    /// Merge and selection time, ms.
    pub ms: u64,
}

/// What one write job stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WriteResult {
    /// Items written.
    pub items_written: u64,
    /// Time, ms.
    pub ms: u64,
}

/// The split of one region of one run.
#[derive(Clone)]
pub struct SplitStore {
    client: Client,
    base: String,
}

impl SplitStore {
    /// The split of `region` in `run_id`, under `{prefix}:{queue}:prematch:split:`.
    pub fn new(
        client: Client,
        prefix: &str,
        queue: &str,
        run_id: &str,
        region: &str,
    ) -> SplitStore {
        SplitStore {
            client,
            base: format!("{prefix}:{queue}:prematch:split:{run_id}:{region}"),
        }
    }

    fn meta(&self) -> String {
        self.base.clone()
    }

    fn users_key(&self, chunk: u32) -> String {
        format!("{}:users:{chunk}", self.base)
    }

    fn history_key(&self) -> String {
        format!("{}:history", self.base)
    }

    fn edges_key(&self, shard: u32, chunk: u32) -> String {
        format!("{}:edges:{shard}:{chunk}", self.base)
    }

    fn pairs_key(&self, chunk: u32) -> String {
        format!("{}:pairs:{chunk}", self.base)
    }

    async fn field<T: DeserializeOwned>(&self, field: &str) -> Result<Option<T>, SplitError> {
        let raw: Option<String> = self.client.hget(self.meta(), field).await?;
        raw.map(|r| {
            serde_json::from_str(&r).map_err(|e| SplitError::Corrupt {
                key: format!("{} {field}", self.meta()),
                message: e.to_string(),
            })
        })
        .transpose()
    }

    async fn set_field<T: Serialize>(&self, field: &str, value: &T) -> Result<(), SplitError> {
        let json = serde_json::to_string(value).map_err(|e| SplitError::Corrupt {
            key: format!("{} {field}", self.meta()),
            message: e.to_string(),
        })?;
        let _: () = self.client.hset(self.meta(), (field, json)).await?;
        let _: () = self
            .client
            .expire(self.meta(), SPLIT_TTL_SECS, None)
            .await?;
        Ok(())
    }

    async fn put(&self, key: String, value: Bytes) -> Result<(), SplitError> {
        let _: () = self
            .client
            .set(
                key,
                value,
                Some(Expiration::EX(SPLIT_TTL_SECS)),
                None,
                false,
            )
            .await?;
        Ok(())
    }

    async fn take(&self, key: String) -> Result<Bytes, SplitError> {
        let value: Option<Bytes> = self.client.get(&key).await?;
        value.ok_or_else(|| SplitError::Corrupt {
            key,
            message: "missing (expired, or cleaned up after the region was reported)".into(),
        })
    }

    /// The plan, once the snapshot is complete (`None` before, or after the TTL).
    pub async fn plan(&self) -> Result<Option<SplitPlan>, SplitError> {
        self.field("plan").await
    }

    /// Stores the users and history every job of the split compiles, then the plan: the plan is
    /// written last, so a plan means a complete snapshot (a `region` job killed half-way leaves no
    /// plan and its retry writes the snapshot again).
    pub async fn save_snapshot(
        &self,
        users: &[User],
        history: &[HistoryPair],
        mut plan: SplitPlan,
    ) -> Result<SplitPlan, SplitError> {
        let mut chunks = 0u32;
        for chunk in users.chunks(USERS_PER_CHUNK) {
            let json = serde_json::to_vec(chunk).map_err(|e| SplitError::Corrupt {
                key: self.users_key(chunks),
                message: e.to_string(),
            })?;
            self.put(self.users_key(chunks), Bytes::from(json)).await?;
            chunks += 1;
        }
        let json = serde_json::to_vec(history).map_err(|e| SplitError::Corrupt {
            key: self.history_key(),
            message: e.to_string(),
        })?;
        self.put(self.history_key(), Bytes::from(json)).await?;
        plan.users = users.len() as u64;
        plan.user_chunks = chunks;
        self.set_field("plan", &plan).await?;
        Ok(plan)
    }

    /// The snapshot compiled for matching. Each chunk of users is parsed and pushed into the
    /// engine's [`RegionBuilder`] on a blocking thread while the next chunk is read, so the parsed
    /// records of the whole region never exist at once (at a million users about 0.9 GB less in
    /// every split job, and no parse on the async threads that keep the job's lock).
    pub async fn compiled_snapshot(
        &self,
        plan: &SplitPlan,
        run_date: NaiveDate,
        cfg: &MatchConfig,
    ) -> Result<CompiledRegion, SplitError> {
        let key = self.history_key();
        let raw = self.take(key.clone()).await?;
        let history: Vec<HistoryPair> =
            serde_json::from_slice(&raw).map_err(|e| SplitError::Corrupt {
                key,
                message: e.to_string(),
            })?;
        // One chunk in flight while the blocking side parses the previous one.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, Bytes)>(1);
        let (cfg, expected, first_key) = (cfg.clone(), plan.users, self.users_key(0));
        let compiling = tokio::task::spawn_blocking(move || {
            let mut builder = RegionBuilder::new(run_date, &cfg);
            while let Some((key, raw)) = rx.blocking_recv() {
                let part: Vec<User> =
                    serde_json::from_slice(&raw).map_err(|e| SplitError::Corrupt {
                        key,
                        message: e.to_string(),
                    })?;
                for user in part {
                    builder.push(user);
                }
            }
            if builder.input_users() as u64 != expected {
                return Err(SplitError::Corrupt {
                    key: first_key,
                    message: format!(
                        "{} users in the snapshot, the plan says {expected}",
                        builder.input_users()
                    ),
                });
            }
            Ok(builder.finish(&history))
        });
        for chunk in 0..plan.user_chunks {
            let key = self.users_key(chunk);
            let raw = self.take(key.clone()).await?;
            if tx.send((key, raw)).await.is_err() {
                // The parser stopped at a bad chunk: its error is the one to report.
                break;
            }
        }
        drop(tx);
        compiling
            .await
            .map_err(|e| SplitError::Task(format!("compiling the snapshot: {e}")))?
    }

    async fn put_edges(
        &self,
        key_of: impl Fn(u32) -> String,
        edges: &[Edge],
    ) -> Result<u32, SplitError> {
        let mut chunks = 0u32;
        for chunk in edges.chunks(EDGES_PER_CHUNK) {
            self.put(key_of(chunks), encode_edges(chunk)).await?;
            chunks += 1;
        }
        Ok(chunks)
    }

    async fn get_edges(
        &self,
        key_of: impl Fn(u32) -> String,
        chunks: u32,
        out: &mut Vec<Edge>,
    ) -> Result<(), SplitError> {
        for chunk in 0..chunks {
            let key = key_of(chunk);
            let raw = self.take(key.clone()).await?;
            decode_edges(&raw, out).map_err(|message| SplitError::Corrupt { key, message })?;
        }
        Ok(())
    }

    /// Stores a shard's edges and records the shard as done; returns how many shards are done.
    /// A retried shard overwrites its own keys with the same values and is counted once.
    pub async fn finish_shard(
        &self,
        shard: u32,
        edges: &[Edge],
        mut result: ShardResult,
    ) -> Result<u32, SplitError> {
        result.edge_chunks = self.put_edges(|c| self.edges_key(shard, c), edges).await?;
        result.edges = edges.len() as u64;
        self.set_field(&format!("shard:{shard}"), &result).await?;
        self.count("shard:").await
    }

    /// Every shard's result, by shard; `None` while one is missing.
    pub async fn shard_results(&self, shards: u32) -> Result<Option<Vec<ShardResult>>, SplitError> {
        let mut out = Vec::with_capacity(shards as usize);
        for shard in 0..shards {
            match self.field::<ShardResult>(&format!("shard:{shard}")).await? {
                Some(r) => out.push(r),
                None => return Ok(None),
            }
        }
        Ok(Some(out))
    }

    /// The edges of one shard.
    pub async fn shard_edges(
        &self,
        shard: u32,
        result: &ShardResult,
        out: &mut Vec<Edge>,
    ) -> Result<(), SplitError> {
        self.get_edges(|c| self.edges_key(shard, c), result.edge_chunks, out)
            .await
    }

    /// Stores the selected pairs and the selection's result.
    pub async fn finish_select(
        &self,
        pairs: &[Edge],
        mut result: SelectResult,
    ) -> Result<SelectResult, SplitError> {
        result.pair_chunks = self.put_edges(|c| self.pairs_key(c), pairs).await?;
        result.pairs_per_chunk = edges_per_chunk();
        result.pairs = pairs.len() as u64;
        self.set_field("select", &result).await?;
        Ok(result)
    }

    /// The selection's result, once it is stored.
    pub async fn select_result(&self) -> Result<Option<SelectResult>, SplitError> {
        self.field("select").await
    }

    /// The selected pairs `range` (clamped to the pairs stored), reading only the chunks that hold
    /// them: each write part needs its own slice, not all of them.
    pub async fn pairs(
        &self,
        result: &SelectResult,
        range: std::ops::Range<usize>,
    ) -> Result<Vec<Edge>, SplitError> {
        let total = result.pairs as usize;
        let (from, to) = (range.start.min(total), range.end.min(total));
        let per_chunk = result.pairs_per_chunk.max(1) as usize;
        let first = from / per_chunk;
        let mut out = Vec::new();
        for chunk in first..to.div_ceil(per_chunk) {
            let key = self.pairs_key(chunk as u32);
            let raw = self.take(key.clone()).await?;
            decode_edges(&raw, &mut out).map_err(|message| SplitError::Corrupt { key, message })?;
        }
        let skip = from - first * per_chunk;
        if out.len() < skip + (to - from) {
            return Err(SplitError::Corrupt {
                key: self.pairs_key(first as u32),
                message: format!(
                    "pairs {from}..{to} asked, the chunks from {first} hold {} from pair {}",
                    out.len(),
                    first * per_chunk
                ),
            });
        }
        out.truncate(skip + (to - from));
        out.drain(..skip);
        Ok(out)
    }

    /// Records a write part as done; returns how many parts are done.
    pub async fn finish_write(&self, part: u32, result: &WriteResult) -> Result<u32, SplitError> {
        self.set_field(&format!("write:{part}"), result).await?;
        self.count("write:").await
    }

    /// Every write part's result.
    pub async fn write_results(&self) -> Result<Vec<WriteResult>, SplitError> {
        let fields: BTreeMap<String, String> = self.client.hgetall(self.meta()).await?;
        fields
            .iter()
            .filter(|(k, _)| k.starts_with("write:"))
            .map(|(k, v)| {
                serde_json::from_str(v).map_err(|e| SplitError::Corrupt {
                    key: format!("{} {k}", self.meta()),
                    message: e.to_string(),
                })
            })
            .collect()
    }

    async fn count(&self, prefix: &str) -> Result<u32, SplitError> {
        let fields: Vec<String> = self.client.hkeys(self.meta()).await?;
        Ok(fields.iter().filter(|f| f.starts_with(prefix)).count() as u32)
    }

    /// Whether the region was already reported to its run (a late retry has nothing left to do).
    pub async fn is_reported(&self) -> Result<bool, SplitError> {
        let reported: Option<String> = self.client.hget(self.meta(), "reported").await?;
        Ok(reported.is_some())
    }

    /// Marks the region reported and deletes the data keys; the small meta hash stays until its TTL
    /// so late retries can see the region is done.
    pub async fn close(&self, plan: &SplitPlan) -> Result<(), SplitError> {
        let _: () = self.client.hset(self.meta(), ("reported", "1")).await?;
        let mut keys: Vec<String> = (0..plan.user_chunks).map(|c| self.users_key(c)).collect();
        keys.push(self.history_key());
        if let Some(shards) = self.shard_results(plan.shards).await? {
            for (shard, r) in shards.iter().enumerate() {
                keys.extend((0..r.edge_chunks).map(|c| self.edges_key(shard as u32, c)));
            }
        }
        if let Some(select) = self.select_result().await? {
            keys.extend((0..select.pair_chunks).map(|c| self.pairs_key(c)));
        }
        // One key at a time: with a hash-tag prefix they share a slot, without one they may not.
        for key in keys {
            let _: i64 = self.client.del(key).await?;
        }
        Ok(())
    }
}

/// Edges as little-endian `(a, b, score)` u32 triples.
pub fn encode_edges(edges: &[Edge]) -> Bytes {
    let mut out = Vec::with_capacity(edges.len() * 12);
    for e in edges {
        out.extend_from_slice(&e.a.to_le_bytes());
        out.extend_from_slice(&e.b.to_le_bytes());
        out.extend_from_slice(&e.score.to_le_bytes());
    }
    Bytes::from(out)
}

/// Appends the edges of [`encode_edges`] output to `out`.
pub fn decode_edges(raw: &[u8], out: &mut Vec<Edge>) -> Result<(), String> {
    if !raw.len().is_multiple_of(12) {
        return Err(format!(
            "{} bytes is not a whole number of 12-byte edges",
            raw.len()
        ));
    }
    let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    out.extend(raw.chunks_exact(12).map(|c| Edge {
        a: word(&c[0..4]),
        b: word(&c[4..8]),
        score: word(&c[8..12]),
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_round_trip_through_their_encoding() {
        let edges = vec![
            Edge {
                a: 0,
                b: 1,
                score: 7,
            },
            Edge {
                a: 3,
                b: u32::MAX,
                score: 1_000_000,
            },
        ];
        let mut back = Vec::new();
        decode_edges(&encode_edges(&edges), &mut back).unwrap();
        assert_eq!(back, edges);
    }

    #[test]
    fn a_truncated_edge_chunk_is_refused() {
        let raw = encode_edges(&[Edge {
            a: 1,
            b: 2,
            score: 3,
        }]);
        let err = decode_edges(&raw[..11], &mut Vec::new()).unwrap_err();
        assert!(err.contains("11 bytes"), "{err}");
    }
}
