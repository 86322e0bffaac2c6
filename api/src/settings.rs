//! The api's configuration: command-line flags with environment fallbacks. `api --help` is the
//! reference. Every value is checked here, before anything connects: a wrong one stops the api
//! with one line that names the flag and its environment variable (see [`service_kit::settings`],
//! which also parses what every process takes).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use service_kit::settings::{host_name, name_missing, socket_address, DatabaseSettings, Setting};
use service_kit::settings::{HttpLimitSettings, LogSettings};

use crate::http::AdminToken;

/// Serves stored orders by id, over HTTP, from an in-memory cache kept current from PostgreSQL.
///
/// Every option can also be given as the environment variable named in brackets; a wrong value
/// stops the api at start. Log verbosity follows `RUST_LOG` (for example
/// `RUST_LOG=api=debug,info`); the default is `info`. Read-only access to the database is enough.
#[derive(Clone, Parser)]
#[command(name = "api", version)]
pub struct Settings {
    #[command(flatten)]
    pub database: DatabaseSettings,

    #[command(flatten)]
    pub http: HttpLimitSettings,

    /// IP address and port the HTTP server listens on. Port 0 picks a free port.
    #[arg(
        long,
        env = "API_ADDR",
        value_name = "ADDR",
        default_value = "0.0.0.0:8080",
        value_parser = socket_address("0.0.0.0:8080")
    )]
    pub api_addr: SocketAddr,

    #[command(flatten)]
    pub log: LogSettings,

    /// Milliseconds between two safety re-reads of the orders table. Every commit of the ingestor
    /// wakes the api at once through `NOTIFY`; this periodic read bounds how stale the cache can be
    /// should a notification ever go missing. At least 1.
    #[arg(
        long = "catch-up-interval-ms",
        env = "CATCH_UP_INTERVAL_MS",
        value_name = "MS",
        default_value = "1000",
        value_parser = milliseconds()
    )]
    pub catch_up_interval: Duration,

    /// Milliseconds that in-flight requests are given to finish after a shutdown signal; connections
    /// still open after that are closed. At least 1.
    #[arg(
        long = "shutdown-grace-ms",
        env = "SHUTDOWN_GRACE_MS",
        value_name = "MS",
        default_value = "10000",
        value_parser = milliseconds()
    )]
    pub shutdown_grace: Duration,

    /// Bearer token that opens the dead-letter listing (`GET /api/v1/dead-letters`), which can show
    /// personal data: at least 16 characters of `A-Z a-z 0-9 - . _ ~ + /`, e.g. from
    /// `openssl rand -hex 32`. Without it the listing answers 404. Its value is never printed.
    #[arg(
        long,
        env = "ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true,
        value_parser = admin_token()
    )]
    pub admin_token: Option<AdminToken>,

    /// This replica's name, sent in the `X-Served-By` header of every response so that behind a
    /// load balancer one can tell which replica answered [default: the host name].
    #[arg(long, env = "REPLICA_NAME", value_name = "NAME")]
    pub replica_name: Option<String>,
}

impl Settings {
    /// From the process's arguments and environment; prints help, or one line naming the wrong
    /// setting, and exits on a malformed command line.
    pub fn from_env() -> Settings {
        Self::try_from_args(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    pub fn try_from_args(
        args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    ) -> Result<Settings, clap::Error> {
        let mut command = Settings::command();
        let matches = command
            .try_get_matches_from_mut(args)
            .map_err(|e| name_missing(e, &command))?;
        Settings::from_arg_matches(&matches).map_err(|e| e.format(&mut command))
    }

    /// The replica's name: `--replica-name` (unless blank), else the host name, else the process id.
    pub fn replica_name(&self) -> String {
        self.replica_name
            .clone()
            .filter(|name| !name.trim().is_empty())
            .unwrap_or_else(host_name)
    }
}

fn admin_token() -> Setting<AdminToken> {
    Setting::new(|token| {
        if token.is_empty() {
            return Err("must not be empty; leave it unset to keep the listing off".to_string());
        }
        AdminToken::new(token).map_err(|why| format!("the token {why}"))
    })
}

fn milliseconds() -> Setting<Duration> {
    Setting::new(|text| match text.parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err("must be a whole number of milliseconds, at least 1".to_string()),
    })
}
