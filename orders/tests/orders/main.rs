//! Validation of an order message: what `orders::parse_order` accepts, what it rejects, and why.
//! One test binary for the crate, one module per kind of rule; and the SQL of the write path and of
//! the dead letters against a real Postgres.

mod accepted;
mod cross_fields;
mod dead_letters;
mod fields;
mod fuzz;
mod message;
mod schema;
mod store;
mod support;
