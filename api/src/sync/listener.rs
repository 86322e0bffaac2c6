//! The `LISTEN orders_stored` connection, turned into wake-ups for the reader and into what the
//! primary has committed.

use std::convert::Infallible;

use orders::db::NOTIFY_CHANNEL;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::Notify;

use service_kit::lifecycle::Backoff;

use super::committed::Committed;
use crate::metrics::Metrics;

/// Wakes the reader once `LISTEN` is in place, then after every notification and every
/// reconnection. Wake-ups that arrive while the reader is busy collapse into one.
///
/// Each time `LISTEN` is in place, `max(seq)` is read on the same connection: with the payloads of
/// the notifications that follow, `committed` then always knows every commit the primary has
/// made, which a replica reading a standby waits for.
pub async fn listen(
    pool: &PgPool,
    wake: &Notify,
    committed: &Committed,
    metrics: &Metrics,
) -> Infallible {
    let mut backoff = Backoff::new("listening for new orders");
    let mut listener = loop {
        match connect(pool, committed).await {
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
                // The payload is the commit's highest `seq`. The reader reads the table, not the
                // payload: the payload only says how far there is to read.
                tracing::debug!(seq = notification.payload(), "notified of new orders");
                if let Ok(seq) = notification.payload().parse::<i64>() {
                    committed.raise(seq);
                    metrics.committed_seq.set(committed.get());
                }
                wake.notify_one();
            }
            Ok(None) => {
                // sqlx has reconnected and issued LISTEN again. Should reading `max(seq)` fail,
                // the connection is gone again, and the next `try_recv()` says so.
                tracing::warn!("the LISTEN connection was lost and is back; catching up");
                metrics.listener_reconnects.inc();
                if level(&mut listener, committed, metrics).await.is_ok() {
                    backoff.succeeded();
                }
                wake.notify_one();
            }
            Err(error) => {
                backoff.failed(&error);
                backoff.pause().await;
                // Reconnect (and LISTEN again) now, so that the catch-up this triggers comes after
                // the LISTEN. If this fails too, the next `try_recv()` drops a dead connection and
                // tries again.
                if level(&mut listener, committed, metrics).await.is_ok() {
                    metrics.listener_reconnects.inc();
                    backoff.succeeded();
                    wake.notify_one();
                }
            }
        }
    }
}

async fn connect(pool: &PgPool, committed: &Committed) -> sqlx::Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    committed.raise(orders::db::max_seq(&mut listener).await?);
    Ok(listener)
}

/// Reads `max(seq)` on the `LISTEN` connection (connecting, and listening, again if it was lost):
/// every commit after it is notified.
async fn level(
    listener: &mut PgListener,
    committed: &Committed,
    metrics: &Metrics,
) -> sqlx::Result<()> {
    committed.raise(orders::db::max_seq(&mut *listener).await?);
    metrics.committed_seq.set(committed.get());
    Ok(())
}
