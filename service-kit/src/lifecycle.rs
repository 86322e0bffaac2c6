//! What every process does the same way while it runs: retry with backoff, stop on a signal.

use std::fmt::Display;
use std::time::Duration;

const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LONGEST_PAUSE: Duration = Duration::from_secs(5);

/// The failures of one task (`what`), retried with exponential backoff from 100 ms to 5 s. The
/// first failure of a run is logged as a warning, the following ones at debug level, and the
/// recovery once.
pub struct Backoff {
    what: &'static str,
    pause: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(what: &'static str) -> Backoff {
        Backoff {
            what,
            pause: FIRST_PAUSE,
            failures: 0,
        }
    }

    pub fn failed(&mut self, error: &impl Display) {
        self.failures += 1;
        if self.failures == 1 {
            tracing::warn!(%error, "{} failed; retrying with backoff", self.what);
        } else {
            tracing::debug!(%error, failures = self.failures, "{} failed again", self.what);
        }
    }

    pub fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!(failures = self.failures, "{} works again", self.what);
        }
        self.failures = 0;
        self.pause = FIRST_PAUSE;
    }

    /// The pause before the next attempt, longer after each call.
    pub fn next_pause(&mut self) -> Duration {
        let pause = self.pause;
        self.pause = (self.pause * 2).min(LONGEST_PAUSE);
        pause
    }

    /// Sleeps before the next attempt.
    pub async fn pause(&mut self) {
        tokio::time::sleep(self.next_pause()).await;
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}
