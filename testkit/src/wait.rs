//! Waiting for outcomes that no event announces, with a limit.

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` until it returns true; panics with `what` if that takes longer than `limit`.
/// For outcomes no event announces (a row appears, a process is ready).
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return;
        }
        if start.elapsed() > limit {
            panic!("gave up after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
