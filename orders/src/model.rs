//! The order as it travels on the channel and as the api serves it.
//!
//! Every struct refuses unknown fields: a field we do not know is a mistake upstream that a person
//! should see in the dead-letter table, not data we silently drop.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// Unique id of the order: 1 to 64 characters of `A-Z a-z 0-9 _ -`.
    // The rule of `validate::check_order_uid`, for the schema (the api serves stored documents
    // and never parses one with it); the api's tests hold it equal to the path parameter's.
    #[cfg_attr(
        feature = "openapi",
        oai(validator(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_-]+$"))
    )]
    pub order_uid: String,
    pub track_number: String,
    pub entry: String,
    #[serde(deserialize_with = "object")]
    pub delivery: Delivery,
    #[serde(deserialize_with = "object")]
    pub payment: Payment,
    /// At least one item.
    #[serde(deserialize_with = "objects")]
    pub items: Vec<Item>,
    pub locale: String,
    pub internal_signature: String,
    pub customer_id: String,
    pub delivery_service: String,
    pub shardkey: String,
    pub sm_id: i64,
    /// RFC 3339 time stamp.
    pub date_created: DateTime<Utc>,
    pub oof_shard: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    pub name: String,
    pub phone: String,
    pub zip: String,
    pub city: String,
    pub address: String,
    pub region: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(deny_unknown_fields)]
pub struct Payment {
    /// Equal to the order's `order_uid`.
    pub transaction: String,
    pub request_id: String,
    /// ISO 4217 code, three capital letters.
    pub currency: String,
    pub provider: String,
    /// `goods_total + delivery_cost + custom_fee`, in minor units.
    pub amount: i64,
    /// Unix time in seconds.
    pub payment_dt: i64,
    pub bank: String,
    pub delivery_cost: i64,
    /// The sum of the items' `total_price`.
    pub goods_total: i64,
    pub custom_fee: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub chrt_id: i64,
    /// Equal to the order's `track_number`.
    pub track_number: String,
    pub price: i64,
    pub rid: String,
    pub name: String,
    /// Discount in percent, 0 to 100.
    pub sale: i64,
    pub size: String,
    pub total_price: i64,
    pub nm_id: i64,
    pub brand: String,
    pub status: i64,
}

/// A value that may only be written as a JSON object. serde's derived `Deserialize` also reads a
/// struct from an array of its fields in order; on the channel that is a mistake, not an order.
pub(crate) struct ObjectOnly<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visit<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(Visit(std::marker::PhantomData))
            .map(ObjectOnly)
    }
}

fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    ObjectOnly::deserialize(d).map(|o| o.0)
}

fn objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Vec::<ObjectOnly<T>>::deserialize(d).map(|v| v.into_iter().map(|o| o.0).collect())
}
