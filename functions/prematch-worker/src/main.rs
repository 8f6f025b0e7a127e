//! prematch-worker: the queue worker Lambda. Wiring only; the handler is `prematch_app::jobs::worker`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use prematch_app::jobs::worker::{lambda_kick, nightly_runtime, NightlyRuntime, WorkerReport};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    prematch_app::telemetry::init();
    let state = match prematch_app::State::from_env().await {
        Ok(state) => state,
        Err(e) => {
            // One line naming the setting, then exit: Lambda reports an init error.
            eprintln!("prematch-worker: {e}");
            std::process::exit(2);
        }
    };
    let runtime = nightly_runtime(&state, lambda_kick(&state));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        handle(&runtime, event)
    }))
    .await
}

/// One invocation: the Lambda deadline bounds the drain.
async fn handle(
    runtime: &NightlyRuntime,
    event: LambdaEvent<Value>,
) -> Result<WorkerReport, Error> {
    let deadline = event.context.deadline();
    Ok(runtime.handle(&event.payload, Some(deadline)).await?)
}
