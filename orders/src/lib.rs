//! The order domain, shared by the ingestor and the api: the model, its validation, the SQL both
//! processes run and the migrations that shape the database. Also what both processes do the same
//! way: read their settings ([`settings`]), log ([`telemetry`]), retry and stop ([`lifecycle`]).

pub mod db;
pub mod lifecycle;
pub mod model;
pub mod settings;
pub mod telemetry;
pub mod validate;

pub use model::{Delivery, Item, Order, Payment};
pub use validate::{check_order_uid, parse_order, Rejection, Rule, ValidOrder};

/// The migrations in `migrations/`, embedded in the binary. The ingestor applies them at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");
