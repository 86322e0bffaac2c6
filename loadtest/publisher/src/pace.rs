//! A steady rate: message `i` is due `i / rate` seconds after the start, whatever happened to the
//! messages before it, so that the run does not drift as a sleep after each send would make it.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The schedule of one run, shared by its connections.
#[derive(Debug)]
pub struct Pace {
    start: Instant,
    /// Messages per second; `None`: as fast as possible.
    rate: Option<NonZeroU32>,
}

impl Pace {
    /// A schedule that starts now.
    pub fn new(rate: Option<NonZeroU32>) -> Pace {
        Pace {
            start: Instant::now(),
            rate,
        }
    }

    /// Waits until message `index` is due; false if the run was stopped meanwhile.
    pub fn wait_for(&self, index: u64, stop: &AtomicBool) -> bool {
        match self.rate {
            Some(rate) => sleep_until(self.start + due(index, rate), stop),
            None => !stop.load(Ordering::Relaxed),
        }
    }
}

/// How long after the start message `index` is due, at `rate` messages a second.
pub fn due(index: u64, rate: NonZeroU32) -> Duration {
    // Whole nanoseconds from the start, not a sum of intervals: no rounding accumulates.
    let nanos = u128::from(index) * 1_000_000_000 / u128::from(rate.get());
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Sleeps until `when`, looking at `stop` at least every tenth of a second; false if it was set.
pub fn sleep_until(when: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let left = when.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_second(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("a rate above 0")
    }

    #[test]
    fn message_i_is_due_i_over_the_rate_seconds_after_the_start() {
        let rate = per_second(1000);

        assert_eq!(due(0, rate), Duration::ZERO);
        assert_eq!(due(1, rate), Duration::from_millis(1));
        assert_eq!(due(999, rate), Duration::from_millis(999));
        assert_eq!(due(20_000, rate), Duration::from_secs(20));
    }

    #[test]
    fn an_interval_of_no_whole_nanoseconds_does_not_make_the_schedule_drift() {
        let rate = per_second(3);

        assert_eq!(due(1, rate), Duration::from_nanos(333_333_333));
        assert_eq!(due(2, rate), Duration::from_nanos(666_666_666));
        assert_eq!(due(3, rate), Duration::from_secs(1));
        assert_eq!(due(3_000_000, rate), Duration::from_secs(1_000_000));
    }

    #[test]
    fn the_schedule_is_the_same_for_every_connection_whatever_the_order_they_ask_in() {
        let rate = per_second(500);

        let asked_late: Vec<_> = [7, 3, 5].map(|i| due(i, rate)).to_vec();

        assert_eq!(
            asked_late,
            [14, 6, 10].map(Duration::from_millis).to_vec(),
            "each message has its own time, not the previous one's plus an interval"
        );
    }

    #[test]
    fn an_index_beyond_any_run_saturates_instead_of_overflowing() {
        assert_eq!(due(u64::MAX, per_second(1)), Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn a_stopped_run_does_not_wait_for_the_next_message() {
        let stop = AtomicBool::new(true);
        let pace = Pace::new(Some(per_second(1)));

        assert!(!pace.wait_for(1_000_000, &stop));
    }
}
