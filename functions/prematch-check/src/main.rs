//! prematch-check: wiring only. Reads the settings once, builds the clients once, and serves
//! `GET /api/prematch/check` with `api::check::check`.

use lambda_http::{service_fn, Error};
use prematch_check::api::check::check;
use prematch_check::api::settings::ApiSettings;
use prematch_check::api::startup::{check_state, StartupError};
use prematch_check::config::Config;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Required for CloudWatch to show the runtime's own errors, and ours, as JSON.
    prematch_app::telemetry::init();
    let config = exit_on_error(Config::from_env().map_err(StartupError::from));
    let settings = exit_on_error(ApiSettings::from_config(&config).map_err(StartupError::from));
    let aws = prematch_app::aws::clients(&config).await;
    let state = exit_on_error(check_state(&config, &settings, &aws));
    lambda_http::run(service_fn(|req| check(&state, req))).await
}

/// A function that cannot start says why in one line on stderr and exits, rather than answering
/// every request with an error.
fn exit_on_error<T>(result: Result<T, StartupError>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => {
            eprintln!("prematch-check: {e}");
            std::process::exit(2);
        }
    }
}
