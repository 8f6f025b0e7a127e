//! Start-up of the two HTTP functions: settings, clients and state, built once; one-line errors.

use std::sync::Arc;

use prematch_queue::{Queue, QueueSettings};

use super::adapters::lambda::ConfiguredKick;
use super::adapters::redis::lazy_client;
use super::adapters::sqs::DlqRef;
use super::adapters::{LambdaWorkerKick, QueueAdapter, SqsDlqProbe};
use super::auth::{AdminAuth, AuthSetupError};
use super::check::{CheckSettings, CheckState};
use super::rate_limit::RedisRateLimiter;
use super::settings::ApiSettings;
use super::trigger::{NoKick, TriggerSettings, TriggerState};
use crate::aws::AwsClients;
use crate::config::{Config, ConfigError};
use crate::jobs::runs::RunStore;
use crate::jobs::worker::RUN_RETENTION_SECS;

/// Why a function cannot start. `Display` is the one line `main` prints before exiting.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting is missing or malformed.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The admin key could not be loaded.
    #[error("{0}")]
    Auth(#[from] AuthSetupError),
    /// The Redis client could not be built (the URL is not usable).
    #[error("REDIS_URL: cannot build a Redis client: {0}")]
    Redis(String),
}

/// The production state of `prematch-check`.
pub type CheckStateLive = CheckState<QueueAdapter, SqsDlqProbe, RunStore, RedisRateLimiter>;
/// The production state of `prematch-trigger`.
pub type TriggerStateLive = TriggerState<QueueAdapter, ConfiguredKick, RunStore, RedisRateLimiter>;

/// The queue on a lazily connected client whose commands give up after the probe timeout.
pub fn queue(config: &Config, settings: &ApiSettings) -> Result<QueueAdapter, StartupError> {
    let client = lazy_client(config.redis_url.expose(), settings.probe_timeout)
        .map_err(|e| StartupError::Redis(e.to_string()))?;
    let mut queue_settings = QueueSettings::new(&config.queue_prefix, &config.queue_name);
    queue_settings.command_timeout = settings.probe_timeout;
    let queue = Queue::from_client(client, queue_settings)
        .map_err(|e| StartupError::Redis(e.to_string()))?;
    Ok(QueueAdapter::new(queue, &settings.key_prefix))
}

/// The worker's run records, on the queue's Redis client.
pub fn run_records(config: &Config, queue: &QueueAdapter) -> RunStore {
    RunStore::new(
        queue.queue().client().clone(),
        &config.queue_prefix,
        &config.queue_name,
        RUN_RETENTION_SECS,
    )
}

/// The check's state: queue, DLQ probe, the worker's run records, and its rate limiter.
pub fn check_state(
    config: &Config,
    settings: &ApiSettings,
    aws: &AwsClients,
) -> Result<CheckStateLive, StartupError> {
    let queue = queue(config, settings)?;
    let runs = run_records(config, &queue);
    let limiter = RedisRateLimiter::new(
        queue.queue().client().clone(),
        &settings.key_prefix,
        "check",
        settings.check_limit.clone(),
    );
    let dlq_ref = match &config.dlq_url {
        Some(url) => DlqRef::Url(url.clone()),
        None => DlqRef::Name(config.dlq_name.clone()),
    };
    Ok(CheckState {
        queue,
        dlq: Some(SqsDlqProbe::new(aws.sqs.clone(), dlq_ref)),
        runs,
        limiter,
        settings: CheckSettings {
            probe_timeout: settings.probe_timeout,
            queue_name: settings.queue_name.clone(),
            ..CheckSettings::default()
        },
        clock: Arc::new(chrono::Utc::now),
    })
}

/// The trigger's state: admin key (read once, from SSM if so configured), queue, kick, limiter.
pub async fn trigger_state(
    config: &Config,
    settings: &ApiSettings,
    aws: &AwsClients,
) -> Result<TriggerStateLive, StartupError> {
    let auth = AdminAuth::from_config(config, Some(&aws.ssm)).await?;
    if !auth.has_key() {
        tracing::warn!(
            "no ADMIN_API_KEY or ADMIN_API_KEY_PARAM: only IAM-signed callers are admitted"
        );
    }
    let queue = queue(config, settings)?;
    let runs = run_records(config, &queue);
    let limiter = RedisRateLimiter::new(
        queue.queue().client().clone(),
        &settings.key_prefix,
        "trigger",
        settings.trigger_limit.clone(),
    );
    let kick = match &settings.worker_function {
        Some(name) => ConfiguredKick::Lambda(LambdaWorkerKick::new(aws.lambda.clone(), name)),
        None => {
            tracing::warn!("no WORKER_FUNCTION_NAME: manual runs wait for the next sweep");
            ConfiguredKick::None(NoKick)
        }
    };
    Ok(TriggerState {
        auth,
        limiter,
        queue,
        kick,
        runs,
        settings: TriggerSettings {
            max_body_bytes: settings.max_body_bytes,
            job_attempts: settings.job_attempts,
            backoff_delay: settings.backoff_delay,
            manual_run_hold: settings.manual_run_hold,
            call_timeout: settings.probe_timeout,
        },
        clock: Arc::new(chrono::Utc::now),
    })
}
