//! The ingestor's write transaction: a batch of messages becomes stored orders, recorded
//! duplicates and conflicts, and dead letters, all in one commit that also sends `NOTIFY` and
//! records every message's sequence as consumed.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::ledger;
use super::rows::{copy_orders, copy_parts};
use super::{NOTIFY_CHANNEL, WRITE_LOCK};
use crate::validate::{Rejection, ValidOrder};

/// A message as the broker delivered it.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub channel: String,
    pub sequence: u64,
    pub published_at: DateTime<Utc>,
    pub payload: Bytes,
}

/// What validation made of a message.
// A valid order is much larger than a rejection, but nearly every message is valid: boxing would
// cost an allocation per message to save space only on the rare rejection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Verdict {
    Valid(ValidOrder),
    Rejected(Rejection),
}

/// What one committed batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchReport {
    pub stored: usize,
    /// The same order again, byte for byte: nothing to do.
    pub duplicates: usize,
    /// An order id already stored with other content: recorded in `order_conflicts`.
    pub conflicts: usize,
    pub dead_lettered: usize,
    /// The highest `seq` this batch stored.
    pub last_seq: Option<i64>,
}

/// Stores a batch in one transaction and commits it. Idempotent: storing the same messages again
/// changes nothing. On error nothing is stored.
///
/// The orders are copied in without first asking which of their ids are stored: almost every
/// batch is new orders, and the copy probes the primary key anyway. A batch that meets a stored id
/// (a redelivery, a duplicate, a conflicting version) fails on the primary key and is stored again
/// in a new transaction that looks the ids up first; Postgres logs that failure as an error.
#[tracing::instrument(skip_all, fields(messages = batch.len()))]
pub async fn store_batch(
    pool: &PgPool,
    batch: &[(Envelope, Verdict)],
) -> sqlx::Result<BatchReport> {
    match store_once(pool, batch, Stored::Assumed).await {
        Err(error) if meets_stored_order(&error) => {
            tracing::debug!("the batch holds a stored order id: storing it again with a look-up");
            store_once(pool, batch, Stored::LookedUp).await
        }
        other => other,
    }
}

/// How a transaction learns which of its order ids are stored already.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// It assumes none is: the copy fails if one is.
    Assumed,
    /// It looks them up before the copy.
    LookedUp,
}

async fn store_once(
    pool: &PgPool,
    batch: &[(Envelope, Verdict)],
    stored: Stored,
) -> sqlx::Result<BatchReport> {
    // Every statement is a round trip to the server: the write lock is taken in the same one as
    // `BEGIN`.
    let mut tx = pool
        .begin_with(format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"))
        .await?;
    let report = store_locked(&mut tx, batch, stored).await?;
    tx.commit().await?;
    Ok(report)
}

/// The copy met an order id that is stored: the primary key of `orders` refused it.
fn meets_stored_order(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|e| {
        e.code().as_deref() == Some(UNIQUE_VIOLATION) && e.constraint() == Some("orders_pkey")
    })
}

/// SQLSTATE `unique_violation`.
const UNIQUE_VIOLATION: &str = "23505";

/// What [`store_batch`] does between `BEGIN` and `COMMIT`, for a caller that owns the transaction:
/// the orders (under [`WRITE_LOCK`]), duplicates, conflicts, dead letters, the consumed sequences
/// and the `NOTIFY`, which Postgres delivers only if the caller commits.
pub(super) async fn store_in_transaction(
    tx: &mut PgConnection,
    batch: &[(Envelope, Verdict)],
) -> sqlx::Result<BatchReport> {
    lock_for_write(tx).await?;
    store_locked(tx, batch, Stored::LookedUp).await
}

/// [`store_in_transaction`] once the transaction holds [`WRITE_LOCK`].
async fn store_locked(
    tx: &mut PgConnection,
    batch: &[(Envelope, Verdict)],
    stored: Stored,
) -> sqlx::Result<BatchReport> {
    let mut report = BatchReport::default();

    let valid: Vec<(&Envelope, &ValidOrder)> = batch
        .iter()
        .filter_map(|(env, v)| match v {
            Verdict::Valid(order) => Some((env, order)),
            Verdict::Rejected(_) => None,
        })
        .collect();
    if !valid.is_empty() {
        store_orders(tx, &valid, stored, &mut report).await?;
    }

    let rejected: Vec<(&Envelope, &Rejection)> = batch
        .iter()
        .filter_map(|(env, v)| match v {
            Verdict::Rejected(r) => Some((env, r)),
            Verdict::Valid(_) => None,
        })
        .collect();
    if !rejected.is_empty() {
        insert_dead_letters(tx, &rejected).await?;
        report.dead_lettered = rejected.len();
    }

    let envelopes: Vec<&Envelope> = batch.iter().map(|(env, _)| env).collect();
    if !envelopes.is_empty() {
        ledger::record(tx, &envelopes).await?;
    }
    Ok(report)
}

async fn store_orders(
    tx: &mut PgConnection,
    valid: &[(&Envelope, &ValidOrder)],
    stored: Stored,
    report: &mut BatchReport,
) -> sqlx::Result<()> {
    // The first message of each order id in the batch is the candidate for insertion.
    let mut seen = HashSet::with_capacity(valid.len());
    let is_first: Vec<bool> = valid.iter().map(|(_, o)| seen.insert(o.uid())).collect();
    let candidates: Vec<&str> = seen.into_iter().collect();

    // Every writer of `orders` holds WRITE_LOCK, and so does this transaction: the ids stored now
    // are all that can be in the way of the copy, which has no `ON CONFLICT`. Looking them up
    // costs what `ON CONFLICT` would: one probe of the primary key per id.
    let mut reference = match stored {
        Stored::LookedUp => stored_documents(tx, &candidates).await?,
        Stored::Assumed => HashMap::new(),
    };
    let is_fresh: Vec<bool> = valid
        .iter()
        .zip(&is_first)
        .map(|((_, o), first)| *first && !reference.contains_key(o.uid()))
        .collect();
    let fresh: Vec<(&Envelope, &ValidOrder)> = valid
        .iter()
        .zip(&is_fresh)
        .filter(|(_, fresh)| **fresh)
        .map(|(pair, _)| *pair)
        .collect();
    let fresh_orders: Vec<&ValidOrder> = fresh.iter().map(|(_, o)| *o).collect();
    copy_orders(tx, &fresh).await?;
    copy_parts(tx, &fresh_orders).await?;
    report.stored = fresh.len();
    if !fresh.is_empty() {
        report.last_seq = Some(notify_stored(tx).await?);
    }
    if report.stored == valid.len() {
        return Ok(());
    }

    // Every other message is compared with the version that is now stored.
    for o in &fresh_orders {
        reference.insert(o.uid().to_string(), o.document().clone());
    }
    let mut conflicts = Vec::new();
    for ((env, order), fresh) in valid.iter().zip(is_fresh) {
        if fresh {
            continue;
        }
        match reference.get(order.uid()) {
            Some(doc) if doc == order.document() => report.duplicates += 1,
            _ => conflicts.push((*env, *order)),
        }
    }
    if !conflicts.is_empty() {
        insert_conflicts(tx, &conflicts).await?;
        report.conflicts = conflicts.len();
    }
    Ok(())
}

/// Sends `NOTIFY` with the highest `seq` this transaction stored, and returns it: the last value
/// this session drew from the column's sequence. Postgres delivers the notification at the commit.
async fn notify_stored(tx: &mut PgConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT last.seq
         FROM (SELECT currval(pg_get_serial_sequence('orders', 'seq')) AS seq) AS last,
              pg_notify($1, last.seq::text)",
    )
    .bind(NOTIFY_CHANNEL)
    .fetch_one(tx)
    .await
}

async fn lock_for_write(tx: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(WRITE_LOCK)
        .execute(tx)
        .await?;
    Ok(())
}

/// The broker's sequence as Postgres stores it.
pub(super) fn seq_of(env: &Envelope) -> i64 {
    i64::try_from(env.sequence).unwrap_or(i64::MAX)
}

/// The stored documents of those of the given order ids that are stored.
async fn stored_documents(
    tx: &mut PgConnection,
    uids: &[&str],
) -> sqlx::Result<HashMap<String, Bytes>> {
    if uids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT order_uid, document::text FROM orders WHERE order_uid = ANY($1)")
            .bind(uids)
            .fetch_all(tx)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(uid, doc)| (uid, Bytes::from(doc)))
        .collect())
}

async fn insert_conflicts(
    tx: &mut PgConnection,
    conflicts: &[(&Envelope, &ValidOrder)],
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO order_conflicts (order_uid, channel, stan_sequence, published_at, document)
         SELECT u.order_uid, u.channel, u.stan_sequence, u.published_at, u.document::json
         FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::timestamptz[], $5::text[])
              AS u(order_uid, channel, stan_sequence, published_at, document)
         ON CONFLICT (channel, stan_sequence, published_at) DO NOTHING",
    )
    .bind(conflicts.iter().map(|(_, o)| o.uid()).collect::<Vec<_>>())
    .bind(
        conflicts
            .iter()
            .map(|(e, _)| e.channel.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(conflicts.iter().map(|(e, _)| seq_of(e)).collect::<Vec<_>>())
    .bind(
        conflicts
            .iter()
            .map(|(e, _)| e.published_at)
            .collect::<Vec<_>>(),
    )
    .bind(
        conflicts
            .iter()
            .map(|(_, o)| std::str::from_utf8(o.document()).expect("documents are UTF-8"))
            .collect::<Vec<_>>(),
    )
    .execute(tx)
    .await?;
    Ok(())
}

async fn insert_dead_letters(
    tx: &mut PgConnection,
    letters: &[(&Envelope, &Rejection)],
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO dead_letters (channel, stan_sequence, published_at, payload, rule, reason)
         SELECT * FROM UNNEST($1::text[], $2::int8[], $3::timestamptz[], $4::bytea[], $5::text[], $6::text[])
         ON CONFLICT (channel, stan_sequence, published_at) DO NOTHING",
    )
    .bind(letters.iter().map(|(e, _)| e.channel.as_str()).collect::<Vec<_>>())
    .bind(letters.iter().map(|(e, _)| seq_of(e)).collect::<Vec<_>>())
    .bind(letters.iter().map(|(e, _)| e.published_at).collect::<Vec<_>>())
    .bind(letters.iter().map(|(e, _)| e.payload.as_ref()).collect::<Vec<_>>())
    .bind(letters.iter().map(|(_, r)| r.rule.code()).collect::<Vec<_>>())
    .bind(letters.iter().map(|(_, r)| r.reason.as_str()).collect::<Vec<_>>())
    .execute(tx)
    .await?;
    Ok(())
}
