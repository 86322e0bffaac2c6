//! The api under a connection attack, as its own process: more than 30 000 connections from
//! several client processes, half of them sending a request that never ends, half of them asking
//! once and then saying nothing, while a well-behaved client keeps asking for orders.
//!
//! The api must answer that client throughout, close every attack connection within its timeouts
//! (or at once, over its cap), log nothing per connection, and give back its open files and memory.
//! Loopback only: each attacker process connects from its own 127.0.0.x address, so that the
//! attack is not bounded by one address's ephemeral ports, and every number is bounded.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use testkit::TestDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::sync::Semaphore;

use crate::helpers::{order_with_uid, store, TestApp, PATIENCE};

/// The attacker processes, and the connections each opens.
const ATTACKERS: u8 = 4;
const CONNECTIONS_EACH: usize = 7_700;
/// The api's timeouts in this test (whole seconds, as the settings take them): long enough for
/// the attack to hold as many connections as the api takes before the first are closed.
const HEADER_TIMEOUT: Duration = Duration::from_secs(8);
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How late past the idle timeout an answered connection may be closed, counted from its answer:
/// 10 000 deadlines fall due together. A connection's life from its handshake says little: Linux
/// completes the handshake on the client's side while the api's accept queue is full, so a
/// connection can wait seconds before the api sees it; the api's own counts (below) show that
/// each was closed by its timeout.
const CLOSING_SLACK: Duration = Duration::from_secs(3);
/// An attacker leaves a connection still open this long after its handshake, and counts it.
const GIVE_UP: Duration = Duration::from_secs(60);
/// Orders stored, and asked for by the well-behaved client.
const ORDERS: usize = 20_000;
/// The environment variable that makes [`attacker`] attack, with its [`Plan`] as JSON.
const PLAN: &str = "CONNECTION_ATTACK_PLAN";
/// How an attacker's report starts on its standard output.
const TALLY_MARK: &str = "connection-attack-tally ";

/// What one attacker process does.
#[derive(Debug, Serialize, Deserialize)]
struct Plan {
    target: SocketAddr,
    source: IpAddr,
    connections: usize,
    /// Connections still open this long after they were opened are left and counted.
    give_up_after: Duration,
}

/// What one attacker process saw.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Tally {
    opened: usize,
    connect_failures: usize,
    half_open: Lives,
    idle: Lives,
}

/// How the connections of one kind ended.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Lives {
    /// Closed by the api.
    closed: usize,
    /// The longest time from the connect to the api's close, in seconds.
    longest: f64,
    /// Of the idle kind: the longest time from the answer to the api's close, in seconds.
    longest_after_answer: f64,
    /// Still open when the attacker gave up.
    still_open: usize,
    /// Of the idle kind: answered before it was closed.
    answered: usize,
}

impl Lives {
    fn merge(&mut self, other: Lives) {
        self.closed += other.closed;
        self.longest = self.longest.max(other.longest);
        self.longest_after_answer = self.longest_after_answer.max(other.longest_after_answer);
        self.still_open += other.still_open;
        self.answered += other.answered;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_thousand_half_open_and_idle_connections_are_closed_in_time_while_a_client_is_answered(
) {
    let db = TestDb::new().await;
    let uids: Vec<String> = (0..ORDERS).map(|i| format!("attack_{i:05}")).collect();
    for chunk in uids.chunks(2_000) {
        let messages: Vec<Vec<u8>> = chunk.iter().map(|uid| order_with_uid(uid)).collect();
        store(&db.pool, &messages).await;
    }
    let mut api = ApiProcess::start(&db.url);
    api.wait_until_ready().await;
    let uids = Arc::new(uids);
    let client = WellBehaved::start(api.address, uids.clone()).await;
    // The level before the attack, with the cache warm and the client's connection open.
    client.wait_for_answers(200).await;
    let files_before = api.open_files();
    let resident_before = api.resident_bytes();
    let lines_before = api.log_lines();

    let started = Instant::now();
    let attackers: Vec<Child> = (0..ATTACKERS)
        .map(|i| {
            spawn_attacker(&Plan {
                target: api.address,
                source: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 21 + i)),
                connections: CONNECTIONS_EACH,
                give_up_after: GIVE_UP,
            })
        })
        .collect();
    let tallies: Vec<_> = attackers
        .into_iter()
        .map(|attacker| tokio::task::spawn_blocking(move || tally_of(attacker)))
        .collect();
    let peak_files = api
        .watch_peak_open_files_until(|| started.elapsed() > HEADER_TIMEOUT / 2)
        .await;
    let mut tally = Tally::default();
    for one in tallies {
        let one = one.await.expect("an attacker's tally");
        tally.opened += one.opened;
        tally.connect_failures += one.connect_failures;
        tally.half_open.merge(one.half_open);
        tally.idle.merge(one.idle);
    }
    let attack_lasted = started.elapsed();
    let answers = client.stop().await;

    eprintln!(
        "attack: {} connections opened ({} connects failed) from {ATTACKERS} processes in {:.1} s; \
         api open files {files_before} before, {peak_files} at the peak; \
         half-open: {} closed, longest {:.2} s, {} left open; \
         idle: {} closed ({} answered first), longest {:.2} s, {:.2} s after the answer, \
         {} left open; \
         well-behaved client: {} answers, {} failures, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, \
         longest gap {:.1} ms",
        tally.opened,
        tally.connect_failures,
        attack_lasted.as_secs_f64(),
        tally.half_open.closed,
        tally.half_open.longest,
        tally.half_open.still_open,
        tally.idle.closed,
        tally.idle.answered,
        tally.idle.longest,
        tally.idle.longest_after_answer,
        tally.idle.still_open,
        answers.latencies.len(),
        answers.failures.len(),
        answers.percentile(0.50) * 1e3,
        answers.percentile(0.99) * 1e3,
        answers.percentile(1.0) * 1e3,
        answers.longest_gap.as_secs_f64() * 1e3,
    );
    assert!(
        tally.opened >= 30_000,
        "connections opened: {}",
        tally.opened
    );
    assert!(
        answers.failures.is_empty(),
        "the well-behaved client failed {} times during the attack, first: {:?}",
        answers.failures.len(),
        answers.failures.first()
    );
    assert!(
        answers.longest_gap < HEADER_TIMEOUT,
        "the well-behaved client waited {:?} for an answer",
        answers.longest_gap
    );
    assert_eq!(
        tally.half_open.still_open, 0,
        "half-open connections left open"
    );
    assert_eq!(tally.idle.still_open, 0, "idle connections left open");
    let idle_bound = (IDLE_TIMEOUT + CLOSING_SLACK).as_secs_f64();
    assert!(
        tally.idle.longest_after_answer <= idle_bound,
        "an idle connection was closed {:.2} s after its answer, past the idle timeout",
        tally.idle.longest_after_answer
    );
    assert!(
        peak_files > files_before + 10_000,
        "the attack never held the api's connections: {peak_files} open files at the peak"
    );
    // Each attack connection was refused over the cap or closed by the timeout of its kind.
    let metrics = api.metrics().await;
    let refused = metric(&metrics, "api_http_connections_refused_total");
    let header = metric(
        &metrics,
        "api_http_connections_timed_out_total{timeout=\"header\"}",
    );
    let idle = metric(
        &metrics,
        "api_http_connections_timed_out_total{timeout=\"idle\"}",
    );
    eprintln!(
        "the api's counts: {refused} refused, {header} header timeouts, {idle} idle timeouts"
    );
    // A few more are the well-behaved client's and the readiness probe's own.
    let closed = refused + header + idle;
    assert!(
        (tally.opened as u64..tally.opened as u64 + 32).contains(&closed),
        "{} attack connections, {closed} refused or timed out",
        tally.opened
    );
    assert_eq!(
        idle, tally.idle.answered as u64,
        "answered idle connections"
    );
    assert!(refused > 0, "the cap was never reached");

    // Everything the attack took is given back.
    let limit = Duration::from_secs(20);
    let deadline = Instant::now() + limit;
    let resident_bound = resident_before + resident_before / 2 + (16 << 20);
    let (mut files, mut resident);
    loop {
        files = api.open_files();
        resident = api.resident_bytes();
        if (files <= files_before + 16 && resident <= resident_bound) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "after the attack: open files {files} (before {files_before}), resident {} MiB \
         (before {} MiB)",
        resident >> 20,
        resident_before >> 20,
    );
    assert!(
        files <= files_before + 16,
        "open files: {files_before} before the attack, {files} {limit:?} after it"
    );
    assert!(
        resident <= resident_bound,
        "resident memory: {} MiB before the attack, {} MiB {limit:?} after it",
        resident_before >> 20,
        resident >> 20
    );
    let logged = api.log_lines() - lines_before;
    assert!(
        logged < 10,
        "the api logged {logged} lines during the attack: {:?}",
        api.log_tail(logged.min(5))
    );
    api.stop();
}

/// Below the api's needs at rest plus its smallest connection cap (16): accepts run out of
/// descriptors before the cap is reached.
const SCARCE_FILES: u64 = 20;

#[tokio::test]
async fn out_of_file_descriptors_the_api_pauses_its_accepts_without_spinning_and_serves_when_they_free(
) {
    let db = TestDb::new().await;
    store(&db.pool, &[order_with_uid("scarce")]).await;
    let mut api = ApiProcess::start_with_file_limit(&db.url, SCARCE_FILES);
    api.wait_until_ready().await;
    let files_at_rest = api.open_files();
    assert!(
        files_at_rest < SCARCE_FILES as usize,
        "{files_at_rest} files open at rest"
    );

    // More connections than the api has descriptors left: the rest wait in its accept queue.
    let mut held = Vec::new();
    for _ in 0..2 * SCARCE_FILES {
        held.push(tokio::net::TcpStream::connect(api.address).await.unwrap());
    }
    testkit::wait_until(
        "the api to use every descriptor it may open",
        PATIENCE,
        || async { api.open_files() >= SCARCE_FILES as usize - 1 },
    )
    .await;
    // Out of descriptors, it waits between tries instead of retrying at once.
    let before = api.cpu_ticks();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let spent = api.cpu_ticks() - before;
    eprintln!(
        "out of descriptors for 2 s, the api used {spent} ticks of CPU (spinning: about 200)"
    );
    assert!(
        spent < 60,
        "the api used {spent}/200 ticks of CPU while out of descriptors"
    );

    drop(held);
    let url = format!("http://{}/api/v1/orders/scarce", api.address);
    testkit::wait_until("the api to serve again", PATIENCE, || async {
        reqwest::get(&url).await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    let exhausted = metric(&api.metrics().await, "api_http_accepts_exhausted_total");
    assert!(exhausted > 0, "no accept failed for want of descriptors");
    api.stop();
}

#[tokio::test]
async fn a_url_of_200_000_bytes_is_refused_with_414() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db.url).await;
    let request = format!(
        "GET /api/v1/orders/{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(200_000)
    );
    assert_answer_and_close(&app, request.as_bytes(), "HTTP/1.1 414 ").await;
}

#[tokio::test]
async fn a_request_with_2_000_headers_is_refused_with_431() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db.url).await;
    let mut request = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..2_000 {
        request.push_str(&format!("X-Header-{i}: {i}\r\n"));
    }
    request.push_str("\r\n");
    assert_answer_and_close(&app, request.as_bytes(), "HTTP/1.1 431 ").await;
}

#[tokio::test]
async fn binary_garbage_is_refused_with_400() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db.url).await;
    let garbage: Vec<u8> = (0..4_096u32).map(|i| (i * 131 + 7) as u8).collect();
    assert_answer_and_close(&app, &garbage, "HTTP/1.1 400 ").await;
}

/// Sends `request` as it is on a new connection: the api answers with `status` (the start of its
/// status line) and closes the connection.
async fn assert_answer_and_close(app: &TestApp, request: &[u8], status: &str) {
    let address = app.address.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    // The api may answer and close before it has read everything: a failed write is no failure.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        // Until the api closes (a reset, if it closed with bytes of ours unread).
        while let Ok(n @ 1..) = stream.read(&mut buf).await {
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "the api kept the connection open");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with(status),
        "expected {status:?}, the api answered {:?}",
        &answer[..answer.len().min(200)]
    );
}

/// One attacker process: opens its connections from its own address, half of them half-open
/// (a request line and one header, never the end), half idle (one whole request, then nothing),
/// and waits for the api to close each. Started by the test above in several processes; by
/// itself (`--ignored`) it fails, having nothing to attack.
#[tokio::test]
#[ignore = "a client process of the connection attack, started by it"]
async fn attacker() {
    let plan: Plan = serde_json::from_str(
        &std::env::var(PLAN).expect("a plan: this runs as a process of the attack test"),
    )
    .expect("a plan as JSON");
    let connecting = Arc::new(Semaphore::new(1024));
    let tasks: Vec<_> = (0..plan.connections)
        .map(|i| {
            let connecting = connecting.clone();
            let half_open = i % 2 == 0;
            tokio::spawn(async move {
                let permit = connecting.acquire_owned().await.unwrap();
                let connection = connect(plan.source, plan.target).await;
                drop(permit);
                let (mut stream, opened) = connection?;
                let request: &[u8] = if half_open {
                    b"GET /api/v1/orders/attack_00001 HTTP/1.1\r\nHost: attack\r\n"
                } else {
                    b"GET /healthz HTTP/1.1\r\nHost: attack\r\n\r\n"
                };
                let _ = stream.write_all(request).await;
                let mut answered = None;
                let mut buf = [0u8; 1024];
                let closed = tokio::time::timeout(plan.give_up_after, async {
                    while let Ok(n @ 1..) = stream.read(&mut buf).await {
                        if buf[..n].starts_with(b"HTTP/1.1 200") {
                            answered.get_or_insert_with(Instant::now);
                        }
                    }
                })
                .await
                .is_ok();
                let after_answer = answered.map(|at| at.elapsed());
                Some((half_open, closed.then(|| opened.elapsed()), after_answer))
            })
        })
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        let Some((half_open, closed_after, after_answer)) = task.await.unwrap() else {
            tally.connect_failures += 1;
            continue;
        };
        tally.opened += 1;
        let lives = if half_open {
            &mut tally.half_open
        } else {
            &mut tally.idle
        };
        match closed_after {
            Some(after) => {
                lives.closed += 1;
                lives.longest = lives.longest.max(after.as_secs_f64());
            }
            None => lives.still_open += 1,
        }
        if let Some(after_answer) = after_answer {
            lives.answered += 1;
            if closed_after.is_some() {
                lives.longest_after_answer =
                    lives.longest_after_answer.max(after_answer.as_secs_f64());
            }
        }
    }
    println!("{TALLY_MARK}{}", serde_json::to_string(&tally).unwrap());
}

async fn connect(source: IpAddr, target: SocketAddr) -> Option<(tokio::net::TcpStream, Instant)> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::new(source, 0)).ok()?;
    let stream = tokio::time::timeout(Duration::from_secs(10), socket.connect(target))
        .await
        .ok()?
        .ok()?;
    Some((stream, Instant::now()))
}

/// The value of the series `name` (with its labels) in OpenMetrics text.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in the metrics:\n{text}"))
}

/// This test binary again, running [`attacker`] alone with `plan`.
fn spawn_attacker(plan: &Plan) -> Child {
    Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--exact",
            "connections::attacker",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PLAN, serde_json::to_string(plan).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start an attacker process")
}

fn tally_of(attacker: Child) -> Tally {
    let output = attacker.wait_with_output().expect("an attacker's output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        // After libtest's "test connections::attacker ... " on the same line.
        .find_map(|l| l.split_once(TALLY_MARK).map(|(_, tally)| tally))
        .unwrap_or_else(|| panic!("an attacker ended without its tally: {stdout}"));
    serde_json::from_str(line).expect("an attacker's tally")
}

/// The api binary, in its own process so that its open files and memory are its own.
struct ApiProcess {
    child: Child,
    address: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl ApiProcess {
    fn start(database_url: &str) -> ApiProcess {
        Self::start_with(database_url, Command::new(env!("CARGO_BIN_EXE_api")))
    }

    /// The api allowed `files` open files (`prlimit` sets the limit and runs it, same process).
    fn start_with_file_limit(database_url: &str, files: u64) -> ApiProcess {
        let mut command = Command::new("prlimit");
        command.args([
            &format!("--nofile={files}:{files}"),
            "--",
            env!("CARGO_BIN_EXE_api"),
        ]);
        Self::start_with(database_url, command)
    }

    fn start_with(database_url: &str, mut command: Command) -> ApiProcess {
        let mut child = command
            .env_clear()
            .env("DATABASE_URL", database_url)
            .env("API_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env(
                "HTTP_HEADER_TIMEOUT_SECS",
                HEADER_TIMEOUT.as_secs().to_string(),
            )
            .env("HTTP_IDLE_TIMEOUT_SECS", IDLE_TIMEOUT.as_secs().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the api binary");
        let stderr = child.stderr.take().expect("the api's standard error");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) {
                    if event["message"] == "starting" {
                        let _ = address_tx.send(event["address"].as_str().map(str::to_string));
                    }
                }
                lines.lock().unwrap().push(line);
            }
        });
        let address = address_rx
            .recv_timeout(Duration::from_secs(30))
            .ok()
            .flatten()
            .and_then(|a| a.parse().ok())
            .expect("the api to log the address it listens on");
        ApiProcess {
            child,
            address,
            log,
        }
    }

    fn proc_path(&self, name: &str) -> String {
        format!("/proc/{}/{name}", self.child.id())
    }

    fn open_files(&self) -> usize {
        std::fs::read_dir(self.proc_path("fd"))
            .expect("the api's descriptors")
            .count()
    }

    fn resident_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(self.proc_path("status")).expect("the api's status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS");
        kib << 10
    }

    /// The most descriptors the api held, sampled until `done` and for as long as the count grows.
    async fn watch_peak_open_files_until(&self, done: impl Fn() -> bool) -> usize {
        let mut peak = 0;
        loop {
            let now = self.open_files();
            if now < peak && done() {
                return peak;
            }
            peak = peak.max(now);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_until_ready(&self) {
        let url = format!("http://{}/readyz", self.address);
        testkit::wait_until("the api to be ready", Duration::from_secs(60), || async {
            reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status() == reqwest::StatusCode::OK)
        })
        .await;
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.address))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("the metrics")
    }

    /// User and system CPU time of the api so far, in clock ticks (1/100 s).
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(self.proc_path("stat")).expect("the api's stat");
        // After the command name in parentheses: utime and stime are fields 14 and 15.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    fn log_lines(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    fn log_tail(&self, n: usize) -> Vec<String> {
        let log = self.log.lock().unwrap();
        log[log.len() - n..].to_vec()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ApiProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A client that asks for an order every few milliseconds over its keep-alive connection, and
/// records every answer.
struct WellBehaved {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Answers>,
    answered: Arc<AtomicUsize>,
}

#[derive(Debug, Default)]
struct Answers {
    /// Seconds each answer took.
    latencies: Vec<f64>,
    failures: Vec<String>,
    longest_gap: Duration,
}

impl Answers {
    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort_by(f64::total_cmp);
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(index).copied().unwrap_or(f64::NAN)
    }
}

impl WellBehaved {
    async fn start(address: SocketAddr, uids: Arc<Vec<String>>) -> WellBehaved {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let answered = Arc::new(AtomicUsize::new(0));
        let counter = answered.clone();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        let task = tokio::spawn(async move {
            let mut answers = Answers::default();
            let mut every = tokio::time::interval(Duration::from_millis(5));
            let mut last = Instant::now();
            for i in 0.. {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = every.tick() => {}
                }
                let uid = &uids[(i * 7919) % uids.len()];
                let asked = Instant::now();
                let outcome = async {
                    let response = http
                        .get(format!("http://{address}/api/v1/orders/{uid}"))
                        .timeout(Duration::from_secs(30))
                        .send()
                        .await
                        .map_err(|e| format!("{uid}: {e}"))?;
                    let status = response.status();
                    let body: serde_json::Value =
                        response.json().await.map_err(|e| format!("{uid}: {e}"))?;
                    if status != 200 || body["order_uid"] != uid.as_str() {
                        return Err(format!("{uid}: {status} {body}"));
                    }
                    Ok(())
                }
                .await;
                let now = Instant::now();
                match outcome {
                    Ok(()) => {
                        answers.latencies.push((now - asked).as_secs_f64());
                        answers.longest_gap = answers.longest_gap.max(now - last);
                        last = now;
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(failure) => answers.failures.push(failure),
                }
            }
            answers
        });
        WellBehaved {
            stop,
            task,
            answered,
        }
    }

    async fn wait_for_answers(&self, n: usize) {
        testkit::wait_until(
            &format!("{n} answers to the well-behaved client"),
            Duration::from_secs(60),
            || async { self.answered.load(Ordering::Relaxed) >= n },
        )
        .await;
    }

    async fn stop(self) -> Answers {
        let _ = self.stop.send(());
        self.task.await.expect("the well-behaved client")
    }
}
