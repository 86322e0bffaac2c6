//! The ingestor's configuration: command-line flags with environment fallbacks. `ingestor --help`
//! is the reference. Every value is checked here, before anything connects: a wrong one stops the
//! ingestor with one line that names the flag and its environment variable (see
//! [`service_kit::settings`], which also parses what every process takes).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use service_kit::jetstream::{stream_name, StreamSpec};
use service_kit::settings::{boolean, host_name, one_of, socket_address, whole_number};
use service_kit::settings::{DatabaseSettings, HttpLimitSettings, LogSettings, Setting};

use crate::broker::jetstream::JetStreamSettings;
use crate::broker::stan::StanSettings;
use crate::broker::{Archive, Transport};

/// Consumes orders from a NATS Streaming channel, or a JetStream stream, and stores them in Postgres.
///
/// Every option can also be given as the environment variable named in brackets; a wrong value
/// stops the ingestor at start. The broker's STAN_CHANNEL, STAN_DURABLE, STAN_CLIENT_ID,
/// STAN_MAX_IN_FLIGHT and STAN_ACK_WAIT_SECS, which JetStream takes too, can also be given as
/// BROKER_CHANNEL, BROKER_DURABLE, BROKER_CLIENT_ID, BROKER_MAX_IN_FLIGHT and BROKER_ACK_WAIT_SECS. Log verbosity follows `RUST_LOG` (for example
/// `RUST_LOG=ingestor=debug,info`); the default is `info`. The `dead-letters` command lists the
/// messages that were not valid orders and replays them. The database role must be allowed to
/// create tables: migrations run at start.
#[derive(Debug, Clone, Parser)]
#[command(version)]
pub struct Settings {
    #[command(flatten)]
    pub database: DatabaseSettings,

    /// The broker: `stan` (NATS Streaming) or `jetstream` (the JetStream of nats-server, its
    /// successor). With `jetstream`, the NATS URL names the nats-server(s), the channel is the
    /// subject the stream captures, the durable names the pull consumer, the in-flight and ack-wait
    /// settings are the consumer's, and the cluster id and client id are not used.
    #[arg(
        long,
        env = "BROKER",
        value_name = "BROKER",
        default_value = "stan",
        value_parser = one_of::<Broker>()
    )]
    pub broker: Broker,

    /// NATS URL of the broker's servers: `nats://HOST:PORT` (`tls://` for TLS), or several
    /// separated by commas (every node of a cluster). A user and password in the URL are not
    /// supported.
    #[arg(
        long,
        env = "NATS_URL",
        value_name = "URL",
        default_value = "nats://127.0.0.1:4222",
        value_parser = Setting::new(nats_urls)
    )]
    pub nats_url: String,

    /// Cluster id of the NATS Streaming server: a NATS subject without wildcards.
    #[arg(
        long,
        env = "STAN_CLUSTER_ID",
        value_name = "ID",
        default_value = "test-cluster",
        value_parser = Setting::new(subject)
    )]
    pub stan_cluster_id: String,

    /// Channel the orders are published on: a NATS subject without wildcards, e.g. `orders`.
    #[arg(
        long,
        env = "STAN_CHANNEL",
        value_name = "CHANNEL",
        default_value = "orders",
        value_parser = Setting::new(subject)
    )]
    pub stan_channel: String,

    /// Name of the durable queue group, or of the JetStream durable consumer (no spaces, none of
    /// `:` `.` `*` `>` `/` `\`). Every ingestor with the same name shares the work, and a restarted
    /// one resumes where the group stopped.
    #[arg(
        long,
        env = "STAN_DURABLE",
        value_name = "NAME",
        default_value = "ingestor",
        value_parser = Setting::new(durable_name)
    )]
    pub stan_durable: String,

    /// Client id, unique among the broker's clients: letters, digits, `-` and `_`
    /// [default: ingestor-<host name>].
    #[arg(
        long,
        env = "STAN_CLIENT_ID",
        value_name = "ID",
        value_parser = Setting::new(client_id)
    )]
    pub stan_client_id: Option<String>,

    /// How many unacknowledged messages the broker may send at once (with JetStream, the
    /// consumer's max ack pending): 1 to 65536.
    #[arg(
        long,
        env = "STAN_MAX_IN_FLIGHT",
        value_name = "N",
        default_value_t = 8192,
        value_parser = whole_number::<i32>(1..=65_536)
    )]
    pub stan_max_in_flight: i32,

    /// Seconds the broker waits for an ack before it redelivers, 1 to 3600: well above the slowest
    /// commit.
    #[arg(
        long,
        env = "STAN_ACK_WAIT_SECS",
        value_name = "SECS",
        default_value_t = 30,
        value_parser = whole_number::<i32>(1..=3600)
    )]
    pub stan_ack_wait_secs: i32,

    /// Seconds, 1 to 86400, a message may stay missing, after the ingestor consumed the ones that
    /// follow it, before it is read from the broker by its sequence (see `docs/ARCHITECTURE.md`).
    /// Without it: three times the ack wait, time for the broker to redeliver it twice.
    #[arg(
        long,
        env = "REFETCH_AFTER_SECS",
        value_name = "SECS",
        value_parser = whole_number::<u32>(1..=86_400)
    )]
    pub refetch_after_secs: Option<u32>,

    /// JetStream: the stream that captures the channel's subject: letters, digits, `-` and `_`.
    #[arg(
        long,
        env = "JETSTREAM_STREAM",
        value_name = "NAME",
        default_value = "ORDERS",
        value_parser = Setting::new(stream_name)
    )]
    pub jetstream_stream: String,

    /// JetStream: whether the stream is created when it is missing: `true` or `false`. When
    /// `false`, the ingestor waits, retrying, until an operator has created it.
    #[arg(
        long,
        env = "JETSTREAM_CREATE_STREAM",
        value_name = "BOOL",
        default_value = "true",
        action = clap::ArgAction::Set,
        value_parser = boolean()
    )]
    pub jetstream_create_stream: bool,

    /// JetStream: how many servers of a cluster keep each message of a stream the ingestor
    /// creates: 1 to 5 (1 on a single server). An existing stream keeps its own.
    #[arg(
        long,
        env = "JETSTREAM_REPLICAS",
        value_name = "N",
        default_value_t = 1,
        value_parser = whole_number::<u8>(1..=5)
    )]
    pub jetstream_replicas: u8,

    /// The most messages written in one transaction: 1 to 65535.
    #[arg(
        long,
        env = "BATCH_MAX",
        value_name = "N",
        default_value_t = 2000,
        value_parser = whole_number::<u16>(1..=65_535)
    )]
    pub batch_max: u16,

    /// Milliseconds, from 1 to 3600000, that the ingestor is given after a shutdown signal to commit
    /// and ack the messages in hand. What is not committed by then is left unacked, and the broker
    /// redelivers it; closing the broker session then takes at most a few seconds more.
    #[arg(
        long,
        env = "SHUTDOWN_GRACE_MS",
        value_name = "MS",
        default_value_t = 10_000,
        value_parser = whole_number::<u64>(1..=3_600_000)
    )]
    pub shutdown_grace_ms: u64,

    /// IP address and port where `/metrics` (Prometheus) and `/healthz` are served. Port 0 picks a
    /// free port.
    #[arg(
        long,
        env = "METRICS_ADDR",
        value_name = "ADDR",
        default_value = "0.0.0.0:9090",
        value_parser = socket_address("0.0.0.0:9090")
    )]
    pub metrics_addr: SocketAddr,

    #[command(flatten)]
    pub log: LogSettings,

    /// The metrics listener's limits against clients that hold connections.
    #[command(flatten)]
    pub http: HttpLimitSettings,
}

/// The brokers the ingestor consumes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Broker {
    /// NATS Streaming.
    Stan,
    /// The JetStream of nats-server.
    #[value(name = "jetstream")]
    JetStream,
}

impl Settings {
    pub fn client_id(&self) -> String {
        self.stan_client_id.clone().unwrap_or_else(|| {
            // STAN client ids allow only letters, digits, '-' and '_'.
            let host: String = host_name()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            format!("ingestor-{host}")
        })
    }

    /// The broker session these settings describe.
    pub fn transport(&self) -> Box<dyn Transport> {
        match self.broker {
            Broker::Stan => Box::new(self.stan_settings()),
            Broker::JetStream => Box::new(self.jetstream_settings()),
        }
    }

    fn stan_settings(&self) -> StanSettings {
        StanSettings {
            nats_url: self.nats_url.clone(),
            cluster_id: self.stan_cluster_id.clone(),
            client_id: self.client_id(),
            channel: self.stan_channel.clone(),
            durable: self.stan_durable.clone(),
            max_in_flight: self.stan_max_in_flight,
            ack_wait_secs: self.stan_ack_wait_secs,
        }
    }

    fn jetstream_settings(&self) -> JetStreamSettings {
        JetStreamSettings {
            nats_url: self.nats_url.clone(),
            connection_name: self.client_id(),
            stream: StreamSpec {
                name: self.jetstream_stream.clone(),
                subject: self.stan_channel.clone(),
                replicas: self.jetstream_replicas.into(),
            },
            create_stream: self.jetstream_create_stream,
            durable: self.stan_durable.clone(),
            max_ack_pending: self.stan_max_in_flight.into(),
            ack_wait: self.ack_wait(),
        }
    }

    /// Where the gap sweeper reads messages by their sequence: the same broker.
    pub fn archive(&self) -> std::io::Result<Box<dyn Archive>> {
        Ok(match self.broker {
            Broker::Stan => Box::new(self.stan_settings().archive()?),
            Broker::JetStream => Box::new(self.jetstream_settings().archive()),
        })
    }

    /// How long a message may stay missing before the gap sweeper reads it by its sequence.
    pub fn refetch_after(&self) -> Duration {
        self.refetch_after_secs
            .map_or(self.ack_wait() * 3, |secs| Duration::from_secs(secs.into()))
    }

    pub fn ack_wait(&self) -> Duration {
        Duration::from_secs(self.stan_ack_wait_secs.unsigned_abs().into())
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

/// What the `nats` client reads: `[nats:// | tls://]HOST[:PORT]`, several separated by commas. It
/// would silently use port 4222 for a port it cannot read, and take `user:password@host` for a host
/// named `user`.
fn nats_urls(text: &str) -> Result<String, String> {
    for url in text.split(',') {
        let (scheme, rest) = url.split_once("://").unwrap_or(("nats", url));
        if scheme != "nats" && scheme != "tls" {
            return Err("must start with nats:// or tls://".into());
        }
        if rest.contains('@') {
            return Err("must not hold a user or password: the client does not read them".into());
        }
        if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain spaces or control characters".into());
        }
        let (host, port) = rest.split_once(':').unwrap_or((rest, "4222"));
        if host.is_empty() {
            return Err("must name a host, e.g. nats://127.0.0.1:4222".into());
        }
        if !matches!(port.parse::<u16>(), Ok(1..)) || host.contains(['/', '?']) {
            return Err(
                "must be HOST:PORT with a port from 1 to 65535 and nothing after it".into(),
            );
        }
    }
    Ok(text.to_string())
}

/// A NATS subject that the broker takes as a channel name: no wildcards, no `/`, dots only between
/// tokens.
fn subject(text: &str) -> Result<String, String> {
    one_word(text)?;
    if text.contains(['*', '>', '/']) {
        Err("must not contain *, > or /".into())
    } else if text.starts_with('.') || text.ends_with('.') || text.contains("..") {
        Err("must not start or end with a dot, nor hold two dots in a row".into())
    } else {
        Ok(text.to_string())
    }
}

/// A durable name: NATS Streaming refuses `:` in that of a queue group, NATS spaces in a queue
/// name, and JetStream `.`, `*`, `>` and path separators in a consumer's name.
fn durable_name(text: &str) -> Result<String, String> {
    one_word(text)?;
    if text.contains([':', '.', '*', '>', '/', '\\']) {
        Err("must not contain any of : . * > / \\ (a broker refuses them)".into())
    } else {
        Ok(text.to_string())
    }
}

/// What every name given to the broker is: not empty, without spaces or control characters.
fn one_word(text: &str) -> Result<(), String> {
    if text.is_empty() {
        Err("must not be empty".into())
    } else if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err("must not contain spaces or control characters".into())
    } else {
        Ok(())
    }
}

/// A client id as the broker accepts it: the characters of a stream name.
fn client_id(text: &str) -> Result<String, String> {
    if text.is_empty() {
        Err("must not be empty; leave it unset for the default".into())
    } else {
        stream_name(text)
    }
}
