//! What the report reads from a results folder: the files `loadtest/run` and the load generators
//! write, and the readers that find them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::drain::DrainResult;
use crate::freshness::FreshnessResult;
use crate::insert::InsertResult;
use crate::warmup::WarmupResult;

/// What `loadtest/run` records about the run itself.
#[derive(Deserialize)]
pub struct Run {
    pub command: String,
    pub date: String,
    pub fixed_rate: u64,
    pub sweep_p99_ms: f64,
}

/// CPU time of the processes during one phase.
#[derive(Deserialize)]
pub struct Cpu {
    pub wall_seconds: f64,
    pub processes: BTreeMap<String, f64>,
}

/// The parts of `vegeta report --type=json` the report uses.
#[derive(Clone, Deserialize)]
pub struct Vegeta {
    latencies: BTreeMap<String, f64>,
    pub requests: u64,
    pub throughput: f64,
    pub status_codes: BTreeMap<String, u64>,
}

impl Vegeta {
    /// Requests answered with something else than 200 or 404 (the targets hold misses on purpose);
    /// vegeta counts transport errors and timeouts under the code 0.
    pub fn errors(&self) -> u64 {
        self.status_codes
            .iter()
            .filter(|(code, _)| !matches!(code.as_str(), "200" | "404"))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn ms(&self, key: &str) -> f64 {
        self.latencies.get(key).copied().unwrap_or(f64::NAN) / 1e6
    }
}

/// What `loadtest/wrk/ids.lua` prints at the end of a wrk run.
#[derive(Clone, Deserialize)]
pub struct Wrk {
    pub requests: u64,
    pub duration_us: u64,
    pub errors: WrkErrors,
    /// Answers other than 2xx and 3xx: the 404s of the misses, which the ids hold on purpose.
    pub non_2xx: u64,
    pub latency_us: WrkLatency,
}

#[derive(Clone, Deserialize)]
pub struct WrkErrors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub timeout: u64,
}

#[derive(Clone, Deserialize)]
pub struct WrkLatency {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

impl Wrk {
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / (self.duration_us as f64 / 1e6)
    }

    /// Transport errors and timeouts (wrk counts a 404 apart, in `non_2xx`).
    pub fn errors(&self) -> u64 {
        let e = &self.errors;
        e.connect + e.read + e.write + e.timeout
    }
}

/// One wrk run of a server with the CPU its process used meanwhile.
pub struct WrkTry {
    pub wrk: Wrk,
    /// CPU seconds of the server during the run.
    pub server_cpu: f64,
    /// CPU seconds of wrk (and whatever else `loadtest/run` waited for) during the run.
    pub tools_cpu: f64,
}

impl WrkTry {
    /// The server's CPU time per request, in µs.
    pub fn server_us_per_request(&self) -> f64 {
        self.server_cpu * 1e6 / self.wrk.requests.max(1) as f64
    }
}

/// Every measurement of a run, read from its results folder.
pub struct Results {
    pub dir: PathBuf,
    pub run: Run,
    pub machine: String,
    pub api_wrk: Vec<WrkTry>,
    pub ceiling_wrk: Vec<WrkTry>,
    pub api_max: Vegeta,
    pub ceiling_max: Vegeta,
    pub api_tries: Vec<Vegeta>,
    pub ceiling_tries: Vec<Vegeta>,
    pub api_fixed: Vegeta,
    pub ceiling_fixed: Vegeta,
    pub insert: InsertResult,
    pub drain: DrainResult,
    /// By rate, lowest first.
    pub freshness: Vec<FreshnessResult>,
    pub warmup: WarmupResult,
}

impl Results {
    pub fn read(dir: &Path) -> anyhow::Result<Results> {
        let run: Run = read(dir, "run.json")?;
        let machine =
            std::fs::read_to_string(dir.join("machine.txt")).context("reading machine.txt")?;
        let api_tries = tries(dir, "api-fixed-")?;
        let ceiling_tries = tries(dir, "ceiling-fixed-")?;
        let api_fixed = median_by_p99(&api_tries)?.clone();
        let ceiling_fixed = median_by_p99(&ceiling_tries)?.clone();
        let mut freshness: Vec<FreshnessResult> = numbered(dir, "freshness-")?
            .into_iter()
            .map(|(_, name)| read(dir, &name))
            .collect::<anyhow::Result<_>>()?;
        freshness.sort_by_key(|f| f.target_rate);
        Ok(Results {
            dir: dir.to_path_buf(),
            api_wrk: wrk_tries(dir, "api", "api-1")?,
            ceiling_wrk: wrk_tries(dir, "ceiling", "ceiling")?,
            api_max: read(dir, "api-max.json")?,
            ceiling_max: read(dir, "ceiling-max.json")?,
            api_tries,
            ceiling_tries,
            api_fixed,
            ceiling_fixed,
            insert: read(dir, "insert.json")?,
            drain: read(dir, "drain.json")?,
            freshness,
            warmup: read(dir, "warmup.json")?,
            run,
            machine,
        })
    }
}

pub fn read<T: DeserializeOwned>(dir: &Path, name: &str) -> anyhow::Result<T> {
    let path = dir.join(name);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The files `PREFIX<number>.json`, by number, and their names; at least one.
fn numbered(dir: &Path, prefix: &str) -> anyhow::Result<Vec<(u64, String)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(n) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(".json"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            found.push((n, name));
        }
    }
    found.sort_unstable();
    anyhow::ensure!(!found.is_empty(), "no {prefix}N.json in {}", dir.display());
    Ok(found)
}

/// The wrk runs of one server (`wrk-SERVER-TRY.json`), with its process's CPU in each
/// (`cpu-wrk-SERVER-TRY.json`, the process named `PROCESS`).
fn wrk_tries(dir: &Path, server: &str, process: &str) -> anyhow::Result<Vec<WrkTry>> {
    numbered(dir, &format!("wrk-{server}-"))?
        .into_iter()
        .map(|(n, name)| {
            let cpu: Cpu = read(dir, &format!("cpu-wrk-{server}-{n}.json"))?;
            Ok(WrkTry {
                wrk: read(dir, &name)?,
                server_cpu: cpu.processes.get(process).copied().unwrap_or(0.0),
                tools_cpu: cpu.processes.get("loadtest-tools").copied().unwrap_or(0.0),
            })
        })
        .collect()
}

/// The sweep's reports of one server (`sweep-SERVER-RATE-TRY.json`), by rate, each rate's tries
/// in order.
pub fn sweep(dir: &Path, server: &str) -> anyhow::Result<Vec<(u64, Vec<Vegeta>)>> {
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
    numbered(dir, prefix)?
        .into_iter()
        .map(|(_, name)| read(dir, &name))
        .collect()
}

/// The try with the median p99.
fn median_by_p99(attempts: &[Vegeta]) -> anyhow::Result<&Vegeta> {
    let mut sorted: Vec<&Vegeta> = attempts.iter().collect();
    sorted.sort_by(|a, b| a.ms("99th").total_cmp(&b.ms("99th")));
    sorted
        .get(sorted.len() / 2)
        .copied()
        .context("no attack to take the median of")
}

/// The observations a Prometheus histogram gained during a phase, from the metrics read before and
/// after it (`metrics-PHASE-before.txt`, `metrics-PHASE-after.txt`).
pub struct HistogramDelta {
    pub total: u64,
    /// Upper bound of each bucket, in seconds, and the observations at or below it.
    cumulative: Vec<(f64, u64)>,
}

impl HistogramDelta {
    /// The upper bound of the bucket holding quantile `q`, e.g. `400 µs`.
    pub fn bound(&self, q: f64) -> String {
        let wanted = (q * self.total as f64).ceil() as u64;
        match self.cumulative.iter().find(|(_, n)| *n >= wanted.max(1)) {
            Some((le, _)) if le.is_finite() && *le < 0.001 => format!("{:.0} µs", le * 1e6),
            Some((le, _)) if le.is_finite() => format!("{:.1} ms", le * 1e3),
            _ => "?".into(),
        }
    }
}

pub fn histogram(dir: &Path, phase: &str, name: &str) -> anyhow::Result<HistogramDelta> {
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
