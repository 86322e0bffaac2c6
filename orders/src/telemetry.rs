//! Logging, set up the same way by both processes.

use tracing_subscriber::EnvFilter;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON object a line, for log collectors.
    Json,
}

/// The logging setting every program of the service takes (`#[command(flatten)]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::Args)]
pub struct LogSettings {
    /// Log output (on standard error): `text` for people, `json` (one object a line) for log
    /// collectors.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_name = "FORMAT",
        default_value = "text",
        value_parser = crate::settings::log_format()
    )]
    pub log_format: LogFormat,
}

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
