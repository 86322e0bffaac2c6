//! JetStream as an [`Archive`]: messages read from the stream by their sequence (`STREAM.MSG.GET`),
//! over a connection of its own, opened on the first request.

use std::io;

use async_nats::jetstream::stream::RawMessageErrorKind;
use async_nats::jetstream::{self, Context};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::JetStreamSettings;
use crate::broker::{fetched, Archive, Read};

/// The sweeper's handle on the stream.
pub struct JetStreamArchive {
    settings: JetStreamSettings,
    context: Option<Context>,
}

impl JetStreamSettings {
    pub fn archive(&self) -> JetStreamArchive {
        JetStreamArchive {
            settings: self.clone(),
            context: None,
        }
    }
}

impl JetStreamArchive {
    async fn context(&mut self) -> io::Result<&Context> {
        if self.context.is_none() {
            let name = format!("{}-gaps", self.settings.connection_name);
            let client = service_kit::jetstream::connect(&self.settings.nats_url, &name)
                .await
                .map_err(|e| io::Error::other(format!("{e:#}")))?;
            self.context = Some(jetstream::new(client));
        }
        Ok(self.context.as_ref().expect("just connected"))
    }

    async fn stream(&mut self) -> io::Result<jetstream::stream::Stream> {
        let name = self.settings.stream.name.clone();
        self.context()
            .await?
            .get_stream(&name)
            .await
            .map_err(|e| io::Error::other(format!("looking up the stream {name}: {e}")))
    }
}

impl Archive for JetStreamArchive {
    fn last_sequence(&mut self) -> BoxFuture<'_, io::Result<Option<u64>>> {
        async move {
            let mut stream = self.stream().await?;
            let info = stream
                .info()
                .await
                .map_err(|e| io::Error::other(format!("reading the stream's state: {e}")))?;
            Ok(Some(info.state.last_sequence))
        }
        .boxed()
    }

    /// A sequence the stream no longer holds, or that holds a message of another subject, is
    /// absent: there is nothing of the channel's to consume.
    fn read(&mut self, first: u64, last: u64) -> BoxFuture<'_, io::Result<Read>> {
        async move {
            let stream = self.stream().await?;
            let subject = self.settings.stream.subject.clone();
            let mut read = Read::default();
            for sequence in first..=last {
                match stream.get_raw_message(sequence).await {
                    Ok(message) if message.subject.as_str() == subject => {
                        read.deliveries.push(fetched(
                            &subject,
                            sequence,
                            message.time,
                            message.payload,
                        ));
                    }
                    Ok(_) => read.absent.push(sequence),
                    Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => {
                        read.absent.push(sequence);
                    }
                    Err(e) => {
                        return Err(io::Error::other(format!(
                            "reading message {sequence} of the stream: {e}"
                        )))
                    }
                }
            }
            Ok(read)
        }
        .boxed()
    }
}
