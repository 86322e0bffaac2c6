//! The ingestor's settings, run as the real binary with nothing in its environment but what a test
//! gives it. Every wrong value stops it at start, before it connects to anything, with one line
//! that names the flag and its environment variable; a secret is never repeated; `--help` and the
//! README document every setting. None of these tests needs a server: where a URL is needed it
//! points at a port where nothing listens, so an ingestor that got past its settings would keep
//! retrying there and the test would see it still running.

use std::process::Output;

use clap::Arg;
use testkit::settings::{
    assert_a_malformed_database_url_is_refused, assert_a_missing_database_url_is_named,
    assert_a_wrong_rust_log_is_refused, assert_every_setting_is_tried,
    assert_every_wrong_value_is_refused, assert_help_documents, assert_readme_lists, closed_port,
    help_of, refusal, run, with, wrong, Env, Wrong,
};

/// The binary under test.
const INGESTOR: &str = env!("CARGO_BIN_EXE_ingestor");

/// A password that must never be printed.
const PASSWORD: &str = "fake-password-4f1c9e";

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
        "mysql://ingestor@127.0.0.1/orders",
        "postgres://USER",
    ),
    wrong(
        "--database-url",
        "DATABASE_URL",
        "postgres://ingestor@127.0.0.1:5432x/orders",
        "invalid port number",
    ),
    wrong("--nats-url", "NATS_URL", "", "must name a host"),
    wrong(
        "--nats-url",
        "NATS_URL",
        "http://127.0.0.1:4222",
        "nats:// or tls://",
    ),
    wrong(
        "--nats-url",
        "NATS_URL",
        "nats://127.0.0.1:port",
        "a port from 1 to 65535",
    ),
    wrong(
        "--nats-url",
        "NATS_URL",
        "nats://127.0.0.1:4222/",
        "nothing after it",
    ),
    wrong(
        "--nats-url",
        "NATS_URL",
        "nats://127.0.0.1:4222,",
        "must name a host",
    ),
    wrong(
        "--nats-url",
        "NATS_URL",
        "nats://ingestor:pw-9d2f@127.0.0.1:4222",
        "user or password",
    ),
    wrong(
        "--stan-cluster-id",
        "STAN_CLUSTER_ID",
        "",
        "must not be empty",
    ),
    wrong(
        "--stan-cluster-id",
        "STAN_CLUSTER_ID",
        "test cluster",
        "spaces",
    ),
    wrong("--stan-channel", "STAN_CHANNEL", "", "must not be empty"),
    wrong("--stan-channel", "STAN_CHANNEL", "orders.>", "*, > or /"),
    wrong("--stan-channel", "STAN_CHANNEL", "orders.", "dot"),
    wrong("--stan-durable", "STAN_DURABLE", "", "must not be empty"),
    wrong(
        "--stan-durable",
        "STAN_DURABLE",
        "ingestor:1",
        "must not contain any of :",
    ),
    wrong(
        "--stan-durable",
        "STAN_DURABLE",
        "ingestor.1",
        "must not contain any of :",
    ),
    wrong("--broker", "BROKER", "kafka", "must be stan or jetstream"),
    wrong("--broker", "BROKER", "", "must be stan or jetstream"),
    wrong(
        "--jetstream-stream",
        "JETSTREAM_STREAM",
        "",
        "must not be empty",
    ),
    wrong(
        "--jetstream-stream",
        "JETSTREAM_STREAM",
        "ORDERS.EU",
        "letters, digits, - and _",
    ),
    wrong(
        "--jetstream-create-stream",
        "JETSTREAM_CREATE_STREAM",
        "yes",
        "must be true or false",
    ),
    wrong(
        "--jetstream-replicas",
        "JETSTREAM_REPLICAS",
        "0",
        "from 1 to 5",
    ),
    wrong(
        "--jetstream-replicas",
        "JETSTREAM_REPLICAS",
        "7",
        "from 1 to 5",
    ),
    wrong(
        "--stan-client-id",
        "STAN_CLIENT_ID",
        "",
        "must not be empty",
    ),
    wrong(
        "--stan-client-id",
        "STAN_CLIENT_ID",
        "ingestor.1",
        "letters, digits, - and _",
    ),
    wrong(
        "--stan-max-in-flight",
        "STAN_MAX_IN_FLIGHT",
        "0",
        "from 1 to 65536",
    ),
    wrong(
        "--stan-max-in-flight",
        "STAN_MAX_IN_FLIGHT",
        "65537",
        "from 1 to 65536",
    ),
    wrong(
        "--stan-max-in-flight",
        "STAN_MAX_IN_FLIGHT",
        "many",
        "from 1 to 65536",
    ),
    wrong(
        "--refetch-after-secs",
        "REFETCH_AFTER_SECS",
        "0",
        "from 1 to 86400",
    ),
    wrong(
        "--refetch-after-secs",
        "REFETCH_AFTER_SECS",
        "86401",
        "from 1 to 86400",
    ),
    wrong(
        "--refetch-after-secs",
        "REFETCH_AFTER_SECS",
        "soon",
        "from 1 to 86400",
    ),
    wrong(
        "--stan-ack-wait-secs",
        "STAN_ACK_WAIT_SECS",
        "0",
        "from 1 to 3600",
    ),
    wrong(
        "--stan-ack-wait-secs",
        "STAN_ACK_WAIT_SECS",
        "-30",
        "from 1 to 3600",
    ),
    wrong(
        "--stan-ack-wait-secs",
        "STAN_ACK_WAIT_SECS",
        "3601",
        "from 1 to 3600",
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
        "86401",
        "from 1 to 86400",
    ),
    wrong(
        "--http-max-connections",
        "HTTP_MAX_CONNECTIONS",
        "-1",
        "from 1 to 4294967295",
    ),
    wrong("--batch-max", "BATCH_MAX", "0", "from 1 to 65535"),
    wrong("--batch-max", "BATCH_MAX", "65536", "from 1 to 65535"),
    wrong("--batch-max", "BATCH_MAX", "abc", "from 1 to 65535"),
    wrong("--batch-max", "BATCH_MAX", "", "from 1 to 65535"),
    wrong(
        "--shutdown-grace-ms",
        "SHUTDOWN_GRACE_MS",
        "0",
        "from 1 to 3600000",
    ),
    wrong(
        "--shutdown-grace-ms",
        "SHUTDOWN_GRACE_MS",
        "3600001",
        "from 1 to 3600000",
    ),
    wrong(
        "--shutdown-grace-ms",
        "SHUTDOWN_GRACE_MS",
        "10s",
        "from 1 to 3600000",
    ),
    wrong(
        "--metrics-addr",
        "METRICS_ADDR",
        "",
        "an IP address and a port",
    ),
    wrong(
        "--metrics-addr",
        "METRICS_ADDR",
        "localhost:9090",
        "an IP address and a port",
    ),
    wrong(
        "--metrics-addr",
        "METRICS_ADDR",
        "127.0.0.1",
        "an IP address and a port",
    ),
    wrong("--log-format", "LOG_FORMAT", "xml", "must be text or json"),
    wrong("--log-format", "LOG_FORMAT", "JSON", "must be text or json"),
];

/// The consumer (no command) and a command that reads `DATABASE_URL` too.
const COMMANDS: &[&[&str]] = &[&[], &["dead-letters", "list"]];

/// Secrets: their values are never repeated (nor is a user and password in a URL).
const SECRETS: &[&str] = &["DATABASE_URL"];

/// Valid settings that lead nowhere: a database and a broker that are not there.
fn nowhere() -> Env {
    vec![
        (
            "DATABASE_URL",
            format!(
                "postgres://ingestor:{PASSWORD}@127.0.0.1:{}/orders",
                closed_port()
            ),
        ),
        ("NATS_URL", format!("nats://127.0.0.1:{}", closed_port())),
        ("METRICS_ADDR", "127.0.0.1:0".to_string()),
    ]
}

/// The binary with `args` and only `env` in its environment.
async fn ingestor(args: &[String], env: &[(&str, String)]) -> Output {
    run(INGESTOR, args, env).await
}

/// The consumer's settings: every option but help and version.
fn settings_args() -> Vec<Arg> {
    testkit::settings::settings_args(&ingestor::cli::command())
}

#[tokio::test]
async fn every_wrong_setting_stops_the_ingestor_at_start_with_one_line_naming_it() {
    assert_every_wrong_value_is_refused(INGESTOR, WRONG, nowhere, SECRETS).await;
}

#[test]
fn every_setting_has_a_wrong_value_in_the_table() {
    assert_every_setting_is_tried(&settings_args(), WRONG, &[]);
}

#[tokio::test]
async fn a_malformed_database_url_is_refused_without_printing_its_password() {
    assert_a_malformed_database_url_is_refused(INGESTOR, COMMANDS, nowhere, PASSWORD).await;
}

#[tokio::test]
async fn a_missing_database_url_is_named_with_its_variable() {
    assert_a_missing_database_url_is_named(INGESTOR, COMMANDS, nowhere).await;
}

#[tokio::test]
async fn a_wrong_rust_log_stops_the_ingestor_at_start_naming_it() {
    let env = with(nowhere(), "RUST_LOG", "ingestor=loud");
    assert_a_wrong_rust_log_is_refused(INGESTOR, &env).await;
}

#[tokio::test]
async fn the_operator_commands_read_neither_the_consumers_settings_nor_their_variables() {
    // Every consumer's setting wrong, as in the environment of a misconfigured consumer.
    let mut env = nowhere();
    for w in WRONG
        .iter()
        .filter(|w| !["DATABASE_URL", "LOG_FORMAT"].contains(&w.variable))
    {
        env = with(env, w.variable, w.value);
    }

    for command in [
        &["dead-letters", "list"][..],
        &["dead-letters", "replay", "1"],
    ] {
        let args: Vec<String> = command.iter().map(|a| a.to_string()).collect();
        let output = ingestor(&args, &env).await;

        // It got past its settings and tried the database, which is not there.
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{command:?}: {stderr}");
        assert!(
            stderr.contains("connecting to the database"),
            "{command:?}: {stderr}"
        );
        assert!(!stderr.contains(PASSWORD), "{command:?}: {stderr}");
    }
}

#[tokio::test]
async fn the_operator_commands_check_what_they_read() {
    let list = ["dead-letters".to_string(), "list".to_string()];
    let output = ingestor(&list, &with(nowhere(), "LOG_FORMAT", "xml")).await;
    let line = refusal(&output, "LOG_FORMAT=xml");
    assert!(line.contains("--log-format (env LOG_FORMAT)"), "{line}");

    // What is not a setting is still reported as clap does.
    let replay = ["dead-letters".to_string(), "replay".to_string()];
    let output = ingestor(&replay, &nowhere()).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("<ID>"), "{stderr}");

    let url = format!("postgres://ingestor:{PASSWORD}@127.0.0.1:port/orders");
    let output = ingestor(&list, &with(nowhere(), "DATABASE_URL", &url)).await;
    let line = refusal(&output, "a malformed DATABASE_URL");
    assert!(line.contains("--database-url (env DATABASE_URL)"), "{line}");
    assert!(!line.contains(PASSWORD), "{line}");
}

#[tokio::test]
async fn the_help_documents_every_setting_with_its_variable_and_default() {
    let output = ingestor(&["--help".to_string()], &[]).await;
    let help = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{help}");

    assert_help_documents(&help, &settings_args());

    for command in ["list", "replay"] {
        let args = ["dead-letters", command, "--help"].map(String::from);
        let output = ingestor(&args, &[]).await;
        let help = String::from_utf8(output.stdout).unwrap();
        for (flag, variable) in [
            ("--database-url", "DATABASE_URL"),
            ("--log-format", "LOG_FORMAT"),
        ] {
            let text = help_of(&help, flag).join("\n");
            assert!(
                text.contains(&format!("[env: {variable}")),
                "{command}: {text}"
            );
        }
    }
}

#[test]
fn the_readme_lists_every_setting_with_its_default() {
    let readme = include_str!("../../../README.md");
    assert_readme_lists(readme, &settings_args(), "ingestor");
}

#[tokio::test]
async fn the_broker_settings_can_be_given_by_their_transport_neutral_names() {
    for &(alias, own) in service_kit::settings::BROKER_ALIASES {
        let w = WRONG
            .iter()
            .find(|w| w.variable == own)
            .unwrap_or_else(|| panic!("no wrong value of {own} in the table"));
        let case = format!("{alias}={:?}", w.value);

        // Read, and named, by the alias when it is the one set.
        let output = ingestor(&[], &with(nowhere(), alias, w.value)).await;
        let line = refusal(&output, &case);
        assert!(
            line.contains(&format!("{} (env {alias})", w.flag)),
            "{case}: {line}"
        );
        assert!(line.contains(w.says), "{case}: {line}");

        // The setting's own variable wins only when both agree; otherwise the ingestor cannot tell
        // which was meant.
        let both = with(with(nowhere(), alias, w.value), own, "other");
        let line = refusal(&ingestor(&[], &both).await, &case);
        assert_eq!(
            line,
            format!("error: {alias} and {own} are both set, to different values: set one")
        );
    }
}
