//! The command line: without a command the ingestor consumes the channel, configured by
//! [`Settings`]; with one it runs an operator's command (see [`crate::operator`]).

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches, Subcommand};

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
    /// From the process's arguments and environment; prints help or an error and exits on a
    /// malformed command line.
    pub fn from_env() -> Invocation {
        Self::try_from_args(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    pub fn try_from_args(
        args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    ) -> Result<Invocation, clap::Error> {
        let mut command = command();
        let matches = command.try_get_matches_from_mut(args)?;
        let invocation = if matches.subcommand().is_some() {
            Operation::from_arg_matches(&matches).map(Invocation::Operate)
        } else {
            Settings::from_arg_matches(&matches).map(Invocation::Consume)
        };
        invocation.map_err(|e| e.format(&mut command))
    }
}

/// The consumer's options, with the operator's commands beside them. The consumer's options and
/// their environment variables are exactly those of [`Settings`]; they do not apply to a command,
/// which reads only what it declares (and `DATABASE_URL` is not required before a command).
pub fn command() -> clap::Command {
    Operation::augment_subcommands(Settings::command())
        .args_conflicts_with_subcommands(true)
        .subcommand_negates_reqs(true)
}
