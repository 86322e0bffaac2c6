//! The api converges to the table whatever happens to its LISTEN connection or its notifications.

use std::time::Duration;

use reqwest::StatusCode;
use sqlx::PgPool;
use testkit::TestDb;

use crate::helpers::{order_with_uid, settings, store, TestApp, PATIENCE};

/// The server process ids of the api's LISTEN connections to `database`.
async fn listener_pids(pool: &PgPool, database: &str) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
    )
    .bind(database)
    .bind(api::database::LISTENER_APPLICATION_NAME)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_api_converges_after_its_listen_connection_is_killed() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db.url).await;
    let before = listener_pids(&db.pool, &db.name).await;
    assert_eq!(before.len(), 1, "one LISTEN connection: {before:?}");

    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(before[0])
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(killed);
    store(&db.pool, &[order_with_uid("after_the_kill")]).await;

    // With the periodic catch-up an hour away, only the reconnection (and the catch-up it
    // triggers) or a notification on the new connection can bring this order.
    app.wait_until_served("after_the_kill").await;
    testkit::wait_until("a new LISTEN connection", PATIENCE, || async {
        let now = listener_pids(&db.pool, &db.name).await;
        now.len() == 1 && now[0] != before[0]
    })
    .await;
    store(&db.pool, &[order_with_uid("later_still")]).await;
    app.wait_until_served("later_still").await;
}

#[tokio::test]
async fn an_order_written_without_a_notification_is_picked_up_by_the_periodic_catch_up() {
    let db = TestDb::new().await;
    store(&db.pool, &[order_with_uid("original")]).await;
    let mut settings = settings(&db.url);
    settings.catch_up_interval = Duration::from_millis(100);
    let app = TestApp::start(settings).await;
    app.wait_until_ready().await;

    // A copy under another id, inserted without the NOTIFY that the ingestor sends.
    sqlx::query(
        "INSERT INTO orders (order_uid, track_number, entry, locale, internal_signature,
                             customer_id, delivery_service, shardkey, sm_id, date_created,
                             oof_shard, document, channel, stan_sequence, published_at)
         SELECT 'silent', track_number, entry, locale, internal_signature, customer_id,
                delivery_service, shardkey, sm_id, date_created, oof_shard, document, channel,
                stan_sequence, published_at
         FROM orders WHERE order_uid = 'original'",
    )
    .execute(&db.pool)
    .await
    .unwrap();

    app.wait_until_served("silent").await;
    assert_eq!(app.get_order("original").await.status(), StatusCode::OK);
}
