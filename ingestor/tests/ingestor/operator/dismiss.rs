//! `ingestor dead-letters dismiss ID... --reason TEXT`, run as the real binary: the reason and the
//! time are recorded and listed, a reason that says nothing is refused before anything connects,
//! and a letter resolved already keeps its resolution.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use testkit::TestDb;

use super::{dead_letter, dead_letter_with, ingestor, listed_ids, stdout};
use crate::helpers::sample_with_uid;

const REASON: &str = "the corrected order came by mail";

/// How dead letter `id` is resolved, as the database holds it: when, how and why.
async fn resolution(
    pool: &PgPool,
    id: i64,
) -> (Option<DateTime<Utc>>, Option<String>, Option<String>) {
    sqlx::query_as(
        "SELECT resolved_at, resolution, resolution_reason FROM dead_letters WHERE id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .expect("the dead letter")
}

#[tokio::test]
async fn dismiss_records_the_reason_and_the_time_and_only_the_listing_of_all_shows_the_letter() {
    let db = TestDb::new().await;
    let dismissed = dead_letter(&db.pool, 1, b"{").await;
    let waiting = dead_letter(&db.pool, 2, b"[").await;
    let id = dismissed.to_string();

    let output = ingestor(
        Some(&db.url),
        &["dead-letters", "dismiss", &id, "--reason", REASON],
    )
    .await;

    assert_eq!(stdout(&output, 0), format!("#{dismissed}: dismissed\n"));
    let (resolved_at, how, why) = resolution(&db.pool, dismissed).await;
    let resolved_at = resolved_at.expect("the time is recorded");
    assert_eq!(how.as_deref(), Some("dismissed"));
    assert_eq!(why.as_deref(), Some(REASON));

    let unresolved = stdout(&ingestor(Some(&db.url), &["dead-letters", "list"]).await, 0);
    assert_eq!(listed_ids(&unresolved), [waiting]);
    let all = stdout(
        &ingestor(Some(&db.url), &["dead-letters", "list", "--all"]).await,
        0,
    );
    assert_eq!(listed_ids(&all), [waiting, dismissed]);
    let block = all
        .split("\n#")
        .nth(1)
        .expect("the dismissed letter's block");
    assert!(
        block.contains(&format!(
            "  resolved {} (dismissed: {REASON})\n",
            resolved_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )),
        "{all}"
    );

    let json = stdout(
        &ingestor(Some(&db.url), &["dead-letters", "list", "--all", "--json"]).await,
        0,
    );
    let lines: Vec<Value> = json
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object a line"))
        .collect();
    assert_eq!(lines.len(), 2, "{json}");
    assert_eq!(lines[1]["id"], dismissed);
    assert_eq!(lines[1]["resolution"], "dismissed");
    assert_eq!(lines[1]["resolution_reason"], REASON);
    let listed_at: DateTime<Utc> = serde_json::from_value(lines[1]["resolved_at"].clone()).unwrap();
    assert_eq!(listed_at, resolved_at);
    assert_eq!(lines[0]["id"], waiting);
    for field in ["resolved_at", "resolution", "resolution_reason"] {
        assert_eq!(lines[0][field], Value::Null, "{field}");
    }
}

#[tokio::test]
async fn dismiss_refuses_a_blank_reason_or_one_with_control_characters_in_one_line_naming_reason() {
    let db = TestDb::new().await;
    let letter = dead_letter(&db.pool, 1, b"{").await;
    let id = letter.to_string();

    for (reason, why) in [
        ("", "must not be blank"),
        ("   ", "must not be blank"),
        ("two\nlines", "without control characters"),
        ("\u{1b}]0;owned\u{7}", "without control characters"),
    ] {
        let output = ingestor(
            Some(&db.url),
            &["dead-letters", "dismiss", &id, "--reason", reason],
        )
        .await;

        assert_eq!(output.status.code(), Some(2), "{reason:?}");
        assert!(output.stdout.is_empty(), "{reason:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{reason:?}: {stderr}");
        assert!(
            stderr.contains("for --reason: ") && stderr.contains(why),
            "{reason:?}: {stderr}"
        );
        for byte in [0x1b, 0x07] {
            assert!(!output.stderr.contains(&byte), "{reason:?}: {stderr:?}");
        }
    }
    let without = ingestor(Some(&db.url), &["dead-letters", "dismiss", &id]).await;
    assert_eq!(without.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert!(stderr.contains("--reason"), "{stderr}");

    assert_eq!(resolution(&db.pool, letter).await, (None, None, None));
}

#[tokio::test]
async fn dismiss_refuses_a_resolved_or_unknown_id_says_why_and_still_dismisses_the_others() {
    let db = TestDb::new().await;
    let replayed = dead_letter_with(
        &db.pool,
        1,
        &sample_with_uid("replayed_first"),
        "too_long",
        "refused by a rule that has since been fixed",
    )
    .await;
    let dismissed = dead_letter(&db.pool, 2, b"{").await;
    let waiting = dead_letter(&db.pool, 3, b"[").await;
    let (replayed_id, dismissed_id, waiting_id) = (
        replayed.to_string(),
        dismissed.to_string(),
        waiting.to_string(),
    );
    stdout(
        &ingestor(Some(&db.url), &["dead-letters", "replay", &replayed_id]).await,
        0,
    );
    let first = [
        "dead-letters",
        "dismiss",
        &dismissed_id,
        "--reason",
        "the first reason",
    ];
    stdout(&ingestor(Some(&db.url), &first).await, 0);
    let (replayed_at, _, _) = resolution(&db.pool, replayed).await;
    let (dismissed_at, _, _) = resolution(&db.pool, dismissed).await;

    let output = ingestor(
        Some(&db.url),
        &[
            "dead-letters",
            "dismiss",
            &replayed_id,
            &waiting_id,
            &dismissed_id,
            "999999",
            "--reason",
            REASON,
        ],
    )
    .await;

    let report = stdout(&output, 1);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 4, "{report}");
    assert!(
        lines[0].starts_with(&format!("#{replayed}: already resolved ")),
        "{report}"
    );
    assert!(
        lines[0].ends_with(" (replayed: stored), not dismissed"),
        "{report}"
    );
    assert_eq!(lines[1], format!("#{waiting}: dismissed"));
    assert!(
        lines[2].starts_with(&format!("#{dismissed}: already resolved ")),
        "{report}"
    );
    assert!(
        lines[2].ends_with(" (dismissed: the first reason), not dismissed"),
        "{report}"
    );
    assert_eq!(lines[3], "#999999: no dead letter has this id");

    assert_eq!(
        resolution(&db.pool, replayed).await,
        (replayed_at, Some("replayed: stored".into()), None)
    );
    assert_eq!(
        resolution(&db.pool, dismissed).await,
        (
            dismissed_at,
            Some("dismissed".into()),
            Some("the first reason".into())
        )
    );
    let (_, how, why) = resolution(&db.pool, waiting).await;
    assert_eq!(
        (how.as_deref(), why.as_deref()),
        (Some("dismissed"), Some(REASON))
    );
    assert_eq!(db.count("orders").await, 1, "only the replay stored one");
}

#[tokio::test]
async fn a_dismissal_reason_that_reorders_text_is_printed_escaped_wherever_it_is_shown() {
    let db = TestDb::new().await;
    let letter = dead_letter(&db.pool, 1, b"{").await;
    let id = letter.to_string();
    // Not a control character, so a valid reason; but U+202E shows what follows right to left.
    let reason = "by mail \u{202e}lium yb";
    stdout(
        &ingestor(
            Some(&db.url),
            &["dead-letters", "dismiss", &id, "--reason", reason],
        )
        .await,
        0,
    );

    let all = stdout(
        &ingestor(Some(&db.url), &["dead-letters", "list", "--all"]).await,
        0,
    );
    assert!(!all.contains('\u{202e}'), "{all:?}");
    assert!(
        all.contains(r"(dismissed: by mail \u{202e}lium yb)"),
        "{all}"
    );

    let json = stdout(
        &ingestor(Some(&db.url), &["dead-letters", "list", "--all", "--json"]).await,
        0,
    );
    assert!(!json.contains('\u{202e}'), "{json:?}");
    let listed: Value = serde_json::from_str(json.trim_end()).unwrap();
    assert_eq!(listed["resolution_reason"], reason);

    let replay = stdout(
        &ingestor(Some(&db.url), &["dead-letters", "replay", &id]).await,
        0,
    );
    assert!(!replay.contains('\u{202e}'), "{replay:?}");
    assert!(
        replay.ends_with("(dismissed: by mail \\u{202e}lium yb), nothing changed\n"),
        "{replay}"
    );
}
