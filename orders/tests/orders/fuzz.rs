//! Fuzzing `parse_order` with property tests: whatever it is given, it does not panic, an order it
//! accepts keeps every rule and reads back to itself, and a rejection has a reason that can be
//! stored and shown.
//!
//! Each property runs `PROPTEST_CASES` cases, 256 by default so that the normal test run stays
//! quick; the README's "Fuzzing" section has the command for a long run.

use orders::validate::{MAX_ITEMS, MAX_REASON_CHARS};
use orders::{Order, Rejection};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};

use crate::support::{sample, ORDER_FIELDS};

proptest! {
    #[test]
    fn fuzz_arbitrary_bytes_never_break_the_promises(message in prop::collection::vec(any::<u8>(), 0..2048)) {
        check(&message)?;
    }

    #[test]
    fn fuzz_the_sample_with_bytes_changed_never_breaks_the_promises(edits in prop::collection::vec(byte_edit(), 1..6)) {
        let mut message = testkit::sample_order().to_vec();
        for edit in &edits {
            edit.apply(&mut message);
        }
        check(&message)?;
    }

    #[test]
    fn fuzz_arbitrary_json_never_breaks_the_promises(value in json_value()) {
        check(&serde_json::to_vec(&value).expect("a value serialises"))?;
    }

    #[test]
    fn fuzz_the_sample_with_fields_mutated_never_breaks_the_promises(mutations in prop::collection::vec(mutation(), 1..4)) {
        let mut order = sample();
        for mutation in &mutations {
            mutation.apply(&mut order);
        }
        check(&with_escapes(&serde_json::to_string(&order).expect("a value serialises")))?;
    }
}

/// The promises of `parse_order` for one message. A panic fails the property too: proptest
/// catches it and shrinks the input.
fn check(message: &[u8]) -> Result<(), TestCaseError> {
    match orders::parse_order(message) {
        Ok(valid) => {
            keeps_every_rule(valid.order())?;
            let again = orders::parse_order(valid.document())
                .map_err(|r| TestCaseError::fail(format!("its own document is rejected: {r}")))?;
            prop_assert_eq!(again.document(), valid.document());
            prop_assert_eq!(again.order(), valid.order());
        }
        Err(rejection) => reason_can_be_stored(&rejection)?,
    }
    Ok(())
}

fn keeps_every_rule(o: &Order) -> Result<(), TestCaseError> {
    prop_assert!(orders::check_order_uid(&o.order_uid).is_ok());
    prop_assert_eq!(&o.payment.transaction, &o.order_uid);
    prop_assert!((1..=MAX_ITEMS).contains(&o.items.len()));
    for item in &o.items {
        prop_assert_eq!(&item.track_number, &o.track_number);
        prop_assert!((0..=100).contains(&item.sale));
        prop_assert!(item.price >= 0 && item.total_price >= 0);
    }
    let p = &o.payment;
    prop_assert!(p.amount >= 0 && p.delivery_cost >= 0 && p.custom_fee >= 0);
    let goods_total = o
        .items
        .iter()
        .try_fold(0i64, |sum, it| sum.checked_add(it.total_price));
    prop_assert_eq!(goods_total, Some(p.goods_total));
    let amount = p
        .goods_total
        .checked_add(p.delivery_cost)
        .and_then(|s| s.checked_add(p.custom_fee));
    prop_assert_eq!(amount, Some(p.amount));
    let document = serde_json::to_value(o).expect("an order serialises");
    prop_assert!(!has_nul(&document), "a NUL character was accepted");
    Ok(())
}

fn reason_can_be_stored(rejection: &Rejection) -> Result<(), TestCaseError> {
    let reason = &rejection.reason;
    prop_assert!(!reason.trim().is_empty(), "an empty reason");
    prop_assert!(
        reason.chars().count() <= MAX_REASON_CHARS + 1,
        "a reason of {} characters",
        reason.chars().count()
    );
    prop_assert!(!reason.contains('\0'), "a NUL in the reason: {:?}", reason);
    Ok(())
}

fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(values) => values.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// Field names of the order's parts, so that random objects sometimes have the right keys (with
/// [`ORDER_FIELDS`]).
const PART_FIELDS: &[&str] = &[
    "name",
    "phone",
    "zip",
    "city",
    "address",
    "region",
    "email",
    "transaction",
    "request_id",
    "currency",
    "provider",
    "amount",
    "payment_dt",
    "bank",
    "delivery_cost",
    "goods_total",
    "custom_fee",
    "chrt_id",
    "price",
    "rid",
    "sale",
    "size",
    "total_price",
    "nm_id",
    "brand",
    "status",
];

/// Text that sits on the edge of some rule.
const EDGE_TEXT: &[&str] = &[
    "",
    " ",
    "\t\n",
    "\0",
    "x\0",
    "\u{7f}",
    "\u{1b}[31m",
    "\u{200b}",
    "\u{202e}",
    "\u{feff}",
    "\u{2028}",
    "é",
    "🧑‍🚀",
    "b563feb7b2b84b6test",
    "WBILMTESTTRACK",
    "USD",
    "usd",
    "test@gmail.com",
    "a@b@c",
    "+9720000000",
    "(+)",
    "<script>alert(1)</script>",
    "'\"\\",
    "2021-11-26T06:22:19Z",
    "2016-12-31T23:59:60Z",
    "2021-11-26T06:22:19.123456789123+14:00",
    "1999-12-31T23:59:59Z",
    "9999-12-31T23:59:59Z",
    "+275760-09-13T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "2021-02-30T00:00:00Z",
];

/// Numbers on the edge of some rule or type.
fn edge_number() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!(0),
        json!(-1),
        json!(1),
        json!(100),
        json!(101),
        json!(317),
        json!(1817),
        json!(946_684_799),
        json!(946_684_800),
        json!(32_503_680_000_i64),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(0.5),
        json!(-0.0),
        json!(1e300),
    ])
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::sample::select(EDGE_TEXT).prop_map(String::from),
        "[A-Za-z0-9_-]{0,70}",
        "[ -~]{0,40}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(ORDER_FIELDS.iter().chain(PART_FIELDS).copied().collect::<Vec<_>>())
            .prop_map(String::from),
        1 => any::<String>(),
    ]
}

/// Any JSON value, with a bias towards the keys, numbers and text of an order.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        edge_number(),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..16)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// One change to the sample, at a place chosen among all of its values.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(Index, Value),
    Delete(Index),
    InsertUnknown(Index, String, Value),
    Negate(Index),
    /// Puts a piece of text inside a string: a NUL, an escape that is no character (see
    /// [`with_escapes`]), anything.
    Insert(Index, Index, String),
    /// Replaces a value with a string of this many characters.
    Huge(Index, usize),
    /// Repeats the first item this many times.
    Items(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<Index>;
    prop_oneof![
        (at(), json_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        (at(), edge_number()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        (at(), text()).prop_map(|(i, t)| Mutation::Replace(i, Value::from(t))),
        at().prop_map(Mutation::Delete),
        (at(), key(), json_value()).prop_map(|(i, k, v)| Mutation::InsertUnknown(i, k, v)),
        at().prop_map(Mutation::Negate),
        (
            at(),
            at(),
            prop_oneof![text(), prop::sample::select(ESCAPES).prop_map(String::from)]
        )
            .prop_map(|(i, c, t)| Mutation::Insert(i, c, t)),
        (
            at(),
            prop_oneof![
                8 => 0..600usize,
                3 => 500..70_000usize,
                // Over the size limit: rarer, as each costs a megabyte or two of copying.
                1 => 1_000_000..1_100_000usize,
            ]
        )
            .prop_map(|(i, n)| Mutation::Huge(i, n)),
        prop_oneof![0..3usize, MAX_ITEMS - 1..MAX_ITEMS + 2].prop_map(Mutation::Items),
    ]
}

impl Mutation {
    fn apply(&self, order: &mut Value) {
        let paths = paths(order);
        let target = |i: &Index| i.get(&paths).clone();
        match self {
            Mutation::Replace(i, value) => *pointer(order, &target(i)) = value.clone(),
            Mutation::Delete(i) => {
                let path = target(i);
                if let Some((parent, last)) = path.rsplit_once('/') {
                    match pointer(order, parent) {
                        Value::Object(map) => {
                            drop(map.remove(&last.replace("~1", "/").replace("~0", "~")))
                        }
                        Value::Array(items) => drop(items.remove(last.parse().expect("an index"))),
                        _ => unreachable!("a parent is a container"),
                    }
                }
            }
            Mutation::InsertUnknown(i, key, value) => {
                if let Value::Object(map) = pointer(order, &target(i)) {
                    map.insert(key.clone(), value.clone());
                }
            }
            Mutation::Negate(i) => {
                let value = pointer(order, &target(i));
                if let Some(n) = value.as_i64() {
                    *value = n.checked_neg().map_or(json!(1u64 << 63), Value::from);
                } else if let Some(n) = value.as_u64() {
                    *value = json!(-(n as f64));
                } else if let Some(f) = value.as_f64() {
                    *value = json!(-f);
                }
            }
            Mutation::Insert(i, at, piece) => {
                if let Value::String(s) = pointer(order, &target(i)) {
                    let cut = s
                        .char_indices()
                        .map(|(b, _)| b)
                        .nth(at.index(s.chars().count() + 1))
                        .unwrap_or(s.len());
                    s.insert_str(cut, piece);
                }
            }
            Mutation::Huge(i, n) => *pointer(order, &target(i)) = json!("x".repeat(*n)),
            Mutation::Items(n) => {
                if let Some(items) = order.get_mut("items").and_then(Value::as_array_mut) {
                    let first = items.first().cloned().unwrap_or(Value::Null);
                    *items = vec![first; *n];
                }
            }
        }
    }
}

/// Escapes that a JSON string can hold but a `Value` cannot: they are put in as private-use
/// characters and written out by [`with_escapes`].
const ESCAPES: &[&str] = &["\u{e000}", "\u{e001}", "\u{e002}", "\u{e003}"];

/// The JSON text with each private-use stand-in replaced by its escape: lone surrogates, a
/// reversed pair, a valid pair.
fn with_escapes(json: &str) -> Vec<u8> {
    if !json.contains(['\u{e000}', '\u{e001}', '\u{e002}', '\u{e003}']) {
        return json.as_bytes().to_vec();
    }
    json.replace('\u{e000}', "\\ud800")
        .replace('\u{e001}', "\\udfff")
        .replace('\u{e002}', "\\udc00\\ud800")
        .replace('\u{e003}', "\\ud83e\\udd80")
        .into_bytes()
}

/// Every JSON pointer of `value`: the root, its containers and its leaves (`~` and `/` in keys
/// escaped as `~0` and `~1`).
fn paths(value: &Value) -> Vec<String> {
    fn walk(value: &Value, path: String, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let key = key.replace('~', "~0").replace('/', "~1");
                    walk(child, format!("{path}/{key}"), out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, format!("{path}/{i}"), out);
                }
            }
            _ => {}
        }
        out.push(path);
    }
    let mut out = Vec::new();
    walk(value, String::new(), &mut out);
    out
}

fn pointer<'v>(value: &'v mut Value, path: &str) -> &'v mut Value {
    value.pointer_mut(path).expect("a path of this value")
}

/// A change to the bytes of the sample.
#[derive(Debug, Clone)]
enum ByteEdit {
    Set(Index, u8),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    Truncate(Index),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    let at = any::<Index>;
    let interesting =
        prop::sample::select(b"{}[]\",:\\0-1eE.+ \x00\x7f\x80\xbf\xc0\xed\xef\xff".to_vec());
    // Mostly ASCII: a byte above 0x7f anywhere makes the message invalid UTF-8 and nothing else.
    let byte = prop_oneof![4 => 0..0x80u8, 1 => any::<u8>()];
    prop_oneof![
        (at(), interesting).prop_map(|(i, b)| ByteEdit::Set(i, b)),
        (at(), byte.clone()).prop_map(|(i, b)| ByteEdit::Set(i, b)),
        (at(), prop::collection::vec(byte, 1..8)).prop_map(|(i, b)| ByteEdit::Insert(i, b)),
        (at(), 1..32usize).prop_map(|(i, n)| ByteEdit::Remove(i, n)),
        at().prop_map(ByteEdit::Truncate),
    ]
}

impl ByteEdit {
    fn apply(&self, message: &mut Vec<u8>) {
        let len = message.len();
        let at = |i: &Index| i.index(len + 1);
        match self {
            ByteEdit::Set(i, b) => {
                if let Some(byte) = message.get_mut(at(i)) {
                    *byte = *b;
                }
            }
            ByteEdit::Insert(i, bytes) => {
                let at = at(i);
                message.splice(at..at, bytes.iter().copied());
            }
            ByteEdit::Remove(i, n) => {
                let from = at(i);
                message.drain(from..(from + n).min(len));
            }
            ByteEdit::Truncate(i) => message.truncate(at(i)),
        }
    }
}
