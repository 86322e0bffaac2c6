//! The ingestor's settings, run as the real binary with nothing in its environment but what a test
//! gives it. Every wrong value stops it at start, before it connects to anything, with one line
//! that names the flag and its environment variable; a secret is never repeated; `--help` and the
//! README document every setting. None of these tests needs a server: where a URL is needed it
//! points at a port where nothing listens, so an ingestor that got past its settings would keep
//! retrying there and the test would see it still running.

use std::net::TcpListener;
use std::process::{Output, Stdio};
use std::time::Duration;

use clap::Arg;
use tokio::process::Command;

/// How long a wrong setting may take to stop the binary: ample for a loaded machine to start it.
/// One still running by then is connecting, which the wrong setting should have prevented.
const FAIL_FAST: Duration = Duration::from_secs(30);

/// A password that must never be printed.
const PASSWORD: &str = "fake-password-4f1c9e";

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
        "must not contain :",
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
    wrong("--batch-max", "BATCH_MAX", "0", "from 1 to 65535"),
    wrong("--batch-max", "BATCH_MAX", "65536", "from 1 to 65535"),
    wrong("--batch-max", "BATCH_MAX", "abc", "from 1 to 65535"),
    wrong("--batch-max", "BATCH_MAX", "", "from 1 to 65535"),
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

/// A port on this machine where nothing listens.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().unwrap().port()
}

/// Valid settings that lead nowhere: a database and a broker that are not there.
fn nowhere() -> Vec<(&'static str, String)> {
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

/// The binary with `args` and only `env` in its environment, given [`FAIL_FAST`] to stop.
async fn ingestor(args: &[String], env: &[(&str, String)]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_ingestor"))
        .env_clear()
        .envs(env.iter().map(|(name, value)| (name, value)))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the ingestor binary");
    match tokio::time::timeout(FAIL_FAST, child.wait_with_output()).await {
        Ok(output) => output.expect("wait for the ingestor binary"),
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

#[tokio::test]
async fn every_wrong_setting_stops_the_ingestor_at_start_with_one_line_naming_it() {
    for w in WRONG {
        let by_flag = ingestor(&[format!("{}={}", w.flag, w.value)], &nowhere()).await;
        let by_variable = ingestor(&[], &with(nowhere(), w.variable, w.value)).await;

        for (how, output) in [("flag", by_flag), ("variable", by_variable)] {
            let case = format!("{}={:?} by {how}", w.variable, w.value);
            let line = refusal(&output, &case);
            assert!(line.contains(w.flag), "{case}: {line}");
            assert!(
                line.contains(&format!("env {}", w.variable)),
                "{case}: {line}"
            );
            assert!(line.contains(w.says), "{case}: {line}");
            assert_shown(&line, w, &case);
        }
    }
}

/// The value is repeated, but not the database URL, and not a user and password in a URL.
fn assert_shown(line: &str, w: &Wrong, case: &str) {
    if w.variable == "DATABASE_URL" {
        assert!(line.ends_with("(the value is not shown)"), "{case}: {line}");
        assert!(
            w.value.is_empty() || !line.contains(w.value),
            "{case}: {line}"
        );
    } else if let Some((before, host)) = w.value.rsplit_once('@') {
        let credentials = before.rsplit_once("://").map_or(before, |(_, c)| c);
        assert!(line.contains(&format!("…@{host}'")), "{case}: {line}");
        assert!(!line.contains(credentials), "{case}: {line}");
    } else {
        assert!(line.contains(&format!("'{}'", w.value)), "{case}: {line}");
    }
}

#[test]
fn every_setting_has_a_wrong_value_in_the_table() {
    for arg in settings_args() {
        let variable = arg.get_env().unwrap().to_str().unwrap();
        assert!(
            WRONG.iter().any(|w| w.variable == variable),
            "no wrong value of {variable} is tried"
        );
    }
}

#[tokio::test]
async fn a_malformed_database_url_is_refused_without_printing_its_password() {
    for url in [
        format!("postgres://ingestor:{PASSWORD}@[127.0.0.1/orders"),
        format!("postgres://ingestor:{PASSWORD}@127.0.0.1:5432x/orders"),
        format!("postgres://ingestor:{PASSWORD}@127.0.0.1/orders?sslmode=maybe"),
        format!("postgres//ingestor:{PASSWORD}@127.0.0.1/orders"),
    ] {
        for args in [vec![], vec!["dead-letters".to_string(), "list".to_string()]] {
            for by_flag in [true, false] {
                let (args, env) = if by_flag {
                    let mut all = vec![format!("--database-url={url}")];
                    all.extend(args.iter().cloned());
                    (all, nowhere())
                } else {
                    (args.clone(), with(nowhere(), "DATABASE_URL", &url))
                };
                let output = ingestor(&args, &env).await;

                let case = format!("{args:?} with a malformed URL by flag: {by_flag}");
                let line = refusal(&output, &case);
                assert!(line.contains("--database-url"), "{case}: {line}");
                assert!(line.contains("DATABASE_URL"), "{case}: {line}");
                assert!(!line.contains(PASSWORD), "{case}: {line}");
            }
        }
    }
}

#[tokio::test]
async fn a_missing_database_url_is_named_with_its_variable() {
    for args in [vec![], vec!["dead-letters".to_string(), "list".to_string()]] {
        let env: Vec<_> = nowhere()
            .into_iter()
            .filter(|(name, _)| *name != "DATABASE_URL")
            .collect();
        let output = ingestor(&args, &env).await;

        let line = refusal(&output, &format!("{args:?}"));
        assert!(
            line.contains("--database-url (env DATABASE_URL) is required"),
            "{line}"
        );
    }
}

#[tokio::test]
async fn a_wrong_rust_log_stops_the_ingestor_at_start_naming_it() {
    let output = ingestor(&[], &with(nowhere(), "RUST_LOG", "ingestor=loud")).await;

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("RUST_LOG"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
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

/// The consumer's settings: every option but help and version.
fn settings_args() -> Vec<Arg> {
    let command = ingestor::cli::command();
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
    let output = ingestor(&["--help".to_string()], &[]).await;
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
                arg.is_required_set() || text.contains("[default: "),
                "{flag} has neither a default nor says what it is: {text}"
            ),
        }
    }

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
            row.contains("| ingestor |") || row.contains("| both |"),
            "{variable}: {row}"
        );
        if let [default] = arg.get_default_values() {
            let default = default.to_str().unwrap();
            assert!(row.contains(&format!("`{default}`")), "{variable}: {row}");
        }
    }
}
