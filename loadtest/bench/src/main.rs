//! The measuring side of the benchmarks in `loadtest/`. `loadtest/run` drives it; each command
//! prints what it measured and, with `--out`, writes it as JSON for `bench report`.

mod ceiling;
mod drain;
mod freshness;
mod insert;
mod report;
mod soak;
mod stats;
mod warmup;

use clap::{Parser, Subcommand};

/// Ceilings, timings and the report of the order service's benchmarks.
#[derive(Parser)]
#[command(name = "bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serves every stored order from a plain map with a minimal poem endpoint: what this machine
    /// can serve at all, to compare the api with.
    ServeCeiling(ceiling::Args),
    /// Inserts generated orders straight into Postgres in batches, with nothing around the
    /// statements: the ceiling of the ingestor's write path.
    InsertCeiling(insert::Args),
    /// Watches the ingestor drain a filled channel: time to the last commit and until the api
    /// serves the last order.
    WatchDrain(drain::Args),
    /// Publishes orders at a steady rate and times, for a sample of them, publish to first
    /// successful GET on every api replica.
    Freshness(freshness::Args),
    /// Starts the api on a filled table and times it to ready; reads its resident memory.
    Warmup(warmup::Args),
    /// Writes the Markdown report from the JSON results of a run.
    Report(report::Args),
    /// Writes the Markdown report of a run of `loadtest/ingest-scaling`: one ingestor against
    /// several on one durable.
    ScalingReport(report::scaling::Args),
    /// The soak of `loadtest/soak`: its fault schedule, read load, sampler, checks and report.
    Soak(soak::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::ServeCeiling(args) => runtime.block_on(ceiling::run(args)),
        Command::InsertCeiling(args) => runtime.block_on(insert::run(args)),
        Command::WatchDrain(args) => runtime.block_on(drain::run(args)),
        Command::Freshness(args) => runtime.block_on(freshness::run(args)),
        Command::Warmup(args) => runtime.block_on(warmup::run(args)),
        Command::Report(args) => report::run(args),
        Command::ScalingReport(args) => report::scaling::run(args),
        Command::Soak(args) => runtime.block_on(soak::run(args)),
    }
}

/// Writes a result as pretty JSON to `path`, if given, and prints it.
fn emit<T: serde::Serialize>(result: &T, path: Option<&std::path::Path>) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(result)?;
    println!("{json}");
    if let Some(path) = path {
        std::fs::write(path, json + "\n")?;
    }
    Ok(())
}
