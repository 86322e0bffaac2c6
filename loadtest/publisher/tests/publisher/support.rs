use std::process::{Command, Output};
use std::time::Duration;

use stan::{SubscriptionConfig, SubscriptionStart};

/// The sample order of the task, as a file to publish.
pub const SAMPLE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../model.json");

/// What a run of the publisher printed, and whether it succeeded.
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the publisher against `nats_url` with `args`.
pub fn publisher_at(nats_url: &str, args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_publisher"))
        .args(["--nats-url", nats_url])
        .args(args)
        // Through the environment, so that a test can still give --cluster-id.
        .env("STAN_CLUSTER_ID", testkit::stan_cluster_id())
        .env_remove("STAN_CHANNEL")
        .output()
        .expect("run the publisher");
    Run {
        success: status.success(),
        stdout: String::from_utf8(stdout).expect("UTF-8 output"),
        stderr: String::from_utf8(stderr).expect("UTF-8 output"),
    }
}

/// Runs the publisher against the test server; panics if it fails.
pub fn publish(args: &[&str]) -> Run {
    let run = publisher_at(&testkit::stan_url(), args);
    assert!(run.success, "the publisher failed: {}", run.stderr);
    run
}

/// A URL where nothing listens.
pub fn nowhere() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    format!("nats://127.0.0.1:{port}")
}

/// Every message on `channel`, which must hold exactly `count`, in order.
pub fn received(channel: &str, count: usize) -> Vec<Vec<u8>> {
    let nats = nats::connect(&testkit::stan_url()).expect("connect to NATS");
    let client = stan::connect(
        nats,
        &testkit::stan_cluster_id(),
        &testkit::unique_name("check"),
    )
    .expect("connect to the STAN cluster");
    let from_start = SubscriptionConfig {
        start: SubscriptionStart::AllAvailable,
        ..Default::default()
    };
    let subscription = client.subscribe(channel, from_start).expect("subscribe");
    let mut messages = Vec::with_capacity(count);
    while messages.len() < count {
        let message = subscription
            .next_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("only {} of {count} messages arrived: {e}", messages.len()));
        message.ack().expect("ack");
        if !message.redelivered {
            messages.push(message.data);
        }
    }
    // The newest message says how many the channel holds, without waiting for more to come.
    let newest = SubscriptionConfig {
        start: SubscriptionStart::LastReceived,
        ..Default::default()
    };
    let last = client
        .subscribe(channel, newest)
        .expect("subscribe")
        .next_timeout(Duration::from_secs(10))
        .expect("the newest message");
    assert_eq!(
        last.sequence, count as u64,
        "the channel holds another number of messages"
    );
    messages
}
