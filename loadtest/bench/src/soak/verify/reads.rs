//! Every answer the readers got, against what was stored: a 200 must carry the stored document's
//! bytes (by hash) of an order that is stored; a 404 must not come for an order committed more
//! than the freshness bound before the request was sent.
//!
//! Why 10 s by default: a replica hears of a commit by its notification within milliseconds, and
//! re-reads the table every second (`CATCH_UP_INTERVAL_MS`) should one go missing, also after its
//! LISTEN connection was cut. While PostgreSQL is down its retries back off to a pause of 5 s
//! (service-kit's `Backoff`), so once PostgreSQL is back a replica may take up to 5 s to read
//! again while the ingestors already commit; the other 5 s are room for a loaded two-core
//! machine. A replica
//! that is frozen (SIGSTOP) cannot catch up: its answers to requests sent while it was frozen, or
//! within the bound after it was continued, are counted apart and not held to the bound.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::stored::Stored;
use super::Check;
use crate::soak::files::{read_lines, Fault, Read};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ReadFigures {
    pub total: u64,
    /// Answers by status (0: no answer, 1: not sent, the replica had too many waiting).
    pub by_status: BTreeMap<u16, u64>,
    /// 200 with other bytes than stored.
    pub wrong_bytes: u64,
    /// 200 for an id that is not stored.
    pub never_stored: u64,
    /// 404 for an order committed more than the bound before the request.
    pub stale: u64,
    /// Such 404s from a frozen replica, not held to the bound.
    pub stale_while_frozen: u64,
    /// The oldest commit a 404 was answered for, in ms before the request; frozen ones aside.
    pub worst_stale_ms: i64,
    pub freshness_secs: u64,
}

pub fn check(
    dir: &Path,
    stored: &HashMap<String, Stored>,
    freshness_ms: i64,
    checks: &mut Vec<Check>,
) -> anyhow::Result<ReadFigures> {
    let reads = read_lines(&dir.join("reads.tsv"), Read::parse)?;
    let frozen = frozen_windows(dir, freshness_ms)?;
    let f = classify(&reads, stored, &frozen, freshness_ms);
    checks.push(Check::new(
        "no read answered 200 with other bytes than stored",
        f.wrong_bytes == 0 && f.never_stored == 0,
        format!(
            "{} reads, {} answered 200: {} with other bytes, {} for an id never stored",
            f.total,
            f.by_status.get(&200).unwrap_or(&0),
            f.wrong_bytes,
            f.never_stored
        ),
    ));
    let worst = if f.stale > 0 {
        format!(" (the worst {} ms after its commit)", f.worst_stale_ms)
    } else {
        String::new()
    };
    checks.push(Check::new(
        &format!(
            "no 404 for an order committed more than {} s before the read",
            f.freshness_secs
        ),
        f.stale == 0,
        format!(
            "{} reads answered 404: {} stale{worst}; {} more from a frozen replica, not held to it",
            f.by_status.get(&404).unwrap_or(&0),
            f.stale,
            f.stale_while_frozen
        ),
    ));
    Ok(f)
}

fn classify(
    reads: &[Read],
    stored: &HashMap<String, Stored>,
    frozen: &HashMap<usize, Vec<(i64, i64)>>,
    freshness_ms: i64,
) -> ReadFigures {
    let mut f = ReadFigures {
        total: reads.len() as u64,
        freshness_secs: (freshness_ms / 1000) as u64,
        ..ReadFigures::default()
    };
    for read in reads {
        *f.by_status.entry(read.status).or_default() += 1;
        let order = stored.get(&read.id);
        match (read.status, order) {
            (200, None) => f.never_stored += 1,
            (200, Some(order)) if read.hash != Some(order.hash) => f.wrong_bytes += 1,
            (404, Some(order)) if order.commit_ms < read.t_ms - freshness_ms => {
                let windows = frozen.get(&read.replica).map_or(&[][..], Vec::as_slice);
                if windows.iter().any(|&(a, b)| (a..=b).contains(&read.t_ms)) {
                    f.stale_while_frozen += 1;
                } else {
                    f.stale += 1;
                    f.worst_stale_ms = f.worst_stale_ms.max(read.t_ms - order.commit_ms);
                }
            }
            _ => {}
        }
    }
    f
}

/// For each replica number, the times its reads are not held to the bound: from the start of
/// each of its freezes to `grace_ms` after it was continued.
fn frozen_windows(dir: &Path, grace_ms: i64) -> anyhow::Result<HashMap<usize, Vec<(i64, i64)>>> {
    let mut windows: HashMap<usize, Vec<(i64, i64)>> = HashMap::new();
    for fault in read_lines(&dir.join("faults.tsv"), Fault::parse)? {
        let replica = fault
            .target
            .strip_prefix("api-")
            .and_then(|n| n.parse().ok());
        if let (Some(replica), "freeze") = (replica, fault.kind.as_str()) {
            windows
                .entry(replica)
                .or_default()
                .push((fault.start_ms, fault.end_ms + grace_ms));
        }
    }
    Ok(windows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(t_ms: i64, replica: usize, id: &str, status: u16, hash: Option<u64>) -> Read {
        Read {
            t_ms,
            replica,
            id: id.into(),
            status,
            hash,
            latency_us: 0,
        }
    }

    #[test]
    fn a_404_long_after_the_commit_is_stale_unless_its_replica_was_frozen() {
        let stored = HashMap::from([(
            "a".to_string(),
            Stored {
                hash: 7,
                commit_ms: 1_000,
            },
        )]);
        let frozen = HashMap::from([(2, vec![(20_000, 40_000)])]);
        let reads = [
            read(5_000, 1, "a", 404, None),
            read(30_000, 1, "a", 404, None),
            read(30_000, 2, "a", 404, None),
            read(30_000, 3, "a", 200, Some(7)),
            read(30_000, 3, "a", 200, Some(8)),
            read(30_000, 3, "b", 200, Some(7)),
            read(30_000, 3, "b", 404, None),
        ];
        let f = classify(&reads, &stored, &frozen, 10_000);
        assert_eq!(
            (f.stale, f.stale_while_frozen, f.worst_stale_ms),
            (1, 1, 29_000)
        );
        assert_eq!((f.wrong_bytes, f.never_stored), (1, 1));
    }
}
