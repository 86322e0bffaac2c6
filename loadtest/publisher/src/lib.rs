//! Publishes orders to a NATS Streaming channel or a JetStream stream, to try the ingestor by hand
//! and to load it: files as they are, generated valid orders, malformed messages of many kinds, or
//! a mix.
//!
//! ```text
//! publisher file model.json
//! publisher --channel orders --connections 8 valid 100000 --seed 1
//! publisher invalid 500
//! publisher mixed 10000 --invalid-ratio 0.1
//! publisher --rate 1000 --retry-for 120 --acked-log acked.txt valid 20000
//! publisher --broker jetstream --stream ORDERS --channel orders file model.json
//! ```
//!
//! A message the broker does not acknowledge is published again until it is, for up to
//! `--retry-for` seconds; with JetStream it carries its id (`Nats-Msg-Id`), so that the stream
//! stores it once. Every setting has an environment fallback; `publisher --help` lists them.

mod acked_log;
mod cli;
mod connection;
pub mod invalid;
mod limit;
mod pace;
pub mod publish;
mod transport;
pub mod valid;

use anyhow::Context;
use rand::Rng;

pub use cli::{Broker, Cli, Command};
use publish::{Message, Report, Target, Transport};
use valid::Generator;

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let transport = match cli.broker {
        Broker::Stan => Transport::Stan {
            cluster_id: cli.cluster_id,
        },
        Broker::Jetstream => Transport::JetStream {
            stream: cli.stream,
            replicas: cli.jetstream_replicas,
            create_stream: cli.create_stream,
        },
    };
    let mut target = Target {
        nats_url: cli.nats_url,
        transport,
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
    println!("{}", report.summary(&target));
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

/// Named after the order it was made from, too: its id tells the runs apart, so that JetStream does
/// not take a malformed message of another run for a duplicate.
fn invalid_message(generator: &Generator, index: u64, kind: &'static invalid::Kind) -> Message {
    let name = format!(
        "malformed message {index} ({}, from order {})",
        kind.name,
        generator.uid(index)
    );
    Message {
        kind: kind.name,
        id: name.clone(),
        name,
        bytes: kind.message(generator, index),
    }
}

/// Reads every file first, so that a missing or oversized one stops the run before anything is
/// sent. A file's id is its path: the same path given twice is the same message (JetStream stores
/// it once), two paths shown alike (not UTF-8) are refused.
fn publish_files(target: &Target, paths: &[std::path::PathBuf]) -> anyhow::Result<Report> {
    let mut seen = std::collections::HashMap::new();
    let files = paths
        .iter()
        .map(|path| {
            let name = path.display().to_string();
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {name}"))?;
            if seen
                .insert(name.clone(), path)
                .is_some_and(|other| other != path)
            {
                anyhow::bail!(
                    "two files are named {name} in the output, which cannot tell them apart"
                );
            }
            let message = Message {
                kind: "file",
                name: name.clone(),
                id: name,
                bytes,
            };
            limit::check(&message, target)?;
            Ok(message)
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .context("nothing was published")?;
    // In order, so that the channel holds them as given.
    let target = Target {
        connections: 1,
        ..target.clone()
    };
    publish::publish(&target, files.len() as u64, |i| files[i as usize].clone())
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
