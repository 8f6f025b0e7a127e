//! The state a worker (or the CLI) builds once per process: configuration, AWS clients, the
//! queue, and the stores on top of them.

use std::time::Duration;

use prematch_queue::{Queue, QueueSettings, WorkerOptions};

use crate::aws::{self, AwsClients};
use crate::config::{Config, ConfigError};
use crate::dlq::{DlqError, SqsDeadLetters};
use crate::dynamo::{DynamoMatches, DynamoUsers};

/// How long start-up waits for the first Redis connection: a Lambda must fail fast, not hang.
pub const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the state could not be built. `Display` is the one line `main` prints before exiting;
/// it never contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A setting is missing or malformed.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// Redis could not be reached or the queue settings are refused.
    #[error("REDIS_URL ({url}): {message}")]
    Redis {
        /// The URL with its password redacted.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The dead-letter queue could not be found.
    #[error("DLQ_URL/DLQ_NAME: {0}")]
    DeadLetters(#[from] DlqError),
}

/// Everything a worker invocation needs, built once and lent to every invocation.
#[derive(Debug, Clone)]
pub struct State {
    /// The settings.
    pub config: Config,
    /// The SDK clients.
    pub aws: AwsClients,
    /// The job queue (producer, admin; `Worker::new(&state.queue, ..)` drains it).
    pub queue: Queue,
    /// Users by region.
    pub users: DynamoUsers,
    /// Suggestions and history.
    pub matches: DynamoMatches,
    /// The SQS dead-letter queue.
    pub dead_letters: SqsDeadLetters,
}

impl State {
    /// Reads the environment and builds everything; the error is one line naming the setting.
    pub async fn from_env() -> Result<State, StateError> {
        State::from_config(Config::from_env()?).await
    }

    /// Builds clients for `config` (its region and `AWS_ENDPOINT_URL`) and the rest on them.
    pub async fn from_config(config: Config) -> Result<State, StateError> {
        let aws = aws::clients(&config).await;
        State::with_aws(config, aws).await
    }

    /// Builds the state on given AWS clients (tests, the CLI against moto).
    pub async fn with_aws(config: Config, aws: AwsClients) -> Result<State, StateError> {
        let queue = connect_queue(&config).await?;
        let dead_letters = SqsDeadLetters::from_config(aws.sqs.clone(), &config).await?;
        Ok(State {
            users: DynamoUsers::new(aws.dynamo.clone(), config.users_table.clone()),
            matches: DynamoMatches::new(
                aws.dynamo.clone(),
                config.matches_table.clone(),
                config.match_ttl_days,
            ),
            dead_letters,
            queue,
            aws,
            config,
        })
    }

    /// Worker options from the settings: concurrency, job timeout, deadline margin.
    pub fn worker_options(&self) -> WorkerOptions {
        worker_options(&self.config)
    }
}

/// The queue's key prefix and name from the settings.
pub fn queue_settings(config: &Config) -> QueueSettings {
    QueueSettings::new(config.queue_prefix.clone(), config.queue_name.clone())
}

/// Worker options from the settings (`WORKER_CONCURRENCY`, `JOB_TIMEOUT_SECS`,
/// `DEADLINE_MARGIN_SECS`); the rest are the queue's defaults.
pub fn worker_options(config: &Config) -> WorkerOptions {
    WorkerOptions {
        concurrency: config.worker_concurrency,
        job_timeout: config.job_timeout,
        deadline_margin: config.deadline_margin,
        ..WorkerOptions::default()
    }
}

/// Connects the queue, bounded by [`REDIS_CONNECT_TIMEOUT`].
pub async fn connect_queue(config: &Config) -> Result<Queue, StateError> {
    let redis_err = |message: String| StateError::Redis {
        url: config.redis_url.redacted(),
        message,
    };
    let connect = Queue::connect(config.redis_url.expose(), queue_settings(config));
    match tokio::time::timeout(REDIS_CONNECT_TIMEOUT, connect).await {
        Ok(Ok(queue)) => Ok(queue),
        Ok(Err(err)) => Err(redis_err(err.to_string())),
        Err(_) => Err(redis_err(format!(
            "no connection within {}s (is the scheme right? rediss:// for TLS)",
            REDIS_CONNECT_TIMEOUT.as_secs()
        ))),
    }
}
