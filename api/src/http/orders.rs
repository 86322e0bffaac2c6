//! The orders: one by id, and the ids of the latest ones, served from the cache (which, when it is
//! bounded, reads the orders it does not hold from the database).

use std::sync::Arc;

use bytes::Bytes;
use poem::{IntoResponse, Response};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::error::ApiError;
use super::order_uid::OrderUidParam;
use super::reply::{Outcome, Reply};
use crate::cache::{OrderCache, Unavailable, RECENT_CAPACITY};

#[derive(Tags)]
enum Tag {
    /// Stored orders, by id.
    Orders,
}

pub struct OrdersApi {
    pub cache: Arc<OrderCache>,
}

/// The template of `get_order`, under the API's prefix, as the OpenAPI document writes it. The
/// operation's attribute below must name the same path (attributes take literals only): the api
/// refuses to start when the document has no such path.
pub const ORDER_BY_ID: &str = "/orders/{order_uid}";

#[derive(ApiResponse)]
pub enum OrderFound {
    /// The order, byte for byte as it was stored.
    #[oai(status = 200, actual_type = "Json<orders::Order>")]
    Ok(Binary<Bytes>),
}

impl Outcome for OrderFound {
    const ERROR_STATUSES: &'static [u16] = &[400, 404, 500, 503];
}

#[derive(ApiResponse)]
pub enum RecentOrdersFound {
    /// The ids of the latest orders, newest first.
    #[oai(status = 200)]
    Ok(Json<RecentOrders>),
}

impl Outcome for RecentOrdersFound {
    const ERROR_STATUSES: &'static [u16] = &[400, 500, 503];
}

/// The latest orders.
#[derive(Object)]
pub struct RecentOrders {
    /// Order ids, newest first.
    pub order_uids: Vec<String>,
}

fn default_limit() -> u32 {
    20
}

// The `maximum` of `limit` below: attributes take literals only.
const _: () = assert!(RECENT_CAPACITY == 100);

#[OpenApi(tag = "Tag::Orders")]
impl OrdersApi {
    /// Get an order
    ///
    /// The order with this id, as it was stored: the JSON that was published, in canonical form.
    #[oai(
        path = "/orders/:order_uid",
        method = "get",
        operation_id = "get_order"
    )]
    async fn get_order(
        &self,
        /// The order's id: 1 to 64 characters of `A-Z`, `a-z`, `0-9`, `_` and `-`.
        order_uid: Path<OrderUidParam>,
    ) -> Reply<OrderFound> {
        find(&self.cache, order_uid.0.as_str()).await.into()
    }

    /// List the latest orders
    ///
    /// The ids of the most recently stored orders, newest first.
    #[oai(path = "/orders", method = "get", operation_id = "list_recent_orders")]
    async fn list_recent_orders(
        &self,
        /// How many ids to return, at most.
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<u32>,
    ) -> Reply<RecentOrdersFound> {
        self.recent(limit.0).into()
    }
}

/// What `get_order` answers for `order_uid`, built as the operation builds it. The front answers
/// the order route with it without the OpenAPI layer (see [`super::front`]).
pub async fn order_response(cache: &OrderCache, order_uid: &str) -> Response {
    Reply::from(find(cache, order_uid).await).into_response()
}

async fn find(cache: &OrderCache, order_uid: &str) -> Result<OrderFound, ApiError> {
    orders::check_order_uid(order_uid).map_err(|rejection| ApiError::InvalidOrderUid {
        reason: rejection.reason,
    })?;
    if !cache.is_ready() {
        return Err(ApiError::NotReady);
    }
    match cache.find(order_uid).await {
        Ok(Some(document)) => Ok(OrderFound::Ok(Binary(document))),
        Ok(None) => Err(ApiError::OrderNotFound {
            order_uid: order_uid.to_string(),
        }),
        Err(Unavailable) => Err(ApiError::DatabaseUnavailable {
            order_uid: order_uid.to_string(),
        }),
    }
}

impl OrdersApi {
    fn recent(&self, limit: u32) -> Result<RecentOrdersFound, ApiError> {
        if !self.cache.is_ready() {
            return Err(ApiError::NotReady);
        }
        let limit = usize::try_from(limit).unwrap_or(RECENT_CAPACITY);
        Ok(RecentOrdersFound::Ok(Json(RecentOrders {
            order_uids: self.cache.recent(limit),
        })))
    }
}
