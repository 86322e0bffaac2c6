//! Times the ingestor draining a channel that was filled before it started: from its first commit
//! to the commit of the last order, and until the api serves that last order.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;

#[derive(clap::Args)]
pub struct Args {
    /// The ingestor's metrics endpoint, e.g. `http://127.0.0.1:9090/metrics`.
    #[arg(long)]
    metrics_url: String,
    /// How many orders the channel holds.
    #[arg(long)]
    expect: u64,
    /// PostgreSQL URL of the orders database.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// Base URL of an api replica, e.g. `http://127.0.0.1:8080`.
    #[arg(long)]
    api: String,
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
    /// From the first commit seen to the api serving the last order.
    pub seconds_to_visible: f64,
    /// The same rate measured by Postgres: orders over the span of the `stored_at` of the rows.
    pub orders_per_second_by_stored_at: f64,
}

const POLL: Duration = Duration::from_millis(10);

pub async fn run(args: Args) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let mut first = None;
    let last_commit = loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the ingestor did not store {} orders within {} s",
            args.expect,
            args.timeout_secs
        );
        let stored = stored_total(&http, &args.metrics_url).await.unwrap_or(0);
        let now = Instant::now();
        if stored > 0 && first.is_none() {
            first = Some(now);
        }
        if stored >= args.expect {
            break now;
        }
        tokio::time::sleep(POLL).await;
    };
    let first = first.expect("set before the last commit");

    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&args.database_url)
        .await?;
    let (last_uid, count, span): (String, i64, f64) = sqlx::query_as(
        "SELECT (SELECT order_uid FROM orders ORDER BY seq DESC LIMIT 1),
                count(*),
                extract(epoch FROM max(stored_at) - min(stored_at))::float8
         FROM orders",
    )
    .fetch_one(&pool)
    .await?;
    let url = format!(
        "{}/api/v1/orders/{last_uid}",
        args.api.trim_end_matches('/')
    );
    let visible = loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the api did not serve the last order {last_uid} within {} s",
            args.timeout_secs
        );
        if http.get(&url).send().await.is_ok_and(|r| r.status() == 200) {
            break Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let to_commit = (last_commit - first).as_secs_f64();
    let result = DrainResult {
        orders: args.expect,
        seconds_to_last_commit: to_commit,
        orders_per_second: args.expect as f64 / to_commit,
        seconds_to_visible: (visible - first).as_secs_f64(),
        orders_per_second_by_stored_at: count as f64 / span,
    };
    crate::emit(&result, args.out.as_deref())
}

/// `ingestor_messages_stored_total` from the ingestor's metrics.
pub async fn stored_total(http: &reqwest::Client, url: &str) -> anyhow::Result<u64> {
    let text = http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    text.lines()
        .find_map(|line| line.strip_prefix("ingestor_messages_stored_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .ok_or_else(|| anyhow::anyhow!("no ingestor_messages_stored_total in {url}"))
}
