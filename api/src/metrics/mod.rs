//! The api's metrics, served at `/metrics` in the OpenMetrics text format (which Prometheus reads).
//!
//! Every metric is an atomic. What every request costs is in [`requests`]: its counter and its
//! duration, for an index and a few atomic adds on the hot route.

mod cache;
mod requests;

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use service_kit::http::guard::ConnectionMetrics;

pub use self::cache::CacheMetrics;
use self::requests::RequestLabels;
pub use self::requests::{RequestMeter, RouteId, RouteLabel, RouteTemplates};

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: Histogram,
    pub cache_orders: Gauge,
    pub cache_watermark: Gauge,
    pub cache_lag: Gauge,
    pub catch_ups: Counter,
    pub listener_reconnects: Counter,
    /// The bounded cache's own, cloned into it.
    pub cache: CacheMetrics,
    pub committed_seq: Gauge,
    pub standby_lag: Gauge,
    pub standby_lag_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub standby_fallbacks: Counter,
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
        let committed_seq = Gauge::default();
        registry.register(
            "orders_committed_seq",
            "The highest seq the primary has committed, as its notifications (and a read at each \
             LISTEN) tell",
            committed_seq.clone(),
        );
        let standby_lag = Gauge::default();
        registry.register(
            "orders_standby_lag_seq",
            "How far, in seq, the orders read from the standby were behind the primary's latest \
             commit, as of the latest catch-up (0 without a standby)",
            standby_lag.clone(),
        );
        let standby_lag_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register_with_unit(
            "orders_standby_lag",
            "How long the standby has been behind the primary's latest commit, as of the latest \
             catch-up (0 when level)",
            Unit::Seconds,
            standby_lag_seconds.clone(),
        );
        let standby_fallbacks = Counter::default();
        registry.register(
            "orders_standby_fallbacks",
            "Reads of orders that went to the primary because the standby failed",
            standby_fallbacks.clone(),
        );
        let cache = CacheMetrics::default();
        cache.register(&mut registry);
        Metrics {
            registry,
            requests,
            request_duration,
            cache_orders,
            cache_watermark,
            cache_lag,
            catch_ups,
            listener_reconnects,
            cache,
            committed_seq,
            standby_lag,
            standby_lag_seconds,
            standby_fallbacks,
        }
    }

    /// With the HTTP listener's connection metrics (see [`service_kit::http::guard`]).
    pub fn with_connections(mut self, connections: &Arc<ConnectionMetrics>) -> Metrics {
        connections.register(&mut self.registry);
        self
    }

    /// Every metric, in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        service_kit::http::encode(&self.registry)
    }

    /// What counts and times the requests of `routes`, into `api_http_requests_total` and
    /// `api_http_request_duration_seconds`.
    pub fn request_meter(&self, routes: RouteTemplates) -> RequestMeter {
        RequestMeter::new(self.requests.clone(), self.request_duration.clone(), routes)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
