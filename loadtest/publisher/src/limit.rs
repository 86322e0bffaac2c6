//! What the broker accepts: a message that fits in a NATS payload of `max_payload` bytes once
//! wrapped (in the streaming envelope for STAN, with its headers for JetStream), and with
//! JetStream an id that can be a header. Checked before a message is sent, so that what the
//! broker would refuse is refused here, with the limit.

use anyhow::{bail, Context as _};
use async_nats::header::NATS_MESSAGE_ID;

use crate::publish::{Message, Target, Transport};
use crate::transport::{client_id, message_id};

/// The bytes the headers of a message with the id `id` take in a NATS payload: the block
/// `NATS/1.0\r\nNats-Msg-Id: <id>\r\n\r\n`.
fn header_bytes(id: &str) -> usize {
    let name: &str = NATS_MESSAGE_ID.as_ref();
    "NATS/1.0\r\n".len() + name.len() + ": ".len() + id.len() + "\r\n".len() + "\r\n".len()
}

/// The bytes the streaming envelope (a protobuf `PubMsg`) adds around a message at most: three
/// ids of a UUID's 36 characters or less, the channel, and the fields' tags and lengths.
fn envelope_bytes(channel: &str) -> usize {
    client_id(u16::MAX).len() + channel.len() + 2 * 36 + 24
}

/// The largest message with the id `id` that fits in a NATS payload of `max_payload` bytes, once
/// wrapped in the streaming envelope (STAN) or with its headers (JetStream).
pub fn message_limit(target: &Target, id: &str) -> usize {
    let wrapping = match target.transport {
        Transport::Stan { .. } => envelope_bytes(&target.channel),
        Transport::JetStream { .. } => header_bytes(id),
    };
    target.max_payload.saturating_sub(wrapping)
}

/// Refuses a message that the broker would refuse, saying why: too large (and the limit), or, with
/// JetStream, an id that cannot be a header.
pub fn check(message: &Message, target: &Target) -> anyhow::Result<()> {
    let (name, len) = (&message.name, message.bytes.len());
    let limit = message_limit(target, &message.id);
    let wrapping = match target.transport {
        Transport::Stan { .. } => "the streaming envelope takes the rest",
        Transport::JetStream { .. } => "its headers (its id as Nats-Msg-Id) take the rest",
    };
    if len > limit {
        bail!(
            "{name} has {len} bytes, more than the {limit} bytes a message may have: the broker \
             accepts NATS payloads of at most {} bytes (max_payload; see --max-payload) and \
             {wrapping}; it was not sent",
            target.max_payload
        );
    }
    if let Transport::JetStream { .. } = target.transport {
        message_id(&message.id).with_context(|| format!("{name} was not sent"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::tests::{jetstream, stan, target};

    fn message(id: &str, len: usize) -> Message {
        Message {
            kind: "file",
            name: id.into(),
            id: id.into(),
            bytes: vec![b' '; len],
        }
    }

    #[test]
    fn a_message_too_large_for_the_broker_is_refused_with_the_limit_in_the_error() {
        for (transport, takes) in [
            (stan(), "the streaming envelope"),
            (jetstream(), "its headers"),
        ] {
            let error = check(
                &message("big.json", 1024 * 1024),
                &target(transport, 1024 * 1024),
            )
            .unwrap_err();

            let text = error.to_string();
            assert!(text.contains("big.json has 1048576 bytes"), "{text}");
            assert!(text.contains("at most 1048576 bytes"), "{text}");
            assert!(text.contains(takes), "{text}");
        }
    }

    #[test]
    fn a_message_that_fits_with_its_envelope_is_allowed() {
        let target = target(stan(), 1024 * 1024);
        let limit = message_limit(&target, "fits");

        assert!(limit > 1024 * 1024 - 300);
        check(&message("fits", limit), &target).unwrap();
        check(&message("one byte more", limit + 1), &target).unwrap_err();
    }

    #[test]
    fn a_jetstream_message_fits_with_its_id_in_the_headers() {
        let target = target(jetstream(), 1024 * 1024);
        let id = "b563feb7b2b84b6test";
        let limit = message_limit(&target, id);

        assert_eq!(limit, 1024 * 1024 - header_bytes(id));
        assert!(message_limit(&target, "a-longer-id") < message_limit(&target, "short"));
        check(&message(id, limit), &target).unwrap();
        check(&message(id, limit + 1), &target).unwrap_err();
    }

    #[test]
    fn a_jetstream_message_whose_id_cannot_be_a_header_is_refused() {
        let error = check(&message("a\nb.json", 10), &target(jetstream(), 1024)).unwrap_err();

        assert!(
            format!("{error:#}").contains("cannot be a NATS header"),
            "{error:#}"
        );
        check(&message("a\nb.json", 10), &target(stan(), 1024)).unwrap();
    }

    #[test]
    fn the_headers_of_a_message_take_their_wire_bytes() {
        assert_eq!(
            header_bytes("b563feb7b2b84b6test"),
            "NATS/1.0\r\nNats-Msg-Id: b563feb7b2b84b6test\r\n\r\n".len()
        );
    }
}
