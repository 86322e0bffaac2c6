//! Several ingestors sharing one stream (one durable queue group on NATS Streaming, one durable
//! pull consumer on JetStream), each killed with `kill -9` and restarted at random moments while
//! orders stream in: every order stored exactly once, no spurious dead letter or conflict, and the
//! work shared, every ingestor storing some of it.

use std::net::SocketAddr;
use std::time::Instant;

use testkit::Transport;

use crate::helpers::{distinct_orders, ChildIngestor, TestBed, PATIENCE};
use crate::metrics::sample;
use crate::streams::{audit, orders_to_send, publish_in_parallel, wait_for_orders, Moments};

/// What the members run with besides the bed's settings. A killed member's unacked messages come
/// back when the broker hands them to another member: with NATS Streaming as soon as the restarted
/// client replaces the dead one, with JetStream only after the ack wait. A 5 s ack wait (not the
/// default 30 s) keeps a scenario of several kills within seconds; 1024 messages in flight (with
/// JetStream, for the whole consumer) bound what one kill leaves waiting.
const MEMBER_ENV: &[(&str, &str)] = &[("STAN_ACK_WAIT_SECS", "5"), ("STAN_MAX_IN_FLIGHT", "1024")];

/// How many times each member is killed, at most, while the stream lasts.
const KILLS_PER_MEMBER: usize = 4;

/// What an ingestor's counters say it did with the messages it took.
#[derive(Debug, Default, Clone, Copy)]
struct Counted {
    /// Orders stored for the first time.
    stored: u64,
    /// Orders it found already stored, byte for byte: redeliveries of what another process
    /// committed.
    duplicates: u64,
}

impl std::ops::Add for Counted {
    type Output = Counted;
    fn add(self, other: Counted) -> Counted {
        Counted {
            stored: self.stored + other.stored,
            duplicates: self.duplicates + other.duplicates,
        }
    }
}

/// One member of the group: the process now running under its client id, and what its processes
/// killed before counted.
struct Member {
    client_id: String,
    child: ChildIngestor,
    metrics: SocketAddr,
    counted_by_the_killed: Counted,
}

impl Member {
    async fn start(bed: &TestBed, client_id: String) -> Member {
        let (child, metrics) = bed
            .spawn_ingestor_process_serving_metrics(&client_id, MEMBER_ENV)
            .await;
        Member {
            client_id,
            child,
            metrics,
            counted_by_the_killed: Counted::default(),
        }
    }

    /// Reads its counters, kills it with `kill -9` at once and starts it again, under the same
    /// client id. What it commits between the read and the kill goes uncounted.
    async fn kill_and_restart(&mut self, bed: &TestBed) {
        self.counted_by_the_killed = self.counted_by_the_killed + self.counted_now().await;
        self.child.kill();
        let (child, metrics) = bed
            .spawn_ingestor_process_serving_metrics(&self.client_id, MEMBER_ENV)
            .await;
        self.child = child;
        self.metrics = metrics;
    }

    /// What the running process counted so far.
    async fn counted_now(&self) -> Counted {
        let url = format!("http://{}/metrics", self.metrics);
        let text = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|e| panic!("scrape {} at {url}: {e}", self.client_id))
            .text()
            .await
            .unwrap();
        let counter = |name: &str| {
            sample(&text, name)
                .unwrap_or_else(|| panic!("no {name} in the metrics of {}", self.client_id))
                as u64
        };
        Counted {
            stored: counter("ingestor_messages_stored_total"),
            duplicates: counter("ingestor_messages_duplicate_total"),
        }
    }

    /// What its processes, killed and running, counted.
    async fn counted(&self) -> Counted {
        self.counted_by_the_killed + self.counted_now().await
    }
}

/// `members` ingestors on the bed's durable, killed in turn at random moments while `orders` are
/// published; returns, once every order is stored and audited and the broker has every message
/// acked, how many kills there were and what each member counted.
async fn stream_through_a_group_killed_in_turn(
    bed: &TestBed,
    members: usize,
    orders: Vec<Vec<u8>>,
) -> (usize, Vec<Counted>) {
    let total = orders.len();
    let mut moments = Moments::from_env();
    let mut group = Vec::with_capacity(members);
    for slot in 0..members {
        group.push(Member::start(bed, format!("several-{slot}")).await);
    }
    let publishing = {
        let (transport, url, channel) = (bed.transport, bed.nats_url.clone(), bed.channel.clone());
        tokio::spawn(async move { publish_in_parallel(transport, &url, &channel, orders).await })
    };

    let mut kills = 0;
    while kills < KILLS_PER_MEMBER * members && bed.db.count("orders").await < total as i64 {
        tokio::time::sleep(moments.between(200, 1200)).await;
        group[kills % members].kill_and_restart(bed).await;
        kills += 1;
    }
    publishing.await.unwrap();
    wait_for_orders(&bed.db, total as i64, PATIENCE).await;
    audit(&bed.db, total).await;
    // Once the broker has every message acked, every commit has been counted (the counters move
    // before the acks leave): what the running processes say is complete.
    testkit::wait_until(
        "the broker to have every message acked",
        PATIENCE,
        || async {
            let state = bed.publisher.consumer_state(&bed.durable).await;
            state.pending == 0 && state.last_sent >= total as u64
        },
    )
    .await;

    let mut counted = Vec::with_capacity(members);
    for member in &group {
        counted.push(member.counted().await);
    }
    (kills, counted)
}

async fn several_ingestors_on_one_durable_killed_at_random_share_the_stream(
    transport: Transport,
    members: usize,
) {
    let total = orders_to_send();
    let bed = TestBed::new(transport).await;
    let started = Instant::now();
    let (kills, counted) =
        stream_through_a_group_killed_in_turn(&bed, members, distinct_orders("several", total))
            .await;
    let stored: Vec<u64> = counted.iter().map(|c| c.stored).collect();
    let duplicates: Vec<u64> = counted.iter().map(|c| c.duplicates).collect();
    let stored_in_all: u64 = stored.iter().sum();
    eprintln!(
        "{transport:?}: sent {total} orders to {members} ingestors on one durable, killed {kills} \
         times in turn; stored {total} once each in {:?}; as each ingestor counted them: stored \
         {stored:?} (and {} by processes between their last scrape and their kill), duplicates \
         {duplicates:?}",
        started.elapsed(),
        (total as u64).saturating_sub(stored_in_all),
    );
    assert!(
        kills >= members,
        "the stream ended after {kills} kills, before every one of the {members} ingestors was \
         killed once"
    );
    for (slot, &count) in stored.iter().enumerate() {
        assert!(
            count > 0,
            "ingestor several-{slot} stored no order: the durable did not share the stream \
             (stored by each: {stored:?})"
        );
    }
    // Each message goes to one member; another gets it again only if a kill left it committed
    // and unacked: a few batches at most. Were the stream not shared but copied to every member,
    // they would find most of it stored already.
    let duplicates_in_all: u64 = duplicates.iter().sum();
    assert!(
        duplicates_in_all < total as u64 / 2,
        "the ingestors found {duplicates_in_all} of the {total} orders stored already: the \
         durable gave the same messages to several of them"
    );
    assert!(
        stored_in_all <= total as u64,
        "the ingestors counted {stored_in_all} orders stored for the first time, of {total} sent"
    );
}

async fn two_ingestors_on_one_durable_killed_at_random_store_every_order_once_and_share_the_work(
    transport: Transport,
) {
    several_ingestors_on_one_durable_killed_at_random_share_the_stream(transport, 2).await;
}

async fn three_ingestors_on_one_durable_killed_at_random_store_every_order_once_and_share_the_work(
    transport: Transport,
) {
    several_ingestors_on_one_durable_killed_at_random_share_the_stream(transport, 3).await;
}

testkit::for_each_transport!(
    two_ingestors_on_one_durable_killed_at_random_store_every_order_once_and_share_the_work,
    three_ingestors_on_one_durable_killed_at_random_store_every_order_once_and_share_the_work,
);
