//! The bounded cache (`--cache-max-bytes`): the documents most worth keeping within a budget of
//! bytes, and the loads of the others from the database, one per id at a time.
//!
//! The documents live in a `quick_cache` cache weighed in bytes (see [`weight`]), whose policy
//! (S3-FIFO) admits a new document on probation and keeps the ones asked for again, so that a
//! scan of ids asked for once cannot push out the popular ones. Each document has an allocation of
//! its own, so that an evicted document frees its bytes. A miss reaches the database only for an
//! id the id set knows (see [`super::ids`]); concurrent misses for one id wait for the one load
//! in flight (the cache's placeholder guard). A load that finds nothing (an id whose fingerprint
//! another id shares) is remembered in a small cache of its own, so that asking again costs no
//! query either.
//!
//! Where a load reads: the loads pool (the standby, if there is one), then the primary when the
//! standby fails or has no such row (it may lag behind what the cache applied). A source that
//! fails is skipped for [`RETRY_AFTER`], then tried again by one request at a time, so that an
//! outage answers misses with 503 at once instead of each one waiting for a connection.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::{OptionsBuilder, Weighter};
use sqlx::PgPool;

use super::OrderCache;
use crate::database::Database;
use crate::metrics::CacheMetrics;

/// What a held document costs beyond its key and its bytes, so that many small documents cannot
/// hold much more memory than the budget says. Each entry is a slot of the cache's slab (the
/// `String` key and the `Bytes` value, their state and links: about 72 bytes), a slot of its
/// index (about 6), the shared header `Bytes` allocates on the first clone (32), and a share of
/// the ghost entries the policy keeps for recently evicted keys (up to half as many as held,
/// about 40 bytes each): about 128 bytes.
pub const ENTRY_OVERHEAD: u64 = 128;

/// The size of an order's entry the cache is sized for (an order is about 1 KiB of JSON): only
/// the number of shards and of ghost entries follow from it.
const TYPICAL_WEIGHT: u64 = 1024;

/// How many ids that the database has no order for are remembered at most. Only ids whose
/// fingerprint a stored id shares get here, which random ids hit once in billions.
const ABSENT_CAPACITY: usize = 10_000;

/// How long a database that failed a load is skipped before one request tries it again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The weight of a document of `document_len` bytes held under a key of `order_uid_len` bytes:
/// their bytes and the entry's overhead. By lengths, so that the warm-up can weigh an order
/// before it reads the document.
pub fn weight(order_uid_len: usize, document_len: usize) -> u64 {
    (order_uid_len + document_len) as u64 + ENTRY_OVERHEAD
}

/// Weighs the held documents in bytes, with [`weight`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ByBytes;

impl Weighter<String, Bytes> for ByBytes {
    fn weight(&self, order_uid: &String, document: &Bytes) -> u64 {
        weight(order_uid.len(), document.len())
    }
}

type Documents =
    Cache<String, Bytes, ByBytes, foldhash::fast::RandomState, DefaultLifecycle<String, Bytes>>;

/// No database that holds the orders could be reached: the order asked for is not in memory and
/// cannot be read now.
#[derive(Debug, thiserror::Error)]
#[error("no database that holds the orders can be reached")]
pub struct Unavailable;

pub(super) struct Bounded {
    pub(super) max_bytes: u64,
    documents: Documents,
    /// Ids the id set knows but the database has no order for.
    absent: Cache<String, ()>,
    /// Where loads read, in order: the loads pool, then the primary if the first is a standby.
    sources: Vec<Source>,
    pub(super) metrics: CacheMetrics,
}

impl Bounded {
    pub(super) fn new(max_bytes: u64, database: Database, metrics: CacheMetrics) -> Bounded {
        let options = OptionsBuilder::new()
            .weight_capacity(max_bytes)
            .estimated_items_capacity(
                usize::try_from(max_bytes / TYPICAL_WEIGHT)
                    .unwrap_or(0)
                    .max(1),
            )
            .build()
            .expect("a weight capacity and an estimated items capacity are set");
        let documents = Cache::with_options(
            options,
            ByBytes,
            foldhash::fast::RandomState::default(),
            DefaultLifecycle::default(),
        );
        let sources = if database.standby {
            vec![
                Source::new(database.loads, "standby"),
                Source::new(database.primary, "primary"),
            ]
        } else {
            vec![Source::new(database.loads, "primary")]
        };
        Bounded {
            max_bytes,
            documents,
            absent: Cache::new(ABSENT_CAPACITY),
            sources,
            metrics,
        }
    }

    /// The document of `order_uid` if it is held; counted as a hit if so.
    pub(super) fn held(&self, order_uid: &str) -> Option<Bytes> {
        let document = self.documents.get(order_uid)?;
        self.metrics.hits.inc();
        Some(document)
    }

    /// Offers documents to the cache, oldest first: the policy decides which to keep.
    pub(super) fn offer(&self, documents: impl IntoIterator<Item = (String, Bytes)>) {
        for (order_uid, document) in documents {
            self.documents.insert(order_uid, document);
        }
        self.measure();
    }

    /// Forgets that the database had no order for these ids: they have been applied.
    pub(super) fn forget_absent<'a>(&self, order_uids: impl IntoIterator<Item = &'a str>) {
        if self.absent.is_empty() {
            return;
        }
        for order_uid in order_uids {
            self.absent.remove(order_uid);
        }
        self.measure();
    }

    /// Sets the gauges of what the cache holds.
    fn measure(&self) {
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.metrics.held_bytes.set(gauge(self.documents.weight()));
        self.metrics
            .held_documents
            .set(gauge(self.documents.len() as u64));
        self.metrics.absent_ids.set(gauge(self.absent.len() as u64));
    }

    /// Reads the document of `order_uid` from the sources in turn.
    async fn read(&self, order_uid: &str) -> Read {
        let last = self.sources.len() - 1;
        for (i, source) in self.sources.iter().enumerate() {
            match source.attempt(order_uid).await {
                Some(Ok(Some(document))) => return Read::Found(document),
                Some(Ok(None)) if i == last => return Read::Missing,
                // The standby has no such row, failed or is skipped: ask the primary.
                _ => {}
            }
        }
        Read::Unreachable
    }
}

enum Read {
    Found(String),
    /// The primary has no such order.
    Missing,
    Unreachable,
}

impl OrderCache {
    /// The bounded cache's answer for `order_uid`: held, unknown, or loaded.
    ///
    /// A negative answer is remembered only if no order was applied while the database was
    /// asked: the check and the insert are under the state lock that `apply` takes to move the
    /// watermark (and to forget negative answers for what it applies), so that a "no" read before
    /// an order was stored cannot outlive its arrival.
    pub(super) async fn find_bounded(
        &self,
        bounded: &Bounded,
        order_uid: &str,
    ) -> Result<Option<Bytes>, Unavailable> {
        let metrics = &bounded.metrics;
        if let Some(document) = bounded.held(order_uid) {
            return Ok(Some(document));
        }
        if !self.knows(order_uid) || bounded.absent.contains_key(order_uid) {
            metrics.unknown_ids.inc();
            return Ok(None);
        }
        let guard = match bounded.documents.get_value_or_guard_async(order_uid).await {
            // Loaded by a concurrent request, or applied meanwhile.
            Ok(document) => {
                metrics.hits.inc();
                return Ok(Some(document));
            }
            Err(guard) => guard,
        };
        // The guard passes from a load that found nothing to the next request waiting.
        if bounded.absent.contains_key(order_uid) {
            metrics.unknown_ids.inc();
            return Ok(None);
        }
        let watermark = self.watermark();
        metrics.loads.inc();
        match bounded.read(order_uid).await {
            Read::Found(document) => {
                let document = Bytes::from(document);
                // Refused only if `apply` inserted the same document meanwhile.
                let _ = guard.insert(document.clone());
                bounded.measure();
                Ok(Some(document))
            }
            Read::Missing => {
                metrics.loads_not_found.inc();
                let state = self.read();
                if state.watermark == watermark {
                    bounded.absent.insert(order_uid.to_string(), ());
                }
                drop(state);
                bounded.measure();
                // Applied while the database was asked, from a source that had it already.
                Ok(bounded.documents.peek(order_uid))
            }
            Read::Unreachable => {
                metrics.load_failures.inc();
                Err(Unavailable)
            }
        }
    }
}

/// A database that loads read, and whether it is failing.
struct Source {
    pool: PgPool,
    name: &'static str,
    health: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    failing: bool,
    /// While failing: when one request may try again.
    retry_at: Option<Instant>,
    /// A request is trying it now.
    probing: bool,
}

impl Source {
    fn new(pool: PgPool, name: &'static str) -> Source {
        Source {
            pool,
            name,
            health: Mutex::default(),
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The document of `order_uid` (`None`: no such order), or `None` if the source is skipped.
    async fn attempt(&self, order_uid: &str) -> Option<sqlx::Result<Option<String>>> {
        let _probe = self.admit()?;
        let result = orders::db::order_document(&self.pool, order_uid).await;
        let mut health = self.health();
        match &result {
            Ok(_) if health.failing => {
                tracing::info!(database = self.name, "orders can be read again");
                *health = Health {
                    probing: health.probing,
                    ..Health::default()
                };
            }
            Ok(_) => {}
            Err(error) => {
                if !health.failing {
                    tracing::warn!(
                        database = self.name,
                        error = %error,
                        retry_ms = RETRY_AFTER.as_millis() as u64,
                        "cannot read an order that is not in memory; skipping this database"
                    );
                }
                health.failing = true;
                health.retry_at = Some(Instant::now() + RETRY_AFTER);
            }
        }
        Some(result)
    }

    /// Lets a request read: always while the source works, one at a time once it is due for a
    /// retry while it fails.
    fn admit(&self) -> Option<Probe<'_>> {
        let mut health = self.health();
        if !health.failing {
            return Some(Probe(None));
        }
        let due = health.retry_at.is_none_or(|at| at <= Instant::now());
        if health.probing || !due {
            return None;
        }
        health.probing = true;
        Some(Probe(Some(self)))
    }
}

/// A retry of a failing source in progress: ends when dropped, also if the request is cancelled.
struct Probe<'a>(Option<&'a Source>);

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        if let Some(source) = self.0 {
            source.health().probing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documents(max_bytes: u64) -> Bounded {
        Bounded::new(max_bytes, Database::unreachable(), CacheMetrics::default())
    }

    #[test]
    fn a_document_weighs_its_key_its_bytes_and_the_overhead_of_an_entry() {
        assert_eq!(weight(3, 2), 5 + ENTRY_OVERHEAD);
        let document = Bytes::from_static(&[b' '; 1000]);
        assert_eq!(
            ByBytes.weight(&"order-1".to_string(), &document),
            1007 + ENTRY_OVERHEAD
        );
        // Far more than the key and the value themselves, so that tiny documents still count.
        assert!(ENTRY_OVERHEAD as usize > 2 * std::mem::size_of::<(String, Bytes)>());
    }

    #[tokio::test]
    async fn the_documents_held_stay_within_the_budget() {
        let budget = 64 << 10;
        let bounded = documents(budget);
        let document = Bytes::from(vec![b'x'; 900]);
        let ids: Vec<String> = (0..1000).map(|n| format!("order-{n}")).collect();
        bounded.offer(ids.iter().map(|id| (id.clone(), document.clone())));
        let held = bounded.documents.weight();
        assert!(held <= budget, "{held} bytes held for a budget of {budget}");
        assert!(held > budget / 2, "only {held} bytes held of {budget}");
        let kept: Vec<&String> = ids.iter().filter(|id| bounded.held(id).is_some()).collect();
        let weights: u64 = kept.iter().map(|id| weight(id.len(), document.len())).sum();
        assert_eq!(weights, held);
        assert_eq!(bounded.metrics.held_bytes.get(), held as i64);
        assert_eq!(bounded.metrics.held_documents.get(), kept.len() as i64);
    }

    #[tokio::test]
    async fn a_document_asked_for_again_outlives_a_scan_of_new_ones() {
        let bounded = documents(64 << 10);
        let document = Bytes::from(vec![b'x'; 900]);
        bounded.offer([("popular".to_string(), document.clone())]);
        for round in 0..20 {
            assert!(bounded.held("popular").is_some(), "round {round}");
            let ids: Vec<String> = (0..50).map(|n| format!("scan-{round}-{n}")).collect();
            bounded.offer(ids.into_iter().map(|id| (id, document.clone())));
        }
        assert!(bounded.held("popular").is_some());
    }

    #[tokio::test]
    async fn a_document_larger_than_the_budget_is_not_held() {
        let bounded = documents(4 << 10);
        bounded.offer([("large".to_string(), Bytes::from(vec![b'x'; 8 << 10]))]);
        assert!(bounded.held("large").is_none());
        assert_eq!(bounded.documents.weight(), 0);
    }
}
