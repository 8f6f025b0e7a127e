//! BatchWriteItem in chunks of 25, with `UnprocessedItems` retried under exponential backoff.

use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use futures::stream::{self, StreamExt};

use super::{Item, StoreError};

/// DynamoDB's limit of requests in one BatchWriteItem call.
pub const BATCH_SIZE: usize = 25;

/// How hard `batch_write_with` tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPolicy {
    /// Retries of a chunk's unprocessed items before they are reported as failed.
    pub max_retries: u32,
    /// First backoff delay; doubled per retry (with jitter).
    pub base_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// Chunks in flight at once.
    pub concurrency: usize,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        BatchPolicy {
            max_retries: 8,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
            concurrency: 4,
        }
    }
}

/// What a batch write did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteReport {
    /// Items DynamoDB accepted.
    pub written: usize,
    /// Items still unprocessed after every retry (they are in `failed_items`).
    pub failed: usize,
    /// BatchWriteItem calls made, retries included.
    pub calls: usize,
    /// Calls that were retries of unprocessed items.
    pub retries: usize,
    /// Items given but not written because they were invalid (e.g. no string key); not sent.
    pub rejected: usize,
    /// The items that could not be written, for the caller to keep or retry later.
    pub failed_items: Vec<Item>,
}

impl WriteReport {
    /// True when every valid item was written.
    pub fn is_complete(&self) -> bool {
        self.failed == 0
    }

    /// Adds another report's counts to this one.
    pub fn absorb(&mut self, other: WriteReport) {
        self.written += other.written;
        self.failed += other.failed;
        self.calls += other.calls;
        self.retries += other.retries;
        self.rejected += other.rejected;
        self.failed_items.extend(other.failed_items);
    }
}

/// One BatchWriteItem call: the seam that lets tests script `UnprocessedItems`.
pub trait BatchWriter: Send + Sync {
    /// Sends up to 25 put requests to `table`; returns the requests DynamoDB left unprocessed.
    fn write_batch(
        &self,
        table: &str,
        requests: Vec<WriteRequest>,
    ) -> impl Future<Output = Result<Vec<WriteRequest>, StoreError>> + Send;
}

impl BatchWriter for aws_sdk_dynamodb::Client {
    async fn write_batch(
        &self,
        table: &str,
        requests: Vec<WriteRequest>,
    ) -> Result<Vec<WriteRequest>, StoreError> {
        let out = self
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await
            .map_err(|e| StoreError::sdk("BatchWriteItem", table, e))?;
        Ok(out
            .unprocessed_items
            .and_then(|mut m| m.remove(table))
            .unwrap_or_default())
    }
}

/// Writes `items` to `table` with the default [`BatchPolicy`].
pub async fn batch_write_items(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    items: Vec<Item>,
) -> Result<WriteReport, StoreError> {
    batch_write_with(client, table, items, &BatchPolicy::default()).await
}

/// Writes `items` in chunks of 25, a few chunks in flight; unprocessed items are retried with
/// exponential backoff up to `policy.max_retries` times and then reported, never dropped.
/// An error of a call itself (after the SDK's retries) stops the write and is returned; the
/// items are plain puts, so writing them again is harmless.
pub async fn batch_write_with<W: BatchWriter>(
    writer: &W,
    table: &str,
    items: Vec<Item>,
    policy: &BatchPolicy,
) -> Result<WriteReport, StoreError> {
    let mut chunks: Vec<Vec<WriteRequest>> = Vec::new();
    let mut chunk = Vec::with_capacity(BATCH_SIZE);
    for item in items {
        let put = PutRequest::builder()
            .set_item(Some(item))
            .build()
            .map_err(|e| StoreError::Item(e.to_string()))?;
        chunk.push(WriteRequest::builder().put_request(put).build());
        if chunk.len() == BATCH_SIZE {
            chunks.push(std::mem::replace(
                &mut chunk,
                Vec::with_capacity(BATCH_SIZE),
            ));
        }
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    let mut results = stream::iter(chunks.into_iter().enumerate())
        .map(|(n, chunk)| write_chunk(writer, table, chunk, policy, n))
        .buffer_unordered(policy.concurrency.max(1));
    let mut report = WriteReport::default();
    while let Some(result) = results.next().await {
        report.absorb(result?);
    }
    Ok(report)
}

async fn write_chunk<W: BatchWriter>(
    writer: &W,
    table: &str,
    chunk: Vec<WriteRequest>,
    policy: &BatchPolicy,
    chunk_no: usize,
) -> Result<WriteReport, StoreError> {
    let total = chunk.len();
    let mut report = WriteReport::default();
    let mut pending = chunk;
    let mut attempt = 0u32;
    loop {
        report.calls += 1;
        let unprocessed = writer.write_batch(table, pending).await?;
        if unprocessed.is_empty() {
            report.written = total;
            return Ok(report);
        }
        if attempt >= policy.max_retries {
            report.written = total - unprocessed.len();
            report.failed = unprocessed.len();
            report.failed_items = unprocessed
                .into_iter()
                .filter_map(|w| w.put_request.map(|p| p.item))
                .collect();
            tracing::warn!(
                table,
                failed = report.failed,
                retries = attempt,
                "items still unprocessed after every retry"
            );
            return Ok(report);
        }
        tokio::time::sleep(backoff(policy, attempt, chunk_no)).await;
        attempt += 1;
        report.retries += 1;
        pending = unprocessed;
    }
}

/// `base · 2^attempt`, capped, with "equal jitter" so parallel chunks do not retry in lockstep.
fn backoff(policy: &BatchPolicy, attempt: u32, salt: usize) -> Duration {
    let exp = policy
        .base_delay
        .saturating_mul(1u32 << attempt.min(16))
        .min(policy.max_delay);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0) as u64;
    let spread = (nanos ^ (salt as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) % 1000;
    exp / 2 + exp.mul_f64(spread as f64 / 2000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;
    use std::sync::Mutex;

    /// A writer that leaves the last `n` requests of each call unprocessed for the first
    /// `times` calls, and records every call's size.
    struct Flaky {
        leave: usize,
        times: Mutex<usize>,
        calls: Mutex<Vec<usize>>,
        written: Mutex<Vec<String>>,
    }

    impl Flaky {
        fn new(leave: usize, times: usize) -> Flaky {
            Flaky {
                leave,
                times: Mutex::new(times),
                calls: Mutex::new(Vec::new()),
                written: Mutex::new(Vec::new()),
            }
        }
    }

    impl BatchWriter for Flaky {
        async fn write_batch(
            &self,
            _table: &str,
            mut requests: Vec<WriteRequest>,
        ) -> Result<Vec<WriteRequest>, StoreError> {
            self.calls.lock().unwrap().push(requests.len());
            let mut times = self.times.lock().unwrap();
            let keep = if *times > 0 {
                *times -= 1;
                self.leave.min(requests.len())
            } else {
                0
            };
            let unprocessed = requests.split_off(requests.len() - keep);
            for r in requests {
                let item = r.put_request.unwrap().item;
                self.written
                    .lock()
                    .unwrap()
                    .push(item["id"].as_s().unwrap().clone());
            }
            Ok(unprocessed)
        }
    }

    fn items(n: usize) -> Vec<Item> {
        (0..n)
            .map(|i| Item::from([("id".to_string(), AttributeValue::S(format!("i{i}")))]))
            .collect()
    }

    fn fast() -> BatchPolicy {
        BatchPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            concurrency: 1,
        }
    }

    #[tokio::test]
    async fn items_are_sent_in_chunks_of_at_most_25() {
        let writer = Flaky::new(0, 0);
        let report = batch_write_with(&writer, "t", items(60), &fast())
            .await
            .unwrap();
        assert_eq!(*writer.calls.lock().unwrap(), vec![25, 25, 10]);
        assert_eq!(report.written, 60);
        assert!(report.is_complete());
    }

    #[tokio::test]
    async fn unprocessed_items_are_retried_until_written() {
        // GIVEN DynamoDB leaves 5 items unprocessed twice
        let writer = Flaky::new(5, 2);
        // WHEN 25 items are written
        let report = batch_write_with(&writer, "t", items(25), &fast())
            .await
            .unwrap();
        // THEN the 5 are resent twice and everything is written exactly once
        assert_eq!(*writer.calls.lock().unwrap(), vec![25, 5, 5]);
        assert_eq!(report.written, 25);
        assert_eq!(report.retries, 2);
        let mut written = writer.written.lock().unwrap().clone();
        written.sort();
        written.dedup();
        assert_eq!(written.len(), 25);
    }

    #[tokio::test]
    async fn items_left_after_the_retry_bound_are_reported_not_dropped() {
        // GIVEN DynamoDB never processes 3 of the items
        let writer = Flaky::new(3, usize::MAX);
        let report = batch_write_with(&writer, "t", items(10), &fast())
            .await
            .unwrap();
        // THEN 1 call + 3 retries were made and the 3 come back as failed
        assert_eq!(report.calls, 4);
        assert_eq!(report.written, 7);
        assert_eq!(report.failed, 3);
        assert_eq!(report.failed_items.len(), 3);
        assert!(!report.is_complete());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = BatchPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..BatchPolicy::default()
        };
        let d0 = backoff(&policy, 0, 1);
        let d3 = backoff(&policy, 3, 1);
        let d10 = backoff(&policy, 10, 1);
        assert!(
            d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100),
            "{d0:?}"
        );
        assert!(
            d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(800),
            "{d3:?}"
        );
        assert!(d10 <= Duration::from_millis(1000), "{d10:?}");
    }
}
