//! For the tests of a process's settings: the real binary run with nothing in its environment but
//! what a test gives it, and a bounded time to refuse what is wrong; the checks on the one line
//! that refuses a setting, on `--help` and on the README's configuration table.

use std::process::{Output, Stdio};
use std::time::Duration;

use clap::{Arg, Command};

/// How long a wrong setting may take to stop the binary: ample for a loaded machine to start it.
/// One still running by then has got past its settings, which the wrong setting should have
/// prevented.
pub const FAIL_FAST: Duration = Duration::from_secs(30);

/// Environment variables, by name.
pub type Env = Vec<(&'static str, String)>;

/// A wrong value of a setting, and words of the message that must say what is wrong.
pub struct Wrong {
    pub flag: &'static str,
    pub variable: &'static str,
    pub value: &'static str,
    pub says: &'static str,
}

pub const fn wrong(
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

/// A port on this machine where nothing listens.
pub fn closed_port() -> u16 {
    crate::free_port()
}

/// Replaces the variable `name` in `env`, or adds it.
pub fn with(mut env: Env, name: &'static str, value: &str) -> Env {
    env.retain(|(n, _)| *n != name);
    env.push((name, value.to_string()));
    env
}

/// The binary at `path` with `args` and only `env` in its environment, given [`FAIL_FAST`] to
/// stop; panics if it is still running by then.
pub async fn run(path: &str, args: &[String], env: &[(&str, String)]) -> Output {
    let child = tokio::process::Command::new(path)
        .env_clear()
        .envs(env.iter().map(|(name, value)| (name, value)))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {path}: {e}"));
    match tokio::time::timeout(FAIL_FAST, child.wait_with_output()).await {
        Ok(output) => output.unwrap_or_else(|e| panic!("wait for {path}: {e}")),
        Err(_) => panic!(
            "args {args:?}, environment {env:?}: still running after {FAIL_FAST:?}; \
             the settings were not refused at start"
        ),
    }
}

/// The one line of standard error of a binary that refused its settings.
pub fn refusal(output: &Output, case: &str) -> String {
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

/// Every value of `table`, given by flag and by environment variable to the binary at `path` in
/// the environment `nowhere` (where its settings are valid but lead nowhere), is refused in one
/// line that names the flag and the variable and says what is wrong. That line repeats the value,
/// but not that of a setting in `secrets`, nor a user and password in a URL.
pub async fn assert_every_wrong_value_is_refused(
    path: &str,
    table: &[Wrong],
    nowhere: fn() -> Env,
    secrets: &[&str],
) {
    for w in table {
        let by_flag = run(path, &[format!("{}={}", w.flag, w.value)], &nowhere()).await;
        let by_variable = run(path, &[], &with(nowhere(), w.variable, w.value)).await;

        for (how, output) in [("flag", by_flag), ("variable", by_variable)] {
            let case = format!("{}={:?} by {how}", w.variable, w.value);
            let line = refusal(&output, &case);
            assert!(line.contains(w.flag), "{case}: {line}");
            assert!(
                line.contains(&format!("env {}", w.variable)),
                "{case}: {line}"
            );
            assert!(line.contains(w.says), "{case}: {line}");
            if secrets.contains(&w.variable) {
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
    }
}

/// Every setting in `args` but those in `any_value` (which take any text) has a wrong value in
/// `table`.
pub fn assert_every_setting_is_tried(args: &[Arg], table: &[Wrong], any_value: &[&str]) {
    for arg in args {
        let variable = arg.get_env().unwrap().to_str().unwrap();
        assert!(
            any_value.contains(&variable) || table.iter().any(|w| w.variable == variable),
            "no wrong value of {variable} is tried"
        );
    }
}

/// The settings of `command`: every option but help and version, each of which must have an
/// environment variable and be documented.
pub fn settings_args(command: &Command) -> Vec<Arg> {
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
pub fn help_of<'a>(help: &'a str, flag: &str) -> Vec<&'a str> {
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

/// The `--help` text shows every setting in `args` with its variable, and its default: the one
/// clap has, or else one in the description, or else what happens without it ("Without it ...").
pub fn assert_help_documents(help: &str, args: &[Arg]) {
    for arg in args {
        let flag = format!("--{}", arg.get_long().unwrap());
        let text = help_of(help, &flag).join("\n");
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

/// The Configuration section of `readme` has a row for every setting in `args`, which names
/// `process` (or says `both`) and shows the default.
pub fn assert_readme_lists(readme: &str, args: &[Arg], process: &str) {
    let section = readme
        .split("\n## Configuration\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Configuration section in the README");

    for arg in args {
        let variable = arg.get_env().unwrap().to_str().unwrap();
        let row = section
            .lines()
            .find(|line| line.starts_with(&format!("| `{variable}` |")))
            .unwrap_or_else(|| panic!("{variable} is not in the README's table"));
        assert!(
            row.contains(&format!("| {process} |")) || row.contains("| both |"),
            "{variable}: {row}"
        );
        if let [default] = arg.get_default_values() {
            let default = default.to_str().unwrap();
            assert!(row.contains(&format!("`{default}`")), "{variable}: {row}");
        }
    }
}

/// The binary at `path`, given a `RUST_LOG` that cannot be read in `env`, stops at start with one
/// line naming it, and exit code 1 (that of a failed start, not of refused flags).
pub async fn assert_a_wrong_rust_log_is_refused(path: &str, env: &[(&str, String)]) {
    let output = run(path, &[], env).await;

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("RUST_LOG"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

/// A malformed database URL holding `password`, given by flag and by variable before each of
/// `commands` (an empty one: the process itself) in the environment `nowhere`, is refused in one
/// line that names the setting and does not print the password.
pub async fn assert_a_malformed_database_url_is_refused(
    path: &str,
    commands: &[&[&str]],
    nowhere: fn() -> Env,
    password: &str,
) {
    for url in [
        format!("postgres://orders:{password}@[127.0.0.1/orders"),
        format!("postgres://orders:{password}@127.0.0.1:5432x/orders"),
        format!("postgres://orders:{password}@127.0.0.1/orders?sslmode=maybe"),
        format!("postgres//orders:{password}@127.0.0.1/orders"),
    ] {
        for command in commands {
            let command: Vec<String> = command.iter().map(|a| a.to_string()).collect();
            let mut by_flag = vec![format!("--database-url={url}")];
            by_flag.extend(command.iter().cloned());
            let by_flag = run(path, &by_flag, &nowhere()).await;
            let by_variable = run(path, &command, &with(nowhere(), "DATABASE_URL", &url)).await;

            for (how, output) in [("flag", by_flag), ("variable", by_variable)] {
                let case = format!("{command:?} with a malformed URL by {how}");
                let line = refusal(&output, &case);
                assert!(
                    line.contains("--database-url (env DATABASE_URL)"),
                    "{case}: {line}"
                );
                assert!(!line.contains(password), "{case}: {line}");
            }
        }
    }
}

/// Without `DATABASE_URL` in the environment `nowhere`, each of `commands` (an empty one: the
/// process itself) stops in one line that names the setting and its variable.
pub async fn assert_a_missing_database_url_is_named(
    path: &str,
    commands: &[&[&str]],
    nowhere: fn() -> Env,
) {
    for command in commands {
        let command: Vec<String> = command.iter().map(|a| a.to_string()).collect();
        let mut env = nowhere();
        env.retain(|(name, _)| *name != "DATABASE_URL");
        let output = run(path, &command, &env).await;

        let line = refusal(&output, &format!("{command:?} without DATABASE_URL"));
        assert!(
            line.contains("--database-url (env DATABASE_URL) is required"),
            "{line}"
        );
    }
}
