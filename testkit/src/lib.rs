//! Helpers for black-box tests against the real Postgres and the real NATS Streaming server that
//! `scripts/test` starts. Each test gets a database and a channel of its own. [`settings`] runs
//! a process's binary to test its settings, which needs no server. [`PrivateStan`],
//! [`PrivateJetStream`], [`StanCluster`] and [`JetStreamCluster`] are brokers of a test's own, to
//! kill and restart; [`PrivatePostgres`] is a Postgres server of a test's own, and
//! [`PrivatePostgres::standby`] a hot standby of it ([`PrivateStandby`]) whose replay a test can
//! pause, stop and wait for.

mod broker;
mod cluster;
mod db;
mod jetstream;
mod postgres;
mod private_jetstream;
mod private_stan;
mod server;
pub mod settings;
mod stan;
mod standby;
mod wait;

pub use broker::{
    replicated_stream_spec, stream_for, stream_spec, PrivateBroker, Publisher, Transport,
};
pub use cluster::{Cluster, JetStream, JetStreamCluster, Kind, Stan, StanCluster};
pub use db::TestDb;
pub use jetstream::{jetstream_monitor_url, jetstream_url};
pub use postgres::PrivatePostgres;
pub use private_jetstream::PrivateJetStream;
pub use private_stan::PrivateStan;
pub use stan::{
    stan_cluster_id, stan_monitor_url, stan_url, subscription_state, StanPublisher,
    SubscriptionState, PUBLISH_PATIENCE,
};
pub use standby::PrivateStandby;
pub use wait::wait_until;

/// A name no other test uses, for databases, channels and durables.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// The sample order of the task.
pub fn sample_order() -> &'static [u8] {
    include_bytes!("../../model.json")
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
