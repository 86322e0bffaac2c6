//! The listing of order ids: newest first, bounded, and its errors.

use reqwest::StatusCode;
use testkit::TestDb;

use crate::helpers::{order_with_uid, store, TestApp};

async fn listed(app: &TestApp, query: &str) -> Vec<String> {
    let response = app.get(&format!("/api/v1/orders{query}")).await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    let body: serde_json::Value = response.json().await.unwrap();
    serde_json::from_value(body["order_uids"].clone()).unwrap()
}

#[tokio::test]
async fn the_listing_returns_the_newest_order_ids_first() {
    let db = TestDb::new().await;
    store(&db.pool, &[order_with_uid("first")]).await;
    store(&db.pool, &[order_with_uid("second")]).await;
    let app = TestApp::spawn(&db.url).await;
    store(&db.pool, &[order_with_uid("third")]).await;
    app.wait_until_served("third").await;

    assert_eq!(listed(&app, "").await, ["third", "second", "first"]);
    assert_eq!(listed(&app, "?limit=2").await, ["third", "second"]);
    assert_eq!(
        listed(&app, "?limit=100").await,
        ["third", "second", "first"]
    );
}

#[tokio::test]
async fn the_listing_of_an_empty_database_is_empty() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db.url).await;

    assert!(listed(&app, "").await.is_empty());
}

#[tokio::test]
async fn a_listing_limit_out_of_range_or_not_a_number_is_a_400_with_a_json_error() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db.url).await;

    for limit in ["0", "101", "-1", "abc", ""] {
        let response = app.get(&format!("/api/v1/orders?limit={limit}")).await;

        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "limit={limit}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "invalid_parameter", "limit={limit}");
        assert!(body["error"].as_str().unwrap().contains("limit"), "{body}");
    }
}
