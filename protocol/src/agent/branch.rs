//! Branch-seed delivery (`docs/protocol.md` step 1): every holder of the root key sends each
//! sector's owner its threshold-PRF partial, sealed to the owner and signed; the owner checks
//! each against the root key's public package and keeps the valid ones until it has `t`.
//!
//! Guarantees: a partial is computed once per (epoch, sector) and the same bytes are re-sent
//! every [`KEYGEN_RESEND_BLOCKS`] until the sector lands, so `on_block` stays idempotent; an
//! owner accepts a partial only from its authenticated sender, for a sector it owns in the
//! current epoch, with a valid proof.

use rand_core::{CryptoRng, RngCore};

use super::direct::Direct;
use super::duty::{Duty, EpochError};
use super::keygen::{KeyCtx, KEYGEN_RESEND_BLOCKS};
use super::machine::Agent;
use crate::branch_seed::{open_partial, seal_partial, PartialEnvelope};
use crate::dealing::Recipient;
use crate::ledger::{encode, LedgerState};
use crate::member::MemberId;
use crate::tprf;

impl Agent {
    /// Our partials for the sectors others own (first send, then periodic re-sends), and our
    /// own partial for the sectors we own.
    pub(super) fn partial_duties<R: RngCore + CryptoRng>(
        &mut self,
        ctx: &KeyCtx,
        st: &LedgerState,
        rng: &mut R,
        duties: &mut Vec<Duty>,
    ) {
        let Some(root_key) = self.root_key(ctx.root_epoch) else {
            return;
        };
        for (sector, owner) in ctx.open_sectors(st).collect::<Vec<_>>() {
            if owner == self.me {
                let owned = self.keygen.owned.entry(sector).or_default();
                if owned.dealt.is_none() && !owned.partials.contains_key(&self.me) {
                    let input = ctx.branch_id(sector, self.me).prf_input();
                    if let Ok(p) = tprf::partial(&root_key, &self.me, &input, rng) {
                        owned.partials.insert(self.me, p);
                    }
                }
                continue;
            }
            let Some(x25519) = st.members.get(&owner).map(|m| m.x25519) else {
                continue;
            };
            if self
                .keygen
                .partials_out
                .get(&sector)
                .is_none_or(|(to, _, _)| *to != owner)
            {
                let to = Recipient { id: owner, x25519 };
                let id = ctx.branch_id(sector, owner);
                match seal_partial(id, &self.identity, &root_key, to, rng) {
                    Ok(envelope) => {
                        let msg = encode(&Direct::Partial {
                            epoch: ctx.epoch,
                            envelope,
                        })
                        .into();
                        self.keygen
                            .partials_out
                            .insert(sector, (owner, st.height, msg));
                    }
                    Err(e) => tracing::warn!(sector, error = %e, "cannot seal a branch partial"),
                }
            }
            if let Some((_, first, msg)) = self.keygen.partials_out.get(&sector) {
                if (st.height - first).is_multiple_of(KEYGEN_RESEND_BLOCKS) {
                    duties.push(Duty::Send {
                        to: owner,
                        payload: msg.clone(),
                    });
                }
            }
        }
    }

    /// A partial from `from` for a sector we own: checked and kept; with `t` of them, the
    /// owner generates and deals at once.
    pub(super) fn on_partial<R: RngCore + CryptoRng>(
        &mut self,
        st: &LedgerState,
        from: MemberId,
        epoch: u64,
        envelope: &PartialEnvelope,
        rng: &mut R,
    ) -> Result<Vec<Duty>, EpochError> {
        let ctx = self.keygen_ctx(st, epoch)?;
        let sector = envelope.id.branch;
        if envelope.sender != from {
            return Err(EpochError::Envelope("partial not from the sending peer"));
        }
        if st.newest.sectors.contains_key(&sector) {
            return Err(EpochError::NoKeygen("sector already published"));
        }
        if st.newest.branch_owners.get(&sector) != Some(&self.me) {
            return Err(EpochError::NoKeygen("we do not own this sector"));
        }
        let owned = self.keygen.owned.entry(sector).or_default();
        if owned.dealt.is_some() || owned.partials.contains_key(&from) {
            return Ok(Vec::new());
        }
        let partial = open_partial(
            envelope,
            &ctx.branch_id(sector, self.me),
            &self.me,
            &self.x25519,
            &ctx.root_public,
        )?;
        owned.partials.insert(from, partial);
        let mut duties = Vec::new();
        self.deal_if_ready(&ctx, st, sector, rng, &mut duties, true);
        Ok(duties)
    }

    /// The key-generation context for a message of `epoch`, or why there is none.
    pub(super) fn keygen_ctx(
        &mut self,
        st: &LedgerState,
        epoch: u64,
    ) -> Result<KeyCtx, EpochError> {
        let ctx = KeyCtx::of(st).ok_or(EpochError::NoKeygen("no key generation in progress"))?;
        if epoch != ctx.epoch {
            return Err(EpochError::NoKeygen("message for another epoch"));
        }
        self.keygen.rescope(Some(&ctx), st);
        Ok(ctx)
    }
}
