//! Malformed messages, one kind for each way a producer can get an order wrong. Each kind is
//! made from a valid generated order, so that its id still tells the runs apart, and names the
//! rule of the validation that must refuse it.

use orders::Rule;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};

use crate::valid::Generator;

/// One way to spoil an order.
pub struct Kind {
    pub name: &'static str,
    /// The rule that refuses it.
    pub rule: Rule,
    make: fn(&mut Base) -> Vec<u8>,
}

/// A valid order to spoil, and the random generator of its message.
struct Base {
    order: Value,
    rng: StdRng,
}

impl Base {
    fn json(&self) -> String {
        self.order.to_string()
    }

    fn edited(&mut self, edit: impl FnOnce(&mut Value, &mut StdRng)) -> Vec<u8> {
        edit(&mut self.order, &mut self.rng);
        self.json().into_bytes()
    }
}

/// Every kind, in the order `invalid` cycles through them.
pub static KINDS: &[Kind] = &[
    Kind {
        name: "empty",
        rule: Rule::EmptyMessage,
        make: |_| Vec::new(),
    },
    Kind {
        name: "white_space",
        rule: Rule::EmptyMessage,
        make: |_| b" \r\n\t ".to_vec(),
    },
    Kind {
        name: "not_json",
        rule: Rule::MalformedJson,
        make: not_json,
    },
    Kind {
        name: "truncated",
        rule: Rule::MalformedJson,
        make: truncated,
    },
    Kind {
        name: "byte_order_mark",
        rule: Rule::MalformedJson,
        make: byte_order_mark,
    },
    Kind {
        name: "lone_surrogate",
        rule: Rule::MalformedJson,
        make: lone_surrogate,
    },
    Kind {
        name: "invalid_utf8",
        rule: Rule::InvalidUtf8,
        make: invalid_utf8,
    },
    Kind {
        name: "not_an_object",
        rule: Rule::SchemaMismatch,
        make: not_an_object,
    },
    Kind {
        name: "deep_nesting",
        rule: Rule::SchemaMismatch,
        make: deep_nesting,
    },
    Kind {
        name: "missing_field",
        rule: Rule::SchemaMismatch,
        make: missing_field,
    },
    Kind {
        name: "unknown_field",
        rule: Rule::SchemaMismatch,
        make: unknown_field,
    },
    Kind {
        name: "duplicate_key",
        rule: Rule::SchemaMismatch,
        make: duplicate_key,
    },
    Kind {
        name: "string_for_number",
        rule: Rule::SchemaMismatch,
        make: string_for_number,
    },
    Kind {
        name: "number_for_string",
        rule: Rule::SchemaMismatch,
        make: number_for_string,
    },
    Kind {
        name: "integer_overflow",
        rule: Rule::SchemaMismatch,
        make: integer_overflow,
    },
    Kind {
        name: "fraction",
        rule: Rule::SchemaMismatch,
        make: fraction,
    },
    Kind {
        name: "unparseable_date",
        rule: Rule::SchemaMismatch,
        make: unparseable_date,
    },
    Kind {
        name: "bad_order_uid",
        rule: Rule::InvalidOrderUid,
        make: bad_order_uid,
    },
    Kind {
        name: "empty_field",
        rule: Rule::EmptyField,
        make: empty_field,
    },
    Kind {
        name: "nul_character",
        rule: Rule::NulCharacter,
        make: nul_character,
    },
    Kind {
        name: "control_character",
        rule: Rule::ControlCharacter,
        make: control_character,
    },
    Kind {
        name: "huge_string",
        rule: Rule::TooLong,
        make: huge_string,
    },
    Kind {
        name: "bad_currency",
        rule: Rule::InvalidFormat,
        make: bad_currency,
    },
    Kind {
        name: "bad_email",
        rule: Rule::InvalidFormat,
        make: bad_email,
    },
    Kind {
        name: "negative_amount",
        rule: Rule::Negative,
        make: negative_amount,
    },
    Kind {
        name: "sale_over_100",
        rule: Rule::OutOfRange,
        make: sale_over_100,
    },
    Kind {
        name: "date_out_of_range",
        rule: Rule::OutOfRange,
        make: date_out_of_range,
    },
    Kind {
        name: "no_items",
        rule: Rule::NoItems,
        make: no_items,
    },
    Kind {
        name: "too_many_items",
        rule: Rule::TooManyItems,
        make: too_many_items,
    },
    Kind {
        name: "amount_mismatch",
        rule: Rule::AmountMismatch,
        make: amount_mismatch,
    },
    Kind {
        name: "goods_total_mismatch",
        rule: Rule::GoodsTotalMismatch,
        make: goods_total_mismatch,
    },
    Kind {
        name: "transaction_mismatch",
        rule: Rule::TransactionMismatch,
        make: transaction_mismatch,
    },
    Kind {
        name: "track_number_mismatch",
        rule: Rule::ItemTrackNumberMismatch,
        make: track_number_mismatch,
    },
];

impl Kind {
    /// Message `index` of the run, spoilt in this kind's way.
    pub fn message(&self, generator: &Generator, index: u64) -> Vec<u8> {
        let order = serde_json::to_value(generator.order(index)).expect("an order is JSON");
        let mut base = Base {
            order,
            rng: generator.rng(index),
        };
        (self.make)(&mut base)
    }
}

/// The kind of message `index` when `invalid` cycles through them all.
pub fn cycled(index: u64) -> &'static Kind {
    &KINDS[(index % KINDS.len() as u64) as usize]
}

fn not_json(b: &mut Base) -> Vec<u8> {
    let texts = [
        "hello",
        "<order><id>1</id></order>",
        "order_uid=1&amount=5",
        "{order_uid: 'x'}",
    ];
    texts.choose(&mut b.rng).expect("texts").as_bytes().to_vec()
}

fn truncated(b: &mut Base) -> Vec<u8> {
    let json = b.json();
    let mut cut = b.rng.gen_range(1..json.len() - 1);
    // A cut inside a character would make it invalid UTF-8, which is another kind.
    while !json.is_char_boundary(cut) {
        cut -= 1;
    }
    json.as_bytes()[..cut].to_vec()
}

fn byte_order_mark(b: &mut Base) -> Vec<u8> {
    format!("\u{feff}{}", b.json()).into_bytes()
}

fn lone_surrogate(b: &mut Base) -> Vec<u8> {
    let json = b.json();
    let name = json.find("\"name\":\"").expect("a name") + "\"name\":\"".len();
    format!("{}\\ud800{}", &json[..name], &json[name..]).into_bytes()
}

fn invalid_utf8(b: &mut Base) -> Vec<u8> {
    // A byte that is never UTF-8, an overlong '/', and Latin-1.
    let bad: &[u8] = [&b"\xff"[..], b"\xc0\xaf", b"\xe9t\xe9"]
        .choose(&mut b.rng)
        .expect("bytes");
    let json = b.json();
    let at = json.find("\"city\":\"").expect("a city") + "\"city\":\"".len();
    [&json.as_bytes()[..at], bad, &json.as_bytes()[at..]].concat()
}

fn not_an_object(b: &mut Base) -> Vec<u8> {
    ["[]", "null", "42", "\"order\"", "true"]
        .choose(&mut b.rng)
        .expect("values")
        .as_bytes()
        .to_vec()
}

fn deep_nesting(_: &mut Base) -> Vec<u8> {
    format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes()
}

fn missing_field(b: &mut Base) -> Vec<u8> {
    b.edited(|order, rng| {
        let fields = order.as_object_mut().expect("an object");
        let keys: Vec<String> = fields.keys().cloned().collect();
        fields.remove(keys.choose(rng).expect("fields"));
    })
}

fn unknown_field(b: &mut Base) -> Vec<u8> {
    b.edited(|order, rng| {
        let place = ["", "/delivery", "/payment", "/items/0"]
            .choose(rng)
            .expect("places");
        order
            .pointer_mut(place)
            .and_then(Value::as_object_mut)
            .expect("an object")
            .insert("surprise".into(), json!("unexpected"));
    })
}

fn duplicate_key(b: &mut Base) -> Vec<u8> {
    format!("{{\"order_uid\":\"first\",{}", &b.json()[1..]).into_bytes()
}

fn string_for_number(b: &mut Base) -> Vec<u8> {
    b.edited(|order, _| order["payment"]["amount"] = json!(order["payment"]["amount"].to_string()))
}

fn number_for_string(b: &mut Base) -> Vec<u8> {
    b.edited(|order, rng| order["delivery"]["zip"] = json!(rng.gen_range(0..10_000_000)))
}

fn integer_overflow(b: &mut Base) -> Vec<u8> {
    b.edited(|order, _| order["items"][0]["price"] = json!(u64::MAX))
}

fn fraction(b: &mut Base) -> Vec<u8> {
    b.edited(|order, _| order["items"][0]["sale"] = json!(12.5))
}

fn unparseable_date(b: &mut Base) -> Vec<u8> {
    b.edited(|order, rng| {
        let date = ["yesterday", "26.11.2021", "2021-11-26 06:22", ""]
            .choose(rng)
            .expect("dates");
        order["date_created"] = json!(date);
    })
}

fn bad_order_uid(b: &mut Base) -> Vec<u8> {
    b.edited(|order, rng| {
        let uid = order["order_uid"].as_str().expect("an id");
        let bad = [
            format!("../{uid}"),
            format!("{uid} x"),
            format!("{uid}'--"),
            String::new(),
            "x".repeat(65),
        ];
        order["order_uid"] = json!(bad.choose(rng).expect("ids"));
    })
}

fn empty_field(b: &mut Base) -> Vec<u8> {
    b.edited(|order, rng| {
        let path = ["/delivery/city", "/track_number", "/items/0/name"]
            .choose(rng)
            .expect("paths");
        *order.pointer_mut(path).expect("a field") = json!(" ");
    })
}

fn nul_character(b: &mut Base) -> Vec<u8> {
    b.edited(|order, _| order["delivery"]["name"] = json!("Test\u{0}Testov"))
}

fn control_character(b: &mut Base) -> Vec<u8> {
    b.edited(|order, _| order["customer_id"] = json!("customer\u{7}"))
}

fn huge_string(b: &mut Base) -> Vec<u8> {
    b.edited(|order, rng| {
        order["delivery"]["address"] = json!("A".repeat(rng.gen_range(100_000..200_000)))
    })
}

fn bad_currency(b: &mut Base) -> Vec<u8> {
    b.edited(|order, rng| {
        order["payment"]["currency"] = json!(["usd", "US", "EURO", ""].choose(rng).expect("codes"))
    })
}

fn bad_email(b: &mut Base) -> Vec<u8> {
    b.edited(|order, rng| {
        let email = [
            "test",
            "test@",
            "@example.com",
            "a@b@example.com",
            "te st@example.com",
        ];
        order["delivery"]["email"] = json!(email.choose(rng).expect("emails"));
    })
}

fn negative_amount(b: &mut Base) -> Vec<u8> {
    b.edited(|order, _| {
        let amount = order["payment"]["amount"].as_i64().expect("an amount");
        order["payment"]["amount"] = json!(-amount - 1);
    })
}

fn sale_over_100(b: &mut Base) -> Vec<u8> {
    b.edited(|order, rng| order["items"][0]["sale"] = json!(rng.gen_range(101..1000)))
}

fn date_out_of_range(b: &mut Base) -> Vec<u8> {
    b.edited(|order, rng| {
        let date = [
            "1970-01-01T00:00:00Z",
            "1999-12-31T23:59:59Z",
            "3000-01-01T00:00:00Z",
        ];
        order["date_created"] = json!(date.choose(rng).expect("dates"));
    })
}

fn no_items(b: &mut Base) -> Vec<u8> {
    b.edited(|order, _| order["items"] = json!([]))
}

fn too_many_items(b: &mut Base) -> Vec<u8> {
    b.edited(|order, _| {
        let item = order["items"][0].clone();
        order["items"] = Value::Array(vec![item; orders::validate::MAX_ITEMS + 1]);
    })
}

fn amount_mismatch(b: &mut Base) -> Vec<u8> {
    b.edited(|order, rng| {
        let amount = order["payment"]["amount"].as_i64().expect("an amount");
        order["payment"]["amount"] = json!(amount + rng.gen_range(1..100));
    })
}

fn goods_total_mismatch(b: &mut Base) -> Vec<u8> {
    b.edited(|order, _| {
        let payment = &mut order["payment"];
        for field in ["goods_total", "amount"] {
            payment[field] = json!(payment[field].as_i64().expect("a number") + 1);
        }
    })
}

fn transaction_mismatch(b: &mut Base) -> Vec<u8> {
    b.edited(|order, _| order["payment"]["transaction"] = json!("another-transaction"))
}

fn track_number_mismatch(b: &mut Base) -> Vec<u8> {
    b.edited(|order, _| order["items"][0]["track_number"] = json!("WBILOTHERTRACK"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_kind_is_refused_by_the_rule_it_names() {
        let generator = Generator::new(11);
        for kind in KINDS {
            for index in 0..40 {
                let message = kind.message(&generator, index);
                match orders::parse_order(&message) {
                    Ok(_) => panic!("{} message {index} is accepted", kind.name),
                    Err(r) => assert_eq!(r.rule, kind.rule, "{}: {r}", kind.name),
                }
            }
        }
    }

    #[test]
    fn every_kind_fits_in_a_message_the_broker_accepts() {
        let generator = Generator::new(12);
        for kind in KINDS {
            for index in 0..20 {
                let len = kind.message(&generator, index).len();
                assert!(
                    len < 1_000_000,
                    "{} message {index} has {len} bytes",
                    kind.name
                );
            }
        }
    }

    #[test]
    fn cycling_visits_every_kind_and_kinds_have_distinct_names() {
        let visited: HashSet<&str> = (0..KINDS.len() as u64).map(|i| cycled(i).name).collect();

        assert_eq!(visited.len(), KINDS.len());
    }
}
