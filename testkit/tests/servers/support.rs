//! What the tests share: JetStream streams to publish to and count, and the messages they send.

use async_nats::jetstream::Context;
use service_kit::jetstream::{ensure_stream, StreamSpec};

/// A JetStream context on any of `urls` (comma-separated), with the stream `name` capturing the
/// subject `subject`, created with `replicas` replicas.
pub async fn stream(urls: &str, name: &str, subject: &str, replicas: usize) -> Context {
    let client = service_kit::jetstream::connect(urls, "testkit-brokers")
        .await
        .unwrap_or_else(|e| panic!("connect to {urls}: {e:#}"));
    let js = async_nats::jetstream::new(client);
    let spec = StreamSpec {
        name: name.to_string(),
        subject: subject.to_string(),
        replicas,
    };
    ensure_stream(&js, &spec, true)
        .await
        .unwrap_or_else(|e| panic!("create the stream {name}: {e:#}"));
    js
}

/// Publishes `count` messages to `subject` and waits for each acknowledgement.
pub async fn publish(js: &Context, subject: &str, count: usize) {
    for n in 0..count {
        js.publish(subject.to_string(), format!("message {n}").into())
            .await
            .expect("publish to JetStream")
            .await
            .expect("JetStream acknowledges the message");
    }
}

/// The messages the stream `name` holds, as its leader says; `None` while no leader answers.
pub async fn messages(js: &Context, name: &str) -> Option<u64> {
    let stream = js.get_stream(name).await.ok()?;
    Some(stream.cached_info().state.messages)
}

/// `count` messages for a NATS Streaming channel.
pub fn stan_messages(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|n| format!("message {n}").into_bytes())
        .collect()
}
