//! The soak's report, `soak-<duration>.md` with its plot `soak-<duration>.svg`, from the files of
//! one run. The checks of `bench soak verify` come first, then those made here: how long the
//! readers went without a successful answer, how each process's memory and open files grew over
//! the last two thirds of the run, and how each process stopped on SIGTERM. Fails when a check
//! failed, once the report is written.

mod analysis;
mod tables;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use self::analysis::{courses, longest_gap, Course};
use super::files::{read_lines, Action, Fault, Progress, Read, Sample, Shutdown};
use super::plot::Plot;
use super::verify::{Check, Verdict};

#[derive(clap::Args)]
pub struct Args {
    /// The folder of the soak's files.
    #[arg(long)]
    dir: PathBuf,
    /// Where to write the Markdown report.
    #[arg(long)]
    md: PathBuf,
    /// Where to write the plot; the report links it by its file name.
    #[arg(long)]
    svg: PathBuf,
    /// The longest stretch, in seconds, in which no replica answered a read successfully.
    #[arg(long, default_value_t = 15)]
    max_unavailable_secs: u64,
    /// The longest stretch, in seconds, in which one replica answered no read successfully.
    #[arg(long, default_value_t = 60)]
    max_replica_unavailable_secs: u64,
    /// The growth of resident memory allowed over the last two thirds, in percent of where it
    /// started...
    #[arg(long, default_value_t = 10)]
    memory_growth_pct: u64,
    /// ...plus this many MiB: room for one high-water mark, such as the backlog an ingestor takes
    /// in after an outage (about 13 MiB for 20 s of messages at 200 a second), which its
    /// allocator keeps for the next one. Growth with history is far more: an order's document
    /// is about 1.7 KiB.
    #[arg(long, default_value_t = 16)]
    memory_growth_mib: u64,
    /// The growth of open files allowed over the last two thirds.
    #[arg(long, default_value_t = 32)]
    fd_growth: u64,
}

/// What the script records about the run (`run.json`).
#[derive(Debug, Deserialize)]
pub struct Run {
    pub command: String,
    pub date: String,
    pub seed: u64,
    pub duration_secs: u64,
    /// When the load started and stopped, in ms since the Unix epoch.
    pub start_ms: i64,
    pub end_ms: i64,
    pub publish_rate: u64,
    pub hostile_share: f64,
    pub read_rate: u64,
    pub cache_max_bytes: String,
    pub binaries: String,
}

/// Everything the report is made from.
pub struct Inputs {
    pub run: Run,
    pub machine: String,
    pub verdict: Verdict,
    pub schedule: Vec<Action>,
    pub faults: Vec<Fault>,
    pub reads: Vec<Read>,
    pub progress: Vec<Progress>,
    pub samples: Vec<Sample>,
    pub shutdown: Vec<Shutdown>,
}

impl Inputs {
    fn read(dir: &Path) -> anyhow::Result<Inputs> {
        let json = |name: &str| -> anyhow::Result<String> {
            std::fs::read_to_string(dir.join(name)).with_context(|| format!("reading {name}"))
        };
        let mut reads = read_lines(&dir.join("reads.tsv"), Read::parse)?;
        reads.sort_by_key(|r| r.t_ms);
        Ok(Inputs {
            run: serde_json::from_str(&json("run.json")?)?,
            machine: json("machine.txt")?,
            verdict: serde_json::from_str(&json("verify.json")?)?,
            schedule: read_lines(&dir.join("schedule.tsv"), action)?,
            faults: read_lines(&dir.join("faults.tsv"), Fault::parse)?,
            reads,
            progress: read_lines(&dir.join("acked-progress.tsv"), Progress::parse)?,
            samples: read_lines(&dir.join("samples.tsv"), Sample::parse)?,
            shutdown: read_lines(&dir.join("shutdown.tsv"), Shutdown::parse)?,
        })
    }
}

fn action(f: &[&str]) -> Option<Action> {
    Some(Action {
        index: f.first()?.parse().ok()?,
        at_ms: f.get(1)?.parse().ok()?,
        kind: f.get(2)?.to_string(),
        target: f.get(3)?.to_string(),
        signal: f.get(4)?.to_string(),
        hold_ms: f.get(5)?.parse().ok()?,
    })
}

/// Whether a process's growth is held to the bound: the api replicas (bounded cache), the
/// ingestors and PostgreSQL's postmaster. Not the broker nodes, which keep every message of the
/// channel (`--max_msgs 0`) and index them in memory, nor PostgreSQL's backends, whose shared
/// buffers fill as the tables grow.
pub fn bounded(name: &str) -> bool {
    name.starts_with("api-") || name.starts_with("ingestor-") || name == "postgres"
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let inputs = Inputs::read(&args.dir)?;
    let courses = courses(&inputs.samples, inputs.run.start_ms, inputs.run.end_ms);
    let mut checks = inputs.verdict.checks.clone();
    checks.extend(own_checks(&args, &inputs, &courses));
    let svg_name = args
        .svg
        .file_name()
        .and_then(|n| n.to_str())
        .context("a file name for the plot")?
        .to_string();
    let md = markdown(&args, &inputs, &courses, &checks, &svg_name)?;
    std::fs::write(&args.md, md).with_context(|| format!("writing {}", args.md.display()))?;
    std::fs::write(&args.svg, plot(&inputs).svg())
        .with_context(|| format!("writing {}", args.svg.display()))?;
    println!("wrote {} and {}", args.md.display(), args.svg.display());
    let failed: Vec<&Check> = checks.iter().filter(|c| !c.passed).collect();
    for check in &failed {
        eprintln!("FAILED: {}: {}", check.name, check.detail);
    }
    anyhow::ensure!(
        failed.is_empty(),
        "{} of {} checks failed",
        failed.len(),
        checks.len()
    );
    Ok(())
}

/// The checks the verdict cannot make: faults, availability, growth, shutdown.
fn own_checks(args: &Args, inputs: &Inputs, courses: &[Course]) -> Vec<Check> {
    let scheduled: std::collections::BTreeSet<u32> =
        inputs.schedule.iter().map(|a| a.index).collect();
    let mut checks = vec![Check::new(
        "every scheduled fault injected, and the system back after it",
        inputs.faults.len() == inputs.schedule.len(),
        format!(
            "{} faults ({} actions) scheduled, {} actions done",
            scheduled.len(),
            inputs.schedule.len(),
            inputs.faults.len()
        ),
    )];
    checks.extend(availability_checks(args, inputs));
    checks.push(growth_check(args, courses));
    checks.push(shutdown_check(&inputs.shutdown));
    checks
}

/// The longest stretches without a successful read: overall, and for the worst replica.
fn availability_checks(args: &Args, inputs: &Inputs) -> Vec<Check> {
    let (start, end) = (inputs.run.start_ms, inputs.run.end_ms);
    let overall = longest_gap(inputs.reads.iter(), start, end);
    let mut checks = vec![Check::new(
        &format!(
            "no stretch of more than {} s without a successful read",
            args.max_unavailable_secs
        ),
        overall.ms <= args.max_unavailable_secs as i64 * 1000,
        format!(
            "the longest: {:.1} s from {:.0} s into the run",
            overall.ms as f64 / 1000.0,
            (overall.from_ms - start) as f64 / 1000.0
        ),
    )];
    let replica_gap =
        |n: usize| longest_gap(inputs.reads.iter().filter(|r| r.replica == n), start, end);
    let worst = (1..=inputs.verdict.replicas.len())
        .map(|n| (n, replica_gap(n)))
        .max_by_key(|(_, gap)| gap.ms);
    if let Some((n, gap)) = worst {
        checks.push(Check::new(
            &format!(
                "no replica more than {} s without a successful read",
                args.max_replica_unavailable_secs
            ),
            gap.ms <= args.max_replica_unavailable_secs as i64 * 1000,
            format!("the longest: api-{n}, {:.1} s", gap.ms as f64 / 1000.0),
        ));
    }
    checks
}

fn shutdown_check(shutdown: &[Shutdown]) -> Check {
    let late: Vec<&str> = shutdown
        .iter()
        .filter(|s| !s.exited)
        .map(|s| s.name.as_str())
        .collect();
    Check::new(
        "every process exited within its limit after SIGTERM",
        late.is_empty() && !shutdown.is_empty(),
        format!(
            "{} processes stopped; {}",
            shutdown.len(),
            if late.is_empty() {
                "none hung".to_string()
            } else {
                format!(
                    "not exited in time, or not running any more: {}",
                    late.join(", ")
                )
            }
        ),
    )
}

fn growth_check(args: &Args, courses: &[Course]) -> Check {
    let mut over = Vec::new();
    let mut measured = 0;
    for course in courses.iter().filter(|c| bounded(&c.name)) {
        let Some(g) = course.growth else { continue };
        measured += 1;
        let allowed_kib = g.rss_from_kib as i64 * args.memory_growth_pct as i64 / 100
            + args.memory_growth_mib as i64 * 1024;
        if g.rss_kib() > allowed_kib {
            over.push(format!(
                "{}: memory +{:.1} MiB of {:.1} MiB allowed",
                course.name,
                g.rss_kib() as f64 / 1024.0,
                allowed_kib as f64 / 1024.0
            ));
        }
        if g.fds() > args.fd_growth as i64 {
            over.push(format!("{}: open files +{}", course.name, g.fds()));
        }
    }
    Check::new(
        &format!(
            "memory and open files level over the last two thirds (≤ {} % + {} MiB, ≤ {} files)",
            args.memory_growth_pct, args.memory_growth_mib, args.fd_growth
        ),
        over.is_empty(),
        if over.is_empty() {
            format!("{measured} api, ingestor and postmaster processes measured, all within")
        } else {
            over.join("; ")
        },
    )
}

fn markdown(
    args: &Args,
    inputs: &Inputs,
    courses: &[Course],
    checks: &[Check],
    svg_name: &str,
) -> anyhow::Result<String> {
    let mut md = String::new();
    let w = &mut md;
    let run = &inputs.run;
    let failed = checks.iter().filter(|c| !c.passed).count();
    writeln!(
        w,
        "# Soak: {} under random faults\n",
        tables::duration(run.duration_secs)
    )?;
    writeln!(
        w,
        "Written by `{}` on {}, from its own measurements; nothing here is edited by hand. \
         **{}**: {} of {} checks passed.\n",
        run.command,
        run.date,
        if failed == 0 { "Passed" } else { "FAILED" },
        checks.len() - failed,
        checks.len()
    )?;
    writeln!(w, "```text\n{}\n```\n", inputs.machine.trim_end())?;
    tables::setup(w, run)?;
    tables::checks(w, checks)?;
    writeln!(
        w,
        "![Memory per process, rates and faults over time]({svg_name})\n"
    )?;
    writeln!(
        w,
        "Above: each process's resident memory; below: messages acknowledged to the publisher, \
         orders committed, and reads answered (200 or 404) or not, a second over each 10 s; the \
         bands are the faults, numbered as below.\n"
    )?;
    tables::messages(w, &inputs.verdict)?;
    tables::faults(w, inputs)?;
    tables::reads(w, inputs)?;
    tables::processes(w, args, courses, run.start_ms)?;
    tables::shutdown(w, &inputs.shutdown)?;
    Ok(md)
}

fn plot(inputs: &Inputs) -> Plot<'_> {
    let run = &inputs.run;
    let mut memory: BTreeMap<&str, Vec<(i64, Option<f64>)>> = BTreeMap::new();
    for s in &inputs.samples {
        let mib = s.rss_kib.map(|k| k as f64 / 1024.0);
        memory.entry(&s.name).or_default().push((s.t_ms, mib));
    }
    let (ok, failed) = analysis::read_rates(&inputs.reads, run.start_ms);
    let stored = inputs
        .verdict
        .stored_per_10s
        .iter()
        .map(|&n| n as f64 / 10.0)
        .collect();
    Plot {
        title: format!(
            "Soak of {}, seed {}: {} faults",
            tables::duration(run.duration_secs),
            run.seed,
            inputs
                .faults
                .iter()
                .map(|f| f.index)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        ),
        start_ms: run.start_ms,
        end_ms: run.end_ms,
        memory: memory
            .into_iter()
            .map(|(name, points)| (name.to_string(), points))
            .collect(),
        rates: vec![
            (
                "acknowledged".into(),
                analysis::acked_rates(&inputs.progress, run.start_ms),
            ),
            ("committed".into(), stored),
            ("reads answered".into(), ok),
            ("reads failed".into(), failed),
        ],
        faults: &inputs.faults,
    }
}
