//! The api's configuration: command-line flags with environment fallbacks. `api --help` is the
//! reference. Every value is checked here, before anything connects: a wrong one stops the api
//! with one line that names the flag and its environment variable (see [`service_kit::settings`],
//! which also parses what every process takes).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use service_kit::settings::{database_url, host_name, name_missing, socket_address, Secret};
use service_kit::settings::{DatabaseSettings, Setting};
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

    /// PostgreSQL URL of a hot standby (a streaming replica) of `--database-url`, for the reads
    /// of orders: the warm-up, the catch-ups and the orders the cache does not hold. `LISTEN`, the
    /// dead-letter listing and the check of how far the standby is behind stay on the primary.
    /// While the standby lags, the api waits for it rather than serve less than the primary has
    /// committed; while it cannot be reached, the api reads the primary. Its value is never
    /// printed [default: read the primary].
    #[arg(
        long = "database-read-url",
        env = "DATABASE_READ_URL",
        value_name = "URL",
        hide_env_values = true,
        value_parser = database_url()
    )]
    pub database_read_url: Option<Secret>,

    /// The most bytes of order documents the cache keeps in memory, as a number of bytes or with
    /// a unit: `KiB`, `MiB` or `GiB` (e.g. `256MiB`). Orders beyond it are read from the database
    /// when asked for, and kept if they are asked for often; every stored id is still known in a
    /// few bytes, so an id that was never stored is answered without the database
    /// [default: no limit, every order in memory].
    #[arg(
        long = "cache-max-bytes",
        env = "CACHE_MAX_BYTES",
        value_name = "BYTES",
        value_parser = byte_size()
    )]
    pub cache_max_bytes: Option<u64>,

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

    /// Where the orders are read from: the standby of `--database-read-url`, if any.
    pub fn database_read(&self) -> Option<DatabaseSettings> {
        self.database_read_url.as_ref().map(|url| DatabaseSettings {
            database_url: url.clone(),
        })
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

/// A number of bytes, at least 1, bare or with a binary unit: `65536`, `64KiB`, `256MiB`, `2GiB`.
fn byte_size() -> Setting<u64> {
    Setting::new(|text| {
        let text = text.trim();
        let digits = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(digits);
        let scale: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            _ => 0,
        };
        number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .filter(|bytes| *bytes > 0)
            .ok_or_else(|| {
                "must be a whole number of bytes, at least 1, bare or with KiB, MiB or GiB \
                 (e.g. 256MiB)"
                    .to_string()
            })
    })
}

fn milliseconds() -> Setting<Duration> {
    Setting::new(|text| match text.parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err("must be a whole number of milliseconds, at least 1".to_string()),
    })
}
