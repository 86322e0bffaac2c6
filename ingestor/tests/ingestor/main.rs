//! Black-box tests of the ingestor against the real Postgres and NATS Streaming server.

mod durability;
mod helpers;
mod ingest;
