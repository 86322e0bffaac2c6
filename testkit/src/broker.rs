//! Either broker, NATS Streaming or JetStream, for tests that prove the same guarantees against
//! both from one source: a test takes a [`Transport`] and is run once for each
//! ([`for_each_transport!`](crate::for_each_transport)).

use std::collections::VecDeque;

use service_kit::jetstream::{ensure_stream, StreamSpec};

use crate::stan::{StanPublisher, SubscriptionState};

/// The broker a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Stan,
    JetStream,
}

impl Transport {
    /// The value of the processes' `BROKER` setting.
    pub fn setting(self) -> &'static str {
        match self {
            Transport::Stan => "stan",
            Transport::JetStream => "jetstream",
        }
    }

    /// The server every test of this transport shares, as `scripts/test` starts it.
    pub fn shared_url(self) -> String {
        match self {
            Transport::Stan => crate::stan_url(),
            Transport::JetStream => crate::jetstream_url(),
        }
    }
}

/// The JetStream stream of a test's channel: each channel has a stream of its own, as two streams
/// may not capture one subject.
pub fn stream_for(channel: &str) -> String {
    channel.replace('.', "_").to_uppercase()
}

/// The stream a test's channel is published to, as the ingestor creates it on a single server.
pub fn stream_spec(channel: &str) -> StreamSpec {
    replicated_stream_spec(channel, 1)
}

/// As [`stream_spec`], kept by `replicas` servers of a cluster.
pub fn replicated_stream_spec(channel: &str, replicas: usize) -> StreamSpec {
    StreamSpec {
        name: stream_for(channel),
        subject: channel.to_string(),
        replicas,
    }
}

/// A client that publishes to one channel of either broker, and waits for each message's
/// acknowledgement.
#[derive(Clone)]
pub enum Publisher {
    Stan(StanPublisher),
    JetStream {
        js: Box<async_nats::jetstream::Context>,
        channel: String,
    },
}

/// How many JetStream publishes are awaited at once: they are sent in order on one connection, so
/// the stream keeps their order.
const PUBLISH_WINDOW: usize = 256;

impl Publisher {
    /// Connects to `url`. With JetStream, the channel's stream ([`stream_spec`]) is created if it is
    /// missing, as the ingestor would, so that messages can be published before it starts.
    pub async fn connect(transport: Transport, url: &str, channel: &str) -> Publisher {
        Self::connect_replicated(transport, url, channel, 1).await
    }

    /// As [`Publisher::connect`], a missing stream created with `replicas` replicas
    /// ([`replicated_stream_spec`]): on a cluster.
    pub async fn connect_replicated(
        transport: Transport,
        url: &str,
        channel: &str,
        replicas: usize,
    ) -> Publisher {
        match transport {
            Transport::Stan => Publisher::Stan(StanPublisher::connect(url, channel).await),
            Transport::JetStream => {
                let client = service_kit::jetstream::connect(url, &crate::unique_name("publisher"))
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "cannot reach NATS at {url} (run the tests with scripts/test): {e:#}"
                        )
                    });
                let js = async_nats::jetstream::new(client);
                ensure_stream(&js, &replicated_stream_spec(channel, replicas), true)
                    .await
                    .unwrap_or_else(|e| panic!("create the stream of {channel}: {e:#}"));
                Publisher::JetStream {
                    js: Box::new(js),
                    channel: channel.to_string(),
                }
            }
        }
    }

    /// Publishes each message in order and waits for the broker's acknowledgement of each.
    pub async fn publish_all(&self, messages: Vec<Vec<u8>>) {
        match self {
            Publisher::Stan(stan) => stan.publish_all(messages).await,
            Publisher::JetStream { js, channel } => {
                let mut in_flight = VecDeque::with_capacity(PUBLISH_WINDOW);
                for message in messages {
                    if in_flight.len() == PUBLISH_WINDOW {
                        await_ack(in_flight.pop_front()).await;
                    }
                    let ack = js
                        .publish(channel.clone(), message.into())
                        .await
                        .unwrap_or_else(|e| panic!("publish to JetStream: {e}"));
                    in_flight.push_back(ack);
                }
                while let Some(ack) = in_flight.pop_front() {
                    await_ack(Some(ack)).await;
                }
            }
        }
    }

    pub async fn publish(&self, message: impl Into<Vec<u8>>) {
        self.publish_all(vec![message.into()]).await;
    }

    /// What the broker says of the consumers of the channel: with NATS Streaming, every
    /// subscription on the shared server's channel; with JetStream, the durable consumer `durable`
    /// of the channel's stream.
    pub async fn consumer_state(&self, durable: &str) -> SubscriptionState {
        match self {
            Publisher::Stan(stan) => crate::subscription_state(stan.channel()).await,
            Publisher::JetStream { js, channel } => {
                let stream = js
                    .get_stream(stream_for(channel))
                    .await
                    .unwrap_or_else(|e| panic!("look up the stream of {channel}: {e}"));
                let info = stream
                    .consumer_info(durable)
                    .await
                    .unwrap_or_else(|e| panic!("look up the consumer {durable}: {e}"));
                SubscriptionState {
                    last_sent: info.delivered.stream_sequence,
                    pending: u64::try_from(info.num_ack_pending).unwrap_or(0),
                }
            }
        }
    }
}

async fn await_ack(ack: Option<async_nats::jetstream::context::PublishAckFuture>) {
    if let Some(ack) = ack {
        ack.await
            .unwrap_or_else(|e| panic!("JetStream did not acknowledge a publish: {e}"));
    }
}

/// Runs each listed test once per transport: `for_each_transport!(name, ...)` turns each
/// `async fn name(transport: Transport)` of the module into the tests `name::stan` and
/// `name::jetstream`.
#[macro_export]
macro_rules! for_each_transport {
    ($($test:ident),+ $(,)?) => {
        $(
            mod $test {
                #[tokio::test]
                async fn stan() {
                    super::$test($crate::Transport::Stan).await
                }

                #[tokio::test]
                async fn jetstream() {
                    super::$test($crate::Transport::JetStream).await
                }
            }
        )+
    };
}

/// A broker server of a test's own, of either transport, on its own store, to kill and restart.
pub enum PrivateBroker {
    Stan(crate::PrivateStan),
    JetStream(crate::PrivateJetStream),
}

impl PrivateBroker {
    /// Starts one, without blocking the async runtime.
    pub async fn start(transport: Transport) -> PrivateBroker {
        tokio::task::spawn_blocking(move || match transport {
            Transport::Stan => PrivateBroker::Stan(crate::PrivateStan::start()),
            Transport::JetStream => PrivateBroker::JetStream(crate::PrivateJetStream::start()),
        })
        .await
        .expect("the broker's start thread")
    }

    pub fn url(&self) -> String {
        match self {
            PrivateBroker::Stan(stan) => stan.url(),
            PrivateBroker::JetStream(js) => js.url(),
        }
    }

    /// Its process id; `None` while it is stopped.
    pub fn pid(&self) -> Option<u32> {
        match self {
            PrivateBroker::Stan(stan) => stan.pid(),
            PrivateBroker::JetStream(js) => js.pid(),
        }
    }

    /// Kills it (`kill -9`) and starts it again on the same store and ports.
    pub async fn killed_and_restarted(self) -> PrivateBroker {
        match self {
            PrivateBroker::Stan(stan) => PrivateBroker::Stan(stan.killed_and_restarted().await),
            PrivateBroker::JetStream(js) => {
                PrivateBroker::JetStream(js.killed_and_restarted().await)
            }
        }
    }

    /// Waits until it has exited after the test signalled it, and starts it again.
    pub async fn exited_and_restarted(self) -> PrivateBroker {
        match self {
            PrivateBroker::Stan(stan) => PrivateBroker::Stan(stan.exited_and_restarted().await),
            PrivateBroker::JetStream(js) => {
                PrivateBroker::JetStream(js.exited_and_restarted().await)
            }
        }
    }
}
