//! The servers that testkit runs for a test of its own, tried for real: broker clusters that elect
//! another leader when theirs is killed and keep what they stored, a private JetStream server that
//! keeps its store across a kill, and a hot standby of a private Postgres, which shows the
//! primary's rows once it has replayed them, none while its replay is paused, and catches up after
//! a restart. They need the server binaries: `STAN_BIN`, `NATS_SERVER_BIN` and `PG_BIN`, as
//! `scripts/test` exports them, or the servers on `PATH` (Debian's PostgreSQL directory for
//! `PG_BIN`).

mod jetstream_cluster;
mod private_jetstream;
mod stan_cluster;
mod standby;
mod support;
