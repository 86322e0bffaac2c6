//! The api's settings, run as the real binary with nothing in its environment but what a test gives
//! it. Every wrong value stops it at start, before it connects to anything, with one line that
//! names the flag and its environment variable; a secret is never repeated; `--help` and the README
//! document every setting. None of these tests needs a server: the database URL points at a port
//! where nothing listens, and an api that got past its settings would keep serving and waiting for
//! that database, so the test would see it still running.

use std::net::TcpListener;
use std::process::{Output, Stdio};
use std::time::Duration;

use clap::{Arg, CommandFactory};
use tokio::process::Command;

/// How long a wrong setting may take to stop the binary: ample for a loaded machine to start it.
/// One still running by then has started, which the wrong setting should have prevented.
const FAIL_FAST: Duration = Duration::from_secs(30);

/// A password that must never be printed.
const PASSWORD: &str = "fake-password-7b3e1a";

/// Settings that accept any value: `REPLICA_NAME` is sent as a header with anything but visible
/// ASCII replaced, and the host name is used when it is blank.
const ANY_VALUE: &[&str] = &["REPLICA_NAME"];

/// A wrong value of a setting, and words of the message that must say what is wrong.
struct Wrong {
    flag: &'static str,
    variable: &'static str,
    value: &'static str,
    says: &'static str,
}

const fn wrong(
    flag: &'static str,
    variable: &'static str,
    value: &'static str,
    says: &'static str,
) -> Wrong {
    Wrong {
        flag,
        variable,
        value,
        says,
    }
}

const WRONG: &[Wrong] = &[
    wrong("--database-url", "DATABASE_URL", "", "postgres://USER"),
    wrong(
        "--database-url",
        "DATABASE_URL",
        "orders",
        "postgres://USER",
    ),
    wrong(
        "--database-url",
        "DATABASE_URL",
        "mysql://orders_api@127.0.0.1/orders",
        "postgres://USER",
    ),
    wrong(
        "--database-url",
        "DATABASE_URL",
        "postgres://orders_api@127.0.0.1:5432x/orders",
        "invalid port number",
    ),
    wrong("--api-addr", "API_ADDR", "", "an IP address and a port"),
    wrong(
        "--api-addr",
        "API_ADDR",
        "localhost:8080",
        "an IP address and a port",
    ),
    wrong("--api-addr", "API_ADDR", "8080", "an IP address and a port"),
    wrong(
        "--api-addr",
        "API_ADDR",
        "127.0.0.1:65536",
        "an IP address and a port",
    ),
    wrong("--log-format", "LOG_FORMAT", "", "must be text or json"),
    wrong("--log-format", "LOG_FORMAT", "xml", "must be text or json"),
    wrong(
        "--catch-up-interval-ms",
        "CATCH_UP_INTERVAL_MS",
        "0",
        "milliseconds, at least 1",
    ),
    wrong(
        "--catch-up-interval-ms",
        "CATCH_UP_INTERVAL_MS",
        "1s",
        "milliseconds, at least 1",
    ),
    wrong(
        "--catch-up-interval-ms",
        "CATCH_UP_INTERVAL_MS",
        "",
        "milliseconds, at least 1",
    ),
    wrong(
        "--shutdown-grace-ms",
        "SHUTDOWN_GRACE_MS",
        "0",
        "milliseconds, at least 1",
    ),
    wrong(
        "--shutdown-grace-ms",
        "SHUTDOWN_GRACE_MS",
        "-1",
        "milliseconds, at least 1",
    ),
    wrong("--admin-token", "ADMIN_TOKEN", "", "must not be empty"),
    wrong(
        "--admin-token",
        "ADMIN_TOKEN",
        "short-token",
        "shorter than 16",
    ),
    wrong(
        "--admin-token",
        "ADMIN_TOKEN",
        "a-token-with-a-space in-it",
        "may hold only",
    ),
];

/// Secrets: their values are never repeated.
const SECRETS: &[&str] = &["DATABASE_URL", "ADMIN_TOKEN"];

/// A port on this machine where nothing listens.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().unwrap().port()
}

/// Valid settings that lead nowhere: a database that is not there, any free port.
fn nowhere() -> Vec<(&'static str, String)> {
    vec![
        (
            "DATABASE_URL",
            format!(
                "postgres://orders_api:{PASSWORD}@127.0.0.1:{}/orders",
                closed_port()
            ),
        ),
        ("API_ADDR", "127.0.0.1:0".to_string()),
    ]
}

/// Replaces the variable `name` in `env`, or adds it.
fn with(
    mut env: Vec<(&'static str, String)>,
    name: &'static str,
    value: &str,
) -> Vec<(&'static str, String)> {
    env.retain(|(n, _)| *n != name);
    env.push((name, value.to_string()));
    env
}

/// The binary with `args` and only `env` in its environment, given [`FAIL_FAST`] to stop.
async fn api(args: &[String], env: &[(&str, String)]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_api"))
        .env_clear()
        .envs(env.iter().map(|(name, value)| (name, value)))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the api binary");
    match tokio::time::timeout(FAIL_FAST, child.wait_with_output()).await {
        Ok(output) => output.expect("wait for the api binary"),
        Err(_) => panic!(
            "args {args:?}, environment {env:?}: still running after {FAIL_FAST:?}; \
             the settings were not refused at start"
        ),
    }
}

/// The one line of standard error of a binary that refused its settings.
fn refusal(output: &Output, case: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{case}: {stderr}");
    assert!(output.stdout.is_empty(), "{case}: {output:?}");
    let line = stderr.strip_suffix('\n').unwrap_or(&stderr);
    assert!(
        line.starts_with("error: ") && !line.contains('\n'),
        "{case}: not one line: {stderr}"
    );
    line.to_string()
}

#[tokio::test]
async fn every_wrong_setting_stops_the_api_at_start_with_one_line_naming_it() {
    for w in WRONG {
        let by_flag = api(&[format!("{}={}", w.flag, w.value)], &nowhere()).await;
        let by_variable = api(&[], &with(nowhere(), w.variable, w.value)).await;

        for (how, output) in [("flag", by_flag), ("variable", by_variable)] {
            let case = format!("{}={:?} by {how}", w.variable, w.value);
            let line = refusal(&output, &case);
            assert!(line.contains(w.flag), "{case}: {line}");
            assert!(
                line.contains(&format!("env {}", w.variable)),
                "{case}: {line}"
            );
            assert!(line.contains(w.says), "{case}: {line}");
            if SECRETS.contains(&w.variable) {
                assert!(line.ends_with("(the value is not shown)"), "{case}: {line}");
                assert!(
                    w.value.is_empty() || !line.contains(w.value),
                    "{case}: {line}"
                );
            } else {
                assert!(line.contains(&format!("'{}'", w.value)), "{case}: {line}");
            }
        }
    }
}

#[test]
fn every_setting_has_a_wrong_value_in_the_table() {
    for arg in settings_args() {
        let variable = arg.get_env().unwrap().to_str().unwrap();
        assert!(
            ANY_VALUE.contains(&variable) || WRONG.iter().any(|w| w.variable == variable),
            "no wrong value of {variable} is tried"
        );
    }
}

#[tokio::test]
async fn a_malformed_database_url_is_refused_without_printing_its_password() {
    for url in [
        format!("postgres://orders_api:{PASSWORD}@[127.0.0.1/orders"),
        format!("postgres://orders_api:{PASSWORD}@127.0.0.1:5432x/orders"),
        format!("postgres://orders_api:{PASSWORD}@127.0.0.1/orders?sslmode=maybe"),
        format!("postgres//orders_api:{PASSWORD}@127.0.0.1/orders"),
    ] {
        let by_flag = api(&[format!("--database-url={url}")], &nowhere()).await;
        let by_variable = api(&[], &with(nowhere(), "DATABASE_URL", &url)).await;

        for (how, output) in [("flag", by_flag), ("variable", by_variable)] {
            let case = format!("a malformed URL by {how}");
            let line = refusal(&output, &case);
            assert!(
                line.contains("--database-url (env DATABASE_URL)"),
                "{case}: {line}"
            );
            assert!(!line.contains(PASSWORD), "{case}: {line}");
        }
    }
}

#[tokio::test]
async fn a_wrong_admin_token_is_refused_without_printing_it() {
    let token = "fake-token-e52c"; // too short
    let output = api(&[], &with(nowhere(), "ADMIN_TOKEN", token)).await;

    let line = refusal(&output, "ADMIN_TOKEN");
    assert!(line.contains("--admin-token (env ADMIN_TOKEN)"), "{line}");
    assert!(!line.contains(token), "{line}");
}

#[tokio::test]
async fn a_missing_database_url_is_named_with_its_variable() {
    let env: Vec<_> = nowhere()
        .into_iter()
        .filter(|(name, _)| *name != "DATABASE_URL")
        .collect();
    let output = api(&[], &env).await;

    let line = refusal(&output, "no DATABASE_URL");
    assert!(
        line.contains("--database-url (env DATABASE_URL) is required"),
        "{line}"
    );
}

#[tokio::test]
async fn a_wrong_rust_log_stops_the_api_at_start_naming_it() {
    let output = api(&[], &with(nowhere(), "RUST_LOG", "api=loud")).await;

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("RUST_LOG"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

/// The settings: every option but help and version.
fn settings_args() -> Vec<Arg> {
    let command = api::Settings::command();
    let args: Vec<Arg> = command
        .get_arguments()
        .filter(|arg| !["help", "version"].contains(&arg.get_id().as_str()))
        .cloned()
        .collect();
    for arg in &args {
        assert!(arg.get_env().is_some(), "{arg} has no environment variable");
        assert!(arg.get_help().is_some(), "{arg} is not documented");
    }
    args
}

/// The part of a `--help` text about `--flag`: its line and its description.
fn help_of<'a>(help: &'a str, flag: &str) -> Vec<&'a str> {
    let is_option = |line: &str| {
        let indent = line.len() - line.trim_start().len();
        indent <= 6 && line.trim_start().starts_with('-')
    };
    let mut lines = help.lines().skip_while(|line| {
        !(is_option(line) && line.trim_start().starts_with(&format!("{flag} ")))
    });
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("{flag} is not in the help:\n{help}"));
    std::iter::once(first)
        .chain(lines.take_while(|line| !is_option(line)))
        .collect()
}

#[tokio::test]
async fn the_help_documents_every_setting_with_its_variable_and_default() {
    let output = api(&["--help".to_string()], &[]).await;
    let help = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{help}");

    for arg in settings_args() {
        let flag = format!("--{}", arg.get_long().unwrap());
        let text = help_of(&help, &flag).join("\n");
        let variable = arg.get_env().unwrap().to_str().unwrap();
        assert!(text.contains(&format!("[env: {variable}")), "{text}");
        match arg.get_default_values() {
            [default] => assert!(
                text.contains(&format!("[default: {}]", default.to_str().unwrap())),
                "{text}"
            ),
            _ => assert!(
                arg.is_required_set() || text.contains("[default: ") || text.contains("Without it"),
                "{flag} has neither a default nor says what happens without it: {text}"
            ),
        }
    }
}

#[test]
fn the_readme_lists_every_setting_with_its_default() {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split("\n## Configuration\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Configuration section in the README");

    for arg in settings_args() {
        let variable = arg.get_env().unwrap().to_str().unwrap();
        let row = section
            .lines()
            .find(|line| line.starts_with(&format!("| `{variable}` |")))
            .unwrap_or_else(|| panic!("{variable} is not in the README's table"));
        assert!(
            row.contains("| api |") || row.contains("| both |"),
            "{variable}: {row}"
        );
        if let [default] = arg.get_default_values() {
            let default = default.to_str().unwrap();
            assert!(row.contains(&format!("`{default}`")), "{variable}: {row}");
        }
    }
}
