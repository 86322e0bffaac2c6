//! Commands for an operator, run by the ingestor binary because it holds the database role that
//! may write: `ingestor dead-letters list`, `ingestor dead-letters replay ID...` and
//! `ingestor dead-letters dismiss ID... --reason TEXT`.
//!
//! What they print came from the channel, so from anyone: it is escaped (`terminal.rs`) before it
//! reaches a terminal.

mod dead_letters;
mod terminal;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use service_kit::settings::{DatabaseSettings, LogSettings};
use sqlx::{Connection, PgConnection};

pub use self::dead_letters::DeadLetters;

#[derive(Debug, Subcommand)]
pub enum Operation {
    /// List the messages that were not valid orders, replay them once fixed upstream, or dismiss
    /// them.
    #[command(name = "dead-letters", subcommand)]
    DeadLetters(DeadLetters),
}

impl Operation {
    pub fn settings(&self) -> &OperatorSettings {
        match self {
            Operation::DeadLetters(command) => command.settings(),
        }
    }
}

/// All that a command reads from its flags and the environment. The consumer's settings do not
/// apply: a command neither reads nor checks them. The database role must be allowed to write
/// (replaying stores orders; replaying and dismissing resolve dead letters).
#[derive(Debug, Args)]
pub struct OperatorSettings {
    #[command(flatten)]
    pub database: DatabaseSettings,

    #[command(flatten)]
    pub log: LogSettings,
}

/// Runs the command. The exit code says whether it did all it was asked.
pub async fn run(operation: Operation) -> anyhow::Result<ExitCode> {
    match operation {
        Operation::DeadLetters(command) => command.run().await,
    }
}

/// One connection to the database, without retrying: a person is waiting for the answer.
async fn connect(database: &DatabaseSettings) -> anyhow::Result<PgConnection> {
    PgConnection::connect_with(&database.connect_options())
        .await
        .context("connecting to the database")
}
