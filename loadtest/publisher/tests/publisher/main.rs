//! The publisher as a user runs it, against the real NATS Streaming server of the tests, and
//! against private ones that a test kills and restarts.

mod delivery;
mod errors;
mod faults;
mod support;
