//! JetStream as the ingestor and the publisher both use it: one connection to every server given,
//! and the stream of orders, created the same way by whichever of them comes first.

use std::time::Duration;

use anyhow::{bail, Context as _};
use async_nats::jetstream::stream::{Config, DiscardPolicy, RetentionPolicy, StorageType, Stream};
use async_nats::jetstream::Context;
use async_nats::{Client, ConnectOptions, Event};

/// The stream of orders: its name, the one subject it captures, and its replicas when created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub name: String,
    pub subject: String,
    /// How many servers of a cluster keep each message: 1, 3 or 5 (1 on a single server).
    pub replicas: usize,
}

/// How long the broker remembers a message id (`Nats-Msg-Id`), so that a publish retried within it
/// is stored once.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

impl StreamSpec {
    /// The stream as created when missing: on disk, every message kept (as NATS Streaming keeps its
    /// channels: consumers and replays may start anywhere), and ids remembered for
    /// [`DUPLICATE_WINDOW`].
    pub fn config(&self) -> Config {
        Config {
            name: self.name.clone(),
            subjects: vec![self.subject.clone()],
            description: Some("Orders for the order service, one message each".into()),
            storage: StorageType::File,
            retention: RetentionPolicy::Limits,
            discard: DiscardPolicy::Old,
            num_replicas: self.replicas,
            duplicate_window: DUPLICATE_WINDOW,
            ..Config::default()
        }
    }
}

/// A stream name as a setting takes it, kept to what every tool accepts (JetStream also uses it in
/// subjects and file names): letters, digits, `-` and `_`.
pub fn stream_name(text: &str) -> Result<String, String> {
    if text.is_empty() {
        Err("must not be empty".into())
    } else if !text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Err("may hold only letters, digits, - and _".into())
    } else {
        Ok(text.to_string())
    }
}

/// The servers of a comma-separated URL list, as the client takes them.
pub fn server_list(urls: &str) -> Vec<String> {
    urls.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .collect()
}

/// Connects to any of `urls` (comma-separated), named `name` on the servers. The connection then
/// reconnects by itself, to any server of the cluster, for as long as the process runs; losses and
/// returns are logged.
pub async fn connect(urls: &str, name: &str) -> anyhow::Result<Client> {
    let options = ConnectOptions::new()
        .name(name)
        .max_reconnects(None)
        .event_callback(|event| async move {
            match event {
                Event::Disconnected => {
                    tracing::warn!("lost the connection to the NATS server; reconnecting")
                }
                Event::Connected => tracing::info!("connected to the NATS server"),
                Event::SlowConsumer(_) => {
                    tracing::warn!("the NATS client reads more slowly than messages arrive")
                }
                other => tracing::debug!(event = %other, "NATS client event"),
            }
        });
    options
        .connect(server_list(urls))
        .await
        .with_context(|| format!("connecting to {urls}"))
}

/// The stream of `spec`, created as [`StreamSpec::config`] says when it is missing and `create`
/// allows. An existing stream must capture the subject: another configuration is the operator's
/// to keep.
pub async fn ensure_stream(
    js: &Context,
    spec: &StreamSpec,
    create: bool,
) -> anyhow::Result<Stream> {
    let mut stream = match js.get_stream(&spec.name).await {
        Ok(stream) => stream,
        Err(e) if is_missing(&e) => {
            if !create {
                bail!(
                    "the JetStream stream {} does not exist, and creating it is turned off",
                    spec.name
                );
            }
            match js.create_stream(spec.config()).await {
                Ok(stream) => {
                    tracing::info!(stream = %spec.name, subject = %spec.subject,
                        replicas = spec.replicas, "created the JetStream stream");
                    stream
                }
                // Created meanwhile by another process: take that one; otherwise the creation's
                // own error says why.
                Err(created) => js.get_stream(&spec.name).await.map_err(|_| {
                    anyhow::anyhow!("creating the JetStream stream {}: {created}", spec.name)
                })?,
            }
        }
        Err(e) => {
            return Err(e).with_context(|| format!("looking up the JetStream stream {}", spec.name))
        }
    };
    let info = stream
        .info()
        .await
        .with_context(|| format!("reading the JetStream stream {}", spec.name))?;
    if !info
        .config
        .subjects
        .iter()
        .any(|s| captures(s, &spec.subject))
    {
        bail!(
            "the JetStream stream {} captures {:?}, not the subject {}",
            spec.name,
            info.config.subjects,
            spec.subject
        );
    }
    Ok(stream)
}

fn is_missing(e: &async_nats::jetstream::context::GetStreamError) -> bool {
    use async_nats::jetstream::context::GetStreamErrorKind;
    use async_nats::jetstream::ErrorCode;
    matches!(e.kind(), GetStreamErrorKind::JetStream(ref js) if js.error_code() == ErrorCode::STREAM_NOT_FOUND)
}

/// Whether the subject pattern `pattern` (with `*` and `>` wildcards) matches `subject`.
fn captures(pattern: &str, subject: &str) -> bool {
    let mut tokens = subject.split('.');
    for p in pattern.split('.') {
        match (p, tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (p, Some(t)) if p == t => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_captures_its_own_subject_and_what_its_wildcards_allow() {
        assert!(captures("orders", "orders"));
        assert!(captures("orders.*", "orders.new"));
        assert!(captures("orders.>", "orders.new.eu"));
        assert!(captures(">", "orders"));
        assert!(!captures("orders.*", "orders"));
        assert!(!captures("orders.*", "orders.new.eu"));
        assert!(!captures("orders", "orders.new"));
        assert!(!captures("other", "orders"));
    }

    #[test]
    fn a_url_list_is_split_on_commas_without_blanks() {
        assert_eq!(
            server_list("nats://a:1, nats://b:2,,"),
            vec!["nats://a:1".to_string(), "nats://b:2".to_string()]
        );
    }
}
