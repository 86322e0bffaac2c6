//! Reading the orders from a hot standby: which database a read goes to, and how far the standby
//! is behind the primary.
//!
//! A standby replays the primary's WAL, in which commits are in `seq` order (writers hold
//! `orders::db::WRITE_LOCK` until they commit): what a standby shows is always every order up to
//! some `seq`, never one with a hole below it. Reading "the orders above the watermark" from it is
//! therefore as safe as from the primary; it may only come back with less than the primary has
//! committed, and the reader then waits for the standby, polling it, rather than stop at less.

use std::future::Future;
use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::database::Database;
use crate::metrics::Metrics;

/// How long the reads go to the primary after the standby failed, at first; doubled at each
/// failure in a row, up to [`MAX_STANDBY_REST`].
const FIRST_STANDBY_REST: Duration = Duration::from_secs(1);
const MAX_STANDBY_REST: Duration = Duration::from_secs(30);

/// How soon a reader behind the primary's latest commit reads the standby again, at first; doubled
/// at each read that is still behind, up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(5);
const MAX_POLL: Duration = Duration::from_millis(500);

/// How long the standby may stay behind before it is said in the log, and before the target it is
/// behind is checked against the primary (see [`super::committed::Committed`]).
const LONG_BEHIND: Duration = Duration::from_secs(5);
const CHECK_TARGET_AFTER: Duration = Duration::from_secs(1);

/// Sends the reads of orders to the standby while it answers, to the primary while it does not.
pub struct Reader {
    db: Database,
    /// After a failure of the standby: until when the reads go to the primary, and how long the
    /// next rest will be.
    resting_until: Option<Instant>,
    rest: Duration,
}

impl Reader {
    pub fn new(db: Database) -> Reader {
        Reader {
            db,
            resting_until: None,
            rest: FIRST_STANDBY_REST,
        }
    }

    pub fn has_standby(&self) -> bool {
        self.db.standby
    }

    pub fn primary(&self) -> &PgPool {
        &self.db.primary
    }

    /// Runs `read` on the standby, or on the primary when there is no standby, when the standby
    /// failed lately, or when it fails now. The error is the primary's.
    pub async fn read<T, F, R>(&mut self, metrics: &Metrics, mut read: F) -> sqlx::Result<T>
    where
        F: FnMut(PgPool) -> R,
        R: Future<Output = sqlx::Result<T>>,
    {
        if !self.db.standby {
            return read(self.db.primary.clone()).await;
        }
        let resting = self
            .resting_until
            .is_some_and(|until| Instant::now() < until);
        if !resting {
            match read(self.db.orders.clone()).await {
                Ok(value) => {
                    if self.resting_until.take().is_some() {
                        tracing::info!("the standby answers again: reading orders from it");
                    }
                    self.rest = FIRST_STANDBY_REST;
                    return Ok(value);
                }
                Err(error) => {
                    if self.resting_until.is_none() {
                        tracing::warn!(
                            %error,
                            "reading orders from the standby failed: reading the primary for now"
                        );
                    }
                    self.resting_until = Some(Instant::now() + self.rest);
                    self.rest = (self.rest * 2).min(MAX_STANDBY_REST);
                }
            }
        }
        metrics.standby_fallbacks.inc();
        read(self.db.primary.clone()).await
    }
}

/// How long a reader has been behind the primary's latest commit, and when to read again.
pub struct Lag {
    behind_since: Option<Instant>,
    said: bool,
    poll: Duration,
    checked: Option<Instant>,
}

/// What the reader does after a catch-up, by [`Lag::observe`].
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Level with the primary: wait for a notification (or the periodic read).
    Wait,
    /// Behind a standby that has yet to replay the latest commits: read again after this long.
    Poll(Duration),
}

impl Default for Lag {
    fn default() -> Self {
        Lag {
            behind_since: None,
            said: false,
            poll: FIRST_POLL,
            checked: None,
        }
    }
}

impl Lag {
    /// After a catch-up that left the cache at `watermark` while the primary has committed up to
    /// `target`: sets the metrics and says when to read again. Without a standby, a reader behind
    /// the target has a notification on its way, and waits for it.
    pub fn observe(
        &mut self,
        standby: bool,
        watermark: i64,
        target: i64,
        metrics: &Metrics,
    ) -> Next {
        let behind = target.saturating_sub(watermark).max(0);
        if !standby || behind == 0 {
            if self.said {
                tracing::info!(watermark, "the standby has caught up with the primary");
            }
            *self = Lag::default();
            metrics.standby_lag.set(0);
            metrics.standby_lag_seconds.set(0.0);
            return Next::Wait;
        }
        let now = Instant::now();
        let since = *self.behind_since.get_or_insert(now);
        let for_how_long = now - since;
        metrics.standby_lag.set(behind);
        metrics.standby_lag_seconds.set(for_how_long.as_secs_f64());
        if for_how_long >= LONG_BEHIND && !self.said {
            self.said = true;
            tracing::warn!(
                behind,
                watermark,
                target,
                "the standby is behind the primary: waiting for it to replay the latest commits"
            );
        }
        let poll = self.poll;
        self.poll = (self.poll * 2).min(MAX_POLL);
        Next::Poll(poll)
    }

    /// True when the target has been out of reach for long enough that it is worth asking the
    /// primary whether it is real; then not again for as long.
    pub fn check_target(&mut self) -> bool {
        let now = Instant::now();
        let behind_long = self
            .behind_since
            .is_some_and(|since| now - since >= CHECK_TARGET_AFTER);
        let due = self
            .checked
            .is_none_or(|checked| now - checked >= CHECK_TARGET_AFTER);
        if behind_long && due {
            self.checked = Some(now);
        }
        behind_long && due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_level_with_the_primary_waits_and_one_behind_a_standby_polls_ever_slower() {
        let metrics = Metrics::new();
        let mut lag = Lag::default();
        assert_eq!(lag.observe(true, 10, 10, &metrics), Next::Wait);
        assert_eq!(lag.observe(true, 10, 12, &metrics), Next::Poll(FIRST_POLL));
        assert_eq!(metrics.standby_lag.get(), 2);
        assert_eq!(
            lag.observe(true, 11, 12, &metrics),
            Next::Poll(FIRST_POLL * 2)
        );
        for _ in 0..20 {
            lag.observe(true, 11, 12, &metrics);
        }
        assert_eq!(lag.observe(true, 11, 12, &metrics), Next::Poll(MAX_POLL));
        assert_eq!(lag.observe(true, 12, 12, &metrics), Next::Wait);
        assert_eq!(metrics.standby_lag.get(), 0);
        // Level again: the next lag polls quickly again.
        assert_eq!(lag.observe(true, 12, 13, &metrics), Next::Poll(FIRST_POLL));
    }

    #[test]
    fn without_a_standby_a_reader_behind_waits_for_the_notification_on_its_way() {
        let metrics = Metrics::new();
        let mut lag = Lag::default();
        assert_eq!(lag.observe(false, 10, 12, &metrics), Next::Wait);
        assert_eq!(metrics.standby_lag.get(), 0);
    }
}
