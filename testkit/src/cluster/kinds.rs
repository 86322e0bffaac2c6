//! What tells the clusters of the two brokers apart: a node's command line, when it answers, and
//! who the nodes say leads.

use std::path::Path;

use super::{Kind, NODES};
use crate::server;

/// The ports of a node: for clients, for the routes between the nodes, for monitoring.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub client: u16,
    pub route: u16,
    pub monitor: u16,
}

/// The nodes a probe asks: each running node's number and monitoring port.
pub type Live = Vec<(usize, u16)>;

/// What a broker's cluster needs: sealed, as this module is private.
pub trait Broker: Send + Sync + 'static {
    /// The broker's name, for messages.
    const NAME: &'static str;
    /// The start of the cluster's temporary folder's name.
    const PREFIX: &'static str;
    /// The server's binary.
    fn program() -> String;
    /// The command line of node `i` of the cluster of `ports`, its store under `dir`.
    fn args(i: usize, dir: &Path, ports: &[Ports]) -> Vec<String>;
    /// True when the node on `monitor_port` answers, whatever it knows of the leader.
    fn answers(monitor_port: u16) -> bool;
    /// The leader the running nodes `live` agree on now, or what they say instead.
    fn leader_now(live: &Live) -> Result<usize, String>;
}

/// NATS Streaming: a node leads when its `/streaming/serverz` says `"role": "Leader"` (the others
/// say `Follower` or `Candidate`). The cluster has a leader when every running node answers and
/// exactly one says so. The binary is `STAN_BIN`, else `nats-streaming-server` from `PATH`.
pub struct Stan;

/// The node ids of a NATS Streaming cluster, by node number.
const STAN_IDS: [&str; NODES] = ["a", "b", "c"];

impl Kind for Stan {}

impl Broker for Stan {
    const NAME: &'static str = "NATS Streaming";
    const PREFIX: &'static str = "stan_cluster";

    fn program() -> String {
        server::program("STAN_BIN", "nats-streaming-server")
    }

    /// The flags of `stan_node_start` in scripts/lib/stan.sh, with the heartbeats of
    /// [`crate::PrivateStan`].
    fn args(i: usize, dir: &Path, ports: &[Ports]) -> Vec<String> {
        let id = STAN_IDS[i];
        let node = dir.join(id);
        let path = |sub: &str| node.join(sub).to_str().expect("a UTF-8 path").to_string();
        let mut args = strings(&["--cluster_id", &crate::stan_cluster_id()]);
        args.extend(strings(&["--store", "file", "--dir", &path("store")]));
        args.extend(strings(&["--clustered", "--cluster_node_id", id]));
        args.extend(strings(&["--cluster_peers", &STAN_IDS.join(",")]));
        args.extend(strings(&["--cluster_log_path", &path("raft")]));
        args.extend(listen_args(&ports[i], ports));
        args.extend(strings(&[
            "--max_channels",
            "0",
            "--max_subs",
            "0",
            "--max_msgs",
            "0",
            "--max_bytes",
            "0",
            "--max_age",
            "0s",
        ]));
        args.extend(strings(&crate::private_stan::HEARTBEATS));
        args
    }

    fn answers(monitor_port: u16) -> bool {
        matches!(
            server::http_get(monitor_port, "/streaming/serverz"),
            Some((200, _))
        )
    }

    fn leader_now(live: &Live) -> Result<usize, String> {
        let roles: Vec<(usize, String)> = live
            .iter()
            .map(|&(i, port)| {
                let serverz = server::get_json(port, "/streaming/serverz");
                let role = serverz.as_ref().and_then(|s| s["role"].as_str());
                (i, role.unwrap_or("").to_string())
            })
            .collect();
        let leaders: Vec<usize> = roles
            .iter()
            .filter(|(_, role)| role == "Leader")
            .map(|&(i, _)| i)
            .collect();
        match leaders[..] {
            [leader] if roles.iter().all(|(_, role)| !role.is_empty()) => Ok(leader),
            _ => Err(describe(&roles, "says")),
        }
    }
}

/// JetStream: the meta leader, which every node names in `meta_cluster.leader` of its `/jsz`.
/// The cluster has a leader when every running node names the same running node. Node `i` is
/// the server `node-i`. The binary is `NATS_SERVER_BIN`, else `nats-server` from `PATH`.
pub struct JetStream;

impl Kind for JetStream {}

impl Broker for JetStream {
    const NAME: &'static str = "JetStream";
    const PREFIX: &'static str = "jetstream_cluster";

    fn program() -> String {
        server::program("NATS_SERVER_BIN", "nats-server")
    }

    /// The flags of `jetstream_node_start` in scripts/lib/jetstream.sh.
    fn args(i: usize, dir: &Path, ports: &[Ports]) -> Vec<String> {
        let name = format!("node-{i}");
        let store = dir.join(&name).to_str().expect("a UTF-8 path").to_string();
        let mut args = strings(&["-js", "-sd", &store, "-n", &name]);
        args.extend(strings(&["--cluster_name", "orders"]));
        args.extend(listen_args(&ports[i], ports));
        args
    }

    fn answers(monitor_port: u16) -> bool {
        matches!(
            server::http_get(monitor_port, "/healthz?js-enabled-only=true"),
            Some((200, _))
        )
    }

    fn leader_now(live: &Live) -> Result<usize, String> {
        let views: Vec<(usize, String)> = live
            .iter()
            .map(|&(i, port)| {
                let jsz = server::get_json(port, "/jsz");
                let leader = jsz
                    .as_ref()
                    .and_then(|j| j["meta_cluster"]["leader"].as_str());
                (i, leader.unwrap_or("").to_string())
            })
            .collect();
        agreed(live, &views)
    }
}

/// The leader of the JetStream stream `stream` that the running nodes `live` which hold it (list
/// it in their `/jsz?streams=true`) agree on; a node that does not answer counts as one that
/// knows no leader.
pub(crate) fn stream_leader_now(live: &Live, stream: &str) -> Result<usize, String> {
    let mut views = Vec::new();
    for &(i, port) in live {
        let Some(jsz) = server::get_json(port, "/jsz?streams=true") else {
            views.push((i, String::new()));
            continue;
        };
        let detail = jsz["account_details"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|account| account["stream_detail"].as_array().into_iter().flatten())
            .find(|detail| detail["name"] == stream);
        if let Some(detail) = detail {
            let leader = detail["cluster"]["leader"].as_str().unwrap_or("");
            views.push((i, leader.to_string()));
        }
    }
    if views.is_empty() {
        return Err(format!("no running node holds the stream {stream}"));
    }
    agreed(live, &views)
}

/// The running node that every view (node number, the server name it sees lead) names.
fn agreed(live: &Live, views: &[(usize, String)]) -> Result<usize, String> {
    let first = views.first().map(|(_, name)| name.as_str()).unwrap_or("");
    let leader = first
        .strip_prefix("node-")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| live.iter().any(|&(i, _)| i == *n));
    match leader {
        Some(n) if views.iter().all(|(_, name)| name == first) => Ok(n),
        _ => Err(describe(views, "sees")),
    }
}

/// What each node says, for a failure's message: "node 0 says Follower, node 1 says nothing".
fn describe(views: &[(usize, String)], verb: &str) -> String {
    views
        .iter()
        .map(|(i, said)| {
            let said = if said.is_empty() { "nothing" } else { said };
            format!("node {i} {verb} {said}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The flags both brokers take alike: where a node listens for clients and monitoring, its own
/// route and the routes to every node (a route to itself is recognised and dropped).
fn listen_args(own: &Ports, all: &[Ports]) -> Vec<String> {
    let routes: Vec<String> = all
        .iter()
        .map(|p| format!("nats://127.0.0.1:{}", p.route))
        .collect();
    strings(&[
        "-a",
        "127.0.0.1",
        "-p",
        &own.client.to_string(),
        "-m",
        &own.monitor.to_string(),
        "--cluster",
        &format!("nats://127.0.0.1:{}", own.route),
        "--routes",
        &routes.join(","),
    ])
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}
