//! The sample order of the task and ways to spoil it.

use orders::{Rejection, Rule, ValidOrder};
use serde_json::Value;

/// The sample order as a JSON value.
/// The top-level fields of an order, in the order the model declares them.
pub const ORDER_FIELDS: [&str; 14] = [
    "order_uid",
    "track_number",
    "entry",
    "delivery",
    "payment",
    "items",
    "locale",
    "internal_signature",
    "customer_id",
    "delivery_service",
    "shardkey",
    "sm_id",
    "date_created",
    "oof_shard",
];

pub fn sample() -> Value {
    serde_json::from_slice(testkit::sample_order()).expect("the sample is JSON")
}

/// The sample after `edit`, serialised as compact JSON.
pub fn sample_with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value = sample();
    edit(&mut value);
    serde_json::to_vec(&value).expect("a JSON value serialises")
}

/// The sample as compact JSON with the text `from` replaced by `to`, for what a `Value` cannot
/// hold (numbers out of range, duplicate keys, escapes that are not characters).
pub fn sample_replacing(from: &str, to: &str) -> Vec<u8> {
    let compact = String::from_utf8(sample_with(|_| {})).expect("compact JSON is UTF-8");
    assert!(compact.contains(from), "{from:?} is not in the sample");
    compact.replacen(from, to, 1).into_bytes()
}

/// The value at a path written like the field names in the reasons: `payment.amount`,
/// `items[0].price`.
pub fn at<'v>(order: &'v mut Value, path: &str) -> &'v mut Value {
    let pointer = format!("/{}", path.replace(['.', '['], "/").replace(']', ""));
    order
        .pointer_mut(&pointer)
        .unwrap_or_else(|| panic!("the sample has no {path}"))
}

/// The sample with the value at `path` replaced.
pub fn sample_setting(path: &str, value: Value) -> Vec<u8> {
    sample_with(|order| *at(order, path) = value)
}

pub fn accepted(message: &[u8]) -> ValidOrder {
    orders::parse_order(message).unwrap_or_else(|rejection| {
        panic!(
            "rejected {}: {rejection}",
            String::from_utf8_lossy(&message[..message.len().min(300)])
        )
    })
}

/// Asserts that `message` breaks `rule` and that the reason mentions `mentions`.
pub fn assert_rejected(message: &[u8], rule: Rule, mentions: &str) -> Rejection {
    let rejection = match orders::parse_order(message) {
        Ok(order) => panic!(
            "accepted order {:?}, expected a rejection for {}",
            order.uid(),
            rule.code()
        ),
        Err(rejection) => rejection,
    };
    assert_eq!(
        rejection.rule, rule,
        "wrong rule for {mentions:?}: {rejection}"
    );
    assert!(
        rejection.reason.contains(mentions),
        "the reason does not mention {mentions:?}: {rejection}"
    );
    rejection
}

/// The canonical document of an accepted order, as a JSON value.
pub fn document(order: &ValidOrder) -> Value {
    serde_json::from_slice(order.document()).expect("the document is JSON")
}

/// Every path to a value of the sample that satisfies `keep`, in the reasons' notation.
pub fn sample_paths(keep: fn(&Value) -> bool) -> Vec<String> {
    fn walk(value: &Value, path: String, keep: fn(&Value) -> bool, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let child_path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    walk(child, child_path, keep, out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, format!("{path}[{i}]"), keep, out);
                }
            }
            leaf if keep(leaf) => out.push(path),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&sample(), String::new(), keep, &mut out);
    out
}
