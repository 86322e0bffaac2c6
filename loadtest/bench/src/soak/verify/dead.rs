//! Every acknowledged hostile message dead-lettered, and none twice.
//!
//! "Once" on NATS Streaming: a publish whose ack was lost is sent again, and the channel then holds
//! the message twice, under two sequences; the ingestor rightly dead-letters both. So the checks
//! are: every acknowledged hostile message has at least one dead letter with its bytes; no
//! broker message (channel and sequence) has two dead letters; and every dead letter holds the
//! bytes of an acknowledged hostile message (no valid order, nothing foreign). Dead letters beyond
//! one per acknowledged message are counted as the broker's second copies.
//!
//! The acked log names each hostile message by its index and kind; its bytes are made again with
//! the publisher's generator, from the seed and the second the publisher started, which is found
//! from a stored order (the orders' times are relative to it).

use std::collections::HashMap;

use anyhow::Context;
use chrono::DateTime;
use publisher::invalid::KINDS;
use publisher::valid::Generator;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::{Acked, Check};
use crate::soak::files::fnv1a;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct DeadFigures {
    /// Hostile messages the broker acknowledged.
    pub acked: u64,
    pub dead_letters: u64,
    /// Acknowledged, with no dead letter of their bytes.
    pub missing: u64,
    /// Dead letters beyond one per acknowledged message: second copies in the channel.
    pub copies: u64,
    /// Broker messages (channel, sequence) with more than one dead letter.
    pub twice: u64,
    /// Dead letters whose bytes are no acknowledged hostile message's.
    pub foreign: u64,
}

const PAGE: i64 = 1000;

pub async fn check(
    pool: &PgPool,
    acked: &Acked,
    seed: u64,
    checks: &mut Vec<Check>,
) -> anyhow::Result<DeadFigures> {
    let generator = publisher_generator(pool, acked, seed).await?;
    let expected = expected(acked, &generator)?;
    let (found, per_message) = found(pool).await?;
    let figures = DeadFigures {
        acked: acked.hostile.len() as u64,
        dead_letters: found.values().sum(),
        missing: expected
            .iter()
            .map(|(h, n)| n.saturating_sub(found.get(h).copied().unwrap_or(0)))
            .sum(),
        copies: found
            .iter()
            .map(|(h, n)| n.saturating_sub(expected.get(h).copied().unwrap_or(*n)))
            .sum(),
        twice: per_message.values().filter(|&&n| n > 1).count() as u64,
        foreign: found
            .iter()
            .filter(|(h, _)| !expected.contains_key(h))
            .map(|(_, n)| n)
            .sum(),
    };
    checks.push(Check::new(
        "every acknowledged hostile message dead-lettered",
        figures.missing == 0 && figures.foreign == 0,
        format!(
            "{} acknowledged, {} dead letters: {} missing, {} holding no acknowledged hostile \
             message, {} second copies of a message the broker held twice",
            figures.acked, figures.dead_letters, figures.missing, figures.foreign, figures.copies
        ),
    ));
    checks.push(Check::new(
        "no broker message dead-lettered twice",
        figures.twice == 0,
        format!(
            "{} broker messages dead-lettered, {} of them more than once",
            per_message.len(),
            figures.twice
        ),
    ));
    Ok(figures)
}

/// The acknowledged hostile messages, made again: how many of each payload (by hash).
fn expected(acked: &Acked, generator: &Generator) -> anyhow::Result<HashMap<u64, u64>> {
    let mut expected: HashMap<u64, u64> = HashMap::new();
    for (index, kind) in &acked.hostile {
        let kind = KINDS
            .iter()
            .find(|k| k.name == kind)
            .with_context(|| format!("no malformed message of kind {kind}"))?;
        *expected
            .entry(fnv1a(&kind.message(generator, *index)))
            .or_default() += 1;
    }
    Ok(expected)
}

/// The dead letters: how many of each payload (by hash), and of each broker message.
async fn found(pool: &PgPool) -> anyhow::Result<(HashMap<u64, u64>, HashMap<(String, i64), u64>)> {
    let mut found: HashMap<u64, u64> = HashMap::new();
    let mut per_message: HashMap<(String, i64), u64> = HashMap::new();
    let mut after = 0i64;
    loop {
        let page: Vec<(i64, String, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT id, channel, stan_sequence, payload FROM dead_letters
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(PAGE)
        .fetch_all(pool)
        .await?;
        let Some(last) = page.last() else {
            return Ok((found, per_message));
        };
        after = last.0;
        for (_, channel, sequence, payload) in page {
            *found.entry(fnv1a(&payload)).or_default() += 1;
            *per_message.entry((channel, sequence)).or_default() += 1;
        }
    }
}

/// The publisher's generator: its seed, and the second it started, found from the first stored
/// acknowledged order, whose time is that second less an offset the seed decides.
async fn publisher_generator(pool: &PgPool, acked: &Acked, seed: u64) -> anyhow::Result<Generator> {
    let Some(uid) = acked.valid.first() else {
        // No valid order: no hostile message's bytes depend on the time either.
        return Ok(Generator::new(seed));
    };
    let document: String =
        sqlx::query_scalar("SELECT document::text FROM orders WHERE order_uid = $1")
            .bind(uid)
            .fetch_optional(pool)
            .await?
            .with_context(|| format!("the first acknowledged order, {uid}, is not stored"))?;
    generator_of(seed, &serde_json::from_str(&document)?)
}

/// The generator with `seed` that made `order`.
fn generator_of(seed: u64, order: &orders::Order) -> anyhow::Result<Generator> {
    let uid = &order.order_uid;
    // The generator's ids: 11 characters of the run, then the index in hexadecimal.
    let index = u64::from_str_radix(uid.get(11..).unwrap_or_default(), 16)
        .with_context(|| format!("{uid} is not an id of the publisher's generator"))?;
    let epoch = DateTime::from_timestamp(2_000_000_000, 0).expect("a time");
    let offset = order.date_created - Generator::at(seed, epoch).order(index).date_created;
    let generator = Generator::at(seed, epoch + offset);
    anyhow::ensure!(
        generator.order(index) == *order,
        "order {uid} is not the publisher's with seed {seed}: is the seed right?"
    );
    Ok(generator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_found_from_a_stored_order_makes_the_runs_hostile_messages_again() {
        let run = Generator::new(99);
        let found = generator_of(99, &run.order(17)).unwrap();
        for kind in KINDS {
            assert_eq!(
                kind.message(&found, 5),
                kind.message(&run, 5),
                "{}",
                kind.name
            );
        }
        assert!(generator_of(98, &run.order(17)).is_err());
    }
}
