//! Which of a channel's messages are consumed: the record that lets the ingestor notice a message
//! the broker holds but never delivered (see the `consumed_messages` migration).
//!
//! Each write transaction records the sequences of its messages ([`record`]). The sweeper moves the
//! channel's mark over what follows it without a hole ([`advance`]), asks which sequences up to a
//! bound are still not consumed ([`missing`]), and records those the broker no longer holds
//! ([`record_absent`]) so that the mark can pass them.

use sqlx::{PgConnection, PgPool};

use super::write::{seq_of, Envelope};

/// The advisory lock a sweep holds for its transaction: one sweeper at a time looks for gaps.
pub const SWEEP_LOCK: i64 = 0x6761_7073; // "gaps"

/// Records that the messages of `envelopes` are consumed; part of the caller's transaction.
pub(super) async fn record(tx: &mut PgConnection, envelopes: &[&Envelope]) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO consumed_messages (channel, sequence)
         SELECT * FROM UNNEST($1::text[], $2::int8[])
         ON CONFLICT DO NOTHING",
    )
    .bind(
        envelopes
            .iter()
            .map(|e| e.channel.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(envelopes.iter().map(|e| seq_of(e)).collect::<Vec<_>>())
    .execute(tx)
    .await?;
    Ok(())
}

/// Where a channel's consumption stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Every sequence up to this one is consumed (0: none yet).
    pub through: u64,
    /// The highest sequence consumed (at least `through`).
    pub highest: u64,
}

/// Moves `channel`'s mark up over the consecutive sequences consumed right after it, deletes what
/// it passed, and returns where the channel stands. `None` when another sweep holds
/// [`SWEEP_LOCK`].
pub async fn advance(pool: &PgPool, channel: &str) -> sqlx::Result<Option<Progress>> {
    let mut tx = pool.begin().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(SWEEP_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        return Ok(None);
    }
    sqlx::query(
        "INSERT INTO consumed_through (channel, sequence) VALUES ($1, 0) ON CONFLICT DO NOTHING",
    )
    .bind(channel)
    .execute(&mut *tx)
    .await?;
    // The run that starts right after the mark: there, a sequence less its rank is the mark.
    let through: i64 = sqlx::query_scalar(
        "WITH mark AS (SELECT sequence FROM consumed_through WHERE channel = $1 FOR UPDATE)
         SELECT greatest((SELECT sequence FROM mark), coalesce(max(run.sequence), 0))
         FROM (SELECT c.sequence, c.sequence - row_number() OVER (ORDER BY c.sequence) AS start
               FROM consumed_messages c
               WHERE c.channel = $1 AND c.sequence > (SELECT sequence FROM mark)) AS run
         WHERE run.start = (SELECT sequence FROM mark)",
    )
    .bind(channel)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("UPDATE consumed_through SET sequence = $2 WHERE channel = $1 AND sequence < $2")
        .bind(channel)
        .bind(through)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM consumed_messages WHERE channel = $1 AND sequence <= $2")
        .bind(channel)
        .bind(through)
        .execute(&mut *tx)
        .await?;
    let highest: Option<i64> =
        sqlx::query_scalar("SELECT max(sequence) FROM consumed_messages WHERE channel = $1")
            .bind(channel)
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    let through = u64::try_from(through).unwrap_or(0);
    let highest = highest.and_then(|h| u64::try_from(h).ok()).unwrap_or(0);
    Ok(Some(Progress {
        through,
        highest: highest.max(through),
    }))
}

/// The sequences from `first` to `last` of `channel` that are not consumed, lowest first, at most
/// `limit` of them.
pub async fn missing(
    pool: &PgPool,
    channel: &str,
    first: u64,
    last: u64,
    limit: usize,
) -> sqlx::Result<Vec<u64>> {
    if first > last || limit == 0 {
        return Ok(Vec::new());
    }
    let rows: Vec<i64> = sqlx::query_scalar(
        "SELECT s FROM generate_series($2::int8, $3::int8) AS s
         WHERE NOT EXISTS (SELECT 1 FROM consumed_messages c WHERE c.channel = $1 AND c.sequence = s)
         ORDER BY s
         LIMIT $4",
    )
    .bind(channel)
    .bind(to_i64(first))
    .bind(to_i64(last))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|s| u64::try_from(s).ok())
        .collect())
}

/// Records sequences of `channel` that the broker no longer holds (or that are not the channel's),
/// so that the mark can pass them: there is nothing to consume.
pub async fn record_absent(pool: &PgPool, channel: &str, sequences: &[u64]) -> sqlx::Result<()> {
    if sequences.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO consumed_messages (channel, sequence)
         SELECT $1, s FROM UNNEST($2::int8[]) AS s
         ON CONFLICT DO NOTHING",
    )
    .bind(channel)
    .bind(sequences.iter().map(|s| to_i64(*s)).collect::<Vec<_>>())
    .execute(pool)
    .await?;
    Ok(())
}

fn to_i64(sequence: u64) -> i64 {
    i64::try_from(sequence).unwrap_or(i64::MAX)
}
