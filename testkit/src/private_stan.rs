//! A NATS Streaming server of a test's own, on its file store, to restart.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The heartbeats of the NATS Streaming servers tests run, a private one or a cluster's nodes: a
/// client that misses three in a row, one a second, is dropped within seconds instead of the
/// server's default of minutes.
pub(crate) const HEARTBEATS: [&str; 6] = [
    "--hb_interval",
    "1s",
    "--hb_timeout",
    "1s",
    "--hb_fail_count",
    "3",
];

/// A NATS Streaming server of a test's own, on its file store, for tests that restart it. Its data
/// lives in a temporary folder that is removed when the value is dropped.
pub struct PrivateStan {
    dir: PathBuf,
    pub port: u16,
    pub monitor_port: u16,
    child: Option<Child>,
}

impl PrivateStan {
    pub fn start() -> PrivateStan {
        let mut stan = PrivateStan {
            dir: std::env::temp_dir().join(crate::unique_name("stan")),
            port: crate::free_port(),
            monitor_port: crate::free_port(),
            child: None,
        };
        stan.resume();
        stan
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    /// Kills the server at once (`kill -9`): whatever the file store had, it keeps.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server (`kill -9`) and starts it again on the same store and ports, without blocking
    /// the async runtime.
    pub async fn killed_and_restarted(mut self) -> PrivateStan {
        tokio::task::spawn_blocking(move || {
            self.kill();
            self.resume();
            self
        })
        .await
        .expect("the restart thread")
    }

    /// Its process id, for a test that signals it together with another process; `None` while it
    /// is stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits until the server, which the test has signalled, has exited, and starts it again on
    /// the same store and ports, without blocking the async runtime.
    pub async fn exited_and_restarted(mut self) -> PrivateStan {
        tokio::task::spawn_blocking(move || {
            self.wait_exited();
            self.resume();
            self
        })
        .await
        .expect("the restart thread")
    }

    fn wait_exited(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let start = Instant::now();
        while child.try_wait().expect("poll the STAN server").is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the private STAN server did not exit after the signal; see {}",
                self.dir.with_extension("log").display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server (again) on the same store and ports, and waits until it serves.
    pub fn resume(&mut self) {
        let bin = std::env::var("STAN_BIN").unwrap_or_else(|_| "nats-streaming-server".into());
        let log = std::fs::File::create(self.dir.with_extension("log")).expect("a log file");
        let child = Command::new(&bin)
            .args([
                "--cluster_id",
                &crate::stan_cluster_id(),
                "--store",
                "file",
                "--dir",
            ])
            .arg(&self.dir)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-m",
                &self.monitor_port.to_string(),
            ])
            .args(["--max_channels", "0", "--max_msgs", "0", "--max_bytes", "0"])
            .args(HEARTBEATS)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {bin} (set STAN_BIN): {e}"));
        self.child = Some(child);
        let ready = format!("127.0.0.1:{}", self.port);
        let start = Instant::now();
        while std::net::TcpStream::connect(&ready).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the private STAN server did not start; see {}",
                self.dir.with_extension("log").display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PrivateStan {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(self.dir.with_extension("log"));
    }
}
