//! The brokers that testkit runs for a test of its own, tried for real: clusters that elect
//! another leader when theirs is killed and keep what they stored, and a private JetStream server
//! that keeps its store across a kill. They need the server binaries: `STAN_BIN` and
//! `NATS_SERVER_BIN`, as `scripts/test` exports them, or the servers on `PATH`.

mod jetstream_cluster;
mod private_jetstream;
mod stan_cluster;
mod support;
