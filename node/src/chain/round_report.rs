//! What consensus is waiting for at the height being decided: the core's step, the votes it
//! holds and the deadlines pending, in `/status` (`consensus`) and in the warning a node logs
//! once per height when no block was decided within the liveness bound. A stalled chain then
//! says which it is: no timer left (nothing would move it: `Driver::rearm_consensus` fires
//! one, with a warning), votes missing (who was heard), or a step waiting on a proposal.

use std::time::Duration;

use seedfed_protocol::consensus::{Input, RoundView};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::warn;

use super::driver::{ChainError, Driver};
use super::timers::Deadline;

/// The consensus round as `/status` reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsensusInfo {
    /// The height Malachite's core is at (the chain's height + 1 unless something is wrong).
    pub core_height: u64,
    /// The core's step in the current round: unstarted, propose, prevote, precommit, commit.
    pub step: String,
    /// Voting power of the prevotes received in this round.
    pub prevote_power: u64,
    /// Voting power of the precommits received in this round.
    pub precommit_power: u64,
    /// Voting power of the validator set (a quorum is more than two thirds).
    pub total_power: u64,
    /// Validators heard from in this round (hex identities).
    pub voters: Vec<String>,
    /// Later heights for which messages wait.
    pub buffered_heights: usize,
    /// The deadlines pending, soonest first.
    pub timers: Vec<TimerInfo>,
}

/// A pending deadline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerInfo {
    /// `build` (our proposal), or the consensus timer: `propose`, `prevote`, `precommit`,
    /// `rebroadcast`.
    pub kind: String,
    /// Height and round it belongs to.
    pub height: u64,
    /// Round.
    pub round: u32,
    /// Time left (ms; 0 once due).
    pub due_in_ms: u64,
}

/// The `/status` view of `view` with the deadlines `pending`.
pub fn consensus_info(view: RoundView, pending: Vec<(Deadline, Duration)>) -> ConsensusInfo {
    ConsensusInfo {
        core_height: view.core_height,
        step: view.step,
        prevote_power: view.prevote_power,
        precommit_power: view.precommit_power,
        total_power: view.total_power,
        voters: view
            .voters
            .iter()
            .map(|m| hex::encode(m.as_bytes()))
            .collect(),
        buffered_heights: view.buffered_heights,
        timers: pending
            .into_iter()
            .map(|(d, left)| {
                let (kind, height, round) = match d {
                    Deadline::Build { height, round } => ("build".to_string(), height, round),
                    Deadline::Consensus(t) => {
                        (format!("{:?}", t.kind).to_lowercase(), t.height, t.round)
                    }
                };
                TimerInfo {
                    kind,
                    height,
                    round,
                    due_in_ms: left.as_millis() as u64,
                }
            })
            .collect(),
    }
}

impl Driver {
    /// Where consensus stands now.
    pub(super) fn consensus_info(&self) -> ConsensusInfo {
        consensus_info(
            self.consensus.round_view(),
            self.timers.pending(Instant::now()),
        )
    }

    /// Fires a rebroadcast and a propose timeout at once if consensus holds no timer of the
    /// height it decides ([`super::timers::Timers::rearm`]), with a warning: that is a fault
    /// of ours, and without it the node would wait on messages alone.
    pub(super) async fn rearm_consensus(&mut self) -> Result<(), ChainError> {
        let fire = self
            .timers
            .rearm(self.consensus.height(), self.consensus.round());
        if fire.is_empty() {
            return Ok(());
        }
        let info = self.consensus_info();
        warn!(
            height = self.consensus.height(),
            round = self.consensus.round(),
            step = %info.step,
            pending = info.timers.len(),
            "consensus held no timer of its height: firing a rebroadcast and a propose timeout"
        );
        for t in fire {
            let out = self.consensus.handle(Input::TimerFired(t));
            self.act(out).await?;
        }
        Ok(())
    }

    /// Logs, once per height, what consensus waits for when no block was decided within
    /// `bound`.
    pub(super) fn report_stall(&mut self, bound: Duration) {
        let height = self.consensus.height();
        let idle = self.last_decided.elapsed();
        if idle < bound || self.stall_reported == Some(height) {
            return;
        }
        self.stall_reported = Some(height);
        let info = self.consensus_info();
        let timers: Vec<String> = info
            .timers
            .iter()
            .map(|t| format!("{}@{}/{} in {} ms", t.kind, t.height, t.round, t.due_in_ms))
            .collect();
        warn!(
            height,
            round = self.consensus.round(),
            core_height = info.core_height,
            idle_s = idle.as_secs(),
            step = %info.step,
            prevote_power = info.prevote_power,
            precommit_power = info.precommit_power,
            total_power = info.total_power,
            voters = info.voters.len(),
            buffered_heights = info.buffered_heights,
            timers = ?timers,
            "no block decided within the liveness bound"
        );
    }
}
