//! `GET /api/v1/events`: new orders as server-sent events, resumed after a dropped connection
//! without a gap, ended when the api stops; a reader that stops reading is dropped.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use service_kit::settings::HttpLimitSettings;
use testkit::TestDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{order_with_uid, settings, store, TestApp, PATIENCE};

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
struct Event {
    kind: String,
    id: String,
    data: serde_json::Value,
}

/// An open event stream, read event by event.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    async fn open(app: &TestApp, query: &str, last_event_id: Option<i64>) -> Stream {
        let mut request = app
            .client
            .get(format!("{}/api/v1/events{query}", app.address));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.expect("GET /api/v1/events");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "the stream's content type"
        );
        Stream {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped); `None` when the stream ended.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut kind, mut id, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        kind = v.to_string();
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        id = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if kind.is_empty() && data.is_empty() {
                    continue; // a keep-alive comment
                }
                let data = serde_json::from_str(&data).expect("an event's data is JSON");
                return Some(Event { kind, id, data });
            }
            let chunk = tokio::time::timeout(PATIENCE, self.response.chunk())
                .await
                .expect("an event within the patience")
                .expect("the stream's body")?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next `n` events, each an `order`: their (seq, order_uid).
    async fn orders(&mut self, n: usize) -> Vec<(i64, String)> {
        let mut orders = Vec::new();
        while orders.len() < n {
            let event = self.next().await.expect("the stream goes on");
            assert_eq!(event.kind, "order", "{event:?}");
            let seq = event.data["seq"].as_i64().unwrap();
            assert_eq!(event.id, seq.to_string(), "the event's id is its seq");
            assert_eq!(event.data["type"], "order");
            orders.push((seq, event.data["order_uid"].as_str().unwrap().to_string()));
        }
        orders
    }
}

fn uids(orders: &[(i64, String)]) -> Vec<&str> {
    orders.iter().map(|(_, uid)| uid.as_str()).collect()
}

async fn store_named(db: &TestDb, names: &[&str]) {
    let messages: Vec<Vec<u8>> = names.iter().map(|uid| order_with_uid(uid)).collect();
    store(&db.pool, &messages).await;
}

#[tokio::test]
async fn a_new_stream_starts_with_the_latest_orders_and_then_tells_each_new_one() {
    let db = TestDb::new().await;
    let before: Vec<String> = (0..25).map(|i| format!("before_{i:02}")).collect();
    store_named(&db, &before.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let app = TestApp::spawn(&db.url).await;

    let mut stream = Stream::open(&app, "", None).await;
    let latest = stream.orders(20).await;
    let expected: Vec<&str> = before[5..].iter().map(String::as_str).collect();
    assert_eq!(uids(&latest), expected, "the latest 20, oldest first");

    store_named(&db, &["new_1", "new_2"]).await;
    store_named(&db, &["new_3"]).await;
    let new = stream.orders(3).await;
    assert_eq!(uids(&new), ["new_1", "new_2", "new_3"]);
    assert!(
        new.windows(2).all(|w| w[0].0 < w[1].0),
        "in seq order: {new:?}"
    );
    assert!(new[0].0 > latest[19].0);
}

#[tokio::test]
async fn a_stream_resumed_from_its_last_event_id_or_after_misses_nothing_and_repeats_nothing() {
    let db = TestDb::new().await;
    store_named(&db, &["a", "b"]).await;
    let app = TestApp::spawn(&db.url).await;
    let mut first = Stream::open(&app, "", None).await;
    let seen = first.orders(2).await;
    drop(first);

    // Stored while no stream was open.
    store_named(&db, &["c", "d"]).await;
    store_named(&db, &["e"]).await;
    app.wait_until_served("e").await;
    let last = seen[1].0;
    let mut by_header = Stream::open(&app, "", Some(last)).await;
    assert_eq!(uids(&by_header.orders(3).await), ["c", "d", "e"]);
    let mut by_query = Stream::open(&app, &format!("?after={last}"), None).await;
    assert_eq!(uids(&by_query.orders(3).await), ["c", "d", "e"]);
    // The header wins over the query.
    let mut both = Stream::open(&app, "?after=0", Some(last)).await;
    assert_eq!(uids(&both.orders(1).await), ["c"]);

    store_named(&db, &["f"]).await;
    assert_eq!(uids(&by_header.orders(1).await), ["f"]);
    assert_eq!(uids(&by_query.orders(1).await), ["f"]);
}

#[tokio::test]
async fn a_stream_resumed_from_further_back_than_the_cache_remembers_is_told_to_reset() {
    let db = TestDb::new().await;
    store_named(&db, &["first"]).await;
    let app = TestApp::spawn(&db.url).await;
    let mut stream = Stream::open(&app, "", None).await;
    let first = stream.orders(1).await[0].0;
    drop(stream);

    let many: Vec<String> = (0..api::cache::RESUMABLE + 5)
        .map(|i| format!("many_{i:05}"))
        .collect();
    for chunk in many.chunks(500) {
        store_named(&db, &chunk.iter().map(String::as_str).collect::<Vec<_>>()).await;
    }
    app.wait_until_served(many.last().unwrap()).await;

    let mut resumed = Stream::open(&app, "", Some(first)).await;
    let reset = resumed.next().await.unwrap();
    assert_eq!(reset.kind, "reset", "{reset:?}");
    assert_eq!(reset.data["type"], "reset");
    let latest = reset.data["seq"].as_i64().unwrap();
    assert_eq!(reset.id, latest.to_string());
    // It goes on from there.
    store_named(&db, &["after_the_reset"]).await;
    let next = resumed.orders(1).await;
    assert_eq!(uids(&next), ["after_the_reset"]);
    assert!(next[0].0 > latest);
}

#[tokio::test]
async fn a_malformed_last_event_id_is_a_json_400() {
    let db = TestDb::new().await;
    let app = TestApp::spawn(&db.url).await;
    for (header, query) in [("abc", ""), ("-1", ""), ("1", "?after=x")] {
        let response = app
            .client
            .get(format!("{}/api/v1/events{query}", app.address))
            .header("Last-Event-ID", header)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "{header} {query}"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "invalid_parameter", "{body}");
    }
}

#[tokio::test]
async fn open_streams_end_when_the_api_stops_so_that_it_stops_at_once() {
    let db = TestDb::new().await;
    store_named(&db, &["a"]).await;
    let mut settings = settings(&db.url);
    settings.shutdown_grace = Duration::from_secs(30);
    let app = TestApp::start(settings).await;
    app.wait_until_ready().await;
    let mut stream = Stream::open(&app, "", None).await;
    stream.orders(1).await;

    let started = Instant::now();
    app.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the api waited {:?} for its open stream",
        started.elapsed()
    );
    assert_eq!(stream.next().await, None, "the stream ended");
}

#[tokio::test]
async fn a_reader_that_stops_reading_is_dropped_while_one_that_reads_gets_every_order() {
    let db = TestDb::new().await;
    let mut settings = settings(&db.url);
    settings.http = HttpLimitSettings {
        http_idle_timeout_secs: 2,
        ..HttpLimitSettings::default()
    };
    let app = TestApp::start(settings).await;
    app.wait_until_ready().await;
    let address = app.address.strip_prefix("http://").unwrap().to_string();

    // A reader that asks and then never reads, with a small receive buffer.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(address.parse().unwrap()).await.unwrap();
    stalled
        .write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut reading = Stream::open(&app, "", None).await;

    // More events than the socket buffers on both sides hold (Linux lets a loopback sender's
    // buffer grow to 4 MiB), a batch at a time, each sooner than the idle timeout and smaller than what
    // the cache remembers for a stream that resumes (`RESUMABLE`).
    let mut stored = Vec::new();
    for batch in 0..40 {
        let names: Vec<String> = (0..900)
            .map(|i| format!("{batch:02}_{i:04}_{}", "x".repeat(56)))
            .collect();
        store_named(&db, &names.iter().map(String::as_str).collect::<Vec<_>>()).await;
        let got = reading.orders(names.len()).await;
        assert_eq!(
            uids(&got),
            names.iter().map(String::as_str).collect::<Vec<_>>()
        );
        stored.extend(names);
    }

    // What the api sent before it gave up is there to read; then the connection ends.
    let drained = tokio::time::timeout(PATIENCE, async {
        let mut buf = vec![0u8; 65536];
        let mut total = 0;
        while let Ok(n @ 1..) = stalled.read(&mut buf).await {
            total += n;
        }
        total
    })
    .await
    .expect("the stalled reader's connection was closed");
    let all_events: usize = stored.iter().map(|uid| uid.len() + 60).sum();
    assert!(
        drained < all_events,
        "the stalled reader got {drained} bytes: all of it, so it was not stalled"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        !metrics.contains("api_http_connections_timed_out_total{timeout=\"idle\"} 0"),
        "the stalled reader was closed by the idle timeout: {metrics}"
    );
}
