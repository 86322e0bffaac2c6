//! The ingestor's ceilings: the rows of generated orders inserted straight into Postgres, one
//! transaction per batch, with nothing around the statements (no broker, no validation in the
//! timing, no write lock, no duplicate check, no `NOTIFY`). Two ways of sending the rows are
//! measured side by side: the `INSERT … SELECT FROM UNNEST(…)` statements, and `COPY … FROM STDIN
//! (FORMAT binary)`, one per table. Their batches alternate, each into tables of its own (the
//! default schema and `copy_ceiling`), so that both see the same moments of a shared machine.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use orders::db::statements::{copy_orders, copy_parts, insert_orders, insert_parts};
use orders::db::Envelope;
use orders::ValidOrder;
use publisher::valid::Generator;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool};

/// The schema the COPY variant's tables are created in.
const COPY_SCHEMA: &str = "copy_ceiling";

#[derive(clap::Args)]
pub struct Args {
    /// PostgreSQL URL of an empty database to insert into; its schema is created.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// How many orders to insert, with each of the two statements.
    #[arg(long)]
    orders: u64,
    /// Orders per transaction: the ingestor's `BATCH_MAX`, so that a drain is compared like for
    /// like.
    #[arg(long, default_value_t = 2000)]
    batch: u64,
    /// Seed of the order generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to write the result as JSON.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct InsertResult {
    pub orders: u64,
    pub batch: u64,
    /// With `INSERT … SELECT FROM UNNEST(…)`: time spent in the database, from each `BEGIN` to its
    /// `COMMIT`, summed.
    pub seconds: f64,
    pub orders_per_second: f64,
    /// The same rows with `COPY … FROM STDIN (FORMAT binary)`, one per table: time spent in the
    /// database, from each `BEGIN` to its `COMMIT`, summed. Absent from results written before it
    /// was measured.
    #[serde(default)]
    pub copy_seconds: Option<f64>,
    #[serde(default)]
    pub copy_orders_per_second: Option<f64>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let options: PgConnectOptions = args.database_url.parse()?;
    let unnest = connect(options.clone()).await?;
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {COPY_SCHEMA}"))
        .execute(&unnest)
        .await?;
    let copy = connect(options.options([("search_path", COPY_SCHEMA)])).await?;
    let generator = Generator::new(args.seed);
    let (mut unnest_time, mut copy_time) = (Duration::ZERO, Duration::ZERO);
    let mut done = 0;
    while done < args.orders {
        let end = (done + args.batch).min(args.orders);
        let batch = generate(&generator, done..end)?;
        let rows: Vec<_> = batch.iter().map(|(e, o)| (e, o)).collect();
        unnest_time += timed(&unnest, Method::Unnest, &rows).await?;
        copy_time += timed(&copy, Method::Copy, &rows).await?;
        done = end;
    }
    let result = InsertResult {
        orders: args.orders,
        batch: args.batch,
        seconds: unnest_time.as_secs_f64(),
        orders_per_second: args.orders as f64 / unnest_time.as_secs_f64(),
        copy_seconds: Some(copy_time.as_secs_f64()),
        copy_orders_per_second: Some(args.orders as f64 / copy_time.as_secs_f64()),
    };
    crate::emit(&result, args.out.as_deref())
}

/// One connection, with the schema of the orders created where its search path points.
async fn connect(options: PgConnectOptions) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    orders::MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Generated orders `range`, validated, with envelopes as the broker would give them.
fn generate(
    generator: &Generator,
    range: std::ops::Range<u64>,
) -> anyhow::Result<Vec<(Envelope, ValidOrder)>> {
    range
        .map(|i| {
            let order = orders::parse_order(&generator.message(i))
                .map_err(|r| anyhow::anyhow!("generated order {i} refused: {}", r.reason))?;
            let envelope = Envelope {
                channel: "ceiling".into(),
                sequence: i + 1,
                published_at: Utc::now(),
                payload: Bytes::new(),
            };
            Ok((envelope, order))
        })
        .collect()
}

/// How the rows are sent.
#[derive(Clone, Copy)]
enum Method {
    Unnest,
    Copy,
}

/// Inserts `orders` in a transaction of its own; the time from `BEGIN` to the end of `COMMIT`.
async fn timed(
    pool: &PgPool,
    method: Method,
    orders: &[(&Envelope, &ValidOrder)],
) -> sqlx::Result<Duration> {
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    match method {
        Method::Unnest => insert_unnest(&mut tx, orders).await?,
        Method::Copy => insert_copy(&mut tx, orders).await?,
    }
    tx.commit().await?;
    Ok(started.elapsed())
}

/// The rows with the statements the ingestor used before COPY: `INSERT … SELECT FROM UNNEST(…)`
/// for the orders (`ON CONFLICT DO NOTHING RETURNING`) and one statement for their parts.
async fn insert_unnest(
    tx: &mut PgConnection,
    orders: &[(&Envelope, &ValidOrder)],
) -> sqlx::Result<()> {
    insert_orders(tx, orders).await?;
    let fresh: Vec<&ValidOrder> = orders.iter().map(|(_, o)| *o).collect();
    insert_parts(tx, &fresh, None).await
}

/// The rows with one `COPY … FROM STDIN (FORMAT binary)` per table.
async fn insert_copy(
    tx: &mut PgConnection,
    orders: &[(&Envelope, &ValidOrder)],
) -> sqlx::Result<()> {
    copy_orders(tx, orders).await?;
    let fresh: Vec<&ValidOrder> = orders.iter().map(|(_, o)| *o).collect();
    copy_parts(tx, &fresh).await
}
