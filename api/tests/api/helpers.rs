//! What the api's tests share: test settings, a `TestApp` on port 0, and ways to store orders.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::Duration;

use api::{Application, Settings};
use bytes::Bytes;
use orders::db::{Envelope, Verdict};
use reqwest::StatusCode;
use service_kit::settings::DatabaseSettings;
use service_kit::telemetry::LogFormat;
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for something the api does in the background.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// A running api, reached over HTTP.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

/// Settings for a test: a free port, and a periodic catch-up so rare that only notifications (and
/// reconnections) can bring new orders in time, unless a test asks for it. The cache is bounded
/// to `API_TEST_CACHE_MAX_BYTES` bytes when it is set, so that every test runs in both modes.
pub fn settings(database_url: &str) -> Settings {
    Settings {
        database: DatabaseSettings::from_url(database_url).expect("a Postgres URL"),
        database_read_url: None,
        cache_max_bytes: test_cache_max_bytes(),
        api_addr: "127.0.0.1:0".parse().unwrap(),
        http: Default::default(),
        log: Default::default(),
        catch_up_interval: Duration::from_secs(3600),
        shutdown_grace: Duration::from_secs(5),
        admin_token: None,
        replica_name: Some("test-replica".to_string()),
    }
}

/// The budget of the bounded cache the tests run with, if any: `API_TEST_CACHE_MAX_BYTES`.
pub fn test_cache_max_bytes() -> Option<u64> {
    let value = std::env::var("API_TEST_CACHE_MAX_BYTES").ok()?;
    Some(value.parse().unwrap_or_else(|_| {
        panic!("API_TEST_CACHE_MAX_BYTES must be a number of bytes, not {value:?}")
    }))
}

impl TestApp {
    /// Starts the api on `database_url` and waits until it is ready.
    pub async fn spawn(database_url: &str) -> TestApp {
        let app = TestApp::start(settings(database_url)).await;
        app.wait_until_ready().await;
        app
    }

    /// Starts the api without waiting for it to be ready.
    pub async fn start(settings: Settings) -> TestApp {
        init_logs();
        let application = Application::build(settings).await.expect("build the api");
        let address = format!("http://{}", application.address());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(application.run_until_stopped(async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        TestApp {
            address,
            client,
            stop,
            task,
        }
    }

    /// Shuts the api down gracefully and checks that it stopped cleanly.
    pub async fn stop(self) {
        self.stop.send(()).expect("the api is running");
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the api stops in time")
            .expect("the api task")
            .expect("the api stops without error");
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// GET /api/v1/orders/{uid}, with `uid` percent-encoded as one path segment.
    pub async fn get_order(&self, uid: &str) -> reqwest::Response {
        self.get(&format!("/api/v1/orders/{}", encode_segment(uid)))
            .await
    }

    pub async fn wait_until_ready(&self) {
        testkit::wait_until("the api to be ready", PATIENCE, || async {
            self.get("/readyz").await.status() == StatusCode::OK
        })
        .await;
    }

    pub async fn wait_until_served(&self, uid: &str) {
        testkit::wait_until(&format!("order {uid} to be served"), PATIENCE, || async {
            self.get_order(uid).await.status() == StatusCode::OK
        })
        .await;
    }
}

/// Every byte but the unreserved ones percent-encoded, so that the server sees exactly `segment`.
pub fn encode_segment(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The sample order with another id, as the publisher would send it.
pub fn order_with_uid(uid: &str) -> Vec<u8> {
    let mut order: serde_json::Value = serde_json::from_slice(testkit::sample_order()).unwrap();
    order["order_uid"] = uid.into();
    order["payment"]["transaction"] = uid.into();
    serde_json::to_vec_pretty(&order).unwrap()
}

/// Stores messages in one batch, the way the ingestor does (with its NOTIFY).
pub async fn store(pool: &PgPool, messages: &[Vec<u8>]) {
    static SEQUENCE: AtomicU64 = AtomicU64::new(1);
    let batch: Vec<(Envelope, Verdict)> = messages
        .iter()
        .map(|m| {
            let envelope = Envelope {
                channel: "orders".to_string(),
                sequence: SEQUENCE.fetch_add(1, Ordering::Relaxed),
                published_at: chrono::Utc::now(),
                payload: Bytes::from(m.clone()),
            };
            let order = orders::parse_order(m).expect("a valid order");
            (envelope, Verdict::Valid(order))
        })
        .collect();
    let report = orders::db::store_batch(pool, &batch)
        .await
        .expect("store the batch");
    assert_eq!(
        report.stored,
        messages.len(),
        "every order of the batch is new"
    );
}

/// The document stored for an order, as text.
pub async fn stored_document(pool: &PgPool, uid: &str) -> String {
    sqlx::query_scalar("SELECT document::text FROM orders WHERE order_uid = $1")
        .bind(uid)
        .fetch_one(pool)
        .await
        .expect("the stored document")
}

/// Logs of the api on the test output when `TEST_LOG` is set.
fn init_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = service_kit::telemetry::init(LogFormat::Text);
        }
    });
}
