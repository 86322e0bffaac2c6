//! The ingestor on three-node broker clusters, on real servers: NATS Streaming clustered with
//! Raft, and JetStream with a stream kept by all three nodes (R3).
//!
//! The publisher (the project's own, run in this process) publishes a stream of orders
//! (`FAULTS_ORDERS`, default 20 000) at 2 000 a second to every node's URL, publishing again what
//! the broker did not acknowledge, while the test kills the leader (`kill -9`), then a follower,
//! then the whole cluster, each once a quarter more of the stream is stored. The one ingestor,
//! a child process, is never restarted. In the end every order is acknowledged to the publisher
//! and stored exactly once, nothing is dead-lettered, and the ingestor still runs and stops
//! cleanly. The test prints what the closing audit saw: the messages the broker holds, how long
//! each election took, and the longest pause in ingestion.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use publisher::valid::Generator;
use testkit::{JetStreamCluster, StanCluster, TestDb, Transport};

use crate::helpers::{TestBed, PATIENCE};
use crate::streams::{longest_pause, longest_pause_within, orders_to_send, wait_for_orders};

/// The publisher's rate, in orders a second: the stream lasts long enough for the faults.
const RATE: &str = "2000";

/// How long the publisher keeps publishing a message the broker did not acknowledge: several
/// elections' worth.
const RETRY_FOR: &str = "120";

/// A three-node cluster of one broker, as these tests drive it.
trait Topology: Sized + Send + 'static {
    const TRANSPORT: Transport;
    /// The servers that keep each message: 3 for JetStream's stream (NATS Streaming's cluster
    /// replicates everything to every node).
    const REPLICAS: usize;
    fn start() -> Self;
    fn urls(&self) -> String;
    /// The node that leads the bed's channel now, once the running nodes agree.
    async fn leader(&self, bed: &TestBed) -> usize;
    fn kill(&mut self, node: usize);
    async fn restart(&mut self, node: usize);
    async fn restart_all(&mut self);
    /// The messages node `node` holds on the bed's channel, from its monitoring endpoint.
    async fn messages(&self, node: usize, bed: &TestBed) -> Option<u64>;
}

impl Topology for StanCluster {
    const TRANSPORT: Transport = Transport::Stan;
    const REPLICAS: usize = 1;

    fn start() -> Self {
        StanCluster::start()
    }
    fn urls(&self) -> String {
        StanCluster::urls(self)
    }
    async fn leader(&self, _: &TestBed) -> usize {
        StanCluster::leader(self).await
    }
    fn kill(&mut self, node: usize) {
        StanCluster::kill(self, node)
    }
    async fn restart(&mut self, node: usize) {
        StanCluster::restart(self, node).await
    }
    async fn restart_all(&mut self) {
        StanCluster::restart_all(self).await;
    }
    async fn messages(&self, node: usize, bed: &TestBed) -> Option<u64> {
        let url = format!(
            "{}/streaming/channelsz?channel={}",
            self.monitor_url(node),
            bed.channel
        );
        monitor_json(&url).await?["msgs"].as_u64()
    }
}

impl Topology for JetStreamCluster {
    const TRANSPORT: Transport = Transport::JetStream;
    const REPLICAS: usize = 3;

    fn start() -> Self {
        JetStreamCluster::start()
    }
    fn urls(&self) -> String {
        JetStreamCluster::urls(self)
    }
    async fn leader(&self, bed: &TestBed) -> usize {
        self.stream_leader(&testkit::stream_for(&bed.channel)).await
    }
    fn kill(&mut self, node: usize) {
        JetStreamCluster::kill(self, node)
    }
    async fn restart(&mut self, node: usize) {
        JetStreamCluster::restart(self, node).await
    }
    async fn restart_all(&mut self) {
        JetStreamCluster::restart_all(self).await;
    }
    async fn messages(&self, node: usize, bed: &TestBed) -> Option<u64> {
        let url = format!("{}/jsz?streams=true", self.monitor_url(node));
        let jsz = monitor_json(&url).await?;
        let stream = testkit::stream_for(&bed.channel);
        jsz["account_details"]
            .as_array()?
            .iter()
            .flat_map(|account| account["stream_detail"].as_array().into_iter().flatten())
            .find(|detail| detail["name"] == stream.as_str())?["state"]["messages"]
            .as_u64()
    }
}

async fn monitor_json(url: &str) -> Option<serde_json::Value> {
    reqwest::get(url).await.ok()?.json().await.ok()
}

/// What the test does to the cluster, in this order.
#[derive(Debug, Clone, Copy)]
enum Fault {
    KillLeader,
    KillFollower,
    RestartAll,
}

const FAULTS: [Fault; 3] = [Fault::KillLeader, Fault::KillFollower, Fault::RestartAll];

/// One fault as it happened.
struct Struck {
    fault: Fault,
    at: DateTime<Utc>,
    stored_before: i64,
    publishing: bool,
    /// From the kill to a leader again that every running node names.
    election: Duration,
}

/// Strikes `fault`: kills the node, waits for the cluster to lead again, and starts the node
/// again (so that the next fault finds three nodes).
async fn strike<T: Topology>(cluster: &mut T, bed: &TestBed, fault: Fault) -> (Duration, String) {
    let leader = cluster.leader(bed).await;
    let started = Instant::now();
    let (node, role) = match fault {
        Fault::KillLeader => (leader, "the leader"),
        Fault::KillFollower => ((leader + 1) % 3, "a follower"),
        Fault::RestartAll => {
            cluster.restart_all().await;
            let next = cluster.leader(bed).await;
            let what = format!("killed and restarted every node; node {next} leads");
            return (started.elapsed(), what);
        }
    };
    cluster.kill(node);
    let next = cluster.leader(bed).await;
    let election = started.elapsed();
    assert_ne!(next, node, "a killed node cannot lead");
    cluster.restart(node).await;
    cluster.leader(bed).await;
    (
        election,
        format!("killed {role}, node {node}; node {next} leads"),
    )
}

/// The publisher, run in this process as its binary would run: `count` generated orders of the
/// run `seed`, every acknowledged one written to `acked_log`.
fn publish<T: Topology>(
    bed: &TestBed,
    count: usize,
    seed: u64,
    acked_log: &std::path::Path,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    let mut args: Vec<String> = ["publisher", "--broker", T::TRANSPORT.setting()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let nats_url = bed.nats_url.clone();
    args.extend([
        "--nats-url".into(),
        nats_url,
        "--channel".into(),
        bed.channel.clone(),
    ]);
    match T::TRANSPORT {
        Transport::Stan => args.extend(["--cluster-id".into(), testkit::stan_cluster_id()]),
        Transport::JetStream => args.extend([
            "--stream".into(),
            testkit::stream_for(&bed.channel),
            "--jetstream-replicas".into(),
            T::REPLICAS.to_string(),
        ]),
    }
    let acked_log = acked_log.to_str().expect("a UTF-8 path").to_string();
    args.extend(
        [
            "--rate",
            RATE,
            "--retry-for",
            RETRY_FOR,
            "--acked-log",
            &acked_log,
            "--quiet",
            "valid",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    args.extend([count.to_string(), "--seed".into(), seed.to_string()]);
    let cli = publisher::Cli::try_from_args(args).expect("the publisher's command line");
    tokio::task::spawn_blocking(move || publisher::run(cli))
}

async fn stored_uids(db: &TestDb) -> BTreeSet<String> {
    sqlx::query_scalar("SELECT order_uid FROM orders")
        .fetch_all(&db.pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

async fn leader_killed_then_a_follower_then_the_whole_cluster<T: Topology>(name: &str) {
    let total = orders_to_send();
    let seed: u64 = rand_seed();
    let mut cluster = tokio::task::spawn_blocking(T::start).await.unwrap();
    let bed = TestBed::on_cluster(
        T::TRANSPORT,
        TestDb::new().await,
        &cluster.urls(),
        T::REPLICAS,
    )
    .await;
    let mut ingestor = bed.spawn_ingestor_process("on-a-cluster");
    let acked_log = temp_path(&bed.channel);
    let started = Instant::now();
    let publishing = publish::<T>(&bed, total, seed, &acked_log);

    let mut struck = Vec::new();
    for (n, fault) in FAULTS.into_iter().enumerate() {
        let threshold = (total * (n + 1) / 4) as i64;
        wait_for_orders(&bed.db, threshold, PATIENCE * 2).await;
        let (at, stored_before) = (Utc::now(), bed.db.count("orders").await);
        let publishing = !publishing.is_finished();
        let (election, what) = strike(&mut cluster, &bed, fault).await;
        eprintln!(
            "{name}: {what} after {stored_before} stored orders ({}publishing): \
             led again after {election:.1?}",
            if publishing { "" } else { "no longer " }
        );
        assert!(ingestor.is_running(), "the ingestor exited after {fault:?}");
        struck.push(Struck {
            fault,
            at,
            stored_before,
            publishing,
            election,
        });
    }

    publishing
        .await
        .unwrap()
        .expect("every order acknowledged within the publisher's retry bound");
    wait_for_orders(&bed.db, total as i64, PATIENCE * 3).await;
    let elapsed = started.elapsed();

    // The audit: every order acknowledged, and stored once; nothing else.
    let acked_lines: Vec<String> = std::fs::read_to_string(&acked_log)
        .expect("the acked log")
        .lines()
        .map(str::to_string)
        .collect();
    let _ = std::fs::remove_file(&acked_log);
    let acked: BTreeSet<String> = acked_lines.iter().cloned().collect();
    let generator = Generator::new(seed);
    let expected: BTreeSet<String> = (0..total as u64).map(|i| generator.uid(i)).collect();
    assert_eq!(
        acked_lines.len(),
        total,
        "acknowledgements in the acked log"
    );
    assert_eq!(acked, expected, "every order acknowledged once");
    let stored = stored_uids(&bed.db).await;
    assert_eq!(stored.len(), total, "orders stored");
    assert_eq!(stored, acked, "the stored orders are the acknowledged ones");
    assert_eq!(bed.db.count("dead_letters").await, 0, "no dead letter");
    assert_eq!(bed.db.count("order_conflicts").await, 0, "no conflict");
    assert!(ingestor.is_running(), "the ingestor runs throughout");
    ingestor.signal("TERM");
    let status = ingestor.exit_status(PATIENCE).await;
    assert!(status.success(), "the ingestor stops cleanly: {status}");

    let leader = cluster.leader(&bed).await;
    let held = cluster.messages(leader, &bed).await.unwrap_or(0);
    eprintln!(
        "{name}: published {total} orders at {RATE}/s in {elapsed:.1?}; acknowledged {}; \
         the broker holds {held} messages ({} published again after a lost acknowledgement); \
         stored {} once each; dead letters 0; the ingestor never restarted; \
         longest pause in ingestion {:.1} s",
        acked.len(),
        held.saturating_sub(total as u64),
        stored.len(),
        longest_pause(&bed.db).await,
    );
    let ends: Vec<DateTime<Utc>> = struck.iter().skip(1).map(|s| s.at).collect();
    for (s, until) in struck.iter().zip(ends.into_iter().chain([Utc::now()])) {
        eprintln!(
            "{name}: {:?} at {} stored orders ({}): led again after {:.1?}; \
             the longest pause in ingestion until the next fault {:.1} s",
            s.fault,
            s.stored_before,
            if s.publishing {
                "while publishing"
            } else {
                "after publishing"
            },
            s.election,
            longest_pause_within(&bed.db, s.at, until).await,
        );
    }
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{name}.acked"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stan_cluster_losing_its_leader_a_follower_and_every_node_loses_no_acknowledged_order() {
    leader_killed_then_a_follower_then_the_whole_cluster::<StanCluster>("NATS Streaming").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jetstream_cluster_losing_its_leader_a_follower_and_every_node_loses_no_acknowledged_order(
) {
    leader_killed_then_a_follower_then_the_whole_cluster::<JetStreamCluster>("JetStream R3").await;
}
