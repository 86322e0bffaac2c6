//! The one layer every request passes through, once. On the way in it answers `GET
//! /api/v1/orders/{order_uid}` itself and hands every other request to the routes; on the way out
//! it turns a routing error into a response, sets the headers every response carries, and counts
//! the request.
//!
//! Why the order route is answered here: it is nearly all the traffic, and on its way through
//! poem's router, the nested OpenAPI service and the operation's extractors a request had its path
//! pattern, its URI, its query and its parameter copied into new allocations and a future boxed at
//! each level, which cost more than the lookup and the answer themselves. The answer is the
//! operation's own ([`super::orders::order_response`]), so the bytes are the same; the operation
//! still exists, so the OpenAPI document is the same, and it answers what the front leaves to it:
//! another method (405 with `Allow`), or a path that poem's router would first decode (an id with
//! a percent-escape) or refuse (an empty segment, or more than one).

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;
use poem::error::{MethodNotAllowedError, NotFoundError};
use poem::http::header::HeaderName;
use poem::http::{HeaderValue, Method};
use poem::{Endpoint, IntoResponse, PathPattern, Request, Response};

use super::error::{ApiError, ErrorResponse};
use super::orders::order_response;
use crate::cache::OrderCache;
use crate::metrics::{RequestMeter, RouteId, RouteLabel};

pub struct Front<E> {
    /// Every route, the order route included (for what the front leaves to it).
    routes: E,
    cache: Arc<OrderCache>,
    /// `/api/v1/orders/`: one more path segment is an order id.
    order_prefix: String,
    order_route: RouteId,
    headers: Vec<(HeaderName, HeaderValue)>,
    meter: RequestMeter,
}

impl<E: Endpoint> Front<E> {
    /// `routes` behind the front, which answers `{order_prefix}{order_uid}` from `cache` and counts
    /// it under `order_route`. Every response gets `headers`, overriding any of the same name.
    pub fn new(
        routes: E,
        cache: Arc<OrderCache>,
        order_prefix: String,
        order_route: RouteId,
        headers: Vec<(HeaderName, HeaderValue)>,
        meter: RequestMeter,
    ) -> Front<E> {
        Front {
            routes,
            cache,
            order_prefix,
            order_route,
            headers,
            meter,
        }
    }

    /// The order id of a request that the front answers: a GET or HEAD of one path segment below
    /// the prefix, without a percent-escape (the rule for ids allows none, and poem would decode
    /// it), so that the segment is exactly what the operation would be given.
    fn order_uid<'r>(&self, req: &'r Request) -> Option<&'r str> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return None;
        }
        let uid = req.uri().path().strip_prefix(self.order_prefix.as_str())?;
        let plain = !uid.is_empty() && !uid.bytes().any(|b| b == b'/' || b == b'%');
        plain.then_some(uid)
    }

    /// The operation's answer; for HEAD without the body, as poem answers a HEAD with the GET.
    async fn order(&self, order_uid: &str, head: bool) -> Response {
        let answer = AssertUnwindSafe(order_response(&self.cache, order_uid));
        match answer.catch_unwind().await {
            Ok(mut response) => {
                if head {
                    response.set_body(());
                }
                response
            }
            Err(panic) => on_panic(panic).into_response(),
        }
    }
}

impl<E: Endpoint> Endpoint for Front<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let started = Instant::now();
        let (route, mut response) = match self.order_uid(&req) {
            Some(order_uid) => {
                let head = req.method() == Method::HEAD;
                (
                    RouteLabel::Known(self.order_route),
                    self.order(order_uid, head).await,
                )
            }
            None => {
                let response = match self.routes.call(req).await {
                    Ok(response) => response.into_response(),
                    // Unknown paths and methods: responses too, so that they get the headers.
                    Err(error) => error_response(error),
                };
                let pattern = response.data::<PathPattern>().map(|p| &*p.0);
                (self.meter.route_of(pattern), response)
            }
        };
        let headers = response.headers_mut();
        headers.reserve(self.headers.len());
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        self.meter.record(route, response.status(), started);
        Ok(response)
    }
}

/// A routing error as a response with a JSON body, like every other error. A 405 names the
/// methods that would do in `Allow`, as HTTP requires (RFC 9110, 15.5.6).
fn error_response(error: poem::Error) -> Response {
    if error.is::<MethodNotAllowedError>() {
        ErrorResponse::from(ApiError::MethodNotAllowed).into_response()
    } else if error.is::<NotFoundError>() {
        ErrorResponse::from(ApiError::UnknownPath).into_response()
    } else {
        error.into_response()
    }
}

/// A panic in a handler becomes a 500 whose cause is logged, not shown.
pub fn on_panic(panic: Box<dyn Any + Send>) -> ErrorResponse {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string());
    ApiError::Internal(anyhow::anyhow!("a request handler panicked: {message}")).into()
}

#[cfg(test)]
mod tests {
    use poem::http::Uri;
    use poem::EndpointExt;

    use super::*;
    use crate::metrics::{Metrics, RouteTemplates};

    fn front() -> Front<impl Endpoint> {
        let meter = Metrics::new().request_meter(RouteTemplates::from_openapi(
            r#"{"paths": {"/orders/{order_uid}": {}}}"#,
            "/api/v1",
        ));
        let route = meter.route("/api/v1/orders/{order_uid}").unwrap();
        let routes = poem::endpoint::make_sync(|_| "routes").map_to_response();
        Front::new(
            routes,
            Arc::new(OrderCache::new()),
            "/api/v1/orders/".to_string(),
            route,
            Vec::new(),
            meter,
        )
    }

    fn request(method: Method, uri: &'static str) -> Request {
        Request::builder()
            .method(method)
            .uri(Uri::from_static(uri))
            .finish()
    }

    #[test]
    fn the_front_answers_a_get_or_head_of_one_plain_segment_below_the_orders() {
        let front = front();
        for (method, uri, taken) in [
            (Method::GET, "/api/v1/orders/abc", Some("abc")),
            (Method::HEAD, "/api/v1/orders/abc", Some("abc")),
            (Method::GET, "/api/v1/orders/a.b?limit=3", Some("a.b")),
            (Method::GET, "http://host/api/v1/orders/abc", Some("abc")),
            (Method::POST, "/api/v1/orders/abc", None),
            (Method::OPTIONS, "/api/v1/orders/abc", None),
            (Method::GET, "/api/v1/orders/", None),
            (Method::GET, "/api/v1/orders", None),
            (Method::GET, "/api/v1/orders/a/b", None),
            (Method::GET, "/api/v1/orders/abc/", None),
            (Method::GET, "/api/v1/orders/%61bc", None),
            (Method::GET, "/api/v1/ordersabc", None),
            (Method::GET, "/api/v1/dead-letters", None),
        ] {
            let req = request(method.clone(), uri);
            assert_eq!(front.order_uid(&req), taken, "{method} {uri}");
        }
    }

    #[tokio::test]
    async fn a_head_is_answered_as_the_get_without_its_body() {
        let front = front();
        let get = front.call(request(Method::GET, "/api/v1/orders/abc")).await;
        let head = front
            .call(request(Method::HEAD, "/api/v1/orders/abc"))
            .await;
        let (get, head) = (get.unwrap(), head.unwrap());
        assert_eq!(get.status(), head.status());
        assert_eq!(get.headers(), head.headers());
        assert!(!get.into_body().into_bytes().await.unwrap().is_empty());
        assert!(head.into_body().into_bytes().await.unwrap().is_empty());
    }
}
