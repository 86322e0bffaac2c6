//! What a sweep looks for, decided from what earlier sweeps saw: no I/O, so it is tested alone.
//!
//! A message not consumed is a gap only once it is old enough that the broker would have
//! delivered, or redelivered, it by now: the sweeper looks below a bound it observed `after` ago.
//! That bound is the highest sequence consumed back then (whatever lies below it and is still
//! missing, the broker skipped), or, when the consumer has made no progress at all since, the
//! broker's last sequence back then (what the broker holds and never sent). A consumer catching up
//! a backlog makes progress, so its backlog is not taken for gaps.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// What one sweep saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// The highest sequence consumed.
    pub highest: u64,
    /// The broker's last sequence, if it told.
    pub last: Option<u64>,
}

/// The observations of the sweeps of the last `after`, and the gaps refetched lately.
#[derive(Debug)]
pub struct Plan {
    after: Duration,
    seen: VecDeque<(Instant, Observation)>,
    refetched: BTreeMap<u64, Instant>,
}

impl Plan {
    pub fn new(after: Duration) -> Plan {
        Plan {
            after,
            seen: VecDeque::new(),
            refetched: BTreeMap::new(),
        }
    }

    /// Notes what the sweep at `now` saw, keeping only the observations a later bound needs.
    pub fn observe(&mut self, now: Instant, observation: Observation) {
        self.seen.push_back((now, observation));
        // Of the observations at least `after` old, the newest is the one a bound is taken from.
        while self
            .seen
            .get(1)
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) >= self.after)
        {
            self.seen.pop_front();
        }
    }

    /// The highest sequence below which, at `now`, a message not consumed is a gap; `None` until
    /// an observation is `after` old.
    pub fn bound(&self, now: Instant) -> Option<u64> {
        let (at, old) = self.seen.front()?;
        if now.saturating_duration_since(*at) < self.after {
            return None;
        }
        let stalled = self.seen.iter().all(|(_, o)| o.highest == old.highest);
        Some(match old.last {
            Some(last) if stalled => last.max(old.highest),
            _ => old.highest,
        })
    }

    /// Of `missing` (above the mark `through`), those to refetch at `now`: not refetched within
    /// the last `after`, which is the time a refetched message has to be committed. Records them.
    pub fn due(&mut self, missing: &[u64], through: u64, now: Instant) -> Vec<u64> {
        let after = self.after;
        self.refetched
            .retain(|seq, at| *seq > through && now.saturating_duration_since(*at) < after);
        let due: Vec<u64> = missing
            .iter()
            .copied()
            .filter(|seq| !self.refetched.contains_key(seq))
            .collect();
        for seq in &due {
            self.refetched.insert(*seq, now);
        }
        due
    }
}

/// `sequences` (ascending) as runs of consecutive ones: `(first, last)`.
pub fn runs(sequences: &[u64]) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for &seq in sequences {
        match runs.last_mut() {
            Some((_, last)) if seq == *last + 1 => *last = seq,
            _ => runs.push((seq, seq)),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER: Duration = Duration::from_secs(10);

    fn seen(highest: u64, last: Option<u64>) -> Observation {
        Observation { highest, last }
    }

    #[test]
    fn no_bound_until_an_observation_is_old_enough() {
        let t0 = Instant::now();
        let mut plan = Plan::new(AFTER);
        assert_eq!(plan.bound(t0), None);
        plan.observe(t0, seen(5, Some(9)));
        assert_eq!(plan.bound(t0 + AFTER / 2), None);
        assert_eq!(
            plan.bound(t0 + AFTER),
            Some(9),
            "no progress since: the broker's last"
        );
    }

    #[test]
    fn a_consumer_making_progress_is_bounded_by_what_it_had_consumed() {
        let t0 = Instant::now();
        let mut plan = Plan::new(AFTER);
        plan.observe(t0, seen(100, Some(5000)));
        plan.observe(t0 + AFTER / 2, seen(900, Some(6000)));
        assert_eq!(
            plan.bound(t0 + AFTER),
            Some(100),
            "a backlog being consumed is not a gap"
        );
    }

    #[test]
    fn the_bound_comes_from_the_newest_observation_old_enough() {
        let t0 = Instant::now();
        let mut plan = Plan::new(AFTER);
        for i in 0..10u32 {
            plan.observe(t0 + AFTER / 4 * i, seen(u64::from(i) * 10, None));
        }
        let now = t0 + AFTER / 4 * 9;
        // Observations every after/4: the newest at least `after` old is the one of i = 5.
        assert_eq!(plan.bound(now), Some(50));
        assert!(plan.seen.len() <= 6, "old observations are dropped");
    }

    #[test]
    fn without_the_brokers_last_a_stalled_consumer_is_bounded_by_what_it_consumed() {
        let t0 = Instant::now();
        let mut plan = Plan::new(AFTER);
        plan.observe(t0, seen(7, None));
        plan.observe(t0 + AFTER, seen(7, Some(20)));
        assert_eq!(plan.bound(t0 + AFTER), Some(7));
    }

    #[test]
    fn a_gap_is_refetched_again_only_after_the_wait() {
        let t0 = Instant::now();
        let mut plan = Plan::new(AFTER);
        assert_eq!(plan.due(&[3, 4, 9], 0, t0), vec![3, 4, 9]);
        assert_eq!(plan.due(&[3, 4, 9, 12], 0, t0 + AFTER / 2), vec![12]);
        assert_eq!(
            plan.due(&[4, 9, 12], 3, t0 + AFTER),
            vec![4, 9],
            "waited long enough"
        );
        plan.due(&[], 20, t0 + AFTER);
        assert!(
            plan.refetched.is_empty(),
            "gaps below the mark are forgotten"
        );
    }

    #[test]
    fn runs_group_consecutive_sequences() {
        assert_eq!(runs(&[]), vec![]);
        assert_eq!(runs(&[1, 2, 3, 7, 9, 10]), vec![(1, 3), (7, 7), (9, 10)]);
    }
}
