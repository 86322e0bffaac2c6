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
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use orders::db::Envelope;
use orders::lifecycle::Backoff;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::metrics::{Metrics, RenewalLabel};

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
    /// Tells the broker the message is safely stored; false if the ack could not be sent. That is
    /// harmless: the broker redelivers the message and the writer recognises it.
    pub fn ack(&self) -> bool {
        match self.message.ack() {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(sequence = self.envelope.sequence, error = %e, "ack not sent; the broker will redeliver");
                false
            }
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
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Bridge> {
        let thread = std::thread::Builder::new()
            .name("stan-bridge".into())
            .spawn(move || run(&settings, deliveries, &stop, drained, &metrics))?;
        Ok(Bridge { thread })
    }

    pub fn join(self) {
        if self.thread.join().is_err() {
            tracing::error!("the broker thread panicked");
        }
    }
}

/// How often the session asks the broker whether it still knows this client.
const PING_EVERY: Duration = Duration::from_secs(3);
const PING_TIMEOUT: Duration = Duration::from_secs(2);
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

fn forward(
    s: &BrokerSettings,
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

/// The STAN protocol's client ping, which the `stan` crate does not send: the broker answers whether
/// it still knows the connection. The crate keeps the connection id private but shows it in its
/// `Debug` output, which is where we read it from (the crate's version is pinned).
struct Pinger {
    subject: String,
    request: Vec<u8>,
}

enum PingError {
    /// The broker answered that it does not know this connection.
    Forgotten(String),
    /// No answer in time.
    Unanswered(std::io::Error),
}

impl Pinger {
    fn for_client(client: &stan::Client, cluster_id: &str) -> Option<Pinger> {
        let conn_id = conn_id_from_debug(&format!("{client:?}"))?;
        // protobuf `Ping { bytes connID = 1; }`
        let len = u8::try_from(conn_id.len()).ok().filter(|l| *l < 0x80)?;
        let mut request = vec![0x0a, len];
        request.extend_from_slice(&conn_id);
        Some(Pinger {
            subject: format!("_STAN.discover.{cluster_id}.pings"),
            request,
        })
    }

    fn ping(&self, connection: &nats::Connection) -> Result<(), PingError> {
        let reply = connection
            .request_timeout(&self.subject, &self.request, PING_TIMEOUT)
            .map_err(PingError::Unanswered)?;
        // protobuf `PingResponse { string error = 1; }`: empty when all is well.
        match reply.data.get(2..) {
            None => Ok(()),
            Some(error) => Err(PingError::Forgotten(
                String::from_utf8_lossy(error).into_owned(),
            )),
        }
    }
}

/// Reads `conn_id: [1, 2, 3]` from the `Debug` output of a `stan::Client`.
fn conn_id_from_debug(debug: &str) -> Option<Vec<u8>> {
    let start = debug.find("conn_id: [")? + "conn_id: [".len();
    let end = start + debug[start..].find(']')?;
    debug[start..end]
        .split(',')
        .map(|b| b.trim().parse::<u8>().ok())
        .collect::<Option<Vec<u8>>>()
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::conn_id_from_debug;

    #[test]
    fn the_connection_id_is_read_from_the_clients_debug_output() {
        let debug = r#"Client { cluster_id: "test-cluster", client_id: "x", conn_id: [97, 98, 99], pub_prefix: "p" }"#;
        assert_eq!(conn_id_from_debug(debug), Some(b"abc".to_vec()));
        assert_eq!(conn_id_from_debug("Client { }"), None);
        assert_eq!(conn_id_from_debug("conn_id: []"), None);
    }
}
