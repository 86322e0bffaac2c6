//! Rules that tie fields together: the items, the totals and the ids that must agree.

use orders::validate::MAX_ITEMS;
use orders::Rule;
use serde_json::{json, Value};

use crate::support::{accepted, assert_rejected, sample_with};

#[test]
fn an_order_without_items_is_rejected() {
    let message = sample_with(|order| order["items"] = json!([]));

    assert_rejected(&message, Rule::NoItems, "items is empty");
}

#[test]
fn an_order_with_more_items_than_the_limit_is_rejected() {
    let message = sample_with(|order| {
        let item = order["items"][0].clone();
        order["items"] = Value::Array(vec![item; MAX_ITEMS + 1]);
    });

    assert_rejected(
        &message,
        Rule::TooManyItems,
        &format!("items has {} entries", MAX_ITEMS + 1),
    );
}

#[test]
fn an_item_whose_track_number_differs_from_the_order_is_rejected_and_the_reason_names_it() {
    let message = sample_with(|order| {
        let mut second = order["items"][0].clone();
        second["track_number"] = json!("WBILMOTHERTRACK");
        order["items"].as_array_mut().unwrap().push(second);
        order["payment"]["goods_total"] = json!(634);
        order["payment"]["amount"] = json!(2134);
    });

    assert_rejected(
        &message,
        Rule::ItemTrackNumberMismatch,
        "items[1].track_number \"WBILMOTHERTRACK\"",
    );
}

#[test]
fn a_transaction_that_is_not_the_order_uid_is_rejected() {
    let message =
        sample_with(|order| order["payment"]["transaction"] = json!("b563feb7b2b84b6other"));

    assert_rejected(
        &message,
        Rule::TransactionMismatch,
        "payment.transaction \"b563feb7b2b84b6other\"",
    );
}

#[test]
fn a_goods_total_that_is_not_the_sum_of_the_items_total_prices_is_rejected() {
    let message = sample_with(|order| {
        order["payment"]["goods_total"] = json!(318);
        order["payment"]["amount"] = json!(1818);
    });

    assert_rejected(
        &message,
        Rule::GoodsTotalMismatch,
        "payment.goods_total is 318",
    );
}

#[test]
fn a_goods_total_is_compared_with_the_sum_over_all_items() {
    let two_items = |goods_total: i64| {
        sample_with(|order| {
            let mut second = order["items"][0].clone();
            second["total_price"] = json!(100);
            order["items"].as_array_mut().unwrap().push(second);
            order["payment"]["goods_total"] = json!(goods_total);
            order["payment"]["amount"] = json!(goods_total + 1500);
        })
    };

    accepted(&two_items(417));
    assert_rejected(&two_items(317), Rule::GoodsTotalMismatch, "add up to 417");
}

#[test]
fn items_whose_total_prices_add_up_to_more_than_64_bits_are_rejected_without_a_panic() {
    let message = sample_with(|order| {
        let mut item = order["items"][0].clone();
        item["total_price"] = json!(i64::MAX);
        order["items"] = json!([item.clone(), item]);
        order["payment"]["goods_total"] = json!(i64::MAX);
        order["payment"]["amount"] = json!(i64::MAX);
    });

    assert_rejected(
        &message,
        Rule::GoodsTotalMismatch,
        "more than fits in 64 bits",
    );
}

#[test]
fn an_amount_that_is_not_goods_total_plus_delivery_plus_fee_is_rejected() {
    for amount in [1816, 1818, 317, 0] {
        let message = sample_with(|order| order["payment"]["amount"] = json!(amount));

        assert_rejected(
            &message,
            Rule::AmountMismatch,
            &format!("payment.amount is {amount}"),
        );
    }
}

#[test]
fn the_custom_fee_counts_towards_the_amount() {
    let with_fee = |amount: i64| {
        sample_with(|order| {
            order["payment"]["custom_fee"] = json!(200);
            order["payment"]["amount"] = json!(amount);
        })
    };

    accepted(&with_fee(2017));
    assert_rejected(&with_fee(1817), Rule::AmountMismatch, "is 2017");
}

#[test]
fn an_amount_whose_parts_add_up_to_more_than_64_bits_is_rejected_without_a_panic() {
    let message = sample_with(|order| {
        order["payment"]["delivery_cost"] = json!(i64::MAX);
        order["payment"]["amount"] = json!(i64::MAX);
    });

    assert_rejected(&message, Rule::AmountMismatch, "more than fits in 64 bits");
}
