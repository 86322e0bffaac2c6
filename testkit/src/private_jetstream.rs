//! A nats-server with JetStream of a test's own, on its file store, to kill and restart.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::server::{self, ServerProcess};

/// A nats-server with JetStream of a test's own, on free ports and its own file store, for tests
/// that kill and restart it. Its store and log live in a temporary folder that is removed when
/// the value is dropped. The binary is `NATS_SERVER_BIN` (as `scripts/test` sets it), else
/// `nats-server` from `PATH`.
///
/// As with [`crate::PrivateStan`], `start` blocks (a test starts its servers before anything
/// else runs), and what kills and starts it again once the test runs is async, off the runtime.
pub struct PrivateJetStream {
    dir: PathBuf,
    pub port: u16,
    pub monitor_port: u16,
    server: ServerProcess,
}

impl PrivateJetStream {
    /// Starts the server and waits until JetStream is enabled.
    pub fn start() -> PrivateJetStream {
        let dir = std::env::temp_dir().join(crate::unique_name("jetstream"));
        std::fs::create_dir_all(&dir).expect("create the store folder");
        let [port, monitor_port] = server::free_ports(2)[..] else {
            unreachable!("two ports")
        };
        let args: Vec<OsString> = [
            "-js",
            "-sd",
            dir.join("store").to_str().expect("a UTF-8 path"),
            "-n",
            "private",
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            &monitor_port.to_string(),
        ]
        .map(OsString::from)
        .to_vec();
        let program = server::program("NATS_SERVER_BIN", "nats-server");
        let server = ServerProcess::new(program, args, dir.join("nats-server.log"));
        let js = PrivateJetStream {
            dir,
            port,
            monitor_port,
            server,
        };
        js.resume();
        js
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    /// Kills the server at once (`kill -9`): whatever its file store had, it keeps.
    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// Kills the server (`kill -9`) and starts it again on the same store and ports, without
    /// blocking the async runtime; returns once JetStream is enabled again.
    pub async fn killed_and_restarted(self) -> PrivateJetStream {
        tokio::task::spawn_blocking(move || {
            self.server.kill();
            self.resume();
            self
        })
        .await
        .expect("the restart thread")
    }

    /// Waits until the server, which the test has signalled, has exited, and starts it again on
    /// the same store and ports, without blocking the async runtime.
    pub async fn exited_and_restarted(self) -> PrivateJetStream {
        tokio::task::spawn_blocking(move || {
            self.server.wait_exited(server::START_LIMIT);
            self.resume();
            self
        })
        .await
        .expect("the restart thread")
    }

    /// Its process id, for a test that signals it together with another process; `None` while it
    /// is stopped.
    pub fn pid(&self) -> Option<u32> {
        self.server.pid()
    }

    /// Starts the server (again) on the same store and ports, and blocks until its
    /// `/healthz?js-enabled-only=true` answers 200: JetStream is enabled, its streams recovered.
    pub fn resume(&self) {
        self.server.start();
        let port = self.monitor_port;
        self.server
            .wait_ready("the private nats-server with JetStream", || {
                matches!(
                    server::http_get(port, "/healthz?js-enabled-only=true"),
                    Some((200, _))
                )
            });
    }
}

impl Drop for PrivateJetStream {
    fn drop(&mut self) {
        self.server.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
