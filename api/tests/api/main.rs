//! Black-box tests of the api: the real application on port 0, a fresh database per test, requests
//! over real HTTP.

mod bounded;
mod connections;
mod dead_letters;
mod encoding;
mod events;
mod health;
mod helpers;
mod listing;
mod metrics;
mod openapi;
mod orders;
mod page;
mod resilience;
mod served_by;
mod settings;
mod standby;
