//! Commands for an operator, run by the ingestor binary because it holds the database role that
//! may write: `ingestor dead-letters list` and `ingestor dead-letters replay ID...`.
//!
//! What they print came from the channel, so from anyone: it is escaped (`terminal.rs`) before it
//! reaches a terminal.

mod dead_letters;
mod terminal;

use std::fmt;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use service_kit::settings::LogSettings;
use sqlx::{Connection, PgConnection};

pub use self::dead_letters::DeadLetters;
use crate::settings::database_url;

#[derive(Debug, Subcommand)]
pub enum Operation {
    /// List the messages that were not valid orders, and replay them once fixed upstream.
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
/// apply: a command neither reads nor checks them.
#[derive(Args)]
pub struct OperatorSettings {
    /// Postgres connection URL of a role that may write (replaying stores orders). Its value is
    /// never printed.
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "URL",
        hide_env_values = true,
        value_parser = database_url()
    )]
    database_url: String,

    #[command(flatten)]
    pub log: LogSettings,
}

/// Without the database URL, which may hold a password.
impl fmt::Debug for OperatorSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorSettings")
            .field("database_url", &"(not shown)")
            .field("log", &self.log)
            .finish()
    }
}

/// Runs the command. The exit code says whether it did all it was asked.
pub async fn run(operation: Operation) -> anyhow::Result<ExitCode> {
    match operation {
        Operation::DeadLetters(command) => command.run().await,
    }
}

/// One connection to the database, without retrying: a person is waiting for the answer.
async fn connect(database_url: &str) -> anyhow::Result<PgConnection> {
    PgConnection::connect(database_url)
        .await
        .context("connecting to the database")
}
