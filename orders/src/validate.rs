//! Bytes from the channel become a [`ValidOrder`] here, or a [`Rejection`] that says in words
//! why not. Nothing else in the system parses an order.

use bytes::Bytes;
use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::model::{Delivery, Item, ObjectOnly, Order, Payment};

/// The largest message we look at; the broker's own limit is 1 MiB by default.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// An order has at least one and at most this many items.
pub const MAX_ITEMS: usize = 1000;
/// The longest reason stored with a rejection.
pub const MAX_REASON_CHARS: usize = 1000;
/// The longest `order_uid`.
pub const MAX_ORDER_UID_CHARS: usize = 64;

/// An order that passed every rule, with the JSON document the api serves for it.
#[derive(Debug, Clone)]
pub struct ValidOrder {
    order: Order,
    document: Bytes,
}

impl ValidOrder {
    pub fn order(&self) -> &Order {
        &self.order
    }

    pub fn uid(&self) -> &str {
        &self.order.order_uid
    }

    /// The canonical JSON of the order: what is stored and served, byte for byte.
    pub fn document(&self) -> &Bytes {
        &self.document
    }
}

/// Which rule a message broke: a stable code an operator can group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    EmptyMessage,
    TooLarge,
    InvalidUtf8,
    MalformedJson,
    /// A number too large for any float (`1e400`, 400 digits): well-formed JSON that no
    /// field of an order could hold.
    NumberOutOfRange,
    SchemaMismatch,
    InvalidOrderUid,
    EmptyField,
    TooLong,
    NulCharacter,
    ControlCharacter,
    InvalidFormat,
    Negative,
    OutOfRange,
    NoItems,
    TooManyItems,
    AmountMismatch,
    GoodsTotalMismatch,
    TransactionMismatch,
    ItemTrackNumberMismatch,
    /// Postgres refused a value that the rules above let through.
    DatabaseRefused,
}

impl Rule {
    pub fn code(self) -> &'static str {
        match self {
            Rule::EmptyMessage => "empty_message",
            Rule::TooLarge => "too_large",
            Rule::InvalidUtf8 => "invalid_utf8",
            Rule::MalformedJson => "malformed_json",
            Rule::NumberOutOfRange => "number_out_of_range",
            Rule::SchemaMismatch => "schema_mismatch",
            Rule::InvalidOrderUid => "invalid_order_uid",
            Rule::EmptyField => "empty_field",
            Rule::TooLong => "too_long",
            Rule::NulCharacter => "nul_character",
            Rule::ControlCharacter => "control_character",
            Rule::InvalidFormat => "invalid_format",
            Rule::Negative => "negative",
            Rule::OutOfRange => "out_of_range",
            Rule::NoItems => "no_items",
            Rule::TooManyItems => "too_many_items",
            Rule::AmountMismatch => "amount_mismatch",
            Rule::GoodsTotalMismatch => "goods_total_mismatch",
            Rule::TransactionMismatch => "transaction_mismatch",
            Rule::ItemTrackNumberMismatch => "item_track_number_mismatch",
            Rule::DatabaseRefused => "database_refused",
        }
    }
}

/// Why a message is not a valid order: the rule and a sentence for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} [{}]", rule.code())]
pub struct Rejection {
    pub rule: Rule,
    pub reason: String,
}

impl Rejection {
    /// The reason is made safe to store and show: error messages can quote the message, so NUL
    /// characters are spelled out and a very long reason is cut.
    pub fn new(rule: Rule, reason: impl Into<String>) -> Self {
        let mut reason = reason.into().replace('\0', "\\u0000");
        if let Some((cut, _)) = reason.char_indices().nth(MAX_REASON_CHARS) {
            reason.truncate(cut);
            reason.push('…');
        }
        Rejection { rule, reason }
    }
}

/// Parses and validates one message.
pub fn parse_order(bytes: &[u8]) -> Result<ValidOrder, Rejection> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Rejection::new(
            Rule::EmptyMessage,
            "the message is empty or only white space",
        ));
    }
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(Rejection::new(
            Rule::TooLarge,
            format!(
                "the message has {} bytes, more than the limit of {MAX_MESSAGE_BYTES}",
                bytes.len()
            ),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Rejection::new(
            Rule::InvalidUtf8,
            format!(
                "the message is not valid UTF-8 (first bad byte at offset {})",
                e.valid_up_to()
            ),
        )
    })?;
    if text.starts_with('\u{feff}') {
        return Err(Rejection::new(
            Rule::MalformedJson,
            "the message starts with a byte order mark; JSON must not",
        ));
    }
    let mut json = serde_json::Deserializer::from_str(text);
    let order = serde_path_to_error::deserialize::<_, ObjectOnly<Order>>(&mut json)
        .map_err(|e| {
            let path = e.path().to_string();
            json_rejection(&path, e.into_inner())
        })?
        .0;
    json.end().map_err(|e| json_rejection(".", e))?;
    check_order(&order)?;
    let document = serde_json::to_vec(&order).expect("an order always serialises");
    Ok(ValidOrder {
        order,
        document: Bytes::from(document),
    })
}

/// A rejection for a JSON error, naming the field (`payment.amount`, `items[0].sale`) where the
/// error was found below the top level.
fn json_rejection(path: &str, e: serde_json::Error) -> Rejection {
    use serde_json::error::Category;
    let rule = match e.classify() {
        Category::Data => Rule::SchemaMismatch,
        // serde_json reads a number past f64 as a syntax error; its message is the only sign.
        Category::Syntax if e.to_string().starts_with("number out of range") => {
            Rule::NumberOutOfRange
        }
        Category::Syntax | Category::Eof | Category::Io => Rule::MalformedJson,
    };
    let what = match rule {
        Rule::SchemaMismatch => "the JSON does not have the shape of an order",
        Rule::NumberOutOfRange => {
            "a number in the message is beyond the range of any number an order holds (about \
             ±1.8e308)"
        }
        _ => "the message is not well-formed JSON",
    };
    if path == "." || rule != Rule::SchemaMismatch {
        Rejection::new(rule, format!("{what}: {e}"))
    } else {
        Rejection::new(rule, format!("{what}: {path}: {e}"))
    }
}

/// Checks an id given to the api or found in a message: 1 to 64 characters of `A-Z a-z 0-9 _ -`.
pub fn check_order_uid(uid: &str) -> Result<(), Rejection> {
    let fail = |why: &str| {
        Err(Rejection::new(
            Rule::InvalidOrderUid,
            format!("order_uid {why}: it must be 1 to {MAX_ORDER_UID_CHARS} characters of A-Z, a-z, 0-9, '_' and '-'"),
        ))
    };
    if uid.is_empty() {
        return fail("is empty");
    }
    if uid.len() > MAX_ORDER_UID_CHARS {
        return fail(&format!("has {} bytes", uid.len()));
    }
    if let Some(c) = uid
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return fail(&format!("contains the character {c:?}"));
    }
    Ok(())
}

fn check_order(o: &Order) -> Result<(), Rejection> {
    check_order_uid(&o.order_uid)?;
    text("track_number", &o.track_number, Text::ID)?;
    text("entry", &o.entry, Text::CODE)?;
    check_delivery(&o.delivery)?;
    check_payment(&o.payment)?;
    check_items(o)?;
    text("locale", &o.locale, Text::CODE)?;
    text("internal_signature", &o.internal_signature, Text::OPTIONAL)?;
    text("customer_id", &o.customer_id, Text::ID)?;
    text("delivery_service", &o.delivery_service, Text::CODE)?;
    text("shardkey", &o.shardkey, Text::CODE)?;
    non_negative("sm_id", o.sm_id)?;
    text("oof_shard", &o.oof_shard, Text::CODE)?;
    time_in_range("date_created", o.date_created)?;
    check_cross_fields(o)
}

fn check_delivery(d: &Delivery) -> Result<(), Rejection> {
    text("delivery.name", &d.name, Text::NAME)?;
    text("delivery.phone", &d.phone, Text::CODE)?;
    let phone_ok = d.phone.chars().any(|c| c.is_ascii_digit())
        && d.phone
            .chars()
            .all(|c| c.is_ascii_digit() || " +-()".contains(c));
    if !phone_ok {
        return Err(Rejection::new(
            Rule::InvalidFormat,
            format!(
                "delivery.phone {:?} must have digits and may hold only digits, spaces and + - ( )",
                d.phone
            ),
        ));
    }
    text("delivery.zip", &d.zip, Text::OPTIONAL_CODE)?;
    text("delivery.city", &d.city, Text::NAME)?;
    text("delivery.address", &d.address, Text::NAME)?;
    text("delivery.region", &d.region, Text::OPTIONAL)?;
    text("delivery.email", &d.email, Text::OPTIONAL)?;
    if !d.email.is_empty() {
        let mut parts = d.email.split('@');
        let ok = matches!(
            (parts.next(), parts.next(), parts.next()),
            (Some(l), Some(h), None) if !l.is_empty() && !h.is_empty() && !d.email.contains(char::is_whitespace)
        );
        if !ok {
            return Err(Rejection::new(
                Rule::InvalidFormat,
                format!("delivery.email {:?} is not an e-mail address", d.email),
            ));
        }
    }
    Ok(())
}

fn check_payment(p: &Payment) -> Result<(), Rejection> {
    text("payment.transaction", &p.transaction, Text::ID)?;
    text("payment.request_id", &p.request_id, Text::OPTIONAL)?;
    if !(p.currency.len() == 3 && p.currency.bytes().all(|b| b.is_ascii_uppercase())) {
        return Err(Rejection::new(
            Rule::InvalidFormat,
            format!(
                "payment.currency {:?} is not three capital letters (ISO 4217)",
                p.currency
            ),
        ));
    }
    text("payment.provider", &p.provider, Text::CODE)?;
    non_negative("payment.amount", p.amount)?;
    non_negative("payment.payment_dt", p.payment_dt)?;
    let paid = Utc.timestamp_opt(p.payment_dt, 0).single().ok_or_else(|| {
        Rejection::new(
            Rule::OutOfRange,
            format!("payment.payment_dt {} is not a time", p.payment_dt),
        )
    })?;
    time_in_range("payment.payment_dt", paid)?;
    text("payment.bank", &p.bank, Text::OPTIONAL_CODE)?;
    non_negative("payment.delivery_cost", p.delivery_cost)?;
    non_negative("payment.goods_total", p.goods_total)?;
    non_negative("payment.custom_fee", p.custom_fee)
}

fn check_items(o: &Order) -> Result<(), Rejection> {
    if o.items.is_empty() {
        return Err(Rejection::new(
            Rule::NoItems,
            "items is empty: an order has at least one item",
        ));
    }
    if o.items.len() > MAX_ITEMS {
        return Err(Rejection::new(
            Rule::TooManyItems,
            format!(
                "items has {} entries, more than the limit of {MAX_ITEMS}",
                o.items.len()
            ),
        ));
    }
    for (i, item) in o.items.iter().enumerate() {
        check_item(i, item)?;
    }
    Ok(())
}

fn check_item(i: usize, it: &Item) -> Result<(), Rejection> {
    let field = |name: &str| format!("items[{i}].{name}");
    non_negative(&field("chrt_id"), it.chrt_id)?;
    text(&field("track_number"), &it.track_number, Text::ID)?;
    non_negative(&field("price"), it.price)?;
    text(&field("rid"), &it.rid, Text::ID)?;
    text(&field("name"), &it.name, Text::NAME)?;
    if !(0..=100).contains(&it.sale) {
        return Err(Rejection::new(
            Rule::OutOfRange,
            format!(
                "{} is {}, not a percentage from 0 to 100",
                field("sale"),
                it.sale
            ),
        ));
    }
    text(&field("size"), &it.size, Text::CODE)?;
    non_negative(&field("total_price"), it.total_price)?;
    non_negative(&field("nm_id"), it.nm_id)?;
    text(&field("brand"), &it.brand, Text::OPTIONAL)?;
    non_negative(&field("status"), it.status)
}

// Past 60 lines: the four cross-field rules one after the other, each with its sentence.
fn check_cross_fields(o: &Order) -> Result<(), Rejection> {
    let p = &o.payment;
    if p.transaction != o.order_uid {
        return Err(Rejection::new(
            Rule::TransactionMismatch,
            format!(
                "payment.transaction {:?} differs from order_uid {:?}",
                p.transaction, o.order_uid
            ),
        ));
    }
    if let Some((i, it)) = o
        .items
        .iter()
        .enumerate()
        .find(|(_, it)| it.track_number != o.track_number)
    {
        return Err(Rejection::new(
            Rule::ItemTrackNumberMismatch,
            format!(
                "items[{i}].track_number {:?} differs from the order's track_number {:?}",
                it.track_number, o.track_number
            ),
        ));
    }
    let items_total = o
        .items
        .iter()
        .try_fold(0i64, |sum, it| sum.checked_add(it.total_price));
    if items_total != Some(p.goods_total) {
        return Err(Rejection::new(
            Rule::GoodsTotalMismatch,
            format!(
                "payment.goods_total is {} but the items' total_price add up to {}",
                p.goods_total,
                items_total.map_or_else(
                    || "more than fits in 64 bits".to_string(),
                    |t| t.to_string()
                )
            ),
        ));
    }
    let expected = p
        .goods_total
        .checked_add(p.delivery_cost)
        .and_then(|s| s.checked_add(p.custom_fee));
    if expected != Some(p.amount) {
        return Err(Rejection::new(
            Rule::AmountMismatch,
            format!(
                "payment.amount is {} but goods_total + delivery_cost + custom_fee is {}",
                p.amount,
                expected.map_or_else(
                    || "more than fits in 64 bits".to_string(),
                    |t| t.to_string()
                )
            ),
        ));
    }
    Ok(())
}

/// How a text field is checked.
#[derive(Clone, Copy)]
struct Text {
    required: bool,
    max_chars: usize,
    /// Identifiers and codes: no control characters at all. Free text may hold tabs and new lines.
    strict: bool,
}

impl Text {
    const ID: Text = Text {
        required: true,
        max_chars: 128,
        strict: true,
    };
    const CODE: Text = Text {
        required: true,
        max_chars: 64,
        strict: true,
    };
    const OPTIONAL_CODE: Text = Text {
        required: false,
        max_chars: 64,
        strict: true,
    };
    const NAME: Text = Text {
        required: true,
        max_chars: 512,
        strict: false,
    };
    const OPTIONAL: Text = Text {
        required: false,
        max_chars: 512,
        strict: false,
    };
}

fn text(field: &str, value: &str, rule: Text) -> Result<(), Rejection> {
    if value.contains('\0') {
        return Err(Rejection::new(
            Rule::NulCharacter,
            format!("{field} contains a NUL character, which cannot be stored"),
        ));
    }
    if rule.required && value.trim().is_empty() {
        return Err(Rejection::new(
            Rule::EmptyField,
            format!("{field} is empty"),
        ));
    }
    let chars = value.chars().count();
    if chars > rule.max_chars {
        return Err(Rejection::new(
            Rule::TooLong,
            format!(
                "{field} has {chars} characters, more than the limit of {}",
                rule.max_chars
            ),
        ));
    }
    let bad_control = |c: char| {
        (c.is_control() && (rule.strict || !matches!(c, '\t' | '\n' | '\r')))
            || (rule.strict && is_invisible_format(c))
    };
    if let Some(c) = value.chars().find(|c| bad_control(*c)) {
        return Err(Rejection::new(
            Rule::ControlCharacter,
            format!("{field} contains the control character {c:?}"),
        ));
    }
    Ok(())
}

/// Zero-width and bidirectional formatting characters: fine in a name, a trap in an identifier,
/// where they make two different ids look the same.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{00AD}')
}

fn non_negative(field: &str, value: i64) -> Result<(), Rejection> {
    if value < 0 {
        return Err(Rejection::new(
            Rule::Negative,
            format!("{field} is {value}; it must not be negative"),
        ));
    }
    Ok(())
}

/// Times before this are certainly mistakes.
fn earliest() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap()
}

/// A time within the range orders are accepted in, and without a leap second: chrono reads second
/// 60 (`…:59:60Z`) as one, but Postgres stores it as second 0 of the next minute, so the column
/// would disagree with the document served.
fn time_in_range(field: &str, t: DateTime<Utc>) -> Result<(), Rejection> {
    if t.timestamp_subsec_nanos() >= 1_000_000_000 {
        return Err(Rejection::new(
            Rule::InvalidFormat,
            format!(
                "{field} has second 60 (a leap second), which cannot be stored as given: use \
                 second 59 or 0 of the next minute"
            ),
        ));
    }
    // A day of slack for clocks that run ahead.
    let latest = Utc::now() + Duration::days(1);
    if t < earliest() || t > latest {
        return Err(Rejection::new(
            Rule::OutOfRange,
            format!(
                "{field} {} is not between {} and tomorrow",
                t.to_rfc3339(),
                earliest().date_naive()
            ),
        ));
    }
    Ok(())
}
