//! The in-memory cache the api serves from: every stored order as the exact bytes of its stored
//! document, ready to send, so that a request is a lookup and a reference-count increment.
//!
//! One `RwLock` guards the map, the watermark and the list of recent ids together, so that they
//! always agree. Each move of the watermark is announced on a `watch` channel, which the event
//! stream of new orders waits on (see [`crate::http::events`]). Readers hold it for a hash lookup only; the single writer (the sync loop) holds it
//! to insert one page of orders. A sharded or lock-free map would only pay off with many more cores
//! than this service runs on, so it is not worth a dependency.
//!
//! The documents of a page are packed into a few large buffers (`Page`), each order's document a
//! slice of one: a warm-up of a million orders is then a few hundred allocations, not a million.
//! Orders are never removed, so a buffer is never held by a few survivors; a page's last buffer is
//! cut to its documents, so a catch-up of a few orders costs their bytes only.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;

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
}

impl Default for OrderCache {
    fn default() -> Self {
        OrderCache {
            state: RwLock::default(),
            ready: AtomicBool::new(false),
            watermark: watch::Sender::new(0),
        }
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

#[derive(Default)]
struct State {
    orders: HashMap<Box<str>, Bytes, Hasher>,
    /// The highest `seq` applied: every stored order up to it is in `orders`.
    watermark: i64,
    /// The latest orders, oldest first, as `(seq, order_uid)`.
    recent: VecDeque<(i64, Box<str>)>,
    /// The `seq` of the latest order dropped from `recent` (0 if none): `recent` holds every
    /// order above it.
    forgotten: i64,
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
    pub fn apply(&self, mut page: Page) {
        page.trim();
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let before = state.watermark;
        for (seq, uid, document) in page.orders {
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
            state.orders.insert(uid, document);
        }
        let after = state.watermark;
        drop(state);
        if after != before {
            self.watermark.send_replace(after);
        }
    }

    /// Makes room for `additional` more orders at once, so that a long catch-up (the warm-up)
    /// does not grow the map step by step, rehashing every order at each doubling.
    pub fn reserve(&self, additional: usize) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.orders.reserve(additional);
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

/// Orders read from the table, in `seq` order, for [`OrderCache::apply`].
///
/// Documents are copied into buffers that grow from [`FIRST_BUFFER_BYTES`] to [`BUFFER_BYTES`]
/// within a page, and the last buffer is cut to what it holds when the page is applied: a catch-up
/// of one order keeps one document's bytes, not a buffer's, for as long as the order is cached.
#[derive(Default)]
pub struct Page {
    orders: Vec<(i64, Box<str>, Bytes)>,
    /// The free end of the buffer the next documents are copied into.
    buffer: BytesMut,
    /// The size the current buffer was allocated with, and the index in `orders` of its first
    /// document.
    buffer_bytes: usize,
    buffer_first: usize,
    /// The bytes of every buffer of the page, as allocated (or cut).
    allocated: usize,
}

/// The size of the first buffer of a page.
const FIRST_BUFFER_BYTES: usize = 16 << 10;
/// The largest buffer documents are packed into; a larger document gets one of its own.
const BUFFER_BYTES: usize = 4 << 20;

impl Page {
    pub fn new() -> Page {
        Page::default()
    }

    /// Adds an order, copying its document into the page's current buffer.
    pub fn push(&mut self, seq: i64, order_uid: &str, document: &str) {
        if self.buffer.capacity() < document.len() {
            let next = (self.buffer_bytes * 2).clamp(FIRST_BUFFER_BYTES, BUFFER_BYTES);
            self.buffer_bytes = next.max(document.len());
            self.buffer = BytesMut::with_capacity(self.buffer_bytes);
            self.allocated += self.buffer_bytes;
            self.buffer_first = self.orders.len();
        }
        self.buffer.extend_from_slice(document.as_bytes());
        let document = self.buffer.split().freeze();
        self.orders.push((seq, order_uid.into(), document));
    }

    /// Cuts the last buffer to the documents in it when they fill less than half of it.
    fn trim(&mut self) {
        let last = &mut self.orders[self.buffer_first..];
        let used: usize = last.iter().map(|(_, _, document)| document.len()).sum();
        if used * 2 >= self.buffer_bytes {
            return;
        }
        let mut exact = BytesMut::with_capacity(used);
        for (_, _, document) in last.iter() {
            exact.extend_from_slice(document);
        }
        let mut exact = exact.freeze();
        for (_, _, document) in last.iter_mut() {
            *document = exact.split_to(document.len());
        }
        self.buffer = BytesMut::new();
        self.allocated = self.allocated - self.buffer_bytes + used;
        self.buffer_bytes = used;
    }

    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    /// The `seq` of the last order.
    pub fn last_seq(&self) -> Option<i64> {
        self.orders.last().map(|(seq, _, _)| *seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(orders: &[(i64, &str)]) -> Page {
        let mut page = Page::new();
        for (seq, uid) in orders {
            page.push(*seq, uid, &format!("{{\"order_uid\":\"{uid}\"}}"));
        }
        page
    }

    /// Orders `o1` to `o{last}`, each with its number as its `seq`.
    fn numbered(last: i64) -> Page {
        let ids: Vec<String> = (1..=last).map(|seq| format!("o{seq}")).collect();
        let ids: Vec<(i64, &str)> = (1..=last).zip(ids.iter().map(String::as_str)).collect();
        page(&ids)
    }

    #[test]
    fn an_applied_order_is_served_byte_for_byte_and_moves_the_watermark() {
        let cache = OrderCache::new();
        cache.apply(page(&[(3, "a"), (7, "b")]));
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
        cache.apply(page(&[(1, "a"), (2, "b")]));
        cache.apply(page(&[(2, "b"), (3, "c")]));
        assert_eq!(cache.recent(10), ["c", "b", "a"]);
        assert_eq!(cache.watermark(), 3);
    }

    #[test]
    fn the_recent_list_keeps_only_the_latest_ids_newest_first() {
        let cache = OrderCache::new();
        cache.apply(numbered(RECENT_CAPACITY as i64 + 5));
        let all = cache.recent(RECENT_CAPACITY);
        assert_eq!(all.len(), RECENT_CAPACITY);
        assert_eq!(all[0], format!("o{}", RECENT_CAPACITY + 5));
        assert_eq!(all[RECENT_CAPACITY - 1], "o6");
        assert_eq!(cache.recent(2), ["o105", "o104"]);
    }

    fn uids(since: Since) -> Vec<(i64, String)> {
        match since {
            Since::Orders(orders) => orders
                .into_iter()
                .map(|(seq, uid)| (seq, uid.into()))
                .collect(),
            Since::Forgotten => panic!("forgotten"),
        }
    }

    #[test]
    fn the_orders_since_a_seq_are_the_ones_above_it_oldest_first_and_at_most_the_limit() {
        let cache = OrderCache::new();
        // Gaps in `seq`, as rolled-back inserts leave them.
        cache.apply(page(&[(2, "a"), (5, "b"), (9, "c"), (10, "d")]));
        assert_eq!(
            uids(cache.since(Some(5), 10)),
            [(9, "c".into()), (10, "d".into())]
        );
        assert_eq!(uids(cache.since(Some(4), 1)), [(5, "b".into())]);
        assert_eq!(uids(cache.since(Some(0), 10)).len(), 4);
        assert_eq!(uids(cache.since(Some(10), 10)), []);
        assert_eq!(uids(cache.since(Some(99), 10)), []);
        // Without a seq: the latest, oldest first.
        assert_eq!(
            uids(cache.since(None, 2)),
            [(9, "c".into()), (10, "d".into())]
        );
        assert_eq!(uids(cache.since(None, 10)).len(), 4);
        assert_eq!(uids(OrderCache::new().since(None, 10)), []);
    }

    #[test]
    fn orders_since_a_seq_the_cache_no_longer_remembers_are_forgotten() {
        let cache = OrderCache::new();
        cache.apply(numbered(RESUMABLE as i64 + 3));
        // Orders 1 to 3 are dropped: from 3 on, every order above is still known.
        assert_eq!(cache.since(Some(2), 10), Since::Forgotten);
        assert_eq!(uids(cache.since(Some(3), 1)), [(4, "o4".into())]);
    }

    #[tokio::test]
    async fn a_subscriber_sees_the_watermark_move_and_only_when_it_moves() {
        let cache = OrderCache::new();
        let mut watermark = cache.subscribe();
        cache.apply(page(&[(1, "a"), (4, "b")]));
        watermark.changed().await.unwrap();
        assert_eq!(*watermark.borrow_and_update(), 4);
        cache.apply(page(&[(4, "b")]));
        assert!(!watermark.has_changed().unwrap());
    }

    #[test]
    fn a_small_page_keeps_only_its_documents_bytes() {
        let mut page = Page::new();
        page.push(1, "a", &"x".repeat(1500));
        page.push(2, "b", &"y".repeat(500));
        page.trim();
        assert_eq!(page.allocated, 2000);
        let cache = OrderCache::new();
        cache.apply(page);
        assert_eq!(cache.get("a").unwrap(), "x".repeat(1500).as_bytes());
        assert_eq!(cache.get("b").unwrap(), "y".repeat(500).as_bytes());
    }

    #[test]
    fn a_large_page_allocates_little_more_than_its_documents() {
        let mut page = Page::new();
        let document = "z".repeat(1500);
        for seq in 1..=10_000 {
            page.push(seq, &format!("o{seq}"), &document);
        }
        page.trim();
        let documents = 10_000 * document.len();
        assert!(
            page.allocated <= documents + documents / 2,
            "{} bytes allocated for {documents} bytes of documents",
            page.allocated
        );
    }

    #[test]
    fn documents_packed_into_shared_buffers_are_served_whole_and_apart() {
        // Enough documents to fill several buffers, and one larger than a buffer.
        let small = "x".repeat(100_000);
        let large = "y".repeat(BUFFER_BYTES + 1);
        let mut page = Page::new();
        for seq in 1..=100 {
            page.push(seq, &format!("o{seq}"), &format!("{seq}{small}"));
        }
        page.push(101, "large", &large);
        page.push(102, "after", "{}");
        assert_eq!(page.len(), 102);
        assert_eq!(page.last_seq(), Some(102));
        let cache = OrderCache::new();
        cache.apply(page);
        for seq in 1..=100 {
            let document = cache.get(&format!("o{seq}")).unwrap();
            assert_eq!(document, format!("{seq}{small}").as_bytes());
        }
        assert_eq!(cache.get("large").unwrap(), large.as_bytes());
        assert_eq!(cache.get("after").unwrap(), &b"{}"[..]);
    }
}
