//! Fault injection while orders stream in: the ingestor killed again and again, Postgres and the
//! broker restarted, several api replicas. Each scenario ends with the same audit: every published
//! order stored exactly once, no spurious dead letter or conflict, and every api serving them all.

use std::time::Instant;

use testkit::{PrivateBroker, PrivatePostgres, TestDb, Transport};

use crate::helpers::{distinct_orders, Api, TestBed, PATIENCE};
use crate::streams::{
    audit, longest_pause, orders_to_send, publish_in_parallel, wait_for_orders, Moments,
};

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
        "{transport:?}: sent {total} orders, killed the ingestor {kills} times, stored {total} \
         once each in {:?}; the longest pause in ingestion {:.1} s",
        started.elapsed(),
        longest_pause(&bed.db).await
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
        "{transport:?}: sent {} orders, killed the broker once mid-stream, stored {} once each; \
         the longest pause in ingestion {:.1} s",
        2 * half,
        2 * half,
        longest_pause(&bed.db).await
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
