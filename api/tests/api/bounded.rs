//! The bounded cache (`--cache-max-bytes`), always with a budget of a few orders: what is not held
//! is read from Postgres, once however many ask at the same time; an id never stored costs no
//! query; an outage turns misses, and only misses, into 503.

use futures_util::future::join_all;
use reqwest::StatusCode;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use testkit::{PrivatePostgres, TestDb};

use crate::helpers::{order_with_uid, settings, store, stored_document, TestApp, PATIENCE};
use crate::metrics::{metrics, sample};

/// Room for three orders of the sample's size.
const BUDGET: u64 = 4096;

async fn spawn_bounded(database_url: &str, max_bytes: u64) -> TestApp {
    let mut settings = settings(database_url);
    settings.cache_max_bytes = Some(max_bytes);
    let app = TestApp::start(settings).await;
    app.wait_until_ready().await;
    app
}

fn uid(n: usize) -> String {
    format!("bounded-{n:04}")
}

/// Stores orders `uid(0)` to `uid(count - 1)`, in batches of 100, oldest first.
async fn store_numbered(pool: &PgPool, count: usize) {
    for first in (0..count).step_by(100) {
        let batch: Vec<Vec<u8>> = (first..count.min(first + 100))
            .map(|n| order_with_uid(&uid(n)))
            .collect();
        store(pool, &batch).await;
    }
}

/// The value of a counter or gauge of the api's `/metrics`.
async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = metrics(app).await;
    sample(&text, name).unwrap_or_else(|| panic!("{name} in:\n{text}"))
}

/// How many times Postgres has looked up an order by id (a scan of the primary key), as its
/// statistics show once the backends that did it have reported.
async fn lookups_by_id(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT idx_scan FROM pg_stat_user_indexes
         WHERE relname = 'orders' AND indexrelname = 'orders_pkey'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn every_order_is_served_byte_for_byte_though_only_a_few_are_held() {
    let db = TestDb::new().await;
    store_numbered(&db.pool, 20).await;
    let app = spawn_bounded(&db.url, BUDGET).await;

    for n in 0..20 {
        let response = app.get_order(&uid(n)).await;
        assert_eq!(response.status(), StatusCode::OK, "{}", uid(n));
        let body = response.bytes().await.unwrap();
        let stored = stored_document(&db.pool, &uid(n)).await;
        assert_eq!(body, stored.as_bytes(), "{}", uid(n));
    }

    // At most three held at any time: most of the twenty came from Postgres.
    let loads = metric(&app, "api_orders_cache_loads_total").await;
    let hits = metric(&app, "api_orders_cache_hits_total").await;
    assert_eq!(loads + hits, 20.0);
    assert!(loads >= 10.0, "{loads} loads for 20 orders");
    assert_eq!(
        metric(&app, "api_orders_cache_loads_not_found_total").await,
        0.0
    );
    let held = metric(&app, "api_orders_cache_held_bytes").await;
    assert!(held > 0.0 && held <= BUDGET as f64, "{held} bytes held");
    assert_eq!(metric(&app, "api_orders_cache_known_ids").await, 20.0);
}

// Past 60 lines: the Postgres-side count needs its baseline settled first, then a sentinel load
// that shows the count is seen at all.
#[tokio::test]
async fn ids_that_were_never_stored_are_answered_404_without_a_query() {
    let db = TestDb::new().await;
    // Enough rows that Postgres looks an id up through the primary key rather than by a scan.
    let writer = PgPoolOptions::new()
        .max_connections(1)
        .connect(&db.url)
        .await
        .unwrap();
    store_numbered(&writer, 400).await;
    // Storing probes the primary key too: have those probes reported before the baseline.
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(&writer)
        .await
        .unwrap();
    writer.close().await;
    let app = spawn_bounded(&db.url, BUDGET).await;
    let before = lookups_by_id(&db.pool).await;

    for n in 0..200 {
        let unknown = format!("never-stored-{n}");
        let response = app.get_order(&unknown).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{unknown}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "order_not_found");
    }
    // One order that is not held: its load is the one lookup Postgres should count.
    assert_eq!(app.get_order(&uid(100)).await.status(), StatusCode::OK);

    testkit::wait_until(
        "Postgres to count the load of one order by id",
        PATIENCE * 2,
        || async { lookups_by_id(&db.pool).await > before },
    )
    .await;
    assert_eq!(
        lookups_by_id(&db.pool).await - before,
        1,
        "200 unknown ids and one load made more than one lookup by id"
    );
    assert_eq!(
        metric(&app, "api_orders_cache_unknown_ids_total").await,
        200.0
    );
    assert_eq!(metric(&app, "api_orders_cache_loads_total").await, 1.0);
}

// Past 60 lines: the table is locked so that the requests pile up behind the one load, which the
// test watches from Postgres's side before it lets the load go.
#[tokio::test]
async fn a_hundred_concurrent_requests_for_an_order_not_held_make_one_load() {
    let db = TestDb::new().await;
    store_numbered(&db.pool, 50).await;
    let app = spawn_bounded(&db.url, BUDGET).await;
    let target = uid(25);
    let stored = stored_document(&db.pool, &target).await;

    // The load waits for the lock, and every other request for the load.
    let mut lock = db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let url = format!("{}/api/v1/orders/{target}", app.address);
    let requests: Vec<_> = (0..100)
        .map(|_| {
            let (client, url) = (app.client.clone(), url.clone());
            tokio::spawn(async move {
                let response = client.get(url).send().await.unwrap();
                (response.status(), response.bytes().await.unwrap())
            })
        })
        .collect();
    testkit::wait_until("the 100 requests to be connected", PATIENCE, || async {
        metric(&app, "api_http_connections_open").await >= 100.0
    })
    .await;
    let waiting_loads = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = $1 AND application_name = $2 AND wait_event_type = 'Lock'",
        )
        .bind(&db.name)
        .bind(api::database::LOADS_APPLICATION_NAME)
        .fetch_one(&db.pool)
        .await
        .unwrap()
    };
    testkit::wait_until("the load to wait for the lock", PATIENCE, || async {
        waiting_loads().await >= 1
    })
    .await;
    assert_eq!(waiting_loads().await, 1, "one query in flight for one id");
    lock.commit().await.unwrap();

    for answer in join_all(requests).await {
        let (status, body) = answer.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, stored.as_bytes());
    }
    assert_eq!(metric(&app, "api_orders_cache_loads_total").await, 1.0);
    assert!(metric(&app, "api_orders_cache_hits_total").await >= 99.0);
}

#[tokio::test]
async fn an_order_stored_after_the_warm_up_is_served() {
    let db = TestDb::new().await;
    store_numbered(&db.pool, 20).await;
    let app = spawn_bounded(&db.url, BUDGET).await;
    assert_eq!(
        app.get_order("stored-later").await.status(),
        StatusCode::NOT_FOUND
    );

    store(&db.pool, &[order_with_uid("stored-later")]).await;

    app.wait_until_served("stored-later").await;
    let body = app.get_order("stored-later").await.bytes().await.unwrap();
    assert_eq!(
        body,
        stored_document(&db.pool, "stored-later").await.as_bytes()
    );
    assert_eq!(metric(&app, "api_orders_cache_known_ids").await, 21.0);
}

#[tokio::test]
async fn an_id_postgres_has_no_order_for_is_remembered_until_an_order_with_it_is_applied() {
    let db = TestDb::new().await;
    store(&db.pool, &[order_with_uid("deleted")]).await;
    store_numbered(&db.pool, 20).await;
    let app = spawn_bounded(&db.url, BUDGET).await;
    // Known to the api, not held, and gone from the table: as an id that shares a stored id's
    // fingerprint would be.
    sqlx::query("DELETE FROM orders WHERE order_uid = 'deleted'")
        .execute(&db.pool)
        .await
        .unwrap();

    for _ in 0..3 {
        assert_eq!(
            app.get_order("deleted").await.status(),
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(metric(&app, "api_orders_cache_loads_total").await, 1.0);
    assert_eq!(
        metric(&app, "api_orders_cache_loads_not_found_total").await,
        1.0
    );
    assert_eq!(metric(&app, "api_orders_cache_absent_ids").await, 1.0);

    store(&db.pool, &[order_with_uid("deleted")]).await;

    app.wait_until_served("deleted").await;
    assert_eq!(metric(&app, "api_orders_cache_absent_ids").await, 0.0);
}

// Past 60 lines: one outage, what each kind of request answers during it, and the recovery.
#[tokio::test]
async fn while_postgres_is_down_a_miss_is_a_503_and_held_orders_and_unknown_ids_are_answered() {
    let pg = PrivatePostgres::start();
    let pool = PgPoolOptions::new().connect(&pg.url()).await.unwrap();
    orders::MIGRATOR.run(&pool).await.unwrap();
    store_numbered(&pool, 20).await;
    pool.close().await;
    let app = spawn_bounded(&pg.url(), BUDGET).await;
    // Loaded, and asked for again: held.
    let held = uid(10);
    for _ in 0..2 {
        assert_eq!(app.get_order(&held).await.status(), StatusCode::OK);
    }

    pg.stop();

    assert_eq!(app.get_order(&held).await.status(), StatusCode::OK);
    let missed = uid(5);
    let response = app.get_order(&missed).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "database_unavailable");
    assert_eq!(body["order_uid"], missed.as_str());
    // Answered from the id set: a query could not have been.
    assert_eq!(
        app.get_order("never-stored").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get_order(&held).await.status(), StatusCode::OK);
    assert!(metric(&app, "api_orders_cache_load_failures_total").await >= 1.0);

    pg.resume();

    testkit::wait_until("a miss to be served again", PATIENCE * 2, || async {
        app.get_order(&missed).await.status() == StatusCode::OK
    })
    .await;
}

#[tokio::test]
async fn with_the_standby_stopped_a_miss_is_read_from_the_primary() {
    let primary = PrivatePostgres::start();
    let standby = primary.standby();
    let db = TestDb::on_server(&primary.url()).await;
    store_numbered(&db.pool, 20).await;
    standby.wait_replayed(PATIENCE).await;
    let options: PgConnectOptions = standby.url().parse().expect("a Postgres URL");
    let mut settings = settings(&db.url);
    settings.database_read_url = Some(options.database(&db.name).to_url_lossy().to_string().into());
    settings.cache_max_bytes = Some(BUDGET);
    let app = TestApp::start(settings).await;
    app.wait_until_ready().await;
    assert_eq!(app.get_order(&uid(5)).await.status(), StatusCode::OK);

    standby.stop();

    for n in [6, 7] {
        let response = app.get_order(&uid(n)).await;
        assert_eq!(response.status(), StatusCode::OK, "{}", uid(n));
        let body = response.bytes().await.unwrap();
        assert_eq!(body, stored_document(&db.pool, &uid(n)).await.as_bytes());
    }
    assert!(metric(&app, "api_orders_cache_loads_total").await >= 3.0);
    assert_eq!(
        metric(&app, "api_orders_cache_load_failures_total").await,
        0.0
    );
}

#[tokio::test]
async fn a_warm_up_with_far_more_orders_than_the_budget_is_ready_and_serves_every_order() {
    let db = TestDb::new().await;
    store_numbered(&db.pool, 300).await;
    let budget = 8 << 10;
    let app = spawn_bounded(&db.url, budget).await;

    assert_eq!(metric(&app, "api_orders_cache_known_ids").await, 300.0);
    let held = metric(&app, "api_orders_cache_held_bytes").await;
    assert!(held > 0.0 && held <= budget as f64, "{held} bytes held");
    let stored: Vec<(String, String)> =
        sqlx::query_as("SELECT order_uid, document::text FROM orders")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(stored.len(), 300);
    for (order_uid, document) in &stored {
        let response = app.get_order(order_uid).await;
        assert_eq!(response.status(), StatusCode::OK, "{order_uid}");
        assert_eq!(response.bytes().await.unwrap(), document.as_bytes());
    }
    // The listing is the latest orders, as with every order in memory.
    let listing: serde_json::Value = app
        .get("/api/v1/orders?limit=100")
        .await
        .json()
        .await
        .unwrap();
    let latest: Vec<String> = (200..300).rev().map(uid).collect();
    assert_eq!(listing["order_uids"], serde_json::json!(latest));
}
