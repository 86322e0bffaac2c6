//! The acks of committed batches, sent off the writer's path.
//!
//! An ack is a small write to the broker connection. The writer hands the acks of a
//! batch over once it has committed, and a blocking thread sends them while the writer goes on with
//! the next batch: the database need not wait for them.

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::broker::Ack;
use crate::metrics::Metrics;

/// The acks of at most one committed batch in flight.
pub(super) struct Acks {
    metrics: Arc<Metrics>,
    in_flight: Option<JoinHandle<()>>,
}

impl Acks {
    pub(super) fn new(metrics: Arc<Metrics>) -> Acks {
        Acks {
            metrics,
            in_flight: None,
        }
    }

    /// Sends the acks of a committed batch once those of the batch before are sent, which keeps
    /// one batch's acks in flight at most.
    pub(super) async fn send(&mut self, committed: Vec<Ack>) {
        self.finish().await;
        let metrics = self.metrics.clone();
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            let sent = committed
                .into_iter()
                .map(Ack::send)
                .filter(|sent| *sent)
                .count();
            metrics.acks_sent.inc_by(sent as u64);
        }));
    }

    /// Waits until every ack handed over is sent.
    pub(super) async fn finish(&mut self) {
        if let Some(sending) = self.in_flight.take() {
            // A panic while sending leaves acks unsent: the broker redelivers those messages.
            let _ = sending.await;
        }
    }
}
