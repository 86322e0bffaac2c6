//! Publishes orders to a NATS Streaming channel, to try the ingestor by hand and to load it:
//! files as they are, generated valid orders, malformed messages of many kinds, or a mix.
//!
//! ```text
//! publisher file model.json
//! publisher --channel orders --connections 8 valid 100000 --seed 1
//! publisher invalid 500
//! publisher mixed 10000 --invalid-ratio 0.1
//! publisher --rate 1000 --retry-for 120 --acked-log acked.txt valid 20000
//! ```
//!
//! A message the broker does not acknowledge is published again until it is, for up to
//! `--retry-for` seconds. Every setting has an environment fallback; `publisher --help` lists them.

mod acked_log;
mod cli;
mod connection;
pub mod invalid;
mod pace;
pub mod publish;
pub mod valid;

use anyhow::Context;
use rand::Rng;

pub use cli::{Cli, Command};
use publish::{Message, Report, Target};
use valid::Generator;

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let mut target = Target {
        nats_url: cli.nats_url,
        cluster_id: cli.cluster_id,
        channel: cli.channel,
        connections: cli.connections,
        max_payload: cli.max_payload,
        quiet: cli.quiet,
        echo: false,
        retry_for: std::time::Duration::from_secs(cli.retry_for),
        rate: std::num::NonZeroU32::new(cli.rate),
        acked_log: cli.acked_log,
    };
    let report = match cli.command {
        Command::File { paths } => {
            target.echo = true;
            publish_files(&target, &paths)?
        }
        Command::Valid { count, seed } => {
            let generator = generator(seed);
            publish::publish(&target, count, |i| valid_message(&generator, i))?
        }
        Command::Invalid { count, seed } => {
            let generator = generator(seed);
            publish::publish(&target, count, |i| {
                invalid_message(&generator, i, invalid::cycled(i))
            })?
        }
        Command::Mixed {
            count,
            invalid_ratio,
            seed,
        } => {
            let generator = generator(seed);
            publish::publish(&target, count, |i| {
                let rng = &mut generator.rng(i ^ u64::MAX);
                if rng.gen_bool(invalid_ratio) {
                    let kind = &invalid::KINDS[rng.gen_range(0..invalid::KINDS.len())];
                    invalid_message(&generator, i, kind)
                } else {
                    valid_message(&generator, i)
                }
            })?
        }
    };
    print_by_kind(&report);
    println!("{}", report.summary(&target.channel));
    Ok(())
}

fn generator(seed: Option<u64>) -> Generator {
    Generator::new(seed.unwrap_or_else(rand::random))
}

fn valid_message(generator: &Generator, index: u64) -> Message {
    let uid = generator.uid(index);
    Message {
        kind: "valid",
        name: format!("order {uid}"),
        id: uid,
        bytes: generator.message(index),
    }
}

fn invalid_message(generator: &Generator, index: u64, kind: &'static invalid::Kind) -> Message {
    let name = format!("malformed message {index} ({})", kind.name);
    Message {
        kind: kind.name,
        id: name.clone(),
        name,
        bytes: kind.message(generator, index),
    }
}

/// Reads every file first, so that a missing or oversized one stops the run before anything is
/// sent.
fn publish_files(target: &Target, paths: &[std::path::PathBuf]) -> anyhow::Result<Report> {
    let files = paths
        .iter()
        .map(|path| {
            let name = path.display().to_string();
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {name}"))?;
            publish::check_size(&name, bytes.len(), target)?;
            Ok((name, bytes))
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .context("nothing was published")?;
    // In order, so that the channel holds them as given.
    let target = Target {
        connections: 1,
        ..target.clone()
    };
    publish::publish(&target, files.len() as u64, |i| {
        let (name, bytes) = &files[i as usize];
        Message {
            kind: "file",
            name: name.clone(),
            id: name.clone(),
            bytes: bytes.clone(),
        }
    })
}

/// The count of each kind, when some messages are malformed.
fn print_by_kind(report: &Report) {
    if report
        .by_kind
        .keys()
        .all(|k| matches!(*k, "valid" | "file"))
    {
        return;
    }
    let rules: std::collections::HashMap<&str, &str> = invalid::KINDS
        .iter()
        .map(|k| (k.name, k.rule.code()))
        .collect();
    for (kind, count) in &report.by_kind {
        match rules.get(kind) {
            Some(rule) => println!("{count:>10}  {kind} (refused as {rule})"),
            None => println!("{count:>10}  {kind}"),
        }
    }
}
