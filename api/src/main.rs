//! The api's entry point: read the settings, start logging, serve until a shutdown signal.

use api::{Application, Settings};
use service_kit::{lifecycle::shutdown_signal, telemetry};

/// jemalloc rather than glibc's allocator: glibc kept what thousands of connections freed at once
/// (each a few buffers, freed on whichever thread closed it), so that an api that had held 20 000
/// connections stayed at 400 MB resident once they were gone; jemalloc's background thread gives
/// freed pages back within seconds (`api/tests/api/connections.rs`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env();
    telemetry::init(settings.log.log_format)?;
    let application = Application::build(settings).await?;
    application.run_until_stopped(shutdown_signal()).await
}
