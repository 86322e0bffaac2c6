//! The cache's unit tests: what both modes keep (the watermark, the recent ids, the orders since a
//! `seq`), and what the bounded mode knows without a database.

use super::*;

fn page(orders: &[(i64, &str)]) -> Page {
    let mut page = Page::new();
    for (seq, uid) in orders {
        page.push(*seq, uid, &format!("{{\"order_uid\":\"{uid}\"}}"));
    }
    page
}

/// Orders `o1` to `o{last}`, each with its number as its `seq`.
fn numbered(last: i64) -> Page {
    let ids: Vec<String> = (1..=last).map(|seq| format!("o{seq}")).collect();
    let ids: Vec<(i64, &str)> = (1..=last).zip(ids.iter().map(String::as_str)).collect();
    page(&ids)
}

#[test]
fn an_applied_order_is_served_byte_for_byte_and_moves_the_watermark() {
    let cache = OrderCache::new();
    cache.apply(page(&[(3, "a"), (7, "b")]));
    assert_eq!(
        cache.get("b").unwrap(),
        Bytes::from_static(b"{\"order_uid\":\"b\"}")
    );
    assert_eq!(cache.get("c"), None);
    assert_eq!(cache.watermark(), 7);
    assert_eq!(cache.len(), 2);
}

#[test]
fn orders_at_or_below_the_watermark_are_not_applied_twice() {
    let cache = OrderCache::new();
    cache.apply(page(&[(1, "a"), (2, "b")]));
    cache.apply(page(&[(2, "b"), (3, "c")]));
    assert_eq!(cache.recent(10), ["c", "b", "a"]);
    assert_eq!(cache.watermark(), 3);
}

#[test]
fn the_recent_list_keeps_only_the_latest_ids_newest_first() {
    let cache = OrderCache::new();
    cache.apply(numbered(RECENT_CAPACITY as i64 + 5));
    let all = cache.recent(RECENT_CAPACITY);
    assert_eq!(all.len(), RECENT_CAPACITY);
    assert_eq!(all[0], format!("o{}", RECENT_CAPACITY + 5));
    assert_eq!(all[RECENT_CAPACITY - 1], "o6");
    assert_eq!(cache.recent(2), ["o105", "o104"]);
}

fn uids(since: Since) -> Vec<(i64, String)> {
    match since {
        Since::Orders(orders) => orders
            .into_iter()
            .map(|(seq, uid)| (seq, uid.into()))
            .collect(),
        Since::Forgotten => panic!("forgotten"),
    }
}

#[test]
fn the_orders_since_a_seq_are_the_ones_above_it_oldest_first_and_at_most_the_limit() {
    let cache = OrderCache::new();
    // Gaps in `seq`, as rolled-back inserts leave them.
    cache.apply(page(&[(2, "a"), (5, "b"), (9, "c"), (10, "d")]));
    assert_eq!(
        uids(cache.since(Some(5), 10)),
        [(9, "c".into()), (10, "d".into())]
    );
    assert_eq!(uids(cache.since(Some(4), 1)), [(5, "b".into())]);
    assert_eq!(uids(cache.since(Some(0), 10)).len(), 4);
    assert_eq!(uids(cache.since(Some(10), 10)), []);
    assert_eq!(uids(cache.since(Some(99), 10)), []);
    // Without a seq: the latest, oldest first.
    assert_eq!(
        uids(cache.since(None, 2)),
        [(9, "c".into()), (10, "d".into())]
    );
    assert_eq!(uids(cache.since(None, 10)).len(), 4);
    assert_eq!(uids(OrderCache::new().since(None, 10)), []);
}

#[test]
fn orders_since_a_seq_the_cache_no_longer_remembers_are_forgotten() {
    let cache = OrderCache::new();
    cache.apply(numbered(RESUMABLE as i64 + 3));
    // Orders 1 to 3 are dropped: from 3 on, every order above is still known.
    assert_eq!(cache.since(Some(2), 10), Since::Forgotten);
    assert_eq!(uids(cache.since(Some(3), 1)), [(4, "o4".into())]);
}

#[tokio::test]
async fn a_subscriber_sees_the_watermark_move_and_only_when_it_moves() {
    let cache = OrderCache::new();
    let mut watermark = cache.subscribe();
    cache.apply(page(&[(1, "a"), (4, "b")]));
    watermark.changed().await.unwrap();
    assert_eq!(*watermark.borrow_and_update(), 4);
    cache.apply(page(&[(4, "b")]));
    assert!(!watermark.has_changed().unwrap());
}

#[test]
fn documents_packed_into_shared_buffers_are_served_whole_and_apart() {
    // Enough documents to fill several buffers, and one larger than a buffer.
    let small = "x".repeat(100_000);
    let large = "y".repeat(page::BUFFER_BYTES + 1);
    let mut page = Page::new();
    for seq in 1..=100 {
        page.push(seq, &format!("o{seq}"), &format!("{seq}{small}"));
    }
    page.push(101, "large", &large);
    page.push(102, "after", "{}");
    assert_eq!(page.len(), 102);
    assert_eq!(page.last_seq(), Some(102));
    let cache = OrderCache::new();
    cache.apply(page);
    for seq in 1..=100 {
        let document = cache.get(&format!("o{seq}")).unwrap();
        assert_eq!(document, format!("{seq}{small}").as_bytes());
    }
    assert_eq!(cache.get("large").unwrap(), large.as_bytes());
    assert_eq!(cache.get("after").unwrap(), &b"{}"[..]);
}

/// A bounded cache whose database refuses connections: whatever it answers, it answered from
/// memory.
fn bounded(max_bytes: u64) -> OrderCache {
    OrderCache::bounded(max_bytes, Database::unreachable(), CacheMetrics::default())
}

#[tokio::test]
async fn a_bounded_cache_knows_every_applied_id_and_holds_what_fits() {
    let cache = bounded(64 << 10);
    assert!(cache.is_bounded());
    assert_eq!(cache.max_bytes(), Some(64 << 10));
    cache.apply(page(&[(3, "a"), (7, "b")]));
    assert_eq!(
        cache.find("b").await.unwrap().unwrap(),
        Bytes::from_static(b"{\"order_uid\":\"b\"}")
    );
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.watermark(), 7);
    assert_eq!(cache.recent(10), ["b", "a"]);
}

#[tokio::test]
async fn a_bounded_cache_answers_an_unknown_id_without_the_database() {
    let cache = bounded(64 << 10);
    cache.apply(page(&[(1, "a")]));
    assert_eq!(cache.find("never-stored").await.unwrap(), None);
    let metrics = &cache.bounded.as_ref().unwrap().metrics;
    assert_eq!(metrics.unknown_ids.get(), 1);
    assert_eq!(metrics.loads.get(), 0);
}

#[tokio::test]
async fn a_bounded_cache_that_cannot_reach_its_database_says_so_for_an_evicted_order() {
    // Room for about one document: the first is evicted by the next.
    let cache = bounded(1200);
    let mut page = Page::new();
    page.push(1, "first", &"x".repeat(800));
    page.push(2, "second", &"y".repeat(800));
    cache.apply(page);
    assert!(cache.get("first").is_none(), "evicted");
    assert!(cache.find("first").await.is_err());
    assert_eq!(cache.find("second").await.unwrap().unwrap().len(), 800);
    let metrics = &cache.bounded.as_ref().unwrap().metrics;
    assert_eq!((metrics.loads.get(), metrics.load_failures.get()), (1, 1));
}

#[tokio::test]
async fn the_ids_installed_by_a_warm_up_replace_what_the_cache_knows() {
    let cache = bounded(64 << 10);
    let mut watermark = cache.subscribe();
    let mut known = KnownIds::new();
    for seq in 1..=(RESUMABLE as i64 + 2) {
        known.push(seq * 2, &format!("o{seq}"));
    }
    assert_eq!(known.watermark(), 2 * (RESUMABLE as i64 + 2));
    cache.install(known);
    assert_eq!(cache.len(), RESUMABLE + 2);
    assert_eq!(cache.watermark(), 2 * (RESUMABLE as i64 + 2));
    assert_eq!(*watermark.borrow_and_update(), cache.watermark());
    assert_eq!(cache.recent(1), [format!("o{}", RESUMABLE + 2)]);
    // The first two were dropped from the orders remembered with their `seq`.
    assert_eq!(cache.since(Some(3), 1), Since::Forgotten);
    assert_eq!(uids(cache.since(Some(4), 1)), [(6, "o3".into())]);
    assert!(cache.knows("o1"));
    // Known but not held: the database is asked, and cannot be reached.
    assert!(cache.find("o1").await.is_err());
    cache.hold([("o1".to_string(), Bytes::from_static(b"{}"))]);
    assert_eq!(cache.find("o1").await.unwrap().unwrap(), &b"{}"[..]);
}
