//! An order id in the path means the same with its characters percent-encoded or not (RFC 3986,
//! 6.2.2.2): the answers are the same, byte for byte and header for header, for every outcome of
//! `GET /api/v1/orders/{order_uid}` and for HEAD. The plain form is the one clients send, and the
//! api answers it on its shortest path; the encoded one goes through the general router and the
//! OpenAPI operation.

use reqwest::{Method, StatusCode};
use testkit::TestDb;

use crate::helpers::{order_with_uid, settings, store, TestApp};

/// A Postgres that refuses connections: the api never becomes ready.
const NO_DATABASE: &str = "postgres://nobody@127.0.0.1:1/nothing";

/// `uid` with its first character percent-encoded, so that it names the same id.
fn encoded(uid: &str) -> String {
    let first = uid.chars().next().expect("a non-empty id");
    let mut bytes = [0; 4];
    let escaped: String = first
        .encode_utf8(&mut bytes)
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect();
    format!("{escaped}{}", &uid[first.len_utf8()..])
}

/// Status, headers (but `date`, which moves) and body.
async fn answer(app: &TestApp, method: Method, path: &str) -> (StatusCode, Vec<String>, Vec<u8>) {
    let response = app
        .client
        .request(method.clone(), format!("{}{path}", app.address))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = response.status();
    let headers = response
        .headers()
        .iter()
        .filter(|(name, _)| *name != "date")
        .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap()))
        .collect();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

/// Asks for each id in its plain and its encoded form, with GET and HEAD, and checks that both
/// forms are answered the same and with `status`; `query` follows the path.
async fn assert_same_answers(app: &TestApp, cases: &[(&str, StatusCode)], query: &str) {
    for &(uid, status) in cases {
        for method in [Method::GET, Method::HEAD] {
            let plain = format!("/api/v1/orders/{uid}{query}");
            let escaped = format!("/api/v1/orders/{}{query}", encoded(uid));
            let first = answer(app, method.clone(), &plain).await;
            let second = answer(app, method.clone(), &escaped).await;
            assert_eq!(first.0, status, "{method} {plain}");
            assert_eq!(first, second, "{method} {plain} and {escaped}");
            if method == Method::HEAD {
                assert!(first.2.is_empty(), "HEAD {plain} has no body");
            }
        }
    }
}

#[tokio::test]
async fn an_order_id_is_answered_the_same_with_its_path_percent_encoded_or_not() {
    let db = TestDb::new().await;
    store(
        &db.pool,
        &[order_with_uid("stored-1"), order_with_uid("Z_9")],
    )
    .await;
    let app = TestApp::spawn(&db.url).await;
    let too_long = "x".repeat(65);
    let longest = "y".repeat(64);
    // Every character a path segment may hold unescaped that the rule for ids refuses (but `.`
    // alone and `..`, which the client resolves away before sending).
    let cases = [
        ("stored-1", StatusCode::OK),
        ("Z_9", StatusCode::OK),
        ("not-stored", StatusCode::NOT_FOUND),
        (longest.as_str(), StatusCode::NOT_FOUND),
        (too_long.as_str(), StatusCode::BAD_REQUEST),
        ("a.b", StatusCode::BAD_REQUEST),
        ("a~b", StatusCode::BAD_REQUEST),
        ("a:b", StatusCode::BAD_REQUEST),
        ("a;b=c", StatusCode::BAD_REQUEST),
        ("a@b!c*", StatusCode::BAD_REQUEST),
        ("a'b(c)", StatusCode::BAD_REQUEST),
        ("a+b,c$", StatusCode::BAD_REQUEST),
    ];

    assert_same_answers(&app, &cases, "").await;
    assert_same_answers(&app, &cases[..3], "?limit=5&x").await;
}

#[tokio::test]
async fn an_order_id_is_answered_the_same_with_its_path_percent_encoded_or_not_before_ready() {
    let app = TestApp::start(settings(NO_DATABASE)).await;

    assert_same_answers(
        &app,
        &[
            ("some-order", StatusCode::SERVICE_UNAVAILABLE),
            ("not an id", StatusCode::BAD_REQUEST),
            ("a.b", StatusCode::BAD_REQUEST),
        ],
        "",
    )
    .await;
}

#[tokio::test]
async fn a_request_for_an_order_is_counted_under_the_route_template_whatever_its_encoding() {
    let db = TestDb::new().await;
    store(&db.pool, &[order_with_uid("counted")]).await;
    let app = TestApp::spawn(&db.url).await;

    for path in [
        "counted",
        "%63ounted",
        "not-stored",
        "n%6Ft-stored",
        "a.b",
        "%61.b",
    ] {
        app.get(&format!("/api/v1/orders/{path}")).await;
    }
    let text = app.get("/metrics").await.text().await.unwrap();

    for (status, count) in [(200, 2), (404, 2), (400, 2)] {
        let series = format!(
            "api_http_requests_total{{route=\"/api/v1/orders/{{order_uid}}\",status=\"{status}\"}} {count}"
        );
        assert!(
            text.lines().any(|line| line == series),
            "{series} in\n{text}"
        );
    }
}

#[tokio::test]
async fn other_methods_and_paths_below_the_orders_are_answered_by_the_router_as_before() {
    let app = TestApp::start(settings(NO_DATABASE)).await;

    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let (status, headers, _) = answer(&app, method.clone(), "/api/v1/orders/some-id").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert!(
            headers.contains(&"allow: GET, HEAD".to_string()),
            "{method}: {headers:?}"
        );
        assert!(
            headers.contains(&"x-served-by: test-replica".to_string()),
            "{method}: {headers:?}"
        );
    }
    for path in [
        "/api/v1/orders/a/b",
        "/api/v1/orders/a/",
        "/api/v1/orders//a",
    ] {
        let (status, headers, _) = answer(&app, Method::GET, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            headers.contains(&"x-content-type-options: nosniff".to_string()),
            "{path}: {headers:?}"
        );
    }
}
