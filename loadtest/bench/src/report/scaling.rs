//! `loadtest/RESULTS-ingest-scaling.md` from the JSON files of one run of
//! `loadtest/ingest-scaling`: the same backlog drained by one ingestor and by several on one
//! durable, the rates side by side, what each ingestor did, the CPU, and the write lock.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use super::inputs::{read, Cpu};
use super::{median, thousands};
use crate::drain::{DrainResult, IngestorFigures, LockSamples};

/// The same as the main report's: the run's results folder and where to write.
pub use super::Args;

/// What `loadtest/ingest-scaling` records about the run itself.
#[derive(Deserialize)]
struct Run {
    command: String,
    date: String,
    orders: u64,
    tries: u64,
}

/// One drain: `ingestors` on the broker's durable, try `try_`.
struct Drain {
    broker: String,
    ingestors: usize,
    try_: u64,
    result: DrainResult,
    cpu: Cpu,
}

impl Drain {
    fn cpu_of(&self, process: &str) -> f64 {
        self.cpu.processes.get(process).copied().unwrap_or(0.0)
    }

    /// CPU seconds of the ingestors, each.
    fn ingestor_cpu(&self) -> Vec<f64> {
        (1..=self.ingestors)
            .map(|i| self.cpu_of(&format!("ingestor-{i}")))
            .collect()
    }

    fn broker_cpu(&self) -> f64 {
        self.cpu_of("nats-streaming") + self.cpu_of("nats-server")
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let run: Run = read(&args.results, "run.json")?;
    let machine =
        std::fs::read_to_string(args.results.join("machine.txt")).context("reading machine.txt")?;
    let drains = drains(&args.results)?;
    anyhow::ensure!(!drains.is_empty(), "no drain-*.json in the results");
    let mut md = String::new();
    let w = &mut md;
    writeln!(w, "# Ingest with several ingestors\n")?;
    writeln!(
        w,
        "Written by `{}` on {}, from its own measurements; nothing here is edited by hand. A \
         channel is filled with {} generated orders while no ingestor runs; then 1, 2 or 3 \
         ingestors on one durable (a queue group with NATS Streaming, a pull consumer with \
         JetStream) drain it, {} each, in turn. Every drain starts from empty tables and \
         reads the channel from its start under a durable of its own. Timed from the first commit \
         to the last, by the ingestors' counters added up. The writers take the advisory lock \
         `orders::db::WRITE_LOCK` from `BEGIN` to the commit, so their transactions run one at a \
         time: *held* is the share of `pg_locks` samples in which a transaction held it, \
         *waiting* how many transactions waited for it on average, and *in transactions* the \
         seconds each ingestor spent from `BEGIN` to its commit, the waiting included (its \
         commit-duration histogram). The CPU is that of each process from the ingestors' start to \
         the end of the drain, from `/proc`. Two cores run everything: the ratios are the portable \
         part.\n",
        run.command,
        run.date,
        thousands(run.orders),
        match run.tries {
            1 => "once".to_string(),
            n => format!("{n} times"),
        }
    )?;
    writeln!(w, "```text\n{}\n```\n", machine.trim_end())?;
    summary(w, &drains)?;
    every_drain(w, &drains)?;
    std::fs::write(&args.out, md).with_context(|| format!("writing {}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// The drains of the folder, by broker, then ingestors, then try.
fn drains(dir: &Path) -> anyhow::Result<Vec<Drain>> {
    let mut drains = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let Some(key) = name
            .strip_prefix("drain-")
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        let mut parts = key.split('-');
        let (Some(broker), Some(Ok(ingestors)), Some(Ok(try_))) = (
            parts.next(),
            parts.next().map(str::parse),
            parts.next().map(str::parse),
        ) else {
            anyhow::bail!("{name}: not drain-BROKER-INGESTORS-TRY.json");
        };
        drains.push(Drain {
            broker: broker.to_string(),
            ingestors,
            try_,
            result: read(dir, &name)?,
            cpu: read(dir, &format!("cpu-{key}.json"))?,
        });
    }
    drains.sort_by(|a, b| (&a.broker, a.ingestors, a.try_).cmp(&(&b.broker, b.ingestors, b.try_)));
    Ok(drains)
}

/// The medians over the tries of one broker and number of ingestors.
struct Medians {
    orders_per_second: f64,
    lock_held: f64,
    waiting: f64,
    ingestor_cores: f64,
    postgres_cores: f64,
    broker_cores: f64,
    /// CPU ms of every process per 1 000 orders.
    cpu_ms: f64,
}

impl Medians {
    fn of(group: &[&Drain]) -> Medians {
        let of =
            |f: &dyn Fn(&Drain) -> f64| median(&group.iter().map(|d| f(d)).collect::<Vec<_>>());
        let lock = |f: &dyn Fn(&LockSamples) -> f64| {
            of(&|d| d.result.write_lock.as_ref().map_or(f64::NAN, f))
        };
        let cores = |f: &dyn Fn(&Drain) -> f64| of(&|d| f(d) / d.cpu.wall_seconds);
        Medians {
            orders_per_second: of(&|d| d.result.orders_per_second),
            lock_held: lock(&|l| l.held),
            waiting: lock(&|l| l.mean_waiting),
            ingestor_cores: cores(&|d| d.ingestor_cpu().iter().sum()),
            postgres_cores: cores(&|d| d.cpu_of("postgres")),
            broker_cores: cores(&|d| d.broker_cpu()),
            cpu_ms: of(&|d| d.cpu.processes.values().sum::<f64>() * 1e6 / d.result.orders as f64),
        }
    }
}

/// Per broker and number of ingestors, the medians over the tries; then, per broker, how much
/// faster than one ingestor several can be while the lock serialises their transactions.
fn summary(w: &mut String, drains: &[Drain]) -> anyhow::Result<()> {
    let mut groups: BTreeMap<(&str, usize), Vec<&Drain>> = BTreeMap::new();
    for d in drains {
        groups
            .entry((d.broker.as_str(), d.ingestors))
            .or_default()
            .push(d);
    }
    let medians: BTreeMap<(&str, usize), Medians> = groups
        .iter()
        .map(|(&key, group)| (key, Medians::of(group)))
        .collect();
    writeln!(w, "## Summary: medians over the tries\n")?;
    writeln!(
        w,
        "| Broker | Ingestors | Orders/s | To one ingestor | Lock held | Waiting | Ingestors' \
         CPU, cores | Postgres, cores | Broker, cores | CPU ms per 1 000 orders, all processes |"
    )?;
    writeln!(w, "|---|---|---|---|---|---|---|---|---|---|")?;
    for (&(broker, ingestors), m) in &medians {
        let to_one = medians.get(&(broker, 1)).map_or(String::new(), |one| {
            format!("{:.2}×", m.orders_per_second / one.orders_per_second)
        });
        writeln!(
            w,
            "| {broker} | {ingestors} | {} | {to_one} | {:.0} % | {:.2} | {:.2} | {:.2} | {:.2} | \
             {:.0} |",
            thousands(m.orders_per_second as u64),
            m.lock_held * 100.0,
            m.waiting,
            m.ingestor_cores,
            m.postgres_cores,
            m.broker_cores,
            m.cpu_ms,
        )?;
    }
    for (&(broker, ingestors), one) in &medians {
        if ingestors != 1 {
            continue;
        }
        let several: Vec<String> = medians
            .range((broker, 2)..=(broker, usize::MAX))
            .map(|(&(_, n), m)| {
                format!(
                    "{:.2}× with {n}",
                    m.orders_per_second / one.orders_per_second
                )
            })
            .collect();
        writeln!(
            w,
            "\n{broker}: one ingestor holds the write lock {:.0} % of its drain; while the lock \
             lets one transaction run at a time, writers added can make the whole at most \
             {:.2}× as fast (1 / that share). Measured: {}.",
            one.lock_held * 100.0,
            1.0 / one.lock_held,
            several.join(", ")
        )?;
    }
    Ok(())
}

fn every_drain(w: &mut String, drains: &[Drain]) -> anyhow::Result<()> {
    writeln!(w, "\n## Every drain\n")?;
    writeln!(
        w,
        "*Stored*, *duplicates* and *in transactions* are each ingestor's own counters, in the \
         order of their metrics ports; *waiting, s* is the waiting summed over the writers.\n"
    )?;
    writeln!(
        w,
        "| Broker | Ingestors | Try | Seconds | Orders/s | Stored by each | Duplicates | In \
         transactions, s | Lock held | Contended | Waiting | Waiting, s | Ingestors' CPU s | \
         Postgres CPU s | Broker CPU s |"
    )?;
    writeln!(
        w,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )?;
    for d in drains {
        let r = &d.result;
        let each = |f: &dyn Fn(&IngestorFigures) -> String| {
            r.ingestors.iter().map(f).collect::<Vec<_>>().join(" / ")
        };
        let lock = r.write_lock.as_ref().map_or("| | | |".into(), |l| {
            format!(
                "{:.0} % | {:.0} % | {:.2} | {:.1} |",
                l.held * 100.0,
                l.contended * 100.0,
                l.mean_waiting,
                l.waiting_seconds
            )
        });
        writeln!(
            w,
            "| {} | {} | {} | {:.2} | {} | {} | {} | {} | {lock} {} | {:.1} | {:.1} |",
            d.broker,
            d.ingestors,
            d.try_,
            r.seconds_to_last_commit,
            thousands(r.orders_per_second as u64),
            each(&|i| thousands(i.stored)),
            each(&|i| i.duplicates.to_string()),
            each(&|i| format!("{:.1}", i.commit_seconds)),
            d.ingestor_cpu()
                .iter()
                .map(|s| format!("{s:.1}"))
                .collect::<Vec<_>>()
                .join(" / "),
            d.cpu_of("postgres"),
            d.broker_cpu(),
        )?;
    }
    Ok(())
}
