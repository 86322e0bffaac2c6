//! NATS Streaming as an [`Archive`]: messages read by their sequence through short-lived
//! subscriptions of a client of its own, on a thread of its own (the client is synchronous).
//!
//! The client's id is the ingestor's with `-gaps` appended. Its subscriptions are plain ones (no
//! durable, no queue group), so reading here changes nothing of what the durable delivers.

use std::io;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::sync::oneshot;

use super::{close_within, to_utc, StanSettings, CONNECTION_CLOSE_LIMIT};
use crate::broker::{fetched, Archive, Read};

/// How long the broker may take to send the channel's last message, or the next of a range.
const NEXT_WAIT: Duration = Duration::from_secs(2);
/// How long a request may wait for the thread, which may be opening a client first.
const ANSWER_LIMIT: Duration = Duration::from_secs(30);
/// The ack wait of the reading subscriptions; each message is acked as it arrives.
const ACK_WAIT_SECS: i32 = 30;

enum Request {
    Last(oneshot::Sender<io::Result<Option<u64>>>),
    Read {
        first: u64,
        last: u64,
        answer: oneshot::Sender<io::Result<Read>>,
    },
}

/// The handle the sweeper holds; dropping it ends the thread, which closes the client.
pub struct StanArchive {
    requests: std::sync::mpsc::Sender<Request>,
}

impl StanSettings {
    /// Starts the archive's thread; it connects on the first request.
    pub fn archive(&self) -> io::Result<StanArchive> {
        let (requests, incoming) = std::sync::mpsc::channel();
        let settings = self.clone();
        std::thread::Builder::new()
            .name("stan-gaps".into())
            .spawn(move || serve(&settings, &incoming))?;
        Ok(StanArchive { requests })
    }
}

impl StanArchive {
    async fn ask<T>(&self, request: impl FnOnce(oneshot::Sender<T>) -> Request) -> io::Result<T> {
        let (answer, answered) = oneshot::channel();
        self.requests
            .send(request(answer))
            .map_err(|_| io::Error::other("the archive's thread ended"))?;
        match tokio::time::timeout(ANSWER_LIMIT, answered).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(io::Error::other("the archive's thread ended")),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the broker did not answer the archive",
            )),
        }
    }
}

impl Archive for StanArchive {
    fn last_sequence(&mut self) -> BoxFuture<'_, io::Result<Option<u64>>> {
        async move { self.ask(Request::Last).await? }.boxed()
    }

    fn read(&mut self, first: u64, last: u64) -> BoxFuture<'_, io::Result<Read>> {
        async move {
            self.ask(|answer| Request::Read {
                first,
                last,
                answer,
            })
            .await?
        }
        .boxed()
    }
}

/// A connection and its client, opened on demand and dropped after any failure.
struct Reader {
    client: stan::Client,
    connection: nats::Connection,
}

impl Reader {
    fn open(s: &StanSettings) -> io::Result<Reader> {
        let client_id = format!("{}-gaps", s.client_id);
        let connection = nats::Options::new()
            .with_name(&client_id)
            .max_reconnects(None)
            .connect(&s.nats_url)?;
        let client = stan::connect(connection.clone(), &s.cluster_id, &client_id)?;
        Ok(Reader { client, connection })
    }

    fn close(self) {
        drop(self.client);
        let _ = close_within(self.connection, CONNECTION_CLOSE_LIMIT);
    }

    fn subscribe(
        &self,
        channel: &str,
        start: stan::SubscriptionStart,
        count: u64,
    ) -> io::Result<stan::Subscription> {
        self.client.subscribe(
            channel,
            stan::SubscriptionConfig {
                queue_group: None,
                durable_name: None,
                start,
                max_in_flight: i32::try_from(count).unwrap_or(i32::MAX),
                ack_wait_in_secs: ACK_WAIT_SECS,
            },
        )
    }

    /// The channel's last sequence: the message a subscription from the last received one gets.
    fn last(&self, channel: &str) -> io::Result<Option<u64>> {
        let subscription = self.subscribe(channel, stan::SubscriptionStart::LastReceived, 1)?;
        match subscription.next_timeout(NEXT_WAIT) {
            Ok(message) => {
                let _ = message.ack();
                Ok(Some(message.sequence))
            }
            // An empty channel, or a slow broker: not known.
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The messages `first..=last`. The broker starts a subscription at its first message when
    /// `first` is older: what lies before the first message received, it no longer holds.
    fn read(&self, channel: &str, first: u64, last: u64) -> io::Result<Read> {
        let subscription = self.subscribe(
            channel,
            stan::SubscriptionStart::FromSequence(first),
            last - first + 1,
        )?;
        let mut read = Read::default();
        let mut next = first;
        while next <= last {
            let mut message = match subscription.next_timeout(NEXT_WAIT) {
                Ok(message) => message,
                // The rest is looked for again by a later sweep.
                Err(e) if e.kind() == io::ErrorKind::TimedOut && next > first => break,
                Err(e) => return Err(e),
            };
            let _ = message.ack();
            if message.sequence < next {
                continue;
            }
            let upto = message.sequence.min(last + 1);
            read.absent.extend(next..upto);
            next = message.sequence + 1;
            if message.sequence <= last {
                let payload = bytes::Bytes::from(std::mem::take(&mut message.data));
                read.deliveries.push(fetched(
                    channel,
                    message.sequence,
                    to_utc(message.timestamp),
                    payload,
                ));
            }
        }
        Ok(read)
    }
}

impl Request {
    /// Answers with what `reader` finds; false if that failed.
    fn answer(self, reader: &Reader, channel: &str) -> bool {
        match self {
            Request::Last(answer) => {
                let last = reader.last(channel);
                let ok = last.is_ok();
                let _ = answer.send(last);
                ok
            }
            Request::Read {
                first,
                last,
                answer,
            } => {
                let read = reader.read(channel, first, last);
                let ok = read.is_ok();
                let _ = answer.send(read);
                ok
            }
        }
    }

    fn fail(self, e: io::Error) {
        let _ = match self {
            Request::Last(answer) => answer.send(Err(e)).is_ok(),
            Request::Read { answer, .. } => answer.send(Err(e)).is_ok(),
        };
    }
}

/// Answers requests until the handle is dropped; a reader that failed is closed, and the next
/// request opens another.
fn serve(s: &StanSettings, incoming: &std::sync::mpsc::Receiver<Request>) {
    let mut reader: Option<Reader> = None;
    while let Ok(request) = incoming.recv() {
        let open = match reader.take().map_or_else(|| Reader::open(s), Ok) {
            Ok(open) => open,
            Err(e) => {
                request.fail(e);
                continue;
            }
        };
        if request.answer(&open, &s.channel) {
            reader = Some(open);
        } else {
            open.close();
        }
    }
    if let Some(open) = reader {
        open.close();
    }
}
