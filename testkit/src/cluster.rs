//! Three-node clusters of a test's own, of either broker, to kill nodes and see another one lead:
//! [`StanCluster`] (NATS Streaming, clustered with Raft over the routes of its embedded NATS
//! servers) and [`JetStreamCluster`] (nats-server with JetStream).
//!
//! Nodes are numbered 0, 1 and 2. As with [`crate::PrivateStan`], `start` blocks (a test starts its
//! servers before anything else runs); what waits once the test runs is async, and polls the
//! nodes' monitoring endpoints off the runtime, so that a process under test in the same runtime
//! keeps running meanwhile.

use std::ffi::OsString;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::server::{self, ServerProcess, START_LIMIT};

mod kinds;

pub use kinds::{JetStream, Stan};
use kinds::{Live, Ports};

/// Three NATS Streaming nodes, `a`, `b` and `c` (nodes 0, 1 and 2), in cluster id
/// [`crate::stan_cluster_id`], each with a file store and a Raft log of its own. One leads: it
/// alone answers clients, and the others replicate what it stores.
pub type StanCluster = Cluster<Stan>;

/// Three nats-servers with JetStream, `node-0`, `node-1` and `node-2`, in the cluster `orders`.
/// The meta leader ([`Cluster::leader`]) creates streams and consumers; each stream replicated on
/// several nodes has a leader of its own ([`Cluster::stream_leader`]).
pub type JetStreamCluster = Cluster<JetStream>;

/// How many nodes a cluster has: the fewest that keep a majority when one is lost.
const NODES: usize = 3;

/// The longest [`Cluster::leader`] waits: an election takes a few seconds (NATS Streaming's Raft
/// timeouts, JetStream's 4 to 9 s), more on a loaded machine.
const LEADER_LIMIT: Duration = Duration::from_secs(30);

const POLL: Duration = Duration::from_millis(50);

/// A cluster of three nodes on free ports, their stores in a temporary folder removed when the
/// value is dropped (the nodes are killed first). See [`StanCluster`] and [`JetStreamCluster`].
pub struct Cluster<K: Kind> {
    dir: PathBuf,
    nodes: Vec<Node>,
    kind: PhantomData<K>,
}

struct Node {
    ports: Ports,
    server: ServerProcess,
}

/// The broker of a cluster; implemented by [`Stan`] and [`JetStream`] only.
pub trait Kind: kinds::Broker {}

impl<K: Kind> Cluster<K> {
    /// Starts the three nodes, and blocks until each answers and they have a leader.
    pub fn start() -> Cluster<K> {
        let dir = std::env::temp_dir().join(crate::unique_name(K::PREFIX));
        std::fs::create_dir_all(&dir).expect("create the cluster's folder");
        let cluster = Cluster {
            nodes: Self::nodes(&dir),
            dir,
            kind: PhantomData,
        };
        for node in &cluster.nodes {
            node.server.start();
        }
        for i in 0..NODES {
            cluster.wait_answers_blocking(i);
        }
        cluster.poll_blocking("a leader", LEADER_LIMIT, K::leader_now);
        cluster
    }

    /// The nodes, not started yet: on free ports, each with a store and a log in `dir`.
    fn nodes(dir: &Path) -> Vec<Node> {
        let ports: Vec<Ports> = server::free_ports(3 * NODES)
            .chunks(3)
            .map(|p| Ports {
                client: p[0],
                route: p[1],
                monitor: p[2],
            })
            .collect();
        (0..NODES)
            .map(|i| {
                let args = K::args(i, dir, &ports).into_iter().map(OsString::from);
                let log = dir.join(format!("node-{i}.log"));
                Node {
                    ports: ports[i],
                    server: ServerProcess::new(K::program(), args.collect(), log),
                }
            })
            .collect()
    }

    /// The client URLs of every node, comma-separated, as `NATS_URL` takes them.
    pub fn urls(&self) -> String {
        (0..NODES)
            .map(|i| self.node_url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The client URL of node `i`.
    pub fn node_url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].ports.client)
    }

    /// The monitoring endpoint of node `i`.
    pub fn monitor_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].ports.monitor)
    }

    /// The process id of node `i`; `None` while it is killed.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].server.pid()
    }

    /// Kills node `i` at once (`kill -9`): its store and log keep what they had.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].server.kill();
    }

    /// Starts node `i` again on the same store and ports (killing it first, `kill -9`, if it
    /// runs), and waits until it answers on its monitoring port. It may not have caught up with
    /// the leader by then: [`Cluster::leader`] waits for every running node to agree.
    pub async fn restart(&mut self, i: usize) {
        self.nodes[i].server.kill();
        self.nodes[i].server.start();
        let port = self.nodes[i].ports.monitor;
        self.poll(&format!("node {i} to answer"), START_LIMIT, move |_| {
            answered(K::answers(port))
        })
        .await;
    }

    /// Kills every node (`kill -9`), starts them all again on their stores, and waits until they
    /// have a leader; returns its number.
    pub async fn restart_all(&mut self) -> usize {
        for node in &self.nodes {
            node.server.kill();
        }
        for node in &self.nodes {
            node.server.start();
        }
        self.leader().await
    }

    /// The leader: waits, at most 30 s, until the running nodes (those not killed) agree on one
    /// of them (see [`Stan`] and [`JetStream`] for what each broker says), and
    /// returns its number. Panics with every node's log if they do not by then.
    pub async fn leader(&self) -> usize {
        self.wait_for_leader(LEADER_LIMIT).await
    }

    /// As [`Cluster::leader`], waiting at most `limit`: after the leader was killed, until the
    /// others have elected another.
    pub async fn wait_for_leader(&self, limit: Duration) -> usize {
        self.poll("a leader", limit, K::leader_now).await
    }

    /// Polls `probe` with the running nodes until it finds what it looks for (`what`), off the
    /// async runtime, at most `limit`. Panics with every node's log when a node has exited by
    /// itself, or at the limit with what the probe saw last.
    async fn poll<T, P>(&self, what: &str, limit: Duration, probe: P) -> T
    where
        T: Send + 'static,
        P: Fn(&Live) -> Result<T, String> + Send + Sync + 'static,
    {
        let probe = Arc::new(probe);
        let start = Instant::now();
        loop {
            let (probe, live) = (Arc::clone(&probe), self.live(what));
            let seen = match tokio::task::spawn_blocking(move || probe(&live))
                .await
                .expect("the probe thread")
            {
                Ok(found) => return found,
                Err(seen) => seen,
            };
            self.assert_within(what, limit, start, &seen);
            tokio::time::sleep(POLL).await;
        }
    }

    /// As [`Cluster::poll`], blocking the thread: for `start`.
    fn poll_blocking<T>(
        &self,
        what: &str,
        limit: Duration,
        probe: fn(&Live) -> Result<T, String>,
    ) -> T {
        let start = Instant::now();
        loop {
            let seen = match probe(&self.live(what)) {
                Ok(found) => return found,
                Err(seen) => seen,
            };
            self.assert_within(what, limit, start, &seen);
            std::thread::sleep(POLL);
        }
    }

    fn wait_answers_blocking(&self, i: usize) {
        let node = &self.nodes[i];
        let what = format!("node {i} of a {} cluster", K::NAME);
        node.server
            .wait_ready(&what, || K::answers(node.ports.monitor));
    }

    /// The running nodes; panics with every log if one has exited by itself.
    fn live(&self, what: &str) -> Live {
        for (i, node) in self.nodes.iter().enumerate() {
            if let Some(status) = node.server.exit_status() {
                panic!(
                    "node {i} of a {} cluster exited ({status}) while waiting for {what}\n{}",
                    K::NAME,
                    self.logs()
                );
            }
        }
        (0..NODES)
            .filter(|&i| self.nodes[i].server.is_running())
            .map(|i| (i, self.nodes[i].ports.monitor))
            .collect()
    }

    fn assert_within(&self, what: &str, limit: Duration, start: Instant, seen: &str) {
        assert!(
            start.elapsed() < limit,
            "a {} cluster: no {what} after {limit:?}; last seen: {seen}\n{}",
            K::NAME,
            self.logs()
        );
    }

    /// The end of every node's log, for a failure's message: the folder goes with the cluster.
    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.server.log_tail())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Cluster<JetStream> {
    /// The leader of the stream `stream`, replicated on several nodes: waits, at most 30 s, until
    /// every running node that holds the stream names the same running node as its leader (the
    /// `cluster.leader` of the stream in the node's `/jsz?streams=true`), and returns its number.
    /// The monitoring endpoint needs no client, and tells what each node believes, so a node that
    /// has not heard of the new leader yet holds the answer back.
    pub async fn stream_leader(&self, stream: &str) -> usize {
        let stream = stream.to_string();
        let what = format!("a leader of the stream {stream}");
        self.poll(&what, LEADER_LIMIT, move |live| {
            kinds::stream_leader_now(live, &stream)
        })
        .await
    }
}

impl<K: Kind> Drop for Cluster<K> {
    fn drop(&mut self) {
        for node in &self.nodes {
            node.server.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `Ok` when a node answered, for [`Cluster::poll`].
fn answered(answers: bool) -> Result<(), String> {
    if answers {
        Ok(())
    } else {
        Err("it does not answer".into())
    }
}
