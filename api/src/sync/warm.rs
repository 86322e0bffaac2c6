//! The bounded cache's warm-up: every stored id, and the latest documents that fit the budget.
//!
//! Both are read at once, each on one of the pool's two connections. The documents are the
//! latest at or below the highest `seq` committed when the warm-up starts, read newest first
//! until the next one would not fit: the latest orders are the ones most likely asked for. The ids
//! are every id in `seq` order, up to that `seq` and beyond (orders stored meanwhile), and the
//! watermark is the highest `seq` among them: every order up to it has its id in the set, the
//! documents held are all below it, and the catch-ups that follow read from there. The documents
//! are offered oldest first, so that the newest are the last the policy evicts.
//!
//! Ids are far less to read than documents: with a budget smaller than the table, the warm-up reads
//! less than the unbounded cache's, which reads every document.

use std::time::Instant;

use bytes::Bytes;
use sqlx::PgPool;

use crate::cache::{weight, KnownIds, OrderCache, ENTRY_OVERHEAD};
use crate::metrics::Metrics;

/// How many ids one read fetches at most (a row is a few dozen bytes).
const ID_PAGE: i64 = 100_000;
/// How many documents one read fetches at most.
const DOCUMENT_PAGE: i64 = 10_000;
/// The most ids the list makes room for ahead: `max(seq)` bounds how many there are (a rolled-back
/// insert leaves a gap), and a bound this far above any real table keeps a freak gap from
/// reserving memory for nothing.
const MAX_RESERVE: i64 = 100_000_000;

/// Loads every stored id and the latest documents within the budget into `cache`, and leaves its
/// watermark at the highest `seq` read. Does nothing for an unbounded cache. On an error the cache
/// knows nothing new, and the warm-up can run again.
#[tracing::instrument(skip_all)]
pub async fn warm_up(pool: &PgPool, cache: &OrderCache, metrics: &Metrics) -> sqlx::Result<()> {
    let Some(budget) = cache.max_bytes() else {
        return Ok(());
    };
    let started = Instant::now();
    let newest = orders::db::max_seq(pool).await?;
    // On a task of its own, so that its rows are decoded while this task decodes the ids'.
    let documents = tokio::spawn(latest_documents(pool.clone(), newest, budget));
    let ids = read_ids(pool, newest).await;
    let (documents, bytes) = match documents.await {
        Ok(documents) => documents?,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Cancelled: only when the runtime shuts down.
        Err(_) => return Err(sqlx::Error::WorkerCrashed),
    };
    let known = ids?;
    let watermark = known.watermark();
    cache.install(known);
    let held = documents.len();
    cache.hold(documents.into_iter().rev());
    metrics.cache_watermark.set(watermark);
    metrics
        .cache_orders
        .set(i64::try_from(cache.len()).unwrap_or(i64::MAX));
    tracing::info!(
        ids = cache.len(),
        documents = held,
        document_bytes = bytes,
        budget_bytes = budget,
        watermark,
        duration_ms = started.elapsed().as_millis() as u64,
        "loaded every stored id and the latest documents"
    );
    Ok(())
}

/// Every stored id, in `seq` order: at least up to `newest`. Sorted for the set while the documents
/// are still being read.
async fn read_ids(pool: &PgPool, newest: i64) -> sqlx::Result<KnownIds> {
    let mut known = KnownIds::new();
    known.reserve(usize::try_from(newest.clamp(0, MAX_RESERVE)).unwrap_or(0));
    loop {
        let after = known.watermark();
        let read =
            orders::db::each_order_uid_after(pool, after, ID_PAGE, |seq, uid| known.push(seq, uid))
                .await?;
        if read < ID_PAGE as usize {
            known.sort();
            return Ok(known);
        }
    }
}

/// The latest orders at or below `newest`, newest first, as many as fit `budget` bytes by
/// [`weight`], as `(order_uid, document)` with each document in an allocation of its own; and
/// their weight.
async fn latest_documents(
    pool: PgPool,
    newest: i64,
    budget: u64,
) -> sqlx::Result<(Vec<(String, Bytes)>, u64)> {
    // No page asks for more rows than could fit, so that a small budget reads little.
    let fit = i64::try_from(budget / ENTRY_OVERHEAD).unwrap_or(i64::MAX);
    let limit = DOCUMENT_PAGE.min(fit.saturating_add(1));
    let mut documents = Vec::new();
    let mut total = 0;
    let mut at_most = newest;
    let mut full = false;
    while !full && at_most > 0 {
        let mut last = at_most;
        let read =
            orders::db::each_order_newest_first(&pool, at_most, limit, |seq, uid, document| {
                let weight = weight(uid.len(), document.len());
                if total + weight > budget {
                    full = true;
                    return false;
                }
                total += weight;
                last = seq;
                documents.push((uid.to_string(), Bytes::copy_from_slice(document.as_bytes())));
                true
            })
            .await?;
        if read < limit as usize {
            break;
        }
        at_most = last - 1;
    }
    Ok((documents, total))
}
