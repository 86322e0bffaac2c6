//! A hot standby of a private Postgres server: a streaming replica whose replay a test can pause,
//! stop and wait for.

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

use crate::PrivatePostgres;

/// How long the standby may take to pause its replay once asked.
const PAUSE_LIMIT: Duration = Duration::from_secs(10);

/// A hot standby of a [`PrivatePostgres`], made by [`PrivatePostgres::standby`]: read-only, and
/// streaming the primary's WAL through a replication slot of its own, so that the primary keeps
/// what a stopped standby has yet to replay. Its data is removed when the value is dropped.
pub struct PrivateStandby {
    server: PrivatePostgres,
    primary_url: String,
}

impl PrivatePostgres {
    /// Copies this running server with `pg_basebackup -R` (which writes `standby.signal` and the
    /// `primary_conninfo` to stream with) and starts the copy as a hot standby, on a port of its
    /// own. Returns once the standby accepts connections.
    pub fn standby(&self) -> PrivateStandby {
        let server = PrivatePostgres::without_data("pg_standby");
        let slot = format!("standby_{}", server.port);
        let primary = format!("host=127.0.0.1 port={} user=postgres", self.port);
        server.pg_bin(
            "pg_basebackup",
            &[
                "-d",
                &primary,
                "-D",
                server.data(),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "-C",
                "-S",
                &slot,
            ],
        );
        server.resume();
        PrivateStandby {
            server,
            primary_url: self.url(),
        }
    }
}

/// Which of the standby's WAL positions a wait is about.
#[derive(Clone, Copy)]
enum Position {
    /// Written to the standby's disk by its WAL receiver (`pg_last_wal_receive_lsn()`).
    Received,
    /// Applied, and so visible to its queries (`pg_last_wal_replay_lsn()`).
    Replayed,
}

impl Position {
    fn function(self) -> &'static str {
        match self {
            Position::Received => "pg_last_wal_receive_lsn()",
            Position::Replayed => "pg_last_wal_replay_lsn()",
        }
    }
}

impl PrivateStandby {
    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// Stops the standby (`pg_ctl stop -m fast`); the primary keeps its WAL in the slot.
    pub fn stop(&self) {
        self.server.stop();
    }

    /// Starts the standby again on the same data and port; it streams from where it stopped.
    pub fn resume(&self) {
        self.server.resume();
    }

    /// Pauses the replay of WAL (`pg_wal_replay_pause()`) and returns once the standby says it is
    /// paused: from then on it receives the primary's WAL but applies none of it.
    pub async fn pause_replay(&self) {
        let mut conn = self.connect().await;
        sqlx::query("SELECT pg_wal_replay_pause()")
            .execute(&mut conn)
            .await
            .expect("pg_wal_replay_pause() on the standby");
        let start = Instant::now();
        loop {
            let state: String = sqlx::query_scalar("SELECT pg_get_wal_replay_pause_state()")
                .fetch_one(&mut conn)
                .await
                .expect("pg_get_wal_replay_pause_state() on the standby");
            if state == "paused" {
                return;
            }
            assert!(
                start.elapsed() < PAUSE_LIMIT,
                "the standby on port {} is still '{state}' {PAUSE_LIMIT:?} after \
                 pg_wal_replay_pause()",
                self.port()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Resumes the replay of WAL (`pg_wal_replay_resume()`).
    pub async fn resume_replay(&self) {
        sqlx::query("SELECT pg_wal_replay_resume()")
            .execute(&mut self.connect().await)
            .await
            .expect("pg_wal_replay_resume() on the standby");
    }

    /// Waits until the standby has replayed the primary's WAL up to its current position
    /// (`pg_current_wal_lsn()`, read now), so that whatever was committed on the primary before
    /// the call is visible on the standby. Panics, saying how far it got, after `limit`.
    pub async fn wait_replayed(&self, limit: Duration) {
        self.wait_for(Position::Replayed, limit).await;
    }

    /// Waits until the standby has received the primary's WAL up to its current position, replayed
    /// or not: with the replay paused, what was committed before the call is then on the standby
    /// but not visible there. Panics, saying how far it got, after `limit`.
    pub async fn wait_received(&self, limit: Duration) {
        self.wait_for(Position::Received, limit).await;
    }

    async fn wait_for(&self, position: Position, limit: Duration) {
        let mut primary = PgConnection::connect(&self.primary_url)
            .await
            .unwrap_or_else(|e| panic!("connect to the primary at {}: {e}", self.primary_url));
        let target: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
            .fetch_one(&mut primary)
            .await
            .expect("pg_current_wal_lsn() on the primary");
        let mut standby = self.connect().await;
        let function = position.function();
        let query = format!(
            "SELECT {function}::text, coalesce({function} >= $1::pg_lsn, false), \
             pg_is_wal_replay_paused()"
        );
        let start = Instant::now();
        loop {
            let (at, reached, paused): (Option<String>, bool, bool) = sqlx::query_as(&query)
                .bind(&target)
                .fetch_one(&mut standby)
                .await
                .unwrap_or_else(|e| panic!("{function} on the standby: {e}"));
            if reached {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "the standby on port {}: {function} is {} after {limit:?}, short of the primary's \
                 {target}{}",
                self.port(),
                at.as_deref().unwrap_or("NULL"),
                if paused {
                    " (its replay is paused)"
                } else {
                    ""
                }
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn connect(&self) -> PgConnection {
        let url = self.url();
        PgConnection::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("connect to the standby at {url}: {e}"))
    }
}
