//! The drain of a filled channel, next to the plain batched insert.

use std::fmt::Write as _;

use super::inputs::Results;
use super::thousands;

pub fn write(w: &mut String, r: &Results) -> anyhow::Result<()> {
    let Results { insert, drain, .. } = r;
    writeln!(w, "\n## Ingest\n")?;
    writeln!(
        w,
        "The channel is filled with {} generated orders while the ingestor is stopped; then the \
         ingestor starts and drains it (batches of what is waiting, one transaction each, acks \
         after the commit). Timed from its first commit to its last, and to the api serving the \
         last order. The ceiling is `bench insert-ceiling`: the same kind of rows inserted straight \
         into Postgres in batches of {}, one transaction each, with nothing around the statements \
         (time in the database only): once with `INSERT … SELECT FROM UNNEST(…)` and once with \
         `COPY … FROM STDIN (FORMAT binary)`, one per table.\n",
        thousands(drain.orders),
        insert.batch
    )?;
    writeln!(w, "| | Orders | Seconds | Orders/s |")?;
    writeln!(w, "|---|---|---|---|")?;
    writeln!(
        w,
        "| ingestor: first to last commit | {} | {:.2} | {} |",
        thousands(drain.orders),
        drain.seconds_to_last_commit,
        thousands(drain.orders_per_second as u64)
    )?;
    writeln!(
        w,
        "| ingestor: by the rows' `stored_at` | {} | | {} |",
        thousands(drain.orders),
        thousands(drain.orders_per_second_by_stored_at as u64)
    )?;
    if let Some(seconds) = drain.seconds_to_visible {
        writeln!(
            w,
            "| … and served by the api | {} | {seconds:.2} | |",
            thousands(drain.orders),
        )?;
    }
    writeln!(
        w,
        "| plain batched insert, `UNNEST` (ceiling) | {} | {:.2} | {} |",
        thousands(insert.orders),
        insert.seconds,
        thousands(insert.orders_per_second as u64)
    )?;
    if let (Some(seconds), Some(rate)) = (insert.copy_seconds, insert.copy_orders_per_second) {
        writeln!(
            w,
            "| plain batched `COPY … (FORMAT binary)` (ceiling) | {} | {seconds:.2} | {} |",
            thousands(insert.orders),
            thousands(rate as u64)
        )?;
    }
    Ok(())
}
