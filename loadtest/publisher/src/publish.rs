//! Publishing to NATS Streaming or JetStream from several connections at once, at a chosen rate or
//! as fast as they go. Each publish waits for the broker's ack, so the connections are what makes a
//! run fast.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

use crate::acked_log::AckedLog;
use crate::connection::{Connection, Published, Unacked};
use crate::limit::check;
use crate::pace::Pace;
use crate::transport::Broker;

/// Where and how to publish.
#[derive(Debug, Clone)]
pub struct Target {
    pub nats_url: String,
    pub transport: Transport,
    /// The STAN channel, or the JetStream subject.
    pub channel: String,
    pub connections: u16,
    /// The server's `max_payload`.
    pub max_payload: usize,
    pub quiet: bool,
    /// Print a line for every message published.
    pub echo: bool,
    /// How long to keep publishing a message the broker did not acknowledge; zero: not at all.
    pub retry_for: Duration,
    /// Messages per second over all connections; `None`: as fast as they go.
    pub rate: Option<NonZeroU32>,
    /// Where to write the name of each acknowledged message.
    pub acked_log: Option<PathBuf>,
}

impl Target {
    /// Where the messages go, for messages: `channel orders`, `subject orders (stream ORDERS)`.
    pub fn destination(&self) -> String {
        match &self.transport {
            Transport::Stan { .. } => format!("channel {}", self.channel),
            Transport::JetStream { stream, .. } => {
                format!("subject {} (stream {stream})", self.channel)
            }
        }
    }
}

/// The broker, and what only it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Stan {
        cluster_id: String,
    },
    JetStream {
        /// The stream that stores the subject.
        stream: String,
        /// Its replicas, if the publisher creates it.
        replicas: usize,
        /// Whether a missing stream is created, or fails the run.
        create_stream: bool,
    },
}

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Message {
    /// What it is, for the summary: `valid`, `file` or a kind of malformed message.
    pub kind: &'static str,
    /// What to call it in a line of output: a file name, `order <id>`, or which malformed
    /// message it is.
    pub name: String,
    /// What to call it in the acked log, and its `Nats-Msg-Id` with JetStream: a file name, an
    /// order id, or which malformed message. Distinct for distinct messages of a run.
    pub id: String,
    pub bytes: Vec<u8>,
}

/// What a run published: the messages the broker acknowledged.
#[derive(Debug, Default)]
pub struct Report {
    pub messages: u64,
    pub bytes: u64,
    /// The messages acknowledged after more than one try.
    pub retried: u64,
    /// The messages JetStream acknowledged as duplicates: it held one with their id already.
    pub duplicates: u64,
    pub elapsed: Duration,
    pub by_kind: BTreeMap<&'static str, u64>,
}

impl Report {
    fn add(&mut self, other: Report) {
        self.messages += other.messages;
        self.bytes += other.bytes;
        self.retried += other.retried;
        self.duplicates += other.duplicates;
        for (kind, n) in other.by_kind {
            *self.by_kind.entry(kind).or_default() += n;
        }
    }

    fn add_message(&mut self, message: &Message, published: Published) {
        self.messages += 1;
        self.bytes += message.bytes.len() as u64;
        self.retried += u64::from(published.retried);
        self.duplicates += u64::from(published.duplicate);
        *self.by_kind.entry(message.kind).or_default() += 1;
    }

    /// The closing line: how many, where, how long, how fast, how many needed a retry, and with
    /// JetStream how many the stream held already.
    pub fn summary(&self, target: &Target) -> String {
        let seconds = self.elapsed.as_secs_f64();
        let rate = if seconds > 0.0 {
            self.messages as f64 / seconds
        } else {
            0.0
        };
        let plural = if self.messages == 1 { "" } else { "s" };
        let duplicates = match target.transport {
            Transport::Stan { .. } => String::new(),
            Transport::JetStream { .. } => format!(
                ", {} as duplicates (the stream held their ids already)",
                self.duplicates
            ),
        };
        format!(
            "published {} message{plural} ({} bytes) to {} in {seconds:.2} s: {rate:.0} \
             messages/s, each acknowledged by the broker, {} after a retry{duplicates}",
            self.messages,
            self.bytes,
            target.destination(),
            self.retried
        )
    }
}

/// Publishes messages `0..count`, made by `make` on the publishing threads. Each is either
/// acknowledged by the broker, retried until it is, or, once one fails for good, the run stops
/// and the error says how many were not acknowledged.
pub fn publish<F>(target: &Target, count: u64, make: F) -> anyhow::Result<Report>
where
    F: Fn(u64) -> Message + Sync,
{
    let acked_log = target
        .acked_log
        .as_deref()
        .map(AckedLog::create)
        .transpose()?;
    let broker = Broker::start(target)?;
    let connections = u64::from(target.connections).min(count) as u16;
    let opened = (0..connections)
        .map(|n| Connection::open(target, &broker, n))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let run = Run {
        target,
        count,
        make,
        next: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        failure: Mutex::new(None),
        pace: Pace::new(target.rate),
        progress: progress_bar(count, target.quiet),
        acked_log,
    };
    let report = run.publish_on(opened);
    run.progress.finish_and_clear();
    // Written out whatever happened, so that it holds every ack of a failed run too.
    let logged = run.acked_log.map(AckedLog::finish).transpose();
    if let Some(e) = run
        .failure
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
    {
        return Err(e.context(format!(
            "{} of {count} messages were not acknowledged by the broker ({} were, {} of them after \
             a retry)",
            count - report.messages,
            report.messages,
            report.retried
        )));
    }
    logged?;
    Ok(report)
}

/// What the publishing threads of a run share.
struct Run<'a, F> {
    target: &'a Target,
    count: u64,
    make: F,
    /// The index of the next message to publish.
    next: AtomicU64,
    /// Set when a message failed for good: the others stop before their next message.
    stop: AtomicBool,
    /// The first message's failure.
    failure: Mutex<Option<anyhow::Error>>,
    pace: Pace,
    progress: ProgressBar,
    acked_log: Option<AckedLog>,
}

impl<F> Run<'_, F>
where
    F: Fn(u64) -> Message + Sync,
{
    /// Publishes on every connection, a thread each, until no message is left or the run stops.
    fn publish_on(&self, connections: Vec<Connection<'_>>) -> Report {
        let start = Instant::now();
        let parts: Vec<Report> = std::thread::scope(|scope| {
            let workers: Vec<_> = connections
                .into_iter()
                .map(|connection| scope.spawn(move || self.work(connection)))
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("a publishing thread panicked"))
                .collect()
        });
        let mut report = Report {
            elapsed: start.elapsed(),
            ..Report::default()
        };
        for part in parts {
            report.add(part);
        }
        report
    }

    /// Publishes on `connection` until no message is left or the run stops.
    fn work(&self, mut connection: Connection<'_>) -> Report {
        let mut report = Report::default();
        loop {
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            if index >= self.count || !self.pace.wait_for(index, &self.stop) {
                return report;
            }
            let message = (self.make)(index);
            let published = check(&message, self.target)
                .map_err(Unacked::Failed)
                .and_then(|()| connection.publish(&message, &self.stop, &self.progress));
            let published = match published {
                Ok(published) => published,
                Err(Unacked::Stopped) => return report,
                Err(Unacked::Failed(e)) => {
                    self.fail(e);
                    return report;
                }
            };
            report.add_message(&message, published);
            if let Err(e) = self.acknowledged(&message, published) {
                self.fail(e);
                return report;
            }
        }
    }

    /// Records a message the broker acknowledged.
    fn acknowledged(&self, message: &Message, published: Published) -> anyhow::Result<()> {
        if let Some(log) = &self.acked_log {
            log.record(&message.id)?;
        }
        if self.target.echo {
            let duplicate = if published.duplicate {
                ", a duplicate: the stream held a message with its id already"
            } else {
                ""
            };
            self.progress.suspend(|| {
                println!(
                    "published {} ({} bytes){duplicate}",
                    message.name,
                    message.bytes.len()
                );
            });
        }
        self.progress.inc(1);
        Ok(())
    }

    /// Stops the run, keeping the first failure.
    fn fail(&self, error: anyhow::Error) {
        let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        failure.get_or_insert(error);
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn progress_bar(count: u64, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(count);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {rate} (eta {eta})")
            .expect("a valid template")
            .with_key(
                "rate",
                |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0} messages/s", state.per_sec());
                },
            )
            .progress_chars("=> "),
    );
    bar
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn stan() -> Transport {
        Transport::Stan {
            cluster_id: "test-cluster".into(),
        }
    }

    pub(crate) fn jetstream() -> Transport {
        Transport::JetStream {
            stream: "ORDERS".into(),
            replicas: 1,
            create_stream: true,
        }
    }

    pub(crate) fn target(transport: Transport, max_payload: usize) -> Target {
        Target {
            nats_url: "nats://127.0.0.1:4222".into(),
            transport,
            channel: "orders".into(),
            connections: 4,
            max_payload,
            quiet: true,
            echo: false,
            retry_for: Duration::ZERO,
            rate: None,
            acked_log: None,
        }
    }

    fn report() -> Report {
        Report {
            messages: 3000,
            bytes: 3_000_000,
            retried: 4,
            duplicates: 2,
            elapsed: Duration::from_secs(6),
            by_kind: BTreeMap::new(),
        }
    }

    #[test]
    fn the_summary_says_how_many_the_broker_acknowledged_and_how_many_after_a_retry() {
        assert_eq!(
            report().summary(&target(stan(), 1024)),
            "published 3000 messages (3000000 bytes) to channel orders in 6.00 s: 500 messages/s, \
             each acknowledged by the broker, 4 after a retry"
        );
    }

    #[test]
    fn the_summary_of_a_jetstream_run_names_the_stream_and_counts_the_duplicates() {
        assert_eq!(
            report().summary(&target(jetstream(), 1024)),
            "published 3000 messages (3000000 bytes) to subject orders (stream ORDERS) in 6.00 s: \
             500 messages/s, each acknowledged by the broker, 4 after a retry, 2 as duplicates \
             (the stream held their ids already)"
        );
    }
}
