//! The rows a batch of fresh orders becomes, one `COPY` per table: `orders`, then the `deliveries`,
//! `payments` and `items` that reference them. Each table's column list and the function that
//! writes one of its rows sit side by side, in the same order.

use chrono::{TimeZone, Utc};
use sqlx::PgConnection;

use super::copy::{copy_in, out_of_range, CopyRows};
use super::write::{seq_of, Envelope};
use crate::validate::ValidOrder;
use crate::{Delivery, Item, Payment};

/// Every column of `orders` but `seq` and `stored_at`, which Postgres fills.
const COPY_ORDERS: &str = "COPY orders (order_uid, track_number, entry, locale, internal_signature,
    customer_id, delivery_service, shardkey, sm_id, date_created, oof_shard, document, channel,
    stan_sequence, published_at) FROM STDIN (FORMAT binary)";

fn order_row(rows: &mut CopyRows, envelope: &Envelope, valid: &ValidOrder) {
    let o = valid.order();
    rows.row(15)
        .text(&o.order_uid)
        .text(&o.track_number)
        .text(&o.entry)
        .text(&o.locale)
        .text(&o.internal_signature)
        .text(&o.customer_id)
        .text(&o.delivery_service)
        .text(&o.shardkey)
        .int8(o.sm_id)
        .timestamptz(o.date_created)
        .text(&o.oof_shard)
        .bytes(valid.document())
        .text(&envelope.channel)
        .int8(seq_of(envelope))
        .timestamptz(envelope.published_at);
}

const COPY_DELIVERIES: &str = "COPY deliveries (order_uid, name, phone, zip, city, address,
    region, email) FROM STDIN (FORMAT binary)";

fn delivery_row(rows: &mut CopyRows, order_uid: &str, d: &Delivery) {
    rows.row(8)
        .text(order_uid)
        .text(&d.name)
        .text(&d.phone)
        .text(&d.zip)
        .text(&d.city)
        .text(&d.address)
        .text(&d.region)
        .text(&d.email);
}

const COPY_PAYMENTS: &str = "COPY payments (order_uid, transaction, request_id, currency,
    provider, amount, payment_dt, bank, delivery_cost, goods_total, custom_fee)
    FROM STDIN (FORMAT binary)";

fn payment_row(rows: &mut CopyRows, order_uid: &str, p: &Payment) {
    let paid = Utc
        .timestamp_opt(p.payment_dt, 0)
        .single()
        .expect("validated as a time");
    rows.row(11)
        .text(order_uid)
        .text(&p.transaction)
        .text(&p.request_id)
        .text(&p.currency)
        .text(&p.provider)
        .int8(p.amount)
        .timestamptz(paid)
        .text(&p.bank)
        .int8(p.delivery_cost)
        .int8(p.goods_total)
        .int8(p.custom_fee);
}

const COPY_ITEMS: &str = "COPY items (order_uid, position, chrt_id, track_number, price, rid,
    name, sale, size, total_price, nm_id, brand, status) FROM STDIN (FORMAT binary)";

fn item_row(rows: &mut CopyRows, order_uid: &str, position: i32, it: &Item) -> sqlx::Result<()> {
    // A percentage, validated from 0 to 100; the column is a smallint.
    let sale = i16::try_from(it.sale).map_err(|_| out_of_range("sale", it.sale))?;
    rows.row(13)
        .text(order_uid)
        .int4(position)
        .int8(it.chrt_id)
        .text(&it.track_number)
        .int8(it.price)
        .text(&it.rid)
        .text(&it.name)
        .int2(sale)
        .text(&it.size)
        .int8(it.total_price)
        .int8(it.nm_id)
        .text(&it.brand)
        .int8(it.status);
    Ok(())
}

/// Copies orders that are not stored yet into `orders`. There is no `ON CONFLICT` for a copy: an id
/// already stored fails the whole copy, so the caller leaves out the ids it found stored.
pub async fn copy_orders(
    tx: &mut PgConnection,
    orders: &[(&Envelope, &ValidOrder)],
) -> sqlx::Result<u64> {
    // The document is most of a row.
    let bytes = orders.iter().map(|(_, o)| o.document().len() + 256).sum();
    let mut rows = CopyRows::with_capacity(bytes);
    for (envelope, valid) in orders {
        order_row(&mut rows, envelope, valid);
    }
    copy_in(tx, COPY_ORDERS, rows).await
}

/// Copies the delivery, payment and items of orders just copied by [`copy_orders`].
pub async fn copy_parts(tx: &mut PgConnection, orders: &[&ValidOrder]) -> sqlx::Result<()> {
    let mut deliveries = CopyRows::with_capacity(orders.len() * 192);
    let mut payments = CopyRows::with_capacity(orders.len() * 192);
    let mut items = CopyRows::with_capacity(orders.len() * 640);
    for valid in orders {
        let o = valid.order();
        delivery_row(&mut deliveries, valid.uid(), &o.delivery);
        payment_row(&mut payments, valid.uid(), &o.payment);
        for (position, item) in o.items.iter().enumerate() {
            let position = i32::try_from(position).expect("items are bounded");
            item_row(&mut items, valid.uid(), position, item)?;
        }
    }
    copy_in(tx, COPY_DELIVERIES, deliveries).await?;
    copy_in(tx, COPY_PAYMENTS, payments).await?;
    copy_in(tx, COPY_ITEMS, items).await?;
    Ok(())
}
