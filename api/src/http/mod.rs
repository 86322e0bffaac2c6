//! The HTTP surface: the orders API and its documentation, the probes and the web page.

mod admin;
mod dead_letters;
mod error;
mod health;
mod order_uid;
mod orders;
mod page;
mod reply;
mod served_by;
mod service;

use std::any::Any;
use std::sync::Arc;

use poem::error::MethodNotAllowedError;
use poem::http::{header, HeaderValue};
use poem::middleware::{CatchPanic, SetHeader};
use poem::{get, handler, Endpoint, EndpointExt, Response, Route};
use sqlx::PgPool;

pub use self::admin::AdminToken;
pub use self::error::{ApiError, ErrorBody, ErrorCode, ErrorResponse};
pub use self::page::CONTENT_SECURITY_POLICY;
pub use self::served_by::{header_value as served_by_header, X_SERVED_BY};
pub use self::service::{service as openapi_service, PREFIX};
use crate::cache::OrderCache;
use crate::metrics::{Instrument, Metrics, RouteTemplates};

/// Every route of the api. The orders come from `cache`; the dead letters, for a caller with
/// `admin_token`, from the database through `reads`. Every response names the replica in
/// `X-Served-By` (`served_by`, from [`served_by_header`]) and is counted in `metrics`.
pub fn routes(
    cache: Arc<OrderCache>,
    reads: PgPool,
    admin_token: Option<AdminToken>,
    metrics: Arc<Metrics>,
    served_by: HeaderValue,
) -> impl Endpoint {
    let enabled = admin_token.is_some();
    let api = openapi_service(cache.clone(), reads, admin_token);
    let templates = RouteTemplates::from_openapi(&api.spec(), PREFIX);
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    let mut route = Route::new()
        .nest(PREFIX, api)
        .at("/openapi.json", get(spec))
        .nest("/docs", docs)
        .at("/healthz", service_kit::http::healthz())
        .at("/readyz", get(health::readyz))
        // Outside the OpenAPI service, like the probes: it is for the operator's scraper.
        .at("/metrics", {
            let metrics = metrics.clone();
            service_kit::http::metrics(move || metrics.encode())
        });
    if !enabled {
        // The operation checks credentials before its body runs: without this route a request
        // with no token would be told 401 by a listing that no token can open. It is off: 404.
        route = route.at(format!("{PREFIX}{}", dead_letters::PATH), disabled);
    }
    page::mount(route)
        .data(cache)
        .data(metrics.clone())
        .with(CatchPanic::new().with_handler(on_panic))
        // Unknown paths and methods are errors until here: make them responses, so that they get
        // the headers below too.
        .catch_all_error(|error| async move { error_response(error) })
        .with(
            SetHeader::new()
                .overriding(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
                .overriding(header::REFERRER_POLICY, "no-referrer")
                .overriding(X_SERVED_BY, served_by),
        )
        .with(Instrument::new(metrics, templates))
}

/// What every route of the api answers to: each is a GET (poem answers HEAD with it too).
pub const ALLOWED_METHODS: &str = "GET, HEAD";

/// A routing error as a response. A 405 names the methods that would do in `Allow`, as HTTP
/// requires (RFC 9110, 15.5.6).
fn error_response(error: poem::Error) -> Response {
    let method_not_allowed = error.is::<MethodNotAllowedError>();
    let mut response = error.into_response();
    if method_not_allowed {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
    }
    response
}

/// What an admin operation answers while no admin token is configured.
#[handler]
fn disabled() -> ErrorResponse {
    ApiError::Disabled.into()
}

/// A panic in a handler becomes a 500 whose cause is logged, not shown.
fn on_panic(panic: Box<dyn Any + Send>) -> ErrorResponse {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string());
    ApiError::Internal(anyhow::anyhow!("a request handler panicked: {message}")).into()
}
