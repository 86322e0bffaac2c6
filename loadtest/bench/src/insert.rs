//! The ingestor's ceiling: the rows of generated orders inserted straight into Postgres, one
//! transaction per batch, with the statements the ingestor uses and nothing else (no broker, no
//! validation in the timing, no write lock, no duplicate check, no `NOTIFY`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use orders::db::statements::{insert_orders, insert_parts};
use orders::db::Envelope;
use orders::ValidOrder;
use publisher::valid::Generator;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgConnection;

#[derive(clap::Args)]
pub struct Args {
    /// PostgreSQL URL of an empty database to insert into; its schema is created.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// How many orders to insert.
    #[arg(long)]
    orders: u64,
    /// Orders per transaction.
    #[arg(long, default_value_t = 500)]
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
    /// Time spent in the database: from each `BEGIN` to its `COMMIT`, summed.
    pub seconds: f64,
    pub orders_per_second: f64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&args.database_url)
        .await?;
    orders::MIGRATOR.run(&pool).await?;
    let generator = Generator::new(args.seed);
    let mut in_database = Duration::ZERO;
    let mut done = 0;
    while done < args.orders {
        let end = (done + args.batch).min(args.orders);
        let batch = (done..end)
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
            .collect::<anyhow::Result<Vec<_>>>()?;
        let rows: Vec<_> = batch.iter().map(|(e, o)| (e, o)).collect();
        let started = Instant::now();
        let mut tx = pool.begin().await?;
        insert_plain(&mut tx, &rows).await?;
        tx.commit().await?;
        in_database += started.elapsed();
        done = end;
    }
    let seconds = in_database.as_secs_f64();
    let result = InsertResult {
        orders: args.orders,
        batch: args.batch,
        seconds,
        orders_per_second: args.orders as f64 / seconds,
    };
    crate::emit(&result, args.out.as_deref())
}

/// The rows of orders that are not stored yet, with the same statements as the ingestor's
/// `store_batch` but nothing around them: no write lock, no duplicate or conflict check, no dead
/// letters, no `NOTIFY`.
async fn insert_plain(
    tx: &mut PgConnection,
    orders: &[(&Envelope, &ValidOrder)],
) -> sqlx::Result<usize> {
    let inserted = insert_orders(tx, orders).await?;
    let fresh: Vec<&ValidOrder> = orders.iter().map(|(_, o)| *o).collect();
    insert_parts(tx, &fresh, None).await?;
    Ok(inserted.len())
}
