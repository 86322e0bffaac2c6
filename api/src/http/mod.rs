//! The HTTP surface: the orders API and its documentation, the probes and the web page.

mod admin;
mod dead_letters;
mod error;
mod health;
mod orders;
mod page;
mod reply;
mod service;

use std::any::Any;
use std::sync::Arc;

use poem::http::header;
use poem::middleware::{CatchPanic, SetHeader};
use poem::{get, handler, Endpoint, EndpointExt, Route};
use sqlx::PgPool;

pub use self::admin::AdminToken;
pub use self::error::{ApiError, ErrorBody, ErrorCode, ErrorResponse};
pub use self::page::CONTENT_SECURITY_POLICY;
pub use self::service::{service as openapi_service, PREFIX};
use crate::cache::OrderCache;

/// Every route of the api. The orders come from `cache`; the dead letters, for a caller with
/// `admin_token`, from the database through `reads`.
pub fn routes(
    cache: Arc<OrderCache>,
    reads: PgPool,
    admin_token: Option<AdminToken>,
) -> impl Endpoint {
    let enabled = admin_token.is_some();
    let api = openapi_service(cache.clone(), reads, admin_token);
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    let mut route = Route::new()
        .nest(PREFIX, api)
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .at("/healthz", get(health::healthz))
        .at("/readyz", get(health::readyz));
    if !enabled {
        // The operation checks credentials before its body runs: without this route a request
        // with no token would be told 401 by a listing that no token can open. It is off: 404.
        route = route.at(format!("{PREFIX}{}", dead_letters::PATH), disabled);
    }
    page::mount(route)
        .data(cache)
        .with(CatchPanic::new().with_handler(on_panic))
        // Unknown paths and methods are errors until here: make them responses, so that they get
        // the headers below too.
        .catch_all_error(|error| async move { error.into_response() })
        .with(
            SetHeader::new()
                .overriding(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
                .overriding(header::REFERRER_POLICY, "no-referrer"),
        )
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
