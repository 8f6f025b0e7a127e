//! Queue behaviour against a private single redis-server.

mod support;

use support::scenarios as sc;
use support::RedisServer;

macro_rules! on_redis {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let redis = RedisServer::start();
            sc::$name(&redis.url(), "bull").await;
        }
    )*};
}

on_redis!(
    add_routes_jobs_by_their_options,
    custom_id_is_added_once,
    bulk_add_keeps_order_across_chunks,
    worker_completes_jobs_with_bullmq_fields,
    retry_with_exponential_backoff_lands_at_the_right_times,
    permanent_error_fails_at_once_and_dead_letters,
    last_attempt_failure_dead_letters_once,
    timed_out_job_fails_and_its_future_is_dropped,
    job_of_a_killed_worker_is_recovered_by_another,
    job_stalled_too_often_fails_with_the_stalled_reason,
    stale_completion_is_rejected,
    pause_keeps_jobs_waiting_and_resume_releases_them,
    drain_claims_only_within_its_budget,
    drain_waits_for_delayed_jobs_inside_its_budget,
    retention_removes_or_trims_finished_jobs,
    rate_limiter_spaces_jobs_per_window,
    replay_requeues_a_dead_letter_with_attempts_reset,
    progress_is_stored_and_emitted,
    concurrency_runs_n_jobs_at_once,
    several_workers_never_complete_a_job_twice,
    priorities_and_lifo_set_the_order,
    deferred_failure_on_a_fetched_job_is_honoured,
    malformed_job_data_fails_the_job_not_the_worker,
    lock_is_extended_while_a_long_job_runs,
    events_stream_is_capped_by_max_len,
    unstarted_prefetched_jobs_are_released_when_the_budget_ends,
    global_concurrency_caps_active_jobs_across_workers,
    finishes_leave_other_workers_jobs_in_active,
);
