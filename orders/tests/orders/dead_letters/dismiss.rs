//! Dismissing a dead letter: resolved without storing anything, with the operator's reason and the
//! time, never over another resolution; and the reason it takes.

use chrono::{DateTime, Utc};
use orders::db::{
    dead_letter, dismiss_dead_letter, list_dead_letters, replay_dead_letter, DeadLetterQuery,
    Dismissal, DismissalReason, InvalidReason, Replay,
};
use sqlx::PgPool;
use testkit::TestDb;

use super::{insert_dead_letter, listed_ids, order_with_uid};

fn reason(text: &str) -> DismissalReason {
    DismissalReason::parse(text).expect("a valid reason")
}

async fn database_now(pool: &PgPool) -> DateTime<Utc> {
    sqlx::query_scalar("SELECT now()")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[test]
fn a_blank_reason_is_refused() {
    for text in ["", " ", "\u{3000}  "] {
        assert_eq!(
            DismissalReason::parse(text),
            Err(InvalidReason::Blank),
            "{text:?}"
        );
    }
}

#[test]
fn a_reason_with_a_control_character_is_refused() {
    for text in [
        "two\nlines",
        "ends with a line break\n",
        "a\ttab",
        "\u{1b}[2J cleared",
        "a nul \u{0}",
        "a C1 control \u{9b}",
    ] {
        assert_eq!(
            DismissalReason::parse(text),
            Err(InvalidReason::ControlCharacter),
            "{text:?}"
        );
    }
}

#[test]
fn a_reason_is_kept_without_the_blanks_around_it() {
    assert_eq!(
        reason("  the corrected order came by mail ").as_str(),
        "the corrected order came by mail"
    );
}

#[tokio::test]
async fn dismissing_a_dead_letter_resolves_it_with_the_reason_and_the_time_and_stores_nothing() {
    let db = TestDb::new().await;
    let id = insert_dead_letter(&db.pool, 1, &order_with_uid("came_by_mail"), "too_long").await;
    let before = database_now(&db.pool).await;

    let dismissal = dismiss_dead_letter(&db.pool, id, &reason("the corrected order came by mail"))
        .await
        .unwrap();

    let Dismissal::Dismissed { resolved_at } = dismissal else {
        panic!("expected a dismissal, got {dismissal:?}");
    };
    assert!(
        before <= resolved_at && resolved_at <= database_now(&db.pool).await,
        "{resolved_at}"
    );
    let letter = dead_letter(&db.pool, id).await.unwrap().unwrap();
    assert_eq!(letter.resolved_at, Some(resolved_at));
    assert_eq!(letter.resolution.as_deref(), Some(Dismissal::RESOLUTION));
    assert_eq!(letter.resolution.as_deref(), Some("dismissed"));
    assert_eq!(
        letter.resolution_reason.as_deref(),
        Some("the corrected order came by mail")
    );
    assert_eq!(db.count("orders").await, 0, "a dismissal stores nothing");
}

#[tokio::test]
async fn a_dismissed_dead_letter_is_listed_with_its_reason_only_when_resolved_ones_are_asked_for() {
    let db = TestDb::new().await;
    let dismissed = insert_dead_letter(&db.pool, 1, b"{", "malformed_json").await;
    let waiting = insert_dead_letter(&db.pool, 2, b"{", "malformed_json").await;
    dismiss_dead_letter(&db.pool, dismissed, &reason("sent again, fixed"))
        .await
        .unwrap();

    assert_eq!(
        listed_ids(&db.pool, &DeadLetterQuery::default()).await,
        [waiting]
    );
    let everything = DeadLetterQuery {
        include_resolved: true,
        ..DeadLetterQuery::default()
    };
    let letters = list_dead_letters(&db.pool, &everything).await.unwrap();
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[1].id, dismissed);
    assert_eq!(letters[1].resolution.as_deref(), Some("dismissed"));
    assert_eq!(
        letters[1].resolution_reason.as_deref(),
        Some("sent again, fixed")
    );
    assert!(letters[1].resolved_at.is_some());
    assert_eq!(
        (
            letters[0].resolution.as_deref(),
            letters[0].resolution_reason.as_deref()
        ),
        (None, None)
    );
}

#[tokio::test]
async fn a_replayed_dead_letter_cannot_be_dismissed_and_keeps_its_resolution() {
    let db = TestDb::new().await;
    let id = insert_dead_letter(&db.pool, 1, &order_with_uid("replayed"), "too_long").await;
    replay_dead_letter(&db.pool, id).await.unwrap();
    let replayed = dead_letter(&db.pool, id).await.unwrap().unwrap();

    let dismissal = dismiss_dead_letter(&db.pool, id, &reason("too late"))
        .await
        .unwrap();

    assert_eq!(
        dismissal,
        Dismissal::AlreadyResolved {
            resolved_at: replayed.resolved_at.unwrap(),
            resolution: "replayed: stored".into(),
            resolution_reason: None,
        }
    );
    assert_eq!(dead_letter(&db.pool, id).await.unwrap().unwrap(), replayed);
}

#[tokio::test]
async fn a_dismissed_dead_letter_cannot_be_dismissed_again_and_keeps_its_first_reason() {
    let db = TestDb::new().await;
    let id = insert_dead_letter(&db.pool, 1, b"{", "malformed_json").await;
    dismiss_dead_letter(&db.pool, id, &reason("the first reason"))
        .await
        .unwrap();
    let dismissed = dead_letter(&db.pool, id).await.unwrap().unwrap();

    let again = dismiss_dead_letter(&db.pool, id, &reason("another reason"))
        .await
        .unwrap();

    assert_eq!(
        again,
        Dismissal::AlreadyResolved {
            resolved_at: dismissed.resolved_at.unwrap(),
            resolution: "dismissed".into(),
            resolution_reason: Some("the first reason".into()),
        }
    );
    assert_eq!(dead_letter(&db.pool, id).await.unwrap().unwrap(), dismissed);
}

#[tokio::test]
async fn a_dismissed_dead_letter_is_not_stored_by_a_replay_later() {
    let db = TestDb::new().await;
    let id = insert_dead_letter(&db.pool, 1, &order_with_uid("dismissed"), "too_long").await;
    dismiss_dead_letter(&db.pool, id, &reason("came by mail"))
        .await
        .unwrap();

    let replay = replay_dead_letter(&db.pool, id).await.unwrap();

    assert!(
        matches!(
            &replay,
            Replay::AlreadyResolved { resolution, resolution_reason, .. }
                if resolution == "dismissed" && resolution_reason.as_deref() == Some("came by mail")
        ),
        "{replay:?}"
    );
    assert_eq!(db.count("orders").await, 0);
}

#[tokio::test]
async fn dismissing_an_unknown_id_finds_nothing() {
    let db = TestDb::new().await;

    assert_eq!(
        dismiss_dead_letter(&db.pool, 12345, &reason("no such letter"))
            .await
            .unwrap(),
        Dismissal::NotFound
    );
}

#[tokio::test]
async fn a_dismissal_and_a_replay_at_once_resolve_the_dead_letter_once() {
    let db = TestDb::new().await;
    let id = insert_dead_letter(&db.pool, 1, &order_with_uid("raced"), "too_long").await;
    let why = reason("raced a replay");

    let (replay, dismissal) = tokio::join!(
        replay_dead_letter(&db.pool, id),
        dismiss_dead_letter(&db.pool, id, &why)
    );

    let (replay, dismissal) = (replay.unwrap(), dismissal.unwrap());
    let letter = dead_letter(&db.pool, id).await.unwrap().unwrap();
    match (&replay, &dismissal) {
        (Replay::Stored { .. }, Dismissal::AlreadyResolved { resolution, .. }) => {
            assert_eq!(resolution, "replayed: stored");
            assert_eq!(letter.resolution.as_deref(), Some("replayed: stored"));
            assert_eq!(db.count("orders").await, 1);
        }
        (Replay::AlreadyResolved { resolution, .. }, Dismissal::Dismissed { .. }) => {
            assert_eq!(resolution, "dismissed");
            assert_eq!(letter.resolution.as_deref(), Some("dismissed"));
            assert_eq!(db.count("orders").await, 0);
        }
        outcomes => panic!("not resolved exactly once: {outcomes:?}"),
    }
}

#[tokio::test]
async fn the_database_holds_a_reason_with_every_dismissal_and_with_nothing_else() {
    let db = TestDb::new().await;
    let id = insert_dead_letter(&db.pool, 1, b"{", "malformed_json").await;

    for (resolution, reason, refused_by) in [
        (Some("dismissed"), None, "dead_letters_dismissal_has_reason"),
        (
            Some("dismissed"),
            Some(" \t "),
            "dead_letters_resolution_reason_not_blank",
        ),
        (
            Some("replayed: stored"),
            Some("a reason"),
            "dead_letters_dismissal_has_reason",
        ),
        (None, Some("a reason"), "dead_letters_dismissal_has_reason"),
    ] {
        let update = sqlx::query(
            "UPDATE dead_letters
             SET resolved_at = CASE WHEN $2::text IS NULL THEN NULL ELSE now() END,
                 resolution = $2, resolution_reason = $3
             WHERE id = $1",
        )
        .bind(id)
        .bind(resolution)
        .bind(reason)
        .execute(&db.pool)
        .await;

        let error = update.expect_err("the database refuses it");
        assert_eq!(
            error.as_database_error().and_then(|e| e.constraint()),
            Some(refused_by),
            "{resolution:?} {reason:?}: {error}"
        );
    }
    let letter = dead_letter(&db.pool, id).await.unwrap().unwrap();
    assert_eq!(letter.resolution, None);
}
