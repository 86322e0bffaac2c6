//! What every process serves over HTTP, written once so that it answers the same everywhere: its
//! listener, bound from a setting ([`bind`]); `/metrics` in the OpenMetrics text format that
//! Prometheus reads ([`metrics`]); and `/healthz`, the liveness probe ([`healthz`]).

pub mod guard;

use std::net::SocketAddr;

use anyhow::Context;
use poem::endpoint::make_sync;
use poem::web::Json;
use poem::{get, Endpoint, IntoResponse};
use prometheus_client::registry::Registry;
use serde::Serialize;

/// The content type of `/metrics`.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds a listener on `address` (port 0 picks a free port), every connection under `limits`
/// (see [`guard`]), and returns it with the address it got. `purpose` ends the error, e.g.
/// `(--api-addr, API_ADDR)`: it names the setting to change.
pub async fn bind(
    address: SocketAddr,
    purpose: &str,
    limits: guard::Limits,
) -> anyhow::Result<(guard::GuardedAcceptor, SocketAddr)> {
    let listener =
        listen(address).with_context(|| format!("cannot listen on {address} {purpose}"))?;
    let bound = listener.local_addr()?;
    let acceptor = guard::GuardedAcceptor::new(listener, limits)?;
    Ok((acceptor, bound))
}

/// Connections the kernel completes and queues for the listener before it accepts them (capped
/// by `net.core.somaxconn`). Tokio's default of 1 024 overflows in a burst of connections while
/// the process is busy: Linux then drops the handshake's last packet, and the client holds a
/// connection the process never sees, so no timeout of ours can close it.
const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `address` with [`LISTEN_BACKLOG`], reusing the address as the standard library
/// does.
fn listen(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A registry's metrics in the OpenMetrics text format.
pub fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, registry);
    text
}

/// `GET /metrics`: what `encode` writes, as OpenMetrics text.
pub fn metrics(encode: impl Fn() -> String + Send + Sync + 'static) -> impl Endpoint {
    get(make_sync(move |_| {
        encode().with_content_type(OPENMETRICS).into_response()
    }))
}

/// What a probe answers, as JSON: `{"status": "alive"}`.
#[derive(Serialize)]
pub struct Status {
    pub status: &'static str,
}

/// `GET /healthz`: 200 and `{"status": "alive"}` as long as the process answers.
pub fn healthz() -> impl Endpoint {
    get(make_sync(|_| Json(Status { status: "alive" })))
}
