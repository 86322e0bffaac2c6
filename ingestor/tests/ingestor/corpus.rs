//! A corpus of hostile messages, published in one stream to one ingestor. Each file of `corpus/`
//! is one message, byte for byte; `corpus/manifest.json` says where each must end up: stored as an
//! order with a given id, or dead-lettered under a given rule.

use std::collections::{BTreeSet, HashMap};
use testkit::Transport;

use serde::Deserialize;
use testkit::wait_until;

use crate::helpers::{sample_with_uid, Api, TestBed, PATIENCE};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ingestor/corpus");
/// Files of the corpus folder that are not messages.
const NOT_MESSAGES: [&str; 2] = ["manifest.json", ".gitattributes"];
/// The valid order published after the corpus.
const AFTER_THE_CORPUS: &str = "after-the-corpus";

#[derive(Debug, Deserialize)]
struct Manifest {
    messages: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    file: String,
    expect: Expect,
    about: String,
}

/// Where a message must end up.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Expect {
    /// Stored as the order with this `order_uid`.
    Stored(String),
    /// In `dead_letters` under this rule code.
    DeadLetter(String),
}

/// A message of the corpus: its entry in the manifest and its bytes.
struct Message {
    entry: Entry,
    bytes: Vec<u8>,
}

impl Message {
    fn stored_uid(&self) -> Option<&str> {
        match &self.entry.expect {
            Expect::Stored(uid) => Some(uid),
            Expect::DeadLetter(_) => None,
        }
    }
}

/// Every message of the corpus, in the order of the manifest.
fn corpus() -> Vec<Message> {
    let manifest = std::fs::read(format!("{CORPUS}/manifest.json")).expect("read the manifest");
    let manifest: Manifest = serde_json::from_slice(&manifest).expect("a valid manifest");
    manifest
        .messages
        .into_iter()
        .map(|entry| {
            let path = format!("{CORPUS}/{}", entry.file);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
            Message { entry, bytes }
        })
        .collect()
}

#[test]
fn the_manifest_lists_every_file_of_the_corpus_once_and_each_stored_order_has_its_own_id() {
    let corpus = corpus();
    let listed: Vec<&str> = corpus.iter().map(|m| m.entry.file.as_str()).collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(CORPUS)
        .expect("list the corpus")
        .map(|f| {
            f.expect("a file")
                .file_name()
                .into_string()
                .expect("a UTF-8 name")
        })
        .filter(|name| !NOT_MESSAGES.contains(&name.as_str()))
        .collect();

    assert_eq!(
        listed.iter().copied().collect::<BTreeSet<_>>(),
        on_disk.iter().map(String::as_str).collect(),
        "files and manifest differ"
    );
    assert_eq!(listed.len(), on_disk.len(), "a file is listed twice");
    let uids: Vec<&str> = corpus.iter().filter_map(Message::stored_uid).collect();
    assert_eq!(
        uids.iter().collect::<BTreeSet<_>>().len(),
        uids.len(),
        "two valid orders share an id"
    );
    assert!(corpus.iter().all(|m| !m.entry.about.is_empty()));
}

// Past 60 lines: the corpus goes through once, then each outcome of the manifest is checked.
async fn every_message_of_the_corpus_ends_up_where_the_manifest_says_and_the_stream_moves_on(
    transport: Transport,
) {
    let corpus = corpus();
    let bed = TestBed::new(transport).await;
    let ingestor = bed.start_ingestor("corpus").await;

    let mut messages: Vec<Vec<u8>> = corpus.iter().map(|m| m.bytes.clone()).collect();
    messages.push(sample_with_uid(AFTER_THE_CORPUS));
    bed.publisher.publish_all(messages).await;
    // Batches commit in the order of the stream: once the last message is stored, all are.
    wait_until("the order after the corpus", PATIENCE, || async {
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM orders WHERE order_uid = $1)")
            .bind(AFTER_THE_CORPUS)
            .fetch_one(&bed.db.pool)
            .await
            .expect("look for the order")
    })
    .await;

    // The broker numbers the messages of a fresh channel from 1, in the order they were published.
    let orders = stored_orders(&bed).await;
    let letters = dead_letters(&bed).await;
    let wrong: Vec<String> = corpus
        .iter()
        .zip(1..)
        .filter_map(|(m, seq)| {
            check(m, orders.get(&seq), letters.get(&seq))
                .err()
                .map(|e| format!("{} ({}): {e}", m.entry.file, m.entry.about))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} messages did not end up where the manifest says:\n{}",
        wrong.len(),
        corpus.len(),
        wrong.join("\n")
    );
    let after = corpus.len() as i64 + 1;
    assert_eq!(
        orders.get(&after).map(|o| o.uid.as_str()),
        Some(AFTER_THE_CORPUS),
        "the order after the corpus is stored under its own sequence"
    );

    // Nothing else appeared: no row for a message that is not in the stream, no conflict.
    let valid = corpus.iter().filter(|m| m.stored_uid().is_some()).count() as i64;
    let with_the_last = valid + 1;
    assert_eq!(bed.db.count("orders").await, with_the_last);
    assert_eq!(
        bed.db.count("dead_letters").await,
        corpus.len() as i64 - valid
    );
    assert_eq!(bed.db.count("deliveries").await, with_the_last);
    assert_eq!(bed.db.count("payments").await, with_the_last);
    let items: usize = orders
        .values()
        .map(|o| orders::parse_order(o.document.as_bytes()).map_or(0, |v| v.order().items.len()))
        .sum();
    assert_eq!(bed.db.count("items").await, items as i64);
    assert_eq!(bed.db.count("order_conflicts").await, 0);
    assert!(ingestor.is_running(), "the ingestor is still running");
    ingestor.stop().await;
}

async fn the_valid_orders_of_the_corpus_are_served_by_the_api_byte_for_byte_as_stored(
    transport: Transport,
) {
    let valid: Vec<Message> = corpus()
        .into_iter()
        .filter(|m| m.stored_uid().is_some())
        .collect();
    let bed = TestBed::new(transport).await;
    let ingestor = bed.start_ingestor("corpus-api").await;
    bed.publisher
        .publish_all(valid.iter().map(|m| m.bytes.clone()).collect())
        .await;
    bed.wait_for_rows("orders", valid.len() as i64).await;
    ingestor.stop().await;

    let api = Api::start(&bed.db.url).await;
    let stored = stored_orders(&bed).await;
    for m in &valid {
        let uid = m.stored_uid().expect("a valid order");
        let response = api.get(&format!("/api/v1/orders/{uid}")).await;
        assert_eq!(response.status(), 200, "{}", m.entry.file);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("application/json"),
            "{}: {content_type}",
            m.entry.file
        );
        let body = response.bytes().await.expect("the body");
        let document = stored
            .values()
            .find(|o| o.uid == uid)
            .map(|o| o.document.as_bytes())
            .expect("the stored order");
        assert_eq!(
            body, document,
            "{}: served other bytes than stored",
            m.entry.file
        );
    }
    api.stop().await;
}

/// Whether a message ended up where its entry says.
fn check(
    m: &Message,
    order: Option<&StoredOrder>,
    letter: Option<&DeadLetter>,
) -> Result<(), String> {
    match (&m.entry.expect, order, letter) {
        (Expect::Stored(uid), Some(order), None) => check_stored(m, uid, order),
        (Expect::DeadLetter(rule), None, Some(letter)) => check_dead_letter(m, rule, letter),
        (_, None, None) => Err("stored nowhere".into()),
        (_, Some(order), None) => Err(format!("stored as order {:?}", order.uid)),
        (_, None, Some(letter)) => Err(format!(
            "dead-lettered as {}: {}",
            letter.rule, letter.reason
        )),
        (_, Some(_), Some(_)) => Err("both stored and dead-lettered".into()),
    }
}

/// Stored under the expected id, as the canonical document, which says what the message said.
fn check_stored(m: &Message, uid: &str, order: &StoredOrder) -> Result<(), String> {
    if order.uid != uid {
        return Err(format!("stored as {:?}, not {uid:?}", order.uid));
    }
    let canonical = orders::parse_order(&m.bytes)
        .map_err(|r| format!("stored, yet validation refuses it: {r}"))?;
    if order.document.as_bytes() != canonical.document().as_ref() {
        return Err(format!(
            "the stored document is not the canonical one: {}",
            order.document
        ));
    }
    let published: serde_json::Value =
        serde_json::from_slice(&m.bytes).map_err(|e| format!("the file is not JSON: {e}"))?;
    let document: serde_json::Value = serde_json::from_str(&order.document)
        .map_err(|e| format!("the stored document is not JSON: {e}"))?;
    if published != document {
        return Err(format!(
            "the stored document says other than the message: {}",
            order.document
        ));
    }
    Ok(())
}

/// Dead-lettered under the expected rule, with the message's bytes and a reason.
fn check_dead_letter(m: &Message, rule: &str, letter: &DeadLetter) -> Result<(), String> {
    if letter.rule != rule {
        return Err(format!(
            "dead-lettered as {}, not {rule}: {}",
            letter.rule, letter.reason
        ));
    }
    if letter.payload != m.bytes {
        return Err(format!(
            "the payload has {} bytes, not the {} published",
            letter.payload.len(),
            m.bytes.len()
        ));
    }
    if letter.reason.trim().is_empty() {
        return Err("the reason is empty".into());
    }
    Ok(())
}

struct StoredOrder {
    uid: String,
    document: String,
}

struct DeadLetter {
    payload: Vec<u8>,
    rule: String,
    reason: String,
}

/// Every stored order by the broker's sequence of its message.
async fn stored_orders(bed: &TestBed) -> HashMap<i64, StoredOrder> {
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT stan_sequence, order_uid, document::text FROM orders")
            .fetch_all(&bed.db.pool)
            .await
            .expect("read the orders");
    rows.into_iter()
        .map(|(seq, uid, document)| (seq, StoredOrder { uid, document }))
        .collect()
}

/// Every dead letter by the broker's sequence of its message.
async fn dead_letters(bed: &TestBed) -> HashMap<i64, DeadLetter> {
    let rows: Vec<(i64, Vec<u8>, String, String)> =
        sqlx::query_as("SELECT stan_sequence, payload, rule, reason FROM dead_letters")
            .fetch_all(&bed.db.pool)
            .await
            .expect("read the dead letters");
    rows.into_iter()
        .map(|(seq, payload, rule, reason)| {
            (
                seq,
                DeadLetter {
                    payload,
                    rule,
                    reason,
                },
            )
        })
        .collect()
}

testkit::for_each_transport!(
    every_message_of_the_corpus_ends_up_where_the_manifest_says_and_the_stream_moves_on,
    the_valid_orders_of_the_corpus_are_served_by_the_api_byte_for_byte_as_stored,
);
