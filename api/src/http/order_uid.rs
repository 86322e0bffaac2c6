//! The `order_uid` of `GET /orders/{order_uid}`, documented with the rule for order ids.

use std::borrow::Cow;

use orders::validate::MAX_ORDER_UID_CHARS;
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseFromParameter, ParseResult, Type};

/// The characters of an order id, as `orders::check_order_uid` accepts them.
const PATTERN: &str = "^[A-Za-z0-9_-]+$";

/// An order id as the path gives it, not checked yet. Its schema states the rule for order ids, so
/// that a client can tell which ids may exist; the operation checks it with
/// [`orders::check_order_uid`], so that a broken one is answered `invalid_order_uid`, with the
/// reason, as everywhere else (poem-openapi's own validators would answer `invalid_parameter`).
pub struct OrderUidParam(String);

impl OrderUidParam {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Type for OrderUidParam {
    const IS_REQUIRED: bool = true;

    type RawValueType = Self;

    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            min_length: Some(1),
            max_length: Some(MAX_ORDER_UID_CHARS),
            pattern: Some(PATTERN.to_string()),
            ..MetaSchema::new("string")
        }))
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(std::iter::once(self))
    }
}

impl ParseFromParameter for OrderUidParam {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(OrderUidParam(value.to_string()))
    }
}
