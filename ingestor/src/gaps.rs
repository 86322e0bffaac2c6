//! The gap sweeper: finds the messages the broker holds but never delivered, and fetches them by
//! their sequence.
//!
//! A broker can lose track of a message it already sent: NATS Streaming, when a member of a durable
//! queue group leaves around a change of its cluster's leader, may drop the messages that member
//! held unacknowledged instead of handing them to another member. They stay in the channel, but
//! the durable counts them as done and never redelivers them. Every write transaction records the
//! sequences of its messages (`orders::db::ledger`); the sweeper periodically moves the channel's
//! mark of "consumed through" up, looks for sequences still missing well after the consumer went
//! past them (see [`plan`]), reads those from the broker (an [`Archive`]), and hands them to the
//! writer like any delivery. A sequence the broker no longer holds is recorded as absent, with a
//! warning, so that the mark can pass it.
//!
//! One sweeper at a time works on a channel (an advisory lock): with several ingestors, the others
//! skip their turn. A message fetched here and delivered by the broker as well is stored once, as
//! any redelivery is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use orders::db::ledger::{self, Progress};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::broker::{Archive, Delivery};
use crate::metrics::Metrics;

pub mod plan;

use plan::{runs, Observation, Plan};

/// The most missing sequences one sweep takes on; the next sweep takes the rest.
const SWEEP_MAX: usize = 1024;

/// The sweeper of one channel.
pub struct Sweeper {
    pub pool: PgPool,
    pub channel: String,
    /// How long a message may stay missing before it is fetched.
    pub after: Duration,
    /// The writer's input, as the broker session's.
    pub deliveries: mpsc::Sender<Delivery>,
    pub metrics: Arc<Metrics>,
}

/// How often the sweeper looks: a few times within `after`, between 250 ms and 10 s.
pub fn period(after: Duration) -> Duration {
    (after / 4).clamp(Duration::from_millis(250), Duration::from_secs(10))
}

impl Sweeper {
    /// Sweeps until `stop`; then drops its sender, so that the writer ends once the broker
    /// session's is gone too.
    pub async fn run(self, mut archive: Box<dyn Archive>, stop: CancellationToken) {
        let mut plan = Plan::new(self.after);
        let mut ticks = tokio::time::interval(period(self.after));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = ticks.tick() => {}
            }
            tokio::select! {
                () = stop.cancelled() => break,
                swept = self.sweep(archive.as_mut(), &mut plan) => {
                    if let Err(e) = swept {
                        tracing::debug!(error = %e, channel = %self.channel, "a sweep for gaps failed; the next one retries");
                    }
                }
            }
        }
    }

    async fn sweep(&self, archive: &mut dyn Archive, plan: &mut Plan) -> anyhow::Result<()> {
        let Some(Progress { through, highest }) =
            ledger::advance(&self.pool, &self.channel).await?
        else {
            return Ok(()); // another ingestor's sweeper has the channel
        };
        self.metrics.consumed_through.set(to_gauge(through));
        let last = archive.last_sequence().await?;
        let now = Instant::now();
        plan.observe(now, Observation { highest, last });
        let Some(bound) = plan.bound(now).filter(|bound| *bound > through) else {
            return Ok(());
        };
        let missing =
            ledger::missing(&self.pool, &self.channel, through + 1, bound, SWEEP_MAX).await?;
        let due = plan.due(&missing, through, now);
        for (first, last) in runs(&due) {
            let read = archive.read(first, last).await?;
            tracing::warn!(
                channel = %self.channel,
                first,
                last,
                fetched = read.deliveries.len(),
                absent = read.absent.len(),
                "messages the broker holds were never delivered; fetched them by sequence"
            );
            if !read.absent.is_empty() {
                tracing::warn!(
                    channel = %self.channel,
                    count = read.absent.len(),
                    first = read.absent.first(),
                    last = read.absent.last(),
                    "the broker no longer holds missing messages; they are passed over"
                );
                ledger::record_absent(&self.pool, &self.channel, &read.absent).await?;
                self.metrics.absent.inc_by(read.absent.len() as u64);
            }
            self.metrics.refetched.inc_by(read.deliveries.len() as u64);
            for delivery in read.deliveries {
                if self.deliveries.send(delivery).await.is_err() {
                    return Ok(()); // the writer is gone: the ingestor is stopping
                }
            }
        }
        Ok(())
    }
}

fn to_gauge(sequence: u64) -> i64 {
    i64::try_from(sequence).unwrap_or(i64::MAX)
}
