//! The SQL of the order service, one small function per statement.

mod dead_letters;
mod read;
mod write;

pub use dead_letters::{
    dead_letter, list_dead_letters, replay_dead_letter, DeadLetter, DeadLetterQuery, Replay,
};
pub use read::{max_seq, orders_after, StoredOrder};
pub use write::{insert_plain, store_batch, BatchReport, Envelope, Verdict};

/// The channel of the `NOTIFY` sent with every commit that stores orders. Its payload is the highest
/// `seq` of the commit, but a listener treats it as a wake-up only and reads the table for the data.
pub const NOTIFY_CHANNEL: &str = "orders_stored";

/// The advisory lock every writer of `orders` holds from before its first insert until its commit,
/// so that rows become visible in `seq` order (see the `orders` migration).
pub const WRITE_LOCK: i64 = 0x6f72_6465_7273; // "orders"
