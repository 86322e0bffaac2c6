//! Orders that must pass, and what the canonical document keeps of them.

use orders::validate::{MAX_ITEMS, MAX_MESSAGE_BYTES, MAX_ORDER_UID_CHARS};
use serde_json::{json, Value};

use crate::support::{accepted, at, document, sample, sample_setting, sample_with};

#[test]
fn the_sample_order_is_accepted_and_its_document_is_the_sample() {
    let order = accepted(testkit::sample_order());

    assert_eq!(order.uid(), "b563feb7b2b84b6test");
    assert_eq!(document(&order), sample());
}

#[test]
fn the_sample_has_the_empty_and_zero_values_that_are_allowed() {
    // The sample would not prove much about them if they were not there.
    let sample = sample();
    assert_eq!(sample["payment"]["request_id"], "");
    assert_eq!(sample["internal_signature"], "");
    assert_eq!(sample["payment"]["custom_fee"], 0);
}

#[test]
fn the_document_of_an_order_is_accepted_again_with_the_same_document() {
    let first = accepted(testkit::sample_order());
    let second = accepted(first.document());

    assert_eq!(second.document(), first.document());
}

#[test]
fn the_optional_text_fields_may_be_empty() {
    for path in [
        "internal_signature",
        "delivery.zip",
        "delivery.region",
        "delivery.email",
        "payment.request_id",
        "payment.bank",
        "items[0].brand",
    ] {
        let order = accepted(&sample_setting(path, json!("")));
        assert_eq!(*at(&mut document(&order), path), "", "{path}");
    }
}

#[test]
fn a_time_with_an_offset_is_stored_in_utc() {
    let order = accepted(&sample_setting(
        "date_created",
        json!("2021-11-26T09:22:19+03:00"),
    ));

    assert_eq!(document(&order)["date_created"], "2021-11-26T06:22:19Z");
}

#[test]
fn emoji_right_to_left_and_zero_width_characters_are_kept_exactly() {
    let texts = [
        ("delivery.name", "Тест Тестов 🧑‍🚀🇮🇱"),
        ("delivery.city", "קריית מוצקין"),
        ("delivery.address", "شارع السلام 15"),
        ("delivery.region", "\u{200f}Kraiot\u{200e} \u{202e}tset"),
        ("items[0].name", "Mas\u{200b}car\u{200d}as\u{2060}"),
        ("items[0].brand", "Vivienne Sabo 💄"),
    ];
    let edited = sample_with(|order| {
        for (path, text) in texts {
            *at(order, path) = json!(text);
        }
    });
    // The same character written as an escaped surrogate pair, as some encoders do.
    let escaped = String::from_utf8(edited)
        .expect("compact JSON is UTF-8")
        .replacen("💄", "\\ud83d\\udc84", 1);

    let order = accepted(escaped.as_bytes());

    let mut kept = document(&order);
    for (path, text) in texts {
        assert_eq!(*at(&mut kept, path), Value::from(text), "{path}");
    }
}

#[test]
fn html_script_and_sql_in_free_text_are_kept_exactly() {
    let texts = [
        ("delivery.name", "<script>alert('x')</script>"),
        ("delivery.address", "<b>Ploshad</b> Mira 15 &amp; \"Co\""),
        ("delivery.city", "O'Brien'; DROP TABLE orders;--"),
        ("delivery.region", "{{7*7}} ${jndi:ldap://x} %s%n"),
        ("items[0].name", "\"><img src=x onerror=alert(1)>"),
        ("items[0].brand", "</script><!--"),
        ("internal_signature", "line one\nline two\ttabbed\r\n"),
    ];
    let edited = sample_with(|order| {
        for (path, text) in texts {
            *at(order, path) = json!(text);
        }
    });

    let order = accepted(&edited);

    let mut kept = document(&order);
    for (path, text) in texts {
        assert_eq!(*at(&mut kept, path), Value::from(text), "{path}");
    }
}

#[test]
fn a_name_of_512_emoji_is_accepted_because_the_limit_counts_characters() {
    let order = accepted(&sample_setting("delivery.name", json!("🦀".repeat(512))));

    assert_eq!(order.order().delivery.name.chars().count(), 512);
}

#[test]
fn an_order_uid_of_the_longest_allowed_length_is_accepted() {
    let uid = "u".repeat(MAX_ORDER_UID_CHARS);
    let order = accepted(&sample_with(|order| {
        order["order_uid"] = json!(uid);
        order["payment"]["transaction"] = json!(uid);
    }));

    assert_eq!(order.uid(), uid);
}

#[test]
fn an_order_uid_of_letters_digits_underscores_and_dashes_is_accepted() {
    let uid = "Ab-9_z";
    let order = accepted(&sample_with(|order| {
        order["order_uid"] = json!(uid);
        order["payment"]["transaction"] = json!(uid);
    }));

    assert_eq!(order.uid(), uid);
}

#[test]
fn a_sale_of_zero_and_of_one_hundred_percent_is_accepted() {
    for sale in [0, 100] {
        accepted(&sample_setting("items[0].sale", json!(sale)));
    }
}

#[test]
fn an_order_with_the_largest_number_of_items_is_accepted() {
    let edited = sample_with(|order| {
        let item = order["items"][0].clone();
        order["items"] = Value::Array(vec![item; MAX_ITEMS]);
        let goods_total = 317 * MAX_ITEMS as i64;
        order["payment"]["goods_total"] = json!(goods_total);
        order["payment"]["amount"] = json!(goods_total + 1500);
    });

    assert_eq!(accepted(&edited).order().items.len(), MAX_ITEMS);
}

#[test]
fn a_message_of_exactly_the_largest_size_is_accepted() {
    let mut message = testkit::sample_order().to_vec();
    message.resize(MAX_MESSAGE_BYTES, b' ');

    accepted(&message);
}
