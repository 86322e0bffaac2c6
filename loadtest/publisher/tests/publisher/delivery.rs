//! What the publisher sends arrives: files, valid orders from several connections, malformed
//! messages.

use std::collections::HashSet;

use crate::support::{publish, received, TempFile, SAMPLE_PATH};

#[test]
fn a_file_arrives_as_one_message_with_its_bytes_unchanged() {
    let channel = testkit::unique_name("publisher");

    let run = publish(&["--channel", &channel, "file", SAMPLE_PATH]);

    assert_eq!(
        received(&channel, 1),
        vec![testkit::sample_order().to_vec()]
    );
    assert!(
        run.stdout.contains("model.json (1101 bytes)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("published 1 message "),
        "{}",
        run.stdout
    );
}

#[test]
fn valid_orders_from_several_connections_all_arrive_once_and_pass_validation() {
    let channel = testkit::unique_name("publisher");

    let run = publish(&[
        "--channel",
        &channel,
        "--connections",
        "3",
        "valid",
        "300",
        "--seed",
        "9",
    ]);

    let uids: HashSet<String> = received(&channel, 300)
        .iter()
        .map(|m| {
            orders::parse_order(m)
                .expect("a valid order")
                .uid()
                .to_string()
        })
        .collect();
    assert_eq!(uids.len(), 300);
    assert!(
        run.stdout.contains("published 300 messages"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_acked_log_names_each_order_the_broker_acknowledged_once_and_a_steady_rate_sends_them_all() {
    let channel = testkit::unique_name("publisher");
    let acked = TempFile::new("acked");

    let run = publish(&[
        "--channel",
        &channel,
        "--rate",
        "1000",
        "--acked-log",
        acked.arg(),
        "valid",
        "200",
    ]);

    let mut logged = acked.lines();
    logged.sort();
    let mut uids: Vec<String> = received(&channel, 200)
        .iter()
        .map(|m| {
            orders::parse_order(m)
                .expect("a valid order")
                .uid()
                .to_string()
        })
        .collect();
    uids.sort();
    assert_eq!(logged, uids);
    assert!(
        run.stdout
            .contains("each acknowledged by the broker, 0 after a retry"),
        "{}",
        run.stdout
    );
}

#[test]
fn every_malformed_message_arrives_is_refused_and_is_counted_by_kind() {
    let channel = testkit::unique_name("publisher");
    let kinds = publisher::invalid::KINDS;
    let count = 2 * kinds.len();

    let run = publish(&["--channel", &channel, "invalid", &count.to_string()]);

    for message in received(&channel, count) {
        assert!(orders::parse_order(&message).is_err());
    }
    for kind in kinds {
        let line = format!("2  {} (refused as {})", kind.name, kind.rule.code());
        assert!(run.stdout.contains(&line), "no {line:?} in {}", run.stdout);
    }
}

#[test]
fn a_mixed_run_publishes_valid_and_malformed_messages() {
    let channel = testkit::unique_name("publisher");

    let run = publish(&[
        "--channel",
        &channel,
        "mixed",
        "100",
        "--invalid-ratio",
        "0.5",
        "--seed",
        "3",
    ]);

    let valid = received(&channel, 100)
        .iter()
        .filter(|m| orders::parse_order(m).is_ok())
        .count();
    assert!(0 < valid && valid < 100, "{valid} of 100 valid");
    assert!(
        run.stdout.contains(&format!("{valid:>10}  valid\n")),
        "{}",
        run.stdout
    );
}
