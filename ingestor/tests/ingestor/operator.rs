//! The operator's commands, run as the real binary: `ingestor dead-letters list` and
//! `ingestor dead-letters replay`, with nothing in the environment but `DATABASE_URL`;
//! `ingestor dead-letters dismiss` in `operator/dismiss.rs`.

mod dismiss;

use std::process::Output;

use base64::Engine;
use chrono::Utc;
use ingestor::cli::Invocation;
use orders::db::{store_batch, Envelope, Verdict};
use service_kit::settings::ExposeSecret;
use sqlx::PgPool;
use testkit::TestDb;
use tokio::process::Command;

use crate::helpers::sample_with_uid;

/// The ingestor binary with `args`, with `DATABASE_URL` set when given, and nothing else in its
/// environment.
async fn ingestor(database_url: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ingestor"));
    command.env_clear().args(args);
    if let Some(url) = database_url {
        command.env("DATABASE_URL", url);
    }
    command.output().await.expect("run the ingestor binary")
}

/// Its standard output, after checking that it exited with `code`.
fn stdout(output: &Output, code: i32) -> String {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("the output is UTF-8")
}

/// A message refused by validation, stored as the ingestor stores it.
async fn dead_letter(pool: &PgPool, sequence: u64, payload: &[u8]) -> i64 {
    let envelope = Envelope {
        channel: "orders".into(),
        sequence,
        published_at: Utc::now(),
        payload: payload.to_vec().into(),
    };
    let rejection = orders::parse_order(payload).expect_err("an invalid message");
    store_batch(pool, &[(envelope, Verdict::Rejected(rejection))])
        .await
        .expect("store the dead letter");
    id_of(pool, sequence).await
}

/// A dead letter written directly, with any payload, rule and reason, as if it had been refused by
/// a rule that has since been fixed.
async fn dead_letter_with(
    pool: &PgPool,
    sequence: i64,
    payload: &[u8],
    rule: &str,
    reason: &str,
) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO dead_letters (channel, stan_sequence, published_at, payload, rule, reason)
         VALUES ('orders', $1, now(), $2, $3, $4) RETURNING id",
    )
    .bind(sequence)
    .bind(payload)
    .bind(rule)
    .bind(reason)
    .fetch_one(pool)
    .await
    .expect("insert a dead letter")
}

async fn id_of(pool: &PgPool, sequence: u64) -> i64 {
    sqlx::query_scalar("SELECT id FROM dead_letters WHERE stan_sequence = $1")
        .bind(i64::try_from(sequence).unwrap())
        .fetch_one(pool)
        .await
        .expect("the dead letter")
}

/// The ids of a text listing, in order.
fn listed_ids(listing: &str) -> Vec<i64> {
    listing
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|line| line.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn the_help_still_documents_every_setting_of_the_consumer_and_names_the_operator_commands() {
    let output = ingestor(None, &["--help"]).await;

    let help = stdout(&output, 0);
    for variable in [
        "DATABASE_URL",
        "NATS_URL",
        "STAN_CLUSTER_ID",
        "STAN_CHANNEL",
        "STAN_DURABLE",
        "STAN_CLIENT_ID",
        "STAN_MAX_IN_FLIGHT",
        "STAN_ACK_WAIT_SECS",
        "BATCH_MAX",
        "LOG_FORMAT",
    ] {
        assert!(
            help.contains(&format!("[env: {variable}")),
            "{variable}: {help}"
        );
    }
    assert!(help.contains("dead-letters"), "{help}");
    ingestor::cli::command().debug_assert();
}

#[test]
fn without_a_command_the_ingestor_consumes_with_the_settings_it_always_took() {
    let invocation = Invocation::try_from_args([
        "ingestor",
        "--database-url",
        "postgres://ingestor@db/orders",
        "--batch-max",
        "7",
        "--stan-channel",
        "other",
    ])
    .unwrap();

    let Invocation::Consume(settings) = invocation else {
        panic!("expected the consumer, got {invocation:?}");
    };
    assert_eq!(
        settings.database.database_url.expose_secret(),
        "postgres://ingestor@db/orders"
    );
    assert_eq!(settings.batch_max, 7);
    assert_eq!(settings.stan_channel, "other");
    assert_eq!(settings.nats_url, "nats://127.0.0.1:4222");
}

#[tokio::test]
async fn without_a_command_the_ingestor_still_requires_a_database_url() {
    let output = ingestor(None, &[]).await;

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--database-url"), "{stderr}");
}

#[tokio::test]
async fn the_consumers_options_do_not_go_with_an_operator_command() {
    let output = ingestor(
        Some("postgres://nobody@127.0.0.1:1/none"),
        &["--batch-max", "7", "dead-letters", "list"],
    )
    .await;

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

#[tokio::test]
async fn the_listing_shows_each_dead_letter_with_its_rule_reason_and_the_start_of_its_payload() {
    let db = TestDb::new().await;
    let malformed = dead_letter(&db.pool, 1, b"{\"order_uid\": ").await;
    let long = format!("[{}1]", "1,".repeat(100));
    let truncated = dead_letter(&db.pool, 2, long.as_bytes()).await;

    let listing = stdout(&ingestor(Some(&db.url), &["dead-letters", "list"]).await, 0);

    let blocks: Vec<&str> = listing.split("\n#").collect();
    assert_eq!(blocks.len(), 2, "{listing}");
    assert!(
        blocks[0].starts_with(&format!("#{truncated}  received ")),
        "newest first: {listing}"
    );
    assert!(
        blocks[0].contains("channel orders  sequence 2  schema_mismatch"),
        "{listing}"
    );
    assert!(blocks[0].contains("payload: [1,1,1,"), "{listing}");
    assert!(blocks[0].contains("…"), "a long payload is cut: {listing}");
    assert!(
        blocks[0].contains(&format!("({} bytes)", long.len())),
        "{listing}"
    );
    assert!(
        blocks[1].starts_with(&format!("{malformed}  received ")),
        "{listing}"
    );
    assert!(
        blocks[1].contains("channel orders  sequence 1  malformed_json"),
        "{listing}"
    );
    assert!(blocks[1].contains("reason:  the message is not well-formed JSON"));
    assert!(
        blocks[1].contains("payload: {\"order_uid\":  (14 bytes)"),
        "{listing}"
    );
}

#[tokio::test]
async fn terminal_escape_sequences_and_nul_bytes_in_a_dead_letter_are_printed_escaped() {
    let db = TestDb::new().await;
    dead_letter(&db.pool, 1, b"\x1b[31mred\x00 and \xff\xfe").await;
    dead_letter_with(
        &db.pool,
        2,
        b"{}",
        "schema_mismatch",
        "unknown field `\x1b]0;owned\x07`",
    )
    .await;

    let output = ingestor(Some(&db.url), &["dead-letters", "list"]).await;

    let listing = stdout(&output, 0);
    for byte in [0x1b, 0x00, 0x07, 0xff] {
        assert!(
            !output.stdout.contains(&byte),
            "byte {byte:#04x} reached the terminal: {listing:?}"
        );
    }
    assert!(
        listing.contains(r"payload: \u{1b}[31mred\u{0} and \xff\xfe (16 bytes)"),
        "{listing}"
    );
    assert!(
        listing.contains(r"reason:  unknown field `\u{1b}]0;owned\u{7}`"),
        "{listing}"
    );
}

#[tokio::test]
async fn the_json_listing_gives_the_whole_payload_as_text_or_base64_and_no_raw_control_bytes() {
    let db = TestDb::new().await;
    let binary = dead_letter(&db.pool, 1, b"\xff\x1b[2J").await;
    let text = dead_letter(&db.pool, 2, "{\"x\": \"\u{1b}[2J\u{9b}\"".as_bytes()).await;

    let output = ingestor(Some(&db.url), &["dead-letters", "list", "--json"]).await;

    let listing = stdout(&output, 0);
    assert!(!output.stdout.contains(&0x1b), "{listing:?}");
    assert!(!listing.contains('\u{9b}'), "a C1 control is escaped too");
    let lines: Vec<serde_json::Value> = listing
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object a line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], text);
    assert_eq!(lines[0]["payload"], "{\"x\": \"\u{1b}[2J\u{9b}\"");
    assert_eq!(lines[0]["payload_base64"], serde_json::Value::Null);
    assert_eq!(lines[0]["channel"], "orders");
    assert_eq!(lines[0]["stan_sequence"], 2);
    assert_eq!(lines[1]["id"], binary);
    assert_eq!(lines[1]["payload"], serde_json::Value::Null);
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(lines[1]["payload_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(decoded, b"\xff\x1b[2J");
    assert_eq!(lines[1]["payload_bytes"], 5);
}

#[tokio::test]
async fn the_listing_filters_by_rule_and_pages_below_an_id() {
    let db = TestDb::new().await;
    let first = dead_letter(&db.pool, 1, b"{").await;
    dead_letter(&db.pool, 2, b"\xff").await;
    let third = dead_letter(&db.pool, 3, b"{\"order_uid\": ").await;

    let args = [
        "dead-letters",
        "list",
        "--rule",
        "malformed_json",
        "--limit",
        "1",
    ];
    let page = stdout(&ingestor(Some(&db.url), &args).await, 0);
    assert_eq!(listed_ids(&page), [third]);
    assert!(
        page.contains(&format!("more may follow: --before-id {third}")),
        "{page}"
    );

    let before = third.to_string();
    let args = [
        "dead-letters",
        "list",
        "--rule",
        "malformed_json",
        "--before-id",
        &before,
    ];
    let next = stdout(&ingestor(Some(&db.url), &args).await, 0);
    assert_eq!(listed_ids(&next), [first]);
    assert!(!next.contains("more may follow"), "{next}");
}

#[tokio::test]
async fn replay_stores_what_is_valid_now_says_why_the_rest_is_not_and_a_second_replay_changes_nothing(
) {
    let db = TestDb::new().await;
    let fixed = dead_letter_with(
        &db.pool,
        1,
        &sample_with_uid("fixed_upstream"),
        "too_long",
        "refused by a rule that has since been fixed",
    )
    .await;
    let broken = dead_letter(&db.pool, 2, b"{\"order_uid\": ").await;
    let (fixed_id, broken_id) = (fixed.to_string(), broken.to_string());

    let output = ingestor(
        Some(&db.url),
        &["dead-letters", "replay", &fixed_id, &broken_id, "999999"],
    )
    .await;

    let report = stdout(&output, 1);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 3, "{report}");
    assert_eq!(lines[0], format!("#{fixed}: stored order fixed_upstream"));
    assert!(
        lines[1].starts_with(&format!("#{broken}: still rejected, nothing changed: ")),
        "{report}"
    );
    assert!(lines[1].ends_with("[malformed_json]"), "{report}");
    assert_eq!(lines[2], "#999999: no dead letter has this id");
    assert_eq!(db.count("orders").await, 1);

    let again = stdout(
        &ingestor(Some(&db.url), &["dead-letters", "replay", &fixed_id]).await,
        0,
    );
    assert!(
        again.starts_with(&format!("#{fixed}: already resolved ")),
        "{again}"
    );
    assert!(again.contains("(replayed: stored)"), "{again}");
    assert_eq!(db.count("orders").await, 1);

    let unresolved = stdout(&ingestor(Some(&db.url), &["dead-letters", "list"]).await, 0);
    assert_eq!(listed_ids(&unresolved), [broken]);
    let all = stdout(
        &ingestor(Some(&db.url), &["dead-letters", "list", "--all"]).await,
        0,
    );
    assert_eq!(listed_ids(&all), [broken, fixed]);
    assert!(all.contains("resolved "), "{all}");
    assert!(all.contains("(replayed: stored)"), "{all}");
}

#[tokio::test]
async fn an_operator_command_without_a_database_url_says_so() {
    let output = ingestor(None, &["dead-letters", "list"]).await;

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--database-url"), "{stderr}");
}
