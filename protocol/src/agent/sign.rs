//! Signing over the network (issue 10, first part): for every leaf the ledger allocated to a
//! `SignRequest` and not yet signed, the leaf's quorum of holders sends the requester (the
//! recipient) masked contributions sealed to it (`reconstruct`), the sector's owner sends the
//! leaf's authentication path inside its sector, and the recipient rebuilds the seed, checks
//! it against the sector root, signs the request's digest and publishes `SignaturePublish`.
//!
//! Guarantees: the session (id, quorum, recipient) is a function of the ledger's request, so a
//! holder contributes only toward the recipient and with the quorum the ledger implies: the
//! first `k` of the leaf's holders that acknowledged the sector and are still validators. A
//! contribution is opened only for a leaf this node requested; the seed exists only while the
//! signature is made, then is zeroized, and the signature is verified under the master public
//! key before it leaves. Sends are repeated every [`KEYGEN_RESEND_BLOCKS`] blocks from the
//! request's height until the signature lands (stateless for holders and owners).
//!
//! Not yet: an attempt counter with blame on the ledger (a faulty or absent quorum member
//! stalls the leaf), authorized clients, key issuance to clients.

use std::collections::BTreeMap;

use rand_core::{CryptoRng, RngCore};

use super::direct::Direct;
use super::duty::{Duty, EpochError};
use super::keygen::KEYGEN_RESEND_BLOCKS;
use super::machine::Agent;
use crate::dealing::{self, HeldSector};
use crate::hash::{hash32, Domain};
use crate::ledger::{chain_digest, encode, LedgerState, SectorRecord, TxBody};
use crate::lms;
use crate::master::Master;
use crate::member::MemberId;
use crate::reconstruct::{self, Contribution, Opened, Participant, Session};
use crate::sector::Sector;
use crate::shamir::{Commitment, EncodedCommitment};

const SESSION: Domain = Domain::new("seedfed-signsess");

/// What the recipient gathered for one leaf.
#[derive(Default)]
pub(super) struct Gathering {
    opened: BTreeMap<MemberId, Opened>,
    commitment: Option<Commitment>,
    path: Option<Vec<[u8; 32]>>,
    /// The `SignaturePublish`, once made: re-submitted until it lands.
    submitted: Option<TxBody>,
}

/// A leaf's signing session as the ledger implies it.
pub(super) struct SignCtx<'a> {
    pub(super) sector: u32,
    pub(super) record: &'a SectorRecord,
    pub(super) session: Session,
    /// The leaf's `r` holders (rendezvous order of the sector's basis).
    pub(super) holders: Vec<MemberId>,
    pub(super) digest: [u8; 32],
    pub(super) requested_at: u64,
}

/// The session of allocated, unsigned `leaf`: recipient = the requester, quorum = the first
/// `k` of the leaf's holders (rendezvous order) that acknowledged the sector and are still
/// validators, leaving out the recipient and any holder whose X25519 key the recipient or an
/// earlier quorum member already has (a quorum every holder accepts,
/// `reconstruct::Session::check_leaf`).
pub(super) fn sign_ctx(st: &LedgerState, leaf: u64) -> Option<SignCtx<'_>> {
    if st.signatures.contains_key(&leaf) {
        return None;
    }
    let request = st.sign_requests.get(&leaf)?;
    let layout = st.key.layout(&chain_digest(&st.chain_id)).ok()?;
    let sector = layout.sector_of(u32::try_from(leaf).ok()?)?;
    let record = st.sectors.get(&sector)?;
    let participant = |m: &MemberId| {
        st.members.get(m).map(|x| Participant {
            member: *m,
            x25519: x.x25519,
        })
    };
    let recipient = participant(&request.requester)?;
    let holders = record.basis.leaf_holders(leaf, st.key.leaf_holders).ok()?;
    let k = usize::from(st.key.leaf_threshold);
    let mut keys = vec![recipient.x25519];
    let mut quorum: Vec<Participant> = Vec::with_capacity(k);
    for h in &holders {
        if quorum.len() == k {
            break;
        }
        if *h == recipient.member || !record.acked.contains(h) || !st.is_validator(h) {
            continue;
        }
        let Some(p) = participant(h) else { continue };
        if keys.contains(&p.x25519) {
            continue;
        }
        keys.push(p.x25519);
        quorum.push(p);
    }
    if quorum.len() < k {
        return None;
    }
    let session_id = hash32(
        SESSION,
        &[],
        &[0; 16],
        &[
            &chain_digest(&st.chain_id),
            &0u32.to_le_bytes(),
            &leaf.to_le_bytes(),
            &request.digest,
            recipient.member.as_bytes(),
        ],
    );
    let session = Session::new(session_id, 0, leaf, recipient, quorum).ok()?;
    Some(SignCtx {
        sector,
        record,
        session,
        holders,
        digest: request.digest,
        requested_at: request.height,
    })
}

impl Agent {
    /// Per block: our contributions as a quorum member and our paths as an owner (on the
    /// re-send schedule), the signatures we made as a recipient (until they land).
    pub(super) fn sign_duties(&mut self, st: &LedgerState, duties: &mut Vec<Duty>) {
        self.signing.retain(|leaf, _| {
            st.sign_requests.contains_key(leaf) && !st.signatures.contains_key(leaf)
        });
        if st.master_root.is_none() {
            return;
        }
        let open: Vec<u64> = st
            .sign_requests
            .keys()
            .filter(|l| !st.signatures.contains_key(l))
            .copied()
            .collect();
        for leaf in open {
            let Some(ctx) = sign_ctx(st, leaf) else {
                continue;
            };
            let due = st
                .height
                .saturating_sub(ctx.requested_at)
                .is_multiple_of(KEYGEN_RESEND_BLOCKS);
            let recipient = ctx.session.recipient.member;
            if due && ctx.session.quorum.iter().any(|p| p.member == self.me) {
                duties.push(Duty::Contribute {
                    sector: ctx.sector,
                    commitments_root: ctx.record.commitments_root,
                    leaf,
                });
            }
            if due && ctx.record.owner == self.me {
                duties.push(Duty::SendPath {
                    sector: ctx.sector,
                    root: ctx.record.root,
                    leaf,
                    to: recipient,
                });
            }
            if let Some(body) = self.signing.get(&leaf).and_then(|g| g.submitted.clone()) {
                duties.push(Duty::Submit(body));
            }
        }
    }

    /// Our contribution to `leaf`'s session, from our held record of its sector (the node
    /// reads it for a [`Duty::Contribute`]): the message to send to the recipient.
    pub fn contribution<R: RngCore + CryptoRng>(
        &self,
        st: &LedgerState,
        held: &HeldSector,
        leaf: u64,
        rng: &mut R,
    ) -> Result<Duty, EpochError> {
        let ctx = sign_ctx(st, leaf).ok_or(EpochError::NoKeygen("leaf not open for signing"))?;
        if held.commitments_root != ctx.record.commitments_root {
            return Err(EpochError::NoKeygen("held record of another dealing"));
        }
        let share = held
            .shares
            .iter()
            .find(|(l, _)| *l == leaf)
            .map(|(_, s)| s)
            .ok_or(EpochError::NoKeygen("we hold no share of that leaf"))?;
        let commitment = leaf
            .checked_sub(held.first_leaf)
            .and_then(|i| held.commitments.get(usize::try_from(i).ok()?))
            .cloned()
            .ok_or(EpochError::NoKeygen("no commitment of that leaf"))?;
        let path = dealing::chunk_path(held.first_leaf, &held.commitments, leaf)
            .map_err(|_| EpochError::NoKeygen("no commitment path of that leaf"))?;
        let contribution = reconstruct::contribute(
            &ctx.session,
            &ctx.holders,
            commitment.threshold(),
            &self.me,
            &self.x25519,
            share,
            rng,
        )
        .map_err(|_| EpochError::Envelope("cannot contribute to this session"))?;
        Ok(Duty::Send {
            to: ctx.session.recipient.member,
            payload: encode(&Direct::Contribution {
                leaf,
                contribution,
                commitment,
                path,
            }),
        })
    }

    /// A holder's contribution to a leaf we requested.
    pub(super) fn on_contribution(
        &mut self,
        st: &LedgerState,
        from: MemberId,
        leaf: u64,
        contribution: &Contribution,
        commitment: &EncodedCommitment,
        path: &[[u8; 32]],
    ) -> Result<Vec<Duty>, EpochError> {
        let ctx = sign_ctx(st, leaf).ok_or(EpochError::NoKeygen("leaf not open for signing"))?;
        if ctx.session.recipient.member != self.me {
            return Err(EpochError::NoKeygen("we are not this leaf's recipient"));
        }
        if contribution.sender != from {
            return Err(EpochError::Envelope(
                "contribution not from the sending peer",
            ));
        }
        if dealing::root_from_path(leaf, commitment, path) != ctx.record.commitments_root {
            return Err(EpochError::Envelope(
                "commitment not under the sector's commitments root",
            ));
        }
        let commitment = commitment
            .decode()
            .map_err(|_| EpochError::Envelope("commitment does not decode"))?;
        let opened = reconstruct::open_contribution(&ctx.session, &self.x25519, contribution)
            .map_err(|_| EpochError::Envelope("contribution does not open for this session"))?;
        let g = self.signing.entry(leaf).or_default();
        g.commitment.get_or_insert(commitment);
        g.opened.insert(from, opened);
        Ok(self.try_sign(st, leaf).into_iter().collect())
    }

    /// The owner's path of a leaf we requested.
    pub(super) fn on_leaf_path(
        &mut self,
        st: &LedgerState,
        from: MemberId,
        leaf: u64,
        path: Vec<[u8; 32]>,
    ) -> Result<Vec<Duty>, EpochError> {
        let ctx = sign_ctx(st, leaf).ok_or(EpochError::NoKeygen("leaf not open for signing"))?;
        if ctx.session.recipient.member != self.me {
            return Err(EpochError::NoKeygen("we are not this leaf's recipient"));
        }
        if ctx.record.owner != from {
            return Err(EpochError::Envelope("path not from the sector's owner"));
        }
        if path.len() != usize::from(st.key.tree_height - st.key.sector_bits) {
            return Err(EpochError::Envelope("path of the wrong length"));
        }
        self.signing.entry(leaf).or_default().path = Some(path);
        Ok(self.try_sign(st, leaf).into_iter().collect())
    }

    /// With the quorum's contributions and the path in, rebuilds the seed, signs the request's
    /// digest, verifies, erases, and returns the `SignaturePublish` to submit.
    fn try_sign(&mut self, st: &LedgerState, leaf: u64) -> Option<Duty> {
        let ctx = sign_ctx(st, leaf)?;
        let g = self.signing.get_mut(&leaf)?;
        if g.submitted.is_some()
            || g.path.is_none()
            || g.commitment.is_none()
            || !ctx
                .session
                .quorum
                .iter()
                .all(|p| g.opened.contains_key(&p.member))
        {
            return None;
        }
        let opened: Vec<Opened> = ctx
            .session
            .quorum
            .iter()
            .filter_map(|p| g.opened.get(&p.member).cloned())
            .collect();
        let commitment = g.commitment.as_ref()?;
        let secret = match reconstruct::combine(&ctx.session, commitment, &opened) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(leaf, error = %e, "contributions do not combine");
                g.opened.clear();
                return None;
            }
        };
        let seed = secret.lms_seed();
        drop(secret);
        let chain = chain_digest(&st.chain_id);
        let layout = st.key.layout(&chain).ok()?;
        let roots: Vec<[u8; 32]> = st.sectors.values().map(|r| r.root).collect();
        let master = Master::from_sector_roots(layout, &roots).ok()?;
        let mut path = g.path.clone()?;
        path.extend(master.auth_path(ctx.sector).ok()?);
        let q = u32::try_from(leaf).ok()?;
        let signed = lms::sign(
            layout.lms_type,
            layout.ots_type,
            &layout.id,
            q,
            &seed,
            &ctx.digest,
            path,
        );
        drop(seed);
        g.opened.clear();
        let sig = match signed {
            Ok(sig) => sig,
            Err(e) => {
                tracing::warn!(leaf, error = %e, "cannot sign");
                return None;
            }
        };
        let public = st.master_public_key()?;
        if let Err(e) = public.verify(&ctx.digest, &sig) {
            // The seed matches its commitment but not the tree (or the owner's path is wrong).
            tracing::warn!(leaf, error = %e, "the rebuilt one-time key does not verify");
            g.path = None;
            return None;
        }
        let body = TxBody::SignaturePublish {
            leaf,
            signature: sig.encode_hss(),
        };
        g.submitted = Some(body.clone());
        tracing::info!(leaf, "leaf rebuilt by MPC and signed");
        Some(Duty::Submit(body))
    }
}

/// The path message a [`Duty::SendPath`] asks for, from the owner's kept tree.
pub fn leaf_path_msg(tree: &Sector, leaf: u64) -> Result<Vec<u8>, crate::sector::SectorError> {
    let q = u32::try_from(leaf).map_err(|_| crate::sector::SectorError::LeafNotInSector {
        q: u32::MAX,
        branch: tree.branch(),
    })?;
    Ok(encode(&Direct::LeafPath {
        leaf,
        path: tree.auth_path(q)?,
    }))
}
