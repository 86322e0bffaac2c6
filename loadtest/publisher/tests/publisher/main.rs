//! The publisher as a user runs it, against the real NATS Streaming server of the tests.

mod delivery;
mod errors;
mod support;
