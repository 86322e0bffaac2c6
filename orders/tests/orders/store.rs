//! The ingestor's write transaction against a real Postgres: what `store_batch` makes of fresh,
//! repeated, conflicting and rejected messages in one batch, and that every column reads back as
//! the message carried it.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use orders::db::{store_batch, BatchReport, Envelope, Verdict, NOTIFY_CHANNEL};
use orders::{Rejection, Rule};
use sqlx::postgres::PgListener;
use testkit::TestDb;

use crate::support::{accepted, sample_with};

/// Message `sequence` of a test's channel, judged.
fn message(sequence: u64, payload: Vec<u8>) -> (Envelope, Verdict) {
    let verdict = match orders::parse_order(&payload) {
        Ok(order) => Verdict::Valid(order),
        Err(rejection) => Verdict::Rejected(rejection),
    };
    let envelope = Envelope {
        channel: "orders".into(),
        sequence,
        // Microseconds, as the broker's nanoseconds are stored.
        published_at: Utc.timestamp_opt(1_800_000_000, 123_456_000).unwrap()
            + chrono::Duration::seconds(sequence as i64),
        payload: Bytes::from(payload),
    };
    (envelope, verdict)
}

/// The sample with another id (and the matching transaction) and another customer.
fn order(uid: &str, customer: &str) -> Vec<u8> {
    sample_with(|order| {
        order["order_uid"] = uid.into();
        order["payment"]["transaction"] = uid.into();
        order["customer_id"] = customer.into();
    })
}

/// The sample with another id and two items.
fn order_with_two_items(uid: &str) -> Vec<u8> {
    sample_with(|order| {
        order["order_uid"] = uid.into();
        order["payment"]["transaction"] = uid.into();
        let mut second = order["items"][0].clone();
        second["chrt_id"] = 42.into();
        second["sale"] = 100.into();
        second["total_price"] = 0.into();
        order["items"].as_array_mut().unwrap().push(second);
    })
}

#[tokio::test]
async fn a_batch_of_new_orders_is_stored_with_its_parts_and_notifies_its_highest_seq() {
    let db = TestDb::new().await;
    let mut listener = PgListener::connect_with(&db.pool).await.unwrap();
    listener.listen(NOTIFY_CHANNEL).await.unwrap();
    let batch = vec![
        message(1, order("first", "a")),
        message(2, order_with_two_items("second")),
        message(3, order("third", "c")),
    ];

    let report = store_batch(&db.pool, &batch).await.unwrap();

    let (highest,): (i64,) = sqlx::query_as("SELECT max(seq) FROM orders")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        report,
        BatchReport {
            stored: 3,
            last_seq: Some(highest),
            ..BatchReport::default()
        }
    );
    assert_eq!(db.count("deliveries").await, 3);
    assert_eq!(db.count("payments").await, 3);
    assert_eq!(db.count("items").await, 4);
    let notification = tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .expect("a notification arrives")
        .unwrap();
    assert_eq!(notification.payload(), highest.to_string());
}

#[tokio::test]
async fn every_column_reads_back_as_the_message_carried_it() {
    let db = TestDb::new().await;
    let (envelope, verdict) = message(7, order_with_two_items("columns"));
    let Verdict::Valid(valid) = &verdict else {
        panic!("the order is valid")
    };
    let o = valid.order().clone();

    store_batch(&db.pool, &[(envelope.clone(), verdict.clone())])
        .await
        .unwrap();

    let row: (
        String,
        i64,
        DateTime<Utc>,
        String,
        i64,
        DateTime<Utc>,
        String,
    ) = sqlx::query_as(
        "SELECT track_number, sm_id, date_created, channel, stan_sequence, published_at,
                document::text
         FROM orders WHERE order_uid = 'columns'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let document = String::from_utf8(valid.document().to_vec()).unwrap();
    assert_eq!(
        row,
        (
            o.track_number.clone(),
            o.sm_id,
            o.date_created,
            "orders".into(),
            7,
            envelope.published_at,
            document,
        )
    );
    let delivery: (String, String, String) =
        sqlx::query_as("SELECT name, city, email FROM deliveries WHERE order_uid = 'columns'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    let d = &o.delivery;
    assert_eq!(delivery, (d.name.clone(), d.city.clone(), d.email.clone()));
    let payment: (String, i64, DateTime<Utc>, i64) = sqlx::query_as(
        "SELECT currency, amount, payment_dt, custom_fee FROM payments WHERE order_uid = 'columns'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let p = &o.payment;
    let paid = Utc.timestamp_opt(p.payment_dt, 0).unwrap();
    assert_eq!(payment, (p.currency.clone(), p.amount, paid, p.custom_fee));
    let items: Vec<(i32, i64, i16, i64, String)> = sqlx::query_as(
        "SELECT position, chrt_id, sale, status, rid FROM items
         WHERE order_uid = 'columns' ORDER BY position",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let expected: Vec<(i32, i64, i16, i64, String)> = o
        .items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            (
                i as i32,
                it.chrt_id,
                it.sale as i16,
                it.status,
                it.rid.clone(),
            )
        })
        .collect();
    assert_eq!(items, expected);
}

#[tokio::test]
async fn a_batch_mixing_stored_repeated_conflicting_and_rejected_messages_stores_each_id_once() {
    let db = TestDb::new().await;
    store_batch(&db.pool, &[message(1, order("old", "a"))])
        .await
        .unwrap();
    let rejected = (
        message(9, b"{".to_vec()).0,
        Verdict::Rejected(Rejection::new(Rule::MalformedJson, "cut short")),
    );
    let batch = vec![
        message(2, order("old", "a")),   // stored before, the same: a duplicate
        message(3, order("old", "b")),   // stored before, other content: a conflict
        message(4, order("new", "a")),   // stored now
        message(5, order("new", "a")),   // the same again in the batch: a duplicate
        message(6, order("new", "b")),   // other content in the batch: a conflict
        message(7, order("other", "a")), // stored now
        rejected,
    ];

    let report = store_batch(&db.pool, &batch).await.unwrap();

    assert_eq!(
        (report.stored, report.duplicates, report.conflicts),
        (2, 2, 2)
    );
    assert_eq!(report.dead_lettered, 1);
    assert_eq!(db.count("orders").await, 3);
    assert_eq!(db.count("items").await, 3);
    let conflicts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT order_uid, stan_sequence FROM order_conflicts ORDER BY stan_sequence",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(conflicts, vec![("old".into(), 3), ("new".into(), 6)]);
    let (customer,): (String,) =
        sqlx::query_as("SELECT customer_id FROM orders WHERE order_uid = 'new'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(customer, "a", "the first version in the batch is kept");
    assert_eq!(db.count("dead_letters").await, 1);
}

#[tokio::test]
async fn storing_a_batch_again_changes_nothing() {
    let db = TestDb::new().await;
    let batch = vec![
        message(1, order("once", "a")),
        message(2, order("once", "b")),
        message(3, b"not an order".to_vec()),
    ];
    store_batch(&db.pool, &batch).await.unwrap();

    let again = store_batch(&db.pool, &batch).await.unwrap();

    assert_eq!((again.stored, again.duplicates), (0, 1));
    assert_eq!(again.last_seq, None);
    assert_eq!(db.count("orders").await, 1);
    assert_eq!(db.count("items").await, 1);
    assert_eq!(db.count("order_conflicts").await, 1);
    assert_eq!(db.count("dead_letters").await, 1);
}

#[tokio::test]
async fn an_order_postgres_refuses_fails_the_batch_with_a_content_error_and_stores_nothing() {
    let db = TestDb::new().await;
    // A rule only the database knows, on a part: the copy of the items fails after the orders'.
    sqlx::query("ALTER TABLE items ADD CONSTRAINT no_refused CHECK (brand <> 'refused')")
        .execute(&db.pool)
        .await
        .unwrap();
    let refused = sample_with(|order| {
        order["order_uid"] = "refused".into();
        order["payment"]["transaction"] = "refused".into();
        order["items"][0]["brand"] = "refused".into();
    });
    accepted(&refused);
    let batch = vec![message(1, order("fine", "a")), message(2, refused)];

    let error = store_batch(&db.pool, &batch).await.unwrap_err();

    let code = error.as_database_error().and_then(|e| e.code());
    assert_eq!(code.as_deref(), Some("23514"), "{error}");
    assert_eq!(db.count("orders").await, 0);
    // The connection went back to the pool usable.
    store_batch(&db.pool, &batch[..1]).await.unwrap();
    assert_eq!(db.count("orders").await, 1);
}
