//! Turns deliveries into committed rows, then acks them.
//!
//! The writer takes whatever messages are waiting (up to `batch_max`; the broker thread has
//! validated them) and stores them in one transaction. Only after the commit does it ack them, on
//! a thread of their own while it stores the next batch. A database that is unreachable is
//! retried with backoff, without acking, until it is back; a database that refuses a message's
//! content dead-letters that message, so no content can hold the stream up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use orders::db::{store_batch, BatchReport, Envelope, Verdict};
use orders::{Rejection, Rule};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use service_kit::lifecycle::Backoff;

use crate::broker::{Ack, Delivery};
use crate::metrics::Metrics;

mod acks;

use acks::Acks;

/// How often, at most, the writer logs what it did (at info; each batch is logged at debug).
const SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// What one batch came to.
struct Written {
    messages: usize,
    redelivered: usize,
    report: BatchReport,
}

/// What the writer did since its last summary.
struct Summary {
    since: Instant,
    batches: usize,
    messages: usize,
    redelivered: usize,
    stored: usize,
    duplicates: usize,
    conflicts: usize,
    dead_lettered: usize,
}

impl Default for Summary {
    fn default() -> Self {
        Summary {
            since: Instant::now(),
            batches: 0,
            messages: 0,
            redelivered: 0,
            stored: 0,
            duplicates: 0,
            conflicts: 0,
            dead_lettered: 0,
        }
    }
}

impl Summary {
    fn add(&mut self, written: &Written) {
        self.batches += 1;
        self.messages += written.messages;
        self.redelivered += written.redelivered;
        self.stored += written.report.stored;
        self.duplicates += written.report.duplicates;
        self.conflicts += written.report.conflicts;
        self.dead_lettered += written.report.dead_lettered;
    }

    /// Logs the summary at info if anything happened, and starts the next one.
    fn log(&mut self) {
        if self.batches > 0 {
            tracing::info!(
                batches = self.batches,
                messages = self.messages,
                stored = self.stored,
                duplicates = self.duplicates,
                conflicts = self.conflicts,
                dead_lettered = self.dead_lettered,
                redelivered = self.redelivered,
                seconds = self.since.elapsed().as_secs(),
                "batches committed and acked since the last summary"
            );
        }
        *self = Summary::default();
    }
}

pub struct Writer {
    pub pool: PgPool,
    pub batch_max: usize,
    /// Cancelled when the process should stop: a batch that cannot be committed is then abandoned
    /// unacknowledged (the broker redelivers it) instead of retried.
    pub stop: CancellationToken,
    pub metrics: Arc<Metrics>,
}

impl Writer {
    /// Runs until the bridge closes the channel (it does so when stopping), or until a batch must be
    /// abandoned because the process is stopping while the database is away. A writer still busy
    /// when the shutdown grace ends is dropped wherever it is: nothing is acked before its commit,
    /// so the broker redelivers whatever it held.
    pub async fn run(self, mut deliveries: mpsc::Receiver<Delivery>) {
        let mut batch = Vec::with_capacity(self.batch_max);
        let mut summary = Summary::default();
        let mut acks = Acks::new(self.metrics.clone());
        let mut every =
            tokio::time::interval_at(tokio::time::Instant::now() + SUMMARY_EVERY, SUMMARY_EVERY);
        every.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // Cancel safe: what was received stays in `batch`.
                received = deliveries.recv_many(&mut batch, self.batch_max) => {
                    if received == 0 {
                        break;
                    }
                    match self.write(&mut batch).await {
                        Some((written, committed)) => {
                            summary.add(&written);
                            acks.send(committed).await;
                        }
                        None => break,
                    }
                }
                _ = every.tick() => summary.log(),
            }
        }
        acks.finish().await;
        summary.log();
    }

    /// Stores a batch, which it leaves empty; returns what it came to and the acks of its
    /// messages, to send now that they are committed. `None` if the process is stopping while the
    /// database is unavailable: nothing is acked then, and the broker redelivers the batch.
    async fn write(&self, batch: &mut Vec<Delivery>) -> Option<(Written, Vec<Ack>)> {
        let started = Instant::now();
        let messages = batch.len();
        let redelivered = batch.iter().filter(|d| d.redelivered).count();
        self.metrics.received.inc_by(messages as u64);
        self.metrics.redelivered.inc_by(redelivered as u64);
        self.metrics.batch_size.observe(messages as f64);
        let (items, acks): (Vec<(Envelope, Verdict)>, Vec<Ack>) =
            batch.drain(..).map(Delivery::into_parts).unzip();
        let Some(report) = self.store(&items).await else {
            tracing::warn!(
                messages,
                "stopping while the database is unavailable; the broker will redeliver"
            );
            return None;
        };
        tracing::debug!(
            messages,
            stored = report.stored,
            duplicates = report.duplicates,
            conflicts = report.conflicts,
            dead_lettered = report.dead_lettered,
            redelivered,
            commit_ms = started.elapsed().as_millis() as u64,
            "batch committed"
        );
        let written = Written {
            messages,
            redelivered,
            report,
        };
        Some((written, acks))
    }

    /// Stores the batch, retrying while the database is unavailable. `None` if the process is
    /// stopping and the batch could not be committed.
    async fn store(&self, items: &[(Envelope, Verdict)]) -> Option<BatchReport> {
        let mut backoff = Backoff::new("writing to the database");
        loop {
            let started = Instant::now();
            match store_batch(&self.pool, items).await {
                Ok(report) => {
                    backoff.succeeded();
                    self.metrics.committed(items, &report, started.elapsed());
                    return Some(report);
                }
                Err(e) if is_content_error(&e) => return self.store_one_by_one(items, &e).await,
                Err(e) => {
                    if self.stop.is_cancelled() {
                        return None;
                    }
                    self.metrics.database_retries.inc();
                    backoff.failed(&e);
                    tokio::select! {
                        () = backoff.pause() => {}
                        () = self.stop.cancelled() => {}
                    }
                }
            }
        }
    }

    /// The database refused something in the batch: store each message on its own, so that only the
    /// one at fault is dead-lettered, with the database's words as its reason.
    async fn store_one_by_one(
        &self,
        items: &[(Envelope, Verdict)],
        error: &sqlx::Error,
    ) -> Option<BatchReport> {
        if let [(envelope, verdict)] = items {
            if matches!(verdict, Verdict::Rejected(r) if r.rule == Rule::DatabaseRefused) {
                // Not reachable with the schema we have: the reason is the database's own words.
                tracing::error!(sequence = envelope.sequence, error = %error, "the database refused even the dead letter; skipping the message");
                return Some(BatchReport::default());
            }
            tracing::warn!(sequence = envelope.sequence, error = %error, "the database refused a message; dead-lettering it");
            let refused = Rejection::new(
                Rule::DatabaseRefused,
                format!(
                    "the database refused the message: {}",
                    database_words(error)
                ),
            );
            let rejected = [(envelope.clone(), Verdict::Rejected(refused))];
            return Box::pin(self.store(&rejected)).await;
        }
        let mut total = BatchReport::default();
        for item in items {
            let report = Box::pin(self.store(std::slice::from_ref(item))).await?;
            total.stored += report.stored;
            total.duplicates += report.duplicates;
            total.conflicts += report.conflicts;
            total.dead_lettered += report.dead_lettered;
            total.last_seq = total.last_seq.max(report.last_seq);
        }
        Some(total)
    }
}

/// Whether Postgres refused what we sent (the message's fault) rather than failed to take it (the
/// database's fault). SQLSTATE classes 22 (data exception), 23 (integrity constraint) and 54
/// (program limit, such as an index row too large) are about the data.
pub fn is_content_error(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            ["22", "23", "54"]
                .iter()
                .any(|class| code.starts_with(class))
        }),
        sqlx::Error::Encode(_) => true,
        _ => false,
    }
}

fn database_words(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!("{} (SQLSTATE {code})", db.message()),
            None => db.message().to_string(),
        },
        other => other.to_string(),
    }
}
