//! Every stored order id in a few bytes, for the bounded cache: an id that is not here was never
//! stored, and is answered 404 without asking the database.
//!
//! An id is kept as a 64-bit fingerprint, keyed with a random key of the process (SipHash-1-3,
//! the standard library's keyed hash), so that ids cannot be chosen from outside to collide with
//! stored ones. Most fingerprints sit in one sorted `Vec<u64>`, eight bytes each and searched by
//! bisection; the ones added since the last merge sit in a small hash set, merged into the vector
//! when they reach a sixteenth of it (at least [`MIN_MERGE`]), so that adding an id costs a hash
//! insert, and the vector is rewritten in one pass now and then instead of shifted at each
//! insert. A fingerprint that two ids share makes the set say "maybe" for an id that was never
//! stored: the database then answers, and the bounded cache remembers its "no" (see
//! [`super::bounded`]). The set never says "no" for an id it was given.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

/// The fewest added fingerprints that are merged into the vector at once.
const MIN_MERGE: usize = 1024;

/// The set of every stored id, as fingerprints.
#[derive(Default)]
pub struct IdSet {
    /// The key of the fingerprints.
    keys: RandomState,
    /// Sorted, without duplicates; none of them is in `added`.
    sorted: Vec<u64>,
    /// Fingerprints added since the last merge. They are random already: hashing them again
    /// with foldhash costs next to nothing.
    added: HashSet<u64, foldhash::fast::RandomState>,
}

impl IdSet {
    pub fn new() -> IdSet {
        IdSet::default()
    }

    fn fingerprint(&self, id: &str) -> u64 {
        self.keys.hash_one(id)
    }

    /// True if `id` was inserted; true also, very rarely, for another id with its fingerprint.
    pub fn contains(&self, id: &str) -> bool {
        let fingerprint = self.fingerprint(id);
        self.added.contains(&fingerprint) || self.sorted.binary_search(&fingerprint).is_ok()
    }

    pub fn insert(&mut self, id: &str) {
        let fingerprint = self.fingerprint(id);
        if self.sorted.binary_search(&fingerprint).is_ok() || !self.added.insert(fingerprint) {
            return;
        }
        if self.added.len() >= MIN_MERGE.max(self.sorted.len() / 16) {
            self.merge();
        }
    }

    /// How many fingerprints the set holds: the ids given, less the rare ones that share one.
    pub fn len(&self) -> usize {
        self.sorted.len() + self.added.len()
    }

    /// The memory the set holds, in bytes: the vector's capacity, and the hash set's buckets
    /// with their control bytes (hashbrown keeps at most 7 entries per 8 buckets).
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        let word = std::mem::size_of::<u64>();
        let buckets = (self.added.capacity() * 8).div_ceil(7);
        self.sorted.capacity() * word + buckets * (word + 1)
    }

    /// Moves the added fingerprints into the vector, in one pass from its end: the vector grows
    /// to the exact size (the only copy of it is the reallocation's), and every fingerprint
    /// moves at most once.
    fn merge(&mut self) {
        let mut added: Vec<u64> = self.added.drain().collect();
        added.sort_unstable();
        let old = self.sorted.len();
        self.sorted.reserve_exact(added.len());
        self.sorted.resize(old + added.len(), 0);
        let (mut from, mut to) = (old, self.sorted.len());
        while let Some(&next) = added.last() {
            to -= 1;
            if from > 0 && self.sorted[from - 1] > next {
                from -= 1;
                self.sorted[to] = self.sorted[from];
            } else {
                self.sorted[to] = next;
                added.pop();
            }
        }
    }
}

/// Ids gathered for a new [`IdSet`], fingerprinted with a key of their own, that become a set in one
/// sort: for a warm-up, which reads every id at once.
#[derive(Default)]
pub struct IdSetBuilder {
    keys: RandomState,
    fingerprints: Vec<u64>,
}

impl IdSetBuilder {
    /// Makes room for `additional` more ids at once, so that a known count does not grow the
    /// list by doubling (and leave up to half of it unused).
    pub fn reserve(&mut self, additional: usize) {
        self.fingerprints.reserve_exact(additional);
    }

    pub fn push(&mut self, id: &str) {
        self.fingerprints.push(self.keys.hash_one(id));
    }

    /// Sorts the ids gathered so far, so that [`IdSetBuilder::build`] has next to nothing left
    /// to do: a sort is most of the building, and it can be done ahead, on another task.
    pub fn sort(&mut self) {
        self.fingerprints.sort_unstable();
        self.fingerprints.dedup();
    }

    pub fn build(mut self) -> IdSet {
        // Linear when sorted already.
        self.sort();
        let mut sorted = self.fingerprints;
        sorted.shrink_to_fit();
        IdSet {
            keys: self.keys,
            sorted,
            added: HashSet::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> String {
        format!("order-{n:08}")
    }

    #[test]
    fn every_inserted_id_is_found_before_and_after_the_merges() {
        let mut set = IdSet::new();
        let count = 20 * MIN_MERGE + 7;
        for n in 0..count {
            set.insert(&id(n));
            // The latest and some older ones, whether merged or not.
            assert!(set.contains(&id(n)), "{}", id(n));
            assert!(set.contains(&id(n / 2)), "{}", id(n / 2));
        }
        assert!((0..count).all(|n| set.contains(&id(n))));
        assert_eq!(set.len(), count);
    }

    #[test]
    fn ids_that_were_never_inserted_are_not_found() {
        let mut set = IdSet::new();
        for n in 0..10_000 {
            set.insert(&id(n));
        }
        // 10 000 others against 10 000 fingerprints of 64 bits: a collision is a 1 in 10^11 event.
        assert!((10_000..20_000).all(|n| !set.contains(&id(n))));
        assert!(!set.contains(""));
    }

    #[test]
    fn a_merge_leaves_the_vector_sorted_without_duplicates_and_the_added_set_empty() {
        let mut set = IdSet::new();
        for n in 0..MIN_MERGE - 1 {
            set.insert(&id(n));
        }
        assert_eq!((set.sorted.len(), set.added.len()), (0, MIN_MERGE - 1));
        // Again: nothing new.
        for n in 0..MIN_MERGE - 1 {
            set.insert(&id(n));
        }
        set.insert(&id(MIN_MERGE));
        assert_eq!((set.sorted.len(), set.added.len()), (MIN_MERGE, 0));
        assert!(set.sorted.windows(2).all(|pair| pair[0] < pair[1]));
        // Merged ids inserted again are not added again.
        set.insert(&id(0));
        assert_eq!((set.sorted.len(), set.added.len()), (MIN_MERGE, 0));
    }

    #[test]
    fn an_id_takes_about_eight_bytes() {
        let mut set = IdSet::new();
        let count = 200_000;
        for n in 0..count {
            set.insert(&id(n));
        }
        let per_id = set.heap_bytes() as f64 / count as f64;
        assert!(per_id <= 10.0, "{per_id:.1} bytes per id");

        let mut builder = IdSetBuilder::default();
        builder.reserve(count);
        (0..count).for_each(|n| builder.push(&id(n)));
        let built = builder.build();
        assert_eq!(built.len(), count);
        assert_eq!(built.heap_bytes(), count * 8);
        assert!((0..count).all(|n| built.contains(&id(n))));
    }
}
