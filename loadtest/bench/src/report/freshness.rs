//! Publish to visible at each rate, and where the time went, stage by stage.

use std::fmt::Write as _;

use super::inputs::{histogram, Results};
use super::{spread_row, thousands};
use crate::freshness::FreshnessResult;

pub fn write(w: &mut String, r: &Results) -> anyhow::Result<()> {
    writeln!(w, "\n## Freshness\n")?;
    let Some(first) = r.freshness.first() else {
        return Ok(());
    };
    writeln!(
        w,
        "Orders are published at a steady rate while the service runs, on one connection that \
         does not wait for each ack before the next publish (every publish is acknowledged by the \
         end), and about fifty a second are followed: from the start of its publish, each of the {} api \
         replicas is asked for a followed order every {} ms, or every {:.0} % of the time since \
         its publish once that is longer, until it answers 200. Each ask is a request of its own, \
         sent on time whatever the earlier ones are doing, over a fixed set of connections opened \
         beforehand (an ask that finds them all busy is skipped, not queued), so a slow answer \
         delays no later ask: the poller cannot fall behind what it measures, and a late order \
         does not multiply its load on the replica that is behind.\n",
        first.replicas,
        first.poll_ms,
        first.poll_resolution * 100.0
    )?;
    writeln!(
        w,
        "The stages come from the clock of this machine: the broker's timestamp and the start of \
         the storing transaction from the row, its commit from Postgres's commit timestamps \
         (`track_commit_timestamp`), and when each replica was notified of that commit and had \
         read it, from the replica's debug log (`api::sync`). Each stage is measured from the end \
         of the one before, for the slowest replica where a stage is per replica.\n"
    )?;
    for f in &r.freshness {
        rate(w, r, f)?;
    }
    Ok(())
}

fn rate(w: &mut String, r: &Results, f: &FreshnessResult) -> anyhow::Result<()> {
    writeln!(
        w,
        "### {} orders/s\n\n{} orders published (achieved {:.0}/s), {} followed; {} asks \
         skipped because all {} connections to the replica were busy.\n",
        thousands(f.target_rate),
        thousands(f.published),
        f.achieved_rate,
        f.every_replica.count + f.never_seen,
        thousands(f.polls_skipped),
        f.poll_connections
    )?;
    writeln!(
        w,
        "| Measured | Count | p50 ms | p90 ms | p99 ms | max ms |"
    )?;
    writeln!(w, "|---|---|---|---|---|---|")?;
    spread_row(
        w,
        "publish to visible in every replica (the slowest)",
        &f.every_replica,
    )?;
    for (i, s) in f.per_replica.iter().enumerate() {
        spread_row(w, &format!("publish to visible in replica {}", i + 1), s)?;
    }
    for stage in &f.stages {
        spread_row(w, &format!("stage: {}", stage.name), &stage.spread)?;
    }
    if let Some(stage) = &f.broker_to_transaction {
        spread_row(
            w,
            "every published order: broker to the start of its transaction",
            stage,
        )?;
    }
    let commits = histogram(
        &r.dir,
        &format!("freshness-{}-ingestor", f.target_rate),
        "ingestor_commit_duration_seconds",
    )?;
    writeln!(
        w,
        "| the ingestor's commits (its histogram: upper bounds) | {} | ≤ {} | ≤ {} | ≤ {} | |",
        commits.total,
        commits.bound(0.5),
        commits.bound(0.9),
        commits.bound(0.99)
    )?;
    if !f.first_ms.is_empty() {
        let first: Vec<String> = f.first_ms.iter().map(|ms| format!("{ms:.1}")).collect();
        writeln!(
            w,
            "\nThe first {} followed orders of the stream, which starts after a quiet spell, \
             publish to visible in every replica: {} ms.",
            first.len(),
            first.join(", ")
        )?;
    }
    slowest(w, f)
}

/// The slowest followed orders, every stage in ms since the publish started.
fn slowest(w: &mut String, f: &FreshnessResult) -> anyhow::Result<()> {
    if f.slowest.is_empty() {
        return Ok(());
    }
    writeln!(
        w,
        "\nThe {} slowest followed orders, each stage in ms since its publish started; per \
         replica: notified / read applied / served.\n",
        f.slowest.len()
    )?;
    write!(w, "| seq | broker | transaction | commit |")?;
    for i in 0..f.replicas {
        write!(w, " replica {} |", i + 1)?;
    }
    writeln!(w, "\n|---|---|---|---|{}", "---|".repeat(f.replicas))?;
    let ms = |v: Option<f64>| v.map_or("?".to_string(), |v| format!("{v:.1}"));
    for t in &f.slowest {
        write!(
            w,
            "| {} | {:.1} | {:.1} | {} |",
            t.seq,
            t.broker_ms,
            t.transaction_ms,
            ms(t.commit_ms)
        )?;
        for r in &t.replicas {
            write!(
                w,
                " {} / {} / {} |",
                ms(r.notified_ms),
                ms(r.applied_ms),
                ms(r.served_ms)
            )?;
        }
        writeln!(w)?;
    }
    writeln!(w)?;
    Ok(())
}
