//! The command line: `--help` is the reference for every setting.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Publishes orders to a NATS Streaming channel, for trying and loading the ingestor.
#[derive(Debug, Parser)]
#[command(name = "publisher", version)]
pub struct Cli {
    /// URL of the NATS server of the streaming cluster.
    #[arg(
        long,
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        global = true
    )]
    pub nats_url: String,

    /// Cluster id of the NATS Streaming server.
    #[arg(
        long,
        env = "STAN_CLUSTER_ID",
        default_value = "test-cluster",
        global = true
    )]
    pub cluster_id: String,

    /// Channel to publish to.
    #[arg(long, env = "STAN_CHANNEL", default_value = "orders", global = true)]
    pub channel: String,

    /// Connections that publish in parallel. Each waits for the broker's ack of every message,
    /// so one connection manages a few thousand messages a second at most.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64), global = true)]
    pub connections: u16,

    /// The largest NATS payload the server accepts (its `max_payload`), in bytes. A message that
    /// would not fit, once wrapped in the streaming envelope, is refused before sending.
    #[arg(long, env = "NATS_MAX_PAYLOAD", default_value_t = 1024 * 1024, global = true)]
    pub max_payload: usize,

    /// No progress bar. It is hidden anyway when standard error is not a terminal.
    #[arg(long, short, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Publishes each file's bytes, unchanged, as one message.
    File {
        /// Files to publish, in this order.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Publishes COUNT generated valid orders with distinct ids.
    Valid {
        /// How many orders to publish.
        count: u64,
        /// Seed of the generator: the same seed gives the same ids and contents (times are
        /// relative to now).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Publishes COUNT malformed messages, cycling through every kind, and counts them by kind.
    Invalid {
        /// How many messages to publish.
        count: u64,
        /// Seed of the generator.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Publishes COUNT messages of which a random share is malformed.
    Mixed {
        /// How many messages to publish.
        count: u64,
        /// The share of malformed messages, from 0 to 1.
        #[arg(long, default_value_t = 0.1, value_parser = ratio)]
        invalid_ratio: f64,
        /// Seed of the generator.
        #[arg(long)]
        seed: Option<u64>,
    },
}

fn ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{s:?} is not a number from 0 to 1")),
    }
}
