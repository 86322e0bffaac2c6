//! `GET /api/v1/events`: the orders the cache takes in, as server-sent events, as they arrive.
//!
//! Each event names an order by its `seq` (also the event's id) and its id. A client that lost the
//! stream comes back with the last `seq` it saw, in `Last-Event-ID` (a browser's `EventSource`
//! sends it by itself) or in `after`, and is told every order since, from the cache's memory of the
//! latest [`RESUMABLE`](crate::cache::RESUMABLE) orders; one that was away longer is told `reset`, and rereads the listing.
//!
//! Nothing is buffered for a client: the stream reads the cache when the connection can take the
//! next event, and waits on the cache's watermark when it has told everything. A client that reads
//! slowly falls behind in the cache, not in memory of its own; one that stops reading is closed by
//! the connection guard's idle timeout, and one that falls [`RESUMABLE`](crate::cache::RESUMABLE) orders behind is told
//! `reset`. A stream is a connection like any other, under the connection cap. Streams end when
//! the api stops, so that a graceful shutdown does not wait for them.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, BoxStream, StreamExt};
use poem::web::sse::Event;
use poem_openapi::param::{Header, Query};
use poem_openapi::payload::EventStream;
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags, Union};
use tokio::sync::watch;

use super::error::ApiError;
use super::reply::{Outcome, Reply};
use crate::cache::{OrderCache, Since};

/// How many of the latest orders a new stream (one that resumes nothing) starts with.
pub const LATEST_ON_CONNECT: usize = 20;

/// How many orders a stream takes from the cache at a time.
const READ_AHEAD: usize = 100;

/// How often an idle stream sends a comment, so that proxies and the connection guard's idle
/// timeout see a live connection.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Tags)]
enum Tag {
    /// New orders, as they are stored.
    Events,
}

pub struct EventsApi {
    pub cache: Arc<OrderCache>,
    /// Becomes true when the api stops: every stream then ends.
    pub closing: watch::Receiver<bool>,
}

/// What the stream says.
#[derive(Debug, Union)]
#[oai(discriminator_name = "type")]
pub enum OrderEvent {
    /// An order was stored (event type `order`).
    #[oai(mapping = "order")]
    Order(StoredOrder),
    /// Orders came that this stream can no longer name one by one (event type `reset`): reread
    /// the listing; the stream goes on from `seq`.
    #[oai(mapping = "reset")]
    Reset(Reset),
}

/// An order in the stream.
#[derive(Debug, Object)]
pub struct StoredOrder {
    /// Its place in the order of storage; the event's id.
    pub seq: i64,
    pub order_uid: String,
}

/// Where the stream goes on from after a `reset`.
#[derive(Debug, Object)]
pub struct Reset {
    /// The latest order's `seq`; the event's id.
    pub seq: i64,
}

impl OrderEvent {
    fn seq(&self) -> i64 {
        match self {
            OrderEvent::Order(order) => order.seq,
            OrderEvent::Reset(reset) => reset.seq,
        }
    }

    fn into_sse(self) -> Event {
        let kind = match self {
            OrderEvent::Order(_) => "order",
            OrderEvent::Reset(_) => "reset",
        };
        Event::message(self.to_json_string())
            .event_type(kind)
            .id(self.seq().to_string())
    }
}

#[derive(ApiResponse)]
pub enum EventsFound {
    /// A stream of `text/event-stream` events, `order` or `reset`, each with its `seq` as the
    /// event id and the JSON below as its data; a comment every 15 s keeps it alive.
    #[oai(status = 200)]
    Ok(EventStream<BoxStream<'static, OrderEvent>>),
}

impl Outcome for EventsFound {
    const ERROR_STATUSES: &'static [u16] = &[400, 500, 503];
}

#[OpenApi(tag = "Tag::Events")]
impl EventsApi {
    /// Follow new orders
    ///
    /// The orders stored from now on, as server-sent events, oldest first. Without `after` or
    /// `Last-Event-ID` the stream starts with the latest 20. With either, it starts after that
    /// `seq`: every order stored since, or a `reset` event when more than 1000 came since.
    #[oai(path = "/events", method = "get", operation_id = "follow_orders")]
    async fn follow_orders(
        &self,
        /// The `seq` of the last event seen, as a browser's `EventSource` sends it on reconnecting.
        #[oai(name = "Last-Event-ID", validator(minimum(value = "0")))]
        last_event_id: Header<Option<i64>>,
        /// The `seq` to start after, for a client that reconnects on its own; `Last-Event-ID`
        /// wins when both are given.
        #[oai(validator(minimum(value = "0")))]
        after: Query<Option<i64>>,
    ) -> Reply<EventsFound> {
        if !self.cache.is_ready() {
            return Reply::from(Err(ApiError::NotReady));
        }
        let after = last_event_id.0.or(after.0);
        let events = follow(self.cache.clone(), self.closing.clone(), after);
        Reply::Ok(EventsFound::Ok(
            EventStream::new(events)
                .keep_alive(KEEP_ALIVE)
                .to_event(OrderEvent::into_sse),
        ))
    }
}

/// Where a stream is.
struct Follower {
    cache: Arc<OrderCache>,
    watermark: watch::Receiver<i64>,
    closing: watch::Receiver<bool>,
    /// The `seq` of the last event sent.
    after: i64,
    /// Read from the cache, not sent yet.
    ready: VecDeque<(i64, Box<str>)>,
}

/// The events after `after` (the latest few when `None`), then each new order, until `closing`.
fn follow(
    cache: Arc<OrderCache>,
    closing: watch::Receiver<bool>,
    after: Option<i64>,
) -> BoxStream<'static, OrderEvent> {
    // Subscribed before the first read: an order applied between the two is not missed.
    let watermark = cache.subscribe();
    let (after, ready) = match after {
        Some(after) => (after, VecDeque::new()),
        None => match cache.since(None, LATEST_ON_CONNECT) {
            Since::Orders(latest) => {
                let before_first = latest.first().map_or(cache.watermark(), |(seq, _)| seq - 1);
                (before_first, latest.into())
            }
            Since::Forgotten => (cache.watermark(), VecDeque::new()),
        },
    };
    let follower = Follower {
        cache,
        watermark,
        closing,
        after,
        ready,
    };
    stream::unfold(follower, |mut f| async move {
        let event = f.next().await?;
        Some((event, f))
    })
    .boxed()
}

impl Follower {
    /// The next event; `None` when the api stops.
    async fn next(&mut self) -> Option<OrderEvent> {
        loop {
            if *self.closing.borrow() {
                return None;
            }
            if let Some((seq, order_uid)) = self.ready.pop_front() {
                self.after = seq;
                return Some(OrderEvent::Order(StoredOrder {
                    seq,
                    order_uid: order_uid.into(),
                }));
            }
            match self.cache.since(Some(self.after), READ_AHEAD) {
                Since::Orders(orders) if !orders.is_empty() => self.ready = orders.into(),
                Since::Orders(_) => {
                    tokio::select! {
                        changed = self.watermark.changed() => changed.ok()?,
                        _ = self.closing.changed() => return None,
                    }
                }
                Since::Forgotten => {
                    self.after = self.cache.watermark();
                    return Some(OrderEvent::Reset(Reset { seq: self.after }));
                }
            }
        }
    }
}
