//! The files of a soak, one line a record, fields separated by tabs, lines starting with `#`
//! ignored, and the hash that stands for a body in them.
//!
//! | file | written by | a line |
//! |---|---|---|
//! | `schedule.tsv` | `bench soak schedule` | a fault action to start: [`Action`] |
//! | `faults.tsv` | the script | a fault action done: the action, when it started, when it was over |
//! | `reads.tsv` | `bench soak read` | an answer: [`Read`] |
//! | `acked-progress.tsv` | `bench soak read` | the acknowledged messages seen so far: [`Progress`] |
//! | `samples.tsv` | `bench soak sample` | one process's memory and open files: [`Sample`] |
//! | `shutdown.tsv` | the script | how long one process took to exit after SIGTERM: [`Shutdown`] |
//!
//! Besides: `acked.txt`, the publisher's acked log; `run.json` and `machine.txt`, the run and the
//! machine, from the script; `verify.json`, the verdict of `bench soak verify`.
//!
//! Times are milliseconds since the Unix epoch, from the machine's clock, which Postgres shares.

use std::path::Path;
use std::str::FromStr;

use anyhow::Context;

/// FNV-1a, 64 bits: the hash a read records of a body, and that the checks compute of the stored
/// documents. Not a defence against anyone; a changed byte changes it.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The records of a file, each line parsed by `parse` from its fields.
pub fn read_lines<T>(path: &Path, parse: impl Fn(&[&str]) -> Option<T>) -> anyhow::Result<Vec<T>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(n, line)| {
            let fields: Vec<&str> = line.split('\t').collect();
            parse(&fields)
                .with_context(|| format!("{}:{}: cannot read {line:?}", path.display(), n + 1))
        })
        .collect()
}

fn field<T: FromStr>(fields: &[&str], i: usize) -> Option<T> {
    fields.get(i)?.parse().ok()
}

/// What a fault action does: `kill-ingestor`, `kill-api`, `freeze`, `restart-postgres`,
/// `restart-broker-node`, `terminate-listener`. Two actions with one index start together.
#[derive(Debug, Clone)]
pub struct Action {
    pub index: u32,
    /// When it is due, from the start of the run.
    pub at_ms: u64,
    pub kind: String,
    /// The process: `ingestor-1`, `api-3`, `stan-b`, `postgres`.
    pub target: String,
    /// The signal sent, or `-`.
    pub signal: String,
    /// How long the fault lasts before the process is started or continued again.
    pub hold_ms: u64,
}

impl Action {
    pub fn line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            self.index, self.at_ms, self.kind, self.target, self.signal, self.hold_ms
        )
    }
}

/// A fault action as the script carried it out: `index kind target signal hold_ms start_ms end_ms`,
/// the end being the moment the process was back (ready, or answering).
#[derive(Debug, Clone)]
pub struct Fault {
    pub index: u32,
    pub kind: String,
    pub target: String,
    pub signal: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Fault {
    pub fn parse(f: &[&str]) -> Option<Fault> {
        Some(Fault {
            index: field(f, 0)?,
            kind: f.get(1)?.to_string(),
            target: f.get(2)?.to_string(),
            signal: f.get(3)?.to_string(),
            start_ms: field(f, 5)?,
            end_ms: field(f, 6)?,
        })
    }
}

/// What [`Read::status`] holds besides HTTP codes.
pub const NO_ANSWER: u16 = 0;
/// The replica had too many requests in flight already: this one was not sent.
pub const NOT_SENT: u16 = 1;

/// One request of the read load: `t_ms replica id status hash latency_us`.
#[derive(Debug, Clone)]
pub struct Read {
    /// When it was sent.
    pub t_ms: i64,
    /// The replica, from 1.
    pub replica: usize,
    pub id: String,
    /// The HTTP status, [`NO_ANSWER`] (refused, reset, timed out) or [`NOT_SENT`].
    pub status: u16,
    /// [`fnv1a`] of the body, when there was one.
    pub hash: Option<u64>,
    pub latency_us: u64,
}

impl Read {
    pub fn line(&self) -> String {
        let hash = self.hash.map_or("-".into(), |h| format!("{h:016x}"));
        format!(
            "{}\t{}\t{}\t{}\t{hash}\t{}",
            self.t_ms, self.replica, self.id, self.status, self.latency_us
        )
    }

    pub fn parse(f: &[&str]) -> Option<Read> {
        let hash = match *f.get(4)? {
            "-" => None,
            hex => Some(u64::from_str_radix(hex, 16).ok()?),
        };
        Some(Read {
            t_ms: field(f, 0)?,
            replica: field(f, 1)?,
            id: f.get(2)?.to_string(),
            status: field(f, 3)?,
            hash,
            latency_us: field(f, 5)?,
        })
    }

    /// An answer that is right whatever was stored: an order, or "no such order".
    pub fn succeeded(&self) -> bool {
        matches!(self.status, 200 | 404)
    }
}

/// How many acknowledged messages the acked log held at a moment: `t_ms valid hostile`.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub t_ms: i64,
    pub valid: u64,
    pub hostile: u64,
}

impl Progress {
    pub fn parse(f: &[&str]) -> Option<Progress> {
        Some(Progress {
            t_ms: field(f, 0)?,
            valid: field(f, 1)?,
            hostile: field(f, 2)?,
        })
    }
}

/// One process at one moment: `t_ms name pid rss_kib fds`; `-` for the last three while it does
/// not run.
#[derive(Debug, Clone)]
pub struct Sample {
    pub t_ms: i64,
    pub name: String,
    pub pid: Option<u32>,
    pub rss_kib: Option<u64>,
    pub fds: Option<u64>,
}

impl Sample {
    pub fn line(&self) -> String {
        let show = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
        format!(
            "{}\t{}\t{}\t{}\t{}",
            self.t_ms,
            self.name,
            show(self.pid.map(u64::from)),
            show(self.rss_kib),
            show(self.fds)
        )
    }

    pub fn parse(f: &[&str]) -> Option<Sample> {
        Some(Sample {
            t_ms: field(f, 0)?,
            name: f.get(1)?.to_string(),
            pid: field(f, 2),
            rss_kib: field(f, 3),
            fds: field(f, 4),
        })
    }
}

/// One process stopped at the end: `name limit_secs seconds result`, the result `exited` or
/// `hung` (still there at the limit, then killed).
#[derive(Debug, Clone)]
pub struct Shutdown {
    pub name: String,
    pub limit_secs: f64,
    pub seconds: f64,
    pub exited: bool,
}

impl Shutdown {
    pub fn parse(f: &[&str]) -> Option<Shutdown> {
        Some(Shutdown {
            name: f.first()?.to_string(),
            limit_secs: field(f, 1)?,
            seconds: field(f, 2)?,
            exited: *f.get(3)? == "exited",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_is_the_published_function() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn a_read_reads_back_as_written() {
        let read = Read {
            t_ms: 1_700_000_000_123,
            replica: 2,
            id: "abc".into(),
            status: 200,
            hash: Some(0xdead_beef),
            latency_us: 812,
        };
        let back = Read::parse(&read.line().split('\t').collect::<Vec<_>>()).unwrap();
        assert_eq!(back.line(), read.line());
    }
}
