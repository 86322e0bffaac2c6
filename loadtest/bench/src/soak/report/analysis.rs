//! What the report works out from the raw files: the longest stretches without a successful
//! read, each process's growth over the last two thirds of the run, and the rates over time.

use std::collections::BTreeMap;

use crate::soak::files::{Progress, Read, Sample};

/// The longest stretch without a successful read (200 or 404), from one success to the next, or
/// from the load's start to the first or from the last to the load's end.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gap {
    pub from_ms: i64,
    pub ms: i64,
}

/// The longest gap of reads sorted by time, within `[start_ms, end_ms]`.
pub fn longest_gap<'a>(reads: impl Iterator<Item = &'a Read>, start_ms: i64, end_ms: i64) -> Gap {
    let mut longest = Gap::default();
    let mut last = start_ms;
    for read in reads.filter(|r| r.succeeded()) {
        if read.t_ms - last > longest.ms {
            longest = Gap {
                from_ms: last,
                ms: read.t_ms - last,
            };
        }
        last = last.max(read.t_ms);
    }
    if end_ms - last > longest.ms {
        longest = Gap {
            from_ms: last,
            ms: end_ms - last,
        };
    }
    longest
}

/// One process over the run: its first and last samples, and its growth over the last two
/// thirds.
#[derive(Debug, Clone)]
pub struct Course {
    pub name: String,
    pub first: Option<Sample>,
    pub last: Option<Sample>,
    pub growth: Option<Growth>,
    /// Pids it had: more than one when it was restarted.
    pub incarnations: usize,
}

/// From the start of the last two thirds (or, for a process restarted since, from a minute into
/// its last incarnation) to the end: the medians of the first three and of the last three
/// samples, so that one sample's noise decides nothing. None when fewer than six samples are left
/// (a process restarted too late in the run).
#[derive(Debug, Clone, Copy)]
pub struct Growth {
    pub from_ms: i64,
    pub rss_from_kib: u64,
    pub rss_to_kib: u64,
    pub fds_from: u64,
    pub fds_to: u64,
}

impl Growth {
    pub fn rss_kib(&self) -> i64 {
        self.rss_to_kib as i64 - self.rss_from_kib as i64
    }
    pub fn fds(&self) -> i64 {
        self.fds_to as i64 - self.fds_from as i64
    }
}

/// How long a process is given to warm up after its start before its growth is measured.
const SETTLE_MS: i64 = 60_000;

pub fn courses(samples: &[Sample], start_ms: i64, end_ms: i64) -> Vec<Course> {
    let mut by_name: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        by_name.entry(&s.name).or_default().push(s);
    }
    let window_ms = start_ms + (end_ms - start_ms) / 3;
    by_name
        .into_iter()
        .map(|(name, series)| {
            let running: Vec<&Sample> = series.into_iter().filter(|s| s.pid.is_some()).collect();
            let mut pids: Vec<u32> = running.iter().filter_map(|s| s.pid).collect();
            pids.dedup();
            let last_pid = running.last().and_then(|s| s.pid);
            let latest: Vec<&Sample> = running
                .iter()
                .copied()
                .filter(|s| s.pid == last_pid)
                .collect();
            let born = latest.first().map_or(i64::MAX, |s| s.t_ms);
            let from = window_ms.max(born.saturating_add(SETTLE_MS));
            let window: Vec<&Sample> = latest.into_iter().filter(|s| s.t_ms >= from).collect();
            Course {
                name: name.to_string(),
                first: running.first().map(|s| (*s).clone()),
                last: running.last().map(|s| (*s).clone()),
                growth: growth(&window),
                incarnations: pids.len(),
            }
        })
        .collect()
}

/// The fewest samples a growth is measured on: the first three and the last three, apart.
const FEWEST: usize = 6;

fn growth(window: &[&Sample]) -> Option<Growth> {
    if window.len() < FEWEST {
        return None;
    }
    let ends = 3;
    let median = |part: &[&Sample], value: fn(&Sample) -> Option<u64>| {
        let mut v: Vec<u64> = part.iter().filter_map(|s| value(s)).collect();
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    };
    let (head, tail) = (&window[..ends], &window[window.len() - ends..]);
    Some(Growth {
        from_ms: window[0].t_ms,
        rss_from_kib: median(head, |s| s.rss_kib),
        rss_to_kib: median(tail, |s| s.rss_kib),
        fds_from: median(head, |s| s.fds),
        fds_to: median(tail, |s| s.fds),
    })
}

/// Per 10 s from `start_ms`: successful reads and the others, a second.
pub fn read_rates(reads: &[Read], start_ms: i64) -> (Vec<f64>, Vec<f64>) {
    let (mut ok, mut failed) = (Vec::new(), Vec::new());
    for read in reads {
        let bucket = ((read.t_ms - start_ms).max(0) / 10_000) as usize;
        if ok.len() <= bucket {
            ok.resize(bucket + 1, 0.0);
            failed.resize(bucket + 1, 0.0);
        }
        let rates = if read.succeeded() {
            &mut ok
        } else {
            &mut failed
        };
        rates[bucket] += 0.1;
    }
    (ok, failed)
}

/// Per 10 s from `start_ms`: messages acknowledged to the publisher, a second, from the counts
/// the reader saw in the acked log (which the publisher writes through a buffer of a few
/// seconds' worth).
pub fn acked_rates(progress: &[Progress], start_ms: i64) -> Vec<f64> {
    let mut rates: Vec<f64> = Vec::new();
    let mut before = 0u64;
    for p in progress {
        let total = p.valid + p.hostile;
        let bucket = ((p.t_ms - start_ms).max(0) / 10_000) as usize;
        if rates.len() <= bucket {
            rates.resize(bucket + 1, 0.0);
        }
        rates[bucket] += total.saturating_sub(before) as f64 / 10.0;
        before = before.max(total);
    }
    rates
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(t_ms: i64, status: u16) -> Read {
        Read {
            t_ms,
            replica: 1,
            id: "x".into(),
            status,
            hash: None,
            latency_us: 0,
        }
    }

    #[test]
    fn the_longest_gap_runs_between_successes_and_counts_the_edges() {
        let reads = [
            read(100, 200),
            read(200, 0),
            read(900, 404),
            read(1000, 200),
        ];
        let gap = longest_gap(reads.iter(), 0, 1100);
        assert_eq!((gap.from_ms, gap.ms), (100, 800));
        let gap = longest_gap(reads.iter(), 0, 3000);
        assert_eq!((gap.from_ms, gap.ms), (1000, 2000));
    }

    fn sample(t_ms: i64, pid: u32, rss_kib: u64) -> Sample {
        Sample {
            t_ms,
            name: "api-1".into(),
            pid: Some(pid),
            rss_kib: Some(rss_kib),
            fds: Some(20),
        }
    }

    #[test]
    fn growth_is_measured_over_the_last_two_thirds_of_the_latest_incarnation() {
        let mut samples: Vec<Sample> = (0..30)
            .map(|i| sample(i * 10_000, 7, 1000 + i as u64))
            .collect();
        let course = &courses(&samples, 0, 300_000)[0];
        let growth = course.growth.unwrap();
        assert_eq!(
            (growth.from_ms, growth.rss_from_kib, growth.rss_to_kib),
            (100_000, 1011, 1028)
        );
        // Restarted at 250 s: too late to tell within the run.
        samples.extend((25..30).map(|i| sample(i * 10_000 + 5, 8, 500)));
        samples.retain(|s| s.pid == Some(8) || s.t_ms < 250_000);
        let course = &courses(&samples, 0, 300_000)[0];
        assert!(course.growth.is_none());
        assert_eq!(course.incarnations, 2);
    }
}
