//! The api's metrics, served at `/metrics` in the OpenMetrics text format (which Prometheus reads).
//!
//! Every metric is an atomic: a request costs a clock read, one label lookup in the request
//! counter (a read lock inside `prometheus-client`, taken for a hash lookup) and a few atomic adds.
//! The route label is the route's template (`/api/v1/orders/{order_uid}`), never the raw path,
//! so that a scan of random ids cannot create a series per id.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Middleware, PathPattern, Request, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// The route label of a request that matched no route.
const UNMATCHED: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: Histogram,
    pub cache_orders: Gauge,
    pub cache_watermark: Gauge,
    pub cache_lag: Gauge,
    pub catch_ups: Counter,
    pub listener_reconnects: Counter,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("api");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template and status code",
            requests.clone(),
        );
        // Most answers are a cache lookup: 50 µs to about 1.6 s, doubling.
        let request_duration = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register_with_unit(
            "http_request_duration",
            "Time from the request to the response head",
            Unit::Seconds,
            request_duration.clone(),
        );
        let cache_orders = Gauge::default();
        registry.register(
            "orders_cache_size_orders",
            "Orders held in the cache",
            cache_orders.clone(),
        );
        let cache_watermark = Gauge::default();
        registry.register(
            "orders_cache_watermark_seq",
            "The highest seq applied to the cache",
            cache_watermark.clone(),
        );
        let cache_lag = Gauge::default();
        registry.register(
            "orders_cache_lag_orders",
            "max(seq) in Postgres minus the cache's watermark, as of the latest catch-up",
            cache_lag.clone(),
        );
        let catch_ups = Counter::default();
        registry.register(
            "orders_cache_catch_ups",
            "Reads of the orders above the watermark that succeeded",
            catch_ups.clone(),
        );
        let listener_reconnects = Counter::default();
        registry.register(
            "orders_listener_reconnects",
            "Times the LISTEN connection was lost and came back",
            listener_reconnects.clone(),
        );
        Metrics {
            registry,
            requests,
            request_duration,
            cache_orders,
            cache_watermark,
            cache_lag,
            catch_ups,
            listener_reconnects,
        }
    }

    /// Every metric, in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        service_kit::http::encode(&self.registry)
    }

    fn record_request(&self, route: String, status: StatusCode, started: Instant) {
        self.requests
            .get_or_create(&RequestLabels {
                route,
                status: status.as_u16(),
            })
            .inc();
        self.request_duration
            .observe(started.elapsed().as_secs_f64());
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Counts and times every request: wrap the whole application with it, outside the layer that
/// turns errors into responses.
pub struct Instrument {
    metrics: Arc<Metrics>,
    templates: Arc<RouteTemplates>,
}

impl Instrument {
    pub fn new(metrics: Arc<Metrics>, templates: RouteTemplates) -> Instrument {
        Instrument {
            metrics,
            templates: Arc::new(templates),
        }
    }
}

impl<E: Endpoint> Middleware<E> for Instrument {
    type Output = InstrumentEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        InstrumentEndpoint {
            inner,
            metrics: self.metrics.clone(),
            templates: self.templates.clone(),
        }
    }
}

pub struct InstrumentEndpoint<E> {
    inner: E,
    metrics: Arc<Metrics>,
    templates: Arc<RouteTemplates>,
}

impl<E: Endpoint> Endpoint for InstrumentEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let started = Instant::now();
        let result = self.inner.call(req).await.map(IntoResponse::into_response);
        let (pattern, status) = match &result {
            Ok(response) => (response.data::<PathPattern>(), response.status()),
            Err(error) => (error.data::<PathPattern>(), error.status()),
        };
        let route = match pattern {
            Some(PathPattern(pattern)) => self.templates.label(pattern),
            None => UNMATCHED.to_string(),
        };
        self.metrics.record_request(route, status, started);
        result
    }
}

/// The route label of each path pattern that poem matches.
///
/// poem-openapi registers an operation's path with its parameters renamed (`/orders/:param0`), so
/// the templates are read back from the OpenAPI document, where they have their real names.
#[derive(Debug, Default)]
pub struct RouteTemplates {
    by_pattern: HashMap<String, String>,
}

impl RouteTemplates {
    /// The templates of `spec` (an OpenAPI document as JSON) for a service nested at `prefix`.
    pub fn from_openapi(spec: &str, prefix: &str) -> RouteTemplates {
        let paths: Vec<String> = serde_json::from_str::<serde_json::Value>(spec)
            .ok()
            .and_then(|doc| {
                doc.get("paths")?
                    .as_object()
                    .map(|paths| paths.keys().cloned().collect())
            })
            .unwrap_or_default();
        let by_pattern = paths
            .iter()
            .map(|path| {
                let template = format!("{prefix}{path}");
                (poem_pattern(&template), template)
            })
            .collect();
        RouteTemplates { by_pattern }
    }

    /// The label of a matched path pattern: its OpenAPI template, or for a route outside the
    /// OpenAPI service the pattern itself with any `:name` written `{name}`.
    fn label(&self, pattern: &str) -> String {
        match self.by_pattern.get(pattern) {
            Some(template) => template.clone(),
            None => pattern
                .split('/')
                .map(|segment| match segment.strip_prefix(':') {
                    Some(name) => format!("{{{name}}}"),
                    None => segment.to_string(),
                })
                .collect::<Vec<_>>()
                .join("/"),
        }
    }
}

/// The pattern poem-openapi gives poem for an OpenAPI path: `{name}` becomes `:param0`, `:param1`…
fn poem_pattern(template: &str) -> String {
    let mut count = 0;
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                count += 1;
                format!(":param{}", count - 1)
            } else {
                segment.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::RouteTemplates;

    #[test]
    fn a_route_label_is_the_template_of_the_openapi_document() {
        let spec = r#"{"paths": {"/orders/{order_uid}": {}, "/a/{x}/b/{y}": {}, "/orders": {}}}"#;
        let templates = RouteTemplates::from_openapi(spec, "/api/v1");
        assert_eq!(
            templates.label("/api/v1/orders/:param0"),
            "/api/v1/orders/{order_uid}"
        );
        assert_eq!(
            templates.label("/api/v1/a/:param0/b/:param1"),
            "/api/v1/a/{x}/b/{y}"
        );
        assert_eq!(templates.label("/api/v1/orders"), "/api/v1/orders");
        assert_eq!(templates.label("/healthz"), "/healthz");
        assert_eq!(templates.label("/files/:name"), "/files/{name}");
    }
}
