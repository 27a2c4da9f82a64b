//! Key issuance as the relay (`crate::issue`): for a leaf whose request names the client's
//! X25519 key, the quorum's contributions are sealed to the client and come to the relay,
//! which checks each (signed by its sender, for the current attempt's session and the client)
//! and keeps it unopened until the client takes its [`IssueBundle`]. Guarantees: the relay
//! never holds anything that opens; a bundle is handed out only whole, for one attempt, and
//! not for an attempt whose members disagree on their mask commitments: the relay reports
//! those disputes to both members (the honest one reveals, the liar is convicted) as a
//! recipient would. A contribution that is faulty on its own only the client can see; it
//! blames it through the relay (`issue::blame_issued`, `SignBlame` by the relay).

use super::duty::{Duty, EpochError};
use super::machine::Agent;
use super::sign::{dispute_notices, full_path, sign_ctx, SignCtx, SIGN_ATTEMPT_BLOCKS};
use crate::issue::IssueBundle;
use crate::ledger::LedgerState;
use crate::reconstruct::{self, Contribution};
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
        if !session
            .quorum
            .iter()
            .all(|p| g.sealed.contains_key(&p.member))
        {
            return Ok(Vec::new());
        }
        // The whole quorum is in: pairs that disagree on their mask commitments (in clear)
        // would make the client's combination fail, and the client cannot reach the members.
        // Report them as the recipient would; the bundle waits for the next attempt.
        let sealed: Vec<Contribution> = g.sealed.values().cloned().collect();
        let disputes = reconstruct::mask_disputes(session, &sealed);
        if disputes.is_empty() {
            return Ok(Vec::new());
        }
        tracing::warn!(
            leaf,
            ?disputes,
            "mask disputes in an issued leaf's contributions"
        );
        let duties = dispute_notices(leaf, &disputes, |m| g.sealed.get(m));
        g.add_blame(context, duties.clone());
        Ok(duties)
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
        if g.context != ctx.session.context()
            || g.blame.as_ref().is_some_and(|(c, _)| *c == g.context)
        {
            // Another attempt's, or this attempt's quorum disputes its masks.
            return None;
        }
        let contributions = ctx
            .session
            .quorum
            .iter()
            .map(|p| g.sealed.get(&p.member).cloned())
            .collect::<Option<Vec<Contribution>>>()?;
        let (_, encoded, commitment_path) = g.commitment.as_ref()?;
        let path = full_path(st, ctx.key, ctx.sector, g.path.clone()?.1)?;
        Some(IssueBundle {
            leaf,
            digest: ctx.digest,
            session: ctx.session.clone(),
            commitment: encoded.clone(),
            commitment_path: commitment_path.clone(),
            contributions,
            path,
        })
    }
}
