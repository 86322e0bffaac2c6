//! The HTTP surface: the orders API and its documentation, the probes and the web page.

mod error;
mod health;
mod orders;
mod page;
mod reply;

use std::any::Any;
use std::sync::Arc;

use poem::http::header;
use poem::middleware::{CatchPanic, SetHeader};
use poem::{get, Endpoint, EndpointExt, Route};

pub use self::error::{ApiError, ErrorBody, ErrorCode, ErrorResponse};
pub use self::orders::{service as openapi_service, PREFIX};
pub use self::page::CONTENT_SECURITY_POLICY;
use crate::cache::OrderCache;

/// Every route of the api.
pub fn routes(cache: Arc<OrderCache>) -> impl Endpoint {
    let api = openapi_service(cache.clone());
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    let route = Route::new()
        .nest(PREFIX, api)
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .at("/healthz", get(health::healthz))
        .at("/readyz", get(health::readyz));
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

/// A panic in a handler becomes a 500 whose cause is logged, not shown.
fn on_panic(panic: Box<dyn Any + Send>) -> ErrorResponse {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string());
    ApiError::Internal(anyhow::anyhow!("a request handler panicked: {message}")).into()
}
