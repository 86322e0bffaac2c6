//! The web page: a static HTML page, its script, its style sheet and its icon, all served from the
//! binary.
//!
//! The script and the style sheet are files of their own, not inline, so that the page's
//! Content-Security-Policy can forbid every inline script and style (`'self'` only) without nonces.

use poem::http::header;
use poem::middleware::SetHeader;
use poem::web::Html;
use poem::{get, handler, EndpointExt, IntoResponse, Response, Route};

const INDEX_HTML: &str = include_str!("../page/index.html");
const APP_JS: &str = include_str!("../page/app.js");
const APP_CSS: &str = include_str!("../page/app.css");
const FAVICON_SVG: &str = include_str!("../page/favicon.svg");

/// Nothing but this origin's script, style sheet and API; no framing, no plugins, no inline code.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'";

/// Adds `/`, `/app.js`, `/app.css` and `/favicon.svg` to `route`.
pub fn mount(route: Route) -> Route {
    route
        .at("/", get(index).with(headers()))
        .at("/app.js", get(script).with(headers()))
        .at("/app.css", get(style).with(headers()))
        // Named by the page, so that browsers do not ask for a `/favicon.ico` that is not there.
        .at("/favicon.svg", get(icon).with(headers()))
}

fn headers() -> SetHeader {
    SetHeader::new()
        .overriding(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY)
        // Small files that change with each release: revalidate rather than serve a stale page.
        .overriding(header::CACHE_CONTROL, "no-cache")
}

#[handler]
fn index() -> Html<&'static str> {
    Html(INDEX_HTML)
}

#[handler]
fn script() -> Response {
    APP_JS
        .with_content_type("text/javascript; charset=utf-8")
        .into_response()
}

#[handler]
fn style() -> Response {
    APP_CSS
        .with_content_type("text/css; charset=utf-8")
        .into_response()
}

#[handler]
fn icon() -> Response {
    FAVICON_SVG
        .with_content_type("image/svg+xml")
        .into_response()
}
