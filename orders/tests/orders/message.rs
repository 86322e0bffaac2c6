//! Rules about the message as a whole: size, encoding and JSON syntax. No field is at fault, so
//! the reasons say what is wrong with the message instead.

use orders::validate::MAX_MESSAGE_BYTES;
use orders::Rule;

use crate::support::{assert_rejected, sample_setting};

#[test]
fn an_empty_message_is_rejected() {
    assert_rejected(b"", Rule::EmptyMessage, "empty");
}

#[test]
fn a_message_of_only_white_space_is_rejected_as_empty() {
    assert_rejected(b" \n\t\r  \n", Rule::EmptyMessage, "white space");
}

#[test]
fn a_message_larger_than_the_limit_is_rejected_and_the_reason_says_the_limit() {
    let mut message = testkit::sample_order().to_vec();
    message.resize(MAX_MESSAGE_BYTES + 1, b' ');

    assert_rejected(&message, Rule::TooLarge, &MAX_MESSAGE_BYTES.to_string());
}

#[test]
fn a_message_with_a_string_of_two_megabytes_is_rejected_as_too_large() {
    let message = sample_setting("delivery.address", "x".repeat(2 << 20).into());

    assert_rejected(&message, Rule::TooLarge, "more than the limit");
}

#[test]
fn invalid_utf8_is_rejected_and_the_reason_says_where() {
    let sample = testkit::sample_order();
    let at = sample
        .windows(4)
        .position(|w| w == b"Test")
        .expect("a name");
    let cases: [&[u8]; 4] = [
        // A byte that never occurs in UTF-8.
        b"\xff",
        // Latin-1 for e acute.
        b"\xe9",
        // An overlong encoding of '/'.
        b"\xc0\xaf",
        // An encoded surrogate.
        b"\xed\xa0\x80",
    ];
    for bad in cases {
        let mut message = sample[..at].to_vec();
        message.extend_from_slice(bad);
        message.extend_from_slice(&sample[at..]);

        assert_rejected(&message, Rule::InvalidUtf8, &format!("offset {at}"));
    }
}

#[test]
fn a_message_cut_inside_a_multi_byte_character_is_rejected_as_invalid_utf8() {
    let message = "{\"order_uid\": \"é".as_bytes();

    assert_rejected(&message[..message.len() - 1], Rule::InvalidUtf8, "UTF-8");
}

#[test]
fn a_message_in_utf16_is_rejected_as_invalid_utf8() {
    let utf16: Vec<u8> = std::str::from_utf8(testkit::sample_order())
        .unwrap()
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let mut message = vec![0xff, 0xfe];
    message.extend(utf16);

    assert_rejected(&message, Rule::InvalidUtf8, "UTF-8");
}

#[test]
fn a_message_that_starts_with_a_byte_order_mark_is_rejected() {
    let mut message = "\u{feff}".as_bytes().to_vec();
    message.extend_from_slice(testkit::sample_order());

    assert_rejected(&message, Rule::MalformedJson, "byte order mark");
}

#[test]
fn text_that_is_not_json_is_rejected_as_malformed() {
    for text in [
        "hello",
        "<order><order_uid>b563feb7b2b84b6test</order_uid></order>",
        "order_uid=b563feb7b2b84b6test&track_number=WBILMTESTTRACK",
        "{order_uid: 'b563feb7b2b84b6test'}",
        "{\"order_uid\": \"b563feb7b2b84b6test\",}",
        "\u{a0}{}",
    ] {
        assert_rejected(text.as_bytes(), Rule::MalformedJson, "not well-formed JSON");
    }
}

#[test]
fn every_truncation_of_the_sample_is_rejected_as_malformed() {
    let sample = testkit::sample_order().trim_ascii_end();
    for len in 1..sample.len() {
        let prefix = &sample[..len];
        if prefix.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        assert_rejected(prefix, Rule::MalformedJson, "not well-formed JSON");
    }
}

#[test]
fn text_after_the_order_is_rejected_as_malformed() {
    let sample = testkit::sample_order();
    let mut twice = sample.to_vec();
    twice.extend_from_slice(sample);
    let mut garbage = sample.to_vec();
    garbage.extend_from_slice(b"x");

    for message in [twice, garbage] {
        assert_rejected(&message, Rule::MalformedJson, "trailing characters");
    }
}

#[test]
fn a_raw_nul_byte_in_a_string_is_rejected_as_malformed() {
    let message = String::from_utf8(testkit::sample_order().to_vec())
        .unwrap()
        .replacen("Test Testov", "Test\0Testov", 1);

    assert_rejected(message.as_bytes(), Rule::MalformedJson, "control character");
}

#[test]
fn a_lone_surrogate_escape_is_rejected_as_malformed() {
    for escape in ["\\ud800", "\\udfff", "\\ud800\\u0041"] {
        let message = String::from_utf8(testkit::sample_order().to_vec())
            .unwrap()
            .replacen("Test Testov", &format!("Test{escape}Testov"), 1);

        // serde_json words some of these oddly ("unexpected end of hex escape"), but all are
        // refused.
        assert_rejected(message.as_bytes(), Rule::MalformedJson, "hex escape");
    }
}

#[test]
fn json_nested_ten_thousand_deep_is_rejected_without_overflowing_the_stack() {
    let depth = 10_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let objects = format!("{}0{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    let messages = [
        arrays.clone(),
        objects.clone(),
        format!("{{\"order_uid\":{arrays}}}"),
        format!("{{\"delivery\":{objects}}}"),
        format!("{{\"items\":[{arrays}]}}"),
        // Unclosed, so that a parser that reads to the end before it looks must go deep.
        "[".repeat(depth),
        "{\"a\":".repeat(depth),
    ];
    // A thread with a small stack, so that recursion that is not bounded fails here too.
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            for message in messages {
                let rejection = orders::parse_order(message.as_bytes())
                    .expect_err("deeply nested JSON is not an order");
                assert!(
                    matches!(rejection.rule, Rule::MalformedJson | Rule::SchemaMismatch),
                    "{rejection}"
                );
            }
        })
        .expect("spawn a thread")
        .join()
        .expect("no panic nor overflow");
}
