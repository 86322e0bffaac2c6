//! The publisher as a user runs it, against the real NATS Streaming and JetStream servers of the
//! tests, and against private ones that a test kills and restarts.

#[macro_use]
mod destination;
mod delivery;
mod errors;
mod faults;
mod jetstream;
mod support;
