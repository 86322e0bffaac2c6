//! The HTTP surface: the orders API and its documentation, the probes and the web page.

mod admin;
mod dead_letters;
mod error;
mod events;
mod front;
mod health;
mod order_uid;
mod orders;
mod page;
mod reply;
mod served_by;
mod service;

use std::sync::Arc;

use poem::http::{header, HeaderValue};
use poem::middleware::CatchPanic;
use poem::{get, handler, Endpoint, EndpointExt, Route};
use sqlx::PgPool;
use tokio::sync::watch;

pub use self::admin::AdminToken;
pub use self::error::{ApiError, ErrorBody, ErrorCode, ErrorResponse};
use self::front::{on_panic, Front};
use self::orders::ORDER_BY_ID;
pub use self::page::CONTENT_SECURITY_POLICY;
pub use self::served_by::{header_value as served_by_header, X_SERVED_BY};
pub use self::service::{service as openapi_service, PREFIX};
use crate::cache::OrderCache;
use crate::metrics::{Metrics, RouteTemplates};

/// Every route of the api. The orders come from `cache`; the dead letters, for a caller with
/// `admin_token`, from the database through `reads`. Every response names the replica in
/// `X-Served-By` (`served_by`, from [`served_by_header`]) and is counted in `metrics`. The event
/// streams end when `closing` becomes true.
pub fn routes(
    cache: Arc<OrderCache>,
    reads: PgPool,
    admin_token: Option<AdminToken>,
    metrics: Arc<Metrics>,
    served_by: HeaderValue,
    closing: watch::Receiver<bool>,
) -> impl Endpoint {
    let enabled = admin_token.is_some();
    let api = openapi_service(cache.clone(), reads, admin_token, closing);
    let meter = metrics.request_meter(RouteTemplates::from_openapi(&api.spec(), PREFIX));
    let order_route = meter
        .route(&format!("{PREFIX}{ORDER_BY_ID}"))
        .expect("the OpenAPI document has the order route");
    let order_prefix = format!("{PREFIX}{}", ORDER_BY_ID.trim_end_matches("{order_uid}"));
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
    let routes = page::mount(route)
        .data(cache.clone())
        .with(CatchPanic::new().with_handler(on_panic));
    let headers = vec![
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::HeaderName::from_static(X_SERVED_BY), served_by),
    ];
    Front::new(routes, cache, order_prefix, order_route, headers, meter)
}

/// What every route of the api answers to: each is a GET (poem answers HEAD with it too).
pub const ALLOWED_METHODS: &str = "GET, HEAD";

/// What an admin operation answers while no admin token is configured.
#[handler]
fn disabled() -> ErrorResponse {
    ApiError::Disabled.into()
}
