//! The table of the targets, each with its measurement and whether it was met.

use std::fmt::Write as _;

use super::inputs::{histogram, Results, WrkTry};
use super::{median, median_u64, thousands};

/// The freshness bound at each rate that has one: p99 of the slowest replica, in ms.
const FRESHNESS_GOALS: [(u64, f64); 2] = [(1000, 50.0), (5000, 100.0)];

// Past 60 lines: one row per target, each a few lines of formatting; split, the table would no
// longer read as one.
pub fn write(w: &mut String, r: &Results) -> anyhow::Result<()> {
    let Results {
        dir,
        run,
        api_wrk,
        ceiling_wrk,
        api_tries,
        api_fixed,
        ceiling_fixed,
        insert,
        drain,
        freshness,
        warmup,
        ..
    } = r;
    writeln!(w, "## Against the targets\n")?;
    writeln!(w, "| What | Target | Measured | |")?;
    writeln!(w, "|---|---|---|---|")?;
    let (api_rate, ceiling_rate) = (median_rate(api_wrk), median_rate(ceiling_wrk));
    let api_ratio = api_rate / ceiling_rate;
    target(
        w,
        &format!(
            "api throughput under wrk, share of the plain-map ceiling (medians of {} tries each)",
            api_wrk.len()
        ),
        "≥ 95 %",
        format!(
            "{api_rate:.0} of {ceiling_rate:.0} requests/s: {:.1} %",
            api_ratio * 100.0
        ),
        api_ratio >= 0.95,
    )?;
    let inside_api = histogram(dir, "fixed-api", "api_http_request_duration_seconds")?;
    let p99_ratio = api_fixed.ms("99th") / ceiling_fixed.ms("99th");
    target(
        w,
        &format!(
            "api p99 at {} requests/s (vegeta, the median of {} tries), to the ceiling's",
            thousands(run.fixed_rate),
            api_tries.len()
        ),
        "≤ 1.10×",
        format!(
            "{:.2} ms against {:.2} ms: {p99_ratio:.2}×, {} errors; inside the api: p99 ≤ {}",
            api_fixed.ms("99th"),
            ceiling_fixed.ms("99th"),
            api_fixed.errors(),
            inside_api.bound(0.99)
        ),
        p99_ratio <= 1.10 && api_fixed.errors() == 0,
    )?;
    target(
        w,
        "ingest, end to end with acks after commit",
        "≥ 15 000 orders/s",
        format!(
            "{} orders/s ({} orders)",
            thousands(drain.orders_per_second as u64),
            thousands(drain.orders)
        ),
        drain.orders_per_second >= 15_000.0,
    )?;
    let ingest_ratio = drain.orders_per_second / insert.orders_per_second;
    target(
        w,
        "ingest, share of the plain batched insert (`UNNEST`)",
        "> 69 % (the report before)",
        format!(
            "{} of {} orders/s: {:.0} %{}",
            thousands(drain.orders_per_second as u64),
            thousands(insert.orders_per_second as u64),
            ingest_ratio * 100.0,
            insert
                .copy_orders_per_second
                .map_or(String::new(), |copy| format!(
                    "; of the `COPY` ceiling ({} orders/s): {:.0} %",
                    thousands(copy as u64),
                    drain.orders_per_second / copy * 100.0
                ))
        ),
        ingest_ratio > 0.69,
    )?;
    for f in freshness {
        let Some((_, goal)) = FRESHNESS_GOALS
            .iter()
            .find(|(rate, _)| *rate == f.target_rate)
        else {
            continue;
        };
        let seen = f.every_replica.count;
        target(
            w,
            &format!(
                "freshness p99, publish to visible in every replica ({}), at {} orders/s",
                f.replicas,
                thousands(f.target_rate)
            ),
            &format!("< {goal:.0} ms"),
            format!(
                "{:.1} ms (p50 {:.1} ms), {} of {} followed orders never seen",
                f.every_replica.p99_ms,
                f.every_replica.p50_ms,
                f.never_seen,
                seen + f.never_seen
            ),
            f.every_replica.p99_ms < *goal && f.never_seen == 0,
        )?;
    }
    let warm = median(&warmup.seconds);
    target(
        w,
        &format!(
            "warm-up, {} orders, start to ready",
            thousands(warmup.orders as u64)
        ),
        "≤ 2.5 s",
        format!("{warm:.2} s (median of {})", warmup.seconds.len()),
        warm <= 2.5,
    )?;
    let rss = median_u64(&warmup.rss_bytes) as f64;
    let rss_ratio = rss / warmup.documents_bytes as f64;
    target(
        w,
        "resident memory once ready, to the orders' JSON",
        "≤ 1.2×",
        format!(
            "{:.0} MiB for {:.0} MiB of JSON: {rss_ratio:.2}× ({:.0} bytes an order)",
            rss / 1048576.0,
            warmup.documents_bytes as f64 / 1048576.0,
            rss / warmup.orders as f64
        ),
        rss_ratio <= 1.2,
    )?;
    Ok(())
}

/// The median throughput of the tries.
pub fn median_rate(tries: &[WrkTry]) -> f64 {
    median(&tries.iter().map(|t| t.wrk.throughput()).collect::<Vec<_>>())
}

fn target(w: &mut String, what: &str, goal: &str, measured: String, met: bool) -> std::fmt::Result {
    let verdict = if met { "met" } else { "**missed**" };
    writeln!(w, "| {what} | {goal} | {measured} | {verdict} |")
}
