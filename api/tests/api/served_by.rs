//! `X-Served-By`: every response names the replica that served it.

use reqwest::StatusCode;
use testkit::TestDb;

use crate::helpers::{settings, TestApp};

fn served_by(response: &reqwest::Response) -> &str {
    response
        .headers()
        .get("x-served-by")
        .expect("an X-Served-By header")
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn every_response_names_the_replica_that_served_it() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db.url).await;

    for (path, status) in [
        ("/healthz", StatusCode::OK),
        ("/", StatusCode::OK),
        ("/openapi.json", StatusCode::OK),
        ("/metrics", StatusCode::OK),
        ("/api/v1/orders/nothing-here", StatusCode::NOT_FOUND),
        ("/api/v1/orders/not%20an%20id", StatusCode::BAD_REQUEST),
        ("/no/such/page", StatusCode::NOT_FOUND),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), status, "{path}");
        assert_eq!(served_by(&response), "test-replica", "{path}");
    }
}

#[tokio::test]
async fn two_replicas_answer_with_their_own_names() {
    let db = TestDb::new().await;
    let mut one = settings(&db.url);
    one.replica_name = Some("replica-one".to_string());
    let mut two = settings(&db.url);
    two.replica_name = Some("replica-two".to_string());
    let one = TestApp::start(one).await;
    let two = TestApp::start(two).await;
    one.wait_until_ready().await;
    two.wait_until_ready().await;

    for _ in 0..3 {
        assert_eq!(served_by(&one.get("/readyz").await), "replica-one");
        assert_eq!(served_by(&two.get("/readyz").await), "replica-two");
    }
}

#[tokio::test]
async fn a_replica_name_that_is_not_visible_ascii_is_made_safe_for_the_header() {
    let db = TestDb::new().await;
    let mut odd = settings(&db.url);
    odd.replica_name = Some("api 1\tzone-é".to_string());
    let app = TestApp::start(odd).await;

    let response = app.get("/healthz").await;

    assert_eq!(served_by(&response), "api_1_zone-_");
}
