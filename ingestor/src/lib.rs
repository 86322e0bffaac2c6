//! The ingestor: consumes orders from a NATS Streaming channel and stores them in Postgres.
//! See `docs/ARCHITECTURE.md` for the guarantees and how they are kept. It also runs the
//! operator's commands on dead letters ([`operator`]), since its database role may write.

pub mod application;
pub mod broker;
pub mod cli;
pub mod gaps;
pub mod metrics;
pub mod operator;
pub mod settings;
pub mod writer;

pub use application::Application;
pub use settings::Settings;
