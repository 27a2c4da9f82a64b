//! Answers to the effects Malachite's core yields while it processes one input.
//!
//! Effects that need an answer are pure and are answered at once (sign with our key, verify a
//! signature, remembered in the node's [`SigCache`] so the same vote is not checked again, or
//! a certificate, no vote extensions). Effects that are I/O (publish, timers, WAL
//! append, build a value, decide) are resumed with `Continue` and recorded as [`Pending`] work,
//! mostly [`Output`]s, that the state machine acts on after the coroutine returns.

use malachitebft_core_consensus as mc;
use malachitebft_core_types as mt;
use mc::{Effect, Resumable, Resume};
use mt::SignedMessage;

use super::io::{to_timer, Output, WalEntry};
use super::key::ConsensusKey;
use super::message::{polka_to_wire, proposal_message, round_to_wire, vote_record};
use super::{certificate, context, BlockHash, ConsensusMessage, Ctx};
use crate::ledger::{SigCache, Signature64};
use crate::member::MemberId;

/// Effects that become outputs or need work after the coroutine returns (short-lived).
#[allow(clippy::large_enum_variant)]
pub(super) enum Pending {
    /// An output for the node, in order.
    Out(Output),
    /// A decision: apply the block and start the next height.
    Decided(mt::CommitCertificate<Ctx>),
    /// Re-broadcast the proposal messages that carried this block.
    Restream(BlockHash),
}

fn broadcast_vote(sv: &mt::SignedVote<Ctx>, pending: &mut Vec<Pending>) {
    if let Some(v) = vote_record(sv) {
        pending.push(Pending::Out(Output::Broadcast(ConsensusMessage::Vote(v))));
    }
}

/// Answers one Malachite effect: pure effects at once, I/O effects become outputs.
pub(super) fn answer(
    ctx: &Ctx,
    key: &ConsensusKey,
    height: u64,
    timeouts: &mt::LinearTimeouts,
    sigs: &mut SigCache,
    pending: &mut Vec<Pending>,
    effect: Effect<Ctx>,
) -> Result<Resume<Ctx>, std::convert::Infallible> {
    let chain = ctx.chain_id();
    Ok(match effect {
        Effect::CancelAllTimeouts(r) => {
            pending.push(Pending::Out(Output::CancelAllTimers));
            r.resume_with(())
        }
        Effect::CancelTimeout(t, r) => {
            if let Some(timer) = to_timer(height, &t) {
                pending.push(Pending::Out(Output::CancelTimer(timer)));
            }
            r.resume_with(())
        }
        Effect::ScheduleTimeout(t, r) => {
            if let Some(timer) = to_timer(height, &t) {
                pending.push(Pending::Out(Output::ScheduleTimer {
                    timer,
                    after: timeouts.duration_for(t),
                }));
            }
            r.resume_with(())
        }
        Effect::StartRound(_, _, _, _, r) => r.resume_with(()),
        Effect::PublishConsensusMsg(msg, r) => {
            match msg {
                mc::SignedConsensusMsg::Vote(sv) => broadcast_vote(&sv, pending),
                mc::SignedConsensusMsg::Proposal(sp) => {
                    if let Some(p) = proposal_message(&sp) {
                        pending.push(Pending::Out(Output::Broadcast(ConsensusMessage::Proposal(
                            p,
                        ))));
                    }
                }
            }
            r.resume_with(())
        }
        Effect::PublishLivenessMsg(msg, r) => {
            match msg {
                mc::LivenessMsg::Vote(sv) => broadcast_vote(&sv, pending),
                mc::LivenessMsg::PolkaCertificate(c) => {
                    if let Some(p) = polka_to_wire(&c) {
                        pending.push(Pending::Out(Output::Broadcast(ConsensusMessage::Polka(p))));
                    }
                }
                mc::LivenessMsg::SkipRoundCertificate(c) => {
                    if let Some(r) = round_to_wire(&c) {
                        pending.push(Pending::Out(Output::Broadcast(ConsensusMessage::Round(r))));
                    }
                }
            }
            r.resume_with(())
        }
        Effect::RepublishVote(sv, r) => {
            broadcast_vote(&sv, pending);
            r.resume_with(())
        }
        Effect::RepublishRoundCertificate(c, r) => {
            if let Some(m) = round_to_wire(&c) {
                pending.push(Pending::Out(Output::Broadcast(ConsensusMessage::Round(m))));
            }
            r.resume_with(())
        }
        Effect::GetValue(h, round, _, r) => {
            if let Some(round) = round.as_u32() {
                pending.push(Pending::Out(Output::BuildBlock { height: h.0, round }));
            }
            r.resume_with(())
        }
        Effect::RestreamProposal(_, _, _, _, value_id, r) => {
            pending.push(Pending::Restream(value_id));
            r.resume_with(())
        }
        Effect::CertVerifiedSyncValue(_, _, r) => r.resume_with(()),
        Effect::CertRejectedSyncValue(_, _, _, r) => r.resume_with(()),
        Effect::Decide(cert, _, r) => {
            pending.push(Pending::Decided(cert));
            r.resume_with(())
        }
        Effect::SignVote(vote, r) => {
            // Votes with an undefined round are never produced by the core.
            let digest = context::vote_sign_digest(chain, &vote).unwrap_or([0; 32]);
            let sig = key.sign(&digest);
            r.resume_with(SignedMessage::new(vote, sig))
        }
        Effect::SignProposal(p, r) => {
            let sig = key.sign(&context::proposal_sign_digest(chain, &p));
            r.resume_with(SignedMessage::new(p, sig))
        }
        Effect::VerifySignature(msg, pk, r) => {
            let digest = match &msg.message {
                mc::ConsensusMsg::Vote(v) => context::vote_sign_digest(chain, v),
                mc::ConsensusMsg::Proposal(p) => Some(context::proposal_sign_digest(chain, p)),
            };
            let signer = MemberId(*pk.as_bytes());
            let sig = Signature64(msg.signature.to_bytes());
            let ok = digest.is_some_and(|d| sigs.verify_vote(&signer, &d, &sig));
            r.resume_with(ok)
        }
        Effect::VerifyCommitCertificate(c, set, tp, r) => {
            r.resume_with(certificate::verify_commit(chain, &c, &set, tp))
        }
        Effect::VerifyExtendedCommitCertificate(c, set, tp, _, r) => r.resume_with(
            certificate::verify_commit(chain, &c.trim_vote_extensions(), &set, tp),
        ),
        Effect::VerifyPolkaCertificate(c, set, tp, r) => {
            r.resume_with(certificate::verify_polka(chain, &c, &set, tp))
        }
        Effect::VerifyRoundCertificate(c, set, tp, r) => {
            r.resume_with(certificate::verify_round(chain, &c, &set, tp))
        }
        Effect::WalAppend(h, input, r) => {
            if let Some(entry) = wal_entry(h.0, input) {
                pending.push(Pending::Out(Output::PersistWal(entry)));
            }
            r.resume_with(())
        }
        Effect::ExtendVote(_, _, _, _, r) => r.resume_with(None),
        Effect::VerifyVoteExtension(_, _, _, _, _, _, r) => r.resume_with(Ok(())),
        Effect::Finalize(_, _, evidence, r) => {
            for (_, doubles) in &evidence.votes {
                for (a, b) in doubles {
                    if let (Some(a), Some(b)) = (vote_record(a), vote_record(b)) {
                        pending.push(Pending::Out(Output::Equivocation { a, b }));
                    }
                }
            }
            r.resume_with(())
        }
    })
}

fn wal_entry(height: u64, input: mc::Input<Ctx>) -> Option<WalEntry> {
    match input {
        mc::Input::Proposal(sp) => proposal_message(&sp).map(WalEntry::Proposal),
        mc::Input::Vote(sv) => vote_record(&sv).map(WalEntry::Vote),
        mc::Input::ProposedValue(pv, _) => Some(WalEntry::ProposedValue {
            height: pv.height.0,
            round: pv.round.as_u32()?,
            valid_round: pv.valid_round.as_u32(),
            proposer: pv.proposer,
            block: pv.value.block().clone(),
            valid: pv.validity.is_valid(),
        }),
        mc::Input::TimeoutElapsed(t) => to_timer(height, &t).map(WalEntry::Timeout),
        mc::Input::PolkaCertificate(c) => polka_to_wire(&c).map(WalEntry::Polka),
        // Not persisted by the core (round certificates) or never fed (sync values).
        _ => None,
    }
}
