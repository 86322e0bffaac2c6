//! The shared test STAN server, and a client that publishes to one channel.

use std::sync::Arc;

/// How long [`StanPublisher::publish_all`] keeps publishing a message the broker does not
/// acknowledge.
pub const PUBLISH_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// The STAN server every test shares: `TEST_NATS_URL`, as set by `scripts/test`.
pub fn stan_url() -> String {
    crate::env_or("TEST_NATS_URL", "nats://127.0.0.1:4223")
}

pub fn stan_cluster_id() -> String {
    crate::env_or("TEST_STAN_CLUSTER_ID", "test-cluster")
}

/// A STAN client that publishes to one channel.
#[derive(Clone)]
pub struct StanPublisher {
    client: Arc<stan::Client>,
    channel: String,
}

impl StanPublisher {
    pub async fn connect(url: &str, channel: &str) -> StanPublisher {
        let url = url.to_string();
        let client = tokio::task::spawn_blocking(move || {
            let nats = nats::connect(&url).unwrap_or_else(|e| {
                panic!("cannot reach NATS at {url} (run the tests with scripts/test): {e}")
            });
            stan::connect(nats, &stan_cluster_id(), &crate::unique_name("publisher"))
                .expect("connect to the STAN cluster")
        })
        .await
        .expect("the connect thread");
        StanPublisher {
            client: Arc::new(client),
            channel: channel.to_string(),
        }
    }

    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Publishes each message in order and waits for the broker's acknowledgement of each. The
    /// `stan` crate waits 1 s for an acknowledgement, which a broker on a busy disk (a test
    /// restarting Postgres beside it) can miss: a message whose acknowledgement is late is
    /// published again, as the project's publisher does, for up to [`PUBLISH_PATIENCE`]. The
    /// channel may then hold it twice, which the ingestor stores once.
    pub async fn publish_all(&self, messages: Vec<Vec<u8>>) {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            for m in messages {
                this.publish_until_acknowledged(&m);
            }
        })
        .await
        .expect("the publish thread");
    }

    fn publish_until_acknowledged(&self, message: &[u8]) {
        let started = std::time::Instant::now();
        loop {
            match self.client.publish(&self.channel, message) {
                Ok(()) => return,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    assert!(
                        started.elapsed() < PUBLISH_PATIENCE,
                        "publish to STAN: no acknowledgement within {PUBLISH_PATIENCE:?}: {e}"
                    );
                    eprintln!("publish to STAN: {e}; publishing the message again");
                }
                Err(e) => panic!("publish to STAN: {e}"),
            }
        }
    }
}

/// The STAN server's monitoring endpoint: `TEST_STAN_MONITOR_URL`, as set by `scripts/test`.
pub fn stan_monitor_url() -> String {
    crate::env_or("TEST_STAN_MONITOR_URL", "http://127.0.0.1:8223")
}

/// What the broker says of the subscriptions on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubscriptionState {
    /// The highest sequence the broker has sent to a subscriber.
    pub last_sent: u64,
    /// Messages sent and not acknowledged yet.
    pub pending: u64,
}

/// Sums the state of every subscription on `channel`, from the broker's monitoring endpoint.
pub async fn subscription_state(channel: &str) -> SubscriptionState {
    let url = format!(
        "{}/streaming/channelsz?channel={channel}&subs=1",
        stan_monitor_url()
    );
    let body: serde_json::Value = reqwest::get(&url)
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("ask the broker's monitoring endpoint {url}: {e}"))
        .json()
        .await
        .expect("monitoring JSON");
    let mut state = SubscriptionState::default();
    for sub in body["subscriptions"].as_array().into_iter().flatten() {
        state.last_sent = state.last_sent.max(sub["last_sent"].as_u64().unwrap_or(0));
        state.pending += sub["pending_count"].as_u64().unwrap_or(0);
    }
    state
}
