//! Commit latency as this node sees it: from the moment the node holds the proposal of the
//! round that is later decided (received it from gossip, or built it as the proposer) to the
//! moment it decides the height. That span covers the block's validation, both vote phases and
//! the WAL fsyncs on the way; it excludes the block interval (the wait before proposing).
//!
//! Only heights decided by consensus are samples: a block applied through block sync has no
//! proposal time, and [`CommitClock::forget`] removes any proposal seen for it. Memory is
//! bounded: at most [`MAX_PENDING`] proposal times (the nearest heights win) and the last
//! [`COMMIT_SAMPLES`] samples.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Samples kept (the most recent ones).
pub const COMMIT_SAMPLES: usize = 1024;
/// Proposal times kept for undecided (height, round) pairs.
pub const MAX_PENDING: usize = 256;

/// One height decided by consensus on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitSample {
    /// Height decided.
    pub height: u64,
    /// Round it was decided in.
    pub round: u32,
    /// Transactions in the block.
    pub txs: u32,
    /// Microseconds from holding the decided round's proposal to deciding.
    pub latency_us: u64,
}

/// Proposal arrival times and the ring of recent samples.
#[derive(Debug, Default)]
pub struct CommitClock {
    seen: BTreeMap<(u64, u32), Instant>,
    samples: VecDeque<CommitSample>,
}

impl CommitClock {
    /// Records that the proposal for `(height, round)` is here at `now` (the first time
    /// counts).
    pub fn proposal_seen(&mut self, height: u64, round: u32, now: Instant) {
        let key = (height, round);
        if self.seen.len() >= MAX_PENDING && !self.seen.contains_key(&key) {
            // Full: keep the nearest heights (a far-ahead flood must not hide the next one).
            match self.seen.last_key_value() {
                Some((last, _)) if key < *last => {
                    self.seen.pop_last();
                }
                _ => return,
            }
        }
        self.seen.entry(key).or_insert(now);
    }

    /// Records the decision of `height` in `round` at `now`; returns the new sample, if the
    /// round's proposal time is known. Proposal times up to `height` are dropped.
    pub fn decided(
        &mut self,
        height: u64,
        round: u32,
        txs: usize,
        now: Instant,
    ) -> Option<CommitSample> {
        let at = self.seen.get(&(height, round)).copied();
        self.forget(height);
        let sample = CommitSample {
            height,
            round,
            txs: u32::try_from(txs).unwrap_or(u32::MAX),
            latency_us: u64::try_from(now.saturating_duration_since(at?).as_micros())
                .unwrap_or(u64::MAX),
        };
        if self.samples.len() >= COMMIT_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
        Some(sample)
    }

    /// Drops proposal times for heights up to `height` (decided, or applied by block sync).
    pub fn forget(&mut self, height: u64) {
        self.seen = self.seen.split_off(&(height + 1, 0));
    }

    /// The recent samples, oldest first.
    pub fn recent(&self) -> Vec<CommitSample> {
        self.samples.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn measures_from_the_decided_rounds_proposal() {
        let t0 = Instant::now();
        let mut c = CommitClock::default();
        c.proposal_seen(5, 0, t0);
        c.proposal_seen(5, 1, t0 + Duration::from_millis(40));
        // A later copy of the same proposal does not move its time.
        c.proposal_seen(5, 1, t0 + Duration::from_millis(45));
        c.proposal_seen(6, 0, t0 + Duration::from_millis(50));
        let s = c
            .decided(5, 1, 1000, t0 + Duration::from_millis(70))
            .unwrap();
        assert_eq!(
            s,
            CommitSample {
                height: 5,
                round: 1,
                txs: 1000,
                latency_us: 30_000
            }
        );
        // Height 6's proposal survives, height 5's are gone.
        assert_eq!(c.seen.len(), 1);
        assert_eq!(c.recent(), vec![s]);
    }

    #[test]
    fn synced_heights_and_unknown_proposals_give_no_sample() {
        let t0 = Instant::now();
        let mut c = CommitClock::default();
        c.proposal_seen(3, 0, t0);
        c.forget(3); // applied through block sync
        assert_eq!(c.decided(3, 0, 0, t0 + Duration::from_millis(5)), None);
        assert_eq!(c.decided(4, 0, 0, t0), None);
        assert!(c.recent().is_empty());
    }

    #[test]
    fn memory_is_bounded() {
        let t0 = Instant::now();
        let mut c = CommitClock::default();
        for r in 0..(MAX_PENDING as u32 + 10) {
            c.proposal_seen(1_000, r, t0);
        }
        assert_eq!(c.seen.len(), MAX_PENDING);
        // Nearer heights still get in, displacing the furthest.
        c.proposal_seen(7, 0, t0);
        assert!(c.seen.contains_key(&(7, 0)));
        assert_eq!(c.seen.len(), MAX_PENDING);
        for h in 1..=(COMMIT_SAMPLES as u64 + 5) {
            c.proposal_seen(h, 0, t0);
            c.decided(h, 0, 0, t0);
        }
        let recent = c.recent();
        assert_eq!(recent.len(), COMMIT_SAMPLES);
        assert_eq!(recent[0].height, 6);
    }
}
