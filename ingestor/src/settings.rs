use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use orders::telemetry::LogFormat;

/// Consumes orders from a NATS Streaming channel and stores them in Postgres.
///
/// Every option can also be given as the environment variable named in brackets. The
/// `dead-letters` command lists the messages that were not valid orders and replays them.
#[derive(Debug, Clone, Parser)]
#[command(version)]
pub struct Settings {
    /// Postgres connection URL of a role that may create tables (migrations run at start).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,

    /// NATS URL of the NATS Streaming server.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,

    /// Cluster id of the NATS Streaming server.
    #[arg(long, env = "STAN_CLUSTER_ID", default_value = "test-cluster")]
    pub stan_cluster_id: String,

    /// Channel the orders are published on.
    #[arg(long, env = "STAN_CHANNEL", default_value = "orders")]
    pub stan_channel: String,

    /// Name of the durable queue group. Every ingestor with the same name shares the work, and a
    /// restarted one resumes where the group stopped.
    #[arg(long, env = "STAN_DURABLE", default_value = "ingestor")]
    pub stan_durable: String,

    /// Client id, unique among the broker's clients [default: ingestor-<host name>].
    #[arg(long, env = "STAN_CLIENT_ID")]
    pub stan_client_id: Option<String>,

    /// How many unacknowledged messages the broker may send at once.
    #[arg(long, env = "STAN_MAX_IN_FLIGHT", default_value_t = 1024, value_parser = clap::value_parser!(i32).range(1..=65_536))]
    pub stan_max_in_flight: i32,

    /// Seconds the broker waits for an ack before it redelivers: well above the slowest commit.
    #[arg(long, env = "STAN_ACK_WAIT_SECS", default_value_t = 30, value_parser = clap::value_parser!(i32).range(1..=3600))]
    pub stan_ack_wait_secs: i32,

    /// The most messages written in one transaction.
    #[arg(long, env = "BATCH_MAX", default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..))]
    pub batch_max: u16,

    /// Where `/metrics` (Prometheus) and `/healthz` are served. Port 0 picks a free port.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:9090")]
    pub metrics_addr: SocketAddr,

    /// Log format: `text` for people, `json` for machines.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Settings {
    pub fn client_id(&self) -> String {
        self.stan_client_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| std::process::id().to_string());
            // STAN client ids allow only letters, digits, '-' and '_'.
            let host: String = host
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

    pub fn ack_wait(&self) -> Duration {
        Duration::from_secs(self.stan_ack_wait_secs.unsigned_abs().into())
    }
}
