//! Dismissing a dead letter: a person marks it resolved without storing anything (its corrected
//! order came another way, say), and records why.

use chrono::{DateTime, Utc};
use sqlx::{Acquire, PgConnection, Postgres};

use super::lock_dead_letter;

/// Why a person dismissed a dead letter: one line of text with something to read in it. The only
/// way to build one is [`DismissalReason::parse`], so a dismissal never goes without a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DismissalReason(String);

/// What is wrong with the text given as a [`DismissalReason`]. The messages do not repeat it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidReason {
    #[error("must not be blank (say why the dead letter is dismissed)")]
    Blank,
    /// A line break, a tab, an escape, U+0000 ...: the reason is read on a terminal, and Postgres
    /// text cannot hold U+0000.
    #[error("must be one line of text, without control characters")]
    ControlCharacter,
}

impl DismissalReason {
    /// `text` as a reason, without the blanks around it.
    pub fn parse(text: &str) -> Result<DismissalReason, InvalidReason> {
        if text.trim().is_empty() {
            return Err(InvalidReason::Blank);
        }
        if text.chars().any(char::is_control) {
            return Err(InvalidReason::ControlCharacter);
        }
        Ok(DismissalReason(text.trim().to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What dismissing a dead letter did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dismissal {
    /// It is resolved now, as dismissed, with the reason.
    Dismissed { resolved_at: DateTime<Utc> },
    /// It was resolved before, by a replay or another dismissal: nothing changed. A resolution is
    /// never overwritten, so what happened to the message can still be read.
    AlreadyResolved {
        resolved_at: DateTime<Utc>,
        resolution: String,
        resolution_reason: Option<String>,
    },
    /// No dead letter has this id.
    NotFound,
}

impl Dismissal {
    /// What is written in `dead_letters.resolution` for a dismissal.
    pub const RESOLUTION: &'static str = "dismissed";
}

/// Marks dead letter `id` resolved as dismissed, with `reason` and the time, unless it is resolved
/// already. It is locked meanwhile, as a replay locks it, so that a dismissal and a replay at once
/// resolve it once.
#[tracing::instrument(skip_all, fields(id = id))]
pub async fn dismiss_dead_letter<'c>(
    db: impl Acquire<'c, Database = Postgres>,
    id: i64,
    reason: &DismissalReason,
) -> sqlx::Result<Dismissal> {
    let mut tx = db.begin().await?;
    let dismissal = dismiss_locked(&mut tx, id, reason).await?;
    match dismissal {
        Dismissal::Dismissed { .. } => tx.commit().await?,
        Dismissal::AlreadyResolved { .. } | Dismissal::NotFound => tx.rollback().await?,
    }
    Ok(dismissal)
}

async fn dismiss_locked(
    tx: &mut PgConnection,
    id: i64,
    reason: &DismissalReason,
) -> sqlx::Result<Dismissal> {
    let Some(letter) = lock_dead_letter(&mut *tx, id).await? else {
        return Ok(Dismissal::NotFound);
    };
    if let (Some(resolved_at), Some(resolution)) = (letter.resolved_at, letter.resolution) {
        return Ok(Dismissal::AlreadyResolved {
            resolved_at,
            resolution,
            resolution_reason: letter.resolution_reason,
        });
    }
    let resolved_at = sqlx::query_scalar(
        "UPDATE dead_letters SET resolved_at = now(), resolution = $2, resolution_reason = $3
         WHERE id = $1
         RETURNING resolved_at",
    )
    .bind(id)
    .bind(Dismissal::RESOLUTION)
    .bind(reason.as_str())
    .fetch_one(tx)
    .await?;
    Ok(Dismissal::Dismissed { resolved_at })
}
