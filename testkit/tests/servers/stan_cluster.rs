//! A NATS Streaming cluster of a test's own.

use std::time::{Duration, Instant};

use testkit::{wait_until, StanCluster, StanPublisher};

use crate::support::stan_messages;

/// The messages node `node` of `cluster` holds on `channel`, from its monitoring endpoint.
async fn channel_messages(cluster: &StanCluster, node: usize, channel: &str) -> Option<u64> {
    let url = format!(
        "{}/streaming/channelsz?channel={channel}",
        cluster.monitor_url(node)
    );
    let body: serde_json::Value = reqwest::get(&url).await.ok()?.json().await.ok()?;
    body["msgs"].as_u64()
}

#[tokio::test]
async fn a_stan_cluster_elects_another_leader_that_has_every_message_when_its_leader_is_killed() {
    let mut cluster = StanCluster::start();
    assert_eq!(cluster.urls().split(',').count(), 3, "{}", cluster.urls());
    let channel = testkit::unique_name("cluster");
    let publisher = StanPublisher::connect(&cluster.urls(), &channel).await;
    publisher.publish_all(stan_messages(10)).await;
    let leader = cluster.leader().await;

    cluster.kill(leader);
    let killed = Instant::now();
    let next = cluster.leader().await;
    eprintln!(
        "NATS Streaming: node {next} leads {:?} after node {leader} was killed",
        killed.elapsed()
    );

    assert_ne!(next, leader);
    assert_eq!(channel_messages(&cluster, next, &channel).await, Some(10));
    cluster.restart(leader).await;
    cluster.leader().await;
}

#[tokio::test]
async fn a_stan_cluster_restarted_whole_elects_a_leader_and_keeps_its_messages() {
    let mut cluster = StanCluster::start();
    let channel = testkit::unique_name("cluster");
    let publisher = StanPublisher::connect(&cluster.urls(), &channel).await;
    publisher.publish_all(stan_messages(10)).await;

    let leader = cluster.restart_all().await;

    // The leader serves its channels once it has replayed its log: ask until it does.
    wait_until(
        "the channel on the new leader",
        Duration::from_secs(10),
        || async { channel_messages(&cluster, leader, &channel).await == Some(10) },
    )
    .await;
}
