//! A nats-server with JetStream of a test's own, on its file store, to kill and restart.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A nats-server with JetStream of a test's own, for tests that kill or restart it. Its store lives
/// in a temporary folder that is removed when the value is dropped.
pub struct PrivateJetStream {
    dir: PathBuf,
    pub port: u16,
    pub monitor_port: u16,
    child: Option<Child>,
}

impl PrivateJetStream {
    pub fn start() -> PrivateJetStream {
        let mut server = PrivateJetStream {
            dir: std::env::temp_dir().join(crate::unique_name("jetstream")),
            port: crate::free_port(),
            monitor_port: crate::free_port(),
            child: None,
        };
        server.resume();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    /// Its process id; `None` while it is stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server at once (`kill -9`): whatever its store had on disk, it keeps.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server (`kill -9`) and starts it again on the same store and ports, without
    /// blocking the async runtime.
    pub async fn killed_and_restarted(mut self) -> PrivateJetStream {
        tokio::task::spawn_blocking(move || {
            self.kill();
            self.resume();
            self
        })
        .await
        .expect("the restart thread")
    }

    /// Waits until the server, which the test has signalled, has exited, and starts it again on
    /// the same store and ports, without blocking the async runtime.
    pub async fn exited_and_restarted(mut self) -> PrivateJetStream {
        tokio::task::spawn_blocking(move || {
            if let Some(mut child) = self.child.take() {
                let start = Instant::now();
                while child.try_wait().expect("poll nats-server").is_none() {
                    assert!(
                        start.elapsed() < Duration::from_secs(30),
                        "the private nats-server did not exit after the signal; see {}",
                        self.log().display()
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            self.resume();
            self
        })
        .await
        .expect("the restart thread")
    }

    fn log(&self) -> PathBuf {
        self.dir.with_extension("log")
    }

    /// Starts the server (again) on the same store and ports, and waits until JetStream serves.
    pub fn resume(&mut self) {
        let bin = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into());
        let log = std::fs::File::create(self.log()).expect("a log file");
        let child = Command::new(&bin)
            .args(["-js", "-sd"])
            .arg(&self.dir)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-m", &self.monitor_port.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {bin} (set NATS_SERVER_BIN): {e}"));
        self.child = Some(child);
        let health = format!("{}/healthz?js-enabled-only=true", self.monitor_url());
        let start = Instant::now();
        while !healthy(&health) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the private nats-server did not start; see {}",
                self.log().display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Whether `url` answers 200, with a plain blocking HTTP/1.0 request (no async runtime here).
fn healthy(url: &str) -> bool {
    use std::io::{Read, Write};
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let Ok(mut stream) = std::net::TcpStream::connect(host) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(stream, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
}

impl Drop for PrivateJetStream {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(self.log());
    }
}
