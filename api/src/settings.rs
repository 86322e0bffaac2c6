//! The api's configuration: command-line flags with environment fallbacks. `api --help` is the
//! reference. Every value is checked here, before anything connects: a wrong one stops the api
//! with one line that names the flag and its environment variable.

use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, Command, CommandFactory, FromArgMatches, Parser, ValueEnum};
use orders::telemetry::LogFormat;
use sqlx::postgres::PgConnectOptions;

use crate::http::AdminToken;

/// Serves stored orders by id, over HTTP, from an in-memory cache kept current from PostgreSQL.
///
/// Every option can also be given as the environment variable named in brackets; a wrong value
/// stops the api at start. Log verbosity follows `RUST_LOG` (for example
/// `RUST_LOG=api=debug,info`); the default is `info`.
#[derive(Clone, Parser)]
#[command(name = "api", version)]
pub struct Settings {
    /// PostgreSQL connection URL of the orders database, e.g.
    /// `postgres://orders_api:PASSWORD@127.0.0.1:5432/orders`. Read-only access is enough.
    /// Its value is never printed.
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        value_name = "URL",
        hide_env_values = true,
        value_parser = database_url()
    )]
    pub database: PgConnectOptions,

    /// IP address and port the HTTP server listens on. Port 0 picks a free port.
    #[arg(
        long,
        env = "API_ADDR",
        value_name = "ADDR",
        default_value = "0.0.0.0:8080",
        value_parser = socket_address()
    )]
    pub api_addr: SocketAddr,

    /// Log output: `text` for people, `json` (one object a line) for log collectors.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_name = "FORMAT",
        default_value = "text",
        value_parser = log_format()
    )]
    pub log_format: LogFormat,

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

/// `/etc/hostname`, else `$HOSTNAME`, else the process id.
fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("pid-{}", std::process::id()))
}

/// How the text of a setting becomes its value. When the text is wrong, the error is one line that
/// names the flag and its environment variable, says what is wrong, and repeats the value unless
/// the setting hides it (`hide_env_values`: it is a secret).
#[derive(Clone)]
struct Setting<T> {
    parse: Arc<Parse<T>>,
    possible_values: Vec<PossibleValue>,
}

/// Text to value, or what is wrong with the text.
type Parse<T> = dyn Fn(&str) -> Result<T, String> + Send + Sync;

impl<T> Setting<T> {
    fn new(parse: impl Fn(&str) -> Result<T, String> + Send + Sync + 'static) -> Self {
        Setting {
            parse: Arc::new(parse),
            possible_values: Vec::new(),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Setting<T> {
    type Value = T;

    fn parse_ref(
        &self,
        command: &Command,
        arg: Option<&Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let why = match value.to_str().map(|text| (self.parse)(text)) {
            Some(Ok(parsed)) => return Ok(parsed),
            Some(Err(why)) => why,
            None => "must be valid UTF-8".to_string(),
        };
        let message = match arg {
            Some(arg) if !arg.is_hide_env_values_set() => format!(
                "invalid value '{}' for {}: {why}",
                shown(value),
                setting_name(arg)
            ),
            Some(arg) => format!(
                "invalid value for {}: {why} (the value is not shown)",
                setting_name(arg)
            ),
            None => format!("invalid value (not shown): {why}"),
        };
        Err(clap::Error::raw(ErrorKind::ValueValidation, format!("{message}\n")).with_cmd(command))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        if self.possible_values.is_empty() {
            None
        } else {
            Some(Box::new(self.possible_values.iter().cloned()))
        }
    }
}

/// `--api-addr (env API_ADDR)`.
fn setting_name(arg: &Arg) -> String {
    let flag = arg
        .get_long()
        .map_or_else(|| arg.get_id().to_string(), |long| format!("--{long}"));
    match arg.get_env() {
        Some(variable) => format!("{flag} (env {})", variable.to_string_lossy()),
        None => flag,
    }
}

/// A value as an error repeats it: on one line, at most 80 characters, and with what precedes an
/// `@` (a URL's user and password) left out.
fn shown(value: &OsStr) -> String {
    let text = value.to_string_lossy();
    let text = match text.rsplit_once('@') {
        Some((before, after)) => match before.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://…@{after}"),
            None => format!("…@{after}"),
        },
        None => text.into_owned(),
    };
    let escaped: String = text.escape_debug().collect();
    if escaped.chars().count() <= 80 {
        escaped
    } else {
        escaped.chars().take(79).chain(['…']).collect()
    }
}

/// clap's error for missing required settings, made to name their environment variables too:
/// `--database-url (env DATABASE_URL) is required`. Other errors are returned unchanged.
fn name_missing(error: clap::Error, command: &Command) -> clap::Error {
    if error.kind() != ErrorKind::MissingRequiredArgument {
        return error;
    }
    let Some(ContextValue::Strings(missing)) = error.get(ContextKind::InvalidArg) else {
        return error;
    };
    let Some(names) = missing
        .iter()
        .map(|usage| {
            // `--database-url <URL>`: the option with that flag and an environment variable.
            let flag = usage.split(' ').next()?.strip_prefix("--")?;
            command
                .get_arguments()
                .find(|arg| arg.get_env().is_some() && arg.get_long() == Some(flag))
                .map(setting_name)
        })
        .collect::<Option<Vec<String>>>()
    else {
        return error;
    };
    let message = format!("{} is required\n", names.join(" and "));
    clap::Error::raw(ErrorKind::MissingRequiredArgument, message).with_cmd(command)
}

/// A PostgreSQL connection URL. What is wrong with it is said without repeating any part of it.
fn database_url() -> Setting<PgConnectOptions> {
    Setting::new(|url| {
        let scheme = url.split_once("://").map(|(scheme, _)| scheme);
        if !scheme.is_some_and(|s| s == "postgres" || s == "postgresql") {
            return Err(
                "must be a URL such as postgres://USER:PASSWORD@HOST:PORT/DATABASE".to_string(),
            );
        }
        // sqlx's messages name the part it cannot read, never the text.
        url.parse().map_err(|e| match e {
            sqlx::Error::Configuration(why) => format!(
                "not a PostgreSQL connection URL: {}",
                // The kind is said once.
                why.to_string()
                    .trim_start_matches("error with configuration: ")
            ),
            e => format!("not a PostgreSQL connection URL: {e}"),
        })
    })
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

fn socket_address() -> Setting<SocketAddr> {
    Setting::new(|text| {
        text.parse().map_err(|_| {
            "must be an IP address and a port, e.g. 0.0.0.0:8080 (port 0 picks a free port)".into()
        })
    })
}

fn log_format() -> Setting<LogFormat> {
    let possible_values: Vec<PossibleValue> = LogFormat::value_variants()
        .iter()
        .filter_map(ValueEnum::to_possible_value)
        .collect();
    let names: Vec<String> = possible_values
        .iter()
        .map(|v| v.get_name().to_string())
        .collect();
    let why = format!("must be {}", names.join(" or "));
    Setting {
        possible_values,
        ..Setting::new(move |text| LogFormat::from_str(text, false).map_err(|_| why.clone()))
    }
}

/// Where the database is, for logs: host, port, database and user, never the password.
pub fn describe_database(options: &PgConnectOptions) -> String {
    format!(
        "{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("(default)")
    )
}
