//! The OpenAPI document served by the api, against the snapshot in `openapi/`.

use std::path::PathBuf;

use reqwest::StatusCode;

use crate::helpers::{settings, TestApp};

/// The api needs no database to describe itself: this address refuses connections.
const NO_DATABASE: &str = "postgres://nobody@127.0.0.1:1/nothing";

fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json")
}

#[tokio::test]
async fn the_served_openapi_document_matches_the_snapshot_in_the_repository() {
    let app = TestApp::start(settings(NO_DATABASE)).await;

    let response = app.get("/openapi.json").await;

    assert_eq!(response.status(), StatusCode::OK);
    let served = format!("{}\n", response.text().await.unwrap().trim_end());
    let path = snapshot_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &served).expect("write the OpenAPI snapshot");
        return;
    }
    let snapshot = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        snapshot == served,
        "the OpenAPI document served by the api differs from openapi/openapi.json.\n\
         If the change is intended, update the snapshot and review the diff:\n\
         \n    UPDATE_OPENAPI=1 cargo test -p api --test api openapi\n"
    );
}

#[tokio::test]
async fn the_openapi_document_describes_the_order_schema_and_the_errors() {
    let app = TestApp::start(settings(NO_DATABASE)).await;

    let spec: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();

    let get_order = &spec["paths"]["/orders/{order_uid}"]["get"];
    let ok = &get_order["responses"]["200"]["content"];
    let (content_type, media) = ok.as_object().unwrap().iter().next().unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert_eq!(media["schema"]["$ref"], "#/components/schemas/Order");
    for status in ["400", "404", "503"] {
        assert!(
            get_order["responses"][status].is_object(),
            "{status} is documented"
        );
    }
    assert_eq!(spec["servers"][0]["url"], "/api/v1");
}

#[tokio::test]
async fn the_swagger_ui_is_served_at_docs() {
    let app = TestApp::start(settings(NO_DATABASE)).await;

    let response = app.get("/docs").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("SwaggerUIBundle"));
}

#[tokio::test]
async fn every_operation_is_a_get_as_the_allow_header_of_a_405_says() {
    let app = TestApp::start(settings(NO_DATABASE)).await;

    let spec: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();

    for (path, item) in spec["paths"].as_object().unwrap() {
        let methods: Vec<&String> = item.as_object().unwrap().keys().collect();
        assert_eq!(
            methods,
            ["get"],
            "{path}: update api::http::ALLOWED_METHODS"
        );
    }
    assert_eq!(api::http::ALLOWED_METHODS, "GET, HEAD");
}

#[tokio::test]
async fn a_method_that_no_route_answers_is_told_405_with_the_methods_that_would_do() {
    let app = TestApp::start(settings(NO_DATABASE)).await;

    for path in [
        "/api/v1/orders",
        "/api/v1/orders/some-id",
        "/",
        "/openapi.json",
    ] {
        let response = app
            .client
            .delete(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(response.headers()["allow"], "GET, HEAD", "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json; charset=utf-8",
            "{path}"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "method_not_allowed", "{path}");
        assert_eq!(body["error"], "this path answers only GET, HEAD", "{path}");
    }
}

#[tokio::test]
async fn a_path_that_no_route_has_is_a_404_with_a_json_error_body() {
    let app = TestApp::start(settings(NO_DATABASE)).await;

    for path in [
        "/nothing",
        "/api/v2/orders/x",
        "/api/v1/order/x",
        "/api/v1/orders/a/b",
    ] {
        let response = app.get(path).await;

        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json; charset=utf-8",
            "{path}"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "not_found", "{path}");
    }
}

#[tokio::test]
async fn the_document_lists_the_routing_errors_among_the_error_codes() {
    let app = TestApp::start(settings(NO_DATABASE)).await;

    let spec: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();

    let codes = &spec["components"]["schemas"]["ErrorCode"]["enum"];
    for code in ["not_found", "method_not_allowed"] {
        assert!(
            codes.as_array().unwrap().iter().any(|c| c == code),
            "{code} in {codes}"
        );
    }
    let responses = &spec["paths"]["/orders/{order_uid}"]["get"]["responses"];
    let headers = responses["405"]["headers"].as_object();
    assert!(
        headers.is_some_and(|h| h.keys().any(|name| name.eq_ignore_ascii_case("allow"))),
        "{responses}"
    );
}

#[tokio::test]
async fn the_order_id_parameter_is_documented_with_the_rule_for_order_ids() {
    let app = TestApp::start(settings(NO_DATABASE)).await;

    let spec: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();

    let parameter = &spec["paths"]["/orders/{order_uid}"]["get"]["parameters"][0];
    assert_eq!(parameter["name"], "order_uid");
    let schema = &parameter["schema"];
    assert_eq!(schema["type"], "string");
    assert_eq!(schema["pattern"], "^[A-Za-z0-9_-]+$");
    assert_eq!(schema["minLength"], 1);
    assert_eq!(schema["maxLength"], orders::validate::MAX_ORDER_UID_CHARS);
}

#[tokio::test]
async fn the_order_schema_states_the_rule_for_order_ids_too() {
    let app = TestApp::start(settings(NO_DATABASE)).await;

    let spec: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();

    let parameter = &spec["paths"]["/orders/{order_uid}"]["get"]["parameters"][0]["schema"];
    let field = &spec["components"]["schemas"]["Order"]["properties"]["order_uid"];
    for rule in ["pattern", "minLength", "maxLength"] {
        assert_eq!(
            field[rule], parameter[rule],
            "{rule} of Order.order_uid: {field}"
        );
    }
}
