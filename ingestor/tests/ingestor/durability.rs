//! Faults the ingestor recovers from by itself: a kill, Postgres down, the broker restarted, a
//! frozen process.

use testkit::{PrivateBroker, PrivatePostgres, PrivateStan, TestDb, Transport};

use crate::helpers::{distinct_orders, TestBed};

async fn an_ingestor_killed_mid_stream_loses_nothing_and_stores_nothing_twice(
    transport: Transport,
) {
    let bed = TestBed::new(transport).await;
    let total = 3000;
    let mut child = bed.spawn_ingestor_process("kill-9");
    let publishing = {
        let publisher = bed.publisher.clone();
        tokio::spawn(async move { publisher.publish_all(distinct_orders("k", total)).await })
    };

    // Kill it once it has stored part of the stream.
    testkit::wait_until(
        "the first orders to be stored",
        crate::helpers::PATIENCE,
        || async { bed.db.count("orders").await >= 200 },
    )
    .await;
    child.kill();
    let stored_at_kill = bed.db.count("orders").await;
    assert!(
        stored_at_kill < total as i64,
        "the kill came too late to prove anything"
    );

    publishing.await.unwrap();
    let mut restarted = bed.spawn_ingestor_process("kill-9");
    bed.wait_for_rows("orders", total as i64).await;
    restarted.kill();

    let (distinct,): (i64,) = sqlx::query_as("SELECT count(DISTINCT stan_sequence) FROM orders")
        .fetch_one(&bed.db.pool)
        .await
        .unwrap();
    assert_eq!(distinct, total as i64);
    assert_eq!(bed.db.count("dead_letters").await, 0);
    assert_eq!(bed.db.count("order_conflicts").await, 0);
}

async fn orders_that_arrive_while_postgres_is_down_are_stored_once_it_is_back(
    transport: Transport,
) {
    let pg = tokio::task::spawn_blocking(PrivatePostgres::start)
        .await
        .unwrap();
    let bed = TestBed::with_db(transport, TestDb::on_server(&pg.url()).await).await;
    let ingestor = bed.start_ingestor("pg-down").await;
    bed.publisher
        .publish_all(distinct_orders("before", 10))
        .await;
    bed.wait_for_rows("orders", 10).await;
    bed.db.pool.close().await;

    let pg = tokio::task::spawn_blocking(move || {
        pg.stop();
        pg
    })
    .await
    .unwrap();
    bed.publisher
        .publish_all(distinct_orders("during", 100))
        .await;
    // The ingestor has every message and, unable to store them, has acked none.
    testkit::wait_until(
        "the broker to deliver the messages published while Postgres is down",
        crate::helpers::PATIENCE,
        || async { bed.publisher.consumer_state(&bed.durable).await.last_sent >= 110 },
    )
    .await;
    let state = bed.publisher.consumer_state(&bed.durable).await;
    assert_eq!(
        state.pending, 100,
        "nothing is acked while Postgres is down: {state:?}"
    );
    let pg = tokio::task::spawn_blocking(move || {
        pg.resume();
        pg
    })
    .await
    .unwrap();

    let db = TestDb::reopen(&pg.url(), &bed.db.name).await;
    testkit::wait_until(
        "the orders published while Postgres was down",
        crate::helpers::PATIENCE,
        || async { db.count("orders").await >= 110 },
    )
    .await;
    assert_eq!(db.count("orders").await, 110);
    ingestor.stop().await;
    drop(pg);
}

async fn the_ingestor_reconnects_by_itself_after_the_broker_restarts_and_loses_nothing(
    transport: Transport,
) {
    let broker = PrivateBroker::start(transport).await;
    let bed = TestBed::on(transport, TestDb::new().await, &broker.url()).await;
    let ingestor = bed.start_ingestor("broker-restart").await;
    bed.publisher
        .publish_all(distinct_orders("before", 20))
        .await;
    bed.wait_for_rows("orders", 20).await;

    let broker = broker.killed_and_restarted().await;
    let publisher = bed.publisher_on(&broker.url()).await;
    publisher.publish_all(distinct_orders("after", 20)).await;

    bed.wait_for_rows("orders", 40).await;
    ingestor.stop().await;
    drop(broker);
}

#[tokio::test]
async fn an_ingestor_the_broker_dropped_while_it_was_frozen_notices_and_subscribes_again() {
    let stan = tokio::task::spawn_blocking(PrivateStan::start)
        .await
        .unwrap();
    let bed = TestBed::on(Transport::Stan, TestDb::new().await, &stan.url()).await;
    let mut child = bed.spawn_ingestor_process("frozen");
    bed.publisher
        .publish_all(distinct_orders("before", 10))
        .await;
    bed.wait_for_rows("orders", 10).await;

    // Freeze the process: it answers no heartbeat, and the broker drops the client, while the
    // TCP connection stays up, so only a STAN-level check can tell.
    child.signal("STOP");
    let clients = format!("{}/streaming/clientsz", stan.monitor_url());
    testkit::wait_until(
        "the broker to drop the frozen client",
        crate::helpers::PATIENCE,
        || async {
            let body = reqwest::get(&clients).await.unwrap().text().await.unwrap();
            !body.contains("\"frozen\"")
        },
    )
    .await;
    child.signal("CONT");

    bed.publisher
        .publish_all(distinct_orders("after", 10))
        .await;
    bed.wait_for_rows("orders", 20).await;
    child.kill();
}

async fn sigterm_mid_stream_loses_nothing_and_its_successor_stores_nothing_twice(
    transport: Transport,
) {
    let bed = TestBed::new(transport).await;
    let total = 3000;
    let mut child = bed.spawn_ingestor_process("sigterm");
    let publishing = {
        let publisher = bed.publisher.clone();
        tokio::spawn(async move { publisher.publish_all(distinct_orders("t", total)).await })
    };
    testkit::wait_until(
        "the first orders to be stored",
        crate::helpers::PATIENCE,
        || async { bed.db.count("orders").await >= 200 },
    )
    .await;

    child.signal("TERM");
    let status = child.exit_status(crate::helpers::PATIENCE).await;
    assert!(status.success(), "a clean exit on SIGTERM: {status}");
    let stored_before = bed.db.count("orders").await;
    assert!(
        stored_before < total as i64,
        "the stream ended before SIGTERM could prove anything"
    );

    publishing.await.unwrap();
    let successor = bed.start_ingestor("sigterm").await;
    bed.wait_for_rows("orders", total as i64).await;
    // Whatever the successor is sent, it stores: had the broker redelivered a message the first
    // ingestor stored and acked, the successor would have found it a duplicate.
    let remainder = (total as i64 - stored_before) as f64;
    let text = crate::metrics::metrics_once(&successor, |text| {
        crate::metrics::sample(text, "ingestor_messages_stored_total") == Some(remainder)
    })
    .await;
    assert_eq!(
        crate::metrics::sample(&text, "ingestor_messages_duplicate_total"),
        Some(0.0)
    );
    assert_eq!(bed.db.count("dead_letters").await, 0);
    successor.stop().await;
}

testkit::for_each_transport!(
    an_ingestor_killed_mid_stream_loses_nothing_and_stores_nothing_twice,
    orders_that_arrive_while_postgres_is_down_are_stored_once_it_is_back,
    the_ingestor_reconnects_by_itself_after_the_broker_restarts_and_loses_nothing,
    sigterm_mid_stream_loses_nothing_and_its_successor_stores_nothing_twice,
);
