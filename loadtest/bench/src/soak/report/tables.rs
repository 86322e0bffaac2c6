//! The sections of the soak's report, one function each.

use std::collections::BTreeMap;
use std::fmt::{Result, Write as _};

use super::analysis::{longest_gap, Course};
use super::{bounded, Args, Inputs, Run};
use crate::soak::files::{Sample, Shutdown, NOT_SENT, NO_ANSWER};
use crate::soak::verify::{Check, Verdict};

/// `1800` as `30 minutes`, `90` as `90 s`.
pub fn duration(secs: u64) -> String {
    match secs {
        s if s % 3600 == 0 => format!("{} hour{}", s / 3600, if s == 3600 { "" } else { "s" }),
        s if s % 60 == 0 => format!("{} minute{}", s / 60, if s == 60 { "" } else { "s" }),
        s => format!("{s} s"),
    }
}

pub fn setup(w: &mut String, run: &Run) -> Result {
    writeln!(w, "| | |\n|---|---|")?;
    writeln!(
        w,
        "| seed | {} (the same seed replays the same faults, orders and reads) |",
        run.seed
    )?;
    writeln!(w, "| duration | {} |", duration(run.duration_secs))?;
    writeln!(
        w,
        "| publisher | {} messages/s, {:.0} % of them hostile, retrying what the broker does not acknowledge |",
        run.publish_rate,
        run.hostile_share * 100.0
    )?;
    writeln!(
        w,
        "| readers | {} requests/s over the replicas |",
        run.read_rate
    )?;
    writeln!(
        w,
        "| system | PostgreSQL, NATS Streaming as three nodes, two ingestors on one durable queue group, three api replicas with `CACHE_MAX_BYTES={}` |",
        run.cache_max_bytes
    )?;
    writeln!(w, "| binaries | {} |\n", run.binaries)
}

pub fn checks(w: &mut String, checks: &[Check]) -> Result {
    writeln!(w, "## Checks\n\n| Check | | What was seen |\n|---|---|---|")?;
    for c in checks {
        let mark = if c.passed { "passed" } else { "**FAILED**" };
        writeln!(w, "| {} | {mark} | {} |", c.name, c.detail)?;
    }
    writeln!(w)
}

pub fn messages(w: &mut String, v: &Verdict) -> Result {
    writeln!(w, "## Orders and dead letters\n\n| | |\n|---|---|")?;
    let s = &v.stored;
    let d = &v.dead;
    writeln!(
        w,
        "| valid orders acknowledged by the broker | {} |",
        s.acked
    )?;
    writeln!(
        w,
        "| stored | {} ({} of the acknowledged missing) |",
        s.stored, s.missing
    )?;
    writeln!(
        w,
        "| duplicated: another version in `order_conflicts` (must be 0) | {} |",
        s.conflicts
    )?;
    writeln!(w, "| hostile messages acknowledged | {} |", d.acked)?;
    writeln!(
        w,
        "| dead letters | {} ({} missing; {} second copies of a message the broker held twice after a lost ack) |",
        d.dead_letters, d.missing, d.copies
    )?;
    writeln!(
        w,
        "| broker messages dead-lettered twice (must be 0) | {} |",
        d.twice
    )?;
    let settled = v
        .settled_secs
        .map_or("never, within the wait".into(), |s| format!("{s:.1} s"));
    writeln!(
        w,
        "| from the end of the load until everything was stored and every replica level | {settled} |\n"
    )?;
    if !s.commit_timestamps {
        writeln!(
            w,
            "PostgreSQL ran without `track_commit_timestamp`: freshness was measured from \
             `stored_at`, the storing transaction's start.\n"
        )?;
    }
    Ok(())
}

pub fn faults(w: &mut String, inputs: &Inputs) -> Result {
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &inputs.faults {
        *by_kind.entry(&f.kind).or_default() += 1;
    }
    let moments: BTreeMap<u32, usize> = inputs.faults.iter().fold(BTreeMap::new(), |mut m, f| {
        *m.entry(f.index).or_default() += 1;
        m
    });
    let doubles = moments.values().filter(|&&n| n > 1).count();
    writeln!(
        w,
        "## Faults\n\n{} faults at random moments, {doubles} of them two at once, drawn from the seed \
         (`bench soak schedule`). A freeze is SIGSTOP, then SIGCONT after longer than the broker's \
         heartbeat limit (2 s × 3).\n",
        moments.len()
    )?;
    writeln!(w, "| Kind | Actions |\n|---|---|")?;
    for (kind, n) in &by_kind {
        writeln!(w, "| {kind} | {n} |")?;
    }
    writeln!(
        w,
        "\n| # | Kind | Target | Signal | From (s) | Until back (s) | Lasted (s) |\n|---|---|---|---|---|---|---|"
    )?;
    let start = inputs.run.start_ms;
    for f in &inputs.faults {
        writeln!(
            w,
            "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} |",
            f.index,
            f.kind,
            f.target,
            f.signal,
            (f.start_ms - start) as f64 / 1000.0,
            (f.end_ms - start) as f64 / 1000.0,
            (f.end_ms - f.start_ms) as f64 / 1000.0
        )?;
    }
    writeln!(w)
}

pub fn reads(w: &mut String, inputs: &Inputs) -> Result {
    let (start, end) = (inputs.run.start_ms, inputs.run.end_ms);
    writeln!(
        w,
        "## Reads\n\nEvery answer the readers got, by replica. Unavailable: the longest stretch \
         with no successful read (200 or 404), from the start of the load to its end.\n"
    )?;
    writeln!(
        w,
        "| Replica | Reads | 200 | 404 | 5xx | No answer | Not sent (too many waiting) | Longest unavailable (s) | From (s) |\n|---|---|---|---|---|---|---|---|---|"
    )?;
    let replicas = inputs.verdict.replicas.len();
    for n in (1..=replicas).map(Some).chain([None]) {
        let reads: Vec<_> = inputs
            .reads
            .iter()
            .filter(|r| n.is_none_or(|n| r.replica == n))
            .collect();
        let count = |f: &dyn Fn(u16) -> bool| reads.iter().filter(|r| f(r.status)).count();
        let gap = longest_gap(reads.iter().copied(), start, end);
        writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.0} |",
            n.map_or("all".into(), |n| format!("api-{n}")),
            reads.len(),
            count(&|s| s == 200),
            count(&|s| s == 404),
            count(&|s| s >= 500),
            count(&|s| s == NO_ANSWER),
            count(&|s| s == NOT_SENT),
            gap.ms as f64 / 1000.0,
            (gap.from_ms - start) as f64 / 1000.0
        )?;
    }
    let r = &inputs.verdict.reads;
    writeln!(
        w,
        "\nA 404 for an order committed more than {} s before the request was sent counts as stale: \
         {} were ({} more from a frozen replica, not held to it).\n",
        r.freshness_secs, r.stale, r.stale_while_frozen
    )
}

pub fn processes(w: &mut String, args: &Args, courses: &[Course], start_ms: i64) -> Result {
    writeln!(
        w,
        "## Processes\n\nSampled every 10 s. Growth: over the last two thirds of the run (for a \
         process restarted since, from a minute into its last start), the median of the last three \
         samples less that of the first three. Bounded (≤ {} % + {} MiB of memory, the MiB for \
         one high-water mark such as the backlog after an outage; ≤ {} open files): the api \
         replicas (a bounded cache), the ingestors and PostgreSQL's postmaster alone. Reported \
         only: the broker nodes, which keep every message of the channel, and \
         `postgres-all`, the postmaster with its backends (their PSS summed: shared buffers \
         counted once), which fill their shared buffers as the tables grow.\n",
        args.memory_growth_pct, args.memory_growth_mib, args.fd_growth
    )?;
    writeln!(
        w,
        "| Process | Starts | Memory at start (MiB) | at end | Growth (MiB) | Open files at start | at end | Growth | Growth from (s) | |\n|---|---|---|---|---|---|---|---|---|---|"
    )?;
    let mib = |s: &Option<Sample>| {
        s.as_ref()
            .and_then(|s| s.rss_kib)
            .map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0))
    };
    let fds = |s: &Option<Sample>| {
        s.as_ref()
            .and_then(|s| s.fds)
            .map_or("-".into(), |f| f.to_string())
    };
    for c in courses {
        let (growth, fd_growth, from) =
            c.growth
                .map_or(("too late to tell".into(), "-".into(), "-".into()), |g| {
                    (
                        format!("{:+.1}", g.rss_kib() as f64 / 1024.0),
                        format!("{:+}", g.fds()),
                        format!("{:.0}", (g.from_ms - start_ms) as f64 / 1000.0),
                    )
                });
        writeln!(
            w,
            "| {} | {} | {} | {} | {growth} | {} | {} | {fd_growth} | {from} | {} |",
            c.name,
            c.incarnations,
            mib(&c.first),
            mib(&c.last),
            fds(&c.first),
            fds(&c.last),
            if bounded(&c.name) {
                "bounded"
            } else {
                "reported"
            }
        )?;
    }
    writeln!(w)
}

pub fn shutdown(w: &mut String, shutdown: &[Shutdown]) -> Result {
    writeln!(
        w,
        "## Shutdown\n\nAt the end each process was sent SIGTERM, in this order, and given its \
         limit to exit.\n\n| Process | Limit (s) | Exited after (s) | |\n|---|---|---|---|"
    )?;
    for s in shutdown {
        writeln!(
            w,
            "| {} | {:.0} | {:.1} | {} |",
            s.name,
            s.limit_secs,
            s.seconds,
            if s.exited { "exited" } else { "**hung**" }
        )?;
    }
    writeln!(w)
}
