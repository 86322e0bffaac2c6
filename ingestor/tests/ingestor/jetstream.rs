//! What only the JetStream transport does: the stream created when it is missing, as the settings
//! say, or waited for when creating it is turned off; the durable consumer configured to the
//! settings, also when it exists already.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy};
use async_nats::jetstream::stream::{RetentionPolicy, StorageType};
use testkit::{jetstream_url, stream_for, wait_until, Transport};

use crate::helpers::{distinct_orders, TestBed, PATIENCE};

async fn jetstream() -> async_nats::jetstream::Context {
    let client = async_nats::connect(jetstream_url())
        .await
        .expect("reach the test nats-server");
    async_nats::jetstream::new(client)
}

#[tokio::test]
async fn a_missing_stream_is_created_as_configured_and_the_consumer_acks_explicitly() {
    let bed = TestBed::new(Transport::JetStream).await;
    let js = jetstream().await;
    let stream = stream_for(&bed.channel);
    // The bed's publisher created the stream; the ingestor must make it itself.
    js.delete_stream(&stream).await.expect("delete the stream");

    let ingestor = bed.start_ingestor("creates-stream").await;
    wait_until("the ingestor to create the stream", PATIENCE, || async {
        js.get_stream(&stream).await.is_ok()
    })
    .await;
    let mut created = js.get_stream(&stream).await.unwrap();
    let config = created.info().await.unwrap().config.clone();
    assert_eq!(config.subjects, vec![bed.channel.clone()]);
    assert_eq!(config.storage, StorageType::File);
    assert_eq!(config.retention, RetentionPolicy::Limits);
    assert_eq!(config.num_replicas, 1);
    assert_eq!(config.duplicate_window, Duration::from_secs(120));
    assert!(
        config.max_messages <= 0 && config.max_age.is_zero(),
        "every message kept"
    );

    wait_until("the durable consumer", PATIENCE, || async {
        created.consumer_info(&bed.durable).await.is_ok()
    })
    .await;
    let consumer = created
        .consumer_info(&bed.durable)
        .await
        .unwrap()
        .config
        .clone();
    assert_eq!(consumer.ack_policy, AckPolicy::Explicit);
    assert_eq!(consumer.ack_wait, Duration::from_secs(30));
    assert_eq!(consumer.max_ack_pending, 1024);
    assert_eq!(consumer.filter_subject, bed.channel);

    bed.publisher.publish_all(distinct_orders("c", 5)).await;
    bed.wait_for_rows("orders", 5).await;
    ingestor.stop().await;
}

#[tokio::test]
async fn with_stream_creation_off_the_ingestor_waits_for_the_stream_and_then_consumes_it() {
    let bed = TestBed::new(Transport::JetStream).await;
    let js = jetstream().await;
    js.delete_stream(stream_for(&bed.channel))
        .await
        .expect("delete the stream");

    let mut child = bed.spawn_ingestor_process_logging(
        "waits-for-stream",
        &[("JETSTREAM_CREATE_STREAM", "false")],
    );
    child
        .logged("does not exist, and creating it is turned off", PATIENCE)
        .await;
    assert!(
        js.get_stream(stream_for(&bed.channel)).await.is_err(),
        "the ingestor created the stream although it was told not to"
    );

    // The operator creates it; the ingestor finds it on its next try.
    let publisher = bed.publisher_on(&bed.nats_url).await;
    publisher.publish_all(distinct_orders("w", 5)).await;
    bed.wait_for_rows("orders", 5).await;
    child.kill();
}

#[tokio::test]
async fn an_existing_durable_consumer_is_given_the_settings_ack_wait_and_max_ack_pending() {
    let bed = TestBed::new(Transport::JetStream).await;
    let js = jetstream().await;
    let stream = js.get_stream(stream_for(&bed.channel)).await.unwrap();
    stream
        .create_consumer(pull::Config {
            durable_name: Some(bed.durable.clone()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(5),
            max_ack_pending: 7,
            filter_subject: bed.channel.clone(),
            ..Default::default()
        })
        .await
        .expect("an operator's consumer");

    let ingestor = bed.start_ingestor("updates-consumer").await;
    bed.publisher.publish_all(distinct_orders("u", 20)).await;
    bed.wait_for_rows("orders", 20).await;
    let config = stream
        .consumer_info(&bed.durable)
        .await
        .unwrap()
        .config
        .clone();
    assert_eq!(config.ack_wait, Duration::from_secs(30));
    assert_eq!(config.max_ack_pending, 1024);
    ingestor.stop().await;
}
