//! The probes: `/healthz` while the process lives, `/readyz` once the cache is warm.

use reqwest::StatusCode;
use sqlx::postgres::PgPoolOptions;
use testkit::{PrivatePostgres, TestDb};

use crate::helpers::{order_with_uid, settings, store, TestApp, PATIENCE};

#[tokio::test]
async fn healthz_and_readyz_answer_200_once_the_api_is_ready() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db.url).await;

    let health = app.get("/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "alive"}));
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn while_postgres_is_down_the_api_is_alive_but_not_ready_and_it_recovers_without_a_restart() {
    let pg = PrivatePostgres::start();
    let pool = PgPoolOptions::new().connect(&pg.url()).await.unwrap();
    orders::MIGRATOR.run(&pool).await.unwrap();
    store(&pool, &[order_with_uid("kept")]).await;
    pool.close().await;
    pg.stop();

    let app = TestApp::start(settings(&pg.url())).await;

    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(
        app.get("/readyz").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    for path in ["/api/v1/orders/kept", "/api/v1/orders"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "not_ready", "{path}");
    }

    pg.resume();

    testkit::wait_until("the api to be ready", PATIENCE * 2, || async {
        app.get("/readyz").await.status() == StatusCode::OK
    })
    .await;
    assert_eq!(app.get_order("kept").await.status(), StatusCode::OK);
}
