//! `loadtest/RESULTS.md` from the JSON files of one run of `loadtest/run`.
//!
//! Past 400 lines: it is the template of one long document, a function per section, and the
//! readers of the files each section reads; split, a change to a section would span files.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::drain::DrainResult;
use crate::freshness::FreshnessResult;
use crate::insert::InsertResult;
use crate::stats::Spread;
use crate::warmup::WarmupResult;

#[derive(clap::Args)]
pub struct Args {
    /// The folder of the run's results.
    #[arg(long)]
    results: PathBuf,
    /// Where to write the report.
    #[arg(long)]
    out: PathBuf,
}

/// What `loadtest/run` records about the run itself.
#[derive(Deserialize)]
struct Run {
    command: String,
    date: String,
    fixed_rate: u64,
    sweep_p99_ms: f64,
}

/// CPU time of the processes during one phase.
#[derive(Deserialize)]
struct Cpu {
    wall_seconds: f64,
    processes: BTreeMap<String, f64>,
}

/// The parts of `vegeta report --type=json` the report uses.
#[derive(Clone, Deserialize)]
struct Vegeta {
    latencies: BTreeMap<String, f64>,
    requests: u64,
    throughput: f64,
    status_codes: BTreeMap<String, u64>,
}

impl Vegeta {
    /// Requests answered with something else than 200 or 404 (the targets hold misses on purpose);
    /// vegeta counts transport errors and timeouts under the code 0.
    fn errors(&self) -> u64 {
        self.status_codes
            .iter()
            .filter(|(code, _)| !matches!(code.as_str(), "200" | "404"))
            .map(|(_, n)| n)
            .sum()
    }

    fn ms(&self, key: &str) -> f64 {
        self.latencies.get(key).copied().unwrap_or(f64::NAN) / 1e6
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let r = Results::read(&args.results)?;
    let mut md = String::new();
    let w = &mut md;
    writeln!(w, "# Benchmark results\n")?;
    writeln!(
        w,
        "Written by `{}` on {}, from its own measurements; nothing here is edited by hand. \
         The machine runs everything at once (Postgres, NATS Streaming, the service, the load \
         generator), so absolute figures are this machine's; the ratios to the ceilings measured \
         in the same run are the portable part.\n",
        r.run.command, r.run.date
    )?;
    writeln!(w, "```text\n{}\n```\n", r.machine.trim_end())?;
    targets(w, &r)?;
    api(w, &r)?;
    sweeps(w, &r)?;
    ingest(w, &r)?;
    freshness(w, &r)?;
    warm_up(w, &r)?;
    cpu(w, &r)?;

    std::fs::write(&args.out, md).with_context(|| format!("writing {}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// Every measurement of a run, read from its results folder.
struct Results {
    dir: PathBuf,
    run: Run,
    machine: String,
    api_max: Vegeta,
    ceiling_max: Vegeta,
    api_tries: Vec<Vegeta>,
    ceiling_tries: Vec<Vegeta>,
    api_fixed: Vegeta,
    ceiling_fixed: Vegeta,
    insert: InsertResult,
    drain: DrainResult,
    freshness: FreshnessResult,
    warmup: WarmupResult,
}

impl Results {
    fn read(dir: &Path) -> anyhow::Result<Results> {
        let run: Run = read(dir, "run.json")?;
        let machine =
            std::fs::read_to_string(dir.join("machine.txt")).context("reading machine.txt")?;
        let api_max: Vegeta = read(dir, "api-max.json")?;
        let ceiling_max: Vegeta = read(dir, "ceiling-max.json")?;
        let api_tries = tries(dir, "api-fixed-")?;
        let ceiling_tries = tries(dir, "ceiling-fixed-")?;
        let api_fixed = median_try(&api_tries)?.clone();
        let ceiling_fixed = median_try(&ceiling_tries)?.clone();
        let insert: InsertResult = read(dir, "insert.json")?;
        let drain: DrainResult = read(dir, "drain.json")?;
        let freshness: FreshnessResult = read(dir, "freshness.json")?;
        let warmup: WarmupResult = read(dir, "warmup.json")?;
        Ok(Results {
            dir: dir.to_path_buf(),
            run,
            machine,
            api_max,
            ceiling_max,
            api_tries,
            ceiling_tries,
            api_fixed,
            ceiling_fixed,
            insert,
            drain,
            freshness,
            warmup,
        })
    }
}

/// The table of the targets, each with its measurement and whether it was met.
// Past 60 lines: one row per target, each a few lines of formatting; split, the table would no
// longer read as one.
fn targets(w: &mut String, r: &Results) -> anyhow::Result<()> {
    let Results {
        dir,
        run,
        api_max,
        ceiling_max,
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
    let api_ratio = api_max.throughput / ceiling_max.throughput;
    target(
        w,
        "api throughput, share of the plain-map ceiling",
        "≥ 85 %",
        format!(
            "{:.0} of {:.0} requests/s: {:.0} %",
            api_max.throughput,
            ceiling_max.throughput,
            api_ratio * 100.0
        ),
        api_ratio >= 0.85,
    )?;
    let inside_api = histogram(dir, "fixed-api", "api_http_request_duration_seconds")?;
    target(
        w,
        &format!(
            "api p99 at {} requests/s (the median of {} tries)",
            thousands(run.fixed_rate),
            api_tries.len()
        ),
        "< 2 ms",
        format!(
            "{:.2} ms{} (plain-map ceiling {:.2} ms), {} errors; inside the api: p99 ≤ {}",
            api_fixed.ms("99th"),
            by_how_much(api_fixed.ms("99th"), 2.0),
            ceiling_fixed.ms("99th"),
            api_fixed.errors(),
            inside_api.bound(0.99)
        ),
        api_fixed.ms("99th") < 2.0 && api_fixed.errors() == 0,
    )?;
    target(
        w,
        "ingest, end to end with acks after commit",
        "≥ 10 000 orders/s",
        format!(
            "{} orders/s ({} orders)",
            thousands(drain.orders_per_second as u64),
            thousands(drain.orders)
        ),
        drain.orders_per_second >= 10_000.0,
    )?;
    let ingest_ratio = drain.orders_per_second / insert.orders_per_second;
    target(
        w,
        "ingest, share of the plain batched insert",
        "≥ 50 %",
        format!(
            "{} of {} orders/s: {:.0} %",
            thousands(drain.orders_per_second as u64),
            thousands(insert.orders_per_second as u64),
            ingest_ratio * 100.0
        ),
        ingest_ratio >= 0.5,
    )?;
    target(
        w,
        &format!(
            "freshness p99, publish to visible in every replica ({}), at {} orders/s",
            freshness.replicas,
            thousands(freshness.target_rate)
        ),
        "< 50 ms",
        format!(
            "{:.1} ms{} (p50 {:.1} ms), {} of {} followed orders never seen",
            freshness.every_replica.p99_ms,
            by_how_much(freshness.every_replica.p99_ms, 50.0),
            freshness.every_replica.p50_ms,
            freshness.never_seen,
            freshness.every_replica.count + freshness.never_seen
        ),
        freshness.every_replica.p99_ms < 50.0 && freshness.never_seen == 0,
    )?;
    let warm = median(&warmup.seconds);
    target(
        w,
        &format!(
            "warm-up, {} orders, start to ready",
            thousands(warmup.orders as u64)
        ),
        "< 5 s",
        format!("{warm:.2} s (median of {})", warmup.seconds.len()),
        warm < 5.0,
    )?;
    let rss = median_u64(&warmup.rss_bytes) as f64;
    let rss_ratio = rss / warmup.documents_bytes as f64;
    target(
        w,
        "resident memory once ready, to the orders' JSON",
        "< 2×",
        format!(
            "{:.0} MiB for {:.0} MiB of JSON: {rss_ratio:.2}× ({:.0} bytes an order)",
            rss / 1048576.0,
            warmup.documents_bytes as f64 / 1048576.0,
            rss / warmup.orders as f64
        ),
        rss_ratio < 2.0,
    )?;
    Ok(())
}

/// The api's attacks by vegeta, next to the plain-map ceiling's.
fn api(w: &mut String, r: &Results) -> anyhow::Result<()> {
    let Results {
        run,
        api_max,
        ceiling_max,
        api_tries,
        ceiling_tries,
        ..
    } = r;
    writeln!(w, "\n## api: by id, with vegeta\n")?;
    writeln!(
        w,
        "Targets are real order ids from the table with misses mixed in (see `loadtest/vegeta/`). \
         The ceiling is `bench serve-ceiling`: the same documents from a plain `HashMap` behind \
         the smallest poem handler, on the same machine, measured the same way.\n"
    )?;
    writeln!(
        w,
        "| Attack | Server | Requests | Throughput/s | p50 ms | p90 ms | p99 ms | max ms | Codes |"
    )?;
    writeln!(w, "|---|---|---|---|---|---|---|---|---|")?;
    vegeta_row(w, "as fast as it answers", "api", api_max)?;
    vegeta_row(w, "as fast as it answers", "ceiling", ceiling_max)?;
    for (server, attempts) in [("api", &api_tries), ("ceiling", &ceiling_tries)] {
        for (i, v) in attempts.iter().enumerate() {
            let attack = format!("{} requests/s, try {}", thousands(run.fixed_rate), i + 1);
            vegeta_row(w, &attack, server, v)?;
        }
    }
    Ok(())
}

/// The rate sweeps of the api and of the ceiling.
fn sweeps(w: &mut String, r: &Results) -> anyhow::Result<()> {
    let Results { dir, run, .. } = r;
    for server in ["api", "ceiling"] {
        writeln!(
            w,
            "\n### Rate sweep, {server}: the highest rate with p99 under {} ms and no errors\n",
            run.sweep_p99_ms
        )?;
        writeln!(
            w,
            "| Rate/s | Try | Throughput/s | p50 ms | p99 ms | max ms | Errors | Try held | Rate held |"
        )?;
        writeln!(w, "|---|---|---|---|---|---|---|---|---|")?;
        let mut best = None;
        for (rate, attempts) in sweep(dir, server)? {
            let mut held = 0;
            for (i, v) in attempts.iter().enumerate() {
                let this = v.ms("99th") < run.sweep_p99_ms && v.errors() == 0;
                held += usize::from(this);
                let verdict = if i + 1 < attempts.len() {
                    String::new()
                } else if held * 2 > attempts.len() {
                    best = Some(rate);
                    format!("held ({held} of {})", attempts.len())
                } else {
                    format!("**not held** ({held} of {})", attempts.len())
                };
                writeln!(
                    w,
                    "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {verdict} |",
                    thousands(rate),
                    i + 1,
                    v.throughput,
                    v.ms("50th"),
                    v.ms("99th"),
                    v.ms("max"),
                    v.errors(),
                    if this { "yes" } else { "no" }
                )?;
            }
        }
        match best {
            Some(rate) => writeln!(
                w,
                "\nHighest rate held: **{} requests/s**.",
                thousands(rate)
            )?,
            None => writeln!(w, "\nNo rate of the sweep was held.")?,
        }
    }
    Ok(())
}

/// The drain of a filled channel, next to the plain batched insert.
fn ingest(w: &mut String, r: &Results) -> anyhow::Result<()> {
    let Results { insert, drain, .. } = r;
    writeln!(w, "\n## Ingest\n")?;
    writeln!(
        w,
        "The channel is filled with {} generated orders while the ingestor is stopped; then the \
         ingestor starts and drains it (batches of what is waiting, one transaction each, acks \
         after the commit). Timed from its first commit to its last, and to the api serving the \
         last order. The ceiling is `bench insert-ceiling`: the same kind of rows inserted straight \
         into Postgres in batches of {}, one transaction each, with the ingestor's statements and \
         nothing around them (time in the database only).\n",
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
    writeln!(
        w,
        "| … and served by the api | {} | {:.2} | |",
        thousands(drain.orders),
        drain.seconds_to_visible
    )?;
    writeln!(
        w,
        "| plain batched insert (ceiling) | {} | {:.2} | {} |",
        thousands(insert.orders),
        insert.seconds,
        thousands(insert.orders_per_second as u64)
    )?;
    Ok(())
}

/// Publish to visible, and its stages.
fn freshness(w: &mut String, r: &Results) -> anyhow::Result<()> {
    let Results { dir, freshness, .. } = r;
    writeln!(w, "\n## Freshness\n")?;
    writeln!(
        w,
        "{} orders published at {} orders/s (achieved {:.0}/s) from several connections while \
         the service runs; one order in twenty is followed: from the start of its publish, each of \
         the {} api replicas is asked for it every millisecond until it answers 200.\n",
        thousands(freshness.published),
        thousands(freshness.target_rate),
        freshness.achieved_rate,
        freshness.replicas
    )?;
    writeln!(
        w,
        "| Measured | Count | p50 ms | p90 ms | p99 ms | max ms |"
    )?;
    writeln!(w, "|---|---|---|---|---|---|")?;
    spread_row(
        w,
        "publish to visible in every replica (the slowest)",
        &freshness.every_replica,
    )?;
    for (i, s) in freshness.per_replica.iter().enumerate() {
        spread_row(w, &format!("publish to visible in replica {}", i + 1), s)?;
    }
    if let Some(stage) = &freshness.broker_to_transaction {
        spread_row(
            w,
            "stage: broker's receipt to the start of the storing transaction (from the rows)",
            stage,
        )?;
    }
    let commits = histogram(
        dir,
        "freshness-ingestor",
        "ingestor_commit_duration_seconds",
    )?;
    writeln!(
        w,
        "| stage: the ingestor's commits (its histogram: upper bounds) | {} | ≤ {} | ≤ {} | ≤ {} | |",
        commits.total,
        commits.bound(0.5),
        commits.bound(0.9),
        commits.bound(0.99)
    )?;
    Ok(())
}

/// The api's warm-ups and its memory.
fn warm_up(w: &mut String, r: &Results) -> anyhow::Result<()> {
    let Results { warmup, .. } = r;
    writeln!(w, "\n## Warm-up and memory\n")?;
    writeln!(
        w,
        "The api started {} times on the table of {} orders ({:.0} MiB of JSON documents).\n",
        warmup.seconds.len(),
        thousands(warmup.orders as u64),
        warmup.documents_bytes as f64 / 1048576.0
    )?;
    writeln!(
        w,
        "| Run | Start to ready, s | Resident once ready, MiB | Peak resident, MiB |"
    )?;
    writeln!(w, "|---|---|---|---|")?;
    for i in 0..warmup.seconds.len() {
        writeln!(
            w,
            "| {} | {:.2} | {:.0} | {:.0} |",
            i + 1,
            warmup.seconds[i],
            warmup.rss_bytes[i] as f64 / 1048576.0,
            warmup.peak_rss_bytes[i] as f64 / 1048576.0
        )?;
    }
    Ok(())
}

/// The CPU each process used in each phase.
fn cpu(w: &mut String, r: &Results) -> anyhow::Result<()> {
    let Results { dir, machine, .. } = r;
    writeln!(w, "\n## Where the CPU went\n")?;
    writeln!(
        w,
        "CPU seconds of each process during each phase (user + system, from `/proc`), and the \
         cores they kept busy on average. This machine has {} cores. `loadtest-tools` is what \
         `loadtest/run` starts and waits for: vegeta, the publisher, `bench` (and, in the \
         warm-up, the api runs that `bench warmup` starts).\n",
        cores(machine)
    )?;
    writeln!(w, "| Phase | Wall s | Process | CPU s | Cores |")?;
    writeln!(w, "|---|---|---|---|---|")?;
    for phase in ["api-max", "ceiling-max", "drain", "freshness", "warmup"] {
        let Ok(cpu) = read::<Cpu>(dir, &format!("cpu-{phase}.json")) else {
            continue;
        };
        for (process, seconds) in &cpu.processes {
            writeln!(
                w,
                "| {phase} | {:.1} | {process} | {seconds:.1} | {:.2} |",
                cpu.wall_seconds,
                seconds / cpu.wall_seconds
            )?;
        }
    }
    writeln!(
        w,
        "\nvegeta's text reports of this run, and its HTML latency plots of the api, are in \
         `loadtest/results/`."
    )?;
    Ok(())
}

/// The observations a Prometheus histogram gained during a phase, from the metrics read before and
/// after it (`metrics-PHASE-before.txt`, `metrics-PHASE-after.txt`).
struct HistogramDelta {
    total: u64,
    /// Upper bound of each bucket, in seconds, and the observations at or below it.
    cumulative: Vec<(f64, u64)>,
}

impl HistogramDelta {
    /// The upper bound of the bucket holding quantile `q`, e.g. `400 µs`.
    fn bound(&self, q: f64) -> String {
        let wanted = (q * self.total as f64).ceil() as u64;
        match self.cumulative.iter().find(|(_, n)| *n >= wanted.max(1)) {
            Some((le, _)) if le.is_finite() && *le < 0.001 => format!("{:.0} µs", le * 1e6),
            Some((le, _)) if le.is_finite() => format!("{:.1} ms", le * 1e3),
            _ => "?".into(),
        }
    }
}

fn histogram(dir: &Path, phase: &str, name: &str) -> anyhow::Result<HistogramDelta> {
    let buckets = |when: &str| -> anyhow::Result<Vec<(f64, u64)>> {
        let file = format!("metrics-{phase}-{when}.txt");
        let text =
            std::fs::read_to_string(dir.join(&file)).with_context(|| format!("reading {file}"))?;
        let prefix = format!("{name}_bucket{{le=\"");
        Ok(text
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix(&prefix)?;
                let (le, count) = rest.split_once("\"} ")?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((le, count.trim().parse::<f64>().ok()? as u64))
            })
            .collect())
    };
    let before = buckets("before")?;
    let after = buckets("after")?;
    let cumulative: Vec<(f64, u64)> = after
        .iter()
        .map(|(le, n)| {
            let earlier = before.iter().find(|(l, _)| l == le).map_or(0, |(_, m)| *m);
            (*le, n - earlier)
        })
        .collect();
    let total = cumulative.last().map_or(0, |(_, n)| *n);
    Ok(HistogramDelta { total, cumulative })
}

/// `, over by 2.2 ms (109 %)` when `value` is not under `target`, else nothing.
fn by_how_much(value: f64, target: f64) -> String {
    if value < target {
        String::new()
    } else {
        format!(
            ", over by {:.1} ms ({:.0} %)",
            value - target,
            (value - target) / target * 100.0
        )
    }
}

fn read<T: DeserializeOwned>(dir: &Path, name: &str) -> anyhow::Result<T> {
    let path = dir.join(name);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The sweep's reports of one server (`sweep-SERVER-RATE-TRY.json`), by rate, each rate's tries
/// in order.
fn sweep(dir: &Path, server: &str) -> anyhow::Result<Vec<(u64, Vec<Vegeta>)>> {
    let prefix = format!("sweep-{server}-");
    let mut rates: Vec<u64> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(rate) = name
            .strip_prefix(&prefix)
            .and_then(|r| r.split_once('-'))
            .and_then(|(rate, _)| rate.parse::<u64>().ok())
        {
            rates.push(rate);
        }
    }
    rates.sort_unstable();
    rates.dedup();
    rates
        .into_iter()
        .map(|rate| Ok((rate, tries(dir, &format!("{prefix}{rate}-"))?)))
        .collect()
}

/// The reports `PREFIX1.json`, `PREFIX2.json`, … in order.
fn tries(dir: &Path, prefix: &str) -> anyhow::Result<Vec<Vegeta>> {
    let mut found = Vec::new();
    while dir
        .join(format!("{prefix}{}.json", found.len() + 1))
        .exists()
    {
        found.push(read(dir, &format!("{prefix}{}.json", found.len() + 1))?);
    }
    anyhow::ensure!(!found.is_empty(), "no {prefix}1.json in {}", dir.display());
    Ok(found)
}

/// The try with the median p99.
fn median_try(attempts: &[Vegeta]) -> anyhow::Result<&Vegeta> {
    let mut sorted: Vec<&Vegeta> = attempts.iter().collect();
    sorted.sort_by(|a, b| a.ms("99th").total_cmp(&b.ms("99th")));
    sorted
        .get(sorted.len() / 2)
        .copied()
        .context("no attack to take the median of")
}

fn target(w: &mut String, what: &str, goal: &str, measured: String, met: bool) -> std::fmt::Result {
    let verdict = if met { "met" } else { "**missed**" };
    writeln!(w, "| {what} | {goal} | {measured} | {verdict} |")
}

fn vegeta_row(w: &mut String, attack: &str, server: &str, v: &Vegeta) -> std::fmt::Result {
    let codes: Vec<String> = v
        .status_codes
        .iter()
        .map(|(code, n)| format!("{code}: {}", thousands(*n)))
        .collect();
    writeln!(
        w,
        "| {attack} | {server} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
        thousands(v.requests),
        v.throughput,
        v.ms("50th"),
        v.ms("90th"),
        v.ms("99th"),
        v.ms("max"),
        codes.join(", ")
    )?;
    Ok(())
}

fn spread_row(w: &mut String, who: &str, s: &Spread) -> std::fmt::Result {
    writeln!(
        w,
        "| {who} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
        s.count, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
    )
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn median_u64(values: &[u64]) -> u64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// `1234567` as `1 234 567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

/// The `cores:` line of the machine description.
fn cores(machine: &str) -> String {
    machine
        .lines()
        .find_map(|l| l.strip_prefix("cores:"))
        .map(|c| c.trim().to_owned())
        .unwrap_or_else(|| "?".into())
}
