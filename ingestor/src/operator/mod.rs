//! Commands for an operator, run by the ingestor binary because it holds the database role that
//! may write: `ingestor dead-letters list` and `ingestor dead-letters replay ID...`.
//!
//! What they print came from the channel, so from anyone: it is escaped (`terminal.rs`) before it
//! reaches a terminal.

mod dead_letters;
mod terminal;

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use sqlx::{Connection, PgConnection};

pub use self::dead_letters::DeadLetters;

#[derive(Debug, Subcommand)]
pub enum Operation {
    /// List the messages that were not valid orders, and replay them once fixed upstream.
    #[command(name = "dead-letters", subcommand)]
    DeadLetters(DeadLetters),
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
