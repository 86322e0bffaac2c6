//! The ingestor stops in bounded time whatever the broker and Postgres do, and loses nothing: what it
//! could not commit and ack is redelivered to its successor.

use sqlx::{PgPool, Postgres, Transaction};
use testkit::{PrivateBroker, TestDb, Transport};

use crate::helpers::{distinct_orders, signal_together, TestBed, PATIENCE};

async fn an_ingestor_stopped_together_with_its_broker_exits_in_bounded_time_and_loses_nothing(
    transport: Transport,
) {
    let broker = PrivateBroker::start(transport).await;
    let bed = TestBed::on(transport, TestDb::new().await, &broker.url()).await;
    // All published before the ingestor starts, so that every one is in the broker's store when the
    // broker stops; enough of them that the stop lands mid-stream.
    let total = 10_000;
    bed.publisher
        .publish_all(distinct_orders("down", total))
        .await;
    let mut child = bed.spawn_ingestor_process("stopped-with-broker");
    testkit::wait_until("the first orders to be stored", PATIENCE, || async {
        bed.db.count("orders").await >= 200
    })
    .await;

    // What `docker compose down` does: SIGTERM to the ingestor and the broker at the same moment.
    let broker_pid = broker.pid().expect("the broker runs");
    signal_together(&[child.id(), broker_pid], "TERM");
    let status = child.exit_status(PATIENCE).await;
    assert!(status.success(), "a clean exit on SIGTERM: {status}");
    assert!(
        bed.db.count("orders").await < total as i64,
        "the stream ended before SIGTERM could prove anything"
    );

    // The broker comes back on its store and sends a successor whatever was not acked.
    let broker = broker.exited_and_restarted().await;
    let successor = bed.start_ingestor("successor").await;
    bed.wait_for_rows("orders", total as i64).await;
    assert_stored_once(&bed, total).await;
    successor.stop().await;
    drop(broker);
}

async fn an_ingestor_stopped_while_its_batch_waits_on_the_database_gives_it_up_after_the_grace(
    transport: Transport,
) {
    let bed = TestBed::new(transport).await;
    let lock = write_lock_held(&bed.db.pool).await;
    let mut child = bed.spawn_ingestor_process_logging("grace", &[("SHUTDOWN_GRACE_MS", "500")]);
    bed.publisher.publish_all(distinct_orders("g", 10)).await;
    batch_waits_on(&bed.db.pool).await;

    child.signal("TERM");
    let status = child.exit_status(PATIENCE).await;
    assert!(status.success(), "a clean exit on SIGTERM: {status}");
    assert_eq!(bed.db.count("orders").await, 0);

    lock.commit().await.unwrap();
    let successor = bed.start_ingestor("grace-successor").await;
    bed.wait_for_rows("orders", 10).await;
    assert_stored_once(&bed, 10).await;
    successor.stop().await;
}

async fn a_second_sigterm_ends_an_ingestor_at_once_while_its_batch_waits_on_the_database(
    transport: Transport,
) {
    let bed = TestBed::new(transport).await;
    let lock = write_lock_held(&bed.db.pool).await;
    // A grace far longer than the test's patience: only the second signal can end the process.
    let mut child =
        bed.spawn_ingestor_process_logging("impatient", &[("SHUTDOWN_GRACE_MS", "3600000")]);
    bed.publisher.publish_all(distinct_orders("s", 10)).await;
    batch_waits_on(&bed.db.pool).await;

    child.signal("TERM");
    child
        .logged("stopping: finishing the messages in hand", PATIENCE)
        .await;
    child.signal("TERM");
    let status = child.exit_status(PATIENCE).await;
    assert_eq!(status.code(), Some(1), "cut short by the second signal");

    lock.commit().await.unwrap();
    let successor = bed.start_ingestor("impatient-successor").await;
    bed.wait_for_rows("orders", 10).await;
    assert_stored_once(&bed, 10).await;
    successor.stop().await;
}

/// A transaction holding the lock every writer of `orders` takes, so that no batch commits until
/// it ends.
async fn write_lock_held(pool: &PgPool) -> Transaction<'static, Postgres> {
    let mut lock = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(orders::db::WRITE_LOCK)
        .execute(&mut *lock)
        .await
        .unwrap();
    lock
}

/// Waits until a writer waits for that lock: the ingestor has a batch in hand.
async fn batch_waits_on(pool: &PgPool) {
    testkit::wait_until("a batch waiting for the write lock", PATIENCE, || async {
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event = 'advisory'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        waiting > 0
    })
    .await;
}

/// Every one of the `total` orders published is stored, once, and nothing else.
async fn assert_stored_once(bed: &TestBed, total: usize) {
    let (distinct,): (i64,) = sqlx::query_as("SELECT count(DISTINCT stan_sequence) FROM orders")
        .fetch_one(&bed.db.pool)
        .await
        .unwrap();
    assert_eq!(distinct, total as i64);
    assert_eq!(bed.db.count("dead_letters").await, 0);
    assert_eq!(bed.db.count("order_conflicts").await, 0);
}

testkit::for_each_transport!(
    an_ingestor_stopped_together_with_its_broker_exits_in_bounded_time_and_loses_nothing,
    an_ingestor_stopped_while_its_batch_waits_on_the_database_gives_it_up_after_the_grace,
    a_second_sigterm_ends_an_ingestor_at_once_while_its_batch_waits_on_the_database,
);
