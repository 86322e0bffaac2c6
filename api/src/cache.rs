//! The in-memory cache the api serves from: every stored order as the exact bytes of its stored
//! document, ready to send, so that a request is a lookup and a reference-count increment.
//!
//! One `RwLock` guards the map, the watermark and the list of recent ids together, so that they
//! always agree. Readers hold it for a hash lookup only; the single writer (the sync loop) holds it
//! to insert one page of orders. A sharded or lock-free map would only pay off with many more cores
//! than this service runs on, so it is not worth a dependency.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};

use bytes::Bytes;
use orders::db::StoredOrder;

/// How many of the latest order ids the cache remembers for the listing.
pub const RECENT_CAPACITY: usize = 100;

#[derive(Default)]
pub struct OrderCache {
    state: RwLock<State>,
    ready: AtomicBool,
}

#[derive(Default)]
struct State {
    orders: HashMap<Box<str>, Bytes>,
    /// The highest `seq` applied: every stored order up to it is in `orders`.
    watermark: i64,
    /// The ids of the latest orders, oldest first.
    recent: VecDeque<Box<str>>,
}

impl OrderCache {
    pub fn new() -> OrderCache {
        OrderCache::default()
    }

    /// The stored document of an order, byte for byte.
    pub fn get(&self, order_uid: &str) -> Option<Bytes> {
        self.read().orders.get(order_uid).cloned()
    }

    /// Up to `limit` of the latest order ids, newest first.
    pub fn recent(&self, limit: usize) -> Vec<String> {
        let state = self.read();
        state
            .recent
            .iter()
            .rev()
            .take(limit)
            .map(|uid| uid.to_string())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.read().orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The highest `seq` applied; the next read asks for the orders above it.
    pub fn watermark(&self) -> i64 {
        self.read().watermark
    }

    /// Adds orders read from the table in `seq` order and moves the watermark to the last one.
    /// Orders at or below the watermark are already here and are skipped.
    pub fn apply(&self, page: Vec<StoredOrder>) {
        let entries: Vec<(i64, Box<str>, Bytes)> = page
            .into_iter()
            .map(|o| (o.seq, o.order_uid.into_boxed_str(), Bytes::from(o.document)))
            .collect();
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        for (seq, uid, document) in entries {
            if seq <= state.watermark {
                continue;
            }
            state.watermark = seq;
            if state.recent.len() == RECENT_CAPACITY {
                state.recent.pop_front();
            }
            state.recent.push_back(uid.clone());
            state.orders.insert(uid, document);
        }
    }

    /// True once the cache holds every order that was stored when the api started.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(seq: i64, uid: &str) -> StoredOrder {
        StoredOrder {
            seq,
            order_uid: uid.to_string(),
            document: format!("{{\"order_uid\":\"{uid}\"}}"),
        }
    }

    #[test]
    fn an_applied_order_is_served_byte_for_byte_and_moves_the_watermark() {
        let cache = OrderCache::new();
        cache.apply(vec![stored(3, "a"), stored(7, "b")]);
        assert_eq!(
            cache.get("b").unwrap(),
            Bytes::from_static(b"{\"order_uid\":\"b\"}")
        );
        assert_eq!(cache.get("c"), None);
        assert_eq!(cache.watermark(), 7);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn orders_at_or_below_the_watermark_are_not_applied_twice() {
        let cache = OrderCache::new();
        cache.apply(vec![stored(1, "a"), stored(2, "b")]);
        cache.apply(vec![stored(2, "b"), stored(3, "c")]);
        assert_eq!(cache.recent(10), ["c", "b", "a"]);
        assert_eq!(cache.watermark(), 3);
    }

    #[test]
    fn the_recent_list_keeps_only_the_latest_ids_newest_first() {
        let cache = OrderCache::new();
        let page = (1..=RECENT_CAPACITY as i64 + 5)
            .map(|seq| stored(seq, &format!("o{seq}")))
            .collect();
        cache.apply(page);
        let all = cache.recent(usize::MAX);
        assert_eq!(all.len(), RECENT_CAPACITY);
        assert_eq!(all[0], format!("o{}", RECENT_CAPACITY + 5));
        assert_eq!(all[RECENT_CAPACITY - 1], "o6");
        assert_eq!(cache.recent(2), ["o105", "o104"]);
    }
}
