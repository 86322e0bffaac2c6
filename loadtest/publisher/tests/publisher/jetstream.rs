//! What only JetStream does: the stream, created as the ingestor creates it or refused missing;
//! the message ids that make a publish repeated within the duplicate window stored once; the
//! headers in the size limit; and the settings that choose it.

use std::collections::HashSet;

use async_nats::jetstream::stream::{Config, StorageType};
use service_kit::jetstream::StreamSpec;

use crate::destination::{jetstream_url, Broker, Destination};
use crate::support::{publisher_at, publisher_with, Run, TempFile, SAMPLE_PATH};

/// The bytes the headers of a message with the id `id` take: `Nats-Msg-Id` alone.
fn header_bytes(id: &str) -> usize {
    format!("NATS/1.0\r\nNats-Msg-Id: {id}\r\n\r\n").len()
}

fn assert_refused_in_one_line(run: &Run, says: &str) {
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let line = run.stderr.strip_suffix('\n').unwrap_or(&run.stderr);
    assert!(
        line.starts_with("error: ") && !line.contains('\n'),
        "not one line: {}",
        run.stderr
    );
    assert!(line.contains(says), "no {says:?} in {line}");
}

#[test]
fn a_missing_stream_is_created_as_the_ingestor_creates_it() {
    let destination = Destination::new(Broker::JetStream);
    assert!(destination.stream_info().is_none(), "a stream of that name");

    destination.publish(&["file", SAMPLE_PATH]);

    let created = destination.stream_info().expect("the stream").config;
    let shared: Config = StreamSpec {
        name: destination.stream.clone(),
        subject: destination.channel.clone(),
        replicas: 1,
    }
    .config();
    assert_eq!(created.name, shared.name);
    assert_eq!(created.subjects, shared.subjects);
    assert_eq!(created.description, shared.description);
    assert_eq!(created.storage, shared.storage);
    assert_eq!(created.retention, shared.retention);
    assert_eq!(created.discard, shared.discard);
    assert_eq!(created.num_replicas, shared.num_replicas);
    assert_eq!(created.duplicate_window, shared.duplicate_window);
    assert_eq!(created.max_age, shared.max_age);
}

#[test]
fn an_existing_stream_is_used_as_it_is() {
    let destination = Destination::new(Broker::JetStream);
    let url = jetstream_url();
    let config = Config {
        name: destination.stream.clone(),
        subjects: vec![
            format!("{}.>", destination.channel),
            destination.channel.clone(),
        ],
        storage: StorageType::Memory,
        ..Config::default()
    };
    crate::destination::create_stream(&url, config);

    destination.publish(&["--no-create-stream", "valid", "3"]);

    let info = destination.stream_info().expect("the stream");
    assert_eq!(info.config.storage, StorageType::Memory);
    assert_eq!(info.state.messages, 3);
}

#[test]
fn with_no_create_stream_a_missing_stream_fails_the_run_and_says_so() {
    let destination = Destination::new(Broker::JetStream);
    let mut args = destination.args();
    args.extend(["file", SAMPLE_PATH]);
    let by_flag = publisher_at(
        &jetstream_url(),
        &[&args[..], &["--no-create-stream"]].concat(),
    );
    let by_variable = publisher_with(
        &jetstream_url(),
        &[("JETSTREAM_CREATE_STREAM", "false")],
        &args,
    );

    for run in [by_flag, by_variable] {
        assert!(!run.success, "{}", run.stdout);
        let says = format!(
            "the JetStream stream {} does not exist, and creating it is turned off",
            destination.stream
        );
        assert!(run.stderr.contains(&says), "{}", run.stderr);
        assert!(
            run.stderr.contains("nothing was published"),
            "{}",
            run.stderr
        );
    }
    assert!(
        destination.stream_info().is_none(),
        "the stream was created"
    );
}

#[test]
fn every_publish_carries_its_id_and_the_same_run_again_is_stored_once() {
    let destination = Destination::new(Broker::JetStream);
    let acked = TempFile::new("acked");
    let args = [
        "--acked-log",
        acked.arg(),
        "mixed",
        "60",
        "--invalid-ratio",
        "0.5",
        "--seed",
        "11",
    ];

    let first = destination.publish(&args);
    let mut first_acks = acked.lines();
    let mut ids: Vec<String> = destination
        .stored()
        .into_iter()
        .map(|m| m.id.expect("a Nats-Msg-Id header"))
        .collect();
    let second = destination.publish(&args);

    assert_eq!(ids.len(), 60);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 60, "distinct ids");
    ids.sort();
    first_acks.sort();
    assert_eq!(
        ids, first_acks,
        "each message's id is the one the acked log writes"
    );
    let mut second_acks = acked.lines();
    second_acks.sort();
    assert_eq!(
        second_acks, first_acks,
        "the same messages have the same ids"
    );
    assert_eq!(
        destination
            .stream_info()
            .expect("the stream")
            .state
            .messages,
        60
    );
    assert!(
        first.stdout.contains("0 after a retry, 0 as duplicates"),
        "{}",
        first.stdout
    );
    assert!(
        second.stdout.contains("0 after a retry, 60 as duplicates"),
        "{}",
        second.stdout
    );
}

#[test]
fn a_file_published_again_is_acknowledged_as_a_duplicate_and_stored_once() {
    let destination = Destination::new(Broker::JetStream);

    destination.publish(&["file", SAMPLE_PATH]);
    let again = destination.publish(&["file", SAMPLE_PATH]);

    assert_eq!(
        destination.received(1),
        vec![testkit::sample_order().to_vec()]
    );
    assert!(
        again.stdout.contains(
            "model.json (1101 bytes), a duplicate: the stream held a message with its id already"
        ),
        "{}",
        again.stdout
    );
    assert!(again.stdout.contains("1 as duplicates"), "{}", again.stdout);
}

#[test]
fn the_malformed_messages_of_two_runs_are_not_taken_for_duplicates() {
    let destination = Destination::new(Broker::JetStream);

    destination.publish(&["invalid", "20", "--seed", "1"]);
    destination.publish(&["invalid", "20", "--seed", "2"]);

    destination.received(40);
}

#[test]
fn a_message_that_fits_with_its_headers_is_stored_and_one_byte_more_is_refused_before_sending() {
    let destination = Destination::new(Broker::JetStream);
    let file = TempFile::new("big");
    let limit = 1024 * 1024 - header_bytes(file.arg());

    std::fs::write(file.arg(), vec![b' '; limit]).expect("write a file");
    let fits = destination.run(&["file", file.arg()]);
    std::fs::write(file.arg(), vec![b' '; limit + 1]).expect("write a file");
    let too_large = destination.run(&["file", file.arg()]);

    assert!(fits.success, "{}", fits.stderr);
    assert!(!too_large.success, "{}", too_large.stdout);
    let says = format!(
        "has {} bytes, more than the {limit} bytes a message may have",
        limit + 1
    );
    assert!(too_large.stderr.contains(&says), "{}", too_large.stderr);
    assert!(
        too_large.stderr.contains("its headers"),
        "{}",
        too_large.stderr
    );
    assert_eq!(destination.stored().len(), 1, "the second was not sent");
}

#[test]
fn a_message_larger_than_the_server_accepts_fails_the_run_at_once_with_the_servers_limit() {
    let destination = Destination::new(Broker::JetStream);
    let file = TempFile::new("big");
    std::fs::write(file.arg(), vec![b' '; 1536 * 1024]).expect("write a file");

    // Told a larger limit than the server's, the publisher meets the server's.
    let run = destination.run(&["--max-payload", "4194304", "file", file.arg()]);

    assert!(!run.success, "{}", run.stdout);
    assert!(
        run.stderr.contains("Payload size limit of 1048576"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("max_payload"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("publishing it again"),
        "{}",
        run.stderr
    );
    assert_eq!(
        destination
            .stream_info()
            .expect("the stream")
            .state
            .messages,
        0
    );
}

#[test]
fn the_broker_and_the_stream_can_be_chosen_by_their_environment_variables() {
    // The channel by its own variable, and by its transport-neutral name.
    for channel_variable in ["STAN_CHANNEL", "BROKER_CHANNEL"] {
        let destination = Destination::new(Broker::JetStream);

        let run = publisher_with(
            &jetstream_url(),
            &[
                ("BROKER", "jetstream"),
                ("JETSTREAM_STREAM", &destination.stream),
                (channel_variable, &destination.channel),
            ],
            &["file", SAMPLE_PATH],
        );

        assert!(run.success, "{channel_variable}: {}", run.stderr);
        assert_eq!(
            destination.received(1),
            vec![testkit::sample_order().to_vec()]
        );
        let to = format!(
            "to subject {} (stream {})",
            destination.channel, destination.stream
        );
        assert!(run.stdout.contains(&to), "{}", run.stdout);
    }
}

#[test]
fn the_channel_by_both_its_names_with_different_values_is_refused() {
    let destination = Destination::new(Broker::JetStream);
    let both = publisher_with(
        &jetstream_url(),
        &[
            ("BROKER_CHANNEL", &destination.channel),
            ("STAN_CHANNEL", "other"),
        ],
        &["file", SAMPLE_PATH],
    );
    assert_refused_in_one_line(
        &both,
        "BROKER_CHANNEL and STAN_CHANNEL are both set, to different values: set one",
    );
}

#[test]
fn a_wrong_broker_is_refused_in_one_line_that_names_the_setting() {
    let by_flag = publisher_at(&jetstream_url(), &["--broker", "kafka", "valid", "1"]);
    let by_variable = publisher_with(&jetstream_url(), &[("BROKER", "kafka")], &["valid", "1"]);

    for run in [by_flag, by_variable] {
        assert_refused_in_one_line(
            &run,
            "invalid value 'kafka' for --broker (env BROKER): must be stan or jetstream",
        );
    }
}

#[test]
fn an_option_of_the_other_broker_is_refused_on_the_command_line_and_ignored_from_the_environment() {
    let destination = Destination::new(Broker::JetStream);
    let mut args = destination.args();
    args.extend(["--cluster-id", "test-cluster", "valid", "1"]);

    let cluster_id = publisher_at(&jetstream_url(), &args);
    let stream = publisher_at(&testkit::stan_url(), &["--stream", "ORDERS", "valid", "1"]);
    // STAN_CLUSTER_ID is in the environment of every run of these tests.
    let ignored = destination.run(&["valid", "1"]);

    assert_refused_in_one_line(
        &cluster_id,
        "--cluster-id is an option of --broker stan, and this run publishes to --broker jetstream",
    );
    assert_refused_in_one_line(&stream, "--stream is an option of --broker jetstream");
    assert!(ignored.success, "{}", ignored.stderr);
}

#[test]
fn the_help_documents_the_broker_and_the_jetstream_settings() {
    let help = publisher_at(&jetstream_url(), &["--help"]).stdout;

    for (flag, variable) in [
        ("--broker", "BROKER"),
        ("--stream", "JETSTREAM_STREAM"),
        ("--jetstream-replicas", "JETSTREAM_REPLICAS"),
    ] {
        let text = testkit::settings::help_of(&help, flag).join("\n");
        assert!(text.contains(&format!("[env: {variable}")), "{text}");
    }
    // A flag without a value, which help_of does not find.
    let (_, no_create) = help
        .split_once("--no-create-stream\n")
        .expect("--no-create-stream");
    let no_create = no_create.split("\n  -").next().expect("its description");
    assert!(
        no_create.contains("[env: JETSTREAM_CREATE_STREAM"),
        "{no_create}"
    );
    let broker = testkit::settings::help_of(&help, "--broker").join("\n");
    assert!(broker.contains("[default: stan]"), "{broker}");
    let cluster_id = testkit::settings::help_of(&help, "--cluster-id").join("\n");
    assert!(cluster_id.contains("--broker stan only"), "{cluster_id}");
}
