//! The checks of a soak against the database and the replicas, once the publisher is done: what
//! the broker acknowledged against what was stored (`stored`) and dead-lettered (`dead`), what
//! every replica serves now (`replicas`), and every answer the readers got (`reads`). Writes the
//! verdict as JSON for `bench soak report`.

mod dead;
mod reads;
mod replicas;
mod stored;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

pub use self::reads::ReadFigures;
pub use self::replicas::ReplicaFigures;

#[derive(clap::Args)]
pub struct Args {
    /// PostgreSQL URL of the orders database, as a role that reads every table.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// Base URL of an api replica; repeat for each, in the order of their numbers.
    #[arg(long = "api", required = true)]
    apis: Vec<String>,
    /// Base URL of a NATS Streaming node's monitoring; repeat for each. The checks wait until the
    /// node that leads has handed every message of the channel to the ingestors and had it acked.
    #[arg(long = "stan-monitor")]
    stan_monitors: Vec<String>,
    /// The channel the ingestors consume.
    #[arg(long, default_value = "orders")]
    channel: String,
    /// The folder of the soak's files (acked log, reads, faults).
    #[arg(long)]
    dir: PathBuf,
    /// The publisher's seed: the hostile messages are made again from it.
    #[arg(long)]
    seed: u64,
    /// When the run started, in milliseconds since the Unix epoch.
    #[arg(long)]
    start_ms: i64,
    /// A 404 for an order committed longer ago than this before the request is stale.
    #[arg(long, default_value_t = 10)]
    freshness_secs: u64,
    /// How long to wait for every acknowledged message to be stored and every replica to be level
    /// with the table before checking.
    #[arg(long, default_value_t = 180)]
    wait_secs: u64,
    /// Where to write the verdict.
    #[arg(long)]
    out: PathBuf,
}

/// One check: what it holds, whether it held, and the figures that say so.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

impl Check {
    pub fn new(name: &str, passed: bool, detail: String) -> Check {
        Check {
            name: name.into(),
            passed,
            detail,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Verdict {
    pub checks: Vec<Check>,
    pub stored: stored::StoredFigures,
    pub dead: dead::DeadFigures,
    pub replicas: Vec<ReplicaFigures>,
    pub reads: ReadFigures,
    /// Seconds from the check's start until everything acknowledged was stored and every replica
    /// was level with the table; `None` if that never happened within `--wait-secs`.
    pub settled_secs: Option<f64>,
    /// Orders committed in each 10 s from the start of the run.
    pub stored_per_10s: Vec<u64>,
}

/// The acked log, read: the valid orders' ids, and the hostile messages as (index, kind).
pub struct Acked {
    pub valid: Vec<String>,
    pub hostile: Vec<(u64, String)>,
}

impl Acked {
    fn read(path: &std::path::Path) -> anyhow::Result<Acked> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut acked = Acked {
            valid: Vec::new(),
            hostile: Vec::new(),
        };
        for line in text.lines().filter(|l| !l.is_empty()) {
            match line.strip_prefix("malformed message ") {
                // "malformed message INDEX (KIND, from order UID)"
                Some(rest) => {
                    let (index, rest) = rest.split_once(" (").context("a malformed message")?;
                    let (kind, _) = rest.split_once(',').context("a malformed message")?;
                    acked.hostile.push((index.parse()?, kind.to_string()));
                }
                None => acked.valid.push(line.to_string()),
            }
        }
        Ok(acked)
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&args.database_url)
        .await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let acked = Acked::read(&args.dir.join("acked.txt"))?;
    let settled_secs = settle(&pool, &http, &args, &acked).await?;
    let stored = stored::read(&pool).await?;
    let mut checks = Vec::new();
    let stored_figures = stored::check(&pool, &acked, &stored, &mut checks).await?;
    let dead = dead::check(&pool, &acked, args.seed, &mut checks).await?;
    let mut replicas = Vec::new();
    for (n, api) in args.apis.iter().enumerate() {
        replicas.push(replicas::check(&pool, &http, n + 1, api, &mut checks).await?);
    }
    let freshness_ms = args.freshness_secs as i64 * 1000;
    let reads = reads::check(&args.dir, &stored, freshness_ms, &mut checks)?;
    let verdict = Verdict {
        checks,
        stored: stored_figures,
        dead,
        replicas,
        reads,
        settled_secs,
        stored_per_10s: stored::per_10s(&stored, args.start_ms),
    };
    for check in &verdict.checks {
        let mark = if check.passed { "ok  " } else { "FAIL" };
        println!("{mark} {}: {}", check.name, check.detail);
    }
    let json = serde_json::to_string_pretty(&verdict)?;
    std::fs::write(&args.out, json + "\n")?;
    Ok(())
}

/// Waits until the tables hold as many orders and dead letters as were acknowledged, the broker
/// has nothing left for the ingestors, and every replica's watermark has reached the table's
/// highest `seq`.
async fn settle(
    pool: &PgPool,
    http: &reqwest::Client,
    args: &Args,
    acked: &Acked,
) -> anyhow::Result<Option<f64>> {
    let started = Instant::now();
    let mut every = tokio::time::interval(Duration::from_millis(500));
    while started.elapsed() < Duration::from_secs(args.wait_secs) {
        every.tick().await;
        let (orders, dead, max_seq): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM dead_letters),
                    (SELECT coalesce(max(seq), 0) FROM orders)",
        )
        .fetch_one(pool)
        .await?;
        if orders < acked.valid.len() as i64
            || dead < acked.hostile.len() as i64
            || !drained(http, &args.stan_monitors, &args.channel).await
        {
            continue;
        }
        let mut level = true;
        for api in &args.apis {
            level &= watermark(http, api).await.is_some_and(|w| w >= max_seq);
        }
        if level {
            return Ok(Some(started.elapsed().as_secs_f64()));
        }
    }
    eprintln!(
        "not settled after {}s: checking what there is",
        args.wait_secs
    );
    Ok(None)
}

/// Whether the NATS Streaming node that leads, among `monitors`, has sent every message of
/// `channel` to its subscribers (its queue group's last sent is the channel's last sequence) and
/// has none waiting for an ack. True when no monitor is given.
async fn drained(http: &reqwest::Client, monitors: &[String], channel: &str) -> bool {
    let json = |url: String| async move {
        let response = http.get(url).send().await.ok()?;
        response.json::<serde_json::Value>().await.ok()
    };
    for monitor in monitors {
        let Some(server) = json(format!("{monitor}/streaming/serverz")).await else {
            continue;
        };
        if server["role"] != "Leader" {
            continue;
        }
        let url = format!("{monitor}/streaming/channelsz?channel={channel}&subs=1");
        let Some(c) = json(url).await else {
            return false;
        };
        let subs = c["subscriptions"].as_array().map_or(&[][..], Vec::as_slice);
        let last_sent = subs.iter().filter_map(|s| s["last_sent"].as_u64()).max();
        let pending: u64 = subs
            .iter()
            .filter_map(|s| s["pending_count"].as_u64())
            .sum();
        return pending == 0 && last_sent >= c["last_seq"].as_u64();
    }
    monitors.is_empty()
}

/// The replica's `api_orders_cache_watermark_seq`.
async fn watermark(http: &reqwest::Client, api: &str) -> Option<i64> {
    let text = http
        .get(format!("{api}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("api_orders_cache_watermark_seq "))?
        .trim()
        .parse()
        .ok()
}
