//! JetStream: a durable pull consumer of the stream of orders, through `async-nats`.
//!
//! The session is a task on the async runtime. It connects (to any of the servers given; the
//! client reconnects by itself, to any server of a cluster), makes sure the stream exists and the
//! durable consumer is configured as the settings say (explicit acks, the ack wait, the most
//! messages unacknowledged), and pulls. When the consumer goes away (deleted, or unreachable while
//! a cluster elects a leader), it is looked up, or created, again with backoff; messages not acked
//! meanwhile are redelivered by the broker after the ack wait.

use std::time::Duration;

use async_nats::jetstream::consumer::pull::{Config as ConsumerConfig, Stream as Messages};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::message::Acker;
use async_nats::jetstream::{self, Context};
use futures_util::StreamExt;
use service_kit::jetstream::{ensure_stream, StreamSpec};
use service_kit::lifecycle::Backoff;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{delivery, Ack, Acknowledge, Consuming, Delivery, Link, Transport};
use crate::metrics::RenewalLabel;

mod archive;

pub use archive::JetStreamArchive;

/// Where and how to consume.
#[derive(Debug, Clone)]
pub struct JetStreamSettings {
    /// The servers: one URL, or several separated by commas.
    pub nats_url: String,
    /// The name this connection shows on the servers.
    pub connection_name: String,
    /// The stream, its subject, and its replicas if this ingestor creates it.
    pub stream: StreamSpec,
    /// Whether a missing stream is created.
    pub create_stream: bool,
    /// The durable consumer: every ingestor of that name shares its messages.
    pub durable: String,
    /// The consumer's `max_ack_pending`: messages delivered and not yet acknowledged, at most.
    pub max_ack_pending: i64,
    pub ack_wait: Duration,
}

/// How long a pull request waits on the server for messages, and the idle heartbeat within it by
/// which a lost connection is noticed.
const PULL_EXPIRES: Duration = Duration::from_secs(30);
const PULL_HEARTBEAT: Duration = Duration::from_secs(5);
/// The most messages one pull request asks for.
const PULL_BATCH: usize = 1024;
/// How long the acks still buffered in the client may take to reach the server at the end.
const FLUSH_LIMIT: Duration = Duration::from_secs(2);

/// The acknowledgement of one JetStream message.
struct JetStreamAck {
    acker: Acker,
    runtime: Handle,
}

impl Acknowledge for JetStreamAck {
    fn send(self: Box<Self>) -> bool {
        // The ack is one publish to the message's reply subject; the client buffers it and a
        // flush at the end of the session makes sure it left.
        match self.runtime.block_on(self.acker.ack()) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(error = %e, "ack not sent; the broker will redeliver");
                false
            }
        }
    }
}

impl Transport for JetStreamSettings {
    /// Starts the session's task on the current runtime.
    fn start(self: Box<Self>, link: Link) -> std::io::Result<Consuming> {
        let (finish, finished) = oneshot::channel();
        tokio::spawn(async move {
            run(*self, link).await;
            let _ = finish.send(());
        });
        Ok(Consuming::new(finished))
    }
}

async fn run(s: JetStreamSettings, link: Link) {
    let Link {
        deliveries,
        stop,
        drained,
        metrics,
    } = link;
    let Some(client) = connect(&s, &stop).await else {
        return;
    };
    let js = jetstream::new(client.clone());
    let mut backoff = Backoff::new("subscribing to JetStream");
    let mut first = true;
    while !stop.is_cancelled() {
        let messages = match subscribe(&js, &s).await {
            Ok(messages) => messages,
            Err(e) => {
                backoff.failed(&format_args!("{e:#}"));
                sleep_unless_stopped(backoff.next_pause(), &stop).await;
                continue;
            }
        };
        backoff.succeeded();
        if !first {
            metrics
                .session_renewals
                .get_or_create(&RenewalLabel::FORGOTTEN)
                .inc();
        }
        first = false;
        tracing::info!(stream = %s.stream.name, subject = %s.stream.subject, durable = %s.durable,
            "subscribed to JetStream");
        if forward(&s, messages, &deliveries, &stop).await == Ended::WriterGone {
            break;
        }
    }
    // Let the writer finish the messages in hand and ack them over the live connection; then make
    // sure the acks have left before the connection closes.
    drop(deliveries);
    let _ = drained.await;
    if tokio::time::timeout(FLUSH_LIMIT, client.flush())
        .await
        .map_or(true, |flushed| flushed.is_err())
    {
        tracing::warn!("the last acks may not have reached JetStream; it will redeliver them");
    }
    tracing::info!(stream = %s.stream.name, "closed the JetStream session; the durable consumer stays");
}

/// Connects with backoff until it succeeds; `None` if the ingestor stops first.
async fn connect(s: &JetStreamSettings, stop: &CancellationToken) -> Option<async_nats::Client> {
    let mut backoff = Backoff::new("connecting to JetStream");
    loop {
        tokio::select! {
            () = stop.cancelled() => return None,
            connected = service_kit::jetstream::connect(&s.nats_url, &s.connection_name) => {
                match connected {
                    Ok(client) => return Some(client),
                    Err(e) => {
                        backoff.failed(&format_args!("{e:#}"));
                        sleep_unless_stopped(backoff.next_pause(), stop).await;
                    }
                }
            }
        }
    }
}

/// The stream, the durable consumer as the settings configure it, and its messages.
async fn subscribe(js: &Context, s: &JetStreamSettings) -> anyhow::Result<Messages> {
    let stream = ensure_stream(js, &s.stream, s.create_stream).await?;
    // Created, or updated to these settings if it exists.
    let consumer: PullConsumer = stream
        .create_consumer(consumer_config(s))
        .await
        .map_err(|e| anyhow::anyhow!("configuring the durable consumer {}: {e}", s.durable))?;
    let messages = consumer
        .stream()
        .max_messages_per_batch(PULL_BATCH)
        .expires(PULL_EXPIRES)
        .heartbeat(PULL_HEARTBEAT)
        .messages()
        .await
        .map_err(|e| anyhow::anyhow!("pulling from the durable consumer {}: {e}", s.durable))?;
    Ok(messages)
}

/// The durable consumer: every message of the subject from the start of the stream, each acked
/// explicitly once committed.
fn consumer_config(s: &JetStreamSettings) -> ConsumerConfig {
    ConsumerConfig {
        durable_name: Some(s.durable.clone()),
        description: Some("The order service's ingestor".into()),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: s.ack_wait,
        max_ack_pending: s.max_ack_pending,
        filter_subject: s.stream.subject.clone(),
        ..ConsumerConfig::default()
    }
}

#[derive(PartialEq, Eq)]
enum Ended {
    Stopped,
    WriterGone,
    /// The consumer is gone or unreachable: look it up again.
    Lost,
}

async fn forward(
    s: &JetStreamSettings,
    mut messages: Messages,
    deliveries: &mpsc::Sender<Delivery>,
    stop: &CancellationToken,
) -> Ended {
    use async_nats::jetstream::consumer::pull::MessagesErrorKind as Kind;
    let runtime = Handle::current();
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => return Ended::Stopped,
            next = messages.next() => next,
        };
        let message = match next {
            Some(Ok(message)) => message,
            Some(Err(e)) if e.kind() == Kind::MissingHeartbeat => {
                // The client pulls again by itself once the connection is back.
                tracing::debug!(error = %e, "JetStream missed a heartbeat");
                continue;
            }
            Some(Err(e)) if matches!(e.kind(), Kind::Pull | Kind::Other) => {
                tracing::warn!(error = %e, "a JetStream pull failed; pulling again");
                continue;
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "the JetStream consumer is unavailable; subscribing again");
                return Ended::Lost;
            }
            None => return Ended::Lost,
        };
        let Some(delivery) = judged(s, message, &runtime) else {
            continue;
        };
        tokio::select! {
            sent = deliveries.send(delivery) => if sent.is_err() {
                return Ended::WriterGone;
            },
            // Not handed over: unacked, so the broker redelivers it.
            () = stop.cancelled() => return Ended::Stopped,
        }
    }
}

/// A delivery of `message`, judged; `None` for what is not a message of the stream (no metadata),
/// which is logged and left alone.
fn judged(
    s: &JetStreamSettings,
    message: jetstream::Message,
    runtime: &Handle,
) -> Option<Delivery> {
    let (sequence, published_at, redelivered) = match message.info() {
        Ok(info) => (info.stream_sequence, info.published, info.delivered > 1),
        Err(e) => {
            tracing::warn!(error = %e, "JetStream sent something that is not a message of the stream");
            return None;
        }
    };
    let (message, acker) = message.split();
    Some(delivery(
        &s.stream.subject,
        sequence,
        published_at,
        message.payload,
        redelivered,
        Ack::new(JetStreamAck {
            acker,
            runtime: runtime.clone(),
        }),
    ))
}

async fn sleep_unless_stopped(wait: Duration, stop: &CancellationToken) {
    tokio::select! {
        () = stop.cancelled() => {}
        () = tokio::time::sleep(wait) => {}
    }
}
