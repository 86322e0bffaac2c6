//! Warm-up: the api started on a filled table, timed from its start to `/readyz` answering 200,
//! then its resident memory read from `/proc`, compared with the size of the orders' documents.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;

#[derive(clap::Args)]
pub struct Args {
    /// The api program to start.
    #[arg(long)]
    api_bin: PathBuf,
    /// PostgreSQL URL the api is given (its `DATABASE_URL`); also used to size the table.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// Address the api listens on.
    #[arg(long, default_value = "127.0.0.1:18098")]
    addr: String,
    /// How many times to start it.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where to write the result as JSON.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WarmupResult {
    pub orders: i64,
    /// The orders' JSON documents, summed, in bytes.
    pub documents_bytes: i64,
    /// Start to ready, each run, in seconds.
    pub seconds: Vec<f64>,
    /// Resident memory once ready, each run, in bytes.
    pub rss_bytes: Vec<u64>,
    /// Peak resident memory during warm-up, each run, in bytes.
    pub peak_rss_bytes: Vec<u64>,
}

const GIVE_UP: Duration = Duration::from_secs(300);

pub async fn run(args: Args) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&args.database_url)
        .await?;
    let (orders, documents_bytes): (i64, i64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(octet_length(document::text)), 0)::int8 FROM orders",
    )
    .fetch_one(&pool)
    .await?;
    pool.close().await;

    let http = reqwest::Client::new();
    let ready_url = format!("http://{}/readyz", args.addr);
    let mut result = WarmupResult {
        orders,
        documents_bytes,
        seconds: Vec::new(),
        rss_bytes: Vec::new(),
        peak_rss_bytes: Vec::new(),
    };
    for _ in 0..args.runs {
        let started = Instant::now();
        let mut api = Command::new(&args.api_bin)
            .env("DATABASE_URL", &args.database_url)
            .env("API_ADDR", &args.addr)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", args.api_bin.display()))?;
        let ready = loop {
            if let Some(status) = api.try_wait()? {
                anyhow::bail!("the api exited during warm-up: {status}");
            }
            if started.elapsed() > GIVE_UP {
                let _ = api.kill();
                anyhow::bail!("the api was not ready within {} s", GIVE_UP.as_secs());
            }
            if http
                .get(&ready_url)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                break started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let status = std::fs::read_to_string(format!("/proc/{}/status", api.id()))?;
        api.kill()?;
        api.wait()?;
        result.seconds.push(ready.as_secs_f64());
        result.rss_bytes.push(kib(&status, "VmRSS:")? * 1024);
        result.peak_rss_bytes.push(kib(&status, "VmHWM:")? * 1024);
    }
    crate::emit(&result, args.out.as_deref())
}

/// A `kB` field of `/proc/PID/status`.
fn kib(status: &str, field: &str) -> anyhow::Result<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc status"))
}
