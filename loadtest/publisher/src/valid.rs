//! Valid orders in the shape of the sample, with every cross-field rule kept: the transaction is
//! the order's id, every item carries the order's track number, the goods total is the sum of the
//! items' total prices and the amount adds delivery and fee to it.

use chrono::{DateTime, TimeZone, Utc};
use orders::{Delivery, Item, Order, Payment};
use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const NAMES: &[&str] = &[
    "Test Testov",
    "Иван Петров",
    "יעל כהן",
    "فاطمة الزهراء",
    "Zoë O'Brien",
    "李小龙",
    "José Álvarez 🚀",
];
const LOGINS: &[&str] = &["test", "ivan", "yael", "fatima", "zoe", "li", "jose"];
const CITIES: &[(&str, &str)] = &[
    ("Kiryat Mozkin", "Kraiot"),
    ("Москва", "Московская область"),
    ("תל אביב", "Gush Dan"),
    ("Berlin", ""),
];
const STREETS: &[&str] = &["Ploshad Mira", "Тверская", "Herzl", "Unter den Linden"];
const PRODUCTS: &[(&str, &str)] = &[
    ("Mascaras", "Vivienne Sabo"),
    ("Lip balm", "Nivea"),
    ("Футболка", "Gloria Jeans"),
    ("Running shoes", "Asics"),
    ("Mug <with> \"quotes\"", ""),
];
const SIZES: &[&str] = &["0", "S", "M", "L", "XL", "42"];
const SALES: &[i64] = &[0, 0, 10, 25, 30, 50];
const CURRENCIES: &[&str] = &["USD", "EUR", "RUB", "ILS"];
const BANKS: &[&str] = &["alpha", "sber", "tinkoff", ""];

const YEAR_SECONDS: i64 = 365 * 24 * 3600;

/// Makes the orders of one run. Order `i` depends only on the seed and `i`, so that the threads
/// of a run can make them in any order.
#[derive(Debug, Clone)]
pub struct Generator {
    seed: u64,
    /// Shared by the ids of one run, which makes the run easy to find.
    prefix: String,
    now: DateTime<Utc>,
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        Generator::at(seed, Utc::now())
    }

    /// The generator of a run that started at `now`: the same messages, to the byte, as that
    /// run's (only the second of `now` matters), so that a check can make them again.
    pub fn at(seed: u64, now: DateTime<Utc>) -> Generator {
        let prefix = Alphanumeric
            .sample_string(&mut StdRng::seed_from_u64(seed), 11)
            .to_lowercase();
        Generator { seed, prefix, now }
    }

    /// A random generator for message `index` of the run.
    pub fn rng(&self, index: u64) -> StdRng {
        // Multiplying by an odd constant is a bijection, so every index has a seed of its own.
        StdRng::seed_from_u64(self.seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    /// The id of order `index`: distinct for every index of a run.
    pub fn uid(&self, index: u64) -> String {
        format!("{}{index:08x}", self.prefix)
    }

    // Past 60 lines: one field of the order after the other, like the struct it fills.
    pub fn order(&self, index: u64) -> Order {
        let rng = &mut self.rng(index);
        let uid = self.uid(index);
        let track_number = format!("WBIL{}", upper(rng, 10));
        let items: Vec<Item> = (0..rng.gen_range(1..=5))
            .map(|_| item(rng, &track_number))
            .collect();
        let created = rng.gen_range(3600..YEAR_SECONDS);
        let created = Utc
            .timestamp_opt(self.now.timestamp() - created, 0)
            .single()
            .expect("a time within the last year");
        let person = rng.gen_range(0..NAMES.len());
        let (city, region) = *CITIES.choose(rng).expect("cities");
        let goods_total = items.iter().map(|it| it.total_price).sum();
        let delivery_cost = rng.gen_range(0..3000);
        let custom_fee = if rng.gen_bool(0.8) {
            0
        } else {
            rng.gen_range(1..500)
        };
        Order {
            order_uid: uid.clone(),
            track_number,
            entry: "WBIL".into(),
            delivery: Delivery {
                name: NAMES[person].into(),
                phone: format!("+972{}", rng.gen_range(1_000_000..10_000_000)),
                zip: rng.gen_range(1_000_000..10_000_000).to_string(),
                city: city.into(),
                address: format!(
                    "{} {}",
                    STREETS.choose(rng).expect("streets"),
                    rng.gen_range(1..200)
                ),
                region: region.into(),
                email: format!("{}{}@example.com", LOGINS[person], rng.gen_range(1..1000)),
            },
            payment: Payment {
                transaction: uid,
                request_id: String::new(),
                currency: CURRENCIES.choose(rng).expect("currencies").to_string(),
                provider: "wbpay".into(),
                amount: goods_total + delivery_cost + custom_fee,
                payment_dt: created.timestamp() + rng.gen_range(0..600),
                bank: BANKS.choose(rng).expect("banks").to_string(),
                delivery_cost,
                goods_total,
                custom_fee,
            },
            items,
            locale: ["en", "ru"].choose(rng).expect("locales").to_string(),
            internal_signature: String::new(),
            customer_id: format!("customer{}", rng.gen_range(1..100_000)),
            delivery_service: "meest".into(),
            shardkey: rng.gen_range(0..10).to_string(),
            sm_id: rng.gen_range(1..100),
            date_created: created,
            oof_shard: rng.gen_range(1..3).to_string(),
        }
    }

    /// Order `index` as the JSON message the ingestor receives.
    pub fn message(&self, index: u64) -> Vec<u8> {
        serde_json::to_vec(&self.order(index)).expect("an order serialises")
    }
}

fn item(rng: &mut StdRng, track_number: &str) -> Item {
    let (name, brand) = *PRODUCTS.choose(rng).expect("products");
    let price = rng.gen_range(100..20_000);
    let sale = *SALES.choose(rng).expect("sales");
    Item {
        chrt_id: rng.gen_range(1_000_000..10_000_000),
        track_number: track_number.into(),
        price,
        rid: Alphanumeric.sample_string(rng, 21).to_lowercase(),
        name: name.into(),
        sale,
        size: SIZES.choose(rng).expect("sizes").to_string(),
        total_price: price * (100 - sale) / 100,
        nm_id: rng.gen_range(1_000_000..10_000_000),
        brand: brand.into(),
        status: 202,
    }
}

fn upper(rng: &mut StdRng, len: usize) -> String {
    (0..len)
        .map(|_| rng.gen_range(b'A'..=b'Z') as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_generated_order_passes_validation() {
        let generator = Generator::new(7);
        for index in 0..2000 {
            let message = generator.message(index);
            let valid = orders::parse_order(&message)
                .unwrap_or_else(|r| panic!("order {index} is rejected: {r}"));
            assert_eq!(valid.uid(), generator.uid(index));
        }
    }

    #[test]
    fn the_orders_of_a_run_have_distinct_ids() {
        let generator = Generator::new(1);
        let ids: HashSet<String> = (0..10_000).map(|i| generator.order(i).order_uid).collect();

        assert_eq!(ids.len(), 10_000);
    }

    #[test]
    fn the_same_seed_gives_the_same_orders_and_another_seed_other_ids() {
        let (a, b, c) = (Generator::new(3), Generator::new(3), Generator::new(4));

        assert_eq!(a.order(42), b.order(42));
        assert_ne!(a.uid(42), c.uid(42));
    }

    #[test]
    fn orders_have_one_to_five_items_and_ids_of_nineteen_characters() {
        let generator = Generator::new(5);
        let counts: HashSet<usize> = (0..500).map(|i| generator.order(i).items.len()).collect();

        assert_eq!(counts, (1..=5).collect());
        assert_eq!(generator.uid(0).len(), 19);
    }
}
