//! The shared test nats-server with JetStream.

/// The nats-server with JetStream every test shares: `TEST_JETSTREAM_URL`, as set by
/// `scripts/test`.
pub fn jetstream_url() -> String {
    crate::env_or("TEST_JETSTREAM_URL", "nats://127.0.0.1:4233")
}

/// Its monitoring endpoint (`/jsz`, `/healthz`): `TEST_JETSTREAM_MONITOR_URL`, as set by
/// `scripts/test`.
pub fn jetstream_monitor_url() -> String {
    crate::env_or("TEST_JETSTREAM_MONITOR_URL", "http://127.0.0.1:8233")
}
