//! The `LISTEN orders_stored` connection, turned into wake-ups for the reader.

use std::convert::Infallible;

use orders::db::NOTIFY_CHANNEL;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::Notify;

use service_kit::lifecycle::Backoff;

use crate::metrics::Metrics;

/// Wakes the reader once `LISTEN` is in place, then after every notification and every
/// reconnection. Wake-ups that arrive while the reader is busy collapse into one.
pub async fn listen(pool: &PgPool, wake: &Notify, metrics: &Metrics) -> Infallible {
    let mut backoff = Backoff::new("listening for new orders");
    let mut listener = loop {
        match connect(pool).await {
            Ok(listener) => break listener,
            Err(error) => {
                backoff.failed(&error);
                backoff.pause().await;
            }
        }
    };
    backoff.succeeded();
    tracing::info!(channel = NOTIFY_CHANNEL, "listening for new orders");
    wake.notify_one();

    // `recv()` would reconnect silently and lose the notifications sent meanwhile; `try_recv()`
    // says when that happens, so the reader can catch up.
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                // The payload is the commit's highest `seq`: logged for tracing freshness only.
                tracing::debug!(seq = notification.payload(), "notified of new orders");
                wake.notify_one();
            }
            Ok(None) => {
                // sqlx has reconnected and issued LISTEN again.
                tracing::warn!("the LISTEN connection was lost and is back; catching up");
                metrics.listener_reconnects.inc();
                backoff.succeeded();
                wake.notify_one();
            }
            Err(error) => {
                backoff.failed(&error);
                backoff.pause().await;
                // Reconnect (and LISTEN again) now, so that the catch-up this triggers comes after
                // the LISTEN. If this fails too, the next `try_recv()` drops a dead connection and
                // tries again.
                if sqlx::query("SELECT 1").execute(&mut listener).await.is_ok() {
                    metrics.listener_reconnects.inc();
                    backoff.succeeded();
                    wake.notify_one();
                }
            }
        }
    }
}

async fn connect(pool: &PgPool) -> sqlx::Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    Ok(listener)
}
