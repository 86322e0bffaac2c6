//! Rules about single values: ids, text, numbers, times and formats.

use orders::validate::MAX_ORDER_UID_CHARS;
use orders::Rule;
use serde_json::{json, Value};

use crate::support::{
    accepted, assert_rejected, sample_paths, sample_replacing, sample_setting, sample_with,
};

/// The sample with `uid` as both its `order_uid` and its `payment.transaction`.
fn sample_with_uid(uid: &str) -> Vec<u8> {
    sample_with(|order| {
        order["order_uid"] = json!(uid);
        order["payment"]["transaction"] = json!(uid);
    })
}

#[test]
fn an_empty_order_uid_is_rejected() {
    assert_rejected(
        &sample_with_uid(""),
        Rule::InvalidOrderUid,
        "order_uid is empty",
    );
}

#[test]
fn an_order_uid_longer_than_the_limit_is_rejected() {
    let uid = "u".repeat(MAX_ORDER_UID_CHARS + 1);

    assert_rejected(
        &sample_with_uid(&uid),
        Rule::InvalidOrderUid,
        "order_uid has 65 bytes",
    );
}

#[test]
fn an_order_uid_with_a_character_outside_its_alphabet_is_rejected() {
    for uid in [
        "b563 feb7",
        "b563/feb7",
        "../etc/passwd",
        "..",
        "b563'; DROP TABLE orders;--",
        "b563%2Ffeb7",
        "b563.feb7",
        "b563feb7\n",
        "b563fébé",
        "b563\u{200b}feb7",
    ] {
        assert_rejected(
            &sample_with_uid(uid),
            Rule::InvalidOrderUid,
            "order_uid contains the character",
        );
    }
}

#[test]
fn a_nul_character_in_any_text_field_is_rejected_and_the_reason_names_the_field() {
    for path in sample_paths(Value::is_string) {
        let (rule, names) = match path.as_str() {
            // Its own check, which allows fewer characters still.
            "order_uid" => (Rule::InvalidOrderUid, "order_uid".to_string()),
            "payment.currency" => (Rule::InvalidFormat, "payment.currency".to_string()),
            // A time, not text: it does not parse.
            "date_created" => (
                Rule::SchemaMismatch,
                "the JSON does not have the shape of an order".to_string(),
            ),
            _ => (
                Rule::NulCharacter,
                format!("{path} contains a NUL character"),
            ),
        };
        let message = sample_with(|order| {
            let text = crate::support::at(order, &path);
            *text = json!(format!("{}\u{0}x", text.as_str().unwrap()));
        });

        assert_rejected(&message, rule, &names);
    }
}

#[test]
fn a_nul_written_as_an_escape_is_rejected_like_any_nul() {
    let message = sample_replacing("Mascaras", "Masc\\u0000aras");

    assert_rejected(
        &message,
        Rule::NulCharacter,
        "items[0].name contains a NUL character",
    );
}

#[test]
fn a_control_character_is_rejected_in_ids_and_codes_but_not_line_breaks_in_free_text() {
    for (path, text) in [
        ("track_number", "WBIL\tTRACK"),
        ("customer_id", "test\n"),
        ("items[0].rid", "ab42\u{7}"),
        ("delivery.name", "Test\u{1b}[31mTestov"),
        ("delivery.address", "Ploshad\u{7f}Mira"),
    ] {
        assert_rejected(
            &sample_setting(path, json!(text)),
            Rule::ControlCharacter,
            path,
        );
    }

    accepted(&sample_setting(
        "delivery.address",
        json!("Ploshad Mira 15\r\nfloor 2\tleft"),
    ));
}

#[test]
fn a_required_text_field_that_is_empty_or_blank_is_rejected_and_the_reason_names_it() {
    for path in [
        "track_number",
        "entry",
        "locale",
        "customer_id",
        "delivery_service",
        "shardkey",
        "oof_shard",
        "delivery.name",
        "delivery.phone",
        "delivery.city",
        "delivery.address",
        "payment.transaction",
        "payment.provider",
        "items[0].track_number",
        "items[0].rid",
        "items[0].name",
        "items[0].size",
    ] {
        for blank in ["", "   ", "\t\n"] {
            assert_rejected(
                &sample_setting(path, json!(blank)),
                Rule::EmptyField,
                &format!("{path} is empty"),
            );
        }
    }
}

#[test]
fn a_string_of_a_megabyte_is_rejected_as_too_long_and_the_reason_names_the_field() {
    let message = sample_setting("delivery.address", json!("x".repeat(1_000_000)));

    assert_rejected(
        &message,
        Rule::TooLong,
        "delivery.address has 1000000 characters",
    );
}

#[test]
fn text_longer_than_its_limit_is_rejected_and_the_reason_names_the_field() {
    for (path, limit) in [
        ("track_number", 128),
        ("locale", 64),
        ("delivery.name", 512),
        ("items[0].brand", 512),
    ] {
        let message = sample_setting(path, json!("é".repeat(limit + 1)));

        assert_rejected(
            &message,
            Rule::TooLong,
            &format!("{path} has {} characters", limit + 1),
        );
    }
}

#[test]
fn every_integer_field_refuses_a_negative_value_and_the_reason_names_it() {
    for path in sample_paths(Value::is_i64) {
        let rule = if path.ends_with(".sale") {
            Rule::OutOfRange
        } else {
            Rule::Negative
        };

        assert_rejected(&sample_setting(&path, json!(-1)), rule, &path);
    }
}

#[test]
fn a_sale_above_one_hundred_percent_is_rejected() {
    let message = sample_setting("items[0].sale", json!(101));

    assert_rejected(&message, Rule::OutOfRange, "items[0].sale is 101");
}

#[test]
fn a_creation_date_long_ago_or_far_ahead_is_rejected() {
    for date in [
        "1970-01-01T00:00:00Z",
        "1999-12-31T23:59:59Z",
        "3000-01-01T00:00:00Z",
    ] {
        assert_rejected(
            &sample_setting("date_created", json!(date)),
            Rule::OutOfRange,
            "date_created",
        );
    }
}

#[test]
fn a_creation_date_with_second_60_is_rejected_because_postgres_would_store_another_time() {
    for date in [
        "2021-11-26T06:22:60Z",
        "2016-12-31T23:59:60Z",
        "2021-11-26T06:22:60.5+03:00",
    ] {
        assert_rejected(
            &sample_setting("date_created", json!(date)),
            Rule::InvalidFormat,
            "date_created has second 60",
        );
    }
}

#[test]
fn a_payment_time_long_ago_far_ahead_or_beyond_any_calendar_is_rejected() {
    for seconds in [0, 946_684_799, 32_503_680_000, i64::MAX] {
        assert_rejected(
            &sample_setting("payment.payment_dt", json!(seconds)),
            Rule::OutOfRange,
            "payment.payment_dt",
        );
    }
}

#[test]
fn a_currency_that_is_not_three_capital_letters_is_rejected() {
    for currency in ["usd", "US", "USDT", "U$D", "", "   ", "ÜSD", "12 "] {
        assert_rejected(
            &sample_setting("payment.currency", json!(currency)),
            Rule::InvalidFormat,
            "payment.currency",
        );
    }
}

#[test]
fn an_email_that_is_not_an_address_is_rejected() {
    for email in [
        "test",
        "test@",
        "@gmail.com",
        "a@b@gmail.com",
        "te st@gmail.com",
        "test@gmail.com\n",
    ] {
        assert_rejected(
            &sample_setting("delivery.email", json!(email)),
            Rule::InvalidFormat,
            "delivery.email",
        );
    }
}

#[test]
fn a_phone_with_letters_is_rejected() {
    for phone in ["+972abc0000", "call me", "+972 000 00 00 ext. 5"] {
        assert_rejected(
            &sample_setting("delivery.phone", json!(phone)),
            Rule::InvalidFormat,
            "delivery.phone",
        );
    }

    accepted(&sample_setting(
        "delivery.phone",
        json!("+972 (0) 000-00-00"),
    ));
}

#[test]
fn a_phone_without_any_digit_is_rejected() {
    for phone in ["+", "()", "- -"] {
        assert_rejected(
            &sample_setting("delivery.phone", json!(phone)),
            Rule::InvalidFormat,
            "delivery.phone",
        );
    }
}

#[test]
fn an_identifier_with_invisible_or_bidirectional_formatting_characters_is_rejected() {
    for (field, value) in [
        ("track_number", "WBIL\u{202e}X"),
        ("customer_id", "te\u{200b}st"),
        ("items[0].rid", "\u{feff}ab42"),
    ] {
        assert_rejected(
            &sample_setting(field, json!(value)),
            Rule::ControlCharacter,
            field,
        );
    }
}
