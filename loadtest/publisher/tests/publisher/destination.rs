//! Where a test publishes, on either broker: a channel of its own on the STAN test server, or a
//! subject and a stream of their own on the JetStream test server; and what they hold afterwards.

use std::future::Future;

use async_nats::jetstream::stream::{Config, Info};
use async_nats::jetstream::{self, Context};

use crate::support::{all_messages, publisher_at, Run};

/// Declares each test once for each broker: `mod <test> { #[test] fn stan(); #[test] fn
/// jetstream(); }`, the body taking the broker as its argument.
macro_rules! on_each_broker {
    ($(#[test] fn $name:ident($broker:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($broker: $crate::destination::Broker) $body

            #[test]
            fn stan() {
                body($crate::destination::Broker::Stan)
            }

            #[test]
            fn jetstream() {
                body($crate::destination::Broker::JetStream)
            }
        }
    )*};
}

/// The broker a test publishes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broker {
    Stan,
    JetStream,
}

impl Broker {
    /// The test server of the broker.
    pub fn url(self) -> String {
        match self {
            Broker::Stan => testkit::stan_url(),
            Broker::JetStream => jetstream_url(),
        }
    }

    /// The publisher's option that chooses the broker.
    pub fn args(self) -> &'static [&'static str] {
        match self {
            Broker::Stan => &[],
            Broker::JetStream => &["--broker", "jetstream"],
        }
    }
}

pub use testkit::jetstream_url;

/// A channel, or a subject and its stream, of one test's own.
pub struct Destination {
    pub broker: Broker,
    /// The STAN channel or the JetStream subject.
    pub channel: String,
    /// The JetStream stream (not created: the publisher does).
    pub stream: String,
}

/// A message as JetStream stored it.
pub struct Stored {
    pub payload: Vec<u8>,
    /// Its `Nats-Msg-Id` header.
    pub id: Option<String>,
}

impl Destination {
    pub fn new(broker: Broker) -> Destination {
        Destination {
            broker,
            channel: testkit::unique_name("publisher"),
            stream: testkit::unique_name("PUBLISHER"),
        }
    }

    /// The publisher's options that publish there.
    pub fn args(&self) -> Vec<&str> {
        let mut args = self.broker.args().to_vec();
        if self.broker == Broker::JetStream {
            args.extend(["--stream", &self.stream]);
        }
        args.extend(["--channel", &self.channel]);
        args
    }

    /// Runs the publisher with the options that publish there, then `args`.
    pub fn run(&self, args: &[&str]) -> Run {
        publisher_at(&self.broker.url(), &[self.args(), args.to_vec()].concat())
    }

    /// Runs the publisher there; panics if it fails.
    pub fn publish(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert!(run.success, "the publisher failed: {}", run.stderr);
        run
    }

    /// Every message there, which must hold exactly `count`, in order.
    pub fn received(&self, count: usize) -> Vec<Vec<u8>> {
        let messages = match self.broker {
            Broker::Stan => all_messages(&testkit::stan_url(), &self.channel),
            Broker::JetStream => self.stored().into_iter().map(|m| m.payload).collect(),
        };
        assert_eq!(
            messages.len(),
            count,
            "the {} holds another number of messages",
            match self.broker {
                Broker::Stan => "channel",
                Broker::JetStream => "stream",
            }
        );
        messages
    }

    /// Every message of the JetStream stream, in order, with its id.
    pub fn stored(&self) -> Vec<Stored> {
        stream_messages(&jetstream_url(), &self.stream)
    }

    /// What the JetStream server says of the stream; `None` if it has none of that name.
    pub fn stream_info(&self) -> Option<Info> {
        stream_info(&jetstream_url(), &self.stream)
    }
}

/// What the JetStream server at `url` says of `stream`; `None` if it has none of that name.
pub fn stream_info(url: &str, stream: &str) -> Option<Info> {
    with_jetstream(url, |js| async move {
        let stream = js.get_stream(stream).await.ok()?;
        Some(stream.get_info().await.expect("the stream's info"))
    })
}

/// Creates a stream on the JetStream server at `url`, as an operator would.
pub fn create_stream(url: &str, config: Config) {
    with_jetstream(url, |js| async move {
        js.create_stream(config).await.expect("create the stream");
    })
}

/// Every message of `stream` on the JetStream server at `url`, in order, with its id.
pub fn stream_messages(url: &str, stream: &str) -> Vec<Stored> {
    with_jetstream(url, |js| async move {
        let stream = js.get_stream(stream).await.expect("the stream exists");
        let state = stream.get_info().await.expect("the stream's info").state;
        let mut messages = Vec::new();
        for sequence in state.first_sequence..=state.last_sequence {
            // A deleted message leaves a gap: the stream's count says how many there are.
            let Ok(message) = stream.get_raw_message(sequence).await else {
                continue;
            };
            messages.push(Stored {
                payload: message.payload.to_vec(),
                id: message
                    .headers
                    .get("Nats-Msg-Id")
                    .map(|v| v.as_str().to_string()),
            });
        }
        assert_eq!(messages.len() as u64, state.messages, "messages read back");
        messages
    })
}

/// Runs `check` with a JetStream connection to `url`, on a runtime of its own.
fn with_jetstream<F, T>(url: &str, check: impl FnOnce(Context) -> F) -> T
where
    F: Future<Output = T>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let client = async_nats::connect(url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach the JetStream server at {url}: {e}"));
        check(jetstream::new(client)).await
    })
}
