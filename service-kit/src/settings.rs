//! What every process's settings are made of: clap value parsers whose errors are one line that
//! names the flag and its environment variable and never repeat a secret, and the settings every
//! process takes (the database URL, a listening address, the log format). Each process declares
//! its own settings, and parses what only it takes, with [`Setting::new`].

use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::sync::Arc;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, Command, ValueEnum};
pub use secrecy::ExposeSecret;
use sqlx::postgres::PgConnectOptions;

/// Every secret a setting holds (a database URL with its password, a token): its `Debug` shows
/// none of it, and reading it takes an explicit [`ExposeSecret::expose_secret`].
pub type Secret = secrecy::SecretString;

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
        value_parser = log_format()
    )]
    pub log_format: LogFormat,
}

/// The limits of a process's HTTP listener against clients that hold connections
/// (`#[command(flatten)]`; see [`crate::http::guard`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct HttpLimitSettings {
    /// Seconds a request may take to arrive whole and be answered (from its first byte, or from
    /// the connection's start), 1 to 3600.
    #[arg(
        long,
        env = "HTTP_HEADER_TIMEOUT_SECS",
        value_name = "SECS",
        default_value_t = 10,
        value_parser = whole_number::<u64>(1..=3600)
    )]
    pub http_header_timeout_secs: u64,

    /// Seconds a connection may stay silent between requests, 1 to 86400.
    #[arg(
        long,
        env = "HTTP_IDLE_TIMEOUT_SECS",
        value_name = "SECS",
        default_value_t = 60,
        value_parser = whole_number::<u64>(1..=86_400)
    )]
    pub http_idle_timeout_secs: u64,

    /// Connections open at once, at least 1, and at most the open-file limit less 256. Without
    /// it, that limit. One more is closed as soon as it is accepted.
    #[arg(
        long,
        env = "HTTP_MAX_CONNECTIONS",
        value_name = "N",
        value_parser = whole_number::<u64>(1..=i64::from(u32::MAX))
    )]
    pub http_max_connections: Option<u64>,
}

/// The defaults of the flags, for a program built in code (a test).
impl Default for HttpLimitSettings {
    fn default() -> Self {
        HttpLimitSettings {
            http_header_timeout_secs: 10,
            http_idle_timeout_secs: 60,
            http_max_connections: None,
        }
    }
}

impl HttpLimitSettings {
    pub fn limits(&self) -> crate::http::guard::Limits {
        let most = crate::http::guard::default_max_connections();
        crate::http::guard::Limits {
            header_timeout: std::time::Duration::from_secs(self.http_header_timeout_secs),
            idle_timeout: std::time::Duration::from_secs(self.http_idle_timeout_secs),
            max_connections: self
                .http_max_connections
                .map_or(most, |n| usize::try_from(n).unwrap_or(most).min(most)),
        }
    }
}

/// A whole number within `range`, as a `T`: `must be a whole number from 1 to 3600`.
pub fn whole_number<T>(range: std::ops::RangeInclusive<i64>) -> Setting<T>
where
    T: TryFrom<i64> + Clone + Send + Sync + 'static,
{
    Setting::new(move |text| {
        text.parse::<i64>()
            .ok()
            .filter(|n| range.contains(n))
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| {
                format!(
                    "must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                )
            })
    })
}

/// Where the database is: `DATABASE_URL`, declared here once for every program that connects
/// (`#[command(flatten)]`). The URL may hold a password, so it is a [`Secret`].
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseSettings {
    /// PostgreSQL connection URL, e.g. `postgres://USER:PASSWORD@127.0.0.1:5432/orders`, of a role
    /// with the rights this program needs (see above). Its value is never printed.
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        value_name = "URL",
        hide_env_values = true,
        value_parser = database_url()
    )]
    pub database_url: Secret,
}

impl DatabaseSettings {
    /// From a URL, checked as `DATABASE_URL` is; the error says what is wrong without any part of
    /// the URL.
    pub fn from_url(url: &str) -> Result<DatabaseSettings, String> {
        postgres_url(url)?;
        Ok(DatabaseSettings {
            database_url: url.into(),
        })
    }

    /// What sqlx connects with.
    pub fn connect_options(&self) -> PgConnectOptions {
        postgres_url(self.database_url.expose_secret())
            .expect("the URL was checked when it was read")
    }

    /// Where the database is, for logs: user, host, port and database, never the password.
    pub fn describe(&self) -> String {
        let options = self.connect_options();
        format!(
            "{}@{}:{}/{}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("(default)")
        )
    }
}

/// This machine's name, the default of names that tell processes apart: `/etc/hostname`, else
/// `$HOSTNAME`, else `pid-` and the process id.
pub fn host_name() -> String {
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
pub struct Setting<T> {
    parse: Arc<Parse<T>>,
    possible_values: Vec<PossibleValue>,
}

/// Text to value, or what is wrong with the text.
type Parse<T> = dyn Fn(&str) -> Result<T, String> + Send + Sync;

impl<T> Setting<T> {
    /// A setting read by `parse`, which says what is wrong (e.g. `must not be empty`) without
    /// repeating the text.
    pub fn new(parse: impl Fn(&str) -> Result<T, String> + Send + Sync + 'static) -> Self {
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

/// `--batch-max (env BATCH_MAX)`.
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
/// `--database-url (env DATABASE_URL) is required`. Other errors are returned unchanged. Call it on
/// the error of `Command::try_get_matches_from_mut`, with that command.
pub fn name_missing(error: clap::Error, command: &Command) -> clap::Error {
    if error.kind() != ErrorKind::MissingRequiredArgument {
        return error;
    }
    let Some(ContextValue::Strings(missing)) = error.get(ContextKind::InvalidArg) else {
        return error;
    };
    if !missing
        .iter()
        .any(|usage| find_setting(command, usage).is_some())
    {
        return error;
    }
    let names: Vec<String> = missing
        .iter()
        .map(|usage| find_setting(command, usage).map_or_else(|| usage.clone(), setting_name))
        .collect();
    let verb = if names.len() == 1 { "is" } else { "are" };
    let message = format!("{} {verb} required\n", names.join(" and "));
    clap::Error::raw(ErrorKind::MissingRequiredArgument, message).with_cmd(command)
}

/// The setting (an option with an environment variable) that clap shows as `usage`, e.g.
/// `--database-url <URL>`, in `command` or one of its subcommands.
fn find_setting<'a>(command: &'a Command, usage: &str) -> Option<&'a Arg> {
    let flag = usage.split(' ').next()?.strip_prefix("--")?;
    command
        .get_arguments()
        .find(|arg| arg.get_env().is_some() && arg.get_long() == Some(flag))
        .or_else(|| {
            command
                .get_subcommands()
                .find_map(|sub| find_setting(sub, usage))
        })
}

/// A PostgreSQL connection URL, kept as a [`Secret`]. What is wrong with it is said without
/// repeating any part of it.
pub fn database_url() -> Setting<Secret> {
    Setting::new(|url| postgres_url(url).map(|_| Secret::from(url)))
}

/// `url` read as a PostgreSQL connection URL, or what is wrong with it, without any part of it.
pub fn postgres_url(url: &str) -> Result<PgConnectOptions, String> {
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
}

/// An IP address and a port to listen on; `example` (e.g. `0.0.0.0:8080`) is shown when the text
/// is not one.
pub fn socket_address(example: &'static str) -> Setting<SocketAddr> {
    Setting::new(move |text| {
        text.parse().map_err(|_| {
            format!("must be an IP address and a port, e.g. {example} (port 0 picks a free port)")
        })
    })
}

/// One of the [`LogFormat`]s, by name; `--help` lists them.
pub fn log_format() -> Setting<LogFormat> {
    one_of()
}

/// One of the values of `E`, by name; `--help` lists them, and a wrong one is refused with them.
pub fn one_of<E: ValueEnum + Clone + Send + Sync + 'static>() -> Setting<E> {
    let possible_values: Vec<PossibleValue> = E::value_variants()
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
        ..Setting::new(move |text| E::from_str(text, false).map_err(|_| why.clone()))
    }
}

/// `true` or `false`.
pub fn boolean() -> Setting<bool> {
    Setting::new(|text| match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("must be true or false".into()),
    })
}

/// Transport-neutral names of the broker settings whose variables are named after NATS Streaming,
/// as (alias, the setting's own variable). JetStream takes the same settings, and a deployment on
/// it may rather say `BROKER_CHANNEL` than `STAN_CHANNEL`; see [`with_env_aliases`].
pub const BROKER_ALIASES: &[(&str, &str)] = &[
    ("BROKER_CHANNEL", "STAN_CHANNEL"),
    ("BROKER_DURABLE", "STAN_DURABLE"),
    ("BROKER_CLIENT_ID", "STAN_CLIENT_ID"),
    ("BROKER_MAX_IN_FLIGHT", "STAN_MAX_IN_FLIGHT"),
    ("BROKER_ACK_WAIT_SECS", "STAN_ACK_WAIT_SECS"),
];

/// `command` with each setting whose variable is an alias's own (`aliases`: (alias, variable)
/// pairs; those `command` lacks are skipped) reading the alias instead, when the alias is set in
/// the environment `var` reads and the variable is not. A wrong value is then named by the alias,
/// the variable the user set. When both are set, to different values, the error names both: which
/// one was meant cannot be known.
pub fn with_env_aliases(
    mut command: Command,
    aliases: &[(&'static str, &'static str)],
    var: impl Fn(&str) -> Option<OsString>,
) -> Result<Command, clap::Error> {
    for &(alias, name) in aliases {
        let Some(id) = command
            .get_arguments()
            .find(|arg| arg.get_env() == Some(OsStr::new(name)))
            .map(|arg| arg.get_id().clone())
        else {
            continue;
        };
        match (var(alias), var(name)) {
            (Some(given), Some(own)) if given != own => {
                let message =
                    format!("{alias} and {name} are both set, to different values: set one\n");
                return Err(
                    clap::Error::raw(ErrorKind::ArgumentConflict, message).with_cmd(&command)
                );
            }
            (Some(_), None) => command = command.mut_arg(id, |arg| arg.env(alias)),
            _ => {}
        }
    }
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_value_leaves_out_the_user_and_password_of_a_url() {
        assert_eq!(
            shown(OsStr::new("nats://user:secret@127.0.0.1:4222")),
            "nats://…@127.0.0.1:4222"
        );
        assert_eq!(shown(OsStr::new("user:secret@host")), "…@host");
    }

    #[test]
    fn a_shown_value_is_one_line_of_at_most_80_characters() {
        assert_eq!(shown(OsStr::new("a\nb")), "a\\nb");
        let long = shown(OsStr::new(&"x".repeat(200)));
        assert_eq!(long.chars().count(), 80);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn a_wrong_value_is_named_by_its_flag_and_variable_and_a_secret_is_not_repeated() {
        let command = || {
            Command::new("process")
                .arg(
                    Arg::new("addr")
                        .long("addr")
                        .env("SETTINGS_TEST_ADDR")
                        .value_parser(socket_address("0.0.0.0:80")),
                )
                .arg(
                    Arg::new("url")
                        .long("database-url")
                        .env("SETTINGS_TEST_DATABASE_URL")
                        .hide_env_values(true)
                        .value_parser(database_url()),
                )
        };
        let error = command()
            .try_get_matches_from(["process", "--addr=localhost:80"])
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "error: invalid value 'localhost:80' for --addr (env SETTINGS_TEST_ADDR): \
             must be an IP address and a port, e.g. 0.0.0.0:80 (port 0 picks a free port)\n"
        );
        let error = command()
            .try_get_matches_from(["process", "--database-url=mysql://u:secret@host/db"])
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "error: invalid value for --database-url (env SETTINGS_TEST_DATABASE_URL): \
             must be a URL such as postgres://USER:PASSWORD@HOST:PORT/DATABASE \
             (the value is not shown)\n"
        );
    }

    #[test]
    fn a_missing_setting_is_named_with_its_variable() {
        let mut command = Command::new("process").arg(
            Arg::new("url")
                .long("database-url")
                .env("SETTINGS_TEST_DATABASE_URL")
                .value_name("URL")
                .required(true),
        );
        let error = command
            .try_get_matches_from_mut(["process"])
            .map_err(|e| name_missing(e, &command))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "error: --database-url (env SETTINGS_TEST_DATABASE_URL) is required\n"
        );
    }

    fn aliased() -> Command {
        Command::new("process").arg(
            Arg::new("channel")
                .long("channel")
                .env("SETTINGS_TEST_CHANNEL")
                .value_parser(Setting::new(|text: &str| {
                    if text.contains('>') {
                        Err("no wildcards".to_string())
                    } else {
                        Ok(text.to_string())
                    }
                })),
        )
    }

    /// The environment of a test: `vars` and nothing else.
    fn environment(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    const ALIASES: &[(&str, &str)] = &[
        ("SETTINGS_TEST_NEUTRAL", "SETTINGS_TEST_CHANNEL"),
        ("SETTINGS_TEST_OTHER", "SETTINGS_TEST_NOT_A_SETTING"),
    ];

    fn variable_read(command: &Command) -> String {
        let arg = command.get_arguments().next().unwrap();
        arg.get_env().unwrap().to_string_lossy().into_owned()
    }

    #[test]
    fn an_alias_is_read_only_when_the_settings_own_variable_is_not_set() {
        let only_alias = environment(&[("SETTINGS_TEST_NEUTRAL", "orders")]);
        let command = with_env_aliases(aliased(), ALIASES, only_alias).unwrap();
        assert_eq!(variable_read(&command), "SETTINGS_TEST_NEUTRAL");

        let both_alike = environment(&[
            ("SETTINGS_TEST_NEUTRAL", "orders"),
            ("SETTINGS_TEST_CHANNEL", "orders"),
        ]);
        let command = with_env_aliases(aliased(), ALIASES, both_alike).unwrap();
        assert_eq!(variable_read(&command), "SETTINGS_TEST_CHANNEL");

        let neither = environment(&[]);
        let command = with_env_aliases(aliased(), ALIASES, neither).unwrap();
        assert_eq!(variable_read(&command), "SETTINGS_TEST_CHANNEL");
    }

    #[test]
    fn an_alias_and_the_settings_variable_set_to_different_values_are_refused_naming_both() {
        let both = environment(&[
            ("SETTINGS_TEST_NEUTRAL", "orders"),
            ("SETTINGS_TEST_CHANNEL", "other"),
        ]);
        let error = with_env_aliases(aliased(), ALIASES, both).unwrap_err();
        assert_eq!(
            error.to_string(),
            "error: SETTINGS_TEST_NEUTRAL and SETTINGS_TEST_CHANNEL are both set, to different \
             values: set one\n"
        );
    }

    #[test]
    fn a_wrong_value_given_by_an_alias_is_named_by_the_alias() {
        let only_alias = environment(&[("SETTINGS_TEST_NEUTRAL", "orders.>")]);
        let command = with_env_aliases(aliased(), ALIASES, only_alias).unwrap();
        let arg = command.get_arguments().next().unwrap();
        let error = Setting::new(|_: &str| Err::<String, _>("no wildcards".to_string()))
            .parse_ref(&command, Some(arg), OsStr::new("orders.>"))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "error: invalid value 'orders.>' for --channel (env SETTINGS_TEST_NEUTRAL): \
             no wildcards\n"
        );
    }
}
