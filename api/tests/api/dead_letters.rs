//! `GET /api/v1/dead-letters`: disabled without an admin token, closed without the token, and with
//! it the dead letters, newest first, straight from the database.

use api::http::AdminToken;
use base64::Engine;
use orders::db::{dead_letter, dismiss_dead_letter, Dismissal, DismissalReason};
use reqwest::{header, StatusCode};
use serde_json::Value;
use sqlx::PgPool;
use testkit::TestDb;

use crate::helpers::{settings, TestApp};

const TOKEN: &str = "a-token-for-the-tests-0123456789";

/// The api on `database_url` with the admin token [`TOKEN`], ready.
async fn spawn_with_token(database_url: &str) -> TestApp {
    let mut settings = settings(database_url);
    settings.admin_token = Some(AdminToken::new(TOKEN).unwrap());
    let app = TestApp::start(settings).await;
    app.wait_until_ready().await;
    app
}

/// GET `path` with `Authorization: Bearer <token>` when a token is given.
async fn get_as(app: &TestApp, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(format!("{}{path}", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("GET the dead letters")
}

/// The page the listing answers with the right token.
async fn page(app: &TestApp, query: &str) -> Value {
    let response = get_as(app, &format!("/api/v1/dead-letters{query}"), Some(TOKEN)).await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    response.json().await.unwrap()
}

fn ids(page: &Value) -> Vec<i64> {
    page["dead_letters"]
        .as_array()
        .expect("a list of dead letters")
        .iter()
        .map(|letter| letter["id"].as_i64().unwrap())
        .collect()
}

async fn insert_dead_letter(pool: &PgPool, sequence: i64, payload: &[u8], rule: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO dead_letters (channel, stan_sequence, published_at, payload, rule, reason)
         VALUES ('orders', $1, '2026-11-22T10:00:00.5Z', $2, $3, 'the reason, in words')
         RETURNING id",
    )
    .bind(sequence)
    .bind(payload)
    .bind(rule)
    .fetch_one(pool)
    .await
    .expect("insert a dead letter")
}

#[tokio::test]
async fn without_an_admin_token_configured_the_dead_letter_listing_is_not_found() {
    let db = TestDb::new().await;
    insert_dead_letter(&db.pool, 1, b"{", "malformed_json").await;
    let app = TestApp::spawn(&db.url).await;

    for token in [None, Some(TOKEN), Some("")] {
        let response = get_as(&app, "/api/v1/dead-letters", token).await;

        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{token:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "disabled");
    }
}

#[tokio::test]
async fn the_dead_letter_listing_without_the_token_or_with_another_is_a_401_naming_the_bearer_scheme(
) {
    let db = TestDb::new().await;
    insert_dead_letter(&db.pool, 1, b"{", "malformed_json").await;
    let app = spawn_with_token(&db.url).await;
    let almost = format!("{}x", &TOKEN[..TOKEN.len() - 1]);

    for (token, query) in [
        (None, ""),
        (Some("wrong"), ""),
        (Some(almost.as_str()), ""),
        (Some(&TOKEN[..TOKEN.len() - 1]), ""),
        (None, "?limit=0"),
    ] {
        let response = get_as(&app, &format!("/api/v1/dead-letters{query}"), token).await;

        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "unauthorized", "{body}");
        assert!(body.get("dead_letters").is_none());
    }
    let basic = app
        .client
        .get(format!("{}/api/v1/dead-letters", app.address))
        .basic_auth("admin", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn with_the_token_dead_letters_are_listed_newest_first_with_their_envelope_and_payload() {
    let db = TestDb::new().await;
    let first = insert_dead_letter(&db.pool, 7, b"{\"order_uid\": ", "malformed_json").await;
    let second = insert_dead_letter(&db.pool, 8, b"[]", "schema_mismatch").await;
    let app = spawn_with_token(&db.url).await;

    let page = page(&app, "").await;

    assert_eq!(ids(&page), [second, first]);
    assert_eq!(page["next_before_id"], Value::Null);
    let letter = &page["dead_letters"][1];
    assert_eq!(letter["channel"], "orders");
    assert_eq!(letter["stan_sequence"], 7);
    let published_at =
        chrono::DateTime::parse_from_rfc3339(letter["published_at"].as_str().unwrap());
    assert_eq!(
        published_at.unwrap(),
        chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:00.5Z").unwrap()
    );
    assert!(letter["received_at"].is_string());
    assert_eq!(letter["rule"], "malformed_json");
    assert_eq!(letter["reason"], "the reason, in words");
    assert_eq!(letter["payload"], "{\"order_uid\": ");
    assert_eq!(letter["payload_base64"], Value::Null);
    assert_eq!(letter["payload_bytes"], 14);
    assert_eq!(letter["resolved_at"], Value::Null);
}

#[tokio::test]
async fn the_dead_letter_listing_filters_by_rule_and_pages_below_before_id() {
    let db = TestDb::new().await;
    let first = insert_dead_letter(&db.pool, 1, b"{", "malformed_json").await;
    insert_dead_letter(&db.pool, 2, b"[]", "schema_mismatch").await;
    let third = insert_dead_letter(&db.pool, 3, b"[", "malformed_json").await;
    let app = spawn_with_token(&db.url).await;

    let json = page(&app, "?rule=malformed_json&limit=1").await;
    assert_eq!(ids(&json), [third]);
    assert_eq!(json["next_before_id"], third);

    let next = page(
        &app,
        &format!("?rule=malformed_json&limit=1&before_id={third}"),
    )
    .await;
    assert_eq!(ids(&next), [first]);

    let last = page(
        &app,
        &format!("?rule=malformed_json&limit=1&before_id={first}"),
    )
    .await;
    assert!(ids(&last).is_empty());
    assert_eq!(last["next_before_id"], Value::Null);
    assert!(ids(&page(&app, "?rule=no_items").await).is_empty());
}

#[tokio::test]
async fn a_payload_that_is_not_utf8_is_given_in_base64() {
    let db = TestDb::new().await;
    insert_dead_letter(&db.pool, 1, b"\xff\x00\x1b[31m", "invalid_utf8").await;
    let app = spawn_with_token(&db.url).await;

    let page = page(&app, "").await;

    let letter = &page["dead_letters"][0];
    assert_eq!(letter["payload"], Value::Null);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(letter["payload_base64"].as_str().expect("base64 text"))
        .unwrap();
    assert_eq!(bytes, b"\xff\x00\x1b[31m");
    assert_eq!(letter["payload_bytes"], 7);
}

#[tokio::test]
async fn a_limit_out_of_range_or_a_rule_with_a_nul_with_the_token_is_a_400() {
    let db = TestDb::new().await;
    let app = spawn_with_token(&db.url).await;

    for query in ["?limit=0", "?limit=101", "?before_id=abc", "?rule=a%00b"] {
        let response = get_as(&app, &format!("/api/v1/dead-letters{query}"), Some(TOKEN)).await;

        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "invalid_parameter");
    }
}

#[tokio::test]
async fn resolved_dead_letters_are_listed_only_when_asked_for() {
    let db = TestDb::new().await;
    let waiting = insert_dead_letter(&db.pool, 1, b"{", "malformed_json").await;
    let resolved = insert_dead_letter(&db.pool, 2, b"{", "malformed_json").await;
    sqlx::query(
        "UPDATE dead_letters SET resolved_at = now(), resolution = 'replayed: stored'
         WHERE id = $1",
    )
    .bind(resolved)
    .execute(&db.pool)
    .await
    .unwrap();
    let app = spawn_with_token(&db.url).await;

    assert_eq!(ids(&page(&app, "").await), [waiting]);
    let everything = page(&app, "?include_resolved=true").await;
    assert_eq!(ids(&everything), [resolved, waiting]);
    assert_eq!(
        everything["dead_letters"][0]["resolution"],
        "replayed: stored"
    );
    assert_eq!(
        everything["dead_letters"][0]["resolution_reason"],
        Value::Null
    );
}

#[tokio::test]
async fn a_dismissed_dead_letter_is_listed_with_its_resolution_its_time_and_the_reason() {
    let db = TestDb::new().await;
    let waiting = insert_dead_letter(&db.pool, 1, b"{", "malformed_json").await;
    let dismissed = insert_dead_letter(&db.pool, 2, b"{", "malformed_json").await;
    let reason = DismissalReason::parse("the corrected order came by mail, \"<b>\"").unwrap();
    let dismissal = dismiss_dead_letter(&db.pool, dismissed, &reason)
        .await
        .unwrap();
    assert!(
        matches!(dismissal, Dismissal::Dismissed { .. }),
        "{dismissal:?}"
    );
    let stored = dead_letter(&db.pool, dismissed).await.unwrap().unwrap();
    let app = spawn_with_token(&db.url).await;

    assert_eq!(ids(&page(&app, "").await), [waiting]);
    let everything = page(&app, "?include_resolved=true").await;
    assert_eq!(ids(&everything), [dismissed, waiting]);
    let letter = &everything["dead_letters"][0];
    assert_eq!(letter["resolution"], "dismissed");
    assert_eq!(
        letter["resolution_reason"],
        "the corrected order came by mail, \"<b>\""
    );
    let resolved_at =
        chrono::DateTime::parse_from_rfc3339(letter["resolved_at"].as_str().expect("a time"));
    assert_eq!(resolved_at.unwrap(), stored.resolved_at.unwrap());
    let unresolved = &everything["dead_letters"][1];
    for field in ["resolved_at", "resolution", "resolution_reason"] {
        assert_eq!(unresolved[field], Value::Null, "{field}");
    }
}

#[tokio::test]
async fn the_dead_letter_listing_needs_only_read_access_to_the_database() {
    let db = TestDb::new().await;
    let letter = insert_dead_letter(&db.pool, 1, b"{", "malformed_json").await;
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
    let app = spawn_with_token(&url).await;

    assert_eq!(ids(&page(&app, "").await), [letter]);
}

#[tokio::test]
async fn the_openapi_document_describes_the_bearer_scheme_of_the_dead_letter_listing() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db.url).await;

    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();

    let scheme = &spec["components"]["securitySchemes"]["admin_token"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    let operation = &spec["paths"]["/dead-letters"]["get"];
    assert_eq!(
        operation["security"],
        serde_json::json!([{"admin_token": []}])
    );
    for status in ["200", "400", "401", "404"] {
        assert!(operation["responses"][status].is_object(), "{status}");
    }
    let unauthorized = &operation["responses"]["401"];
    assert!(
        unauthorized["headers"]["WWW-AUTHENTICATE"].is_object(),
        "{unauthorized}"
    );
}
