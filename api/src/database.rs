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
/// The `application_name` of the connections that read, one by one, the orders a bounded cache
/// does not hold. They connect on the first such read.
pub const LOADS_APPLICATION_NAME: &str = "orders-api-loads";
/// The most loads of orders in flight at once: distinct ids (one id is read once however many ask
/// for it), each a lookup by primary key of well under a millisecond.
const LOAD_CONNECTIONS: u32 = 4;
/// The `application_name` of the connection that listens for new orders.
pub const LISTENER_APPLICATION_NAME: &str = "orders-api-listener";

/// How long one attempt to get a connection may take before it counts as a failure and the caller
/// backs off.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// The same for the read of an order a request waits for: a database that takes longer to give a
/// connection (one that is restarting, say) gets the request a 503, not a client's timeout.
const LOAD_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Database {
    /// The primary: the dead letters for the admin listing, the highest committed `seq`, and the
    /// orders themselves when there is no standby (then it is the same pool as `orders`) or while
    /// the standby cannot be reached. One reader at a time is all the api needs; the second
    /// connection covers a connection that is being replaced.
    pub primary: PgPool,
    /// Where the orders are read from: the standby, or the primary.
    pub orders: PgPool,
    /// Where a bounded cache reads the orders it does not hold, one by one: the same database as
    /// `orders`, with connections of its own, so that a request never waits behind a catch-up.
    pub loads: PgPool,
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
        let pool = |options: &PgConnectOptions, name, connections, timeout| {
            PgPoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(timeout)
                .connect_lazy_with(options.clone().application_name(name))
        };
        let primary = pool(options, APPLICATION_NAME, 2, ACQUIRE_TIMEOUT);
        let (orders, loads) = match standby {
            Some(standby) => (
                pool(standby, STANDBY_APPLICATION_NAME, 2, ACQUIRE_TIMEOUT),
                pool(
                    standby,
                    LOADS_APPLICATION_NAME,
                    LOAD_CONNECTIONS,
                    LOAD_TIMEOUT,
                ),
            ),
            None => (
                primary.clone(),
                pool(
                    options,
                    LOADS_APPLICATION_NAME,
                    LOAD_CONNECTIONS,
                    LOAD_TIMEOUT,
                ),
            ),
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
            loads,
            standby: standby.is_some(),
            listener,
        }
    }

    /// Pools on a port where nothing listens, for unit tests that must not reach a database: each
    /// attempt fails within 100 ms.
    #[cfg(test)]
    pub(crate) fn unreachable() -> Database {
        let pool = PgPoolOptions::new()
            .acquire_timeout(Duration::from_millis(100))
            .connect_lazy("postgres://nobody@127.0.0.1:1/nothing")
            .expect("a well-formed URL");
        Database {
            primary: pool.clone(),
            orders: pool.clone(),
            loads: pool.clone(),
            standby: false,
            listener: pool,
        }
    }

    /// Closes every connection, politely.
    pub async fn close(&self) {
        tokio::join!(
            self.primary.close(),
            self.orders.close(),
            self.loads.close(),
            self.listener.close()
        );
    }
}
