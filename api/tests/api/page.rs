//! The web page and its assets: what they load, and that data never becomes HTML.

use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use reqwest::StatusCode;

use crate::helpers::{settings, TestApp};

const NO_DATABASE: &str = "postgres://nobody@127.0.0.1:1/nothing";

fn header<'a>(response: &'a reqwest::Response, name: &reqwest::header::HeaderName) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn the_page_is_html_with_a_strict_content_security_policy() {
    let app = TestApp::start(settings(NO_DATABASE)).await;

    let response = app.get("/").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(&response, &CONTENT_TYPE).starts_with("text/html"));
    assert_eq!(header(&response, &X_CONTENT_TYPE_OPTIONS), "nosniff");
    let csp = header(&response, &CONTENT_SECURITY_POLICY).to_string();
    assert_eq!(csp, api::http::CONTENT_SECURITY_POLICY);
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
    ] {
        assert!(csp.contains(directive), "{csp} lacks {directive}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"<script src="/app.js""#), "{html}");
    assert!(html.contains(r#"href="/app.css""#), "{html}");
}

#[tokio::test]
async fn the_page_and_its_assets_load_nothing_from_elsewhere_and_have_no_inline_code() {
    let app = TestApp::start(settings(NO_DATABASE)).await;

    for (path, content_type) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(
            header(&response, &CONTENT_TYPE).starts_with(content_type),
            "{path}"
        );
        assert_eq!(
            header(&response, &X_CONTENT_TYPE_OPTIONS),
            "nosniff",
            "{path}"
        );
        let text = response.text().await.unwrap();
        for external in [
            "http:",
            "https:",
            "src=\"//",
            "href=\"//",
            "url(",
            "@import",
        ] {
            assert!(!text.contains(external), "{path} contains {external}");
        }
        if path == "/" {
            assert!(!text.contains("<style"), "inline style in the page");
            assert!(!text.contains("<script>"), "inline script in the page");
            assert!(
                !has_event_handler_attribute(&text),
                "inline event handler in the page"
            );
        }
    }
}

#[tokio::test]
async fn the_page_script_never_turns_data_into_html() {
    let app = TestApp::start(settings(NO_DATABASE)).await;

    let script = app.get("/app.js").await.text().await.unwrap();

    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "createContextualFragment",
        "DOMParser",
        "eval(",
        "new Function",
        "javascript:",
    ] {
        assert!(!script.contains(sink), "app.js uses {sink}");
    }
    assert!(
        script.contains("textContent"),
        "app.js writes text with textContent"
    );
}

#[tokio::test]
async fn the_page_names_its_icon_which_is_an_svg_under_the_same_policy() {
    let app = TestApp::start(settings(NO_DATABASE)).await;

    let html = app.get("/").await.text().await.unwrap();
    let response = app.get("/favicon.svg").await;

    assert!(
        html.contains(r#"<link rel="icon" href="/favicon.svg""#),
        "{html}"
    );
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, &CONTENT_TYPE), "image/svg+xml");
    assert_eq!(
        header(&response, &CONTENT_SECURITY_POLICY),
        api::http::CONTENT_SECURITY_POLICY
    );
    let svg = response.text().await.unwrap();
    assert!(svg.starts_with("<svg"), "{svg}");
    assert!(!svg.contains("<script"), "{svg}");
}

#[tokio::test]
async fn every_response_tells_browsers_not_to_sniff_its_type() {
    let app = TestApp::start(settings(NO_DATABASE)).await;

    for path in [
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/api/v1/orders/x",
        "/no/such/page",
    ] {
        let response = app.get(path).await;
        assert_eq!(
            header(&response, &X_CONTENT_TYPE_OPTIONS),
            "nosniff",
            "{path}"
        );
    }
}

/// Whether `html` has an attribute such as `onclick=`.
fn has_event_handler_attribute(html: &str) -> bool {
    html.match_indices(" on").any(|(at, _)| {
        let name: String = html[at + 3..]
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        !name.is_empty() && html[at + 3 + name.len()..].trim_start().starts_with('=')
    })
}
