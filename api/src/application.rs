//! The api as one value: built from settings, run until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use poem::http::HeaderValue;
use poem::Server;
use service_kit::http::bind;
use service_kit::http::guard::GuardedAcceptor;

use crate::cache::OrderCache;
use crate::database::Database;
use crate::http::AdminToken;
use crate::metrics::Metrics;
use crate::settings::Settings;

pub struct Application {
    acceptor: GuardedAcceptor,
    address: SocketAddr,
    database: Database,
    database_description: String,
    standby_description: Option<String>,
    catch_up_interval: Duration,
    cache_max_bytes: Option<u64>,
    shutdown_grace: Duration,
    admin_token: Option<AdminToken>,
    replica_name: String,
    served_by: HeaderValue,
}

impl Application {
    /// Binds the HTTP listener (port 0 picks a free port) and prepares the database pools. Does not
    /// wait for the database: the api starts without it and becomes ready when it can read.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let (acceptor, address) = bind(
            settings.api_addr,
            "(--api-addr, API_ADDR)",
            settings.http.limits(),
        )
        .await?;
        let replica_name = settings.replica_name();
        Ok(Application {
            acceptor,
            address,
            database: Database::connect_lazy(
                &settings.database.connect_options(),
                settings
                    .database_read()
                    .map(|standby| standby.connect_options())
                    .as_ref(),
            ),
            database_description: settings.database.describe(),
            standby_description: settings.database_read().map(|standby| standby.describe()),
            catch_up_interval: settings.catch_up_interval,
            cache_max_bytes: settings.cache_max_bytes,
            shutdown_grace: settings.shutdown_grace,
            served_by: crate::http::served_by_header(&replica_name),
            replica_name,
            admin_token: settings.admin_token,
        })
    }

    /// The address the HTTP server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves HTTP and keeps the cache current until `shutdown` completes; then stops accepting
    /// connections and lets the requests in flight finish (within the shutdown grace period).
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tracing::info!(
            address = %self.address,
            replica = %self.replica_name,
            database = %self.database_description,
            standby = self.standby_description.as_deref().unwrap_or("none"),
            cache = if self.cache_max_bytes.is_some() { "bounded" } else { "unbounded" },
            cache_max_bytes = self.cache_max_bytes,
            dead_letter_listing = if self.admin_token.is_some() { "enabled" } else { "disabled" },
            "starting"
        );
        let metrics = Arc::new(Metrics::new().with_connections(&self.acceptor.metrics()));
        let cache = Arc::new(match self.cache_max_bytes {
            Some(max_bytes) => {
                OrderCache::bounded(max_bytes, self.database.clone(), metrics.cache.clone())
            }
            None => OrderCache::new(),
        });
        let mut sync = tokio::spawn(crate::sync::run(
            self.database.clone(),
            cache.clone(),
            metrics.clone(),
            self.catch_up_interval,
        ));
        // The event streams never end by themselves: they are told to when the shutdown comes,
        // so that the server's graceful shutdown does not wait its whole grace for them.
        let (closing, streams_closing) = tokio::sync::watch::channel(false);
        let shutdown = async move {
            shutdown.await;
            closing.send_replace(true);
        };
        let server = Server::new_with_acceptor(self.acceptor).run_with_graceful_shutdown(
            crate::http::routes(
                cache,
                self.database.primary.clone(),
                self.admin_token,
                metrics,
                self.served_by,
                streams_closing,
            ),
            shutdown,
            Some(self.shutdown_grace),
        );
        let served = tokio::select! {
            served = server => served.context("the HTTP server failed"),
            stopped = &mut sync => match stopped {
                Ok(never) => match never {},
                Err(e) => Err(anyhow::anyhow!("the task that keeps the cache current died: {e}")),
            },
        };
        sync.abort();
        let _ = sync.await;
        self.database.close().await;
        tracing::info!("stopped");
        served
    }
}
