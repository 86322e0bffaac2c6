//! How far the primary has committed, as the api knows it: the target a replica reading a standby
//! waits for.

use std::sync::atomic::{AtomicI64, Ordering};

/// The highest `seq` the primary has committed as far as the api knows: the highest of the
/// notifications' payloads (each commit's highest `seq`) and of `max(seq)`, read on the `LISTEN`
/// connection each time `LISTEN` is in place. Any role may send a notification, so a payload is a
/// claim: a target the reader has waited on for long is checked against the primary
/// ([`Committed::correct`]).
#[derive(Debug, Default)]
pub struct Committed(AtomicI64);

impl Committed {
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Acquire)
    }

    /// Takes `seq` in if it is higher than what is known.
    pub fn raise(&self, seq: i64) {
        self.0.fetch_max(seq, Ordering::AcqRel);
    }

    /// Replaces `claimed`, read before asking the primary, with the primary's `max(seq)` when
    /// that is lower: the claim came from a notification no commit backs. A notification that
    /// came in meanwhile has changed the value, and is kept.
    pub fn correct(&self, claimed: i64, primary: i64) {
        if primary < claimed {
            let _ = self
                .0
                .compare_exchange(claimed, primary, Ordering::AcqRel, Ordering::Acquire);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_claim_wins() {
        let committed = Committed::default();
        committed.raise(5);
        committed.raise(3);
        assert_eq!(committed.get(), 5);
    }

    #[test]
    fn a_claim_the_primary_does_not_back_is_corrected_unless_it_moved_meanwhile() {
        let committed = Committed::default();
        committed.raise(1_000_000);
        committed.correct(1_000_000, 7);
        assert_eq!(committed.get(), 7);
        committed.raise(9);
        // Asked when the claim was 7: the 9 that came since stays.
        committed.correct(7, 8);
        assert_eq!(committed.get(), 9);
        // A primary ahead of the claim changes nothing: raise() is for that.
        committed.correct(9, 12);
        assert_eq!(committed.get(), 9);
    }
}
