//! A NATS Streaming publisher that does not wait for each ack before the next publish, as
//! `stan.go`'s `PublishAsync` does: one connection, one ack inbox, the acks read on a thread of
//! their own.
//!
//! The `stan` crate's `publish` subscribes to a fresh inbox for every message, waits for the ack
//! and unsubscribes: at 5 000 orders a second that took most of this machine's two cores between
//! the client and the broker (`bench freshness` and `nats-streaming-server` together used 11.5 of
//! the 20 CPU seconds of a 10 s run), starving the very service being timed. This speaks the same
//! protocol (`nats_streaming.proto` of the server) for the few messages a publisher needs.

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use prost::Message as _;

/// The protocol's messages a publisher sends and receives, with the server's field numbers.
mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ConnectRequest {
        #[prost(string, tag = "1")]
        pub client_id: String,
        #[prost(string, tag = "2")]
        pub heartbeat_inbox: String,
        #[prost(int32, tag = "3")]
        pub protocol: i32,
        #[prost(bytes, tag = "4")]
        pub conn_id: Vec<u8>,
        #[prost(int32, tag = "5")]
        pub ping_interval: i32,
        #[prost(int32, tag = "6")]
        pub ping_max_out: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ConnectResponse {
        #[prost(string, tag = "1")]
        pub pub_prefix: String,
        #[prost(string, tag = "4")]
        pub close_requests: String,
        #[prost(string, tag = "5")]
        pub error: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PubMsg {
        #[prost(string, tag = "1")]
        pub client_id: String,
        #[prost(string, tag = "2")]
        pub guid: String,
        #[prost(string, tag = "3")]
        pub subject: String,
        #[prost(bytes, tag = "5")]
        pub data: Vec<u8>,
        #[prost(bytes, tag = "6")]
        pub conn_id: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PubAck {
        #[prost(string, tag = "1")]
        pub guid: String,
        #[prost(string, tag = "2")]
        pub error: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CloseRequest {
        #[prost(string, tag = "1")]
        pub client_id: String,
    }
}

/// How long the broker has to answer a connect or close request, and to acknowledge the last
/// publish once publishing is over.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Publishes without an ack at most; `publish` waits beyond it.
const MAX_IN_FLIGHT: usize = 16_384;

pub struct Publisher {
    nats: nats::Connection,
    client_id: String,
    conn_id: Vec<u8>,
    pub_prefix: String,
    close_requests: String,
    ack_inbox: String,
    pending: Arc<Pending>,
    acks: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
    _heartbeats: nats::subscription::Handler,
}

/// The guids published and not acknowledged yet, and the first error an ack carried.
#[derive(Default)]
struct Pending {
    state: Mutex<PendingState>,
    changed: Condvar,
}

#[derive(Default)]
struct PendingState {
    guids: HashSet<String>,
    error: Option<String>,
    closed: bool,
}

impl Publisher {
    pub fn connect(nats_url: &str, cluster_id: &str, client_id: &str) -> anyhow::Result<Self> {
        let nats = nats::Options::new()
            .with_name(client_id)
            .connect(nats_url)
            .context("connecting to NATS")?;
        let heartbeat_inbox = nats.new_inbox();
        let heartbeats = nats
            .subscribe(&heartbeat_inbox)?
            .with_handler(|beat| beat.respond(b""));
        let conn_id = nats.new_inbox().into_bytes();
        let request = proto::ConnectRequest {
            client_id: client_id.to_owned(),
            heartbeat_inbox,
            protocol: 1,
            conn_id: conn_id.clone(),
            ping_interval: 5,
            ping_max_out: 3,
        };
        let answer = nats
            .request_timeout(
                &format!("_STAN.discover.{cluster_id}"),
                encoded(&request),
                REQUEST_TIMEOUT,
            )
            .context("joining the NATS Streaming cluster")?;
        let response = proto::ConnectResponse::decode(answer.data.as_slice())?;
        if !response.error.is_empty() {
            bail!("the broker refused the connection: {}", response.error);
        }

        let ack_inbox = nats.new_inbox();
        let acks = nats.subscribe(&ack_inbox)?;
        let pending = Arc::new(Pending::default());
        let reader = {
            let pending = pending.clone();
            std::thread::spawn(move || read_acks(&acks, &pending))
        };
        Ok(Publisher {
            nats,
            client_id: client_id.to_owned(),
            conn_id,
            pub_prefix: response.pub_prefix,
            close_requests: response.close_requests,
            ack_inbox,
            pending,
            acks: Some(reader),
            _heartbeats: heartbeats,
        })
    }

    /// Sends `data` to `channel` under `guid` (unique within this publisher) without waiting for
    /// its ack; fails if an earlier publish was refused.
    pub fn publish(&self, channel: &str, guid: String, data: Vec<u8>) -> anyhow::Result<()> {
        {
            let state = self.pending.state.lock().expect("no panic holds the lock");
            let mut state = self
                .pending
                .changed
                .wait_while(state, |s| {
                    s.guids.len() >= MAX_IN_FLIGHT && s.error.is_none() && !s.closed
                })
                .expect("no panic holds the lock");
            if let Some(error) = &state.error {
                bail!("the broker refused a publish: {error}");
            }
            state.guids.insert(guid.clone());
        }
        let message = proto::PubMsg {
            client_id: self.client_id.clone(),
            guid,
            subject: channel.to_owned(),
            data,
            conn_id: self.conn_id.clone(),
        };
        self.nats.publish_request(
            &format!("{}.{channel}", self.pub_prefix),
            &self.ack_inbox,
            encoded(&message),
        )?;
        Ok(())
    }

    /// Waits until the broker has acknowledged every publish, then leaves the cluster.
    pub fn finish(mut self) -> anyhow::Result<()> {
        let state = self.pending.state.lock().expect("no panic holds the lock");
        let (state, timeout) = self
            .pending
            .changed
            .wait_timeout_while(state, REQUEST_TIMEOUT, |s| {
                !s.guids.is_empty() && s.error.is_none() && !s.closed
            })
            .expect("no panic holds the lock");
        if let Some(error) = &state.error {
            bail!("the broker refused a publish: {error}");
        }
        if timeout.timed_out() {
            bail!(
                "{} publishes not acknowledged within {REQUEST_TIMEOUT:?}",
                state.guids.len()
            );
        }
        drop(state);
        let close = proto::CloseRequest {
            client_id: self.client_id.clone(),
        };
        self.nats
            .request_timeout(&self.close_requests, encoded(&close), REQUEST_TIMEOUT)
            .context("leaving the NATS Streaming cluster")?;
        self.nats.clone().close();
        if let Some(reader) = self.acks.take() {
            reader.join().expect("the ack reader panicked")?;
        }
        Ok(())
    }
}

/// A message in its wire form.
fn encoded(message: &impl prost::Message) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(message.encoded_len());
    message
        .encode(&mut bytes)
        .expect("a Vec grows to hold any message");
    bytes
}

/// Removes each acknowledged guid from `pending` until the connection closes.
fn read_acks(acks: &nats::Subscription, pending: &Pending) -> anyhow::Result<()> {
    let result = (|| {
        for message in acks.iter() {
            let ack = proto::PubAck::decode(message.data.as_slice())?;
            let mut state = pending.state.lock().expect("no panic holds the lock");
            if !ack.error.is_empty() && state.error.is_none() {
                state.error = Some(ack.error);
            }
            state.guids.remove(&ack.guid);
            pending.changed.notify_all();
        }
        Ok(())
    })();
    let mut state = pending.state.lock().expect("no panic holds the lock");
    state.closed = true;
    pending.changed.notify_all();
    result
}
