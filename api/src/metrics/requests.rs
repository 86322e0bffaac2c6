//! Requests by route template and status, and how long they took: counted for every request, so
//! counted cheaply.
//!
//! The route label is the route's template (`/api/v1/orders/{order_uid}`), never the raw path, so
//! that a scan of random ids cannot create a series per id. The operations of the OpenAPI document
//! and `unmatched` are known at start: each has a [`RouteId`], and each pair of such a route and a
//! status the api answers has a counter slot, filled on first use (so that a series appears in
//! `/metrics` once it has counted a request, as before). A request on such a pair costs an index,
//! an atomic load and atomic adds: no label is built and no map is searched. Any other request (a
//! probe, the web page, an unusual status) is counted by its label in the family, as
//! `prometheus-client` does it: a `String`, a read lock and a hash lookup.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Instant;

use poem::http::StatusCode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

/// The route label of a request that matched no route.
const UNMATCHED: &str = "unmatched";

/// The statuses that have a counter slot on every known route: those the api answers.
const STATUSES: [u16; 7] = [200, 400, 401, 404, 405, 500, 503];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    route: String,
    status: u16,
}

/// A route known at start: `unmatched` or an operation of the OpenAPI document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteId(usize);

impl RouteId {
    /// No route matched the request.
    pub const UNMATCHED: RouteId = RouteId(0);
}

/// The route a request is counted under.
#[derive(Debug, PartialEq, Eq)]
pub enum RouteLabel {
    Known(RouteId),
    /// A route outside the OpenAPI document, by its label.
    Other(String),
}

/// Counts and times requests into `api_http_requests_total` and
/// `api_http_request_duration_seconds` (see [`crate::metrics::Metrics::request_meter`]).
pub struct RequestMeter {
    family: Family<RequestLabels, Counter>,
    duration: Histogram,
    routes: RouteTemplates,
    /// By route id, then by the index of the status in [`STATUSES`]: the family's counter for
    /// that pair (a counter is a shared atomic), once a request has been counted in it.
    counters: Vec<[OnceLock<Counter>; STATUSES.len()]>,
}

impl RequestMeter {
    pub(super) fn new(
        family: Family<RequestLabels, Counter>,
        duration: Histogram,
        routes: RouteTemplates,
    ) -> RequestMeter {
        let counters = routes
            .labels
            .iter()
            .map(|_| std::array::from_fn(|_| OnceLock::new()))
            .collect();
        RequestMeter {
            family,
            duration,
            routes,
            counters,
        }
    }

    /// The id of the route with this template, e.g. `/api/v1/orders/{order_uid}`.
    pub fn route(&self, template: &str) -> Option<RouteId> {
        self.routes.id(template)
    }

    /// The route of a request that poem routed: its matched path pattern, `None` if none matched.
    pub fn route_of(&self, pattern: Option<&str>) -> RouteLabel {
        match pattern {
            Some(pattern) => self.routes.of_pattern(pattern),
            None => RouteLabel::Known(RouteId::UNMATCHED),
        }
    }

    /// Counts a request answered with `status`, started at `started`.
    pub fn record(&self, route: RouteLabel, status: StatusCode, started: Instant) {
        let status = status.as_u16();
        let slot = STATUSES.iter().position(|&known| known == status);
        match (route, slot) {
            (RouteLabel::Known(id), Some(slot)) => self.counters[id.0][slot]
                .get_or_init(|| self.counter(self.routes.label(id).to_string(), status))
                .inc(),
            (RouteLabel::Known(id), None) => self
                .counter(self.routes.label(id).to_string(), status)
                .inc(),
            (RouteLabel::Other(label), _) => self.counter(label, status).inc(),
        };
        self.duration.observe(started.elapsed().as_secs_f64());
    }

    fn counter(&self, route: String, status: u16) -> Counter {
        self.family
            .get_or_create(&RequestLabels { route, status })
            .clone()
    }
}

/// The routes known at start, and the label of each path pattern that poem matches.
///
/// poem-openapi registers an operation's path with its parameters renamed (`/orders/:param0`), so
/// the templates are read back from the OpenAPI document, where they have their real names.
#[derive(Debug)]
pub struct RouteTemplates {
    /// By route id: `unmatched`, then the templates.
    labels: Vec<String>,
    by_pattern: HashMap<String, RouteId>,
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
        let mut labels = vec![UNMATCHED.to_string()];
        let mut by_pattern = HashMap::new();
        for path in paths {
            let template = format!("{prefix}{path}");
            by_pattern.insert(poem_pattern(&template), RouteId(labels.len()));
            labels.push(template);
        }
        RouteTemplates { labels, by_pattern }
    }

    fn id(&self, template: &str) -> Option<RouteId> {
        self.labels.iter().position(|l| l == template).map(RouteId)
    }

    fn label(&self, id: RouteId) -> &str {
        &self.labels[id.0]
    }

    /// The route of a matched path pattern: an operation of the OpenAPI document, or for a route
    /// outside it the pattern itself with any `:name` written `{name}`.
    fn of_pattern(&self, pattern: &str) -> RouteLabel {
        match self.by_pattern.get(pattern) {
            Some(&id) => RouteLabel::Known(id),
            None => RouteLabel::Other(
                pattern
                    .split('/')
                    .map(|segment| match segment.strip_prefix(':') {
                        Some(name) => format!("{{{name}}}"),
                        None => segment.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("/"),
            ),
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
    use super::*;

    const SPEC: &str =
        r#"{"paths": {"/orders/{order_uid}": {}, "/a/{x}/b/{y}": {}, "/orders": {}}}"#;

    fn label(templates: &RouteTemplates, pattern: &str) -> String {
        match templates.of_pattern(pattern) {
            RouteLabel::Known(id) => templates.label(id).to_string(),
            RouteLabel::Other(label) => label,
        }
    }

    #[test]
    fn a_route_label_is_the_template_of_the_openapi_document() {
        let templates = RouteTemplates::from_openapi(SPEC, "/api/v1");
        assert_eq!(
            label(&templates, "/api/v1/orders/:param0"),
            "/api/v1/orders/{order_uid}"
        );
        assert_eq!(
            label(&templates, "/api/v1/a/:param0/b/:param1"),
            "/api/v1/a/{x}/b/{y}"
        );
        assert_eq!(label(&templates, "/api/v1/orders"), "/api/v1/orders");
        assert_eq!(label(&templates, "/healthz"), "/healthz");
        assert_eq!(label(&templates, "/files/:name"), "/files/{name}");
    }

    #[test]
    fn an_operation_is_known_by_its_template_and_by_its_pattern_alike() {
        let templates = RouteTemplates::from_openapi(SPEC, "/api/v1");
        let id = templates.id("/api/v1/orders/{order_uid}").unwrap();
        assert_eq!(
            templates.of_pattern("/api/v1/orders/:param0"),
            RouteLabel::Known(id)
        );
        assert_eq!(templates.id(UNMATCHED), Some(RouteId::UNMATCHED));
        assert_eq!(templates.id("/healthz"), None);
    }

    /// The samples of `api_http_requests_total` in `family`, as `route status value` lines.
    fn samples(family: &Family<RequestLabels, Counter>) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("requests", "", family.clone());
        service_kit::http::encode(&registry)
            .lines()
            .filter(|line| line.starts_with("requests_total{"))
            .map(str::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn known_and_other_routes_are_counted_in_the_same_series_as_by_label() {
        let family = Family::<RequestLabels, Counter>::default();
        let duration = Histogram::new([1.0]);
        let meter = RequestMeter::new(
            family.clone(),
            duration,
            RouteTemplates::from_openapi(SPEC, "/api/v1"),
        );
        let order = meter.route("/api/v1/orders/{order_uid}").unwrap();
        let now = Instant::now();

        meter.record(RouteLabel::Known(order), StatusCode::OK, now);
        meter.record(RouteLabel::Known(order), StatusCode::OK, now);
        meter.record(
            meter.route_of(Some("/api/v1/orders/:param0")),
            StatusCode::OK,
            now,
        );
        meter.record(RouteLabel::Known(order), StatusCode::IM_A_TEAPOT, now);
        meter.record(meter.route_of(Some("/healthz")), StatusCode::OK, now);
        meter.record(meter.route_of(None), StatusCode::NOT_FOUND, now);

        let text = samples(&family);
        for line in [
            r#"requests_total{route="/api/v1/orders/{order_uid}",status="200"} 3"#,
            r#"requests_total{route="/api/v1/orders/{order_uid}",status="418"} 1"#,
            r#"requests_total{route="/healthz",status="200"} 1"#,
            r#"requests_total{route="unmatched",status="404"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert_eq!(text.lines().count(), 4, "no series besides those:\n{text}");
    }
}
