//! What the ingestor's tests share: a `TestBed` (database, channel, publisher), ingestors in this
//! process or as a binary, an api.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ingestor::settings::Broker;
use ingestor::{Application, Settings};
use service_kit::settings::{DatabaseSettings, ExposeSecret};
use testkit::{stream_for, unique_name, wait_until, Publisher, TestDb, Transport};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for an outcome before it fails.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A database, a channel of the test's own on one broker, and a publisher on it.
pub struct TestBed {
    pub db: TestDb,
    pub transport: Transport,
    pub nats_url: String,
    pub channel: String,
    pub durable: String,
    /// How many servers keep the JetStream stream: 1 on a single server, 3 on a cluster.
    pub replicas: usize,
    pub publisher: Publisher,
}

impl TestBed {
    /// A bed on a fresh database and the broker of `transport` that every test shares.
    pub async fn new(transport: Transport) -> TestBed {
        Self::with_db(transport, TestDb::new().await).await
    }

    pub async fn with_db(transport: Transport, db: TestDb) -> TestBed {
        Self::on(transport, db, &transport.shared_url()).await
    }

    /// A bed on the given database and broker.
    pub async fn on(transport: Transport, db: TestDb, nats_url: &str) -> TestBed {
        Self::on_cluster(transport, db, nats_url, 1).await
    }

    /// A bed on the given database and the broker cluster at `nats_urls`, where a JetStream
    /// stream is kept by `replicas` servers.
    pub async fn on_cluster(
        transport: Transport,
        db: TestDb,
        nats_urls: &str,
        replicas: usize,
    ) -> TestBed {
        let channel = unique_name("orders");
        TestBed {
            db,
            transport,
            nats_url: nats_urls.to_string(),
            publisher: Publisher::connect_replicated(transport, nats_urls, &channel, replicas)
                .await,
            durable: "ingestor".into(),
            replicas,
            channel,
        }
    }

    /// Another publisher on the bed's channel, on the broker at `nats_url`.
    pub async fn publisher_on(&self, nats_url: &str) -> Publisher {
        Publisher::connect(self.transport, nats_url, &self.channel).await
    }

    pub fn settings(&self, client_id: &str) -> Settings {
        Settings {
            database: DatabaseSettings::from_url(&self.db.url).unwrap(),
            broker: match self.transport {
                Transport::Stan => Broker::Stan,
                Transport::JetStream => Broker::JetStream,
            },
            nats_url: self.nats_url.clone(),
            stan_cluster_id: testkit::stan_cluster_id(),
            stan_channel: self.channel.clone(),
            stan_durable: self.durable.clone(),
            stan_client_id: Some(client_id.to_string()),
            stan_max_in_flight: 1024,
            stan_ack_wait_secs: 30,
            refetch_after_secs: None,
            jetstream_stream: stream_for(&self.channel),
            jetstream_create_stream: true,
            jetstream_replicas: self.replicas as u8,
            batch_max: 500,
            shutdown_grace_ms: 10_000,
            metrics_addr: "127.0.0.1:0".parse().unwrap(),
            log: Default::default(),
            http: Default::default(),
        }
    }

    /// An ingestor running in this process.
    pub async fn start_ingestor(&self, client_id: &str) -> RunningIngestor {
        self.start_ingestor_with(self.settings(client_id)).await
    }

    /// An ingestor running in this process with `settings`.
    pub async fn start_ingestor_with(&self, settings: Settings) -> RunningIngestor {
        let app = Application::build(settings)
            .await
            .expect("build the ingestor");
        let metrics_address = app.metrics_address();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        RunningIngestor {
            stop,
            task,
            metrics_address,
        }
    }

    /// The ingestor binary as a child process, for tests that kill it.
    pub fn spawn_ingestor_process(&self, client_id: &str) -> ChildIngestor {
        self.ingestor_command(client_id)
            .spawn()
            .map(|child| ChildIngestor { child, log: None })
            .expect("start the ingestor binary")
    }

    /// The ingestor binary as a child process, with `env` added to its environment. Its log (at
    /// info level) can be waited on with [`ChildIngestor::logged`].
    pub fn spawn_ingestor_process_logging(
        &self,
        client_id: &str,
        env: &[(&str, &str)],
    ) -> ChildIngestor {
        let mut child = self
            .ingestor_command(client_id)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the ingestor binary");
        let stderr = child.stderr.take().expect("the ingestor's stderr");
        let (line, log) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for text in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = line.send(text);
            }
        });
        ChildIngestor {
            child,
            log: Some(log),
        }
    }

    /// The ingestor binary as a child process, with `env` added to its environment, once it serves
    /// `/metrics`: the child, and the address it serves them on (a port of its own choosing, which
    /// it logs), so that several can run side by side and be scraped.
    pub async fn spawn_ingestor_process_serving_metrics(
        &self,
        client_id: &str,
        env: &[(&str, &str)],
    ) -> (ChildIngestor, SocketAddr) {
        let env: Vec<(&str, &str)> = env
            .iter()
            .copied()
            .chain([("LOG_FORMAT", "json")])
            .collect();
        let mut child = self.spawn_ingestor_process_logging(client_id, &env);
        let line = child.logged_line("serving /metrics", PATIENCE).await;
        let logged: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the ingestor's log line {line:?} is not JSON: {e}"));
        let address = logged["address"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no metrics address in the ingestor's log line {line:?}"));
        (child, address)
    }

    fn ingestor_command(&self, client_id: &str) -> Command {
        let s = self.settings(client_id);
        let mut command = Command::new(env!("CARGO_BIN_EXE_ingestor"));
        command
            .env("DATABASE_URL", s.database.database_url.expose_secret())
            .env("BROKER", self.transport.setting())
            .env("NATS_URL", &s.nats_url)
            .env("JETSTREAM_STREAM", &s.jetstream_stream)
            .env("JETSTREAM_REPLICAS", s.jetstream_replicas.to_string())
            .env("STAN_CLUSTER_ID", &s.stan_cluster_id)
            .env("STAN_CHANNEL", &s.stan_channel)
            .env("STAN_DURABLE", &s.stan_durable)
            .env("STAN_CLIENT_ID", client_id)
            .env("METRICS_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
        command
    }

    pub async fn wait_for_rows(&self, table: &str, expected: i64) {
        wait_until(&format!("{expected} rows in {table}"), PATIENCE, || async {
            self.db.count(table).await >= expected
        })
        .await;
        assert_eq!(self.db.count(table).await, expected, "rows in {table}");
    }
}

/// An api running in this process on the test's database.
pub struct Api {
    pub address: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Api {
    pub async fn start(database_url: &str) -> Api {
        let settings = api::Settings {
            database: DatabaseSettings::from_url(database_url).unwrap(),
            database_read_url: None,
            cache_max_bytes: None,
            api_addr: "127.0.0.1:0".parse().unwrap(),
            http: Default::default(),
            log: Default::default(),
            // Only notifications can bring new orders in time.
            catch_up_interval: Duration::from_secs(3600),
            shutdown_grace: Duration::from_secs(5),
            admin_token: None,
            replica_name: None,
        };
        let app = api::Application::build(settings)
            .await
            .expect("build the api");
        let address = format!("http://{}", app.address());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        let api = Api {
            address,
            stop,
            task,
        };
        wait_until("the api to be ready", PATIENCE, || async {
            api.status("/readyz").await == 200
        })
        .await;
        api
    }

    pub async fn status(&self, path: &str) -> u16 {
        match reqwest::get(format!("{}{path}", self.address)).await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::get(format!("{}{path}", self.address))
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub async fn order(&self, uid: &str) -> serde_json::Value {
        self.get(&format!("/api/v1/orders/{uid}"))
            .await
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

pub struct RunningIngestor {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
    /// Where its `/metrics` and `/healthz` are served.
    pub metrics_address: SocketAddr,
}

impl RunningIngestor {
    /// GET `path` on its metrics server.
    pub async fn get_metrics_server(&self, path: &str) -> reqwest::Response {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("http://{}{path}", self.metrics_address))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// Whether its task is still going: it has neither returned nor panicked.
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// Stops it the way SIGTERM does and waits until it has.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task
            .await
            .expect("the ingestor task")
            .expect("the ingestor stops cleanly");
    }
}

/// The sample order with another id (and the matching transaction).
pub fn sample_with_uid(uid: &str) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(testkit::sample_order()).unwrap();
    v["order_uid"] = uid.into();
    v["payment"]["transaction"] = uid.into();
    serde_json::to_vec(&v).unwrap()
}

/// `n` valid orders with distinct ids.
pub fn distinct_orders(prefix: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| sample_with_uid(&format!("{prefix}{i}")))
        .collect()
}

/// The ingestor binary running as a child process; killed when dropped, so that a failing test
/// leaves no process behind.
pub struct ChildIngestor {
    child: Child,
    /// Its log lines, for a child started with `spawn_ingestor_process_logging`.
    log: Option<tokio::sync::mpsc::UnboundedReceiver<String>>,
}

impl ChildIngestor {
    /// `kill -9`, and wait until it is gone.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill the ingestor");
        self.child.wait().expect("wait for the ingestor");
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether it still runs: it has not exited, by itself or killed.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("poll the ingestor").is_none()
    }

    /// Sends it the signal `name` (`TERM`, `STOP`...).
    pub fn signal(&self, name: &str) {
        signal_together(&[self.id()], name);
    }

    /// Waits until the process has exited by itself; panics after `limit`.
    pub async fn exit_status(&mut self, limit: Duration) -> std::process::ExitStatus {
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the ingestor") {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "the ingestor did not exit within {limit:?}: it hangs on shutdown"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until it has logged a line that contains `text`; panics after `limit`.
    pub async fn logged(&mut self, text: &str, limit: Duration) {
        self.logged_line(text, limit).await;
    }

    /// Waits until it has logged a line that contains `text`, and returns that line; panics after
    /// `limit`.
    pub async fn logged_line(&mut self, text: &str, limit: Duration) -> String {
        let log = self
            .log
            .as_mut()
            .expect("a child started with spawn_ingestor_process_logging");
        let found = tokio::time::timeout(limit, async {
            while let Some(line) = log.recv().await {
                if line.contains(text) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            _ => panic!("the ingestor did not log {text:?} within {limit:?}"),
        }
    }
}

/// Sends the signal `name` to every process in `pids` with one `kill`, so that they all get it at
/// the same moment.
pub fn signal_together(pids: &[u32], name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .args(pids.iter().map(u32::to_string))
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pids:?} failed");
}

impl Drop for ChildIngestor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
