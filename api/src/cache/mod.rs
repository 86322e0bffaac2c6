//! The in-memory cache the api serves from, in one of two modes.
//!
//! Unbounded (the default): every stored order as the exact bytes of its stored document, ready to
//! send, so that a request is a lookup and a reference-count increment. Bounded
//! (`--cache-max-bytes`): every stored id in a few bytes ([`ids`]), and the documents most worth
//! keeping within the budget; the others are read from the database when asked for
//! ([`bounded`]).
//!
//! One `RwLock` guards what is known (the map, or the id set), the watermark and the list of
//! recent ids together, so that they always agree. Each move of the watermark is announced on a
//! `watch` channel, which the event stream of new orders waits on (see [`crate::http::events`]).
//! Readers hold it for a hash lookup only; the single writer (the sync loop) holds it to insert one
//! page of orders. A sharded or lock-free map would only pay off with many more cores than this
//! service runs on, so it is not worth a dependency. The bounded cache's documents are outside
//! that lock: a hit takes only the lock of one of its shards.

mod bounded;
mod ids;
mod page;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};

use bytes::Bytes;
use tokio::sync::watch;

use self::bounded::Bounded;
pub use self::bounded::{weight, Unavailable, ENTRY_OVERHEAD};
use self::ids::IdSet;
pub use self::page::Page;
use crate::database::Database;
use crate::metrics::CacheMetrics;

/// How many of the latest order ids the listing returns at most.
pub const RECENT_CAPACITY: usize = 100;

/// How many of the latest orders the cache remembers, with their `seq`: an event stream that
/// fell this far behind, or resumes from further back, cannot be told every order it missed.
pub const RESUMABLE: usize = 1000;

pub struct OrderCache {
    state: RwLock<State>,
    ready: AtomicBool,
    /// The watermark, each time it moves.
    watermark: watch::Sender<i64>,
    /// The documents held, and how the others are loaded, in bounded mode.
    bounded: Option<Bounded>,
}

impl Default for OrderCache {
    fn default() -> Self {
        OrderCache::with(Known::Orders(HashMap::default()), None)
    }
}

/// The orders stored after a `seq`, as the cache remembers them.
#[derive(Debug, PartialEq, Eq)]
pub enum Since {
    /// Every order above it, oldest first, as `(seq, order_uid)`.
    Orders(Vec<(i64, Box<str>)>),
    /// Some of them are no longer remembered (more than [`RESUMABLE`] came since).
    Forgotten,
}

/// The map's hasher: seeded at random in each process, so that the ids an attacker could publish
/// cannot be chosen to collide, and much cheaper than the standard library's SipHash for short
/// keys (ids are 1 to 64 characters, checked before they are stored).
type Hasher = foldhash::fast::RandomState;

struct State {
    known: Known,
    /// The highest `seq` applied: every stored order up to it is in `known`.
    watermark: i64,
    /// The latest orders, oldest first, as `(seq, order_uid)`.
    recent: VecDeque<(i64, Box<str>)>,
    /// The `seq` of the latest order dropped from `recent` (0 if none): `recent` holds every
    /// order above it.
    forgotten: i64,
}

/// The stored orders the cache knows of.
enum Known {
    /// Unbounded: every order, with its document.
    Orders(HashMap<Box<str>, Bytes, Hasher>),
    /// Bounded: every order's id; the documents held are in [`Bounded`].
    Ids(IdSet),
}

/// Every stored id up to a `seq`, read in `seq` order by the bounded warm-up, to replace what the
/// cache knows in one step (see [`OrderCache::install`]).
#[derive(Default)]
pub struct KnownIds {
    ids: ids::IdSetBuilder,
    recent: VecDeque<(i64, Box<str>)>,
    forgotten: i64,
    watermark: i64,
}

impl KnownIds {
    pub fn new() -> KnownIds {
        KnownIds::default()
    }

    /// Makes room for `additional` more ids at once.
    pub fn reserve(&mut self, additional: usize) {
        self.ids.reserve(additional);
    }

    /// Adds an order; orders come in `seq` order.
    pub fn push(&mut self, seq: i64, order_uid: &str) {
        debug_assert!(seq > self.watermark, "ids come in seq order");
        self.ids.push(order_uid);
        self.watermark = seq;
        if self.recent.len() == RESUMABLE {
            if let Some((dropped, _)) = self.recent.pop_front() {
                self.forgotten = dropped;
            }
        }
        self.recent.push_back((seq, order_uid.into()));
    }

    /// The highest `seq` pushed, 0 before the first.
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// Does most of the work of [`OrderCache::install`] ahead, where the caller has time for it.
    pub fn sort(&mut self) {
        self.ids.sort();
    }
}

impl OrderCache {
    /// The unbounded cache: every order in memory.
    pub fn new() -> OrderCache {
        OrderCache::default()
    }

    /// The bounded cache: every id, and at most `max_bytes` of documents (see [`weight`]); the
    /// others are read from `database` when asked for. It counts what it does in `metrics`.
    pub fn bounded(max_bytes: u64, database: Database, metrics: CacheMetrics) -> OrderCache {
        let bounded = Bounded::new(max_bytes, database, metrics);
        OrderCache::with(Known::Ids(IdSet::new()), Some(bounded))
    }

    fn with(known: Known, bounded: Option<Bounded>) -> OrderCache {
        OrderCache {
            state: RwLock::new(State {
                known,
                watermark: 0,
                recent: VecDeque::new(),
                forgotten: 0,
            }),
            ready: AtomicBool::new(false),
            watermark: watch::Sender::new(0),
            bounded,
        }
    }

    pub fn is_bounded(&self) -> bool {
        self.bounded.is_some()
    }

    /// The most bytes of documents held, in bounded mode.
    pub fn max_bytes(&self) -> Option<u64> {
        self.bounded.as_ref().map(|bounded| bounded.max_bytes)
    }

    /// The stored document of an order, byte for byte, if it is in memory: always in unbounded
    /// mode, never from the database.
    pub fn get(&self, order_uid: &str) -> Option<Bytes> {
        match &self.bounded {
            None => match &self.read().known {
                Known::Orders(orders) => orders.get(order_uid).cloned(),
                Known::Ids(_) => None,
            },
            Some(bounded) => bounded.held(order_uid),
        }
    }

    /// The stored document of an order, byte for byte, or `None` if no order has this id. In
    /// unbounded mode this is [`OrderCache::get`]; in bounded mode an order that is not held is
    /// read from the database, which may be unreachable.
    pub async fn find(&self, order_uid: &str) -> Result<Option<Bytes>, Unavailable> {
        match &self.bounded {
            None => Ok(self.get(order_uid)),
            Some(bounded) => self.find_bounded(bounded, order_uid).await,
        }
    }

    /// True if an order with this id may be stored (bounded: the id set says so).
    fn knows(&self, order_uid: &str) -> bool {
        match &self.read().known {
            Known::Orders(orders) => orders.contains_key(order_uid),
            Known::Ids(ids) => ids.contains(order_uid),
        }
    }

    /// Up to `limit` of the latest order ids, newest first.
    pub fn recent(&self, limit: usize) -> Vec<String> {
        let state = self.read();
        state
            .recent
            .iter()
            .rev()
            .take(limit)
            .map(|(_, uid)| uid.to_string())
            .collect()
    }

    /// The orders stored after `after`, oldest first; with `after` = `None`, the latest `limit`.
    /// At most `limit` either way: the oldest of them are left for the next call.
    pub fn since(&self, after: Option<i64>, limit: usize) -> Since {
        let state = self.read();
        let after = match after {
            Some(after) if after < state.forgotten => return Since::Forgotten,
            Some(after) => after,
            None => {
                let skip = state.recent.len().saturating_sub(limit);
                state.recent.get(skip).map_or(i64::MAX, |(seq, _)| seq - 1)
            }
        };
        // `recent` is in `seq` order: the first order above `after` is found by bisection.
        let first = state.recent.partition_point(|(seq, _)| *seq <= after);
        Since::Orders(state.recent.range(first..).take(limit).cloned().collect())
    }

    /// A receiver that sees each new watermark; for a stream that waits for new orders.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.watermark.subscribe()
    }

    /// How many stored orders the cache knows of: all of them held in unbounded mode, their ids
    /// in bounded mode.
    pub fn len(&self) -> usize {
        self.read().known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The highest `seq` applied; the next read asks for the orders above it.
    pub fn watermark(&self) -> i64 {
        self.read().watermark
    }

    /// Adds orders read from the table in `seq` order and moves the watermark to the last one.
    /// Orders at or below the watermark are already here and are skipped. In bounded mode the
    /// new documents are offered to the documents held, each copied out of the page's buffers.
    pub fn apply(&self, mut page: Page) {
        if self.bounded.is_none() {
            page.trim();
        }
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let before = state.watermark;
        let mut offered = Vec::new();
        for (seq, uid, document) in page.into_orders() {
            if seq <= state.watermark {
                continue;
            }
            state.watermark = seq;
            if state.recent.len() == RESUMABLE {
                if let Some((dropped, _)) = state.recent.pop_front() {
                    state.forgotten = dropped;
                }
            }
            state.recent.push_back((seq, uid.clone()));
            match &mut state.known {
                Known::Orders(orders) => {
                    orders.insert(uid, document);
                }
                Known::Ids(ids) => {
                    ids.insert(&uid);
                    offered.push((uid, document));
                }
            }
        }
        let after = state.watermark;
        if let Some(bounded) = &self.bounded {
            // Under the lock: a load that found nothing checks the watermark under it too.
            bounded.forget_absent(offered.iter().map(|(uid, _)| &**uid));
            bounded.metrics.known_ids.set(count(state.known.len()));
        }
        drop(state);
        if let Some(bounded) = &self.bounded {
            // Each document in an allocation of its own: one that is kept must not keep the
            // page's shared buffer alive.
            bounded.offer(
                offered
                    .into_iter()
                    .map(|(uid, document)| (uid.into_string(), Bytes::copy_from_slice(&document))),
            );
        }
        if after != before {
            self.watermark.send_replace(after);
        }
    }

    /// Replaces what the cache knows with `known`, read by the bounded warm-up before the cache is
    /// ready, and moves the watermark to its last `seq`. A warm-up that runs again (after a
    /// failure) may move it back, to the `seq` its own read reached: the catch-ups then read from
    /// there, and nobody follows the watermark before the cache is ready. Unbounded, it does
    /// nothing.
    pub fn install(&self, known: KnownIds) {
        let Some(bounded) = &self.bounded else {
            return;
        };
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        debug_assert!(
            state.watermark <= known.watermark,
            "installed before any apply"
        );
        *state = State {
            known: Known::Ids(known.ids.build()),
            watermark: known.watermark,
            recent: known.recent,
            forgotten: known.forgotten,
        };
        bounded.metrics.known_ids.set(count(state.known.len()));
        drop(state);
        self.watermark.send_replace(known.watermark);
    }

    /// Offers documents to the bounded cache, oldest first (the policy evicts the oldest first
    /// while it has no other reason), as `(order_uid, document)`. Unbounded, it does nothing.
    pub fn hold(&self, documents: impl IntoIterator<Item = (String, Bytes)>) {
        if let Some(bounded) = &self.bounded {
            bounded.offer(documents);
        }
    }

    /// Makes room for `additional` more orders at once, so that a long catch-up (the warm-up)
    /// does not grow the map step by step, rehashing every order at each doubling. The bounded
    /// cache's id set grows by merges, each to the exact size it needs: nothing to do there.
    pub fn reserve(&self, additional: usize) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if let Known::Orders(orders) = &mut state.known {
            orders.reserve(additional);
        }
    }

    /// True once the cache holds every order that was stored when the api started (bounded:
    /// knows every id).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn mark_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // A panic cannot leave the state half-updated in a way readers would notice: each insert
        // is whole. Keep serving rather than fail every request.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Known {
    fn len(&self) -> usize {
        match self {
            Known::Orders(orders) => orders.len(),
            Known::Ids(ids) => ids.len(),
        }
    }
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
