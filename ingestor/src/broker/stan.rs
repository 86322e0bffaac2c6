//! NATS Streaming: the synchronous `stan` client, bridged to tokio.
//!
//! One thread owns the broker session: a NATS connection, a STAN client and a durable queue
//! subscription. The `stan` crate cannot tell that its session died, so the thread watches the NATS
//! connection itself and rebuilds the whole session, with the same client id and durable, whenever
//! the connection was lost: the broker then redelivers whatever was not acknowledged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use service_kit::lifecycle::Backoff;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{delivery, Ack, Acknowledge, Consuming, Delivery, Link, Transport};
use crate::metrics::{Metrics, RenewalLabel};

mod archive;
mod ping;

pub use archive::StanArchive;

use ping::{PingError, Pinger};

/// Where and how to subscribe.
#[derive(Debug, Clone)]
pub struct StanSettings {
    pub nats_url: String,
    pub cluster_id: String,
    pub client_id: String,
    pub channel: String,
    pub durable: String,
    pub max_in_flight: i32,
    pub ack_wait_secs: i32,
}

/// The acknowledgement of one NATS Streaming message.
struct StanAck {
    sequence: u64,
    message: stan::Message,
}

impl Acknowledge for StanAck {
    fn send(self: Box<Self>) -> bool {
        match self.message.ack() {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(sequence = self.sequence, error = %e, "ack not sent; the broker will redeliver");
                false
            }
        }
    }
}

/// How long closing the NATS connection may take. `nats::Connection::close` first waits for the
/// server to answer a PING; while the connection is down that wait has no end, since the crate
/// writes no PING then and completes the wait only once it has reconnected, which, with
/// `max_reconnects(None)`, it tries for ever. With the 2 s the `stan` crate's close request may
/// wait for its answer, and a second of margin, this keeps the close within
/// [`super::SESSION_CLOSE_LIMIT`].
const CONNECTION_CLOSE_LIMIT: Duration = Duration::from_secs(2);

impl Transport for StanSettings {
    /// Starts the session's thread.
    fn start(self: Box<Self>, link: Link) -> std::io::Result<Consuming> {
        let (finish, finished) = oneshot::channel();
        std::thread::Builder::new()
            .name("stan-bridge".into())
            .spawn(move || {
                let Link {
                    deliveries,
                    stop,
                    drained,
                    metrics,
                } = link;
                run(&self, deliveries, &stop, drained, &metrics);
                let _ = finish.send(());
            })?;
        Ok(Consuming::new(finished))
    }
}

/// How often the session asks the broker whether it still knows this client.
const PING_EVERY: Duration = Duration::from_secs(3);
/// Unanswered pings in a row after which the session is renewed.
const PINGS_MISSED: u32 = 3;

/// One NATS connection with its STAN client and subscription.
struct Session {
    // Field order is drop order: the subscription (a durable one is not unsubscribed on drop), then
    // the client (which sends the broker a close request), then the connection.
    subscription: stan::Subscription,
    _client: stan::Client,
    connection: nats::Connection,
    /// Set by the NATS client when the connection came back after a loss.
    reconnected: Arc<AtomicBool>,
    pinger: Option<Pinger>,
}

impl Session {
    fn open(s: &StanSettings) -> std::io::Result<Session> {
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
        let pinger = Pinger::for_client(&client, &s.cluster_id);
        if pinger.is_none() {
            tracing::warn!("cannot read the STAN connection id; the session will not be pinged");
        }
        Ok(Session {
            subscription,
            _client: client,
            connection,
            reconnected,
            pinger,
        })
    }

    /// Closes the session within [`super::SESSION_CLOSE_LIMIT`], whether or not the broker answers.
    fn close(self) {
        let Session {
            subscription,
            _client,
            connection,
            ..
        } = self;
        drop(subscription);
        // Asks the broker to forget the client, waiting up to 2 s for the answer. Once it answers,
        // every ack sent before it has reached the NATS server.
        drop(_client);
        if !close_within(connection, CONNECTION_CLOSE_LIMIT) {
            tracing::warn!(
                limit_ms = CONNECTION_CLOSE_LIMIT.as_millis() as u64,
                "the connection to the broker did not close in time; leaving it behind"
            );
        }
    }
}

/// Closes `connection` on a thread of its own, waiting at most `limit`; false if it did not close
/// in time. The thread is then left waiting: it ends should the connection come back, and with the
/// process otherwise.
fn close_within(connection: nats::Connection, limit: Duration) -> bool {
    let (closed, close) = std::sync::mpsc::channel();
    let closing = std::thread::Builder::new()
        .name("nats-close".into())
        .spawn(move || {
            connection.close();
            let _ = closed.send(());
        });
    // Without a thread the connection is just dropped; its subscriptions are gone already.
    closing.is_ok() && close.recv_timeout(limit).is_ok()
}

fn run(
    s: &StanSettings,
    deliveries: mpsc::Sender<Delivery>,
    stop: &CancellationToken,
    drained: oneshot::Receiver<()>,
    metrics: &Metrics,
) {
    let mut backoff = Backoff::new("subscribing to the broker");
    let mut last: Option<Session> = None;
    while !stop.is_cancelled() {
        let session = match Session::open(s) {
            Ok(session) => session,
            Err(e) => {
                backoff.failed(&format_args!(
                    "{} (client id {}): {e}",
                    s.nats_url, s.client_id
                ));
                sleep_unless_stopped(backoff.next_pause(), stop);
                continue;
            }
        };
        backoff.succeeded();
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
                metrics
                    .session_renewals
                    .get_or_create(&RenewalLabel::RECONNECTED)
                    .inc();
                session.close();
            }
            Ended::Forgotten => {
                metrics
                    .session_renewals
                    .get_or_create(&RenewalLabel::FORGOTTEN)
                    .inc();
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
    /// The broker dropped this client, for example after missed heartbeats.
    Forgotten,
}

// Past 60 lines: one loop that takes a message, pings the broker and watches for the stop, the
// writer and the connection; the reasons it ends are best read side by side.
fn forward(
    s: &StanSettings,
    session: &Session,
    deliveries: &mpsc::Sender<Delivery>,
    stop: &CancellationToken,
) -> Ended {
    let mut pinged = Instant::now();
    let mut missed = 0;
    loop {
        if stop.is_cancelled() {
            return Ended::Stopped;
        }
        if session.reconnected.load(Ordering::SeqCst) {
            return Ended::Reconnected;
        }
        if let Some(pinger) = session
            .pinger
            .as_ref()
            .filter(|_| pinged.elapsed() >= PING_EVERY)
        {
            pinged = Instant::now();
            match pinger.ping(&session.connection) {
                Ok(()) => missed = 0,
                Err(PingError::Forgotten(why)) => {
                    tracing::warn!(reason = %why, "the broker no longer knows this client; renewing the session");
                    return Ended::Forgotten;
                }
                Err(PingError::Unanswered(e)) => {
                    missed += 1;
                    tracing::debug!(error = %e, missed, "the broker did not answer a ping");
                    if missed >= PINGS_MISSED {
                        tracing::warn!(
                            missed,
                            "the broker stopped answering pings; renewing the session"
                        );
                        return Ended::Forgotten;
                    }
                }
            }
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
        let delivery = delivery(
            &s.channel,
            message.sequence,
            to_utc(message.timestamp),
            payload,
            message.redelivered,
            Ack::new(StanAck {
                sequence: message.sequence,
                message,
            }),
        );
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
