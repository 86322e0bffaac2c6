//! Publishing to NATS Streaming from several connections at once. Each publish waits for the
//! broker's ack, so the connections are what makes a run fast.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressState, ProgressStyle};

/// Where and how to publish.
#[derive(Debug, Clone)]
pub struct Target {
    pub nats_url: String,
    pub cluster_id: String,
    pub channel: String,
    pub connections: u16,
    /// The server's `max_payload`.
    pub max_payload: usize,
    pub quiet: bool,
    /// Print a line for every message published.
    pub echo: bool,
}

/// One message to publish.
pub struct Message {
    /// What it is, for the summary: `valid`, `file` or a kind of malformed message.
    pub kind: &'static str,
    /// What to call it in a line of output: a file name or an order id.
    pub name: String,
    pub bytes: Vec<u8>,
}

/// What a run published.
#[derive(Debug, Default)]
pub struct Report {
    pub messages: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    pub by_kind: BTreeMap<&'static str, u64>,
}

impl Report {
    fn add(&mut self, other: Report) {
        self.messages += other.messages;
        self.bytes += other.bytes;
        for (kind, n) in other.by_kind {
            *self.by_kind.entry(kind).or_default() += n;
        }
    }

    /// The closing line: how many, how long, how fast.
    pub fn summary(&self, channel: &str) -> String {
        let seconds = self.elapsed.as_secs_f64();
        let rate = if seconds > 0.0 {
            self.messages as f64 / seconds
        } else {
            0.0
        };
        let plural = if self.messages == 1 { "" } else { "s" };
        format!(
            "published {} message{plural} ({} bytes) to channel {channel} in {seconds:.2} s: {rate:.0} messages/s",
            self.messages, self.bytes
        )
    }
}

/// The bytes the streaming envelope (a protobuf `PubMsg`) adds around a message at most: three
/// ids of a UUID's 36 characters or less, the channel, and the fields' tags and lengths.
fn envelope_bytes(client_id: &str, channel: &str) -> usize {
    client_id.len() + channel.len() + 2 * 36 + 24
}

/// The largest message that fits in a NATS payload of `max_payload` bytes once wrapped.
pub fn message_limit(target: &Target, client_id: &str) -> usize {
    target
        .max_payload
        .saturating_sub(envelope_bytes(client_id, &target.channel))
}

/// Refuses a message that the broker would refuse, saying the limit.
pub fn check_size(name: &str, len: usize, target: &Target) -> anyhow::Result<()> {
    let limit = message_limit(target, &client_id(u16::MAX));
    if len > limit {
        bail!(
            "{name} has {len} bytes, more than the {limit} bytes a message may have: the broker \
             accepts NATS payloads of at most {} bytes (max_payload; see --max-payload) and the \
             streaming envelope takes the rest; it was not sent",
            target.max_payload
        );
    }
    Ok(())
}

/// The client id of connection `n`: unique, since the cluster refuses a second client with the
/// same id.
fn client_id(n: u16) -> String {
    format!("publisher-{}-{n}", uuid::Uuid::new_v4().simple())
}

/// Publishes messages `0..count`, made by `make` on the publishing threads.
pub fn publish<F>(target: &Target, count: u64, make: F) -> anyhow::Result<Report>
where
    F: Fn(u64) -> Message + Sync,
{
    if count == 0 {
        return Ok(Report::default());
    }
    let connections = u64::from(target.connections).min(count) as u16;
    let clients = (0..connections)
        .map(|n| connect(target, &client_id(n)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let progress = progress_bar(count, target.quiet);
    let next = AtomicU64::new(0);
    let start = Instant::now();
    let results: Vec<anyhow::Result<Report>> = std::thread::scope(|scope| {
        let workers: Vec<_> = clients
            .iter()
            .map(|client| {
                scope.spawn(|| {
                    let result = publish_from(client, target, count, &make, &next, &progress);
                    if result.is_err() {
                        // The other threads stop before their next message.
                        next.store(count, Ordering::Relaxed);
                    }
                    result
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a publishing thread panicked"))
            .collect()
    });
    progress.finish_and_clear();
    let mut report = Report {
        elapsed: start.elapsed(),
        ..Report::default()
    };
    let mut first_error = None;
    for result in results {
        match result {
            Ok(part) => report.add(part),
            Err(e) if first_error.is_none() => first_error = Some(e),
            Err(_) => {}
        }
    }
    match first_error {
        Some(e) => Err(e.context(format!(
            "stopped after publishing {} of {count} messages",
            progress.position()
        ))),
        None => Ok(report),
    }
}

fn publish_from<F>(
    client: &stan::Client,
    target: &Target,
    count: u64,
    make: &F,
    next: &AtomicU64,
    progress: &ProgressBar,
) -> anyhow::Result<Report>
where
    F: Fn(u64) -> Message + Sync,
{
    let mut report = Report::default();
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        if index >= count {
            return Ok(report);
        }
        let message = make(index);
        check_size(&message.name, message.bytes.len(), target)?;
        client
            .publish(&target.channel, &message.bytes)
            .with_context(|| {
                format!(
                    "cannot publish {} to channel {} (no ack from the broker)",
                    message.name, target.channel
                )
            })?;
        if target.echo {
            progress.suspend(|| {
                println!("published {} ({} bytes)", message.name, message.bytes.len());
            });
        }
        progress.inc(1);
        report.messages += 1;
        report.bytes += message.bytes.len() as u64;
        *report.by_kind.entry(message.kind).or_default() += 1;
    }
}

fn connect(target: &Target, client_id: &str) -> anyhow::Result<stan::Client> {
    let url = redact(&target.nats_url);
    let nats = nats::Options::new()
        .with_name("publisher")
        .connect(&target.nats_url)
        .with_context(|| format!("cannot connect to NATS at {url}"))?;
    stan::connect(nats, &target.cluster_id, client_id).with_context(|| {
        format!(
            "cannot join the NATS Streaming cluster {:?} at {url} (is --cluster-id right?)",
            target.cluster_id
        )
    })
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

/// The URL with any user name and password replaced, for messages.
pub fn redact(url: &str) -> String {
    url.split(',')
        .map(|one| match (one.find("://"), one.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}***{}", &one[..scheme + 3], &one[at..])
            }
            (None, Some(at)) => format!("***{}", &one[at..]),
            _ => one.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(max_payload: usize) -> Target {
        Target {
            nats_url: "nats://127.0.0.1:4222".into(),
            cluster_id: "test-cluster".into(),
            channel: "orders".into(),
            connections: 4,
            max_payload,
            quiet: true,
            echo: false,
        }
    }

    #[test]
    fn credentials_in_a_url_are_not_shown() {
        assert_eq!(
            redact("nats://user:secret@host:4222"),
            "nats://***@host:4222"
        );
        assert_eq!(
            redact("token@host:4222,nats://a:b@other"),
            "***@host:4222,nats://***@other"
        );
        assert_eq!(redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }

    #[test]
    fn a_message_too_large_for_the_broker_is_refused_with_the_limit_in_the_error() {
        let error = check_size("big.json", 1024 * 1024, &target(1024 * 1024)).unwrap_err();

        let text = error.to_string();
        assert!(text.contains("big.json has 1048576 bytes"), "{text}");
        assert!(text.contains("at most 1048576 bytes"), "{text}");
    }

    #[test]
    fn a_message_that_fits_with_its_envelope_is_allowed() {
        let target = target(1024 * 1024);
        let limit = message_limit(&target, &client_id(u16::MAX));

        assert!(limit > 1024 * 1024 - 300);
        check_size("fits", limit, &target).unwrap();
        check_size("one byte more", limit + 1, &target).unwrap_err();
    }
}
