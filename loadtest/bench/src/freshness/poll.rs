//! The poller: asks a replica for one order on a fixed schedule until it answers 200.
//!
//! Each poll is a task of its own, started on schedule whatever the earlier polls are doing, so a
//! slow answer delays no later poll and the poller cannot fall behind the replica it times. The
//! schedule is every [`POLL`] at first, then every [`RESOLUTION`] of the time since the publish:
//! an order is timed to within 1 ms or 5 %, whichever is more, and an order that is late does not
//! multiply the poller's load on the very replica that is behind.
//! Polls to one replica share a fixed number of keep-alive connections, opened before the timing
//! starts: a poll that finds them all busy is skipped (and counted), never queued, so a slow
//! replica is not buried under the poller's own connections.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// How often a replica is asked for an order it has not served yet, at first.
pub const POLL: Duration = Duration::from_millis(1);
/// Past `POLL / RESOLUTION` since the publish, the time between asks is this share of the time
/// since the publish.
pub const RESOLUTION: f64 = 0.05;
/// After this long an order a replica has not served counts as never seen.
pub const GIVE_UP: Duration = Duration::from_secs(10);
/// Connections to each replica, and so polls in flight to it at most.
pub const CONNECTIONS: usize = 16;

/// One replica as the poller sees it.
pub struct Replica {
    pub base: String,
    connections: Arc<Semaphore>,
    /// Polls skipped because every connection was busy.
    pub skipped: AtomicU64,
}

impl Replica {
    pub fn new(base: &str) -> Replica {
        Replica {
            base: base.trim_end_matches('/').to_owned(),
            connections: Arc::new(Semaphore::new(CONNECTIONS)),
            skipped: AtomicU64::new(0),
        }
    }

    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }
}

/// When `replica` first answered 200 for the order `uid`, or `None` if it did not within
/// [`GIVE_UP`] of `published`.
pub async fn follow(
    http: reqwest::Client,
    replica: Arc<Replica>,
    uid: String,
    published: Instant,
) -> Option<Instant> {
    let url = format!("{}/api/v1/orders/{uid}", replica.base);
    let mut polls = JoinSet::new();
    let mut next = tokio::time::Instant::now();
    loop {
        tokio::select! {
            biased;
            Some(Ok(Some(served))) = polls.join_next() => return Some(served),
            () = tokio::time::sleep_until(next) => {
                let since = published.elapsed();
                if since > GIVE_UP {
                    return None;
                }
                let step = POLL.max(since.mul_f64(RESOLUTION));
                next += step;
                let now = tokio::time::Instant::now();
                if next < now {
                    // Late ticks are skipped, not caught up.
                    next = now + step;
                }
                let Ok(connection) = replica.connections.clone().try_acquire_owned() else {
                    replica.skipped.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let (http, url) = (http.clone(), url.clone());
                polls.spawn(async move {
                    let answer = http.get(&url).send().await;
                    drop(connection);
                    answer.is_ok_and(|r| r.status() == 200).then(Instant::now)
                });
            }
        }
    }
}

/// Opens the keep-alive connections to each replica before the timing starts, so that no sample
/// pays for a connection's set-up.
pub async fn warm(http: &reqwest::Client, replicas: &[Arc<Replica>]) {
    let mut requests = JoinSet::new();
    for replica in replicas {
        for _ in 0..CONNECTIONS {
            let (http, url) = (http.clone(), format!("{}/healthz", replica.base));
            requests.spawn(async move { http.get(&url).send().await.map(|_| ()) });
        }
    }
    while requests.join_next().await.is_some() {}
}
