//! Progress of long work on the operator's terminal: the admission proof-of-work (of `seedfed
//! init` and of a bootstrap node's first start) shows an `indicatif` bar on stderr.
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

#[cfg(test)]
mod tests {
    use super::*;

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
