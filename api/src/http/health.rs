//! Probes for the orchestrator: is the process alive, is it ready to serve.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{handler, IntoResponse};
use serde::Serialize;

use crate::cache::OrderCache;

#[derive(Serialize)]
struct Status {
    status: &'static str,
}

/// 200 as long as the process answers.
#[handler]
pub fn healthz() -> impl IntoResponse {
    Json(Status { status: "alive" })
}

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
