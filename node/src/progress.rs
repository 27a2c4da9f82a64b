//! Progress of long work on the operator's terminal: the admission proof-of-work (of `seedfed
//! init` and of a bootstrap node's first start) shows an `indicatif` bar on stderr, and
//! `seedfed status --watch` shows bars for block sync, key generation and leaf use
//! ([`WatchBars`], from the node's `/status`; the daemon itself logs milestones instead).
//!
//! Guarantees: nothing is drawn when stderr is not a terminal (logs, tests and scripts that
//! parse output see no progress lines), nothing is ever written to stdout, and the bar is
//! cleared when the work ends or the [`PowProgress`] is dropped.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar's layout: hashes tried against the expected number (a search may run past it).
const POW_TEMPLATE: &str =
    "  {spinner} proof-of-work [{elapsed_precise}] [{bar:30}] {human_pos} of ~{human_len} expected hashes";

/// A progress bar for an admission proof-of-work of `difficulty` leading zero bits.
#[derive(Debug)]
pub struct PowProgress {
    bar: ProgressBar,
}

impl PowProgress {
    /// A bar whose length is the expected number of hashes, `2^difficulty`; hidden unless
    /// stderr is a terminal.
    pub fn new(difficulty: u8) -> Self {
        Self::with_target(difficulty, std::io::stderr().is_terminal())
    }

    fn with_target(difficulty: u8, visible: bool) -> Self {
        let expected = 1u64.checked_shl(u32::from(difficulty)).unwrap_or(u64::MAX);
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(expected), target);
        if let Ok(style) = ProgressStyle::with_template(POW_TEMPLATE) {
            bar.set_style(style.progress_chars("=> "));
        }
        PowProgress { bar }
    }

    /// Records that `hashes` nonces have been tried (the solver's progress callback).
    pub fn update(&self, hashes: u64) {
        self.bar.set_position(hashes);
    }

    /// Hashes recorded so far.
    pub fn position(&self) -> u64 {
        self.bar.position()
    }

    /// Whether the bar draws anything (stderr is a terminal).
    pub fn is_visible(&self) -> bool {
        !self.bar.is_hidden()
    }

    /// Clears the bar (the caller prints the outcome).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for PowProgress {
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}

/// Where each `status --watch` bar stands: (position, length).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchPositions {
    /// Block sync: our height against the best height a peer showed (our own when in step).
    pub sync: (u64, u64),
    /// Key generation of the newest key: sectors whose root is on the ledger, of all.
    pub sectors: (u64, u64),
    /// Sectors of the newest key this node is generating or dealing now (its own), of the
    /// sectors it owns in the assignment.
    pub dealing: (u64, u64),
    /// Leaves of the allocating key (else the newest) allocated, of all its usable ones.
    pub leaves: (u64, u64),
}

impl WatchPositions {
    /// The bars' positions for a chain status.
    pub fn of(c: &crate::chain::ChainStatus) -> Self {
        let best = c.best_seen_height.unwrap_or(c.height).max(c.height);
        let owned = c.assignment.iter().filter(|m| **m == c.member).count() as u64;
        let generating = c.agent.keygen_owned.len() as u64;
        let key = c
            .key
            .allocating
            .or(Some(c.key.index))
            .and_then(|i| c.key.keys.iter().find(|k| k.index == i));
        let leaves = key.map_or((0, 0), |k| {
            (
                k.leaves_allocated,
                k.leaves_allocated.saturating_add(k.leaves_left),
            )
        });
        WatchPositions {
            sync: (c.height, best),
            sectors: (c.key.sectors_final as u64, u64::from(c.key.sectors_total)),
            dealing: (owned.saturating_sub(generating), owned),
            leaves,
        }
    }
}

const WATCH_TEMPLATE: &str = "  {prefix:>12} [{bar:30}] {pos}/{len} {msg}";

/// The bars of `seedfed status --watch` on stderr (hidden unless stderr is a terminal).
#[derive(Debug)]
pub struct WatchBars {
    _multi: indicatif::MultiProgress,
    sync: ProgressBar,
    sectors: ProgressBar,
    dealing: ProgressBar,
    leaves: ProgressBar,
}

impl WatchBars {
    /// Four bars: sync, sectors final, our sectors dealt, leaves allocated.
    pub fn new() -> Self {
        Self::with_target(std::io::stderr().is_terminal())
    }

    fn with_target(visible: bool) -> Self {
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = indicatif::MultiProgress::with_draw_target(target);
        let style = ProgressStyle::with_template(WATCH_TEMPLATE).ok();
        let bar = |name: &'static str| {
            let b = multi.add(ProgressBar::new(0));
            if let Some(s) = &style {
                b.set_style(s.clone().progress_chars("=> "));
            }
            b.set_prefix(name);
            b
        };
        WatchBars {
            sync: bar("sync"),
            sectors: bar("key sectors"),
            dealing: bar("our dealing"),
            leaves: bar("leaves used"),
            _multi: multi,
        }
    }

    /// Whether anything is drawn.
    pub fn is_visible(&self) -> bool {
        !self.sync.is_hidden()
    }

    /// Moves the bars to `c`'s state.
    pub fn update(&self, c: &crate::chain::ChainStatus) {
        let p = WatchPositions::of(c);
        for (bar, (pos, len)) in [
            (&self.sync, p.sync),
            (&self.sectors, p.sectors),
            (&self.dealing, p.dealing),
            (&self.leaves, p.leaves),
        ] {
            bar.set_length(len);
            bar.set_position(pos);
        }
        self.sync
            .set_message(if c.syncing { "syncing" } else { "in step" });
        self.sectors.set_message(format!("key {}", c.key.index));
    }

    /// The bars' (position, length), in the order sync, sectors, dealing, leaves.
    pub fn positions(&self) -> [(u64, u64); 4] {
        [&self.sync, &self.sectors, &self.dealing, &self.leaves]
            .map(|b| (b.position(), b.length().unwrap_or(0)))
    }
}

impl Default for WatchBars {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for WatchBars {
    fn drop(&mut self) {
        for b in [&self.sync, &self.sectors, &self.dealing, &self.leaves] {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::ChainStatus;

    #[test]
    fn watch_bars_follow_the_status() {
        let mut c = ChainStatus {
            member: "me".into(),
            height: 40,
            best_seen_height: Some(100),
            syncing: true,
            assignment: vec!["me".into(), "you".into(), "me".into(), "you".into()],
            ..ChainStatus::default()
        };
        c.key.index = 1;
        c.key.sectors_total = 4;
        c.key.sectors_final = 3;
        c.agent.keygen_owned = vec![2];
        c.key.allocating = Some(0);
        c.key.keys = vec![crate::chain::KeySummary {
            index: 0,
            sectors_final: 4,
            public_key: None,
            endorsed: Some(1),
            leaves_allocated: 10,
            leaves_left: 54,
            leaves_retired: 0,
        }];
        let p = WatchPositions::of(&c);
        assert_eq!(p.sync, (40, 100));
        assert_eq!(p.sectors, (3, 4));
        assert_eq!(p.dealing, (1, 2));
        assert_eq!(p.leaves, (10, 64));
        let bars = WatchBars::with_target(false);
        assert!(!bars.is_visible());
        bars.update(&c);
        assert_eq!(bars.positions(), [(40, 100), (3, 4), (1, 2), (10, 64)]);
        // In step: sync is full; a best height below ours never shows past the end.
        c.best_seen_height = Some(30);
        assert_eq!(WatchPositions::of(&c).sync, (40, 40));
        c.best_seen_height = None;
        assert_eq!(WatchPositions::of(&c).sync, (40, 40));
    }

    #[test]
    fn hidden_bar_tracks_progress_and_draws_nothing() {
        let p = PowProgress::with_target(12, false);
        assert!(!p.is_visible());
        assert_eq!(p.bar.length(), Some(4096));
        p.update(65_536);
        assert_eq!(p.position(), 65_536);
        p.finish();
        assert!(p.bar.is_finished());
        // Difficulties past 63 bits saturate instead of overflowing.
        assert_eq!(
            PowProgress::with_target(255, false).bar.length(),
            Some(u64::MAX)
        );
    }
}
