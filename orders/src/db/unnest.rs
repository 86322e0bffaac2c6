//! The statements the write path used before `COPY`, kept for the benchmark that measures both
//! (`bench insert-ceiling`): the columns of `orders`, `deliveries`, `payments` and `items` as named
//! structs (one vector per column, bound as one array each), and the two `INSERT … SELECT FROM
//! UNNEST(…)` statements that insert them. Only the `bench` feature compiles this file.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::PgConnection;

use super::write::{seq_of, Envelope};
use super::NOTIFY_CHANNEL;
use crate::validate::ValidOrder;

/// The columns of `orders` for a batch, in the statement's order.
#[derive(Default)]
struct OrderColumns<'a> {
    order_uid: Vec<&'a str>,
    track_number: Vec<&'a str>,
    entry: Vec<&'a str>,
    locale: Vec<&'a str>,
    internal_signature: Vec<&'a str>,
    customer_id: Vec<&'a str>,
    delivery_service: Vec<&'a str>,
    shardkey: Vec<&'a str>,
    sm_id: Vec<i64>,
    date_created: Vec<DateTime<Utc>>,
    oof_shard: Vec<&'a str>,
    document: Vec<&'a str>,
    channel: Vec<&'a str>,
    stan_sequence: Vec<i64>,
    published_at: Vec<DateTime<Utc>>,
}

impl<'a> OrderColumns<'a> {
    fn of(orders: &[(&'a Envelope, &'a ValidOrder)]) -> Self {
        let mut c = Self::default();
        for (envelope, valid) in orders {
            let o = valid.order();
            c.order_uid.push(&o.order_uid);
            c.track_number.push(&o.track_number);
            c.entry.push(&o.entry);
            c.locale.push(&o.locale);
            c.internal_signature.push(&o.internal_signature);
            c.customer_id.push(&o.customer_id);
            c.delivery_service.push(&o.delivery_service);
            c.shardkey.push(&o.shardkey);
            c.sm_id.push(o.sm_id);
            c.date_created.push(o.date_created);
            c.oof_shard.push(&o.oof_shard);
            c.document
                .push(std::str::from_utf8(valid.document()).expect("documents are UTF-8"));
            c.channel.push(&envelope.channel);
            c.stan_sequence.push(seq_of(envelope));
            c.published_at.push(envelope.published_at);
        }
        c
    }
}

/// The columns of `deliveries` for a batch, but the order id (that of [`PartColumns`]).
#[derive(Default)]
struct DeliveryColumns<'a> {
    name: Vec<&'a str>,
    phone: Vec<&'a str>,
    zip: Vec<&'a str>,
    city: Vec<&'a str>,
    address: Vec<&'a str>,
    region: Vec<&'a str>,
    email: Vec<&'a str>,
}

/// The columns of `payments` for a batch, but the order id (that of [`PartColumns`]).
#[derive(Default)]
struct PaymentColumns<'a> {
    transaction: Vec<&'a str>,
    request_id: Vec<&'a str>,
    currency: Vec<&'a str>,
    provider: Vec<&'a str>,
    amount: Vec<i64>,
    payment_dt: Vec<DateTime<Utc>>,
    bank: Vec<&'a str>,
    delivery_cost: Vec<i64>,
    goods_total: Vec<i64>,
    custom_fee: Vec<i64>,
}

/// The columns of `items` for a batch: one row per item, so its own order ids.
#[derive(Default)]
struct ItemColumns<'a> {
    order_uid: Vec<&'a str>,
    position: Vec<i32>,
    chrt_id: Vec<i64>,
    track_number: Vec<&'a str>,
    price: Vec<i64>,
    rid: Vec<&'a str>,
    name: Vec<&'a str>,
    sale: Vec<i64>,
    size: Vec<&'a str>,
    total_price: Vec<i64>,
    nm_id: Vec<i64>,
    brand: Vec<&'a str>,
    status: Vec<i64>,
}

/// The delivery, payment and items of a batch of orders.
#[derive(Default)]
struct PartColumns<'a> {
    /// One per order: the order id of its delivery and of its payment.
    order_uid: Vec<&'a str>,
    delivery: DeliveryColumns<'a>,
    payment: PaymentColumns<'a>,
    items: ItemColumns<'a>,
}

impl<'a> PartColumns<'a> {
    fn of(orders: &[&'a ValidOrder]) -> Self {
        let mut c = Self::default();
        for valid in orders {
            let o = valid.order();
            c.order_uid.push(valid.uid());
            c.delivery.push(&o.delivery);
            c.payment.push(&o.payment);
            for (position, item) in o.items.iter().enumerate() {
                let position = i32::try_from(position).expect("items are bounded");
                c.items.push(valid.uid(), position, item);
            }
        }
        c
    }
}

impl<'a> DeliveryColumns<'a> {
    fn push(&mut self, d: &'a crate::Delivery) {
        self.name.push(&d.name);
        self.phone.push(&d.phone);
        self.zip.push(&d.zip);
        self.city.push(&d.city);
        self.address.push(&d.address);
        self.region.push(&d.region);
        self.email.push(&d.email);
    }
}

impl<'a> PaymentColumns<'a> {
    fn push(&mut self, p: &'a crate::Payment) {
        self.transaction.push(&p.transaction);
        self.request_id.push(&p.request_id);
        self.currency.push(&p.currency);
        self.provider.push(&p.provider);
        self.amount.push(p.amount);
        self.payment_dt.push(
            Utc.timestamp_opt(p.payment_dt, 0)
                .single()
                .expect("validated as a time"),
        );
        self.bank.push(&p.bank);
        self.delivery_cost.push(p.delivery_cost);
        self.goods_total.push(p.goods_total);
        self.custom_fee.push(p.custom_fee);
    }
}

impl<'a> ItemColumns<'a> {
    fn push(&mut self, order_uid: &'a str, position: i32, it: &'a crate::Item) {
        self.order_uid.push(order_uid);
        self.position.push(position);
        self.chrt_id.push(it.chrt_id);
        self.track_number.push(&it.track_number);
        self.price.push(it.price);
        self.rid.push(&it.rid);
        self.name.push(&it.name);
        self.sale.push(it.sale);
        self.size.push(&it.size);
        self.total_price.push(it.total_price);
        self.nm_id.push(it.nm_id);
        self.brand.push(&it.brand);
        self.status.push(it.status);
    }
}

/// Inserts the orders that are not stored yet; returns the id and `seq` of each one inserted.
pub async fn insert_orders(
    tx: &mut PgConnection,
    orders: &[(&Envelope, &ValidOrder)],
) -> sqlx::Result<HashMap<String, i64>> {
    let c = OrderColumns::of(orders);
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "INSERT INTO orders (order_uid, track_number, entry, locale, internal_signature, customer_id,
                             delivery_service, shardkey, sm_id, date_created, oof_shard, document,
                             channel, stan_sequence, published_at)
         SELECT u.order_uid, u.track_number, u.entry, u.locale, u.internal_signature, u.customer_id,
                u.delivery_service, u.shardkey, u.sm_id, u.date_created, u.oof_shard, u.document::json,
                u.channel, u.stan_sequence, u.published_at
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::int8[], $10::timestamptz[], $11::text[], $12::text[],
                     $13::text[], $14::int8[], $15::timestamptz[])
              AS u(order_uid, track_number, entry, locale, internal_signature, customer_id,
                   delivery_service, shardkey, sm_id, date_created, oof_shard, document,
                   channel, stan_sequence, published_at)
         ON CONFLICT (order_uid) DO NOTHING
         RETURNING order_uid, seq",
    )
    .bind(c.order_uid)
    .bind(c.track_number)
    .bind(c.entry)
    .bind(c.locale)
    .bind(c.internal_signature)
    .bind(c.customer_id)
    .bind(c.delivery_service)
    .bind(c.shardkey)
    .bind(c.sm_id)
    .bind(c.date_created)
    .bind(c.oof_shard)
    .bind(c.document)
    .bind(c.channel)
    .bind(c.stan_sequence)
    .bind(c.published_at)
    .fetch_all(tx)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Inserts the delivery, payment and items of freshly inserted orders, and sends the `NOTIFY` of
/// the highest `seq` stored if there is one: one statement, one round trip.
// Past 60 lines: one statement of 33 parameters, whose SQL and binds read best side by side; the
// columns are built by `PartColumns::of`.
pub async fn insert_parts(
    tx: &mut PgConnection,
    orders: &[&ValidOrder],
    notify_seq: Option<i64>,
) -> sqlx::Result<()> {
    if orders.is_empty() {
        return Ok(());
    }
    let PartColumns {
        order_uid,
        delivery: d,
        payment: p,
        items: it,
    } = PartColumns::of(orders);
    // Data-modifying WITH clauses always run, each exactly once, whether the main query reads
    // them or not.
    sqlx::query(
        "WITH delivered AS (
             INSERT INTO deliveries (order_uid, name, phone, zip, city, address, region, email)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                  $6::text[], $7::text[], $8::text[])
         ), paid AS (
             INSERT INTO payments (order_uid, transaction, request_id, currency, provider, amount,
                                   payment_dt, bank, delivery_cost, goods_total, custom_fee)
             SELECT * FROM UNNEST($1::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                                  $13::int8[], $14::timestamptz[], $15::text[], $16::int8[],
                                  $17::int8[], $18::int8[])
         ), listed AS (
             INSERT INTO items (order_uid, position, chrt_id, track_number, price, rid, name, sale,
                                size, total_price, nm_id, brand, status)
             SELECT * FROM UNNEST($19::text[], $20::int4[], $21::int8[], $22::text[], $23::int8[],
                                  $24::text[], $25::text[], $26::int8[]::int2[], $27::text[],
                                  $28::int8[], $29::int8[], $30::text[], $31::int8[])
         )
         SELECT pg_notify($32, $33) WHERE $33::text IS NOT NULL",
    )
    .bind(order_uid)
    .bind(d.name)
    .bind(d.phone)
    .bind(d.zip)
    .bind(d.city)
    .bind(d.address)
    .bind(d.region)
    .bind(d.email)
    .bind(p.transaction)
    .bind(p.request_id)
    .bind(p.currency)
    .bind(p.provider)
    .bind(p.amount)
    .bind(p.payment_dt)
    .bind(p.bank)
    .bind(p.delivery_cost)
    .bind(p.goods_total)
    .bind(p.custom_fee)
    .bind(it.order_uid)
    .bind(it.position)
    .bind(it.chrt_id)
    .bind(it.track_number)
    .bind(it.price)
    .bind(it.rid)
    .bind(it.name)
    .bind(it.sale)
    .bind(it.size)
    .bind(it.total_price)
    .bind(it.nm_id)
    .bind(it.brand)
    .bind(it.status)
    .bind(NOTIFY_CHANNEL)
    .bind(notify_seq.map(|seq| seq.to_string()))
    .execute(&mut *tx)
    .await?;
    Ok(())
}
