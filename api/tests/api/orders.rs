//! Orders by id: served as stored, after warm-up, while running and after a restart.

use reqwest::StatusCode;
use testkit::TestDb;

use crate::helpers::{order_with_uid, store, stored_document, TestApp};

#[tokio::test]
async fn an_order_stored_before_start_is_served_after_warm_up_exactly_as_stored() {
    let db = TestDb::new().await;
    store(&db.pool, &[testkit::sample_order().to_vec()]).await;

    let app = TestApp::spawn(&db.url).await;
    let response = app.get_order("b563feb7b2b84b6test").await;

    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body = response.bytes().await.unwrap();
    let stored = stored_document(&db.pool, "b563feb7b2b84b6test").await;
    assert_eq!(
        body,
        stored.as_bytes(),
        "the body is the stored document, byte for byte"
    );
    let served: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let sample: serde_json::Value = serde_json::from_slice(testkit::sample_order()).unwrap();
    assert_eq!(served, sample);
}

#[tokio::test]
async fn an_order_stored_while_the_api_runs_is_served_shortly_after() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db.url).await;
    assert_eq!(
        app.get_order("late_order").await.status(),
        StatusCode::NOT_FOUND
    );

    // The periodic catch-up is an hour away: only the notification can bring this order in time.
    store(&db.pool, &[order_with_uid("late_order")]).await;

    app.wait_until_served("late_order").await;
    let body = app.get_order("late_order").await.bytes().await.unwrap();
    assert_eq!(
        body,
        stored_document(&db.pool, "late_order").await.as_bytes()
    );
}

#[tokio::test]
async fn a_restarted_api_serves_every_order() {
    let db = TestDb::new().await;
    store(&db.pool, &[order_with_uid("before_start")]).await;
    let first = TestApp::spawn(&db.url).await;
    store(&db.pool, &[order_with_uid("while_running")]).await;
    first.wait_until_served("while_running").await;
    first.stop().await;
    store(&db.pool, &[order_with_uid("while_stopped")]).await;

    let second = TestApp::spawn(&db.url).await;

    for uid in ["before_start", "while_running", "while_stopped"] {
        let response = second.get_order(uid).await;
        assert_eq!(response.status(), StatusCode::OK, "{uid}");
        let body = response.bytes().await.unwrap();
        assert_eq!(
            body,
            stored_document(&db.pool, uid).await.as_bytes(),
            "{uid}"
        );
    }
}

#[tokio::test]
async fn an_unknown_valid_id_is_a_404_with_a_json_error_body() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db.url).await;

    let response = app.get_order("no_such_order").await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "order_not_found");
    assert_eq!(body["order_uid"], "no_such_order");
    assert!(
        body["error"].as_str().unwrap().contains("no_such_order"),
        "{body}"
    );
}

#[tokio::test]
async fn invalid_ids_are_refused_with_a_400_that_says_why() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db.url).await;
    let too_long = "x".repeat(65);
    let cases = [
        ("a b", "' '"),
        ("../x", "'.'"),
        (too_long.as_str(), "65 bytes"),
        ("\0", "'\\0'"),
        ("<script>", "'<'"),
        ("zaç", "'ç'"),
    ];

    for (uid, why) in cases {
        let response = app.get_order(uid).await;

        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uid:?}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "invalid_order_uid", "{uid:?}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains(why),
            "{uid:?}: {error:?} should mention {why}"
        );
        assert!(error.contains("1 to 64 characters"), "{uid:?}: {error:?}");
    }
}

#[tokio::test]
async fn markup_quotes_emoji_and_right_to_left_text_are_served_unchanged() {
    let db = TestDb::new().await;
    let mut order: serde_json::Value = serde_json::from_slice(&order_with_uid("tricky")).unwrap();
    let name = "<script>alert(\"x\")</script> 'quoted' 🙂 שלום";
    order["delivery"]["name"] = name.into();
    order["items"][0]["brand"] = "<img src=x onerror=alert(1)>".into();
    store(&db.pool, &[serde_json::to_vec(&order).unwrap()]).await;
    let app = TestApp::spawn(&db.url).await;

    let response = app.get_order("tricky").await;

    assert_eq!(response.status(), StatusCode::OK);
    let served: serde_json::Value = response.json().await.unwrap();
    assert_eq!(served["delivery"]["name"], name);
    assert_eq!(served["items"][0]["brand"], "<img src=x onerror=alert(1)>");
}

#[tokio::test]
async fn the_api_needs_only_read_access_to_the_database() {
    let db = TestDb::new().await;
    store(&db.pool, &[order_with_uid("before_start")]).await;
    let role = testkit::unique_name("reader");
    for statement in [
        format!("CREATE ROLE {role} LOGIN"),
        format!("GRANT CONNECT ON DATABASE {} TO {role}", db.name),
        format!("GRANT USAGE ON SCHEMA public TO {role}"),
        format!("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"),
    ] {
        sqlx::query(&statement).execute(&db.pool).await.unwrap();
    }
    let options: sqlx::postgres::PgConnectOptions = db.url.parse().unwrap();
    let url = sqlx::ConnectOptions::to_url_lossy(&options.username(&role)).to_string();

    let app = TestApp::spawn(&url).await;
    assert_eq!(app.get_order("before_start").await.status(), StatusCode::OK);
    store(&db.pool, &[order_with_uid("while_running")]).await;
    app.wait_until_served("while_running").await;
    app.stop().await;

    let denied = sqlx::query(&format!("SET ROLE {role}; DELETE FROM orders"))
        .execute(&db.pool)
        .await;
    assert!(denied.is_err(), "the role cannot write");
}
