//! The soak: the whole system under a steady load and random faults for a long while, driven by
//! `loadtest/soak`. `schedule` draws the faults from a seed, `read` keeps a read load on the api
//! replicas and records every answer, `sample` records each process's memory and open files,
//! `verify` holds what was stored and served against what the broker acknowledged, and `report`
//! writes the Markdown report and its plot, and fails when a check failed.
//!
//! The tools talk through tab-separated files in one folder, each written by one of them (or by
//! the script, for the faults and the shutdown) and described in [`files`].

mod files;
mod plot;
mod prng;
mod reader;
mod report;
mod sample;
mod schedule;
mod verify;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Draws the faults of a soak from a seed and writes them, one action a line.
    Schedule(schedule::Args),
    /// Asks the api replicas for acknowledged and unknown ids at a steady rate until SIGTERM,
    /// recording every answer.
    Read(reader::Args),
    /// Samples each process's resident memory and open files until SIGTERM.
    Sample(sample::Args),
    /// Checks what was stored, dead-lettered and served against what the broker acknowledged.
    Verify(verify::Args),
    /// Writes the report and its plot from a soak's files; fails when a check failed.
    Report(report::Args),
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Schedule(args) => schedule::run(args),
        Command::Read(args) => reader::run(args).await,
        Command::Sample(args) => sample::run(args).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Report(args) => report::run(args),
    }
}
