//! A nats-server with JetStream of a test's own.

use testkit::PrivateJetStream;

use crate::support::{publish, stream};

/// The messages the server holds, from its monitoring endpoint (`/jsz`).
async fn stored(server: &PrivateJetStream) -> u64 {
    let url = format!("{}/jsz", server.monitor_url());
    let jsz: serde_json::Value = reqwest::get(&url)
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("ask {url}: {e}"))
        .json()
        .await
        .expect("monitoring JSON");
    jsz["messages"].as_u64().expect("a message count")
}

#[tokio::test]
async fn a_private_jetstream_is_ready_with_its_stream_after_a_kill_and_after_a_signal() {
    let server = PrivateJetStream::start();
    let js = stream(&server.url(), "KEPT", "kept", 1).await;
    publish(&js, "kept", 5).await;

    let server = server.killed_and_restarted().await;
    assert_eq!(stored(&server).await, 5, "after kill -9");

    let pid = server.pid().expect("a running server").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(status.success());
    let server = server.exited_and_restarted().await;
    assert_eq!(stored(&server).await, 5, "after SIGTERM");
}
