//! The operator's SQL for dead letters, against a real Postgres: listing them, and replaying one
//! whose payload has become a valid order (as if the rule that refused it had since been fixed).
//! Dismissing one is in `dead_letters/dismiss.rs`.

mod dismiss;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use orders::db::{
    dead_letter, list_dead_letters, replay_dead_letter, store_batch, DeadLetterQuery, Envelope,
    Replay, Verdict, NOTIFY_CHANNEL,
};
use orders::Rule;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use testkit::TestDb;

use crate::support::sample_with;

/// When the broker published message `sequence` of a test.
fn published(sequence: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + sequence, 123_456_000)
        .unwrap()
}

/// A dead letter written directly, with any payload, rule and reason: its id.
async fn insert_dead_letter(pool: &PgPool, sequence: i64, payload: &[u8], rule: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO dead_letters (channel, stan_sequence, published_at, payload, rule, reason)
         VALUES ('orders', $1, $2, $3, $4, 'refused by a rule that has since been fixed')
         RETURNING id",
    )
    .bind(sequence)
    .bind(published(sequence))
    .bind(payload)
    .bind(rule)
    .fetch_one(pool)
    .await
    .expect("insert a dead letter")
}

/// The sample order with another id (and the matching transaction).
fn order_with_uid(uid: &str) -> Vec<u8> {
    sample_with(|order| {
        order["order_uid"] = uid.into();
        order["payment"]["transaction"] = uid.into();
    })
}

async fn listed_ids(pool: &PgPool, query: &DeadLetterQuery) -> Vec<i64> {
    list_dead_letters(pool, query)
        .await
        .expect("list the dead letters")
        .iter()
        .map(|letter| letter.id)
        .collect()
}

#[tokio::test]
async fn dead_letters_are_listed_newest_first_a_page_at_a_time() {
    let db = TestDb::new().await;
    let mut ids = Vec::new();
    for sequence in 1..=5 {
        ids.push(insert_dead_letter(&db.pool, sequence, b"{", "malformed_json").await);
    }
    ids.reverse();

    let page = |before_id, limit| DeadLetterQuery {
        before_id,
        limit,
        ..DeadLetterQuery::default()
    };
    assert_eq!(listed_ids(&db.pool, &page(None, 20)).await, ids);
    assert_eq!(listed_ids(&db.pool, &page(None, 2)).await, ids[..2]);
    assert_eq!(
        listed_ids(&db.pool, &page(Some(ids[1]), 2)).await,
        ids[2..4]
    );
    assert_eq!(listed_ids(&db.pool, &page(Some(ids[3]), 2)).await, ids[4..]);
    assert!(listed_ids(&db.pool, &page(Some(ids[4]), 2))
        .await
        .is_empty());
}

#[tokio::test]
async fn a_listed_dead_letter_carries_its_envelope_payload_rule_and_reason() {
    let db = TestDb::new().await;
    let id = insert_dead_letter(&db.pool, 7, b"\xff\x00 not utf-8", "invalid_utf8").await;

    let letters = list_dead_letters(&db.pool, &DeadLetterQuery::default())
        .await
        .unwrap();

    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.id, id);
    assert_eq!(letter.channel, "orders");
    assert_eq!(letter.stan_sequence, 7);
    assert_eq!(letter.published_at, published(7));
    assert_eq!(letter.payload, b"\xff\x00 not utf-8");
    assert_eq!(letter.rule, "invalid_utf8");
    assert_eq!(letter.reason, "refused by a rule that has since been fixed");
    assert_eq!(
        (letter.resolved_at, letter.resolution.clone()),
        (None, None)
    );
    assert_eq!(
        dead_letter(&db.pool, id).await.unwrap().as_ref(),
        Some(letter)
    );
    assert_eq!(dead_letter(&db.pool, id + 1).await.unwrap(), None);
}

#[tokio::test]
async fn the_listing_can_be_narrowed_to_one_rule() {
    let db = TestDb::new().await;
    let json = insert_dead_letter(&db.pool, 1, b"{", "malformed_json").await;
    insert_dead_letter(&db.pool, 2, b"\xff", "invalid_utf8").await;
    let json_again = insert_dead_letter(&db.pool, 3, b"[", "malformed_json").await;

    let query = DeadLetterQuery {
        rule: Some("malformed_json".into()),
        ..DeadLetterQuery::default()
    };
    assert_eq!(listed_ids(&db.pool, &query).await, [json_again, json]);
    let query = DeadLetterQuery {
        rule: Some("amount_mismatch".into()),
        ..DeadLetterQuery::default()
    };
    assert!(listed_ids(&db.pool, &query).await.is_empty());
}

#[tokio::test]
async fn a_resolved_dead_letter_is_listed_only_when_resolved_ones_are_asked_for() {
    let db = TestDb::new().await;
    let fixed = insert_dead_letter(&db.pool, 1, &order_with_uid("fixed"), "too_long").await;
    let broken = insert_dead_letter(&db.pool, 2, b"{", "malformed_json").await;
    replay_dead_letter(&db.pool, fixed).await.unwrap();

    assert_eq!(
        listed_ids(&db.pool, &DeadLetterQuery::default()).await,
        [broken]
    );
    let everything = DeadLetterQuery {
        include_resolved: true,
        ..DeadLetterQuery::default()
    };
    let letters = list_dead_letters(&db.pool, &everything).await.unwrap();
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[1].id, fixed);
    assert_eq!(letters[1].resolution.as_deref(), Some("replayed: stored"));
    assert!(letters[1].resolved_at.is_some());
}

#[tokio::test]
async fn replaying_a_dead_letter_that_is_now_valid_stores_the_order_notifies_and_resolves_it() {
    let db = TestDb::new().await;
    let id = insert_dead_letter(&db.pool, 42, &order_with_uid("late"), "too_long").await;
    let mut listener = PgListener::connect_with(&db.pool).await.unwrap();
    listener.listen(NOTIFY_CHANNEL).await.unwrap();

    let replay = replay_dead_letter(&db.pool, id).await.unwrap();

    assert_eq!(
        replay,
        Replay::Stored {
            order_uid: "late".into()
        }
    );
    let (seq, channel, sequence, published_at): (i64, String, i64, DateTime<Utc>) = sqlx::query_as(
        "SELECT seq, channel, stan_sequence, published_at FROM orders WHERE order_uid = 'late'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("the order is stored");
    assert_eq!((channel.as_str(), sequence), ("orders", 42));
    assert_eq!(published_at, published(42));
    assert_eq!(db.count("items").await, 1, "stored with its parts");
    let notification = tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .expect("a notification arrives")
        .unwrap();
    assert_eq!(notification.payload(), seq.to_string());
    let letter = dead_letter(&db.pool, id).await.unwrap().unwrap();
    assert_eq!(letter.resolution.as_deref(), Some("replayed: stored"));
    assert!(letter.resolved_at.is_some());

    let again = replay_dead_letter(&db.pool, id).await.unwrap();

    assert!(
        matches!(&again, Replay::AlreadyResolved { resolution, .. } if resolution == "replayed: stored"),
        "{again:?}"
    );
    assert_eq!(db.count("orders").await, 1);
    assert_eq!(db.count("order_conflicts").await, 0);
    assert_eq!(dead_letter(&db.pool, id).await.unwrap().unwrap(), letter);
}

#[tokio::test]
async fn replaying_a_dead_letter_that_is_still_invalid_changes_nothing_and_says_why() {
    let db = TestDb::new().await;
    let envelope = Envelope {
        channel: "orders".into(),
        sequence: 3,
        published_at: published(3),
        payload: b"{\"order_uid\": ".to_vec().into(),
    };
    let rejection = orders::parse_order(&envelope.payload).unwrap_err();
    store_batch(&db.pool, &[(envelope, Verdict::Rejected(rejection))])
        .await
        .unwrap();
    let letter = list_dead_letters(&db.pool, &DeadLetterQuery::default())
        .await
        .unwrap()
        .remove(0);

    let replay = replay_dead_letter(&db.pool, letter.id).await.unwrap();

    let Replay::StillRejected(rejection) = replay else {
        panic!("expected a rejection, got {replay:?}");
    };
    assert_eq!(rejection.rule, Rule::MalformedJson);
    assert!(rejection.reason.contains("JSON"), "{}", rejection.reason);
    assert_eq!(
        dead_letter(&db.pool, letter.id).await.unwrap(),
        Some(letter)
    );
    assert_eq!(db.count("orders").await, 0);
}

#[tokio::test]
async fn replaying_an_order_that_is_already_stored_resolves_it_as_a_duplicate() {
    let db = TestDb::new().await;
    let first = insert_dead_letter(&db.pool, 1, &order_with_uid("twice"), "too_long").await;
    let second = insert_dead_letter(&db.pool, 2, &order_with_uid("twice"), "too_long").await;
    replay_dead_letter(&db.pool, first).await.unwrap();

    let replay = replay_dead_letter(&db.pool, second).await.unwrap();

    assert_eq!(
        replay,
        Replay::Duplicate {
            order_uid: "twice".into()
        }
    );
    let letter = dead_letter(&db.pool, second).await.unwrap().unwrap();
    assert_eq!(letter.resolution.as_deref(), Some("replayed: duplicate"));
    assert_eq!(db.count("orders").await, 1);
}

#[tokio::test]
async fn replaying_another_version_of_a_stored_order_records_a_conflict() {
    let db = TestDb::new().await;
    let other_city = sample_with(|order| order["delivery"]["city"] = "Haifa".into());
    let stored = insert_dead_letter(&db.pool, 1, testkit::sample_order(), "too_long").await;
    let other = insert_dead_letter(&db.pool, 2, &other_city, "too_long").await;
    replay_dead_letter(&db.pool, stored).await.unwrap();

    let replay = replay_dead_letter(&db.pool, other).await.unwrap();

    assert_eq!(
        replay,
        Replay::Conflict {
            order_uid: "b563feb7b2b84b6test".into()
        }
    );
    let letter = dead_letter(&db.pool, other).await.unwrap().unwrap();
    assert_eq!(letter.resolution.as_deref(), Some("replayed: conflict"));
    let (sequence,): (i64,) = sqlx::query_as("SELECT stan_sequence FROM order_conflicts")
        .fetch_one(&db.pool)
        .await
        .expect("the conflict is recorded");
    assert_eq!(sequence, 2);
}

#[tokio::test]
async fn two_replays_of_the_same_dead_letter_at_once_store_it_once() {
    let db = TestDb::new().await;
    let id = insert_dead_letter(&db.pool, 1, &order_with_uid("raced"), "too_long").await;

    let (a, b) = tokio::join!(
        replay_dead_letter(&db.pool, id),
        replay_dead_letter(&db.pool, id)
    );

    let mut outcomes = [a.unwrap(), b.unwrap()];
    outcomes.sort_by_key(|replay| matches!(replay, Replay::AlreadyResolved { .. }));
    assert_eq!(
        outcomes[0],
        Replay::Stored {
            order_uid: "raced".into()
        }
    );
    assert!(
        matches!(outcomes[1], Replay::AlreadyResolved { .. }),
        "{:?}",
        outcomes[1]
    );
}

#[tokio::test]
async fn replaying_an_unknown_id_finds_nothing() {
    let db = TestDb::new().await;

    assert_eq!(
        replay_dead_letter(&db.pool, 12345).await.unwrap(),
        Replay::NotFound
    );
}
