//! The read load of a soak: GETs of orders, spread round-robin over the replicas at a steady rate,
//! every answer recorded (`reads.tsv`, see [`super::files::Read`]), until SIGTERM.
//!
//! The ids come from the publisher's acked log, read as it grows (`acked.tsv` records how many it
//! held each second): half of the known ones among the latest thousand acknowledged (fresh orders,
//! in every replica's memory), half among all of them (old ones, which a bounded cache reads from
//! Postgres); and a share of ids that were never published. A replica that already has
//! `--max-in-flight` requests waiting (it is frozen, say) is not sent more: those are recorded as
//! not sent, so that a frozen replica costs neither unbounded connections nor memory.

use std::io::{BufWriter, Read as _, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::{mpsc, Semaphore};

use super::files::{fnv1a, now_ms, Read, NOT_SENT, NO_ANSWER};
use super::prng::SplitMix64;

#[derive(clap::Args)]
pub struct Args {
    /// Base URL of an api replica; repeat for each, in the order of their numbers.
    #[arg(long = "api", required = true)]
    apis: Vec<String>,
    /// The publisher's acked log: one line for each message the broker acknowledged.
    #[arg(long)]
    acked_log: PathBuf,
    /// Requests per second, over all replicas.
    #[arg(long, default_value_t = 300)]
    rate: u32,
    /// The share of requests for ids that were never published.
    #[arg(long, default_value_t = 0.1)]
    unknown_share: f64,
    /// Seed of the choice of ids.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Requests waiting for one replica at most.
    #[arg(long, default_value_t = 32)]
    max_in_flight: usize,
    /// How long a request may take, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
    /// Where to write every answer.
    #[arg(long)]
    out: PathBuf,
    /// Where to write, each second, how many acknowledged messages the acked log held.
    #[arg(long)]
    progress: PathBuf,
}

/// How many of the latest acknowledged ids count as fresh.
const FRESH: usize = 1000;

/// Idle connections kept to each replica.
const IDLE_CONNECTIONS: usize = 4;

/// What the acked log held so far.
#[derive(Default)]
struct Acked {
    valid: Vec<Box<str>>,
    hostile: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let http = client(args.timeout_ms)?;
    let acked = Arc::new(Mutex::new(Acked::default()));
    let tail = tokio::spawn(tail(
        args.acked_log.clone(),
        args.progress.clone(),
        acked.clone(),
    ));
    let (records, written) = mpsc::unbounded_channel();
    let writer = tokio::task::spawn_blocking({
        let out = args.out.clone();
        move || write_records(out, written)
    });
    let stop = service_kit::lifecycle::shutdown_signal();
    tokio::pin!(stop);
    let gates: Vec<_> = args
        .apis
        .iter()
        .map(|_| Arc::new(Semaphore::new(args.max_in_flight)))
        .collect();
    let mut rng = SplitMix64::new(args.seed);
    let mut tick = tokio::time::interval(Duration::from_secs(1) / args.rate.max(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    for n in 0usize.. {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        let replica = n % args.apis.len();
        let id = choose_id(&mut rng, &acked, args.unknown_share);
        let url = format!("{}/api/v1/orders/{id}", args.apis[replica]);
        let read = Read {
            t_ms: now_ms(),
            replica: replica + 1,
            id,
            status: NOT_SENT,
            hash: None,
            latency_us: 0,
        };
        ask(&http, url, read, &gates[replica], &records);
    }
    tail.abort();
    // The writer ends once every request in flight has sent its record.
    drop(records);
    writer.await??;
    Ok(())
}

fn client(timeout_ms: u64) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(timeout_ms))
        .connect_timeout(Duration::from_millis(timeout_ms.min(1000)))
        // Few idle connections kept: those opened while a replica was frozen are closed once
        // answered, so that they do not count as the replica's open files for a minute.
        .pool_max_idle_per_host(IDLE_CONNECTIONS)
        .build()
}

/// Sends the request `read` stands for, unless its replica has too many waiting already (`gate`),
/// and records its answer, or that it was not sent.
fn ask(
    http: &reqwest::Client,
    url: String,
    mut read: Read,
    gate: &Arc<Semaphore>,
    records: &mpsc::UnboundedSender<Read>,
) {
    let Ok(permit) = gate.clone().try_acquire_owned() else {
        let _ = records.send(read);
        return;
    };
    let (http, records) = (http.clone(), records.clone());
    tokio::spawn(async move {
        let started = Instant::now();
        (read.status, read.hash) = get(&http, &url).await;
        read.latency_us = started.elapsed().as_micros() as u64;
        let _ = records.send(read);
        drop(permit);
    });
}

async fn get(http: &reqwest::Client, url: &str) -> (u16, Option<u64>) {
    let Ok(response) = http.get(url).send().await else {
        return (NO_ANSWER, None);
    };
    let status = response.status().as_u16();
    match response.bytes().await {
        Ok(body) => (status, Some(fnv1a(&body))),
        Err(_) => (NO_ANSWER, None),
    }
}

fn choose_id(rng: &mut SplitMix64, acked: &Mutex<Acked>, unknown_share: f64) -> String {
    let acked = acked.lock().unwrap_or_else(PoisonError::into_inner);
    let known = acked.valid.len();
    if known == 0 || rng.unit() < unknown_share {
        return format!("unknown-{:016x}", rng.next_u64());
    }
    let index = if rng.below(2) == 0 {
        known - 1 - rng.below(known.min(FRESH) as u64) as usize
    } else {
        rng.below(known as u64) as usize
    };
    acked.valid[index].to_string()
}

/// Reads the acked log as it grows, taking whole lines only, and records its count each second.
async fn tail(acked_log: PathBuf, progress: PathBuf, acked: Arc<Mutex<Acked>>) {
    let mut offset = 0u64;
    let mut partial = String::new();
    let mut out = match std::fs::File::create(&progress) {
        Ok(file) => BufWriter::new(file),
        Err(e) => return eprintln!("cannot create {}: {e}", progress.display()),
    };
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        every.tick().await;
        let mut bytes = Vec::new();
        if let Ok(mut file) = std::fs::File::open(&acked_log) {
            if file.seek(SeekFrom::Start(offset)).is_ok() && file.read_to_end(&mut bytes).is_ok() {
                offset += bytes.len() as u64;
                partial.push_str(&String::from_utf8_lossy(&bytes));
                take_lines(&mut partial, &acked);
            }
        }
        let acked = acked.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = writeln!(
            out,
            "{}\t{}\t{}",
            now_ms(),
            acked.valid.len(),
            acked.hostile
        );
        let _ = out.flush();
    }
}

/// Moves the whole lines of `partial` into `acked`, leaving the unfinished last one.
fn take_lines(partial: &mut String, acked: &Mutex<Acked>) {
    let Some(end) = partial.rfind('\n') else {
        return;
    };
    let mut acked = acked.lock().unwrap_or_else(PoisonError::into_inner);
    for line in partial[..end].lines() {
        if line.starts_with("malformed message ") {
            acked.hostile += 1;
        } else if !line.is_empty() {
            acked.valid.push(line.into());
        }
    }
    partial.drain(..=end);
}

fn write_records(out: PathBuf, mut records: mpsc::UnboundedReceiver<Read>) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut file = BufWriter::new(file);
    let mut flushed = Instant::now();
    while let Some(read) = records.blocking_recv() {
        writeln!(file, "{}", read.line())?;
        if flushed.elapsed() > Duration::from_secs(1) {
            file.flush()?;
            flushed = Instant::now();
        }
    }
    file.flush()?;
    Ok(())
}
