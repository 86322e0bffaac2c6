//! From publisher to api: a published order is served as it was published.

use testkit::wait_until;
use testkit::Transport;

use crate::helpers::{Api, TestBed, PATIENCE};

async fn a_published_order_is_served_by_a_running_api_as_it_was_published_and_after_an_api_restart(
    transport: Transport,
) {
    let bed = TestBed::new(transport).await;
    let ingestor = bed.start_ingestor("e2e").await;
    let api = Api::start(&bed.db.url).await;
    assert_eq!(api.status("/api/v1/orders/b563feb7b2b84b6test").await, 404);

    bed.publisher.publish(testkit::sample_order()).await;
    wait_until("the api to serve the published order", PATIENCE, || async {
        api.status("/api/v1/orders/b563feb7b2b84b6test").await == 200
    })
    .await;
    let sample: serde_json::Value = serde_json::from_slice(testkit::sample_order()).unwrap();
    assert_eq!(api.order("b563feb7b2b84b6test").await, sample);
    api.stop().await;

    let restarted = Api::start(&bed.db.url).await;
    assert_eq!(restarted.order("b563feb7b2b84b6test").await, sample);
    restarted.stop().await;
    ingestor.stop().await;
}

testkit::for_each_transport!(
    a_published_order_is_served_by_a_running_api_as_it_was_published_and_after_an_api_restart,
);
