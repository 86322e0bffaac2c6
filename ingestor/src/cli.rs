//! The command line: without a command the ingestor consumes the channel, configured by
//! [`Settings`]; with one it runs an operator's command (see [`crate::operator`]).

use std::ffi::OsString;

use clap::{Command, CommandFactory, FromArgMatches, Subcommand};
use service_kit::settings::{name_missing, with_env_aliases, BROKER_ALIASES};

use crate::operator::Operation;
use crate::Settings;

/// What the ingestor was asked to do.
#[derive(Debug)]
pub enum Invocation {
    /// No command: consume the channel, as configured.
    Consume(Settings),
    /// An operator's command.
    Operate(Operation),
}

impl Invocation {
    /// From the process's arguments and environment; prints help, or one line naming the wrong
    /// setting, and exits on a malformed command line.
    pub fn from_env() -> Invocation {
        Self::try_from_args(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    pub fn try_from_args(
        args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    ) -> Result<Invocation, clap::Error> {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        // clap reads and checks the environment variables of the consumer's options even when a
        // command follows, so a command line that starts with a command is parsed by the
        // operator's commands alone: a command then needs only what it declares. Any other (the
        // consumer, help, a wrong command line) is parsed by the whole command line, which also
        // refuses the consumer's options before a command. Either way it is parsed once.
        let mut command = if starts_with_a_command(&args) {
            operator_command()
        } else {
            with_env_aliases(command(), BROKER_ALIASES, |name| std::env::var_os(name))?
        };
        let matches = command
            .try_get_matches_from_mut(args)
            .map_err(|e| name_missing(e, &command))?;
        let invocation = if matches.subcommand().is_some() {
            Operation::from_arg_matches(&matches).map(Invocation::Operate)
        } else {
            Settings::from_arg_matches(&matches).map(Invocation::Consume)
        };
        invocation.map_err(|e| e.format(&mut command))
    }
}

/// Whether the first argument after the program's name is one of the operator's commands.
fn starts_with_a_command(args: &[OsString]) -> bool {
    let Some(first) = args.get(1).and_then(|a| a.to_str()) else {
        return false;
    };
    operator_command()
        .get_subcommands()
        .any(|sub| sub.get_name() == first || sub.get_all_aliases().any(|alias| alias == first))
}

/// The consumer's options, with the operator's commands beside them. The consumer's options and
/// their environment variables are exactly those of [`Settings`]; they do not apply to a command,
/// which reads only what it declares (and `DATABASE_URL` is not required before a command).
pub fn command() -> Command {
    Operation::augment_subcommands(Settings::command())
        .args_conflicts_with_subcommands(true)
        .subcommand_negates_reqs(true)
}

/// The operator's commands alone.
fn operator_command() -> Command {
    Operation::augment_subcommands(Command::new("ingestor")).subcommand_required(true)
}
