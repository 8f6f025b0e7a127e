//! Scale-out: how a worker asks for more workers (an async Lambda invoke in AWS, a channel locally).

use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc;

/// A boxed future, so the kick can sit behind `dyn` in the handler.
pub type KickFuture<'a> = Pin<Box<dyn Future<Output = Result<u32, String>> + Send + 'a>>;

/// Starts `n` more workers draining the queue; answers how many were asked for.
pub trait WorkerKick: Send + Sync {
    /// Asks for `n` more workers.
    fn kick(&self, n: u32) -> KickFuture<'_>;
}

/// No scale-out: the one worker drains alone (and the sweep schedule picks up what is left).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoKick;

impl WorkerKick for NoKick {
    fn kick(&self, _n: u32) -> KickFuture<'_> {
        Box::pin(async { Ok(0) })
    }
}

/// Local scale-out: each kick is a message; whoever owns the receiver starts worker tasks.
#[derive(Debug, Clone)]
pub struct ChannelKick(pub mpsc::UnboundedSender<u32>);

impl WorkerKick for ChannelKick {
    fn kick(&self, n: u32) -> KickFuture<'_> {
        let sent = self
            .0
            .send(n)
            .map(|()| n)
            .map_err(|_| "no local worker pool is listening".to_string());
        Box::pin(async move { sent })
    }
}

/// AWS scale-out: async (`Event`) invokes of the worker function with `{"kind":"drain"}`.
#[derive(Debug, Clone)]
pub struct LambdaKick {
    client: aws_sdk_lambda::Client,
    function: String,
}

impl LambdaKick {
    /// Invokes `function` (name or ARN).
    pub fn new(client: aws_sdk_lambda::Client, function: impl Into<String>) -> LambdaKick {
        LambdaKick {
            client,
            function: function.into(),
        }
    }
}

impl WorkerKick for LambdaKick {
    fn kick(&self, n: u32) -> KickFuture<'_> {
        Box::pin(async move {
            let mut started = 0;
            let mut last_error = None;
            for _ in 0..n {
                let sent = self
                    .client
                    .invoke()
                    .function_name(&self.function)
                    .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
                    .payload(aws_sdk_lambda::primitives::Blob::new(
                        br#"{"kind":"drain"}"#.to_vec(),
                    ))
                    .send()
                    .await;
                match sent {
                    Ok(_) => started += 1,
                    Err(e) => {
                        last_error = Some(aws_sdk_lambda::error::DisplayErrorContext(e).to_string())
                    }
                }
            }
            match (started, last_error) {
                (0, Some(e)) => Err(format!("Lambda Invoke of {}: {e}", self.function)),
                _ => Ok(started),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn channel_kick_delivers_the_number_of_workers_asked_for() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let kick = ChannelKick(tx);
        assert_eq!(kick.kick(3).await, Ok(3));
        assert_eq!(rx.recv().await, Some(3));
    }

    #[tokio::test]
    async fn channel_kick_without_a_listener_is_an_error_not_a_panic() {
        let (tx, rx) = mpsc::unbounded_channel();
        drop(rx);
        assert!(ChannelKick(tx).kick(1).await.is_err());
    }
}
