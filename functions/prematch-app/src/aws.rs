//! AWS SDK clients, built once per process with explicit timeouts and a bounded retry policy.

use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::Config;

/// The region used against a local endpoint (moto) when none is configured.
pub const LOCAL_REGION: &str = "us-east-1";

/// The SDK clients every binary needs; cheap to clone (Arc inside).
#[derive(Debug, Clone)]
pub struct AwsClients {
    /// DynamoDB: users in, suggestions out.
    pub dynamo: aws_sdk_dynamodb::Client,
    /// SQS: the dead-letter queue.
    pub sqs: aws_sdk_sqs::Client,
    /// Lambda: asynchronous self-invoke for scale-out.
    pub lambda: aws_sdk_lambda::Client,
    /// SSM: the admin key named by `ADMIN_API_KEY_PARAM`.
    pub ssm: aws_sdk_ssm::Client,
}

impl AwsClients {
    /// Clients for one shared SDK configuration.
    pub fn from_sdk_config(sdk: &SdkConfig) -> AwsClients {
        AwsClients {
            dynamo: aws_sdk_dynamodb::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            lambda: aws_sdk_lambda::Client::new(sdk),
            ssm: aws_sdk_ssm::Client::new(sdk),
        }
    }
}

/// Builds the clients for `config`: its region and `AWS_ENDPOINT_URL` (local moto) win over the
/// SDK's own lookup.
pub async fn clients(config: &Config) -> AwsClients {
    AwsClients::from_sdk_config(&sdk_config(config).await)
}

/// Timeouts sized for Lambda: the HTTP functions must answer within API Gateway's 30 s, and the
/// worker must never hang a call past its drain budget. A local emulator (`local`) gets longer
/// ones: moto scans a whole table for every index Query and serves one request at a time, so on a
/// busy laptop one page of 10,000 users can take longer than 25 s, and `make run` failed that way.
fn timeouts(local: bool) -> TimeoutConfig {
    let (attempt, operation) = if local { (90, 240) } else { (10, 25) };
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(attempt))
        .operation_timeout(Duration::from_secs(operation))
        .build()
}

/// The shared SDK configuration for `config`.
pub async fn sdk_config(config: &Config) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts(config.aws_endpoint_url.is_some()))
        .retry_config(RetryConfig::standard().with_max_attempts(3));
    let fallback = config
        .aws_endpoint_url
        .as_ref()
        .map(|_| Region::new(LOCAL_REGION));
    loader = match (&config.aws_region, fallback) {
        (Some(region), _) => loader.region(Region::new(region.clone())),
        (None, Some(local)) => {
            loader.region(RegionProviderChain::default_provider().or_else(local))
        }
        (None, None) => loader,
    };
    if let Some(endpoint) = &config.aws_endpoint_url {
        loader = loader.endpoint_url(endpoint.clone());
        // A local emulator accepts any key; without one the default chain would end on the
        // instance-metadata lookup and stall every first call.
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            loader = loader.credentials_provider(local_credentials());
        }
    }
    loader.load().await
}

/// An SDK configuration for a local emulator at `endpoint` with dummy credentials (tests).
pub async fn local_sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(LOCAL_REGION))
        .endpoint_url(endpoint)
        .credentials_provider(local_credentials())
        .timeout_config(timeouts(true))
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .load()
        .await
}

fn local_credentials() -> aws_sdk_dynamodb::config::Credentials {
    aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "prematch-local")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_calls_fit_api_gateway_and_only_a_local_emulator_gets_longer() {
        let aws = timeouts(false);
        assert_eq!(aws.operation_timeout(), Some(Duration::from_secs(25)));
        assert!(aws.operation_timeout() < Some(Duration::from_secs(30)));
        let local = timeouts(true);
        assert!(local.operation_timeout() > aws.operation_timeout());
        assert!(local.operation_attempt_timeout() > aws.operation_attempt_timeout());
        assert_eq!(local.connect_timeout(), aws.connect_timeout());
    }
}
