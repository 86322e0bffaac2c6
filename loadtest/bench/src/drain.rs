//! Times the ingestors draining a channel that was filled before they started: from the first
//! commit to the commit of the last order, and until the api serves that last order. With several
//! ingestors on one durable their counters add up; what each did, and how their commits queued on
//! the write lock, are reported beside.

mod ingestors;
mod write_lock;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use self::ingestors::stored_total;
pub use self::ingestors::IngestorFigures;
pub use self::write_lock::LockSamples;
use self::write_lock::Sampler;

#[derive(clap::Args)]
pub struct Args {
    /// The metrics endpoint of an ingestor, e.g. `http://127.0.0.1:9090/metrics`; once for each
    /// of several ingestors on one durable.
    #[arg(long = "metrics-url", required = true)]
    metrics_urls: Vec<String>,
    /// How many orders the channel holds.
    #[arg(long)]
    expect: u64,
    /// PostgreSQL URL of the orders database.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// Base URL of an api replica, e.g. `http://127.0.0.1:8080`, to time until it serves the last
    /// order. Without it the drain ends at the last commit.
    #[arg(long)]
    api: Option<String>,
    /// Samples `pg_locks` every this many milliseconds from the first commit to the last: who
    /// holds the write lock and how many wait for it.
    #[arg(long)]
    lock_sample_ms: Option<u64>,
    /// Gives up after this many seconds.
    #[arg(long, default_value_t = 1800)]
    timeout_secs: u64,
    /// Where to write the result as JSON.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DrainResult {
    pub orders: u64,
    /// From the first commit seen to the commit of the last order.
    pub seconds_to_last_commit: f64,
    pub orders_per_second: f64,
    /// From the first commit seen to the api serving the last order, if an api was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_to_visible: Option<f64>,
    /// The same rate measured by Postgres: orders over the span of the `stored_at` of the rows.
    pub orders_per_second_by_stored_at: f64,
    /// What each ingestor did, in the order of `--metrics-url`.
    #[serde(default)]
    pub ingestors: Vec<IngestorFigures>,
    /// The write lock sampled, with `--lock-sample-ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_lock: Option<LockSamples>,
}

const POLL: Duration = Duration::from_millis(10);

pub async fn run(args: Args) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&args.database_url)
        .await?;
    let (first, last_commit, write_lock) = watch_commits(&args, &http, &pool, deadline).await?;

    let (last_uid, count, span): (String, i64, f64) = sqlx::query_as(
        "SELECT (SELECT order_uid FROM orders ORDER BY seq DESC LIMIT 1),
                count(*),
                extract(epoch FROM max(stored_at) - min(stored_at))::float8
         FROM orders",
    )
    .fetch_one(&pool)
    .await?;
    let visible = match &args.api {
        Some(api) => Some(served(&http, api, &last_uid, deadline).await?),
        None => None,
    };
    let mut ingestors = Vec::with_capacity(args.metrics_urls.len());
    for url in &args.metrics_urls {
        ingestors.push(IngestorFigures::read(&http, url).await?);
    }
    let to_commit = (last_commit - first).as_secs_f64();
    let result = DrainResult {
        orders: args.expect,
        seconds_to_last_commit: to_commit,
        orders_per_second: args.expect as f64 / to_commit,
        seconds_to_visible: visible.map(|visible| (visible - first).as_secs_f64()),
        orders_per_second_by_stored_at: count as f64 / span,
        ingestors,
        write_lock,
    };
    crate::emit(&result, args.out.as_deref())
}

/// Polls the ingestors' counters until they add up to the orders expected: when the first commit
/// was seen, when the last was, and the write lock sampled in between if asked.
async fn watch_commits(
    args: &Args,
    http: &reqwest::Client,
    pool: &PgPool,
    deadline: Instant,
) -> anyhow::Result<(Instant, Instant, Option<LockSamples>)> {
    let mut first = None;
    let mut sampler = None;
    let last_commit = loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the ingestors did not store {} orders within {} s",
            args.expect,
            args.timeout_secs
        );
        let stored = stored_total(http, &args.metrics_urls).await;
        let now = Instant::now();
        if stored > 0 && first.is_none() {
            first = Some(now);
            sampler = args
                .lock_sample_ms
                .map(|ms| Sampler::start(pool.clone(), Duration::from_millis(ms)));
        }
        if stored >= args.expect {
            break now;
        }
        tokio::time::sleep(POLL).await;
    };
    let write_lock = match sampler {
        Some(sampler) => Some(sampler.finish().await?),
        None => None,
    };
    Ok((
        first.expect("set before the last commit"),
        last_commit,
        write_lock,
    ))
}

/// When the api at `api` first serves the order `uid`.
async fn served(
    http: &reqwest::Client,
    api: &str,
    uid: &str,
    deadline: Instant,
) -> anyhow::Result<Instant> {
    let url = format!("{}/api/v1/orders/{uid}", api.trim_end_matches('/'));
    loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the api did not serve the last order {uid} in time"
        );
        if http.get(&url).send().await.is_ok_and(|r| r.status() == 200) {
            return Ok(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
