//! Streams of orders for the tests that fault the system mid-stream: how many (`FAULTS_ORDERS`,
//! default 20 000), when the faults strike (`FAULTS_SEED`, printed, so that a run can be
//! repeated), several publishers at once, and the audit that ends each scenario.

use std::time::Duration;

use chrono::{DateTime, Utc};

use testkit::{Publisher, TestDb, Transport};

pub fn orders_to_send() -> usize {
    std::env::var("FAULTS_ORDERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000)
}

/// A small, seeded random number generator: the moments of the faults, repeatable.
pub struct Moments(u64);

impl Moments {
    pub fn from_env() -> Moments {
        let seed = std::env::var("FAULTS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("FAULTS_SEED={seed}");
        Moments(seed | 1)
    }

    /// A duration between `low` and `high` milliseconds.
    pub fn between(&mut self, low: u64, high: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(low + self.0 % (high - low))
    }
}

/// Publishes `orders` over four connections at once, as a busy upstream would.
pub async fn publish_in_parallel(
    transport: Transport,
    nats_url: &str,
    channel: &str,
    orders: Vec<Vec<u8>>,
) {
    let mut chunks: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 4];
    for (i, order) in orders.into_iter().enumerate() {
        chunks[i % 4].push(order);
    }
    let mut tasks = Vec::new();
    for chunk in chunks {
        let publisher = Publisher::connect(transport, nats_url, channel).await;
        tasks.push(tokio::spawn(
            async move { publisher.publish_all(chunk).await },
        ));
    }
    for task in tasks {
        task.await.expect("a publishing task");
    }
}

/// Every published order stored exactly once, and nothing else.
pub async fn audit(db: &TestDb, published: usize) {
    let (rows, distinct_sequences, distinct_uids): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT stan_sequence), count(DISTINCT order_uid) FROM orders",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows, published as i64, "orders stored");
    assert_eq!(distinct_sequences, rows, "no message stored twice");
    assert_eq!(distinct_uids, rows);
    assert_eq!(db.count("items").await, rows, "every order's items");
    assert_eq!(db.count("dead_letters").await, 0, "no spurious dead letter");
    assert_eq!(db.count("order_conflicts").await, 0, "no spurious conflict");
}

pub async fn wait_for_orders(db: &TestDb, at_least: i64, patience: Duration) {
    testkit::wait_until(&format!("{at_least} stored orders"), patience, || async {
        db.count("orders").await >= at_least
    })
    .await;
}

/// The longest time between two consecutive commits of orders (their `stored_at`, the start of
/// the transaction that stored them): the longest pause in ingestion.
pub async fn longest_pause(db: &TestDb) -> f64 {
    sqlx::query_scalar(
        "SELECT extract(epoch FROM max(gap))::float8 FROM ( \
             SELECT stored_at - lag(stored_at) OVER (ORDER BY stored_at) AS gap \
             FROM (SELECT DISTINCT stored_at FROM orders) commits) gaps",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

/// The longest pause in ingestion that ended between `from` and `until`, in seconds: the longest
/// time between two consecutive commits, the later one in that window.
pub async fn longest_pause_within(db: &TestDb, from: DateTime<Utc>, until: DateTime<Utc>) -> f64 {
    sqlx::query_scalar(
        "SELECT coalesce(extract(epoch FROM max(gap))::float8, 0) FROM ( \
             SELECT stored_at, stored_at - lag(stored_at) OVER (ORDER BY stored_at) AS gap \
             FROM (SELECT DISTINCT stored_at FROM orders) commits) gaps \
         WHERE stored_at > $1 AND stored_at <= $2",
    )
    .bind(from)
    .bind(until)
    .fetch_one(&db.pool)
    .await
    .unwrap()
}
