//! Running the publisher as a user does, and reading back what a STAN channel holds (see
//! [`crate::destination`] for either broker).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use stan::{SubscriptionConfig, SubscriptionStart};

/// The sample order of the task, as a file to publish.
pub const SAMPLE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../model.json");

/// What a run of the publisher printed, and whether it succeeded.
pub struct Run {
    pub success: bool,
    /// The exit code: 2 for a command line refused.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the publisher against `nats_url` with `args`.
pub fn publisher_at(nats_url: &str, args: &[&str]) -> Run {
    publisher_with(nats_url, &[], args)
}

/// Runs the publisher against `nats_url` with the environment variables `env` and `args`.
pub fn publisher_with(nats_url: &str, env: &[(&str, &str)], args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = publisher_command(nats_url, args)
        .envs(env.iter().copied())
        .output()
        .expect("run the publisher");
    Run {
        success: status.success(),
        code: status.code(),
        stdout: String::from_utf8(stdout).expect("UTF-8 output"),
        stderr: String::from_utf8(stderr).expect("UTF-8 output"),
    }
}

fn publisher_command(nats_url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_publisher"));
    command
        .args(["--nats-url", nats_url])
        .args(args)
        // Through the environment, so that a test can still give --cluster-id.
        .env("STAN_CLUSTER_ID", testkit::stan_cluster_id())
        .env_remove("STAN_CHANNEL")
        .env_remove("BROKER_CHANNEL")
        .env_remove("BROKER")
        .env_remove("JETSTREAM_STREAM")
        .env_remove("JETSTREAM_REPLICAS")
        .env_remove("JETSTREAM_CREATE_STREAM")
        .env_remove("NATS_MAX_PAYLOAD")
        .env_remove("PUBLISH_RETRY_SECS")
        .env_remove("PUBLISH_RATE")
        .env_remove("PUBLISH_ACKED_LOG");
    command
}

/// A URL where nothing listens.
pub fn nowhere() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    format!("nats://127.0.0.1:{port}")
}

/// Every message on `channel` of the server at `nats_url`, in order, duplicates included.
pub fn all_messages(nats_url: &str, channel: &str) -> Vec<Vec<u8>> {
    let nats = nats::connect(nats_url).expect("connect to NATS");
    let client = stan::connect(
        nats,
        &testkit::stan_cluster_id(),
        &testkit::unique_name("check"),
    )
    .expect("connect to the STAN cluster");
    // The newest message says how many the channel holds, without waiting for more to come.
    let newest = SubscriptionConfig {
        start: SubscriptionStart::LastReceived,
        ..Default::default()
    };
    let count = client
        .subscribe(channel, newest)
        .expect("subscribe")
        .next_timeout(Duration::from_secs(10))
        .expect("the newest message")
        .sequence;
    let from_start = SubscriptionConfig {
        start: SubscriptionStart::AllAvailable,
        ..Default::default()
    };
    let subscription = client.subscribe(channel, from_start).expect("subscribe");
    let mut by_sequence = BTreeMap::new();
    while (by_sequence.len() as u64) < count {
        let message = subscription
            .next_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| {
                panic!(
                    "only {} of {count} messages arrived: {e}",
                    by_sequence.len()
                )
            });
        message.ack().expect("ack");
        by_sequence.insert(message.sequence, message.data);
    }
    by_sequence.into_values().collect()
}

/// The publisher running in the background, with its output collected as it comes.
pub struct Background {
    child: Child,
    stdout: Option<JoinHandle<String>>,
    stderr_reader: Option<JoinHandle<()>>,
    stderr_lines: mpsc::Receiver<String>,
    stderr: Vec<String>,
}

impl Background {
    /// Starts the publisher against `nats_url` with `args`.
    pub fn start(nats_url: &str, args: &[&str]) -> Background {
        let mut child = publisher_command(nats_url, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the publisher");
        let mut stdout = child.stdout.take().expect("its standard output");
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            stdout.read_to_string(&mut text).expect("UTF-8 output");
            text
        });
        let stderr = child.stderr.take().expect("its standard error");
        let (lines, stderr_lines) = mpsc::channel();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                if lines.send(line.expect("UTF-8 output")).is_err() {
                    return;
                }
            }
        });
        Background {
            child,
            stdout: Some(stdout),
            stderr_reader: Some(stderr_reader),
            stderr_lines,
            stderr: Vec::new(),
        }
    }

    /// Waits until the publisher writes a line containing `text` to standard error.
    pub fn wait_for_stderr(&mut self, text: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.stderr.iter().any(|line| line.contains(text)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) => self.stderr.push(line),
                Err(e) => panic!(
                    "gave up after {limit:?} waiting for {text:?} from the publisher ({e}); it \
                     wrote:\n{}",
                    self.stderr.join("\n")
                ),
            }
        }
    }

    /// Waits until the publisher exits, for `limit` at most, and says what it printed.
    pub fn finish(mut self, limit: Duration) -> Run {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("the publisher's status") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the publisher did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = self.stdout.take().expect("read once");
        let stdout = stdout.join().expect("the thread reading standard output");
        let stderr = self.stderr_reader.take().expect("read once");
        stderr.join().expect("the thread reading standard error");
        self.stderr.extend(self.stderr_lines.try_iter());
        Run {
            success: status.success(),
            code: status.code(),
            stdout,
            stderr: self.stderr.join("\n"),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // A test that failed early leaves no publisher behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A file of a test's own in the temporary folder, removed when the value is dropped.
pub struct TempFile(PathBuf);

impl TempFile {
    pub fn new(prefix: &str) -> TempFile {
        TempFile(std::env::temp_dir().join(testkit::unique_name(prefix)))
    }

    pub fn arg(&self) -> &str {
        self.0.to_str().expect("a UTF-8 path")
    }

    /// The file's lines; none while it does not exist.
    pub fn lines(&self) -> Vec<String> {
        match std::fs::read_to_string(&self.0) {
            Ok(text) => text.lines().map(str::to_string).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("read {}: {e}", self.0.display()),
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Polls `check` until it returns true; panics with `what` if that takes longer than `limit`.
/// For outcomes no event announces (a file grows).
pub fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < limit,
            "gave up after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
