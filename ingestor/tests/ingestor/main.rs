//! Black-box tests of the ingestor against the real Postgres, NATS Streaming and JetStream servers.

mod clusters;
mod corpus;
mod durability;
mod end_to_end;
mod faults;
mod gaps;
mod helpers;
mod ingest;
mod jetstream;
mod metrics;
mod operator;
mod settings;
mod several;
mod shutdown;
mod streams;
