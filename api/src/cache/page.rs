//! A page of orders read from the table, its documents packed into a few large buffers.
//!
//! A warm-up of a million orders is then a few hundred allocations, not a million. In the
//! unbounded cache orders are never removed, so a buffer is never held by a few survivors; a
//! page's last buffer is cut to its documents, so a catch-up of a few orders costs their bytes
//! only. The bounded cache evicts, so it copies each document it keeps out of the page instead
//! (see [`super::bounded`]).

use bytes::{Bytes, BytesMut};

/// Orders read from the table, in `seq` order, for [`super::OrderCache::apply`].
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
pub(super) const BUFFER_BYTES: usize = 4 << 20;

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
    pub(super) fn trim(&mut self) {
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

    /// The orders, as `(seq, order_uid, document)`, in `seq` order.
    pub(super) fn into_orders(self) -> Vec<(i64, Box<str>, Bytes)> {
        self.orders
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

    #[test]
    fn a_small_page_keeps_only_its_documents_bytes() {
        let mut page = Page::new();
        page.push(1, "a", &"x".repeat(1500));
        page.push(2, "b", &"y".repeat(500));
        page.trim();
        assert_eq!(page.allocated, 2000);
        let orders = page.into_orders();
        assert_eq!(orders[0].2, "x".repeat(1500).as_bytes());
        assert_eq!(orders[1].2, "y".repeat(500).as_bytes());
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
}
