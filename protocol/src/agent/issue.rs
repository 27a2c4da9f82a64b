//! Key issuance as the relay (`crate::issue`): for a leaf whose request names the client's
//! X25519 key, the quorum's contributions are sealed to the client and come to the relay,
//! which checks each (signed by its sender, for the current attempt's session and the client)
//! and keeps it unopened until the client takes its [`IssueBundle`]. Guarantees: the relay
//! never holds anything that opens; a bundle is handed out only whole, for one attempt.

use super::duty::{Duty, EpochError};
use super::machine::Agent;
use super::sign::{full_path, sign_ctx, SignCtx, SIGN_ATTEMPT_BLOCKS};
use crate::issue::IssueBundle;
use crate::ledger::LedgerState;
use crate::reconstruct::Contribution;
use crate::shamir::EncodedCommitment;

/// Blocks during which the quorum of an issued leaf (key issuance mode) keeps sending the
/// client's contributions to the relay; the ledger cannot see whether the client signed, so
/// after this the leaf is left alone (it stays allocated to the client, never reused).
pub const ISSUE_WINDOW_BLOCKS: u64 = 16 * SIGN_ATTEMPT_BLOCKS;

impl Agent {
    /// Key issuance, as the relay: a quorum member's contribution sealed to the client,
    /// checked (signed by its sender, for the current attempt's session and the client) and
    /// kept unopened until the client takes the bundle.
    pub(super) fn keep_for_client(
        &mut self,
        ctx: &SignCtx<'_>,
        leaf: u64,
        contribution: &Contribution,
        encoded: &EncodedCommitment,
        path: &[[u8; 32]],
    ) -> Result<Vec<Duty>, EpochError> {
        let session = &ctx.session;
        let context = session.context();
        if contribution.context != context
            || contribution.recipient != session.recipient.member
            || !session
                .quorum
                .iter()
                .any(|p| p.member == contribution.sender)
        {
            return Err(EpochError::Envelope(
                "contribution for another session of this leaf",
            ));
        }
        contribution
            .verify_signature()
            .map_err(|_| EpochError::Envelope("contribution not signed by its sender"))?;
        let decoded = encoded
            .decode()
            .map_err(|_| EpochError::Envelope("commitment does not decode"))?;
        let g = self.signing.entry(leaf).or_default();
        if g.context != context {
            g.context = context;
            g.sealed.clear();
        }
        g.commitment
            .get_or_insert((decoded, encoded.clone(), path.to_vec()));
        g.sealed.insert(contribution.sender, contribution.clone());
        Ok(Vec::new())
    }

    /// Key issuance, as the relay: the client's bundle for `leaf` once the current attempt's
    /// whole quorum and the leaf's path are in (`None` before, or if the leaf is not one we
    /// relayed for issuance).
    pub fn issue_bundle(&self, st: &LedgerState, leaf: u64) -> Option<IssueBundle> {
        let ctx = sign_ctx(st, leaf)?;
        if !ctx.issue || ctx.relay != self.me {
            return None;
        }
        let g = self.signing.get(&leaf)?;
        if g.context != ctx.session.context() {
            return None;
        }
        let contributions = ctx
            .session
            .quorum
            .iter()
            .map(|p| g.sealed.get(&p.member).cloned())
            .collect::<Option<Vec<Contribution>>>()?;
        let (_, encoded, _) = g.commitment.as_ref()?;
        let path = full_path(st, ctx.key, ctx.sector, g.path.clone()?.1)?;
        Some(IssueBundle {
            leaf,
            digest: ctx.digest,
            session: ctx.session.clone(),
            commitment: encoded.clone(),
            contributions,
            path,
        })
    }
}
