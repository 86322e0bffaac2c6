//! The publisher against a broker of its own that the test kills and restarts mid-stream.

use std::collections::HashSet;
use std::time::Duration;

use testkit::{PrivateJetStream, PrivateStan};

use crate::destination::stream_messages;
use crate::support::{all_messages, wait_until, Background, Run, TempFile};

/// What the publisher says when it publishes a message again after a failure.
const RETRYING: &str = "publishing it again on a new connection";

/// Waits until the acked log holds `lines` lines: the publisher is well into its stream. The log
/// is buffered, so it grows by a few hundred lines at a time.
fn wait_for_acks(acked: &TempFile, lines: usize) {
    wait_until(
        &format!("{lines} lines in the acked log"),
        Duration::from_secs(60),
        || acked.lines().len() >= lines,
    );
}

fn order_ids(messages: &[Vec<u8>]) -> HashSet<String> {
    messages
        .iter()
        .map(|m| {
            orders::parse_order(m)
                .expect("a valid order")
                .uid()
                .to_string()
        })
        .collect()
}

/// A broker server of the test's own, to kill and start again.
trait Restartable {
    fn url(&self) -> String;
    fn kill(&mut self);
    fn resume(&mut self);
}

impl Restartable for PrivateStan {
    fn url(&self) -> String {
        PrivateStan::url(self)
    }
    fn kill(&mut self) {
        PrivateStan::kill(self)
    }
    fn resume(&mut self) {
        PrivateStan::resume(self)
    }
}

impl Restartable for PrivateJetStream {
    fn url(&self) -> String {
        PrivateJetStream::url(self)
    }
    fn kill(&mut self) {
        PrivateJetStream::kill(self)
    }
    fn resume(&mut self) {
        PrivateJetStream::resume(self)
    }
}

/// Publishes 3000 orders at 500/s with `broker_args`, kills `server` once 100 are acknowledged,
/// starts it again once the publisher retries, and returns the acked log's lines and the run.
fn publish_through_a_restart(
    server: &mut dyn Restartable,
    broker_args: &[&str],
    acked: &TempFile,
) -> (Vec<String>, Run) {
    let mut args = broker_args.to_vec();
    args.extend([
        "--rate",
        "500",
        "--acked-log",
        acked.arg(),
        "valid",
        "3000",
        "--seed",
        "5",
    ]);
    let mut publisher = Background::start(&server.url(), &args);
    wait_for_acks(acked, 100);
    server.kill();
    publisher.wait_for_stderr("publishing it again", Duration::from_secs(30));
    server.resume();
    let run = publisher.finish(Duration::from_secs(120));
    assert!(run.success, "the publisher failed: {}", run.stderr);
    (acked.lines(), run)
}

#[test]
fn a_broker_restarted_mid_stream_loses_no_acknowledged_message() {
    let mut stan = PrivateStan::start();
    let acked = TempFile::new("acked");
    let (lines, run) = publish_through_a_restart(&mut stan, &[], &acked);

    let acked_ids: HashSet<String> = lines.iter().cloned().collect();
    assert_eq!(lines.len(), 3000, "one line per acknowledged message");
    assert_eq!(acked_ids.len(), 3000, "every order acknowledged once");
    let stored = order_ids(&all_messages(&stan.url(), "orders"));
    let lost: Vec<_> = acked_ids.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged orders are not in the channel, such as {:?}",
        lost.len(),
        &lost[..lost.len().min(3)]
    );
    assert!(
        run.stdout.contains("published 3000 messages"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains(" 0 after a retry"),
        "the message that failed counts as retried: {}",
        run.stdout
    );
}

#[test]
fn a_publisher_whose_broker_never_comes_back_fails_after_its_retry_bound() {
    let mut stan = PrivateStan::start();
    let acked = TempFile::new("acked");
    let publisher = Background::start(
        &stan.url(),
        &[
            "--rate",
            "200",
            "--retry-for",
            "2",
            "--acked-log",
            acked.arg(),
            "valid",
            "2000",
        ],
    );

    wait_for_acks(&acked, 1);
    stan.kill();
    let run = publisher.finish(Duration::from_secs(60));

    assert!(!run.success, "the publisher succeeded: {}", run.stdout);
    let acked = acked.lines().len();
    let counts = format!(
        "{} of 2000 messages were not acknowledged by the broker ({acked} were,",
        2000 - acked
    );
    assert!(
        run.stderr.contains(&counts),
        "no {counts:?} in {}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("after retrying for 2 s (see --retry-for)"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_publisher_that_may_not_retry_fails_at_the_first_message_the_broker_did_not_acknowledge() {
    let mut stan = PrivateStan::start();
    let acked = TempFile::new("acked");
    let publisher = Background::start(
        &stan.url(),
        &[
            "--rate",
            "200",
            "--retry-for",
            "0",
            "--acked-log",
            acked.arg(),
            "valid",
            "2000",
        ],
    );

    wait_for_acks(&acked, 1);
    stan.kill();
    let run = publisher.finish(Duration::from_secs(60));

    assert!(!run.success, "the publisher succeeded: {}", run.stdout);
    assert!(
        run.stderr.contains("not retried, as --retry-for is 0"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(RETRYING), "{}", run.stderr);
}

#[test]
fn a_jetstream_server_restarted_mid_stream_loses_no_acknowledged_message_and_stores_each_once() {
    let mut server = PrivateJetStream::start();
    let acked = TempFile::new("acked");
    let (lines, run) = publish_through_a_restart(&mut server, &["--broker", "jetstream"], &acked);

    let acked_ids: HashSet<String> = lines.into_iter().collect();
    assert_eq!(acked_ids.len(), 3000, "every order acknowledged once");
    let stored = stream_messages(&server.url(), "ORDERS");
    let stored_ids: HashSet<String> = stored.iter().filter_map(|m| m.id.clone()).collect();
    assert_eq!(
        stored_ids, acked_ids,
        "the stream holds every acknowledged order"
    );
    assert_eq!(stored.len(), 3000, "and each once, retried or not");
    let payload_ids = order_ids(&stored.into_iter().map(|m| m.payload).collect::<Vec<_>>());
    assert_eq!(payload_ids, acked_ids, "each message's id is its order's");
    assert!(
        !run.stdout.contains(" 0 after a retry"),
        "the message that failed counts as retried: {}",
        run.stdout
    );
}
