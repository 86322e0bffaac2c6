//! Freshness: how long after an order is published every api replica serves it, and where that
//! time goes.
//!
//! Orders are published at a steady rate on one connection that does not wait for each ack before
//! the next publish (`pipelined.rs`); every publish must be acknowledged by the end. One order
//! in `--sample-every` is followed: from the moment its publish starts, each replica is polled for
//! it every millisecond until it answers 200 (`poll.rs`: polls that do not wait for each other).
//! With the replicas' debug logs and the rows, each followed order's time is split into stages
//! (`stages.rs`).

mod pipelined;
mod poll;
mod stages;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use publisher::valid::Generator;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use self::pipelined::Publisher;
use self::poll::Replica;
pub use self::stages::Stage;
use self::stages::{ms_between, ReplicaLog, ReplicaStages, Timeline};
use crate::stats::Spread;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    #[arg(long, env = "STAN_CLUSTER_ID", default_value = "test-cluster")]
    cluster_id: String,
    #[arg(long, env = "STAN_CHANNEL", default_value = "orders")]
    channel: String,
    /// Base URL of an api replica; repeat for each replica.
    #[arg(long = "api", required = true)]
    apis: Vec<String>,
    /// Orders published per second.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// How long to publish, in seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Follow one order in this many.
    #[arg(long, default_value_t = 20)]
    sample_every: u64,
    /// PostgreSQL URL of the orders database: with it, the time from the broker's receipt of each
    /// published order to the start of the transaction that stored it is read from the rows.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// The JSON log of each replica, in the order of `--api`, written with `RUST_LOG` holding
    /// `api::sync=debug`: with them (and `--database-url`), each followed order's time is split
    /// into stages.
    #[arg(long = "replica-log")]
    replica_logs: Vec<PathBuf>,
    /// Seed of the order generator (ids must not be in the table already).
    #[arg(long, default_value_t = 2)]
    seed: u64,
    /// Where to write the result as JSON.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FreshnessResult {
    pub target_rate: u64,
    pub published: u64,
    pub achieved_rate: f64,
    pub replicas: usize,
    /// Publish to visible in every replica (the slowest replica of each order).
    pub every_replica: Spread,
    /// Publish to visible, each replica on its own.
    pub per_replica: Vec<Spread>,
    /// Followed orders that some replica did not serve within the bound.
    pub never_seen: usize,
    /// Every published order: from the broker's timestamp (`published_at`) to the start of the
    /// transaction that stored it (`stored_at`).
    pub broker_to_transaction: Option<Spread>,
    /// How the poller asked: every `poll_ms`, or every `poll_resolution` of the time since the
    /// publish if that is longer, without waiting for the answers before, over `poll_connections`
    /// connections to each replica.
    pub poll_ms: f64,
    #[serde(default)]
    pub poll_resolution: f64,
    pub poll_connections: usize,
    /// Polls not sent because every connection to the replica was busy.
    pub polls_skipped: u64,
    /// Each stage over every followed order (with `--database-url`; the replicas' stages with
    /// `--replica-log` too).
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// The followed orders that took longest to reach every replica, slowest first, stage by stage.
    #[serde(default)]
    pub slowest: Vec<Timeline>,
    /// Publish to visible in every replica of the first followed orders, in ms: the start of the
    /// stream, after a quiet spell, where an order would wait on whatever went idle.
    #[serde(default)]
    pub first_ms: Vec<f64>,
}

/// How many of the slowest followed orders the result shows stage by stage.
const SLOWEST: usize = 12;
/// The shortest sleep of the publisher between publishes.
const PACE: Duration = Duration::from_millis(1);
/// How many of the first followed orders the result shows.
const FIRST: usize = 5;

struct Sample {
    uid: String,
    published: Instant,
    published_wall: DateTime<Utc>,
}

// Past 60 lines: the publishers, the followers and the collection of their samples share one
// clock and one channel; read together, the timing is easier to trust.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let total = args.rate * args.seconds;
    let generator = Arc::new(Generator::new(args.seed));
    let (samples_tx, mut samples_rx) = mpsc::unbounded_channel::<Sample>();

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(poll::CONNECTIONS)
        .build()?;
    let replicas: Vec<Arc<Replica>> = args
        .apis
        .iter()
        .map(|a| Arc::new(Replica::new(a)))
        .collect();
    poll::warm(&http, &replicas).await;

    let publisher = Publisher::connect(
        &args.nats_url,
        &args.cluster_id,
        &format!("bench-freshness-{}", std::process::id()),
    )?;
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let start = Instant::now();
    let publishing = {
        let (channel, generator) = (args.channel.clone(), generator.clone());
        let sample_every = args.sample_every;
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            for i in 0..total {
                let message = generator.message(i);
                // Sleeping a millisecond at least, and then sending whatever is due: a wake-up
                // (two context switches) for every message cost the machine more CPU than the
                // publishes at 5 000 a second.
                let due = start + interval * u32::try_from(i)?;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait.max(PACE));
                }
                let published = Instant::now();
                let published_wall = Utc::now();
                publisher
                    .publish(&channel, i.to_string(), message)
                    .context("publishing an order")?;
                if i % sample_every == 0 {
                    let uid = generator.uid(i);
                    let _ = samples_tx.send(Sample {
                        uid,
                        published,
                        published_wall,
                    });
                }
            }
            drop(samples_tx);
            publisher.finish()
        })
    };

    let mut samples = Vec::new();
    let mut followers = tokio::task::JoinSet::new();
    let mut followed = 0;
    while let Some(sample) = samples_rx.recv().await {
        for (index, replica) in replicas.iter().enumerate() {
            let (http, replica, uid) = (http.clone(), replica.clone(), sample.uid.clone());
            let (published, followed) = (sample.published, followed);
            followers.spawn(async move {
                let served = poll::follow(http, replica, uid, published).await;
                (followed, index, served.map(|at| at - published))
            });
        }
        samples.push(sample);
        followed += 1;
    }
    publishing.await??;
    let elapsed = start.elapsed();

    let mut seen: Vec<Vec<Option<Duration>>> = vec![vec![None; replicas.len()]; followed];
    while let Some(done) = followers.join_next().await {
        let (index, replica, latency) = done?;
        seen[index][replica] = latency;
    }
    let mut per_replica: Vec<Vec<Duration>> = vec![Vec::new(); replicas.len()];
    let mut every = Vec::new();
    let mut never_seen = 0;
    for latencies in seen.iter().cloned() {
        if latencies.iter().any(Option::is_none) {
            never_seen += 1;
            continue;
        }
        let latencies: Vec<Duration> = latencies.into_iter().flatten().collect();
        every.push(*latencies.iter().max().expect("at least one replica"));
        for (replica, latency) in latencies.into_iter().enumerate() {
            per_replica[replica].push(latency);
        }
    }
    let first_ms = every
        .iter()
        .take(FIRST)
        .map(|d| d.as_secs_f64() * 1e3)
        .collect();
    let (stages, slowest) = match &args.database_url {
        Some(url) => timelines(url, &args.replica_logs, &samples, &seen).await?,
        None => (Vec::new(), Vec::new()),
    };
    let result = FreshnessResult {
        target_rate: args.rate,
        published: total,
        achieved_rate: total as f64 / elapsed.as_secs_f64(),
        replicas: replicas.len(),
        every_replica: Spread::of(every),
        per_replica: per_replica.into_iter().map(Spread::of).collect(),
        never_seen,
        broker_to_transaction: match &args.database_url {
            Some(url) => Some(broker_to_transaction(url, &generator).await?),
            None => None,
        },
        poll_ms: poll::POLL.as_secs_f64() * 1e3,
        poll_resolution: poll::RESOLUTION,
        poll_connections: poll::CONNECTIONS,
        polls_skipped: replicas.iter().map(|r| r.skipped()).sum(),
        stages,
        slowest,
        first_ms,
    };
    crate::emit(&result, args.out.as_deref())
}

/// Each followed order's stages, and their spreads; the slowest orders first.
async fn timelines(
    url: &str,
    logs: &[PathBuf],
    samples: &[Sample],
    seen: &[Vec<Option<Duration>>],
) -> anyhow::Result<(Vec<Stage>, Vec<Timeline>)> {
    let logs = logs
        .iter()
        .map(|path| ReplicaLog::read(path).with_context(|| format!("reading {}", path.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let uids: Vec<String> = samples.iter().map(|s| s.uid.clone()).collect();
    let rows = stages::rows(url, &uids).await?;
    let mut timelines: Vec<Timeline> = samples
        .iter()
        .zip(seen)
        .filter_map(|(sample, served)| {
            let row = rows.get(&sample.uid)?;
            let since = |t: DateTime<Utc>| ms_between(sample.published_wall, t);
            let replicas = served
                .iter()
                .enumerate()
                .map(|(replica, served)| {
                    let (notified, applied) = logs
                        .get(replica)
                        .map_or((None, None), |log| log.stages_of(row.seq));
                    ReplicaStages {
                        notified_ms: notified.map(since),
                        applied_ms: applied.map(since),
                        served_ms: served.map(|d| d.as_secs_f64() * 1e3),
                    }
                })
                .collect();
            Some(Timeline {
                order_uid: sample.uid.clone(),
                seq: row.seq,
                broker_ms: since(row.published_at),
                transaction_ms: since(row.stored_at),
                commit_ms: row.committed_at.map(since),
                replicas,
            })
        })
        .collect();
    let spreads = stages::spreads(&timelines);
    timelines.sort_by(|a, b| {
        let key = |t: &Timeline| t.every_replica_ms().unwrap_or(f64::INFINITY);
        key(b).total_cmp(&key(a))
    });
    timelines.truncate(SLOWEST);
    Ok((spreads, timelines))
}

/// `stored_at - published_at` of the run's orders (their ids share the generator's prefix).
async fn broker_to_transaction(url: &str, generator: &Generator) -> anyhow::Result<Spread> {
    let first = generator.uid(0);
    let prefix = &first[..first.len() - 8];
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await?;
    let micros: Vec<i64> = sqlx::query_scalar(
        "SELECT (extract(epoch FROM stored_at - published_at) * 1e6)::int8
         FROM orders WHERE starts_with(order_uid, $1)",
    )
    .bind(prefix)
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    Ok(Spread::of(
        micros
            .into_iter()
            .map(|us| Duration::from_micros(us.max(0) as u64))
            .collect(),
    ))
}
