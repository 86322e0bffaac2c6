//! Service kit: the plumbing every process of the order service needs to start, run and stop, and
//! nothing of the order domain: reading settings with one-line errors ([`settings`]), logging
//! ([`telemetry`]), retrying with backoff and stopping on a signal ([`lifecycle`]), and what each
//! serves the same way over HTTP: its listener, `/metrics` and `/healthz` ([`http`]), and the
//! JetStream connection and stream the ingestor and the publisher share ([`jetstream`]).
//!
//! It is a crate of its own, named for what it does, so that the domain library (`orders`) carries
//! only the model, its validation and its SQL, and does not pull in clap, tokio's runtime or
//! tracing-subscriber for whoever uses the model alone (the publisher, the benchmark).

pub mod http;
pub mod jetstream;
pub mod lifecycle;
pub mod settings;
pub mod telemetry;
