//! The brokers the ingestor consumes from, behind one small trait: [`Transport`].
//!
//! A transport holds the broker session. It judges each message (validation runs there, so the
//! next batch is parsed while the writer waits on the database for the current one) and hands it
//! to the writer through a bounded channel, so that a slow database slows the broker down instead
//! of filling memory. Each [`Delivery`] carries its [`Ack`], which the writer sends once what the
//! message carries is committed. When the ingestor stops, the transport stops taking messages,
//! keeps its session until the writer has acked what it holds, then closes it within
//! [`SESSION_CLOSE_LIMIT`]. Whatever was not acked, the broker redelivers, and the writer stores it
//! idempotently.
//!
//! The gap sweeper reads messages by their sequence through an [`Archive`], a connection of its
//! own to the same broker.
//!
//! Two transports: [`stan`] (NATS Streaming, a durable queue subscription on a thread of its own,
//! as its client is synchronous) and [`jetstream`] (a durable pull consumer of a JetStream stream,
//! on the async runtime).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use orders::db::{Envelope, Verdict};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

pub mod jetstream;
pub mod stan;

/// A broker session: started once, it delivers until `link.stop`, then closes once `link.drained`
/// fires (or is dropped), within [`SESSION_CLOSE_LIMIT`].
pub trait Transport: Send {
    fn start(self: Box<Self>, link: Link) -> std::io::Result<Consuming>;
}

/// Where the gap sweeper reads messages by their sequence.
pub trait Archive: Send {
    /// The channel's last sequence; `None` when the broker did not tell in time (never 0 for that).
    fn last_sequence(&mut self) -> BoxFuture<'_, std::io::Result<Option<u64>>>;

    /// The messages `first..=last`, judged, ready for the writer, and the sequences of that range
    /// the broker no longer holds.
    fn read(&mut self, first: u64, last: u64) -> BoxFuture<'_, std::io::Result<Read>>;
}

/// What [`Archive::read`] found.
#[derive(Default)]
pub struct Read {
    pub deliveries: Vec<Delivery>,
    pub absent: Vec<u64>,
}

/// What connects a transport to the rest of the ingestor.
pub struct Link {
    /// Where the judged messages go, to the writer.
    pub deliveries: mpsc::Sender<Delivery>,
    /// Cancelled when the ingestor stops: take no more messages.
    pub stop: CancellationToken,
    /// Answered (or dropped) once the writer has sent the acks of everything committed: the
    /// session may close.
    pub drained: oneshot::Receiver<()>,
    pub metrics: Arc<Metrics>,
}

/// The longest a transport takes to close its session once `drained` fired.
pub const SESSION_CLOSE_LIMIT: Duration = Duration::from_secs(5);

/// A message handed to the writer, already judged. Acknowledge it once what it carries is
/// committed.
pub struct Delivery {
    pub envelope: Envelope,
    pub verdict: Verdict,
    pub redelivered: bool,
    pub ack: Ack,
}

impl Delivery {
    /// What the writer stores, and what it acks once that is committed.
    pub fn into_parts(self) -> ((Envelope, Verdict), Ack) {
        ((self.envelope, self.verdict), self.ack)
    }
}

/// The acknowledgement of a message read by its sequence: there is nothing to tell the broker.
struct Fetched;

impl Acknowledge for Fetched {
    fn send(self: Box<Self>) -> bool {
        true
    }
}

/// How a transport acknowledges one message.
pub trait Acknowledge: Send {
    /// Tells the broker the message is safely stored; false if the ack could not be sent. That is
    /// harmless: the broker redelivers the message and the writer recognises it. Called on a
    /// blocking thread, never on the async runtime.
    fn send(self: Box<Self>) -> bool;
}

/// The acknowledgement of one message, to send once what it carries is committed.
pub struct Ack(Box<dyn Acknowledge>);

impl Ack {
    pub fn new(ack: impl Acknowledge + 'static) -> Ack {
        Ack(Box::new(ack))
    }

    /// See [`Acknowledge::send`].
    pub fn send(self) -> bool {
        self.0.send()
    }
}

/// A running transport.
pub struct Consuming {
    /// Answered when the session is closed; dropped unanswered if the transport panicked.
    finished: oneshot::Receiver<()>,
}

impl Consuming {
    pub fn new(finished: oneshot::Receiver<()>) -> Consuming {
        Consuming { finished }
    }

    /// Waits, at most `limit`, for the session to close. One still blocked by then, on a broker
    /// that does not answer, is left behind: the process exits without it, and the broker
    /// redelivers whatever was not acked.
    pub async fn finished_within(self, limit: Duration) {
        match tokio::time::timeout(limit, self.finished).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => tracing::error!("the broker session panicked"),
            Err(_) => tracing::warn!(
                limit_ms = limit.as_millis() as u64,
                "the broker session did not close in time; stopping without it"
            ),
        }
    }
}

/// Validation: the message's bytes become an order or a rejection with its reason.
fn judge(payload: &[u8]) -> Verdict {
    match orders::parse_order(payload) {
        Ok(order) => Verdict::Valid(order),
        Err(rejection) => Verdict::Rejected(rejection),
    }
}

/// A delivery of the message `payload`, judged.
fn delivery(
    channel: &str,
    sequence: u64,
    published_at: DateTime<Utc>,
    payload: bytes::Bytes,
    redelivered: bool,
    ack: Ack,
) -> Delivery {
    let verdict = judge(&payload);
    Delivery {
        envelope: Envelope {
            channel: channel.to_string(),
            sequence,
            published_at,
            payload,
        },
        verdict,
        redelivered,
        ack,
    }
}

/// A message read by its sequence ([`Archive::read`]), judged.
fn fetched(
    channel: &str,
    sequence: u64,
    published_at: DateTime<Utc>,
    payload: bytes::Bytes,
) -> Delivery {
    delivery(
        channel,
        sequence,
        published_at,
        payload,
        false,
        Ack::new(Fetched),
    )
}
