//! Keeps the cache current with the orders table.
//!
//! The listener (`listener.rs`) turns each `NOTIFY orders_stored`, and each reconnection, into a
//! wake-up; the reader (`keep_current`) then reads every order above the cache's watermark.
//! A notification is a wake-up only: its payload is not trusted as data. Because writers make
//! their rows visible in `seq` order, reading "everything above the watermark" never skips a row.
//!
//! Start-up: the listener's `LISTEN` comes first, then the warm-up read, so that no commit can fall
//! between the two unnoticed. A periodic read bounds how stale the cache can be should a wake-up
//! ever be lost.
//!
//! With a hot standby (`--database-read-url`), the reads go to the standby and `LISTEN` stays on
//! the primary (`standby.rs`). The listener then also tells how far the primary has committed
//! (`committed.rs`); a read that comes back short of it is repeated until the standby has
//! replayed that far, and the api becomes ready only once it holds every order the primary had
//! committed when `LISTEN` was in place.

mod committed;
mod listener;
mod standby;
mod warm;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::Notify;

use self::committed::Committed;
use self::standby::{Lag, Next, Reader};
use crate::cache::{OrderCache, Page};
use crate::database::Database;
use crate::metrics::Metrics;
use service_kit::lifecycle::Backoff;

/// How many orders one read fetches at most.
const PAGE_SIZE: i64 = 10_000;
/// The most orders the cache makes room for ahead of a long catch-up: `max(seq)` bounds the
/// orders still to read from above (a rolled-back insert leaves a gap in `seq`), and a bound this
/// far above any real table keeps a freak gap from reserving memory for nothing.
const MAX_RESERVE: i64 = 100_000_000;

/// Runs until the task is aborted: it handles every failure itself, retrying with backoff.
pub async fn run(
    db: Database,
    cache: Arc<OrderCache>,
    metrics: Arc<Metrics>,
    catch_up_interval: Duration,
) -> Infallible {
    let wake = Notify::new();
    let committed = Committed::default();
    let reader = Reader::new(db.clone());
    tokio::select! {
        never = listener::listen(&db.listener, &wake, &committed, &metrics) => never,
        never = keep_current(reader, &cache, &metrics, &wake, &committed, catch_up_interval) => never,
    }
}

async fn keep_current(
    mut reader: Reader,
    cache: &OrderCache,
    metrics: &Metrics,
    wake: &Notify,
    committed: &Committed,
    catch_up_interval: Duration,
) -> Infallible {
    // The first wake-up says that the LISTEN is in place: from now on no commit goes unnoticed,
    // and `committed` holds what the primary had committed by then.
    tracing::info!("waiting for the LISTEN connection before loading the stored orders");
    wake.notified().await;
    let ready_at = committed.get();
    let started = Instant::now();
    let mut backoff = Backoff::new("reading new orders");
    let mut lag = Lag::default();
    // A bounded cache first loads every id and the latest documents (see `warm.rs`); it can run
    // again after a failure, as nothing changes in the cache until it has read everything.
    while cache.is_bounded() {
        let warmed = reader
            .read(metrics, |pool| async move {
                warm::warm_up(&pool, cache, metrics).await
            })
            .await;
        match warmed {
            Ok(()) => break,
            Err(error) => {
                backoff.failed(&error);
                backoff.pause().await;
            }
        }
    }
    loop {
        let reading = Instant::now();
        let read = reader
            .read(metrics, |pool| catch_up(pool, cache, metrics))
            .await;
        let next = match read {
            Ok(read) => {
                backoff.succeeded();
                metrics.catch_ups.inc();
                let watermark = cache.watermark();
                metrics.committed_seq.set(committed.get());
                let next = lag.observe(reader.has_standby(), watermark, committed.get(), metrics);
                if next != Next::Wait && lag.check_target() {
                    check_target(&reader, committed).await;
                }
                if !cache.is_ready() {
                    // Every order the primary had committed when LISTEN was in place (less, if
                    // that claim was corrected since).
                    if watermark >= ready_at.min(committed.get()) {
                        cache.mark_ready();
                        tracing::info!(
                            orders = cache.len(),
                            watermark,
                            duration_ms = started.elapsed().as_millis() as u64,
                            "loaded the stored orders: ready"
                        );
                    }
                } else if read > 0 {
                    tracing::debug!(
                        orders = read,
                        watermark,
                        read_us = reading.elapsed().as_micros() as u64,
                        "applied new orders"
                    );
                }
                next
            }
            Err(error) => {
                backoff.failed(&error);
                backoff.pause().await;
                continue;
            }
        };
        let pause = match next {
            Next::Wait => catch_up_interval,
            Next::Poll(pause) => pause.min(catch_up_interval),
        };
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Asks the primary whether the commit a lagging reader waits for is real (any role may send a
/// notification, with any payload), and corrects the target if it is not.
async fn check_target(reader: &Reader, committed: &Committed) {
    let claimed = committed.get();
    match orders::db::max_seq(reader.primary()).await {
        Ok(primary) => {
            if primary < claimed {
                tracing::warn!(
                    claimed,
                    primary,
                    "a notification claimed a commit the primary does not have: ignoring it"
                );
            }
            committed.correct(claimed, primary);
        }
        Err(error) => {
            tracing::debug!(%error, "could not ask the primary how far it has committed");
        }
    }
}

/// Reads every order above the watermark into the cache, page by page; returns how many.
///
/// A wake-up after a commit is one query: a page that is not full holds every order visible when it
/// was read, so the cache is then level with the table. While whole pages come (a warm-up, or a
/// long outage), the next page is read while the last one is applied, on the pool's second
/// connection, so that Postgres and the api work at the same time; `max(seq)` is read too, so that
/// the metrics show how far behind the cache is, and so that the map makes room for the rest of a
/// long catch-up once, after its first page.
async fn catch_up(pool: PgPool, cache: &OrderCache, metrics: &Metrics) -> sqlx::Result<usize> {
    let mut read = 0;
    let mut page = read_page(pool.clone(), cache.watermark()).await?;
    loop {
        let count = page.len();
        let full = count == PAGE_SIZE as usize;
        let next = match page.last_seq() {
            Some(last) if full => Some(tokio::spawn(read_page(pool.clone(), last))),
            _ => None,
        };
        cache.apply(page);
        let watermark = cache.watermark();
        let lag = if full {
            orders::db::max_seq(&pool)
                .await?
                .saturating_sub(watermark)
                .max(0)
        } else {
            0
        };
        if read == 0 && lag > PAGE_SIZE {
            // The first whole page of a long catch-up: make room for the rest in one step.
            cache.reserve(usize::try_from(lag.min(MAX_RESERVE)).unwrap_or(0));
        }
        metrics.cache_watermark.set(watermark);
        metrics.cache_lag.set(lag);
        metrics
            .cache_orders
            .set(i64::try_from(cache.len()).unwrap_or(i64::MAX));
        read += count;
        let Some(next) = next else {
            return Ok(read);
        };
        page = match next.await {
            Ok(page) => page?,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled: only when the runtime shuts down.
            Err(_) => return Err(sqlx::Error::WorkerCrashed),
        };
    }
}

/// Up to a page of the orders above `after`.
async fn read_page(pool: PgPool, after: i64) -> sqlx::Result<Page> {
    let mut page = Page::new();
    orders::db::each_order_after(&pool, after, PAGE_SIZE, |seq, uid, document| {
        page.push(seq, uid, document)
    })
    .await?;
    Ok(page)
}
