//! Rules about the shape of the JSON: the fields an order has and the types of their values.

use orders::Rule;
use serde_json::{json, Value};

use crate::support::{
    assert_rejected, sample, sample_replacing, sample_setting, sample_with, ORDER_FIELDS,
};

#[test]
fn json_that_is_not_an_object_is_rejected_as_a_schema_mismatch() {
    for text in [
        "[]",
        "[1, 2]",
        "\"b563feb7b2b84b6test\"",
        "1817",
        "null",
        "true",
    ] {
        assert_rejected(
            text.as_bytes(),
            Rule::SchemaMismatch,
            "the JSON does not have the shape of an order",
        );
    }
}

#[test]
fn an_unknown_field_is_rejected_at_every_level_and_the_reason_names_it() {
    for (object, field) in [
        ("", "nickname"),
        ("/delivery", "apartment"),
        ("/payment", "tip"),
        ("/items/0", "colour"),
    ] {
        let message = sample_with(|order| {
            order
                .pointer_mut(object)
                .and_then(Value::as_object_mut)
                .expect("an object")
                .insert(field.to_string(), json!("x"));
        });

        assert_rejected(
            &message,
            Rule::SchemaMismatch,
            &format!("unknown field `{field}`"),
        );
    }
}

#[test]
fn a_field_name_in_another_case_is_an_unknown_field() {
    let message = sample_with(|order| {
        let order = order.as_object_mut().unwrap();
        let uid = order.remove("order_uid").unwrap();
        order.insert("Order_UID".to_string(), uid);
    });

    assert_rejected(&message, Rule::SchemaMismatch, "unknown field `Order_UID`");
}

#[test]
fn each_field_of_the_sample_is_required_and_the_reason_names_the_missing_one() {
    let sample = sample();
    let objects = [
        ("", &sample),
        ("/delivery", &sample["delivery"]),
        ("/payment", &sample["payment"]),
        ("/items/0", &sample["items"][0]),
    ];
    for (object, fields) in objects {
        for field in fields.as_object().expect("an object").keys() {
            let message = sample_with(|order| {
                order
                    .pointer_mut(object)
                    .and_then(Value::as_object_mut)
                    .expect("an object")
                    .remove(field);
            });

            assert_rejected(
                &message,
                Rule::SchemaMismatch,
                &format!("missing field `{field}`"),
            );
        }
    }
}

#[test]
fn null_is_not_a_value_for_a_required_field() {
    for path in ["order_uid", "payment.amount", "delivery", "items"] {
        assert_rejected(
            &sample_setting(path, Value::Null),
            Rule::SchemaMismatch,
            "invalid type: null",
        );
    }
}

#[test]
fn a_string_where_a_number_is_expected_is_rejected() {
    let message = sample_setting("payment.amount", json!("1817"));

    assert_rejected(
        &message,
        Rule::SchemaMismatch,
        "invalid type: string \"1817\", expected i64",
    );
}

#[test]
fn a_number_where_a_string_is_expected_is_rejected() {
    let message = sample_setting("delivery.zip", json!(2639809));

    assert_rejected(
        &message,
        Rule::SchemaMismatch,
        "invalid type: integer `2639809`, expected a string",
    );
}

#[test]
fn an_object_where_a_list_of_items_is_expected_is_rejected() {
    let message = sample_with(|order| order["items"] = order["items"][0].clone());

    assert_rejected(&message, Rule::SchemaMismatch, "expected a sequence");
}

#[test]
fn a_number_too_large_for_any_type_is_rejected_with_a_rule_of_its_own() {
    for number in ["1e400", "-1e400", &"9".repeat(400)] {
        let message = sample_replacing("\"amount\":1817", &format!("\"amount\":{number}"));

        assert_rejected(&message, Rule::NumberOutOfRange, "number out of range");
    }
}

#[test]
fn a_tiny_number_is_not_out_of_range_but_of_the_wrong_type() {
    // 1e-400 rounds to zero, a float: the shape is wrong, not the range.
    let message = sample_replacing("\"amount\":1817", "\"amount\":1e-400");

    assert_rejected(&message, Rule::SchemaMismatch, "payment.amount");
}

#[test]
fn an_integer_that_does_not_fit_in_64_bits_is_rejected() {
    // 2^64 does not fit in a u64; serde_json reads it as a float.
    let message = sample_replacing("\"amount\":1817", "\"amount\":18446744073709551616");
    assert_rejected(&message, Rule::SchemaMismatch, "expected i64");

    // 2^63 fits in a u64 but not in the i64 of the model.
    let message = sample_setting("payment.amount", json!(1u64 << 63));
    assert_rejected(&message, Rule::SchemaMismatch, "9223372036854775808");
}

#[test]
fn a_fraction_where_an_integer_is_expected_is_rejected() {
    for path in ["payment.amount", "items[0].sale", "sm_id"] {
        assert_rejected(
            &sample_setting(path, json!(17.5)),
            Rule::SchemaMismatch,
            "floating point `17.5`",
        );
    }
}

#[test]
fn a_duplicate_key_is_rejected_and_the_reason_names_it() {
    let cases = [
        (
            "\"order_uid\":",
            "\"order_uid\":\"other\",\"order_uid\":",
            "order_uid",
        ),
        ("\"amount\":", "\"amount\":1,\"amount\":", "amount"),
        ("\"chrt_id\":", "\"chrt_id\":1,\"chrt_id\":", "chrt_id"),
    ];
    for (from, to, field) in cases {
        let message = sample_replacing(from, to);

        assert_rejected(
            &message,
            Rule::SchemaMismatch,
            &format!("duplicate field `{field}`"),
        );
    }
}

#[test]
fn an_unparseable_date_is_rejected() {
    for date in [
        "26.11.2021",
        "2021-11-26",
        "2021-11-26T06:22:19",
        "2021-13-01T00:00:00Z",
        "yesterday",
        "",
    ] {
        assert_rejected(
            &sample_setting("date_created", json!(date)),
            Rule::SchemaMismatch,
            "line 1",
        );
    }
}

#[test]
fn an_array_holding_the_fields_in_order_is_rejected_like_any_other_array() {
    // serde's derived Deserialize reads a struct from a JSON array of its fields in declaration
    // order. The channel carries objects; an array is a mistake upstream.
    let sample = sample();
    let array = Value::Array(ORDER_FIELDS.iter().map(|f| sample[*f].clone()).collect());

    assert_rejected(
        &serde_json::to_vec(&array).unwrap(),
        Rule::SchemaMismatch,
        "expected a JSON object",
    );
}

#[test]
fn a_value_of_the_wrong_type_is_rejected_with_a_reason_that_names_the_field() {
    let cases = [
        (
            sample_setting("payment.amount", json!("1817")),
            "payment.amount",
        ),
        (
            sample_setting("delivery.zip", json!(2639809)),
            "delivery.zip",
        ),
        (
            sample_setting("items[0].sale", json!(17.5)),
            "items[0].sale",
        ),
        (sample_setting("sm_id", json!(1u64 << 63)), "sm_id"),
        (sample_setting("order_uid", Value::Null), "order_uid"),
        (
            sample_setting("date_created", json!("26.11.2021")),
            "date_created",
        ),
        (
            sample_replacing("\"amount\":1817", "\"amount\":18446744073709551616"),
            "payment.amount",
        ),
    ];
    for (message, field) in cases {
        assert_rejected(&message, Rule::SchemaMismatch, field);
    }
}
