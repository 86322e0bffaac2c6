//! A fresh database per test, with the migrations applied, on the shared test server.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

/// A fresh database with the migrations applied, on the shared test server.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
}

impl TestDb {
    /// The server every test shares: `TEST_DATABASE_URL`, as set by `scripts/test`.
    pub fn server_url() -> String {
        crate::env_or(
            "TEST_DATABASE_URL",
            "postgres://postgres@127.0.0.1:15433/postgres",
        )
    }

    pub async fn new() -> TestDb {
        Self::on_server(&Self::server_url()).await
    }

    /// A fresh, migrated database on the server at `server_url`.
    pub async fn on_server(server_url: &str) -> TestDb {
        let name = crate::unique_name("test");
        let mut admin = PgConnection::connect(server_url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach the test Postgres at {server_url} (run the tests with scripts/test): {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let db = Self::reopen(server_url, &name).await;
        orders::MIGRATOR
            .run(&db.pool)
            .await
            .expect("migrate the test database");
        db
    }

    /// The existing database `name` on the server at `server_url`, for example after a restart.
    pub async fn reopen(server_url: &str, name: &str) -> TestDb {
        let options: PgConnectOptions = server_url.parse().expect("a Postgres URL");
        let options = options.database(name);
        let url = options.to_url_lossy().to_string();
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .expect("connect to the test database");
        TestDb {
            name: name.to_string(),
            url,
            pool,
        }
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.pool)
            .await
            .expect("count rows")
    }
}
