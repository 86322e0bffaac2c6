//! Every acknowledged valid order stored exactly once: in `orders`, whole (its delivery, payment
//! and items), and nowhere in `order_conflicts`; and the stored orders as the other checks need
//! them, with the moment each was committed.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::{Acked, Check};
use crate::soak::files::fnv1a;

/// A stored order, as the checks of the answers need it.
pub struct Stored {
    /// [`fnv1a`] of its document.
    pub hash: u64,
    /// When its transaction committed (`pg_xact_commit_timestamp`, PostgreSQL runs with
    /// `track_commit_timestamp`), or, without that, `stored_at`: the transaction's start.
    pub commit_ms: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct StoredFigures {
    pub acked: u64,
    pub stored: u64,
    /// Acknowledged, not stored.
    pub missing: u64,
    /// Stored, never acknowledged (a publish whose ack was lost, then given up: none when the
    /// publisher succeeded).
    pub not_acked: u64,
    /// Rows of `order_conflicts`: another version of a stored id. Must be none.
    pub conflicts: u64,
    /// Orders without their delivery, their payment or any item.
    pub incomplete: u64,
    /// Whether the commit times are the commits' own (`track_commit_timestamp`).
    pub commit_timestamps: bool,
}

const PAGE: i64 = 10_000;

/// Every stored order by id.
pub async fn read(pool: &PgPool) -> anyhow::Result<HashMap<String, Stored>> {
    let tracked: String = sqlx::query_scalar("SHOW track_commit_timestamp")
        .fetch_one(pool)
        .await?;
    let committed = if tracked == "on" {
        "coalesce(pg_xact_commit_timestamp(xmin), stored_at)"
    } else {
        "stored_at"
    };
    let query = format!(
        "SELECT seq, order_uid, document::text,
                (extract(epoch FROM {committed}) * 1000)::int8
         FROM orders WHERE seq > $1 ORDER BY seq LIMIT $2"
    );
    let mut stored = HashMap::new();
    let mut after = 0i64;
    loop {
        let page: Vec<(i64, String, String, i64)> = sqlx::query_as(&query)
            .bind(after)
            .bind(PAGE)
            .fetch_all(pool)
            .await?;
        let Some(last) = page.last() else {
            return Ok(stored);
        };
        after = last.0;
        for (_, uid, document, commit_ms) in page {
            let hash = fnv1a(document.as_bytes());
            stored.insert(uid, Stored { hash, commit_ms });
        }
    }
}

pub async fn check(
    pool: &PgPool,
    acked: &Acked,
    stored: &HashMap<String, Stored>,
    checks: &mut Vec<Check>,
) -> anyhow::Result<StoredFigures> {
    let acked_ids: HashSet<&str> = acked.valid.iter().map(String::as_str).collect();
    let missing: Vec<&str> = acked
        .valid
        .iter()
        .map(String::as_str)
        .filter(|id| !stored.contains_key(*id))
        .collect();
    let not_acked = stored
        .keys()
        .filter(|id| !acked_ids.contains(id.as_str()))
        .count();
    let (conflicts, incomplete, tracked): (i64, i64, String) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM order_conflicts),
                (SELECT count(*) FROM orders o
                 WHERE NOT EXISTS (SELECT FROM deliveries d WHERE d.order_uid = o.order_uid)
                    OR NOT EXISTS (SELECT FROM payments p WHERE p.order_uid = o.order_uid)
                    OR NOT EXISTS (SELECT FROM items i WHERE i.order_uid = o.order_uid)),
                current_setting('track_commit_timestamp')",
    )
    .fetch_one(pool)
    .await?;
    let figures = StoredFigures {
        acked: acked.valid.len() as u64,
        stored: stored.len() as u64,
        missing: missing.len() as u64,
        not_acked: not_acked as u64,
        conflicts: conflicts as u64,
        incomplete: incomplete as u64,
        commit_timestamps: tracked == "on",
    };
    let distinct = acked_ids.len() == acked.valid.len();
    checks.push(Check::new(
        "every acknowledged order stored exactly once",
        missing.is_empty() && conflicts == 0 && incomplete == 0 && distinct,
        format!(
            "{} acknowledged{}, {} stored; {} missing{}, {conflicts} in order_conflicts, \
             {incomplete} without their parts, {not_acked} stored but never acknowledged",
            figures.acked,
            if distinct {
                ""
            } else {
                " (some ids twice in the acked log)"
            },
            figures.stored,
            figures.missing,
            examples(&missing),
        ),
    ));
    Ok(figures)
}

/// The first few of `ids`, for a message.
pub fn examples(ids: &[&str]) -> String {
    if ids.is_empty() {
        return String::new();
    }
    let shown: Vec<&str> = ids.iter().take(5).copied().collect();
    format!(" (e.g. {})", shown.join(", "))
}

/// How many orders committed in each 10 s from `start_ms`.
pub fn per_10s(stored: &HashMap<String, Stored>, start_ms: i64) -> Vec<u64> {
    let mut buckets = Vec::new();
    for order in stored.values() {
        let bucket = ((order.commit_ms - start_ms).max(0) / 10_000) as usize;
        if buckets.len() <= bucket {
            buckets.resize(bucket + 1, 0);
        }
        buckets[bucket] += 1;
    }
    buckets
}
