//! A publishing connection that outlives a broker restart: a message the broker did not
//! acknowledge is published again, the very same bytes (and, with JetStream, the same id), on a
//! new connection if the connection was lost, until it is acknowledged or the retry bound
//! (`--retry-for`) passes. The same loop for both brokers: [`crate::transport`] tells them apart.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::ProgressBar;

use crate::pace::sleep_until;
use crate::publish::{Message, Target};
use crate::transport::{Ack, Broker, Client, Failure};

/// Why a message was not acknowledged.
#[derive(Debug)]
pub enum Unacked {
    /// It failed for good: the broker refuses it, retries are off, or its retry bound passed. The
    /// error says why.
    Failed(anyhow::Error),
    /// Another message failed for good first, and the run is stopping.
    Stopped,
}

/// How a message came to be acknowledged.
#[derive(Debug, Clone, Copy, Default)]
pub struct Published {
    /// It took more than one try.
    pub retried: bool,
    /// JetStream held a message with its id already.
    pub duplicate: bool,
}

/// One of the run's connections to the broker.
pub struct Connection<'a> {
    target: &'a Target,
    broker: &'a Broker,
    /// Which connection of the run this is, in its client ids.
    n: u16,
    /// `None` between a failure and the next successful connect.
    client: Option<Client>,
}

impl<'a> Connection<'a> {
    /// Connects, or fails at once: a broker unreachable at the start is a setting to fix, not a
    /// fault to ride out.
    pub fn open(target: &'a Target, broker: &'a Broker, n: u16) -> anyhow::Result<Connection<'a>> {
        Ok(Connection {
            target,
            broker,
            n,
            client: Some(broker.connect(target, n)?),
        })
    }

    /// Publishes `message` until the broker acknowledges it.
    pub fn publish(
        &mut self,
        message: &Message,
        stop: &AtomicBool,
        progress: &ProgressBar,
    ) -> Result<Published, Unacked> {
        let mut error = match self.try_publish(message) {
            Ok(ack) => return Ok(published(ack, false)),
            Err(Failure::Refused(e)) => return Err(Unacked::Failed(e)),
            Err(Failure::Lost(e)) => e,
        };
        let retry_for = self.target.retry_for;
        if retry_for.is_zero() {
            return Err(Unacked::Failed(
                error.context("not retried, as --retry-for is 0"),
            ));
        }
        let on = if self.client.as_ref().is_some_and(Client::is_connected) {
            "on the same connection, which is up"
        } else {
            "on a new connection"
        };
        progress.suspend(|| {
            eprintln!(
                "publisher: {error:#}; publishing it again {on}, for up to {} s",
                retry_for.as_secs()
            );
        });
        let deadline = Instant::now() + retry_for;
        let mut attempt = 0;
        loop {
            self.close_if_lost();
            let pause = Instant::now() + backoff(attempt);
            if !sleep_until(pause.min(deadline), stop) {
                return Err(Unacked::Stopped);
            }
            if Instant::now() >= deadline {
                return Err(Unacked::Failed(error.context(format!(
                    "gave up on {} after retrying for {} s (see --retry-for)",
                    message.name,
                    retry_for.as_secs()
                ))));
            }
            match self
                .reconnect()
                .map_err(Failure::Lost)
                .and_then(|()| self.try_publish(message))
            {
                Ok(ack) => return Ok(published(ack, true)),
                Err(Failure::Refused(e)) => return Err(Unacked::Failed(e)),
                Err(Failure::Lost(e)) => error = e,
            }
            attempt += 1;
        }
    }

    fn try_publish(&self, message: &Message) -> Result<Ack, Failure> {
        let client = self
            .client
            .as_ref()
            .context("not connected")
            .map_err(Failure::Lost)?;
        client.publish(self.target, message)
    }

    /// Connects again, unless the connection is still up.
    fn reconnect(&mut self) -> anyhow::Result<()> {
        if self.client.is_none() {
            self.client = Some(self.broker.connect(self.target, self.n)?);
        }
        Ok(())
    }

    /// Lets the client go after a failure, unless its connection is up.
    fn close_if_lost(&mut self) {
        if !self.client.as_ref().is_some_and(Client::is_connected) {
            if let Some(client) = self.client.take() {
                client.close();
            }
        }
    }
}

fn published(ack: Ack, retried: bool) -> Published {
    Published {
        retried,
        duplicate: ack == Ack::Duplicate,
    }
}

/// The pause before reconnect attempt `attempt` (from 0): a tenth of a second, doubling up to 2 s.
pub fn backoff(attempt: u32) -> Duration {
    let pause = Duration::from_millis(100).saturating_mul(1 << attempt.min(5));
    pause.min(Duration::from_secs(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_back_off_from_a_tenth_of_a_second_to_two_seconds() {
        let pauses: Vec<u64> = (0..8).map(|a| backoff(a).as_millis() as u64).collect();

        assert_eq!(pauses, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        assert_eq!(backoff(u32::MAX), Duration::from_secs(2));
    }
}
