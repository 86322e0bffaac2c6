//! Who holds the writers' lock (`orders::db::WRITE_LOCK`) and who waits for it, sampled from
//! `pg_locks` while the ingestors drain: what serialising the commits costs them.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// What the samples came to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockSamples {
    pub samples: u64,
    pub every_ms: u64,
    /// The share of the samples in which a transaction held the lock.
    pub held: f64,
    /// The share of the samples in which at least one transaction waited for it.
    pub contended: f64,
    /// Transactions waiting for it, on average.
    pub mean_waiting: f64,
    /// The waiting summed over the writers, in seconds: the mean waiting over the sampled span.
    pub waiting_seconds: f64,
}

/// The lock's holder and waiters, as Postgres shows a 64-bit advisory key: its high half in
/// `classid`, its low half in `objid`, and `objsubid` 1.
const SAMPLE: &str = "SELECT count(*) FILTER (WHERE granted), count(*) FILTER (WHERE NOT granted)
     FROM pg_locks
     WHERE locktype = 'advisory' AND objsubid = 1
       AND ((classid::int8 << 32) | objid::int8) = $1";

/// Samples until it is finished.
pub struct Sampler {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<LockSamples>>,
}

impl Sampler {
    /// Starts sampling every `every` on a connection of `pool`.
    pub fn start(pool: PgPool, every: Duration) -> Sampler {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(sample_until(pool, every, stopped));
        Sampler { stop, task }
    }

    /// Stops sampling and returns what the samples came to.
    pub async fn finish(self) -> anyhow::Result<LockSamples> {
        let _ = self.stop.send(());
        self.task.await?
    }
}

async fn sample_until(
    pool: PgPool,
    every: Duration,
    mut stopped: oneshot::Receiver<()>,
) -> anyhow::Result<LockSamples> {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let (mut samples, mut held, mut contended, mut waiting) = (0u64, 0u64, 0u64, 0u64);
    let started = Instant::now();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = tick.tick() => {}
        }
        let (holders, waiters): (i64, i64) = sqlx::query_as(SAMPLE)
            .bind(orders::db::WRITE_LOCK)
            .fetch_one(&pool)
            .await?;
        samples += 1;
        held += u64::from(holders > 0);
        contended += u64::from(waiters > 0);
        waiting += waiters.unsigned_abs();
    }
    let share = |n: u64| n as f64 / samples.max(1) as f64;
    Ok(LockSamples {
        samples,
        every_ms: every.as_millis() as u64,
        held: share(held),
        contended: share(contended),
        mean_waiting: share(waiting),
        waiting_seconds: share(waiting) * started.elapsed().as_secs_f64(),
    })
}
