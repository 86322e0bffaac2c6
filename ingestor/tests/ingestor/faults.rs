//! Fault injection while orders stream in: the ingestor killed again and again, Postgres and the
//! broker restarted, several api replicas. Each scenario ends with the same audit: every published
//! order stored exactly once, no spurious dead letter or conflict, and every api serving them all.
//!
//! The scale is set by `FAULTS_ORDERS` (default 20 000) and the random moments by `FAULTS_SEED`
//! (printed, so that a run can be repeated).

use std::time::{Duration, Instant};

use testkit::{PrivateBroker, PrivatePostgres, Publisher, TestDb, Transport};

use crate::helpers::{distinct_orders, Api, TestBed, PATIENCE};

fn orders_to_send() -> usize {
    std::env::var("FAULTS_ORDERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000)
}

/// A small, seeded random number generator: the moments of the faults, repeatable.
struct Moments(u64);

impl Moments {
    fn from_env() -> Moments {
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
    fn between(&mut self, low: u64, high: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(low + self.0 % (high - low))
    }
}

/// Publishes `orders` over four connections at once, as a busy upstream would.
async fn publish_in_parallel(
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
async fn audit(db: &TestDb, published: usize) {
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

async fn wait_for_orders(db: &TestDb, at_least: i64, patience: Duration) {
    testkit::wait_until(&format!("{at_least} stored orders"), patience, || async {
        db.count("orders").await >= at_least
    })
    .await;
}

async fn an_ingestor_killed_again_and_again_mid_stream_stores_every_order_exactly_once(
    transport: Transport,
) {
    let total = orders_to_send();
    let mut moments = Moments::from_env();
    let bed = TestBed::new(transport).await;
    let orders = distinct_orders("kill", total);
    let publishing = {
        let (transport, url, channel) = (bed.transport, bed.nats_url.clone(), bed.channel.clone());
        tokio::spawn(async move { publish_in_parallel(transport, &url, &channel, orders).await })
    };

    let started = Instant::now();
    let mut kills = 0;
    let mut child = bed.spawn_ingestor_process("killed-often");
    while kills < 10 && bed.db.count("orders").await < total as i64 {
        tokio::time::sleep(moments.between(200, 1200)).await;
        child.kill();
        kills += 1;
        child = bed.spawn_ingestor_process("killed-often");
    }
    publishing.await.unwrap();
    wait_for_orders(&bed.db, total as i64, PATIENCE * 5).await;
    audit(&bed.db, total).await;
    eprintln!(
        "sent {total} orders, killed the ingestor {kills} times, stored {total} once each in {:?}",
        started.elapsed()
    );
    assert!(
        kills >= 3,
        "the stream ended before the kills could prove anything"
    );
}

async fn postgres_restarted_mid_stream_loses_nothing(transport: Transport) {
    let total = orders_to_send() / 4;
    let pg = tokio::task::spawn_blocking(PrivatePostgres::start)
        .await
        .unwrap();
    let bed = TestBed::with_db(transport, TestDb::on_server(&pg.url()).await).await;
    let ingestor = bed.start_ingestor("pg-restart").await;
    let orders = distinct_orders("pg", total);
    let publishing = {
        let (transport, url, channel) = (bed.transport, bed.nats_url.clone(), bed.channel.clone());
        tokio::spawn(async move { publish_in_parallel(transport, &url, &channel, orders).await })
    };

    wait_for_orders(&bed.db, (total / 10) as i64, PATIENCE).await;
    bed.db.pool.close().await;
    let pg = tokio::task::spawn_blocking(move || {
        pg.stop();
        pg.resume();
        pg
    })
    .await
    .unwrap();
    publishing.await.unwrap();

    let db = TestDb::reopen(&pg.url(), &bed.db.name).await;
    wait_for_orders(&db, total as i64, PATIENCE * 2).await;
    audit(&db, total).await;
    eprintln!("sent {total} orders, restarted Postgres once mid-stream, stored {total} once each");
    ingestor.stop().await;
    drop(pg);
}

async fn the_broker_restarted_mid_stream_loses_nothing(transport: Transport) {
    let half = orders_to_send() / 8;
    let broker = PrivateBroker::start(transport).await;
    let bed = TestBed::on(transport, TestDb::new().await, &broker.url()).await;
    let ingestor = bed.start_ingestor("broker-restart-mid-stream").await;
    let first = distinct_orders("first", half);
    publish_in_parallel(transport, &broker.url(), &bed.channel, first).await;

    // Kill the broker while the ingestor is still working through the first half.
    wait_for_orders(&bed.db, 1, PATIENCE).await;
    let broker = broker.killed_and_restarted().await;
    let second = distinct_orders("second", half);
    publish_in_parallel(transport, &broker.url(), &bed.channel, second).await;

    wait_for_orders(&bed.db, 2 * half as i64, PATIENCE * 2).await;
    audit(&bed.db, 2 * half).await;
    eprintln!(
        "sent {} orders, killed the broker once mid-stream, stored {} once each",
        2 * half,
        2 * half
    );
    ingestor.stop().await;
    drop(broker);
}

#[tokio::test]
async fn every_api_replica_serves_every_order_after_a_stream() {
    let total = orders_to_send() / 10;
    let bed = TestBed::new(Transport::Stan).await;
    let replicas = [
        Api::start(&bed.db.url).await,
        Api::start(&bed.db.url).await,
        Api::start(&bed.db.url).await,
    ];
    let ingestor = bed.start_ingestor("replicas").await;
    let orders = distinct_orders("r", total);
    publish_in_parallel(bed.transport, &bed.nats_url, &bed.channel, orders).await;
    wait_for_orders(&bed.db, total as i64, PATIENCE).await;

    let client = reqwest::Client::new();
    for (n, replica) in replicas.iter().enumerate() {
        for i in 0..total {
            let url = format!("{}/api/v1/orders/r{i}", replica.address);
            testkit::wait_until(&format!("replica {n} to serve r{i}"), PATIENCE, || async {
                client
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            })
            .await;
        }
    }
    eprintln!("sent {total} orders; each of 3 api replicas serves all {total}");
    ingestor.stop().await;
    for replica in replicas {
        replica.stop().await;
    }
}

testkit::for_each_transport!(
    an_ingestor_killed_again_and_again_mid_stream_stores_every_order_exactly_once,
    postgres_restarted_mid_stream_loses_nothing,
    the_broker_restarted_mid_stream_loses_nothing,
);
