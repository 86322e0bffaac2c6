//! The api's settings, run as the real binary with nothing in its environment but what a test gives
//! it. Every wrong value stops it at start, before it connects to anything, with one line that
//! names the flag and its environment variable; a secret is never repeated; `--help` and the README
//! document every setting. None of these tests needs a server: the database URL points at a port
//! where nothing listens, and an api that got past its settings would keep serving and waiting for
//! that database, so the test would see it still running.

use std::process::Output;

use clap::{Arg, CommandFactory};
use testkit::settings::{
    assert_a_malformed_database_url_is_refused, assert_a_missing_database_url_is_named,
    assert_a_wrong_rust_log_is_refused, assert_every_setting_is_tried,
    assert_every_wrong_value_is_refused, assert_help_documents, assert_readme_lists, closed_port,
    refusal, run, with, wrong, Env, Wrong,
};

/// The binary under test.
const API: &str = env!("CARGO_BIN_EXE_api");

/// A password that must never be printed.
const PASSWORD: &str = "fake-password-7b3e1a";

/// Settings that accept any value: `REPLICA_NAME` is sent as a header with anything but visible
/// ASCII replaced, and the host name is used when it is blank.
const ANY_VALUE: &[&str] = &["REPLICA_NAME"];

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
    wrong(
        "--database-read-url",
        "DATABASE_READ_URL",
        "standby",
        "postgres://USER",
    ),
    wrong(
        "--database-read-url",
        "DATABASE_READ_URL",
        "postgres://orders_api@127.0.0.1:5432x/orders",
        "invalid port number",
    ),
    wrong("--cache-max-bytes", "CACHE_MAX_BYTES", "0", "at least 1"),
    wrong("--cache-max-bytes", "CACHE_MAX_BYTES", "", "bytes"),
    wrong(
        "--cache-max-bytes",
        "CACHE_MAX_BYTES",
        "256MB",
        "KiB, MiB or GiB",
    ),
    wrong("--cache-max-bytes", "CACHE_MAX_BYTES", "-1", "bytes"),
    wrong(
        "--cache-max-bytes",
        "CACHE_MAX_BYTES",
        "99999999999GiB",
        "bytes",
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
    wrong(
        "--http-header-timeout-secs",
        "HTTP_HEADER_TIMEOUT_SECS",
        "0",
        "from 1 to 3600",
    ),
    wrong(
        "--http-idle-timeout-secs",
        "HTTP_IDLE_TIMEOUT_SECS",
        "1m",
        "from 1 to 86400",
    ),
    wrong(
        "--http-max-connections",
        "HTTP_MAX_CONNECTIONS",
        "0",
        "from 1 to 4294967295",
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
const SECRETS: &[&str] = &["DATABASE_URL", "DATABASE_READ_URL", "ADMIN_TOKEN"];

/// Valid settings that lead nowhere: a database that is not there, any free port.
fn nowhere() -> Env {
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

/// The binary with `args` and only `env` in its environment.
async fn api(args: &[String], env: &[(&str, String)]) -> Output {
    run(API, args, env).await
}

/// The settings: every option but help and version.
fn settings_args() -> Vec<Arg> {
    testkit::settings::settings_args(&api::Settings::command())
}

#[tokio::test]
async fn every_wrong_setting_stops_the_api_at_start_with_one_line_naming_it() {
    assert_every_wrong_value_is_refused(API, WRONG, nowhere, SECRETS).await;
}

#[test]
fn every_setting_has_a_wrong_value_in_the_table() {
    assert_every_setting_is_tried(&settings_args(), WRONG, ANY_VALUE);
}

#[tokio::test]
async fn a_malformed_database_url_is_refused_without_printing_its_password() {
    assert_a_malformed_database_url_is_refused(API, &[&[]], nowhere, PASSWORD).await;
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
    assert_a_missing_database_url_is_named(API, &[&[]], nowhere).await;
}

#[tokio::test]
async fn a_wrong_rust_log_stops_the_api_at_start_naming_it() {
    let env = with(nowhere(), "RUST_LOG", "api=loud");
    assert_a_wrong_rust_log_is_refused(API, &env).await;
}

#[tokio::test]
async fn the_help_documents_every_setting_with_its_variable_and_default() {
    let output = api(&["--help".to_string()], &[]).await;
    let help = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{help}");

    assert_help_documents(&help, &settings_args());
}

#[test]
fn the_readme_lists_every_setting_with_its_default() {
    let readme = include_str!("../../../README.md");
    assert_readme_lists(readme, &settings_args(), "api");
}
