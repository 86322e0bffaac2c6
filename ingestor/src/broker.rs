//! The bridge between the synchronous `stan` client and tokio.
//!
//! One thread owns the broker session: a NATS connection, a STAN client and a durable queue
//! subscription. It hands each message to the writer through a bounded channel, so a slow
//! database slows the broker down instead of filling memory. The `stan` crate cannot tell that its
//! session died, so the thread watches the NATS connection itself and rebuilds the whole session,
//! with the same client id and durable, whenever the connection was lost: the broker then
//! redelivers whatever was not acknowledged, and the writer stores it idempotently.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use orders::db::Envelope;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Where and how to subscribe.
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    pub nats_url: String,
    pub cluster_id: String,
    pub client_id: String,
    pub channel: String,
    pub durable: String,
    pub max_in_flight: i32,
    pub ack_wait_secs: i32,
}

/// A message handed to the writer; acknowledge it once what it carries is committed.
pub struct Delivery {
    pub envelope: Envelope,
    pub redelivered: bool,
    message: stan::Message,
}

impl Delivery {
    /// Tells the broker the message is safely stored. An ack that cannot be sent is harmless: the
    /// broker redelivers the message and the writer recognises it.
    pub fn ack(&self) {
        if let Err(e) = self.message.ack() {
            tracing::debug!(sequence = self.envelope.sequence, error = %e, "ack not sent; the broker will redeliver");
        }
    }
}

/// The running bridge thread.
pub struct Bridge {
    thread: JoinHandle<()>,
}

impl Bridge {
    /// Starts the thread. It stops forwarding when `stop` is cancelled, then keeps its session open
    /// until `drained` fires (or is dropped), so that the writer's last acks still reach the broker.
    pub fn spawn(
        settings: BrokerSettings,
        deliveries: mpsc::Sender<Delivery>,
        stop: CancellationToken,
        drained: oneshot::Receiver<()>,
    ) -> std::io::Result<Bridge> {
        let thread = std::thread::Builder::new()
            .name("stan-bridge".into())
            .spawn(move || run(&settings, deliveries, &stop, drained))?;
        Ok(Bridge { thread })
    }

    pub fn join(self) {
        if self.thread.join().is_err() {
            tracing::error!("the broker thread panicked");
        }
    }
}

/// One NATS connection with its STAN client and subscription.
struct Session {
    // Field order is drop order: the subscription (a durable one is not unsubscribed on drop), then
    // the client (which sends the broker a close request), then the connection.
    subscription: stan::Subscription,
    _client: stan::Client,
    connection: nats::Connection,
    /// Set by the NATS client when the connection came back after a loss.
    reconnected: Arc<AtomicBool>,
}

impl Session {
    fn open(s: &BrokerSettings) -> std::io::Result<Session> {
        let reconnected = Arc::new(AtomicBool::new(false));
        let flag = reconnected.clone();
        let channel = s.channel.clone();
        let connection = nats::Options::new()
            .with_name(&s.client_id)
            .max_reconnects(None)
            .disconnect_callback(move || {
                tracing::warn!(%channel, "lost the connection to the broker; reconnecting");
            })
            .reconnect_callback(move || flag.store(true, Ordering::SeqCst))
            .connect(&s.nats_url)?;
        let client = stan::connect(connection.clone(), &s.cluster_id, &s.client_id)?;
        let subscription = client.subscribe(
            &s.channel,
            stan::SubscriptionConfig {
                queue_group: Some(&s.durable),
                durable_name: Some(&s.durable),
                start: stan::SubscriptionStart::AllAvailable,
                max_in_flight: s.max_in_flight,
                ack_wait_in_secs: s.ack_wait_secs,
            },
        )?;
        Ok(Session {
            subscription,
            _client: client,
            connection,
            reconnected,
        })
    }

    fn close(self) {
        let Session {
            subscription,
            _client,
            connection,
            ..
        } = self;
        drop(subscription);
        drop(_client);
        connection.close();
    }
}

fn run(
    s: &BrokerSettings,
    deliveries: mpsc::Sender<Delivery>,
    stop: &CancellationToken,
    drained: oneshot::Receiver<()>,
) {
    let mut backoff = Backoff::default();
    let mut last: Option<Session> = None;
    while !stop.is_cancelled() {
        let session = match Session::open(s) {
            Ok(session) => session,
            Err(e) => {
                let wait = backoff.next_delay();
                tracing::warn!(nats_url = %s.nats_url, client_id = %s.client_id, error = %e,
                    retry_in_ms = wait.as_millis() as u64, "cannot subscribe to the broker");
                sleep_unless_stopped(wait, stop);
                continue;
            }
        };
        backoff = Backoff::default();
        tracing::info!(channel = %s.channel, durable = %s.durable, client_id = %s.client_id,
            "subscribed to the broker");
        let ended = forward(s, &session, &deliveries, stop);
        match ended {
            Ended::Stopped => {
                last = Some(session);
                break;
            }
            Ended::WriterGone => {
                last = Some(session);
                break;
            }
            Ended::Reconnected => {
                tracing::warn!(channel = %s.channel, "connection to the broker came back; renewing the session");
                session.close();
            }
        }
    }
    // Let the writer finish the messages in hand, and ack them, over the live session.
    drop(deliveries);
    let _ = drained.blocking_recv();
    if let Some(session) = last {
        session.close();
        tracing::info!(channel = %s.channel, "closed the broker session; the durable stays");
    }
}

enum Ended {
    Stopped,
    WriterGone,
    Reconnected,
}

fn forward(
    s: &BrokerSettings,
    session: &Session,
    deliveries: &mpsc::Sender<Delivery>,
    stop: &CancellationToken,
) -> Ended {
    loop {
        if stop.is_cancelled() {
            return Ended::Stopped;
        }
        if session.reconnected.load(Ordering::SeqCst) {
            return Ended::Reconnected;
        }
        let mut message = match session
            .subscription
            .next_timeout(Duration::from_millis(200))
        {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(e) => {
                // A message the client could not decode: it never reaches us, and the broker
                // redelivers it after the ack wait. Nothing to do but say so.
                tracing::warn!(error = %e, "the broker sent something that is not a message");
                continue;
            }
        };
        let payload = Bytes::from(std::mem::take(&mut message.data));
        let delivery = Delivery {
            envelope: Envelope {
                channel: s.channel.clone(),
                sequence: message.sequence,
                published_at: to_utc(message.timestamp),
                payload,
            },
            redelivered: message.redelivered,
            message,
        };
        if deliveries.blocking_send(delivery).is_err() {
            return Ended::WriterGone;
        }
    }
}

fn to_utc(t: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(t)
}

fn sleep_unless_stopped(wait: Duration, stop: &CancellationToken) {
    let step = Duration::from_millis(100);
    let mut left = wait;
    while !stop.is_cancelled() && !left.is_zero() {
        let nap = left.min(step);
        std::thread::sleep(nap);
        left -= nap;
    }
}

/// Exponential backoff from 100 ms to 5 s.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: Duration::from_millis(100),
        }
    }
}

impl Backoff {
    pub fn next_delay(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(5));
        now
    }
}
