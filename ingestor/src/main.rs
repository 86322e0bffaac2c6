//! The ingestor's entry point: the consumer, or one of the operator's commands.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use ingestor::cli::Invocation;
use ingestor::{operator, Application};
use service_kit::lifecycle::shutdown_signal;
use service_kit::telemetry;

/// jemalloc rather than glibc's allocator: after taking a backlog in (the messages in flight, the
/// batches being judged and written), glibc kept what it had freed, so that an ingestor stayed at
/// its high-water mark; jemalloc's background thread gives freed pages back within seconds
/// (`loadtest/RESULTS.md`, "The ingestor's memory after a backlog").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How long blocking work still under way at exit may hold the process up: an ack or a lookup
/// waiting on a broker or a database that stopped answering is abandoned after that.
const EXIT_LIMIT: Duration = Duration::from_secs(1);

/// The exit code when a second signal cut the graceful stop short.
const FORCED_EXIT: i32 = 1;

fn main() -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let outcome = runtime.block_on(run(Invocation::from_env()));
    runtime.shutdown_timeout(EXIT_LIMIT);
    outcome
}

async fn run(invocation: Invocation) -> anyhow::Result<ExitCode> {
    match invocation {
        Invocation::Consume(settings) => {
            telemetry::init(settings.log.log_format)?;
            let application = Application::build(settings).await?;
            application.run_until_stopped(stop_requested()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Invocation::Operate(operation) => {
            telemetry::init(operation.settings().log.log_format)?;
            operator::run(operation).await
        }
    }
}

/// Completes on the first Ctrl-C or SIGTERM, which stops the ingestor gracefully; a second one
/// ends the process at once. Nothing is lost either way: the broker redelivers what was not acked.
async fn stop_requested() {
    shutdown_signal().await;
    tokio::spawn(async {
        shutdown_signal().await;
        tracing::warn!(
            "a second signal: exiting at once; the broker redelivers what was not acked"
        );
        std::process::exit(FORCED_EXIT);
    });
}
