//! The sector owner (`docs/protocol.md` steps 2–5 and 7): with `t` verified partials it
//! derives the branch seed, generates the sector, Feldman-deals every leaf seed `k`-of-`r` to
//! the leaf's ledger-chosen holders in sealed, signed batches, erases the seeds, re-sends
//! batches to holders that have not acknowledged, and publishes `SectorRoot` with the
//! acknowledgements: at once when every holder acknowledged, after [`ACK_WAIT_BLOCKS`] with
//! those it has when every leaf has `a` of its holders.
//!
//! Guarantees: the polynomials' randomness is derived from the branch seed, so dealing the
//! same sector again (after a restart) gives the same commitments and shares; after dealing,
//! only sealed batches remain in memory (the partials, branch seed, leaf seeds and plaintext
//! shares are dropped and zeroized), each chunk's encoded commitments and leaf keys once,
//! shared by its holders' batches ([`Payload`]), and a re-send is a clone of the same payload
//! (so the node can tell it is still queued); an acknowledgement counts only if it verifies over our
//! commitments root and our sector root (its holder keeps our tree) and comes from its holder.

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};

use super::direct::{batch_payload, chunk_shared};
use super::duty::{Duty, EpochError, Fault};
use super::keygen::{Dealt, KeyCtx, ACK_WAIT_BLOCKS, KEYGEN_RESEND_BLOCKS};
use super::machine::Agent;
use super::payload::Payload;
use crate::branch_seed;
use crate::dealing::{
    self, chunk_bits, seal_shares, verify_ack, ChunkCommitments, DealAck, Recipient,
};
use crate::hash::Domain;
use crate::ledger::{LedgerState, TxBody};
use crate::member::MemberId;
use crate::sector::Sector;
use crate::seed_tree::Branch;
use crate::shamir::{self, Share};
use crate::tprf::Partial;

const DEAL_RNG: Domain = Domain::new("seedfed-dealrng");

/// Why dealing a sector failed (a local error: logged, retried on the next block).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct DealFailed(String);

fn fail(e: impl std::fmt::Display) -> DealFailed {
    DealFailed(e.to_string())
}

impl Agent {
    /// Work on the sectors we own: deal once `t` partials are in, re-send unacknowledged
    /// batches, publish the sector root.
    pub(super) fn owner_duties<R: RngCore + CryptoRng>(
        &mut self,
        ctx: &KeyCtx,
        st: &LedgerState,
        rng: &mut R,
        duties: &mut Vec<Duty>,
    ) {
        let sectors: Vec<u32> = self.keygen.owned.keys().copied().collect();
        for sector in sectors {
            if st.newest.branch_owners.get(&sector) != Some(&self.me) {
                self.keygen.owned.remove(&sector);
                continue;
            }
            // The first sends come from the re-send schedule below (due at the dealing height);
            // the tree to keep goes first.
            self.deal_if_ready(ctx, st, sector, rng, duties, false);
            let Some(dealt) = self
                .keygen
                .owned
                .get_mut(&sector)
                .and_then(|o| o.dealt.as_mut())
            else {
                continue;
            };
            if st
                .height
                .saturating_sub(dealt.height)
                .is_multiple_of(KEYGEN_RESEND_BLOCKS)
            {
                for (holder, batches) in &dealt.batches {
                    if !dealt.acks.contains_key(holder) {
                        duties.extend(batches.iter().map(|b| Duty::Send {
                            to: *holder,
                            payload: b.clone(),
                        }));
                    }
                }
            }
            if let Some(body) = sector_root(ctx, st, sector, dealt) {
                duties.push(Duty::Submit(body));
            }
        }
    }

    /// Deals `sector` if we have `t` partials and have not dealt it yet: the tree to keep goes
    /// into `sends`, then, if `with_batches`, the batches (clones of the payloads kept in
    /// `Dealt::batches`: no bytes are copied).
    pub(super) fn deal_if_ready<R: RngCore + CryptoRng>(
        &mut self,
        ctx: &KeyCtx,
        st: &LedgerState,
        sector: u32,
        rng: &mut R,
        sends: &mut Vec<Duty>,
        with_batches: bool,
    ) {
        let Some(owned) = self.keygen.owned.get(&sector) else {
            return;
        };
        if owned.dealt.is_some() || owned.partials.len() < ctx.root_threshold {
            return;
        }
        let partials: Vec<Partial> = owned.partials.values().copied().collect();
        match self.deal_sector(ctx, st, sector, &partials, rng) {
            Ok(mut dealt) => {
                // Kept before anything else leaves: the owner serves paths from it.
                if let Some(keys) = dealt.tree.take() {
                    sends.push(Duty::KeepTree {
                        sector,
                        root: dealt.root,
                        keys,
                    });
                }
                if with_batches {
                    for (holder, batches) in &dealt.batches {
                        sends.extend(batches.iter().map(|b| Duty::Send {
                            to: *holder,
                            payload: b.clone(),
                        }));
                    }
                }
                if let Some(owned) = self.keygen.owned.get_mut(&sector) {
                    // The partials give the branch seed: erase them with it.
                    owned.partials.clear();
                    owned.dealt = Some(dealt);
                }
                tracing::info!(sector, "sector generated and dealt");
            }
            Err(e) => tracing::warn!(sector, error = %e, "cannot deal sector"),
        }
    }

    /// Branch seed → leaf seeds → sector tree and Feldman dealing → one sealed batch per chunk
    /// for every holder of a leaf of the sector.
    fn deal_sector<R: RngCore + CryptoRng>(
        &self,
        ctx: &KeyCtx,
        st: &LedgerState,
        sector: u32,
        partials: &[Partial],
        rng: &mut R,
    ) -> Result<Dealt, DealFailed> {
        let layout = ctx.layout;
        let seed =
            branch_seed::combine(&ctx.branch_id(sector, self.me), &ctx.root_public, partials)
                .map_err(fail)?;
        let mut coefficients = ChaCha20Rng::from_seed(*seed.derive(DEAL_RNG));
        let leaves = layout.sector_leaves(sector).map_err(fail)?;
        let first = u64::from(leaves.start);
        let branch = Branch::new(seed, sector, layout.sector_height()).map_err(fail)?;
        let seeds = branch.leaf_seeds(0, branch.size()).map_err(fail)?;
        drop(branch);
        // `BadTree`: every leaf's key is its neighbour's, so no dealt seed matches the tree.
        let shift = u32::from(self.fault == Fault::BadTree);
        let n = leaves.end - leaves.start;
        let tree = Sector::generate(layout, sector, self.threads, |q| {
            seeds[((q - leaves.start + shift) % n) as usize].lms_seed()
        })
        .map_err(fail)?;
        let end = u64::from(leaves.end);
        let bits = chunk_bits(layout.sector_height());
        let chunk_len = 1usize << bits;
        let members: Vec<MemberId> = ctx.basis.members.iter().map(|(m, _)| *m).collect();
        let index: BTreeMap<MemberId, u16> = members
            .iter()
            .enumerate()
            .map(|(i, m)| (*m, i as u16))
            .collect();
        // Each leaf's holders as indices into the basis (`r` per leaf), a chunk at a time: a
        // `Vec` of member ids per leaf for the whole sector would be ~200 bytes a leaf.
        let r = usize::from(ctx.r);
        let mut leaf_holders = Vec::with_capacity(seeds.len() * r);
        for c in (first..end).step_by(chunk_len) {
            let chunk_end = (c + chunk_len as u64).min(end);
            for hs in ctx.basis.holders_of(c..chunk_end, ctx.r).map_err(fail)? {
                if hs.len() != r {
                    return Err(fail("a leaf without its r holders"));
                }
                for h in &hs {
                    leaf_holders.push(*index.get(h).ok_or_else(|| fail("holder not in basis"))?);
                }
            }
        }
        let id = ctx.sector_id(sector, self.me);
        // Every holder of a leaf of the sector gets every chunk (possibly with no shares), so
        // it knows when it has the whole sector.
        let all: BTreeSet<u16> = leaf_holders.iter().copied().collect();
        let mut recipients = Vec::with_capacity(all.len());
        for i in &all {
            let holder = members[usize::from(*i)];
            let x25519 = st
                .members
                .get(&holder)
                .map(|m| m.x25519)
                .ok_or_else(|| fail("holder is not a member"))?;
            recipients.push(Recipient { id: holder, x25519 });
        }
        let mut batches: BTreeMap<MemberId, Vec<Payload>> = BTreeMap::new();
        let mut chunk_roots = Vec::new();
        let mut to_corrupt = self.fault == Fault::BadDealShare;
        // Dealt a chunk at a time (the coefficients stream is the same as for the whole sector
        // at once): a chunk's decoded commitments and plaintext shares are dropped before the
        // next chunk is dealt, so only the sealed batches grow with the sector.
        for (c, (chunk_seeds, chunk_holders)) in seeds
            .chunks(chunk_len)
            .zip(leaf_holders.chunks(chunk_len * r))
            .enumerate()
        {
            let chunk_holders: Vec<Vec<MemberId>> = chunk_holders
                .chunks(r)
                .map(|hs| hs.iter().map(|i| members[usize::from(*i)]).collect())
                .collect();
            let mut chunk = shamir::deal_batch(
                chunk_seeds
                    .iter()
                    .zip(chunk_holders.iter().map(Vec::as_slice)),
                ctx.k,
                &mut coefficients,
            )
            .map_err(fail)?;
            if to_corrupt {
                to_corrupt = !corrupt_one_share(&mut chunk, self.me);
            }
            let chunk_first = first + (c * chunk_len) as u64;
            // Encoded (at dealing) and hashed once for every holder's batch of the chunk.
            let commitments = ChunkCommitments::new(
                chunk_first,
                chunk
                    .iter()
                    .map(|d| d.commitment.encoded().clone())
                    .collect(),
            )
            .map_err(fail)?;
            chunk_roots.push(commitments.root());
            // The chunk's commitments and leaf keys as every batch carries them, kept once:
            // each holder's batch is its own bytes around this.
            let keys = tree
                .leaf_keys()
                .get(c * chunk_len..)
                .ok_or_else(|| fail("a chunk past the sector's leaves"))?;
            let keys = &keys[..keys.len().min(chunk_len)];
            let shared = chunk_shared(commitments.commitments(), keys);
            let mut per_holder: BTreeMap<MemberId, Vec<(u64, &Share)>> = BTreeMap::new();
            for (i, (d, hs)) in chunk.iter().zip(&chunk_holders).enumerate() {
                for (h, share) in hs.iter().zip(&d.shares) {
                    per_holder
                        .entry(*h)
                        .or_default()
                        .push((chunk_first + i as u64, share));
                }
            }
            for to in &recipients {
                let shares = per_holder.get(&to.id).map_or(&[][..], Vec::as_slice);
                let part = seal_shares(id, &self.identity, *to, &commitments, shares, rng)
                    .map_err(fail)?;
                let payload = batch_payload(ctx.epoch, id, to.id, chunk_first, &shared, part)
                    .ok_or_else(|| {
                        fail("a batch's encoding does not split around its commitments")
                    })?;
                batches.entry(to.id).or_default().push(payload);
            }
        }
        drop(seeds);
        let commitments_root = dealing::commitments_root(first, bits, &chunk_roots);
        Ok(Dealt {
            height: st.height,
            root: tree.root(),
            tree: Some(tree.into_leaf_keys()),
            commitments_root,
            batches,
            leaf_holders,
            acks: BTreeMap::new(),
            submitted: None,
        })
    }

    /// A holder's acknowledgement of a sector we dealt; with every holder in, publishes at
    /// once.
    pub(super) fn on_ack(
        &mut self,
        st: &LedgerState,
        from: MemberId,
        epoch: u64,
        sector: u32,
        ack: DealAck,
    ) -> Result<Vec<Duty>, EpochError> {
        let ctx = self.keygen_ctx(st, epoch)?;
        if ack.holder != from {
            return Err(EpochError::Envelope(
                "acknowledgement not from the sending peer",
            ));
        }
        let id = ctx.sector_id(sector, self.me);
        let dealt = self
            .keygen
            .owned
            .get_mut(&sector)
            .and_then(|o| o.dealt.as_mut())
            .ok_or(EpochError::NoKeygen("we have not dealt this sector"))?;
        if !dealt.batches.contains_key(&from) {
            return Err(EpochError::NoKeygen("not a holder of this sector"));
        }
        verify_ack(&id, &ack, &dealt.commitments_root, &dealt.root)?;
        dealt.acks.insert(from, ack);
        let mut duties = Vec::new();
        if let Some(body) = sector_root(&ctx, st, sector, dealt) {
            duties.push(Duty::Submit(body));
        }
        Ok(duties)
    }
}

/// The `SectorRoot` to submit, if it is time: every holder acknowledged, or the wait is over
/// and every leaf has `a` acknowledgements from its own holders. Once chosen, it stays.
fn sector_root(ctx: &KeyCtx, st: &LedgerState, sector: u32, dealt: &mut Dealt) -> Option<TxBody> {
    if let Some(body) = &dealt.submitted {
        return Some(body.clone());
    }
    let everyone = dealt.batches.keys().all(|h| dealt.acks.contains_key(h));
    let waited = st.height.saturating_sub(dealt.height) >= ACK_WAIT_BLOCKS;
    if !(everyone || (waited && enough_acks(ctx, dealt))) {
        return None;
    }
    let body = TxBody::SectorRoot {
        sector,
        root: dealt.root,
        commitments_root: dealt.commitments_root,
        acks: dealt.acks.values().cloned().collect(),
    };
    dealt.submitted = Some(body.clone());
    Some(body)
}

/// Whether every leaf has `a` acknowledgements from its own holders.
fn enough_acks(ctx: &KeyCtx, dealt: &Dealt) -> bool {
    let acked: Vec<bool> = ctx
        .basis
        .members
        .iter()
        .map(|(m, _)| dealt.acks.contains_key(m))
        .collect();
    dealt.leaf_holders.chunks(usize::from(ctx.r)).all(|hs| {
        hs.iter()
            .filter(|i| acked.get(usize::from(**i)).copied().unwrap_or(false))
            .count()
            >= ctx.ack_threshold
    })
}

/// The `BadDealShare` fault: the first share of the first leaf held by another validator is
/// off by one (a bad dealer does not hand itself the bad share it could complain about).
/// Returns whether a share was corrupted (`dealings` had a share of another validator).
fn corrupt_one_share(dealings: &mut [shamir::Dealing], me: MemberId) -> bool {
    let first_other = dealings
        .iter_mut()
        .flat_map(|d| d.shares.iter_mut())
        .find(|s| s.holder != me);
    let Some(share) = first_other else {
        return false;
    };
    let mut bytes = *share.value_bytes();
    bytes[0] ^= 1;
    if let Ok(bad) = Share::new(share.holder, &bytes) {
        *share = bad;
    }
    zeroize::Zeroize::zeroize(&mut bytes);
    true
}
