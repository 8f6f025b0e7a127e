//! Property tests: score encodings and option round trips.

use std::time::Duration;

use prematch_queue::scores::*;
use prematch_queue::{Backoff, BackoffKind, JobOptions, KeepJobs};
use proptest::prelude::*;

proptest! {
    #[test]
    fn delayed_score_encodes_due_time_and_order(due in 0u64..(1u64 << 40), seq in 0u64..4096, seq2 in 0u64..4096) {
        let s = delayed_score(due, seq);
        prop_assert_eq!(delayed_due_ms(s as f64), due);
        prop_assert!(delayed_is_due(s, due));
        prop_assert!(!delayed_is_due(s, due.saturating_sub(1)) || due == 0);
        // FIFO inside one millisecond, and every job of an earlier ms sorts first
        prop_assert_eq!(s < delayed_score(due, seq2), seq < seq2);
        prop_assert!(s < delayed_score(due + 1, 0));
    }

    #[test]
    fn priority_score_orders_by_priority_then_insertion(p1 in 1u32..=MAX_PRIORITY, p2 in 1u32..=MAX_PRIORITY, c1 in 0u64..(1u64 << 32), c2 in 0u64..(1u64 << 32)) {
        let (a, b) = (priority_score(p1, c1), priority_score(p2, c2));
        prop_assert_eq!(priority_of_score(a), p1);
        prop_assert!(a < (1u64 << 53), "fits a double exactly");
        prop_assert_eq!(a < b, (p1, c1) < (p2, c2));
    }

    #[test]
    fn job_options_round_trip_through_stored_json(
        attempts in 0u32..50,
        delay in proptest::option::of(1u64..10_000_000),
        priority in proptest::option::of(1u32..=MAX_PRIORITY),
        lifo in any::<bool>(),
        backoff in proptest::option::of((0u64..100_000, any::<bool>(), proptest::option::of((1u32..=100).prop_map(|k| f64::from(k) / 100.0)))),
        keep in proptest::option::of(0u8..4),
        count in 0u64..1000,
        id in proptest::option::of("[a-z][a-z0-9_-]{0,20}"),
    ) {
        let keep_jobs = keep.map(|k| match k {
            0 => KeepJobs::Remove,
            1 => KeepJobs::KeepAll,
            2 => KeepJobs::Count(count),
            _ => KeepJobs::Age { age_secs: count + 1, count: Some(count), limit: None },
        });
        let opts = JobOptions {
            job_id: id,
            delay: delay.map(Duration::from_millis),
            priority,
            lifo,
            attempts: Some(attempts),
            backoff: backoff.map(|(d, exp, j)| Backoff { kind: if exp { BackoffKind::Exponential } else { BackoffKind::Fixed }, delay_ms: d, jitter: j }),
            remove_on_complete: keep_jobs.clone(),
            remove_on_fail: keep_jobs,
            ..JobOptions::default()
        };
        let text = opts.to_json().to_string();
        let back = JobOptions::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
        prop_assert_eq!(back, opts);
    }

    #[test]
    fn backoff_follows_bullmq_formulas(delay in 0u64..100_000, n in 1u32..20, unit in 0.0f64..1.0, jitter in 0.01f64..=1.0) {
        let max = (2f64.powi(n as i32 - 1) * delay as f64).round() as u64;
        prop_assert_eq!(Backoff::exponential(delay).delay_for(n, unit), max);
        prop_assert_eq!(Backoff::fixed(delay).delay_for(n, unit), delay);
        let j = Backoff::exponential(delay).with_jitter(jitter).delay_for(n, unit);
        prop_assert!(j <= max && j as f64 >= (max as f64 * (1.0 - jitter)).floor() - 1.0);
    }
}
