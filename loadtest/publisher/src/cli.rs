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

    /// How long to keep publishing a message the broker did not acknowledge, in seconds. A failed
    /// publish (no ack in time, connection lost, broker restarting) is sent again, the very same
    /// bytes, on a new connection with a new client id, after a pause that grows from 0.1 s to
    /// 2 s, until the broker acknowledges it. Past this bound the run stops and fails, saying how
    /// many messages were not acknowledged. 0: the first failed publish fails the run. The first
    /// connections are not retried: a broker unreachable at the start fails the run at once.
    /// A message whose ack was lost is in the channel twice; the ingestor stores it once.
    #[arg(long, env = "PUBLISH_RETRY_SECS", default_value_t = 60, global = true)]
    pub retry_for: u64,

    /// Messages per second over all connections; 0: as fast as the connections go. Message i is
    /// due i/RATE seconds after the start, so a pause (a slow ack, a broker restart) does not
    /// stretch the run: the messages that fell behind go out at once until the schedule is met.
    #[arg(long, env = "PUBLISH_RATE", default_value_t = 0, global = true)]
    pub rate: u32,

    /// Writes one line for each message the broker acknowledged, in the order of the acks: the
    /// order id of a valid order, the path of a file, the name of a malformed message. The lines
    /// are buffered; the file is complete when the publisher exits, whether it succeeded or not.
    #[arg(long, env = "PUBLISH_ACKED_LOG", global = true)]
    pub acked_log: Option<PathBuf>,

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
