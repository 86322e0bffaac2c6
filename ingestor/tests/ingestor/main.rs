//! Black-box tests of the ingestor against the real Postgres and NATS Streaming server.

mod corpus;
mod durability;
mod end_to_end;
mod faults;
mod helpers;
mod ingest;
mod metrics;
mod operator;
mod settings;
mod shutdown;
