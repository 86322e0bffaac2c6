//! The api: serves stored orders by id from an in-memory cache that a background task keeps
//! current with the orders table (`LISTEN orders_stored` plus a periodic catch-up).
//!
//! - [`settings`]: the configuration; [`application`]: build and run the process;
//! - [`cache`]: the orders, ready to send; [`sync`]: what keeps them current;
//! - [`http`]: the routes, the OpenAPI description, the probes and the web page;
//! - [`metrics`]: what `/metrics` shows.

pub mod application;
pub mod cache;
pub mod database;
pub mod http;
pub mod metrics;
pub mod settings;
pub mod sync;

pub use application::Application;
pub use settings::Settings;
