//! The order domain, shared by the ingestor and the api: the model, its validation, the SQL both
//! processes run and the migrations that shape the database. How the processes start, log and stop
//! is not the domain: that lives in the `service-kit` crate.

pub mod db;
pub mod model;
pub mod validate;

pub use model::{Delivery, Item, Order, Payment};
pub use validate::{check_order_uid, parse_order, Rejection, Rule, ValidOrder};

/// The migrations in `migrations/`, embedded in the binary. The ingestor applies them at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");
