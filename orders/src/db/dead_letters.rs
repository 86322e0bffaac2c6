//! The operator's side of the dead letters: list them, replay one once whatever refused it has
//! been fixed, or dismiss one (`dismiss.rs`).

mod dismiss;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use sqlx::{Acquire, PgConnection, PgExecutor, Postgres};

use super::write::{store_in_transaction, Envelope, Verdict};
use crate::validate::Rejection;

pub use self::dismiss::{dismiss_dead_letter, Dismissal, DismissalReason, InvalidReason};

/// A message that was not a valid order, as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeadLetter {
    pub id: i64,
    pub channel: String,
    pub stan_sequence: i64,
    pub published_at: DateTime<Utc>,
    /// The message, byte for byte.
    pub payload: Vec<u8>,
    /// The code of the rule it broke (see [`crate::Rule::code`]) and a sentence for a person.
    pub rule: String,
    pub reason: String,
    pub received_at: DateTime<Utc>,
    /// When and how it was dealt with; `None` while it waits for a person.
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
    /// Why it was dismissed, in the operator's words; `None` unless `resolution` is
    /// [`Dismissal::RESOLUTION`].
    pub resolution_reason: Option<String>,
}

/// Which dead letters to list. They come newest first, a page of `limit` at a time: the next page
/// starts below the last id of this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterQuery {
    /// Only those that broke this rule (a code such as `malformed_json`).
    pub rule: Option<String>,
    /// Resolved ones too, not only those that wait for a person.
    pub include_resolved: bool,
    /// Only those with an id below this one.
    pub before_id: Option<i64>,
    pub limit: i64,
}

impl Default for DeadLetterQuery {
    /// The latest 20 unresolved dead letters.
    fn default() -> Self {
        DeadLetterQuery {
            rule: None,
            include_resolved: false,
            before_id: None,
            limit: 20,
        }
    }
}

/// What replaying a dead letter did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// The payload is a valid order now, and it was stored as if it had just arrived.
    Stored { order_uid: String },
    /// The payload is a valid order now, and the same order was already stored.
    Duplicate { order_uid: String },
    /// The payload is a valid order now, but another version of it is stored: this one was recorded
    /// in `order_conflicts`, as the ingestor does.
    Conflict { order_uid: String },
    /// The payload is still not a valid order, for this reason: nothing changed.
    StillRejected(Rejection),
    /// It was resolved before: nothing changed.
    AlreadyResolved {
        resolved_at: DateTime<Utc>,
        resolution: String,
        resolution_reason: Option<String>,
    },
    /// No dead letter has this id.
    NotFound,
}

impl Replay {
    /// What is written in `dead_letters.resolution` when this replay resolves the dead letter.
    pub fn resolution(&self) -> Option<&'static str> {
        match self {
            Replay::Stored { .. } => Some("replayed: stored"),
            Replay::Duplicate { .. } => Some("replayed: duplicate"),
            Replay::Conflict { .. } => Some("replayed: conflict"),
            Replay::StillRejected(_) | Replay::AlreadyResolved { .. } | Replay::NotFound => None,
        }
    }
}

/// The dead letters that `query` asks for, newest first.
#[tracing::instrument(skip_all, fields(rule = query.rule, before_id = query.before_id, limit = query.limit))]
pub async fn list_dead_letters(
    db: impl PgExecutor<'_>,
    query: &DeadLetterQuery,
) -> sqlx::Result<Vec<DeadLetter>> {
    sqlx::query_as(
        "SELECT id, channel, stan_sequence, published_at, payload, rule, reason, received_at,
                resolved_at, resolution, resolution_reason
         FROM dead_letters
         WHERE ($1::text IS NULL OR rule = $1)
           AND ($2 OR resolved_at IS NULL)
           AND ($3::int8 IS NULL OR id < $3)
         ORDER BY id DESC
         LIMIT $4",
    )
    .bind(&query.rule)
    .bind(query.include_resolved)
    .bind(query.before_id)
    .bind(query.limit)
    .fetch_all(db)
    .await
}

/// The dead letter with this id.
#[tracing::instrument(skip_all, fields(id = id))]
pub async fn dead_letter(db: impl PgExecutor<'_>, id: i64) -> sqlx::Result<Option<DeadLetter>> {
    sqlx::query_as(
        "SELECT id, channel, stan_sequence, published_at, payload, rule, reason, received_at,
                resolved_at, resolution, resolution_reason
         FROM dead_letters WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Validates the payload of dead letter `id` again, with today's rules. If it is a valid order now,
/// it is stored exactly as the ingestor stores a message (with the dead letter's channel, sequence
/// and publish time, and the `NOTIFY`), and the dead letter is marked resolved, all in one
/// transaction. Otherwise nothing changes. The dead letter stays locked meanwhile, so that two
/// replays of it cannot both store it.
#[tracing::instrument(skip_all, fields(id = id))]
pub async fn replay_dead_letter<'c>(
    db: impl Acquire<'c, Database = Postgres>,
    id: i64,
) -> sqlx::Result<Replay> {
    let mut tx = db.begin().await?;
    let replay = replay_locked(&mut tx, id).await?;
    match replay.resolution() {
        Some(resolution) => {
            mark_resolved(&mut tx, id, resolution).await?;
            tx.commit().await?;
        }
        None => tx.rollback().await?,
    }
    Ok(replay)
}

/// Locks dead letter `id` and stores its payload if it is a valid order now.
async fn replay_locked(tx: &mut PgConnection, id: i64) -> sqlx::Result<Replay> {
    let Some(letter) = lock_dead_letter(&mut *tx, id).await? else {
        return Ok(Replay::NotFound);
    };
    if let (Some(resolved_at), Some(resolution)) = (letter.resolved_at, letter.resolution) {
        return Ok(Replay::AlreadyResolved {
            resolved_at,
            resolution,
            resolution_reason: letter.resolution_reason,
        });
    }
    let order = match crate::parse_order(&letter.payload) {
        Ok(order) => order,
        Err(rejection) => return Ok(Replay::StillRejected(rejection)),
    };
    let order_uid = order.uid().to_string();
    let envelope = Envelope {
        channel: letter.channel,
        // Stored from a `u64`, so never negative.
        sequence: letter.stan_sequence.unsigned_abs(),
        published_at: letter.published_at,
        payload: Bytes::from(letter.payload),
    };
    let report = store_in_transaction(tx, &[(envelope, Verdict::Valid(order))]).await?;
    Ok(if report.stored > 0 {
        Replay::Stored { order_uid }
    } else if report.duplicates > 0 {
        Replay::Duplicate { order_uid }
    } else {
        Replay::Conflict { order_uid }
    })
}

async fn lock_dead_letter(tx: &mut PgConnection, id: i64) -> sqlx::Result<Option<DeadLetter>> {
    sqlx::query_as(
        "SELECT id, channel, stan_sequence, published_at, payload, rule, reason, received_at,
                resolved_at, resolution, resolution_reason
         FROM dead_letters WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(tx)
    .await
}

async fn mark_resolved(tx: &mut PgConnection, id: i64, resolution: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE dead_letters SET resolved_at = now(), resolution = $2 WHERE id = $1")
        .bind(id)
        .bind(resolution)
        .execute(tx)
        .await?;
    Ok(())
}
