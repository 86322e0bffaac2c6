//! The api's reads of the orders table: the orders above a watermark, and the highest `seq`.

use sqlx::PgExecutor;

/// An order as the api caches it: its place in the table and its document.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredOrder {
    pub seq: i64,
    pub order_uid: String,
    pub document: String,
}

/// Up to `limit` orders with `seq` above `after`, oldest first.
#[tracing::instrument(skip_all, fields(after = after, limit = limit))]
pub async fn orders_after(
    db: impl PgExecutor<'_>,
    after: i64,
    limit: i64,
) -> sqlx::Result<Vec<StoredOrder>> {
    sqlx::query_as(
        "SELECT seq, order_uid, document::text AS document
         FROM orders WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The highest `seq` stored, 0 when there is none: one step down the unique index on `seq`.
pub async fn max_seq(db: impl PgExecutor<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM orders")
        .fetch_one(db)
        .await
}
