//! Logging, set up the same way by every process: [`init`].

use tracing_subscriber::EnvFilter;

pub use crate::settings::LogFormat;

/// Installs the global `tracing` subscriber, writing to standard error: the filter comes from
/// `RUST_LOG` (default `info` when unset or empty), the output is text for people or JSON for log
/// collectors. Fails if `RUST_LOG` is not a filter, or if a subscriber is already installed.
pub fn init(format: LogFormat) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
            .map_err(|e| {
                anyhow::anyhow!(
                    "invalid value {directives:?} for RUST_LOG: {e}; \
                     it takes a level or targets with levels, e.g. `info` or `api=debug,info`"
                )
            })?,
        Ok(_) | Err(std::env::VarError::NotPresent) => EnvFilter::new("info"),
        Err(std::env::VarError::NotUnicode(_)) => {
            anyhow::bail!("invalid value for RUST_LOG: it must be valid UTF-8")
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    }
    .map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))
}
