//! `loadtest/RESULTS.md` from the JSON files of one run of `loadtest/run`: the targets first, then a
//! section per benchmark, each in a file of its own; `inputs.rs` reads the files.

mod api;
mod cpu;
mod freshness;
mod ingest;
mod inputs;
pub mod scaling;
mod targets;
mod warmup;

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;

use self::inputs::Results;
use crate::stats::Spread;

#[derive(clap::Args)]
pub struct Args {
    /// The folder of the run's results.
    #[arg(long)]
    results: PathBuf,
    /// Where to write the report.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let r = Results::read(&args.results)?;
    let mut md = String::new();
    let w = &mut md;
    writeln!(w, "# Benchmark results\n")?;
    writeln!(
        w,
        "Written by `{}` on {}, from its own measurements; nothing here is edited by hand. \
         The machine runs everything at once (Postgres, NATS Streaming, the service, the load \
         generator), so absolute figures are this machine's; the ratios to the ceilings measured \
         in the same run are the portable part.\n",
        r.run.command, r.run.date
    )?;
    writeln!(w, "```text\n{}\n```\n", r.machine.trim_end())?;
    targets::write(w, &r)?;
    api::write(w, &r)?;
    ingest::write(w, &r)?;
    freshness::write(w, &r)?;
    warmup::write(w, &r)?;
    cpu::write(w, &r)?;
    // The soak is a run of its own, with a report of its own.
    writeln!(w, "\n{SOAK}")?;

    std::fs::write(&args.out, md).with_context(|| format!("writing {}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// The closing line: where the soak under faults reports.
const SOAK: &str = "The whole system under random faults, checked at the end (`loadtest/soak`, \
    30 minutes by default) in [results/soak-30m.md](results/soak-30m.md); its 3-minute form \
    (`loadtest/soak --short`, part of `scripts/test`) in [results/soak-3m.md](results/soak-3m.md). The bounded cache against the unbounded one on five \
    million orders (`loadtest/bounded-cache`): [RESULTS-bounded-cache.md](RESULTS-bounded-cache.md).";

fn spread_row(w: &mut String, who: &str, s: &Spread) -> std::fmt::Result {
    writeln!(
        w,
        "| {who} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
        s.count, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
    )
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn median_u64(values: &[u64]) -> u64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// `1234567` as `1 234 567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}
