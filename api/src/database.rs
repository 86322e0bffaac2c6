//! The api's connections to PostgreSQL: a small pool on the primary, a small pool for reading
//! orders (on a hot standby when one is configured, else the primary again) and a connection of
//! its own for `LISTEN`, on the primary, as a standby sends no notifications. All connect on first
//! use, so that the api starts, and says it is not ready, while the database is down.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

/// The `application_name` of the connections that read orders, as `pg_stat_activity` shows it.
pub const APPLICATION_NAME: &str = "orders-api";
/// The `application_name` of the connections that read orders from a standby.
pub const STANDBY_APPLICATION_NAME: &str = "orders-api-standby";
/// The `application_name` of the connection that listens for new orders.
pub const LISTENER_APPLICATION_NAME: &str = "orders-api-listener";

/// How long one attempt to get a connection may take before it counts as a failure and the caller
/// backs off.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Database {
    /// The primary: the dead letters for the admin listing, the highest committed `seq`, and the
    /// orders themselves when there is no standby (then it is the same pool as `orders`) or while
    /// the standby cannot be reached. One reader at a time is all the api needs; the second
    /// connection covers a connection that is being replaced.
    pub primary: PgPool,
    /// Where the orders are read from: the standby, or the primary.
    pub orders: PgPool,
    /// True when `orders` is a standby.
    pub standby: bool,
    /// Holds the single `LISTEN` connection, and gives `PgListener` a way to reconnect.
    pub listener: PgPool,
}

impl Database {
    /// The pools for the primary at `options`, reading orders from the standby at `standby` if
    /// one is given.
    pub fn connect_lazy(
        options: &PgConnectOptions,
        standby: Option<&PgConnectOptions>,
    ) -> Database {
        let readers = |options: &PgConnectOptions, name| {
            PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_lazy_with(options.clone().application_name(name))
        };
        let primary = readers(options, APPLICATION_NAME);
        let orders = match standby {
            Some(standby) => readers(standby, STANDBY_APPLICATION_NAME),
            None => primary.clone(),
        };
        let listener = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // The connection is held for as long as the api runs: never recycle it.
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(options.clone().application_name(LISTENER_APPLICATION_NAME));
        Database {
            primary,
            orders,
            standby: standby.is_some(),
            listener,
        }
    }

    /// Closes every connection, politely.
    pub async fn close(&self) {
        tokio::join!(
            self.primary.close(),
            self.orders.close(),
            self.listener.close()
        );
    }
}
