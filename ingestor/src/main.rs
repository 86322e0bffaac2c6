use std::process::ExitCode;

use ingestor::cli::Invocation;
use ingestor::{operator, Application};
use orders::lifecycle::shutdown_signal;
use orders::telemetry;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    match Invocation::from_env() {
        Invocation::Consume(settings) => {
            telemetry::init(settings.log.log_format)?;
            let application = Application::build(settings).await?;
            application.run_until_stopped(shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Invocation::Operate(operation) => {
            telemetry::init(operation.settings().log.log_format)?;
            operator::run(operation).await
        }
    }
}
