//! The STAN protocol's client ping, which tells whether the broker still knows a session.

use std::time::Duration;

const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// The STAN protocol's client ping, which the `stan` crate does not send: the broker answers whether
/// it still knows the connection. The crate keeps the connection id private but shows it in its
/// `Debug` output, which is where we read it from (the crate's version is pinned).
pub(super) struct Pinger {
    subject: String,
    request: Vec<u8>,
}

pub(super) enum PingError {
    /// The broker answered that it does not know this connection.
    Forgotten(String),
    /// No answer in time.
    Unanswered(std::io::Error),
}

impl Pinger {
    pub(super) fn for_client(client: &stan::Client, cluster_id: &str) -> Option<Pinger> {
        let conn_id = conn_id_from_debug(&format!("{client:?}"))?;
        // protobuf `Ping { bytes connID = 1; }`
        let len = u8::try_from(conn_id.len()).ok().filter(|l| *l < 0x80)?;
        let mut request = vec![0x0a, len];
        request.extend_from_slice(&conn_id);
        Some(Pinger {
            subject: format!("_STAN.discover.{cluster_id}.pings"),
            request,
        })
    }

    pub(super) fn ping(&self, connection: &nats::Connection) -> Result<(), PingError> {
        let reply = connection
            .request_timeout(&self.subject, &self.request, PING_TIMEOUT)
            .map_err(PingError::Unanswered)?;
        // protobuf `PingResponse { string error = 1; }`: empty when all is well.
        match reply.data.get(2..) {
            None => Ok(()),
            Some(error) => Err(PingError::Forgotten(
                String::from_utf8_lossy(error).into_owned(),
            )),
        }
    }
}

/// Reads `conn_id: [1, 2, 3]` from the `Debug` output of a `stan::Client`.
fn conn_id_from_debug(debug: &str) -> Option<Vec<u8>> {
    let start = debug.find("conn_id: [")? + "conn_id: [".len();
    let end = start + debug[start..].find(']')?;
    debug[start..end]
        .split(',')
        .map(|b| b.trim().parse::<u8>().ok())
        .collect::<Option<Vec<u8>>>()
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::conn_id_from_debug;

    #[test]
    fn the_connection_id_is_read_from_the_clients_debug_output() {
        let debug = r#"Client { cluster_id: "test-cluster", client_id: "x", conn_id: [97, 98, 99], pub_prefix: "p" }"#;
        assert_eq!(conn_id_from_debug(debug), Some(b"abc".to_vec()));
        assert_eq!(conn_id_from_debug("Client { }"), None);
        assert_eq!(conn_id_from_debug("conn_id: []"), None);
    }
}
