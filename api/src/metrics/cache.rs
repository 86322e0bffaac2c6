//! What the bounded cache (`--cache-max-bytes`) counts: its hits, its loads from the database, the
//! ids it answers without one, and what it holds. The unbounded cache leaves them at 0: its
//! lookups stay a hash lookup and nothing more.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The bounded cache's metrics. Each is an atomic shared by its clones: the cache keeps a clone,
/// the registry another.
#[derive(Clone, Debug, Default)]
pub struct CacheMetrics {
    pub hits: Counter,
    pub loads: Counter,
    pub loads_not_found: Counter,
    pub load_failures: Counter,
    pub unknown_ids: Counter,
    pub held_bytes: Gauge,
    pub held_documents: Gauge,
    pub known_ids: Gauge,
    pub absent_ids: Gauge,
}

impl CacheMetrics {
    /// Registers every metric in `registry`, under its prefix: `<prefix>_orders_cache_hits_total`
    /// and the others below.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "orders_cache_hits",
            "Orders asked for that were in memory, or loaded by a concurrent request for the same \
             id (bounded cache only)",
            self.hits.clone(),
        );
        registry.register(
            "orders_cache_loads",
            "Orders asked for that were not in memory and were read from the database (bounded \
             cache only)",
            self.loads.clone(),
        );
        registry.register(
            "orders_cache_loads_not_found",
            "Loads from the database that found no order: the id shared its fingerprint with a \
             stored one (bounded cache only)",
            self.loads_not_found.clone(),
        );
        registry.register(
            "orders_cache_load_failures",
            "Loads that no database could answer, answered 503 (bounded cache only)",
            self.load_failures.clone(),
        );
        registry.register(
            "orders_cache_unknown_ids",
            "Ids answered 404 without the database: no stored order has the id, or the database \
             said so before (bounded cache only)",
            self.unknown_ids.clone(),
        );
        registry.register(
            "orders_cache_held_bytes",
            "Bytes of the documents in memory, with their ids and the overhead of an entry, as \
             weighed against --cache-max-bytes (bounded cache only)",
            self.held_bytes.clone(),
        );
        registry.register(
            "orders_cache_held_documents",
            "Documents in memory (bounded cache only)",
            self.held_documents.clone(),
        );
        registry.register(
            "orders_cache_known_ids",
            "Ids of stored orders known to the cache, in a few bytes each (bounded cache only)",
            self.known_ids.clone(),
        );
        registry.register(
            "orders_cache_absent_ids",
            "Ids remembered as having no order in the database (bounded cache only)",
            self.absent_ids.clone(),
        );
    }
}
