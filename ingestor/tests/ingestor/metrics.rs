//! What the ingestor's `/metrics` counts, and its `/healthz`.

use std::time::{Duration, Instant};
use testkit::Transport;

use crate::helpers::{sample_with_uid, RunningIngestor, TestBed, PATIENCE};

/// The value of the sample named exactly `series` (name and labels), if it is there.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter_map(|line| line.rsplit_once(' '))
        .find(|(name, _)| *name == series)
        .map(|(_, value)| value.parse().expect("a number"))
}

/// The metrics text, once `ready` says it shows what the test waits for.
pub async fn metrics_once(ingestor: &RunningIngestor, ready: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let response = ingestor.get_metrics_server("/metrics").await;
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        if ready(&text) {
            return text;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "gave up waiting; the metrics are:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// Past 60 lines: one batch of mixed messages, then every counter it should have moved.
async fn the_metrics_count_what_was_stored_and_what_was_dead_lettered_by_rule(
    transport: Transport,
) {
    let bed = TestBed::new(transport).await;
    let ingestor = bed.start_ingestor("metrics-counts").await;
    // The same probe as the api's: 200 and the same JSON.
    let health = ingestor.get_metrics_server("/healthz").await;
    assert_eq!(health.status(), 200);
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "alive"}));

    bed.publisher
        .publish_all(vec![
            sample_with_uid("counted"),
            b"{\"order_uid\": ".to_vec(),
        ])
        .await;
    bed.wait_for_rows("orders", 1).await;
    bed.wait_for_rows("dead_letters", 1).await;

    // The counters move just after the commit that made the rows visible.
    let text = metrics_once(&ingestor, |text| {
        sample(text, "ingestor_acks_sent_total") == Some(2.0)
    })
    .await;
    assert_eq!(
        sample(&text, "ingestor_messages_received_total"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "ingestor_messages_stored_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "ingestor_messages_dead_lettered_total{rule=\"malformed_json\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "ingestor_messages_duplicate_total"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "ingestor_messages_conflicting_total"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "ingestor_database_retries_total"),
        Some(0.0),
        "{text}"
    );
    assert!(
        sample(&text, "ingestor_commit_duration_seconds_count").unwrap() >= 1.0,
        "{text}"
    );
    assert!(
        sample(&text, "ingestor_batch_size_messages_sum") == Some(2.0),
        "{text}"
    );
    ingestor.stop().await;
}

testkit::for_each_transport!(the_metrics_count_what_was_stored_and_what_was_dead_lettered_by_rule,);
