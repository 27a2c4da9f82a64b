//! The driver's deadlines: the consensus core's timers (scheduled, replaced and cancelled by
//! id, as its outputs ask) and the moment to build our proposal.
//!
//! Guarantees: at most one deadline per consensus timer id and one build deadline; a
//! cancelled or replaced deadline never fires; [`Timers::pop_due`] hands out due deadlines one
//! at a time, the build first, then consensus timers in id order (so an output of one can still
//! cancel the next). Pure: the caller passes the time.
//!
//! A `BTreeMap`, not `tokio_util::time::DelayQueue`: the consensus core replaces and cancels
//! timers by id, so a queue would need a second map from id to queue key beside it, for the
//! handful of deadlines a height has; the map plus one `sleep_until` is less code and no new
//! dependency.

use std::collections::BTreeMap;

use seedfed_protocol::consensus::{TimerId, TimerKind};
use tokio::time::Instant;

/// Something that happens at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Deadline {
    /// Build our proposal for this height and round.
    Build {
        /// Height.
        height: u64,
        /// Round.
        round: u32,
    },
    /// A consensus timer expires.
    Consensus(TimerId),
}

/// The pending deadlines.
#[derive(Debug, Default)]
pub struct Timers {
    at: BTreeMap<Deadline, Instant>,
}

impl Timers {
    /// Schedules consensus timer `t` at `at`, replacing an equal timer.
    pub fn schedule(&mut self, t: TimerId, at: Instant) {
        self.at.insert(Deadline::Consensus(t), at);
    }

    /// Cancels consensus timer `t`.
    pub fn cancel(&mut self, t: TimerId) {
        self.at.remove(&Deadline::Consensus(t));
    }

    /// Cancels every consensus timer (the build deadline stays).
    pub fn cancel_consensus(&mut self) {
        self.at.retain(|d, _| matches!(d, Deadline::Build { .. }));
    }

    /// Sets the moment to build our proposal for `(height, round)`, replacing any other.
    pub fn build_at(&mut self, height: u64, round: u32, at: Instant) {
        self.cancel_build();
        self.at.insert(Deadline::Build { height, round }, at);
    }

    /// Forgets the build deadline.
    pub fn cancel_build(&mut self) {
        self.at.retain(|d, _| !matches!(d, Deadline::Build { .. }));
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.at.values().min().copied()
    }

    /// Every pending deadline with the time left until it at `now` (zero once due), in
    /// deadline order.
    pub fn pending(&self, now: Instant) -> Vec<(Deadline, std::time::Duration)> {
        let mut all: Vec<_> = self
            .at
            .iter()
            .map(|(d, at)| (*d, at.saturating_duration_since(now)))
            .collect();
        all.sort_by_key(|(d, left)| (*left, *d));
        all
    }

    /// The timers to fire at once when none of `height` is pending while consensus decides
    /// it in `round` (empty otherwise): a rebroadcast (the core republishes its votes and
    /// arms the next one) and a propose timeout (a nil prevote if it still waits for a
    /// proposal; ignored past that step). The core always keeps a rebroadcast timer of its
    /// round, so a node without one waits on messages alone, and if the others wait on its
    /// votes the chain stops for good; firing a timeout early never costs safety.
    pub fn rearm(&self, height: u64, round: i64) -> Vec<TimerId> {
        let held = self
            .at
            .keys()
            .any(|d| matches!(d, Deadline::Consensus(t) if t.height == height));
        let Ok(round) = u32::try_from(round) else {
            return Vec::new();
        };
        if held {
            return Vec::new();
        }
        [TimerKind::Rebroadcast, TimerKind::Propose]
            .into_iter()
            .map(|kind| TimerId {
                height,
                round,
                kind,
            })
            .collect()
    }

    /// Removes and returns the first deadline due at `now` (the build first, then consensus
    /// timers in id order).
    pub fn pop_due(&mut self, now: Instant) -> Option<Deadline> {
        let d = self
            .at
            .iter()
            .find(|(_, at)| **at <= now)
            .map(|(d, _)| *d)?;
        self.at.remove(&d);
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t(round: u32, kind: TimerKind) -> TimerId {
        TimerId {
            height: 1,
            round,
            kind,
        }
    }

    #[test]
    fn replace_cancel_and_fire_in_order() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut timers = Timers::default();
        assert_eq!(timers.next(), None);
        timers.schedule(t(0, TimerKind::Prevote), ms(30));
        timers.schedule(t(0, TimerKind::Propose), ms(50));
        // Replacing moves the deadline.
        timers.schedule(t(0, TimerKind::Propose), ms(10));
        timers.build_at(1, 0, ms(20));
        timers.build_at(1, 1, ms(25)); // one build deadline at a time
        assert_eq!(timers.next(), Some(ms(10)));
        assert_eq!(timers.pop_due(ms(5)), None);
        assert_eq!(
            timers.pop_due(ms(40)),
            Some(Deadline::Build {
                height: 1,
                round: 1
            })
        );
        assert_eq!(
            timers.pop_due(ms(40)),
            Some(Deadline::Consensus(t(0, TimerKind::Propose)))
        );
        // A cancelled timer never fires.
        timers.cancel(t(0, TimerKind::Prevote));
        assert_eq!(timers.pop_due(ms(40)), None);
        assert_eq!(timers.next(), None);
        // Cancelling all consensus timers keeps the build deadline.
        timers.schedule(t(1, TimerKind::Precommit), ms(1));
        timers.build_at(1, 2, ms(2));
        timers.cancel_consensus();
        assert_eq!(timers.next(), Some(ms(2)));
        timers.cancel_build();
        assert_eq!(timers.next(), None);
    }

    #[test]
    fn a_height_without_a_timer_is_rearmed_and_one_with_a_timer_is_not() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let at = |height, round, kind| TimerId {
            height,
            round,
            kind,
        };
        // Nothing pending (or only an older height's timer, or our build): fire a rebroadcast
        // and a propose timeout of the current round.
        let want = vec![
            at(1, 2, TimerKind::Rebroadcast),
            at(1, 2, TimerKind::Propose),
        ];
        assert_eq!(timers.rearm(1, 2), want);
        timers.schedule(at(0, 0, TimerKind::Rebroadcast), t0);
        timers.build_at(1, 2, t0);
        assert_eq!(timers.rearm(1, 2), want);
        // Any timer of the height: nothing to do.
        timers.schedule(at(1, 0, TimerKind::Precommit), t0);
        assert!(timers.rearm(1, 2).is_empty());
        // Before the height's first round starts there is no round to fire.
        assert!(Timers::default().rearm(1, -1).is_empty());
    }

    #[test]
    fn pending_lists_every_deadline_soonest_first() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut timers = Timers::default();
        assert!(timers.pending(t0).is_empty());
        timers.schedule(t(0, TimerKind::Rebroadcast), ms(50));
        timers.schedule(t(0, TimerKind::Propose), ms(20));
        timers.build_at(1, 0, ms(5));
        assert_eq!(
            timers.pending(ms(10)),
            vec![
                (
                    Deadline::Build {
                        height: 1,
                        round: 0
                    },
                    Duration::ZERO
                ),
                (
                    Deadline::Consensus(t(0, TimerKind::Propose)),
                    Duration::from_millis(10)
                ),
                (
                    Deadline::Consensus(t(0, TimerKind::Rebroadcast)),
                    Duration::from_millis(40)
                ),
            ]
        );
    }
}
