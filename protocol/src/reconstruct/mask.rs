//! Pairwise masks of a reconstruction quorum: `m_ij`, hashed from the pair's static
//! Diffie–Hellman point and the session context, its sign `σ_ij`, the commitments `M_ij = m_ij·G`
//! each contribution carries in clear, and the pairs whose two claims about their shared mask
//! differ (a dispute: one of the two lies; `blame` settles which).

use std::collections::BTreeMap;

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::scalar::Scalar;
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use super::{Contribution, PairPoints, Participant, ReconstructError, Session};
use crate::hash::{hash64, Domain};
use crate::member::MemberId;
use crate::seal;

const MASK: Domain = Domain::new("seedfed-recon-mk");

/// The pairwise mask `m_ij` (symmetric in i, j), keyed by the pair's static Diffie–Hellman
/// point (`seal::pairwise_point`).
pub(super) fn mask(
    pair_point: &[u8; 32],
    context: &[u8; 32],
    a: &MemberId,
    b: &MemberId,
) -> Zeroizing<Scalar> {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let wide = Zeroizing::new(hash64(
        MASK,
        pair_point,
        &[0; 16],
        &[context, lo.as_bytes(), hi.as_bytes()],
    ));
    Zeroizing::new(Scalar::from_bytes_mod_order_wide(&wide))
}

/// `m_ij·G` of `me` with `peer` in `context`, compressed (what an honest `me` claims).
pub(super) fn true_mask_commitment(
    my_key: &StaticSecret,
    me: &MemberId,
    peer: &Participant,
    context: &[u8; 32],
) -> Result<([u8; 32], Zeroizing<Scalar>), ReconstructError> {
    true_mask_commitment_with(my_key, me, peer, context, None)
}

/// [`true_mask_commitment`], with the pair's point taken from `pairs` when it holds it.
pub(super) fn true_mask_commitment_with(
    my_key: &StaticSecret,
    me: &MemberId,
    peer: &Participant,
    context: &[u8; 32],
    pairs: Option<&PairPoints>,
) -> Result<([u8; 32], Zeroizing<Scalar>), ReconstructError> {
    let pair = match pairs.and_then(|p| p.get(&peer.x25519)) {
        Some(known) => known.clone(),
        None => {
            seal::pairwise_point(my_key, &peer.x25519).map_err(|error| ReconstructError::Seal {
                sender: peer.member,
                error,
            })?
        }
    };
    let m = mask(&pair, context, me, &peer.member);
    Ok(((&*m * RISTRETTO_BASEPOINT_TABLE).compress().to_bytes(), m))
}

/// The pairs of `contributions` (signed, of `session`'s quorum) that disagree on the commitment
/// of their pairwise mask (`M_ij ≠ M_ji`), which anyone can see: the mask commitments travel in
/// clear. One member of each pair lies (`blame::answer_dispute`). Contributions of non-members
/// or with the wrong number of masks are ignored (the recipient blames those on their own).
pub fn mask_disputes(
    session: &Session,
    contributions: &[Contribution],
) -> Vec<(MemberId, MemberId)> {
    let k = session.quorum.len();
    let mut by_pos: BTreeMap<usize, &Contribution> = BTreeMap::new();
    for c in contributions {
        if let Ok(pos) = session.position(&c.sender) {
            if c.masks.len() + 1 == k {
                by_pos.insert(pos, c);
            }
        }
    }
    let masks = by_pos.iter().map(|(p, c)| (*p, &c.masks[..])).collect();
    disagreeing_pairs(&session.members(), &masks)
}

/// The pairs of quorum positions in `masks` (each member's mask commitments, in quorum order
/// without itself) whose two claims about their shared mask differ, in position order.
pub(super) fn disagreeing_pairs<T: PartialEq>(
    members: &[MemberId],
    masks: &BTreeMap<usize, &[T]>,
) -> Vec<(MemberId, MemberId)> {
    let mut out = Vec::new();
    for (&i, mi) in masks {
        for (&j, mj) in masks.range(i + 1..) {
            if mi[mask_index(i, j)] != mj[mask_index(j, i)] {
                out.push((members[i], members[j]));
            }
        }
    }
    out
}

/// Index of `peer`'s entry in the mask list of the member at `pos` (which skips itself).
pub(super) fn mask_index(pos: usize, peer: usize) -> usize {
    if peer < pos {
        peer
    } else {
        peer - 1
    }
}

/// `σ_ij`: +1 if `me` sorts before `peer`, −1 otherwise, so each pair's two masks cancel.
pub(super) fn sign_of(me: &MemberId, peer: &MemberId) -> Scalar {
    if me < peer {
        Scalar::ONE
    } else {
        -Scalar::ONE
    }
}
