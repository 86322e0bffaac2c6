//! The consumer built from its settings: metrics listener, database pool, then the broker session
//! and the writer until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use poem::Server;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use service_kit::http::bind;
use service_kit::http::guard::GuardedAcceptor;
use service_kit::lifecycle::Backoff;

use crate::broker::{Link, SESSION_CLOSE_LIMIT};
use crate::gaps::Sweeper;
use crate::metrics::Metrics;
use crate::writer::Writer;
use crate::Settings;

/// How long a scrape in flight may take to finish once the ingestor stops.
const METRICS_GRACE: Duration = Duration::from_secs(1);
/// How long closing the database connections may take once the ingestor stops.
const POOL_CLOSE_LIMIT: Duration = Duration::from_secs(1);

/// A connected, migrated ingestor, ready to consume.
pub struct Application {
    settings: Settings,
    pool: PgPool,
    metrics: Arc<Metrics>,
    metrics_acceptor: GuardedAcceptor,
    metrics_address: SocketAddr,
}

impl Application {
    /// Binds the metrics listener (port 0 picks a free port), connects to Postgres, waiting for it
    /// if it is not up yet, and applies pending migrations.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let (metrics_acceptor, metrics_address) = bind(
            settings.metrics_addr,
            "for metrics (--metrics-addr, METRICS_ADDR)",
            settings.http.limits(),
        )
        .await?;
        let pool = connect(&settings.database.connect_options()).await;
        orders::MIGRATOR
            .run(&pool)
            .await
            .context("applying the database migrations")?;
        tracing::info!("database ready, migrations applied");
        Ok(Application {
            settings,
            pool,
            metrics: Arc::new(Metrics::new().with_connections(&metrics_acceptor.metrics())),
            metrics_acceptor,
            metrics_address,
        })
    }

    /// The address `/metrics` and `/healthz` are served on.
    pub fn metrics_address(&self) -> SocketAddr {
        self.metrics_address
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Consumes until `shutdown` completes; then finishes the batch in hand, commits and acks it,
    /// and closes the broker session without unsubscribing the durable. Each step is bounded, so it
    /// returns whatever the broker and the database do: what the writer has not committed within
    /// the shutdown grace stays unacked, and the broker redelivers it.
    // Past 60 lines: the shutdown sequence, step by step with its bound, is read in one place.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let s = &self.settings;
        let metrics_stop = CancellationToken::new();
        let metrics_server = tokio::spawn(
            Server::new_with_acceptor(self.metrics_acceptor).run_with_graceful_shutdown(
                crate::metrics::routes(self.metrics.clone()),
                metrics_stop.clone().cancelled_owned(),
                Some(METRICS_GRACE),
            ),
        );
        tracing::info!(address = %self.metrics_address, "serving /metrics");
        let capacity = usize::try_from(s.stan_max_in_flight).unwrap_or(1024);
        let (sender, receiver) = mpsc::channel(capacity);
        let sender_for_sweeper = sender.clone();
        let (drained, drained_rx) = oneshot::channel();
        let stop = CancellationToken::new();
        let consuming = s
            .transport()
            .start(Link {
                deliveries: sender,
                stop: stop.clone(),
                drained: drained_rx,
                metrics: self.metrics.clone(),
            })
            .context("starting the broker session")?;
        let archive = s.archive().context("starting the gap sweeper")?;
        let sweeper = Sweeper {
            pool: self.pool.clone(),
            channel: s.stan_channel.clone(),
            after: s.refetch_after(),
            deliveries: sender_for_sweeper,
            metrics: self.metrics.clone(),
        };
        let sweeping = tokio::spawn(sweeper.run(archive, stop.clone()));
        let writer = Writer {
            pool: self.pool.clone(),
            batch_max: usize::from(s.batch_max),
            stop: stop.clone(),
            metrics: self.metrics.clone(),
        };
        let mut writing = tokio::spawn(writer.run(receiver));

        tokio::select! {
            () = shutdown => tracing::info!("stopping: finishing the messages in hand"),
            _ = &mut writing => tracing::error!("the writer stopped unexpectedly"),
        }
        stop.cancel();
        // The sweeper ends at its next await, dropping its sender.
        let _ = sweeping.await;
        let grace = s.shutdown_grace();
        if tokio::time::timeout(grace, &mut writing).await.is_err() {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "the messages in hand were not committed within the shutdown grace; \
                 leaving them unacked for the broker to redeliver"
            );
            writing.abort();
            let _ = writing.await;
        }
        let _ = drained.send(());
        consuming.finished_within(SESSION_CLOSE_LIMIT).await;
        if tokio::time::timeout(POOL_CLOSE_LIMIT, self.pool.close())
            .await
            .is_err()
        {
            tracing::warn!("the database connections did not close in time");
        }
        metrics_stop.cancel();
        match metrics_server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the metrics server failed"),
            Err(e) => tracing::warn!(error = %e, "the metrics server task failed"),
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// A pool to `url`, retried with backoff until Postgres answers.
async fn connect(options: &PgConnectOptions) -> PgPool {
    let mut backoff = Backoff::new("connecting to the database");
    loop {
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await;
        match pool {
            Ok(pool) => {
                backoff.succeeded();
                return pool;
            }
            Err(e) => {
                backoff.failed(&e);
                backoff.pause().await;
            }
        }
    }
}
