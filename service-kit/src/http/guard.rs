//! A listener that a client cannot exhaust.
//!
//! poem's server keeps a connection for as long as its client does: one that sends a request line
//! and never finishes holds a socket, a task and hyper's buffers for ever, and a client with a few
//! thousand of them leaves the process without file descriptors. Its accept loop retries a failed
//! accept at once, so out of descriptors it spins. And its own idle timeout logs every connection
//! it closes. [`GuardedAcceptor`] answers all three below poem:
//!
//! - at most [`Limits::max_connections`] connections at once, kept below the open-file limit; a
//!   connection over the cap is accepted and closed at once, so its client learns at once;
//! - each connection is a [`Guarded`] stream: a request must arrive whole, and be answered, within
//!   [`Limits::header_timeout`] of its first byte (of the connection's start, for the first
//!   request); between requests, and while a response is written, no more than
//!   [`Limits::idle_timeout`] may pass without a byte either way. A connection past its deadline
//!   fails its next read or write with `TimedOut`, and hyper closes it;
//! - an accept that fails for want of resources (descriptors, memory) waits a moment and tries
//!   again; nothing of it is logged per connection.
//!
//! What it does is counted in [`ConnectionMetrics`], which each process registers beside its own
//! metrics: connections open, refused over the cap, closed at a timeout, accepts out of resources.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use poem::Addr;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// How long an accept that failed for want of resources waits before the next.
const EXHAUSTED_PAUSE: Duration = Duration::from_millis(50);

/// The limits of every connection of a listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From a request's first byte (or the connection's start) until its answer begins.
    pub header_timeout: Duration,
    /// The longest silence, either way, between requests or while an answer is written.
    pub idle_timeout: Duration,
    /// Connections open at once; the next one is closed as soon as it is accepted.
    pub max_connections: usize,
}

/// What the guard did, for the process's metrics.
#[derive(Debug, Default)]
pub struct ConnectionMetrics {
    /// Connections open now.
    pub open: Gauge,
    /// Connections closed at once because the cap was reached.
    pub refused: Counter,
    /// Connections closed at a deadline, by the timeout that closed them.
    timed_out: Family<TimeoutLabel, Counter>,
    /// Accepts that failed for want of resources.
    pub exhausted: Counter,
}

/// Which deadline closed a connection: `header` or `idle`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TimeoutLabel {
    timeout: &'static str,
}

impl ConnectionMetrics {
    /// Registers every metric in `registry`, under its prefix: `<prefix>_http_connections_open`,
    /// `…_refused_total`, `…_timed_out_total{timeout}`, `<prefix>_http_accepts_exhausted_total`.
    pub fn register(self: &Arc<Self>, registry: &mut Registry) {
        registry.register(
            "http_connections_open",
            "HTTP connections open now",
            self.open.clone(),
        );
        registry.register(
            "http_connections_refused",
            "HTTP connections closed as soon as accepted, because the connection cap was reached",
            self.refused.clone(),
        );
        registry.register(
            "http_connections_timed_out",
            "HTTP connections closed because a request took longer than the header timeout \
             (timeout=\"header\") or the connection stayed silent longer than the idle timeout \
             (timeout=\"idle\")",
            self.timed_out.clone(),
        );
        registry.register(
            "http_accepts_exhausted",
            "Accepts that failed for want of file descriptors or memory (each followed by a pause)",
            self.exhausted.clone(),
        );
    }

    /// Connections closed at the deadline of `phase`.
    #[cfg(test)]
    fn timed_out(&self, phase: Phase) -> u64 {
        self.timed_out.get_or_create(&phase.label()).get()
    }
}
pub struct GuardedAcceptor {
    listener: TcpListener,
    local: LocalAddr,
    limits: Limits,
    permits: Arc<Semaphore>,
    metrics: Arc<ConnectionMetrics>,
}

impl GuardedAcceptor {
    pub fn new(listener: TcpListener, limits: Limits) -> io::Result<GuardedAcceptor> {
        let local = LocalAddr(Addr::SocketAddr(listener.local_addr()?));
        Ok(GuardedAcceptor {
            listener,
            local,
            limits,
            permits: Arc::new(Semaphore::new(limits.max_connections)),
            metrics: Arc::new(ConnectionMetrics::default()),
        })
    }

    /// Connections open now.
    pub fn open_connections(&self) -> impl Fn() -> usize + Send + Sync + 'static {
        let (permits, max) = (self.permits.clone(), self.limits.max_connections);
        move || max - permits.available_permits()
    }

    /// What this listener's guard counts, to register with the process's metrics.
    pub fn metrics(&self) -> Arc<ConnectionMetrics> {
        self.metrics.clone()
    }
}

impl Acceptor for GuardedAcceptor {
    type Io = Guarded<TcpStream>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        vec![self.local.clone()]
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        loop {
            let (stream, remote) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) if is_exhaustion(&error) => {
                    if self.metrics.exhausted.inc().is_multiple_of(1000) {
                        tracing::warn!(%error, "cannot accept connections: out of resources; pausing");
                    }
                    tokio::time::sleep(EXHAUSTED_PAUSE).await;
                    continue;
                }
                // The client gave up before the accept, or the like: the next one.
                Err(_) => continue,
            };
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                self.metrics.refused.inc();
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            return Ok((
                Guarded::new(stream, self.limits, permit, self.metrics.clone()),
                self.local.clone(),
                RemoteAddr(Addr::SocketAddr(remote)),
                Scheme::HTTP,
            ));
        }
    }
}

/// Out of file descriptors or memory: what waiting may cure.
fn is_exhaustion(error: &io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM on Linux.
    matches!(error.raw_os_error(), Some(24 | 23 | 105 | 12))
        || error.kind() == io::ErrorKind::OutOfMemory
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A request is on its way in, or being answered.
    Request,
    /// Between requests, or writing an answer.
    Idle,
}

impl Phase {
    fn label(self) -> TimeoutLabel {
        TimeoutLabel {
            timeout: match self {
                Phase::Request => "header",
                Phase::Idle => "idle",
            },
        }
    }
}

/// A connection with deadlines (see the module).
pub struct Guarded<S> {
    inner: S,
    limits: Limits,
    phase: Phase,
    deadline: Instant,
    /// Armed at or before `deadline`: when it fires early, it is armed again for the deadline,
    /// so that a byte in or out costs a clock read, not a timer update.
    timer: Pin<Box<Sleep>>,
    /// Set once the deadline has passed: the connection is counted as timed out once.
    expired: bool,
    metrics: Arc<ConnectionMetrics>,
    _permit: OwnedSemaphorePermit,
}

impl<S> Guarded<S> {
    fn new(
        inner: S,
        limits: Limits,
        permit: OwnedSemaphorePermit,
        metrics: Arc<ConnectionMetrics>,
    ) -> Guarded<S> {
        let deadline = Instant::now() + limits.header_timeout;
        metrics.open.inc();
        Guarded {
            inner,
            limits,
            phase: Phase::Request,
            deadline,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            expired: false,
            metrics,
            _permit: permit,
        }
    }

    fn read_some(&mut self) {
        if self.phase == Phase::Idle {
            self.phase = Phase::Request;
            self.deadline = Instant::now() + self.limits.header_timeout;
        }
    }

    fn wrote_some(&mut self) {
        self.phase = Phase::Idle;
        self.deadline = Instant::now() + self.limits.idle_timeout;
    }

    /// A write's outcome, with the deadline moved on by what it wrote, or watched while it waits.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.wrote_some();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => self.poll_deadline(cx).map(Err),
        }
    }

    /// Pending until the deadline; then the error that closes the connection.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if self.expired || Instant::now() >= self.deadline {
                if !self.expired {
                    self.expired = true;
                    self.metrics
                        .timed_out
                        .get_or_create(&self.phase.label())
                        .inc();
                }
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    match self.phase {
                        Phase::Request => "the request took longer than the header timeout",
                        Phase::Idle => "the connection was idle longer than the idle timeout",
                    },
                ));
            }
            let deadline = self.deadline;
            self.timer.as_mut().reset(deadline);
        }
    }
}

impl<S> Drop for Guarded<S> {
    fn drop(&mut self) {
        self.metrics.open.dec();
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.read_some();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => this.poll_deadline(cx).map(Err),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.after_write(cx, written)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.after_write(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The open-file limit of this process (the soft one), from `/proc/self/limits`.
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The default cap: the open-file limit less what the process needs besides its clients
/// (database and broker connections, log files, the runtime's own), at least 16.
pub fn default_max_connections() -> usize {
    const RESERVED: u64 = 256;
    let limit = open_file_limit().unwrap_or(1024);
    usize::try_from(limit.saturating_sub(RESERVED).max(16)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn guarded(limits: Limits) -> (GuardedAcceptor, std::net::SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        (GuardedAcceptor::new(listener, limits).unwrap(), address)
    }

    const LIMITS: Limits = Limits {
        header_timeout: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(600),
        max_connections: 2,
    };

    #[tokio::test]
    async fn a_request_that_never_ends_fails_its_read_at_the_header_timeout() {
        let (mut acceptor, address) = guarded(LIMITS).await;
        let mut client = TcpStream::connect(address).await.unwrap();
        let (mut server, ..) = acceptor.accept().await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();

        let started = Instant::now();
        let mut buf = [0u8; 64];
        let read = server.read(&mut buf).await.unwrap();
        assert!(read > 0);
        let error = server.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= LIMITS.header_timeout / 2);
        // Counted once, however often the dead connection is polled again.
        let _ = server.read(&mut buf).await;
        assert_eq!(acceptor.metrics().timed_out(Phase::Request), 1);
        assert_eq!(acceptor.metrics().timed_out(Phase::Idle), 0);
    }

    #[tokio::test]
    async fn after_an_answer_the_idle_timeout_applies_and_a_write_extends_it() {
        let (mut acceptor, address) = guarded(LIMITS).await;
        let _client = TcpStream::connect(address).await.unwrap();
        let (mut server, ..) = acceptor.accept().await.unwrap();
        server.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();

        // Past the header timeout but within the idle one: still open.
        let mut buf = [0u8; 8];
        let waited = tokio::time::timeout(LIMITS.header_timeout * 2, server.read(&mut buf)).await;
        assert!(waited.is_err(), "the read ended early: {waited:?}");
        let error = server.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(acceptor.metrics().timed_out(Phase::Idle), 1);
    }

    #[tokio::test]
    async fn a_connection_over_the_cap_is_closed_at_once_and_counted() {
        let (mut acceptor, address) = guarded(LIMITS).await;
        let _a = TcpStream::connect(address).await.unwrap();
        let _b = TcpStream::connect(address).await.unwrap();
        let first = acceptor.accept().await.unwrap();
        let second = acceptor.accept().await.unwrap();
        let mut third = TcpStream::connect(address).await.unwrap();
        let open = acceptor.open_connections();
        assert_eq!(open(), 2);

        // The third is accepted and closed while the acceptor waits for a fourth.
        let waiting = tokio::time::timeout(Duration::from_millis(300), acceptor.accept()).await;
        assert!(waiting.is_err());
        let mut buf = [0u8; 1];
        assert_eq!(third.read(&mut buf).await.unwrap_or(0), 0);
        assert_eq!(acceptor.metrics().refused.get(), 1);
        assert_eq!(acceptor.metrics().open.get(), 2);

        drop((first, second));
        assert_eq!(open(), 0);
        assert_eq!(acceptor.metrics().open.get(), 0);
    }

    #[test]
    fn the_open_file_limit_is_read() {
        assert!(open_file_limit().is_some_and(|n| n > 0));
        assert!(default_max_connections() >= 16);
    }
}
