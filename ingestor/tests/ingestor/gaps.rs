//! Messages the broker holds but never delivers to the ingestor are found by the gap sweeper and
//! read by their sequence: each stored, or dead-lettered, once.
//!
//! A rogue member of the ingestor's durable (a queue member on NATS Streaming, a puller of the
//! durable consumer on JetStream) takes the first messages and acknowledges them without storing
//! anything, as a broker that loses a member's pending messages does: for the broker they are
//! done, and the durable never sends them again.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use futures_util::StreamExt;
use testkit::{for_each_transport, stream_for, wait_until, Transport};

use crate::helpers::{distinct_orders, sample_with_uid, TestBed, PATIENCE};
use crate::metrics::{metrics_once, sample};

/// What the rogue takes: five orders, one of them twice, and a hostile message.
fn taken_by_the_rogue() -> Vec<Vec<u8>> {
    let mut messages = distinct_orders("rogue", 5);
    messages.push(sample_with_uid("rogue0"));
    messages.push(b"<script>alert(1)</script>".to_vec());
    messages
}

/// Takes `count` messages from the bed's durable and acknowledges them, storing nothing; returns
/// once the broker has every one of them acknowledged, with the rogue gone.
async fn rogue_takes(bed: &TestBed, count: usize) {
    match bed.transport {
        Transport::Stan => {
            let (url, channel, durable) = (
                bed.nats_url.clone(),
                bed.channel.clone(),
                bed.durable.clone(),
            );
            tokio::task::spawn_blocking(move || {
                let connection = nats::connect(&url).expect("the rogue connects");
                let client = stan::connect(
                    connection.clone(),
                    &testkit::stan_cluster_id(),
                    "rogue-member",
                )
                .expect("the rogue's STAN client");
                let subscription = client
                    .subscribe(
                        &channel,
                        stan::SubscriptionConfig {
                            queue_group: Some(&durable),
                            durable_name: Some(&durable),
                            start: stan::SubscriptionStart::AllAvailable,
                            max_in_flight: 1024,
                            ack_wait_in_secs: 30,
                        },
                    )
                    .expect("the rogue joins the durable queue group");
                for _ in 0..count {
                    let message = subscription
                        .next_timeout(PATIENCE)
                        .expect("the rogue gets a message");
                    message.ack().expect("the rogue acks");
                }
                connection.flush().expect("the rogue's acks leave");
                // The client closes when dropped; the durable queue group stays.
            })
            .await
            .expect("the rogue");
            wait_until("the broker to count the rogue's acks", PATIENCE, || async {
                let state = bed.publisher.consumer_state(&bed.durable).await;
                state.last_sent >= count as u64 && state.pending == 0
            })
            .await;
        }
        Transport::JetStream => {
            let client = async_nats::connect(&bed.nats_url)
                .await
                .expect("the rogue connects");
            let js = async_nats::jetstream::new(client);
            let stream = js.get_stream(stream_for(&bed.channel)).await.unwrap();
            // As the ingestor configures its durable, so that it takes the same one over.
            let consumer: async_nats::jetstream::consumer::PullConsumer = stream
                .create_consumer(pull::Config {
                    durable_name: Some(bed.durable.clone()),
                    deliver_policy: DeliverPolicy::All,
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(30),
                    max_ack_pending: 1024,
                    filter_subject: bed.channel.clone(),
                    ..Default::default()
                })
                .await
                .expect("the rogue's consumer");
            let mut messages = consumer
                .fetch()
                .max_messages(count)
                .expires(PATIENCE)
                .messages()
                .await
                .expect("the rogue pulls");
            for _ in 0..count {
                let message = messages
                    .next()
                    .await
                    .expect("the rogue gets a message")
                    .expect("a message");
                message
                    .double_ack()
                    .await
                    .expect("the broker takes the rogue's ack");
            }
        }
    }
}

async fn messages_a_broker_never_delivered_are_fetched_by_sequence(transport: Transport) {
    let bed = TestBed::new(transport).await;
    let lost = taken_by_the_rogue();
    let lost_count = lost.len();
    bed.publisher.publish_all(lost).await;
    rogue_takes(&bed, lost_count).await;

    let mut settings = bed.settings("sweeps-gaps");
    settings.refetch_after_secs = Some(1);
    let ingestor = bed.start_ingestor_with(settings).await;
    // Delivered as usual, after the gap.
    bed.publisher
        .publish_all(distinct_orders("after", 10))
        .await;

    bed.wait_for_rows("orders", 5 + 10).await;
    bed.wait_for_rows("dead_letters", 1).await;
    let total = (lost_count + 10) as f64;
    let text = metrics_once(&ingestor, |text| {
        sample(text, "ingestor_consumed_through") == Some(total)
    })
    .await;
    assert_eq!(
        sample(&text, "ingestor_messages_refetched_total"),
        Some(lost_count as f64),
        "each lost message fetched once"
    );
    assert_eq!(sample(&text, "ingestor_messages_absent_total"), Some(0.0));
    assert_eq!(
        bed.db.count("orders").await,
        15,
        "the order taken twice stored once"
    );
    assert_eq!(bed.db.count("dead_letters").await, 1);
    assert_eq!(
        bed.db.count("consumed_messages").await,
        0,
        "the ledger keeps nothing below the mark"
    );
    ingestor.stop().await;
}

for_each_transport!(messages_a_broker_never_delivered_are_fetched_by_sequence);

/// A message deleted from the JetStream stream after the rogue took it is absent: passed over,
/// so that the mark moves on, and the rest are fetched.
#[tokio::test]
async fn a_lost_message_the_stream_no_longer_holds_is_passed_over() {
    let bed = TestBed::new(Transport::JetStream).await;
    let lost = taken_by_the_rogue();
    let lost_count = lost.len();
    bed.publisher.publish_all(lost).await;
    rogue_takes(&bed, lost_count).await;
    let client = async_nats::connect(&bed.nats_url).await.unwrap();
    let stream = async_nats::jetstream::new(client)
        .get_stream(stream_for(&bed.channel))
        .await
        .unwrap();
    // The second order.
    assert!(stream.delete_message(2).await.expect("delete a message"));

    let mut settings = bed.settings("passes-over");
    settings.refetch_after_secs = Some(1);
    let ingestor = bed.start_ingestor_with(settings).await;
    bed.publisher.publish_all(distinct_orders("after", 3)).await;

    let total = (lost_count + 3) as f64;
    let text = metrics_once(&ingestor, |text| {
        sample(text, "ingestor_consumed_through") == Some(total)
    })
    .await;
    assert_eq!(sample(&text, "ingestor_messages_absent_total"), Some(1.0));
    assert_eq!(
        sample(&text, "ingestor_messages_refetched_total"),
        Some((lost_count - 1) as f64)
    );
    bed.wait_for_rows("orders", 4 + 3).await;
    assert_eq!(bed.db.count("dead_letters").await, 1);
    ingestor.stop().await;
}
