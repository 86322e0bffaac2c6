//! The ingestor's metrics, and the small HTTP server that shows them (`/metrics`, in the
//! OpenMetrics text format that Prometheus reads) beside a liveness probe (`/healthz`).
//!
//! Every metric is an atomic, updated once per batch (per commit, per ack round), never under a
//! lock of ours; the broker thread updates its counter directly.

use std::sync::Arc;
use std::time::Duration;

use orders::db::{BatchReport, Envelope, Verdict};
use poem::Route;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use service_kit::http::guard::ConnectionMetrics;

/// A dead letter's rule: one of the codes of [`orders::Rule`], a bounded set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabel {
    rule: &'static str,
}

/// Why the broker session was renewed.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RenewalLabel {
    reason: &'static str,
}

impl RenewalLabel {
    /// The NATS connection was lost and came back.
    pub const RECONNECTED: RenewalLabel = RenewalLabel {
        reason: "reconnected",
    };
    /// The broker no longer knew the client, or stopped answering its pings.
    pub const FORGOTTEN: RenewalLabel = RenewalLabel {
        reason: "forgotten",
    };
}

pub struct Metrics {
    registry: Registry,
    pub received: Counter,
    pub redelivered: Counter,
    stored: Counter,
    duplicates: Counter,
    conflicts: Counter,
    dead_lettered: Family<RuleLabel, Counter>,
    pub batch_size: Histogram,
    commit_duration: Histogram,
    pub acks_sent: Counter,
    pub database_retries: Counter,
    pub session_renewals: Family<RenewalLabel, Counter>,
    pub refetched: Counter,
    pub absent: Counter,
    pub consumed_through: Gauge,
}

impl Metrics {
    // Past 60 lines: each metric registered with its help text, one after the other.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ingestor");
        let mut counter = |name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let received = counter("messages_received", "Messages taken from the broker");
        let redelivered = counter(
            "messages_redelivered",
            "Messages the broker marked as sent before",
        );
        let stored = counter("messages_stored", "Orders stored for the first time");
        let duplicates = counter(
            "messages_duplicate",
            "Orders already stored with the same content: nothing to do",
        );
        let conflicts = counter(
            "messages_conflicting",
            "Orders already stored with other content: recorded in order_conflicts",
        );
        let acks_sent = counter(
            "acks_sent",
            "Acks written to the broker after their messages were committed",
        );
        let database_retries = counter(
            "database_retries",
            "Batches retried because the database could not take them",
        );
        let refetched = counter(
            "messages_refetched",
            "Messages the broker held but never delivered, read by their sequence",
        );
        let absent = counter(
            "messages_absent",
            "Sequences found missing that the broker no longer holds: passed over",
        );
        let dead_lettered = Family::<RuleLabel, Counter>::default();
        registry.register(
            "messages_dead_lettered",
            "Messages stored in dead_letters, by the rule they broke",
            dead_lettered.clone(),
        );
        // 1 to 2048 messages, doubling; BATCH_MAX is 2000 by default.
        let batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        registry.register_with_unit(
            "batch_size",
            "Messages taken into one batch",
            Unit::Other("messages".into()),
            batch_size.clone(),
        );
        // 1 ms to about 16 s, doubling.
        let commit_duration = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register_with_unit(
            "commit_duration",
            "Time to write and commit one transaction",
            Unit::Seconds,
            commit_duration.clone(),
        );
        let session_renewals = Family::<RenewalLabel, Counter>::default();
        registry.register(
            "broker_session_renewals",
            "Broker sessions rebuilt, by reason",
            session_renewals.clone(),
        );
        let consumed_through = Gauge::default();
        registry.register(
            "consumed_through",
            "The sequence up to which every message of the channel is consumed",
            consumed_through.clone(),
        );
        Metrics {
            registry,
            received,
            redelivered,
            stored,
            duplicates,
            conflicts,
            dead_lettered,
            batch_size,
            commit_duration,
            acks_sent,
            database_retries,
            session_renewals,
            refetched,
            absent,
            consumed_through,
        }
    }

    /// With the HTTP listener's connection metrics (see [`service_kit::http::guard`]).
    pub fn with_connections(mut self, connections: &Arc<ConnectionMetrics>) -> Metrics {
        connections.register(&mut self.registry);
        self
    }

    /// One transaction committed: `items` were written, as `report` says, in `took`.
    pub fn committed(&self, items: &[(Envelope, Verdict)], report: &BatchReport, took: Duration) {
        self.commit_duration.observe(took.as_secs_f64());
        self.stored.inc_by(report.stored as u64);
        self.duplicates.inc_by(report.duplicates as u64);
        self.conflicts.inc_by(report.conflicts as u64);
        for (_, verdict) in items {
            if let Verdict::Rejected(rejection) = verdict {
                self.dead_lettered
                    .get_or_create(&RuleLabel {
                        rule: rejection.rule.code(),
                    })
                    .inc();
            }
        }
    }

    /// Every metric, in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        service_kit::http::encode(&self.registry)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// `/metrics` and `/healthz`, as every process serves them (see [`service_kit::http`]).
pub fn routes(metrics: Arc<Metrics>) -> impl poem::Endpoint {
    Route::new()
        .at(
            "/metrics",
            service_kit::http::metrics(move || metrics.encode()),
        )
        .at("/healthz", service_kit::http::healthz())
}
