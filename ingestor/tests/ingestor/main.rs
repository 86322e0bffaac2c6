//! Black-box tests of the ingestor against the real Postgres and NATS Streaming server.

mod durability;
mod end_to_end;
mod helpers;
mod ingest;
