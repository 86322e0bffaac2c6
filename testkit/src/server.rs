//! What the brokers a test runs itself share: a server process to kill and start again, free
//! ports, and a bare HTTP probe of a monitoring endpoint.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest a server of a test's own may take to start and answer.
pub(crate) const START_LIMIT: Duration = Duration::from_secs(30);

/// A server process started from a fixed command line, so that it starts again exactly as
/// before, on the same store and ports. Its output is appended to its log file; it is killed
/// when the value is dropped.
pub(crate) struct ServerProcess {
    program: String,
    args: Vec<OsString>,
    log: PathBuf,
    /// Behind a lock so that a check for an exit (which needs `&mut Child`) takes `&self`.
    child: Mutex<Option<Child>>,
}

impl ServerProcess {
    /// A server that `start` runs as `program args...`, its output going to `log`.
    pub(crate) fn new(program: String, args: Vec<OsString>, log: PathBuf) -> ServerProcess {
        ServerProcess {
            program,
            args,
            log,
            child: Mutex::new(None),
        }
    }

    /// Starts the server, which must not be running; does not wait for it to answer.
    pub(crate) fn start(&self) {
        let mut child = self.child.lock().unwrap();
        assert!(child.is_none(), "{} is already running", self.program);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("open the log {}: {e}", self.log.display()));
        let started = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a second handle on the log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.program));
        *child = Some(started);
    }

    /// Kills the server at once (`kill -9`) and reaps it; a no-op when it is not running.
    pub(crate) fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits, at most `limit`, for the server (which the test has signalled) to exit, and reaps
    /// it. Panics with the end of its log if it is still running by then.
    pub(crate) fn wait_exited(&self, limit: Duration) {
        let start = Instant::now();
        while self.is_running() {
            assert!(
                start.elapsed() < limit,
                "{} did not exit within {limit:?} of its signal\n{}",
                self.program,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.lock().unwrap().take();
    }

    /// Its process id while it was started and not killed.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.lock().unwrap().as_ref().map(Child::id)
    }

    /// True once started, and until it exits or is killed.
    pub(crate) fn is_running(&self) -> bool {
        match self.child.lock().unwrap().as_mut() {
            Some(child) => child.try_wait().expect("poll a server process").is_none(),
            None => false,
        }
    }

    /// How it ended, when it was started and has exited without being killed: it crashed or
    /// refused to start.
    pub(crate) fn exit_status(&self) -> Option<ExitStatus> {
        let mut child = self.child.lock().unwrap();
        child.as_mut()?.try_wait().expect("poll a server process")
    }

    /// The end of its log, to explain a failure (the log is removed with the server's folder).
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("----- end of {} -----\n{tail}", self.log.display())
    }

    /// Blocks until `ready` holds, at most [`START_LIMIT`]; panics with the end of the log if the
    /// server exits or is still not ready by then.
    pub(crate) fn wait_ready(&self, what: &str, ready: impl Fn() -> bool) {
        let start = Instant::now();
        while !ready() {
            if let Some(status) = self.exit_status() {
                panic!(
                    "{what}: {} exited ({status})\n{}",
                    self.program,
                    self.log_tail()
                );
            }
            assert!(
                start.elapsed() < START_LIMIT,
                "{what}: not ready after {START_LIMIT:?}\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The program named by the environment variable `variable` (as `scripts/test` sets it), else
/// `default`, looked up in `PATH`.
pub(crate) fn program(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_string())
}

/// `n` distinct free ports: each is held until all are found, so none is handed out twice.
pub(crate) fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("a bound address").port())
        .collect()
}

/// `GET path` on the monitoring endpoint at `127.0.0.1:port`, blocking for at most a few
/// seconds: the status code and body, or `None` when it does not answer. HTTP/1.0, so the server
/// sends the body whole and closes the connection; no async runtime is needed, so the waits of
/// `start()` can run before any test runtime does, or inside one.
pub(crate) fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let limit = Duration::from_secs(2);
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, limit).ok()?;
    stream.set_read_timeout(Some(limit)).ok()?;
    stream.set_write_timeout(Some(limit)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// The JSON that `GET path` answers with status 200, or `None`.
pub(crate) fn get_json(port: u16, path: &str) -> Option<serde_json::Value> {
    match http_get(port, path)? {
        (200, body) => serde_json::from_str(&body).ok(),
        _ => None,
    }
}
