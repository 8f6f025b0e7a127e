//! Dead-letter redrive: add failed jobs back to the queue, then (only then) delete their SQS messages.

use std::time::Duration;

use prematch_queue::Queue;
use serde::Serialize;

use crate::dlq::{DeadLetterMessage, SqsDeadLetters};

/// Which dead letters to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redrive {
    /// Every dead letter in the DLQ.
    All,
    /// Only the jobs with these ids.
    Ids(Vec<String>),
}

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RedriveReport {
    /// Jobs added back (with their attempts reset), by id.
    pub replayed: Vec<String>,
    /// Messages left in the DLQ because the add failed (id and reason).
    pub failed: Vec<(String, String)>,
    /// Messages that are not prematch dead letters (left in place).
    pub foreign: usize,
    /// Messages not selected (left in place).
    pub skipped: usize,
}

/// How long received messages stay hidden while a redrive works through them.
const REDRIVE_VISIBILITY: Duration = Duration::from_secs(120);
/// Messages looked at per redrive.
const REDRIVE_MAX: usize = 1000;

/// Replays the selected dead letters: each one is re-added to the queue with its attempts reset,
/// and its message deleted only once the add succeeded; anything else is released back.
pub async fn redrive(
    dlq: &SqsDeadLetters,
    queue: &Queue,
    which: &Redrive,
) -> Result<RedriveReport, String> {
    let messages = dlq
        .receive(REDRIVE_MAX, REDRIVE_VISIBILITY)
        .await
        .map_err(|e| e.to_string())?;
    let mut report = RedriveReport::default();
    for message in messages {
        let DeadLetterMessage {
            receipt_handle,
            dead,
            ..
        } = message;
        let selected = match (&dead, which) {
            (None, _) => {
                report.foreign += 1;
                false
            }
            (Some(_), Redrive::All) => true,
            (Some(d), Redrive::Ids(ids)) => {
                let hit = ids.contains(&d.id);
                report.skipped += usize::from(!hit);
                hit
            }
        };
        let outcome = match (&dead, selected) {
            (Some(d), true) => Some((d.id.clone(), queue.replay(d).await)),
            _ => None,
        };
        match outcome {
            Some((id, Ok(_))) => match dlq.delete(&receipt_handle).await {
                Ok(()) => report.replayed.push(id),
                // Added back but the message stays: a later redrive replays it again, which the
                // job's custom id turns into a no-op when it is still in the queue.
                Err(e) => report.failed.push((
                    id,
                    format!("replayed, but the message could not be deleted: {e}"),
                )),
            },
            Some((id, Err(e))) => {
                report.failed.push((id, e.to_string()));
                let _ = dlq.release(&receipt_handle).await;
            }
            None => {
                let _ = dlq.release(&receipt_handle).await;
            }
        }
    }
    Ok(report)
}
