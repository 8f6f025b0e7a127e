//! Score encodings of BullMQ's sorted sets, mirrored from the Lua scripts for tests and readers.

/// Jobs per millisecond that keep FIFO order in the delayed set.
pub const DELAYED_SEQ_SPAN: u64 = 4096;
/// Multiplier of the priority in the prioritized set's score.
pub const PRIORITY_SPAN: u64 = 1 << 32;
/// The largest priority BullMQ accepts (2^21 - 1).
pub const MAX_PRIORITY: u32 = (1 << 21) - 1;

/// Score of a delayed job due at `due_ms`, `seq` (0..4095) being its rank among jobs due that ms.
pub fn delayed_score(due_ms: u64, seq: u64) -> u64 {
    due_ms * DELAYED_SEQ_SPAN + seq.min(DELAYED_SEQ_SPAN - 1)
}

/// Due time in ms encoded in a delayed score (scores may come back as floats).
pub fn delayed_due_ms(score: f64) -> u64 {
    (score / DELAYED_SEQ_SPAN as f64).floor() as u64
}

/// True when a delayed job with this score is due at `now_ms` (the promotion test of the scripts).
pub fn delayed_is_due(score: u64, now_ms: u64) -> bool {
    score < (now_ms + 1) * DELAYED_SEQ_SPAN
}

/// Score of a prioritized job: lower runs first, FIFO within one priority by the `pc` counter.
pub fn priority_score(priority: u32, counter: u64) -> u64 {
    u64::from(priority) * PRIORITY_SPAN + (counter % PRIORITY_SPAN)
}

/// The priority encoded in a prioritized score.
pub fn priority_of_score(score: u64) -> u32 {
    (score / PRIORITY_SPAN) as u32
}
