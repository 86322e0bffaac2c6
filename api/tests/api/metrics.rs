//! What `/metrics` shows: requests by route template and status, and the cache.

use reqwest::StatusCode;
use testkit::TestDb;

use crate::helpers::{order_with_uid, store, stored_document, test_cache_max_bytes, TestApp};

/// The value of the sample named exactly `series` (name and labels), if it is there.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter_map(|line| line.rsplit_once(' '))
        .find(|(name, _)| *name == series)
        .map(|(_, value)| value.parse().expect("a number"))
}

pub async fn metrics(app: &TestApp) -> String {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

// Past 60 lines: one scenario of requests, then every metric it should have moved.
#[tokio::test]
async fn requests_are_counted_by_route_template_and_status_and_the_cache_is_measured() {
    let db = TestDb::new().await;
    store(
        &db.pool,
        &[order_with_uid("metered-1"), order_with_uid("metered-2")],
    )
    .await;
    let app = TestApp::spawn(&db.url).await;

    for uid in ["metered-1", "metered-2", "metered-1"] {
        assert_eq!(app.get_order(uid).await.status(), StatusCode::OK);
    }
    assert_eq!(
        app.get_order("nowhere-to-be-found").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/no/such/page").await.status(),
        StatusCode::NOT_FOUND
    );
    let text = metrics(&app).await;

    let orders = |status: u16| {
        sample(
            &text,
            &format!("api_http_requests_total{{route=\"/api/v1/orders/{{order_uid}}\",status=\"{status}\"}}"),
        )
    };
    assert_eq!(orders(200), Some(3.0), "{text}");
    assert_eq!(orders(404), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            "api_http_requests_total{route=\"unmatched\",status=\"404\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains("metered-1") && !text.contains("nowhere-to-be-found"),
        "a raw path leaked into a label:\n{text}"
    );
    assert!(
        sample(&text, "api_http_request_duration_seconds_count").unwrap() >= 5.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, "api_orders_cache_size_orders"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "api_orders_cache_lag_orders"),
        Some(0.0),
        "{text}"
    );
    assert!(
        sample(&text, "api_orders_cache_watermark_seq").unwrap() >= 2.0,
        "{text}"
    );
    assert!(
        sample(&text, "api_orders_cache_catch_ups_total").unwrap() >= 1.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, "api_orders_listener_reconnects_total"),
        Some(0.0),
        "{text}"
    );
}

#[tokio::test]
async fn the_bounded_cache_is_measured_and_the_unbounded_one_leaves_its_metrics_at_zero() {
    let db = TestDb::new().await;
    store(&db.pool, &[order_with_uid("measured")]).await;
    let app = TestApp::spawn(&db.url).await;

    assert_eq!(app.get_order("measured").await.status(), StatusCode::OK);
    assert_eq!(
        app.get_order("never-stored").await.status(),
        StatusCode::NOT_FOUND
    );
    let text = metrics(&app).await;

    let bounded = test_cache_max_bytes().is_some();
    let document = stored_document(&db.pool, "measured").await;
    let weight = api::cache::weight("measured".len(), document.len()) as f64;
    for (name, value) in [
        ("api_orders_cache_hits_total", 1.0),
        ("api_orders_cache_loads_total", 0.0),
        ("api_orders_cache_loads_not_found_total", 0.0),
        ("api_orders_cache_load_failures_total", 0.0),
        ("api_orders_cache_unknown_ids_total", 1.0),
        ("api_orders_cache_held_bytes", weight),
        ("api_orders_cache_held_documents", 1.0),
        ("api_orders_cache_known_ids", 1.0),
        ("api_orders_cache_absent_ids", 0.0),
    ] {
        let expected = if bounded { value } else { 0.0 };
        assert_eq!(sample(&text, name), Some(expected), "{name} in:\n{text}");
    }
}

#[tokio::test]
async fn the_metrics_are_not_part_of_the_openapi_document() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db.url).await;

    let document = app.get("/openapi.json").await.text().await.unwrap();

    assert!(!document.contains("/metrics"));
}
