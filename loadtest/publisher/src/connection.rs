//! A publishing connection that outlives a broker restart: a message the broker did not
//! acknowledge is published again, the very same bytes, on a new connection, until it is
//! acknowledged or the retry bound (`--retry-for`) passes.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::ProgressBar;

use crate::pace::sleep_until;
use crate::publish::{Message, Target};

/// Why a message was not acknowledged.
#[derive(Debug)]
pub enum Unacked {
    /// It failed for good: retries are off, or its retry bound passed. The error says why.
    Failed(anyhow::Error),
    /// Another message failed for good first, and the run is stopping.
    Stopped,
}

/// One of the run's connections to the broker.
pub struct Connection<'a> {
    target: &'a Target,
    /// Which connection of the run this is, in its client ids.
    n: u16,
    /// `None` between a failure and the next successful connect.
    client: Option<stan::Client>,
}

impl<'a> Connection<'a> {
    /// Connects, or fails at once: a broker unreachable at the start is a setting to fix, not a
    /// fault to ride out.
    pub fn open(target: &'a Target, n: u16) -> anyhow::Result<Connection<'a>> {
        Ok(Connection {
            target,
            n,
            client: Some(connect(target, n)?),
        })
    }

    /// Publishes `message` until the broker acknowledges it; true if that took more than one
    /// try.
    pub fn publish(
        &mut self,
        message: &Message,
        stop: &AtomicBool,
        progress: &ProgressBar,
    ) -> Result<bool, Unacked> {
        let mut error = match self.try_publish(message) {
            Ok(()) => return Ok(false),
            Err(e) => e,
        };
        let retry_for = self.target.retry_for;
        if retry_for.is_zero() {
            return Err(Unacked::Failed(
                error.context("not retried, as --retry-for is 0"),
            ));
        }
        progress.suspend(|| {
            eprintln!(
                "publisher: {error:#}; publishing it again on a new connection, for up to {} s",
                retry_for.as_secs()
            );
        });
        let deadline = Instant::now() + retry_for;
        let mut attempt = 0;
        loop {
            self.close();
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
            match self.reconnect().and_then(|()| self.try_publish(message)) {
                Ok(()) => return Ok(true),
                Err(e) => error = e,
            }
            attempt += 1;
        }
    }

    fn try_publish(&self, message: &Message) -> anyhow::Result<()> {
        let client = self.client.as_ref().context("not connected")?;
        client
            .publish(&self.target.channel, &message.bytes)
            .with_context(|| {
                format!(
                    "cannot publish {} to channel {} (no ack from the broker)",
                    message.name, self.target.channel
                )
            })
    }

    fn reconnect(&mut self) -> anyhow::Result<()> {
        self.client = Some(connect(self.target, self.n)?);
        Ok(())
    }

    /// Lets the client go. Closing it asks the broker to forget it and waits up to 2 s for an
    /// answer, which a broker that is gone never gives: that wait is left to a thread of its own.
    fn close(&mut self) {
        if let Some(client) = self.client.take() {
            std::thread::spawn(move || drop(client));
        }
    }
}

/// The pause before reconnect attempt `attempt` (from 0): a tenth of a second, doubling up to 2 s.
pub fn backoff(attempt: u32) -> Duration {
    let pause = Duration::from_millis(100).saturating_mul(1 << attempt.min(5));
    pause.min(Duration::from_secs(2))
}

/// The client id of connection `n`: new at every connect, since the cluster refuses a second
/// client with the same id, and a broker restarted on its store still knows the old one.
pub fn client_id(n: u16) -> String {
    format!("publisher-{}-{n}", uuid::Uuid::new_v4().simple())
}

fn connect(target: &Target, n: u16) -> anyhow::Result<stan::Client> {
    let url = redact(&target.nats_url);
    let nats = nats::Options::new()
        .with_name("publisher")
        .connect(&target.nats_url)
        .with_context(|| format!("cannot connect to NATS at {url}"))?;
    stan::connect(nats, &target.cluster_id, &client_id(n)).with_context(|| {
        format!(
            "cannot join the NATS Streaming cluster {:?} at {url} (is --cluster-id right?)",
            target.cluster_id
        )
    })
}

/// The URL with any user name and password replaced, for messages.
pub fn redact(url: &str) -> String {
    url.split(',')
        .map(|one| match (one.find("://"), one.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}***{}", &one[..scheme + 3], &one[at..])
            }
            (None, Some(at)) => format!("***{}", &one[at..]),
            _ => one.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_a_url_are_not_shown() {
        assert_eq!(
            redact("nats://user:secret@host:4222"),
            "nats://***@host:4222"
        );
        assert_eq!(
            redact("token@host:4222,nats://a:b@other"),
            "***@host:4222,nats://***@other"
        );
        assert_eq!(redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }

    #[test]
    fn reconnects_back_off_from_a_tenth_of_a_second_to_two_seconds() {
        let pauses: Vec<u64> = (0..8).map(|a| backoff(a).as_millis() as u64).collect();

        assert_eq!(pauses, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        assert_eq!(backoff(u32::MAX), Duration::from_secs(2));
    }
}
