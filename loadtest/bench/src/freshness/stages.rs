//! Where the time between a publish and the slowest replica's first answer goes, stage by stage.
//!
//! Every stage is a wall-clock time on this machine, in milliseconds since the publish started:
//! - the broker's receipt (`published_at`, the NATS Streaming timestamp the ingestor stores),
//! - the start of the storing transaction (`stored_at`, its `now()`),
//! - its commit (`pg_xact_commit_timestamp`, when the server tracks commit timestamps),
//! - and for each replica, from its debug log (`api::sync`): the notification of the commit,
//!   the end of the read that applied the order, and the poller's first 200.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::stats::Spread;

/// One followed order, every stage in milliseconds since its publish started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timeline {
    pub order_uid: String,
    pub seq: i64,
    pub broker_ms: f64,
    pub transaction_ms: f64,
    pub commit_ms: Option<f64>,
    pub replicas: Vec<ReplicaStages>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReplicaStages {
    pub notified_ms: Option<f64>,
    pub applied_ms: Option<f64>,
    pub served_ms: Option<f64>,
}

impl Timeline {
    /// When the slowest replica served it; `None` if one never did.
    pub fn every_replica_ms(&self) -> Option<f64> {
        self.slowest(|r| r.served_ms)
    }

    /// The latest replica's time of a stage; `None` if a replica has none.
    fn slowest(&self, stage: fn(&ReplicaStages) -> Option<f64>) -> Option<f64> {
        self.replicas
            .iter()
            .map(stage)
            .try_fold(0.0_f64, |max, v| v.map(|v| max.max(v)))
    }
}

/// The spread of one stage over every followed order, from the end of the stage before.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stage {
    pub name: String,
    pub spread: Spread,
}

/// The stages' spreads, each from the end of the one before, for the slowest replica of each
/// order where a stage is per replica.
pub fn spreads(timelines: &[Timeline]) -> Vec<Stage> {
    type Pick = fn(&Timeline) -> Option<(f64, f64)>;
    let stages: [(&str, Pick); 6] = [
        ("publish → broker", |t| Some((0.0, t.broker_ms))),
        ("broker → transaction start", |t| {
            Some((t.broker_ms, t.transaction_ms))
        }),
        ("transaction start → commit", |t| {
            Some((t.transaction_ms, t.commit_ms?))
        }),
        ("commit → notified (slowest replica)", |t| {
            Some((t.commit_ms?, t.slowest(|r| r.notified_ms)?))
        }),
        ("notified → read applied (slowest replica)", |t| {
            Some((t.slowest(|r| r.notified_ms)?, t.slowest(|r| r.applied_ms)?))
        }),
        ("read applied → served (slowest replica)", |t| {
            Some((t.slowest(|r| r.applied_ms)?, t.every_replica_ms()?))
        }),
    ];
    stages
        .into_iter()
        .filter_map(|(name, pick)| {
            let durations: Vec<std::time::Duration> = timelines
                .iter()
                .filter_map(pick)
                .map(|(from, to)| std::time::Duration::from_secs_f64((to - from).max(0.0) / 1e3))
                .collect();
            (!durations.is_empty()).then(|| Stage {
                name: name.to_string(),
                spread: Spread::of(durations),
            })
        })
        .collect()
}

/// What a replica's sync loop logged: when it was told of each commit, and when each read ended.
#[derive(Default)]
pub struct ReplicaLog {
    /// (time, highest seq of the commit), in the order they came.
    notified: Vec<(DateTime<Utc>, i64)>,
    /// (time, watermark after the read).
    applied: Vec<(DateTime<Utc>, i64)>,
}

#[derive(Deserialize)]
struct Line {
    timestamp: DateTime<Utc>,
    message: String,
    seq: Option<String>,
    watermark: Option<i64>,
}

impl ReplicaLog {
    /// Reads the JSON lines of a replica's log; other lines are skipped.
    pub fn read(path: &Path) -> anyhow::Result<ReplicaLog> {
        let text = std::fs::read_to_string(path)?;
        let mut log = ReplicaLog::default();
        for line in text.lines() {
            let Ok(line) = serde_json::from_str::<Line>(line) else {
                continue;
            };
            match (line.message.as_str(), line.seq, line.watermark) {
                ("notified of new orders", Some(seq), _) => {
                    if let Ok(seq) = seq.parse() {
                        log.notified.push((line.timestamp, seq));
                    }
                }
                ("applied new orders", _, Some(watermark)) => {
                    log.applied.push((line.timestamp, watermark));
                }
                _ => {}
            }
        }
        Ok(log)
    }

    /// When the replica was first told of a commit holding `seq`, and when it first had read it.
    pub fn stages_of(&self, seq: i64) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let first = |events: &[(DateTime<Utc>, i64)]| {
            // Both lists grow with seq: the first entry at or past it.
            let at = events.partition_point(|(_, s)| *s < seq);
            events.get(at).map(|(t, _)| *t)
        };
        (first(&self.notified), first(&self.applied))
    }
}

/// A stored order's times, as its row has them.
#[derive(sqlx::FromRow)]
pub struct Row {
    pub order_uid: String,
    pub seq: i64,
    pub published_at: DateTime<Utc>,
    pub stored_at: DateTime<Utc>,
    pub committed_at: Option<DateTime<Utc>>,
}

/// The rows of `uids`, by id, with the commit time where the server tracks it.
pub async fn rows(url: &str, uids: &[String]) -> anyhow::Result<HashMap<String, Row>> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await?;
    let tracked: String = sqlx::query_scalar("SELECT current_setting('track_commit_timestamp')")
        .fetch_one(&pool)
        .await?;
    let committed = if tracked == "on" {
        "pg_xact_commit_timestamp(xmin)"
    } else {
        "NULL::timestamptz"
    };
    let found: Vec<Row> = sqlx::query_as(&format!(
        "SELECT order_uid, seq, published_at, stored_at, {committed} AS committed_at
         FROM orders WHERE order_uid = ANY($1)"
    ))
    .bind(uids)
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    Ok(found
        .into_iter()
        .map(|row| (row.order_uid.clone(), row))
        .collect())
}

/// Milliseconds from `from` to `to`.
pub fn ms_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e3
}
