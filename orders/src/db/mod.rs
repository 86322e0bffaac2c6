//! The SQL of the order service, one small function per statement.

mod copy;
mod dead_letters;
pub mod ledger;
mod read;
mod rows;
#[cfg(feature = "bench")]
mod unnest;
mod write;

pub use dead_letters::{
    dead_letter, dismiss_dead_letter, list_dead_letters, replay_dead_letter, DeadLetter,
    DeadLetterQuery, Dismissal, DismissalReason, InvalidReason, Replay,
};
pub use read::{
    each_order_after, each_order_newest_first, each_order_uid_after, max_seq, order_document,
    orders_after, StoredOrder,
};
pub use write::{store_batch, BatchReport, Envelope, Verdict};

/// The write path's copies alone, and the `INSERT … SELECT FROM UNNEST(…)` statements they
/// replaced, for the benchmark that measures both as ceilings against the ingestor's whole
/// transaction (`loadtest/bench`). Not the domain's API: only the `bench` feature opens it, and the
/// service always goes through [`store_batch`].
#[cfg(feature = "bench")]
pub mod statements {
    pub use super::rows::{copy_orders, copy_parts};
    pub use super::unnest::{insert_orders, insert_parts};
}

/// The channel of the `NOTIFY` sent with every commit that stores orders. Its payload is the highest
/// `seq` of the commit, but a listener treats it as a wake-up only and reads the table for the data.
pub const NOTIFY_CHANNEL: &str = "orders_stored";

/// The advisory lock every writer of `orders` holds from before its first insert until its commit,
/// so that rows become visible in `seq` order (see the `orders` migration).
pub const WRITE_LOCK: i64 = 0x6f72_6465_7273; // "orders"
