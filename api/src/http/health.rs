//! The readiness probe: is the api ready to serve. The liveness probe, `/healthz`, is every
//! process's ([`service_kit::http::healthz`]).

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{handler, IntoResponse};
use service_kit::http::Status;

use crate::cache::OrderCache;

/// 200 once the cache holds every order stored before the start, 503 until then.
#[handler]
pub fn readyz(cache: Data<&Arc<OrderCache>>) -> impl IntoResponse {
    if cache.is_ready() {
        Json(Status { status: "ready" }).with_status(StatusCode::OK)
    } else {
        Json(Status {
            status: "loading_orders",
        })
        .with_status(StatusCode::SERVICE_UNAVAILABLE)
    }
}
