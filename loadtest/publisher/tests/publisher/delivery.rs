//! What the publisher sends arrives, on either broker: files, valid orders from several
//! connections, malformed messages.

use std::collections::HashSet;

use crate::destination::Destination;
use crate::support::{nowhere, publisher_at, TempFile, SAMPLE_PATH};

fn order_ids(messages: &[Vec<u8>]) -> Vec<String> {
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

on_each_broker! {
    #[test]
    fn a_file_arrives_as_one_message_with_its_bytes_unchanged(broker) {
        let destination = Destination::new(broker);

        let run = destination.publish(&["file", SAMPLE_PATH]);

        assert_eq!(
            destination.received(1),
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
    fn files_arrive_in_the_order_given(broker) {
        let destination = Destination::new(broker);
        let files: Vec<TempFile> = (0..5).map(|_| TempFile::new("order")).collect();
        for (i, file) in files.iter().enumerate() {
            std::fs::write(file.arg(), format!("message {i}")).expect("write a file");
        }
        let mut args = vec!["file"];
        args.extend(files.iter().map(TempFile::arg));

        destination.publish(&args);

        let expected: Vec<Vec<u8>> = (0..5).map(|i| format!("message {i}").into_bytes()).collect();
        assert_eq!(destination.received(5), expected);
    }

    #[test]
    fn valid_orders_from_several_connections_all_arrive_once_and_pass_validation(broker) {
        let destination = Destination::new(broker);

        let run = destination.publish(&["--connections", "3", "valid", "300", "--seed", "9"]);

        let uids: HashSet<String> = order_ids(&destination.received(300)).into_iter().collect();
        assert_eq!(uids.len(), 300);
        assert!(
            run.stdout.contains("published 300 messages"),
            "{}",
            run.stdout
        );
    }

    #[test]
    fn the_acked_log_names_each_order_the_broker_acknowledged_once_and_a_steady_rate_sends_them_all(
        broker
    ) {
        let destination = Destination::new(broker);
        let acked = TempFile::new("acked");

        let run = destination.publish(&["--rate", "1000", "--acked-log", acked.arg(), "valid", "200"]);

        let mut logged = acked.lines();
        logged.sort();
        let mut uids = order_ids(&destination.received(200));
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
    fn every_malformed_message_arrives_is_refused_and_is_counted_by_kind(broker) {
        let destination = Destination::new(broker);
        let kinds = publisher::invalid::KINDS;
        let count = 2 * kinds.len();

        let run = destination.publish(&["invalid", &count.to_string()]);

        for message in destination.received(count) {
            assert!(orders::parse_order(&message).is_err());
        }
        for kind in kinds {
            let line = format!("2  {} (refused as {})", kind.name, kind.rule.code());
            assert!(run.stdout.contains(&line), "no {line:?} in {}", run.stdout);
        }
    }

    #[test]
    fn a_mixed_run_publishes_valid_and_malformed_messages(broker) {
        let destination = Destination::new(broker);

        let run = destination.publish(&["mixed", "100", "--invalid-ratio", "0.5", "--seed", "3"]);

        let valid = destination
            .received(100)
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

    #[test]
    fn a_list_of_servers_is_taken_and_one_that_answers_will_do(broker) {
        let destination = Destination::new(broker);
        let servers = format!("{}, {}", nowhere(), broker.url());
        let mut args = destination.args();
        args.extend(["valid", "20"]);

        let run = publisher_at(&servers, &args);

        assert!(run.success, "the publisher failed: {}", run.stderr);
        destination.received(20);
    }
}
