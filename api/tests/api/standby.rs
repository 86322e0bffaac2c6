//! Reading the orders from a hot standby (`--database-read-url`) while `LISTEN` stays on the
//! primary: replicas converge, wait for a standby whose replay is paused, and read the primary
//! while the standby is down.

use reqwest::StatusCode;
use sqlx::postgres::PgConnectOptions;
use sqlx::ConnectOptions;
use testkit::{PrivatePostgres, PrivateStandby, TestDb};

use crate::helpers::{order_with_uid, settings, store, stored_document, TestApp, PATIENCE};
use crate::metrics::{metrics, sample};

/// A private primary with a database of the test's own, and a hot standby of it.
struct Replicated {
    // Dropped first: the standby streams from the primary.
    standby: PrivateStandby,
    db: TestDb,
    /// The test's database on the standby.
    standby_url: String,
    _primary: PrivatePostgres,
}

async fn replicated() -> Replicated {
    let primary = PrivatePostgres::start();
    let standby = primary.standby();
    let db = TestDb::on_server(&primary.url()).await;
    let options: PgConnectOptions = standby.url().parse().expect("a Postgres URL");
    let standby_url = options.database(&db.name).to_url_lossy().to_string();
    // The database and its tables are on the standby before an api reads it.
    standby.wait_replayed(PATIENCE).await;
    Replicated {
        standby,
        db,
        standby_url,
        _primary: primary,
    }
}

impl Replicated {
    /// An api whose reads go to the standby, not waiting for it to be ready.
    async fn start_api(&self, name: &str) -> TestApp {
        let mut settings = settings(&self.db.url);
        settings.database_read_url = Some(self.standby_url.clone().into());
        settings.replica_name = Some(name.to_string());
        TestApp::start(settings).await
    }

    async fn spawn_api(&self, name: &str) -> TestApp {
        let app = self.start_api(name).await;
        app.wait_until_ready().await;
        app
    }

    /// Stores orders `{prefix}-0` to `{prefix}-{count - 1}`, in batches of ten, on the primary.
    async fn store(&self, prefix: &str, count: usize) -> Vec<String> {
        let uids: Vec<String> = (0..count).map(|i| format!("{prefix}-{i}")).collect();
        for batch in uids.chunks(10) {
            let messages: Vec<Vec<u8>> = batch.iter().map(|uid| order_with_uid(uid)).collect();
            store(&self.db.pool, &messages).await;
        }
        uids
    }

    /// The api's connections to the test's database on the standby.
    async fn standby_readers(&self) -> i64 {
        let standby = sqlx::PgPool::connect(&self.standby_url)
            .await
            .expect("connect to the standby");
        let count = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
        )
        .bind(&self.db.name)
        .bind(api::database::STANDBY_APPLICATION_NAME)
        .fetch_one(&standby)
        .await
        .expect("count the standby's readers");
        standby.close().await;
        count
    }

    async fn seq_of(&self, uid: &str) -> i64 {
        sqlx::query_scalar("SELECT seq FROM orders WHERE order_uid = $1")
            .bind(uid)
            .fetch_one(&self.db.pool)
            .await
            .expect("the order's seq")
    }
}

/// A metric of the api (a name without labels).
async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = metrics(app).await;
    sample(&text, name).unwrap_or_else(|| panic!("{name} in\n{text}"))
}

async fn assert_serves_every_order(app: &TestApp, db: &TestDb, uids: &[String]) {
    for uid in uids {
        let response = app.get_order(uid).await;
        assert_eq!(response.status(), StatusCode::OK, "order {uid}");
        assert_eq!(
            response.text().await.unwrap(),
            stored_document(&db.pool, uid).await,
            "order {uid} byte for byte"
        );
    }
}

#[tokio::test]
async fn three_replicas_reading_a_standby_converge_on_every_order() {
    let replicated = replicated().await;
    let mut uids = replicated.store("before", 30).await;
    replicated.standby.wait_replayed(PATIENCE).await;
    let mut apps = Vec::new();
    for name in ["standby-a", "standby-b", "standby-c"] {
        apps.push(replicated.spawn_api(name).await);
    }
    uids.extend(replicated.store("after", 60).await);

    let last = uids.last().unwrap();
    for app in &apps {
        app.wait_until_served(last).await;
        assert_serves_every_order(app, &replicated.db, &uids).await;
        assert_eq!(
            metric(app, "api_orders_standby_fallbacks_total").await,
            0.0,
            "every read went to the standby"
        );
    }
    assert!(
        replicated.standby_readers().await >= 3,
        "each replica reads the standby"
    );
    for app in apps {
        app.stop().await;
    }
}

#[tokio::test]
async fn replicas_wait_for_a_paused_standby_and_catch_up_when_it_resumes() {
    let replicated = replicated().await;
    let before = replicated.store("before", 10).await;
    replicated.standby.wait_replayed(PATIENCE).await;
    let apps = [
        replicated.spawn_api("paused-a").await,
        replicated.spawn_api("paused-b").await,
    ];
    let read_up_to = replicated.seq_of(before.last().unwrap()).await as f64;

    replicated.standby.pause_replay().await;
    let during = replicated.store("during", 30).await;
    replicated.standby.wait_received(PATIENCE).await;

    let committed = replicated.seq_of(during.last().unwrap()).await as f64;
    for app in &apps {
        // Notified of the commits, each replica finds the standby short of them, and says so.
        testkit::wait_until(
            "the replica to see the standby behind",
            PATIENCE,
            || async { metric(app, "api_orders_standby_lag_seq").await > 0.0 },
        )
        .await;
        assert_eq!(metric(app, "api_orders_committed_seq").await, committed);
        assert_eq!(
            metric(app, "api_orders_cache_watermark_seq").await,
            read_up_to,
            "the watermark stays at what the standby showed"
        );
        assert_eq!(
            app.get_order(&during[0]).await.status(),
            StatusCode::NOT_FOUND
        );
        assert_serves_every_order(app, &replicated.db, &before).await;
    }

    replicated.standby.resume_replay().await;
    for app in &apps {
        app.wait_until_served(during.last().unwrap()).await;
        assert_serves_every_order(app, &replicated.db, &during).await;
        assert_eq!(metric(app, "api_orders_standby_lag_seq").await, 0.0);
        assert_eq!(metric(app, "api_orders_standby_fallbacks_total").await, 0.0);
    }
    for app in apps {
        app.stop().await;
    }
}

#[tokio::test]
async fn an_api_reading_a_standby_behind_the_primary_is_ready_only_once_the_standby_caught_up() {
    let replicated = replicated().await;
    replicated.standby.pause_replay().await;
    let uids = replicated.store("unreplayed", 20).await;
    replicated.standby.wait_received(PATIENCE).await;

    let app = replicated.start_api("late").await;
    testkit::wait_until("the api to see the standby behind", PATIENCE, || async {
        metric(&app, "api_orders_standby_lag_seq").await > 0.0
    })
    .await;
    assert_eq!(
        app.get("/readyz").await.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "not ready with less than the primary had committed"
    );

    replicated.standby.resume_replay().await;
    app.wait_until_ready().await;
    assert_serves_every_order(&app, &replicated.db, &uids).await;
    app.stop().await;
}

#[tokio::test]
async fn with_the_standby_stopped_the_api_reads_the_primary_and_returns_to_the_standby() {
    let replicated = replicated().await;
    let mut uids = replicated.store("before", 10).await;
    replicated.standby.wait_replayed(PATIENCE).await;
    let app = replicated.spawn_api("fallback").await;

    replicated.standby.stop();
    uids.extend(replicated.store("while-down", 10).await);
    app.wait_until_served(uids.last().unwrap()).await;
    assert_serves_every_order(&app, &replicated.db, &uids).await;
    assert!(metric(&app, "api_orders_standby_fallbacks_total").await >= 1.0);

    // One that starts while the standby is down becomes ready from the primary.
    let late = replicated.spawn_api("started-while-down").await;
    assert_serves_every_order(&late, &replicated.db, &uids).await;

    replicated.standby.resume();
    // Each new order wakes the replicas; once the standby has rested, they read it again.
    let mut more = 0;
    testkit::wait_until(
        "the replicas to read the standby again",
        PATIENCE * 2,
        || {
            more += 1;
            let uid = format!("after-{more}");
            let replicated = &replicated;
            async move {
                store(&replicated.db.pool, &[order_with_uid(&uid)]).await;
                replicated.standby_readers().await >= 2
            }
        },
    )
    .await;
    let last = format!("after-{more}");
    for app in [&app, &late] {
        app.wait_until_served(&last).await;
    }
    app.stop().await;
    late.stop().await;
}
