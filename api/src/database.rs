//! The api's connections to PostgreSQL: a small pool for reading orders and a connection of its own
//! for `LISTEN`. Both connect on first use, so that the api starts, and says it is not ready, while
//! the database is down.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

/// The `application_name` of the connections that read orders, as `pg_stat_activity` shows it.
pub const APPLICATION_NAME: &str = "orders-api";
/// The `application_name` of the connection that listens for new orders.
pub const LISTENER_APPLICATION_NAME: &str = "orders-api-listener";

/// How long one attempt to get a connection may take before it counts as a failure and the caller
/// backs off.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Database {
    /// Reads the orders table, and the dead letters for the admin listing. One reader at a time is
    /// all the api needs; the second connection covers a connection that is being replaced.
    pub reads: PgPool,
    /// Holds the single `LISTEN` connection, and gives `PgListener` a way to reconnect.
    pub listener: PgPool,
}

impl Database {
    pub fn connect_lazy(options: &PgConnectOptions) -> Database {
        let reads = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options.clone().application_name(APPLICATION_NAME));
        let listener = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // The connection is held for as long as the api runs: never recycle it.
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(options.clone().application_name(LISTENER_APPLICATION_NAME));
        Database { reads, listener }
    }

    /// Closes every connection, politely.
    pub async fn close(&self) {
        tokio::join!(self.reads.close(), self.listener.close());
    }
}
