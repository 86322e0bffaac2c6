//! What a message becomes: a stored order with its parts, a dead letter, a duplicate or a conflict.

use crate::helpers::{distinct_orders, sample_with_uid, TestBed};
use testkit::Transport;

async fn the_published_sample_is_stored_with_its_delivery_payment_and_items(transport: Transport) {
    let bed = TestBed::new(transport).await;
    let ingestor = bed.start_ingestor("ingest-sample").await;

    bed.publisher.publish(testkit::sample_order()).await;
    bed.wait_for_rows("orders", 1).await;

    let (document,): (serde_json::Value,) =
        sqlx::query_as("SELECT document FROM orders WHERE order_uid = 'b563feb7b2b84b6test'")
            .fetch_one(&bed.db.pool)
            .await
            .unwrap();
    let sample: serde_json::Value = serde_json::from_slice(testkit::sample_order()).unwrap();
    assert_eq!(document, sample);
    assert_eq!(bed.db.count("deliveries").await, 1);
    assert_eq!(bed.db.count("payments").await, 1);
    assert_eq!(bed.db.count("items").await, 1);
    ingestor.stop().await;
}

async fn a_malformed_message_is_dead_lettered_with_its_reason_and_the_next_order_is_stored(
    transport: Transport,
) {
    let bed = TestBed::new(transport).await;
    let ingestor = bed.start_ingestor("ingest-malformed").await;

    bed.publisher
        .publish_all(vec![
            b"{\"order_uid\": ".to_vec(),
            b"\xff\xfe not utf-8".to_vec(),
            sample_with_uid("after-the-bad-ones"),
        ])
        .await;
    bed.wait_for_rows("orders", 1).await;
    bed.wait_for_rows("dead_letters", 2).await;

    let letters: Vec<(i64, Vec<u8>, String, String)> = sqlx::query_as(
        "SELECT stan_sequence, payload, rule, reason FROM dead_letters ORDER BY stan_sequence",
    )
    .fetch_all(&bed.db.pool)
    .await
    .unwrap();
    assert_eq!(letters[0].0, 1);
    assert_eq!(letters[0].1, b"{\"order_uid\": ");
    assert_eq!(letters[0].2, "malformed_json");
    assert!(
        letters[0].3.contains("not well-formed JSON"),
        "{}",
        letters[0].3
    );
    assert_eq!(letters[1].1, b"\xff\xfe not utf-8");
    assert_eq!(letters[1].2, "invalid_utf8");
    ingestor.stop().await;
}

async fn the_same_order_twice_is_stored_once_and_a_different_second_version_is_a_conflict(
    transport: Transport,
) {
    let bed = TestBed::new(transport).await;
    let ingestor = bed.start_ingestor("ingest-twice").await;

    let mut changed: serde_json::Value = serde_json::from_slice(testkit::sample_order()).unwrap();
    changed["delivery"]["city"] = "Haifa".into();
    bed.publisher
        .publish_all(vec![
            testkit::sample_order().to_vec(),
            testkit::sample_order().to_vec(),
            serde_json::to_vec(&changed).unwrap(),
        ])
        .await;
    bed.wait_for_rows("order_conflicts", 1).await;

    assert_eq!(bed.db.count("orders").await, 1);
    let (city,): (String,) = sqlx::query_as("SELECT city FROM deliveries")
        .fetch_one(&bed.db.pool)
        .await
        .unwrap();
    assert_eq!(city, "Kiryat Mozkin", "the first version stays");
    let (uid, seq, doc): (String, i64, serde_json::Value) =
        sqlx::query_as("SELECT order_uid, stan_sequence, document FROM order_conflicts")
            .fetch_one(&bed.db.pool)
            .await
            .unwrap();
    assert_eq!(uid, "b563feb7b2b84b6test");
    assert_eq!(seq, 3);
    assert_eq!(doc["delivery"]["city"], "Haifa");
    assert_eq!(bed.db.count("dead_letters").await, 0);
    ingestor.stop().await;
}

async fn a_value_postgres_refuses_is_dead_lettered_with_the_database_error_and_the_stream_moves_on(
    transport: Transport,
) {
    let bed = TestBed::new(transport).await;
    // A rule only the database knows: validation lets the order through, Postgres refuses it.
    sqlx::query("ALTER TABLE orders ADD CONSTRAINT no_refused CHECK (customer_id <> 'refused')")
        .execute(&bed.db.pool)
        .await
        .unwrap();
    let ingestor = bed.start_ingestor("ingest-refused").await;

    let mut refused: serde_json::Value =
        serde_json::from_slice(&sample_with_uid("refused1")).unwrap();
    refused["customer_id"] = "refused".into();
    let mut batch = distinct_orders("fine", 3);
    batch.insert(1, serde_json::to_vec(&refused).unwrap());
    bed.publisher.publish_all(batch).await;

    bed.wait_for_rows("orders", 3).await;
    bed.wait_for_rows("dead_letters", 1).await;
    let (rule, reason): (String, String) = sqlx::query_as("SELECT rule, reason FROM dead_letters")
        .fetch_one(&bed.db.pool)
        .await
        .unwrap();
    assert_eq!(rule, "database_refused");
    assert!(reason.contains("no_refused"), "{reason}");
    ingestor.stop().await;
}

async fn a_stopped_ingestor_acks_what_it_stored_and_its_successor_resumes_without_duplicates(
    transport: Transport,
) {
    let bed = TestBed::new(transport).await;
    let first = bed.start_ingestor("ingest-resume").await;
    bed.publisher.publish_all(distinct_orders("a", 50)).await;
    bed.wait_for_rows("orders", 50).await;
    first.stop().await;

    bed.publisher.publish_all(distinct_orders("b", 50)).await;
    let second = bed.start_ingestor("ingest-resume").await;
    bed.wait_for_rows("orders", 100).await;
    second.stop().await;

    // Nothing was redelivered: every message was acked once it was stored.
    let (max_seq,): (i64,) = sqlx::query_as("SELECT max(stan_sequence) FROM orders")
        .fetch_one(&bed.db.pool)
        .await
        .unwrap();
    assert_eq!(max_seq, 100);
}

testkit::for_each_transport!(
    the_published_sample_is_stored_with_its_delivery_payment_and_items,
    a_malformed_message_is_dead_lettered_with_its_reason_and_the_next_order_is_stored,
    the_same_order_twice_is_stored_once_and_a_different_second_version_is_a_conflict,
    a_value_postgres_refuses_is_dead_lettered_with_the_database_error_and_the_stream_moves_on,
    a_stopped_ingestor_acks_what_it_stored_and_its_successor_resumes_without_duplicates,
);
