//! The api's entry point: read the settings, start logging, serve until a shutdown signal.

use api::{Application, Settings};
use service_kit::{lifecycle::shutdown_signal, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env();
    telemetry::init(settings.log.log_format)?;
    let application = Application::build(settings).await?;
    application.run_until_stopped(shutdown_signal()).await
}
