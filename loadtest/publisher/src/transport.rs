//! The two brokers a run publishes to, behind one interface: NATS Streaming, whose client is
//! synchronous, and JetStream, whose asynchronous client runs on one tokio runtime of the run,
//! entered by each connection's thread to publish a message and wait for its ack.

use std::time::Duration;

use anyhow::{anyhow, Context as _};
use async_nats::header::{HeaderValue, NATS_MESSAGE_ID};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, Context};
use service_kit::jetstream::{ensure_stream, server_list, StreamSpec};
use tokio::runtime::{Handle, Runtime};

use crate::publish::{Message, Target, Transport};

/// What a run publishes through, shared by its connections.
pub enum Broker {
    Stan,
    /// The runtime of every JetStream connection of the run, and the stream they publish to.
    JetStream {
        runtime: Option<Runtime>,
        spec: StreamSpec,
    },
}

/// A connection to the broker.
pub enum Client {
    Stan(stan::Client),
    JetStream {
        context: Context,
        runtime: Handle,
        stream: String,
    },
}

/// What the broker answered for a message it stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    Stored,
    /// JetStream already held a message with its id (`Nats-Msg-Id`), within its duplicate window:
    /// stored once, and acknowledged.
    Duplicate,
}

/// Why a publish was not acknowledged.
#[derive(Debug)]
pub enum Failure {
    /// The ack or the connection was lost, or the broker is not ready: publishing the same
    /// message again may succeed.
    Lost(anyhow::Error),
    /// The broker refuses this message: publishing it again cannot help.
    Refused(anyhow::Error),
}

impl Broker {
    /// Gets the run's broker ready. For JetStream: its runtime, and the stream, created when it is
    /// missing and `--no-create-stream` is not given. Fails at once when the server cannot be
    /// reached.
    pub fn start(target: &Target) -> anyhow::Result<Broker> {
        let Transport::JetStream {
            stream,
            replicas,
            create_stream,
        } = &target.transport
        else {
            return Ok(Broker::Stan);
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("publisher-nats")
            .enable_all()
            .build()
            .context("cannot start the NATS client's runtime")?;
        let spec = StreamSpec {
            name: stream.clone(),
            subject: target.channel.clone(),
            replicas: *replicas,
        };
        runtime
            .block_on(async {
                let context = connect_jetstream(&target.nats_url).await?;
                ensure_stream(&context, &spec, *create_stream).await
            })
            .with_context(|| format!("nothing was published to {}", target.destination()))?;
        Ok(Broker::JetStream {
            runtime: Some(runtime),
            spec,
        })
    }

    /// A new connection, the run's `n`th.
    pub fn connect(&self, target: &Target, n: u16) -> anyhow::Result<Client> {
        match self {
            Broker::Stan => connect_stan(target, n).map(Client::Stan),
            Broker::JetStream { runtime, spec } => {
                let runtime = runtime.as_ref().expect("a runtime until dropped").handle();
                Ok(Client::JetStream {
                    context: runtime.block_on(connect_jetstream(&target.nats_url))?,
                    runtime: runtime.clone(),
                    stream: spec.name.clone(),
                })
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // Every message was acknowledged or given up on: nothing is left to flush, and a client
        // still reconnecting to a broker that is gone has nothing to wait for.
        if let Broker::JetStream { runtime, .. } = self {
            if let Some(runtime) = runtime.take() {
                runtime.shutdown_background();
            }
        }
    }
}

impl Client {
    /// Publishes `message` and waits for the broker's ack.
    pub fn publish(&self, target: &Target, message: &Message) -> Result<Ack, Failure> {
        match self {
            Client::Stan(client) => client
                .publish(&target.channel, &message.bytes)
                .map(|()| Ack::Stored)
                .map_err(|e| {
                    Failure::Lost(anyhow!(e).context(format!(
                        "cannot publish {} to channel {} (no ack from the broker)",
                        message.name, target.channel
                    )))
                }),
            Client::JetStream {
                context,
                runtime,
                stream,
            } => runtime.block_on(publish_jetstream(context, stream, target, message)),
        }
    }

    /// Whether the connection is up, so that a message may be published again on it. A STAN
    /// client is never reused after a failure: the broker may have forgotten it.
    pub fn is_connected(&self) -> bool {
        match self {
            Client::Stan(_) => false,
            Client::JetStream { context, .. } => {
                context.client().connection_state() == async_nats::connection::State::Connected
            }
        }
    }

    /// Lets the client go. Closing a STAN client asks the broker to forget it and waits up to 2 s
    /// for an answer, which a broker that is gone never gives: that wait is left to a thread of
    /// its own.
    pub fn close(self) {
        match self {
            Client::Stan(client) => {
                std::thread::spawn(move || drop(client));
            }
            Client::JetStream { .. } => {}
        }
    }
}

async fn publish_jetstream(
    context: &Context,
    stream: &str,
    target: &Target,
    message: &Message,
) -> Result<Ack, Failure> {
    let cannot = || {
        format!(
            "cannot publish {} to subject {} (stream {stream})",
            message.name, target.channel
        )
    };
    let publish = PublishMessage::build()
        .payload(message.bytes.clone().into())
        .header(
            NATS_MESSAGE_ID,
            message_id(&message.id).map_err(Failure::Refused)?,
        );
    let sent = context.send_publish(target.channel.clone(), publish).await;
    let ack = match sent {
        Ok(ack) => ack.await,
        Err(e) => Err(e),
    };
    match ack {
        Ok(ack) if ack.stream != stream => Err(Failure::Refused(anyhow!(
            "{}: the broker stored it in the stream {}, which also captures the subject",
            cannot(),
            ack.stream
        ))),
        Ok(ack) if ack.duplicate => Ok(Ack::Duplicate),
        Ok(_) => Ok(Ack::Stored),
        Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
            Err(Failure::Refused(anyhow!(
                "{}: {e} (the server's max_payload, headers included)",
                cannot()
            )))
        }
        Err(e) if e.kind() == PublishErrorKind::StreamNotFound => Err(Failure::Lost(anyhow!(
            "{}: no stream captures the subject (the stream was deleted, or JetStream is not \
             ready)",
            cannot()
        ))),
        Err(e) => Err(Failure::Lost(anyhow!("{}: {e}", cannot()))),
    }
}

/// A message's id as its `Nats-Msg-Id` header, or why it cannot be one.
pub fn message_id(id: &str) -> anyhow::Result<HeaderValue> {
    id.parse().map_err(|_| {
        anyhow!(
            "the message id {id:?} cannot be a NATS header (Nats-Msg-Id): it holds a line break"
        )
    })
}

async fn connect_jetstream(urls: &str) -> anyhow::Result<Context> {
    let client = service_kit::jetstream::connect(urls, "publisher")
        .await
        .map_err(|e| {
            // The context above names the URLs as given, with any password in them.
            let why = e
                .chain()
                .nth(1)
                .map_or_else(String::new, |c| format!(": {c}"));
            anyhow!("cannot connect to NATS at {}{why}", redact(urls))
        })?;
    let context = jetstream::ContextBuilder::new()
        .timeout(ACK_TIMEOUT)
        .build(client);
    Ok(context)
}

/// How long a JetStream publish waits for its ack.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// The client id of connection `n`: new at every connect, since the cluster refuses a second
/// client with the same id, and a broker restarted on its store still knows the old one.
pub fn client_id(n: u16) -> String {
    format!("publisher-{}-{n}", uuid::Uuid::new_v4().simple())
}

fn connect_stan(target: &Target, n: u16) -> anyhow::Result<stan::Client> {
    let Transport::Stan { cluster_id } = &target.transport else {
        unreachable!("a STAN connection for a STAN target");
    };
    let url = redact(&target.nats_url);
    let nats = nats::Options::new()
        .with_name("publisher")
        .connect(&server_list(&target.nats_url).join(","))
        .with_context(|| format!("cannot connect to NATS at {url}"))?;
    stan::connect(nats, cluster_id, &client_id(n)).with_context(|| {
        format!("cannot join the NATS Streaming cluster {cluster_id:?} at {url} (is --cluster-id right?)")
    })
}

/// The URL with any user name and password replaced, for messages.
pub fn redact(url: &str) -> String {
    url.split(',')
        .map(|one| match (one.find("://"), one.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}***{}", &one[..scheme + 3], &one[at..])
            }
            (None, Some(at)) => format!("***{}", &one[at..]),
            _ => one.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_a_url_are_not_shown() {
        assert_eq!(
            redact("nats://user:secret@host:4222"),
            "nats://***@host:4222"
        );
        assert_eq!(
            redact("token@host:4222,nats://a:b@other"),
            "***@host:4222,nats://***@other"
        );
        assert_eq!(redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }

    #[test]
    fn an_id_with_a_line_break_cannot_be_a_message_id() {
        assert!(message_id("model.json").is_ok());
        let error = message_id("a\nb.json").unwrap_err().to_string();
        assert!(
            error.contains("\"a\\nb.json\" cannot be a NATS header"),
            "{error}"
        );
    }
}
