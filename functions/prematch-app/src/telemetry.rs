//! Structured JSON logs for every binary: one `init()` call at the top of `main`.

use tracing_subscriber::EnvFilter;

/// Installs a JSON `tracing` subscriber on stdout.
///
/// The level comes from `RUST_LOG` (full filter syntax), else `AWS_LAMBDA_LOG_LEVEL` (set by the
/// template's `LoggingConfig`), else `info`. Calling it twice is harmless (tests, the CLI).
/// No timestamps are dropped: CloudWatch adds its own, but local runs need them.
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| {
            std::env::var("AWS_LAMBDA_LOG_LEVEL")
                .map_err(|_| ())
                .and_then(|level| EnvFilter::try_new(level.to_lowercase()).map_err(|_| ()))
        })
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .flatten_event(true)
        .with_writer(std::io::stdout)
        .try_init();
}
