//! A JetStream cluster of a test's own.

use std::time::{Duration, Instant};

use testkit::{wait_until, JetStreamCluster};

use crate::support::{messages, publish, stream};

#[tokio::test]
async fn a_jetstream_cluster_elects_another_meta_leader_when_its_meta_leader_is_killed() {
    let mut cluster = JetStreamCluster::start();
    let leader = cluster.leader().await;

    cluster.kill(leader);
    let killed = Instant::now();
    let next = cluster.leader().await;
    eprintln!(
        "JetStream: node {next} is the meta leader {:?} after node {leader} was killed",
        killed.elapsed()
    );

    assert_ne!(next, leader);
    cluster.restart(leader).await;
    cluster.leader().await;
}

#[tokio::test]
async fn a_replicated_stream_gets_another_leader_and_keeps_its_messages_when_its_leader_is_killed()
{
    let mut cluster = JetStreamCluster::start();
    let js = stream(&cluster.urls(), "KILLED", "killed", 3).await;
    publish(&js, "killed", 10).await;
    let leader = cluster.stream_leader("KILLED").await;

    cluster.kill(leader);
    let killed = Instant::now();
    let next = cluster.stream_leader("KILLED").await;
    eprintln!(
        "JetStream: node {next} leads the stream {:?} after node {leader} was killed",
        killed.elapsed()
    );

    assert_ne!(next, leader);
    wait_until(
        "the stream's 10 messages",
        Duration::from_secs(10),
        || async { messages(&js, "KILLED").await == Some(10) },
    )
    .await;
}

#[tokio::test]
async fn a_jetstream_cluster_restarted_whole_keeps_its_replicated_stream() {
    let mut cluster = JetStreamCluster::start();
    let js = stream(&cluster.urls(), "RESTARTED", "restarted", 3).await;
    publish(&js, "restarted", 10).await;

    cluster.restart_all().await;
    cluster.stream_leader("RESTARTED").await;

    wait_until(
        "the stream's 10 messages",
        Duration::from_secs(10),
        || async { messages(&js, "RESTARTED").await == Some(10) },
    )
    .await;
}
