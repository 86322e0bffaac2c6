//! The shared test JetStream server (a nats-server with JetStream), as `scripts/test` starts it.

/// Its URL: `TEST_JETSTREAM_URL`.
pub fn jetstream_url() -> String {
    crate::env_or("TEST_JETSTREAM_URL", "nats://127.0.0.1:4233")
}

/// Its monitoring endpoint: `TEST_JETSTREAM_MONITOR_URL`.
pub fn jetstream_monitor_url() -> String {
    crate::env_or("TEST_JETSTREAM_MONITOR_URL", "http://127.0.0.1:8233")
}
