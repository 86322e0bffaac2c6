//! The OpenAPI service: every operation under `/api/v1`, its documentation and the spec.

use std::sync::Arc;

use poem_openapi::OpenApiService;
use sqlx::PgPool;
use tokio::sync::watch;

use super::admin::AdminToken;
use super::dead_letters::DeadLettersApi;
use super::events::EventsApi;
use super::orders::OrdersApi;
use crate::cache::OrderCache;

/// Where the API is mounted.
pub const PREFIX: &str = "/api/v1";

const DESCRIPTION: &str = "\
Orders published on the order channel, validated and stored by the ingestor, served from memory.

Every response body is JSON. An order is returned exactly as it was stored. Errors carry a stable \
`code` and an `error` sentence for a person. New orders can be followed as server-sent events.

The messages that were not valid orders (dead letters) are listed for a person with the admin \
token only.";

pub type Operations = (OrdersApi, EventsApi, DeadLettersApi);

/// The OpenAPI service: the operations, their documentation and the spec.
pub fn service(
    cache: Arc<OrderCache>,
    reads: PgPool,
    admin_token: Option<AdminToken>,
    closing: watch::Receiver<bool>,
) -> OpenApiService<Operations, ()> {
    OpenApiService::new(
        (
            OrdersApi {
                cache: cache.clone(),
            },
            EventsApi { cache, closing },
            DeadLettersApi { reads, admin_token },
        ),
        "Order service",
        env!("CARGO_PKG_VERSION"),
    )
    .summary("Look up stored orders by id.")
    .description(DESCRIPTION)
    .server(PREFIX)
}
