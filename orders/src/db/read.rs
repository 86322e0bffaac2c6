//! The api's reads of the orders table: the orders above a watermark, and the highest `seq`; for
//! the bounded cache, one order by id, every id, and the latest orders newest first.

use sqlx::{PgExecutor, Row};
use tokio_stream::StreamExt;

/// An order as the api caches it: its place in the table and its document.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredOrder {
    pub seq: i64,
    pub order_uid: String,
    pub document: String,
}

const ORDERS_AFTER: &str = "SELECT seq, order_uid, document::text AS document
     FROM orders WHERE seq > $1 ORDER BY seq LIMIT $2";

/// Up to `limit` orders with `seq` above `after`, oldest first.
#[tracing::instrument(skip_all, fields(after = after, limit = limit))]
pub async fn orders_after(
    db: impl PgExecutor<'_>,
    after: i64,
    limit: i64,
) -> sqlx::Result<Vec<StoredOrder>> {
    sqlx::query_as(ORDERS_AFTER)
        .bind(after)
        .bind(limit)
        .fetch_all(db)
        .await
}

/// The same orders as [`orders_after`], each handed to `each` as `(seq, order_uid, document)`
/// while its row is in hand, so that the caller copies the document where it keeps it, once,
/// instead of into a `String` of its own first. Returns how many.
#[tracing::instrument(skip_all, fields(after = after, limit = limit))]
pub async fn each_order_after(
    db: impl PgExecutor<'_>,
    after: i64,
    limit: i64,
    mut each: impl FnMut(i64, &str, &str),
) -> sqlx::Result<usize> {
    let mut rows = sqlx::query(ORDERS_AFTER).bind(after).bind(limit).fetch(db);
    let mut count = 0;
    while let Some(row) = rows.next().await {
        let row = row?;
        each(row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        count += 1;
    }
    Ok(count)
}

/// The stored document of the order `order_uid`, as text, if there is one: one probe of the
/// primary key.
#[tracing::instrument(skip_all)]
pub async fn order_document(
    db: impl PgExecutor<'_>,
    order_uid: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT document::text FROM orders WHERE order_uid = $1")
        .bind(order_uid)
        .fetch_optional(db)
        .await
}

/// Up to `limit` of the orders with `seq` above `after`, oldest first, each handed to `each` as
/// `(seq, order_uid)`, without its document. Returns how many.
#[tracing::instrument(skip_all, fields(after = after, limit = limit))]
pub async fn each_order_uid_after(
    db: impl PgExecutor<'_>,
    after: i64,
    limit: i64,
    mut each: impl FnMut(i64, &str),
) -> sqlx::Result<usize> {
    let mut rows =
        sqlx::query("SELECT seq, order_uid FROM orders WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch(db);
    let mut count = 0;
    while let Some(row) = rows.next().await {
        let row = row?;
        each(row.try_get(0)?, row.try_get(1)?);
        count += 1;
    }
    Ok(count)
}

/// Up to `limit` of the orders with `seq` at or below `at_most`, newest first, each handed to
/// `each` as `(seq, order_uid, document)` until it returns `false`. Returns how many it was
/// handed: `limit` if there may be more.
#[tracing::instrument(skip_all, fields(at_most = at_most, limit = limit))]
pub async fn each_order_newest_first(
    db: impl PgExecutor<'_>,
    at_most: i64,
    limit: i64,
    mut each: impl FnMut(i64, &str, &str) -> bool,
) -> sqlx::Result<usize> {
    let mut rows = sqlx::query(
        "SELECT seq, order_uid, document::text AS document
         FROM orders WHERE seq <= $1 ORDER BY seq DESC LIMIT $2",
    )
    .bind(at_most)
    .bind(limit)
    .fetch(db);
    let mut count = 0;
    while let Some(row) = rows.next().await {
        let row = row?;
        count += 1;
        if !each(row.try_get(0)?, row.try_get(1)?, row.try_get(2)?) {
            break;
        }
    }
    Ok(count)
}

/// The highest `seq` stored, 0 when there is none: one step down the unique index on `seq`.
pub async fn max_seq(db: impl PgExecutor<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM orders")
        .fetch_one(db)
        .await
}
