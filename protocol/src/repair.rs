//! Batched repair of leaf shares onto a replacement holder (repairable threshold sharing, the
//! technique of frost-core's `keys::repairable`, vectorised over many leaves; `docs/sharing.md`).
//! k helpers give the target its share of every leaf without anyone learning another holder's
//! share or any secret, and the target checks each new share against the leaf's Feldman
//! commitment, so a bad helper is detected per leaf (though not named).
//!
//! A session names a target member (the replacement, or the failed holder itself after data
//! loss), k helpers that each hold a share of every leaf in the session, and the leaves. The
//! target's x-coordinate is `identifier(target)`; if it is new, the polynomial is simply
//! evaluated at a new point: `f(x_t) = Σ_i λ_i(x_t)·s_i` over the helpers.
//!
//! 1. [`helper_deltas`]: helper `i` splits `λ_i(x_t)·s_i` of every leaf into k random addends
//!    `δ_ij` (one per helper `j`, summing to it) and sends helper `j` the vector of its addends,
//!    sealed to `j` — one message per helper pair.
//! 2. [`helper_sigma`]: helper `j` sums the addends it received, `σ_j = Σ_i δ_ij` per leaf, and
//!    sends the vector sealed to the target.
//! 3. [`target_finish`]: the target sums `Σ_j σ_j = f(x_t)` per leaf and checks every new share
//!    against the leaf's Feldman commitment with one batched verification.
//!
//! Privacy: each `δ_ij` a helper receives is one addend of a random k-way split, so it is
//! uniform and independent of `s_i`; each `σ_j` the target receives is one addend of a random
//! split of its new share. Nobody learns another holder's share or any secret. The Lagrange
//! coefficients depend only on the helper set and the target, so they are computed once per
//! session. A failed check names the leaves but not the helper (the technique has no per-helper
//! verification): rerun those leaves with another helper set.
//!
//! The privacy argument needs the other helpers to be real, distinct holders: a helper that
//! sends its addends to identities the target controls hands the target `λ_i(x_t)·s_i`, and
//! with one helper `λ_i(x_t)·s_i` is the share. So a helper sends nothing unless
//! [`RepairSession::check_helpers`] accepts the set: at least `k` helpers, all holders of the
//! session's leaves, and no X25519 key twice among the helpers and the target.

use curve25519_dalek::scalar::Scalar;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::hash::{hash32, Domain};
use crate::member::MemberId;
use crate::reconstruct::Participant;
use crate::seal::{self, SealError, Sealed};
use crate::shamir::{self, Commitment, ShamirError, Share, MAX_THRESHOLD};

const CONTEXT: Domain = Domain::new("seedfed-repair");
const AD_DELTA: &[u8] = b"seedfed-repair-delta/v1";
const AD_SIGMA: &[u8] = b"seedfed-repair-sigma/v1";
/// Most leaves in one session (bounds message sizes: 32 bytes per leaf).
pub const MAX_LEAVES: usize = 1 << 18;

/// One repair session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairSession {
    /// Unique id (e.g. from the ledger's repair transaction).
    pub session_id: [u8; 32],
    /// Epoch.
    pub epoch: u64,
    /// The holder whose shares are being replaced (bookkeeping; may equal the target).
    pub lost: MemberId,
    /// Who receives the repaired shares (at x-coordinate `identifier(target.member)`).
    pub target: Participant,
    /// The helpers, sorted by member id, distinct, not including the target.
    pub helpers: Vec<Participant>,
    /// The leaves being repaired; every helper holds a share of each.
    pub leaves: Vec<u64>,
}

/// Errors of repair. Never contain secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepairError {
    /// The session is malformed.
    #[error("invalid repair session: {0}")]
    InvalidSession(&'static str),
    /// The member is not a helper of this session.
    #[error("member {0:?} is not a helper of this session")]
    NotAHelper(MemberId),
    /// Our key does not match the session's entry for us.
    #[error("the X25519 key of {0:?} does not match the session")]
    KeyMismatch(MemberId),
    /// Wrong number of shares/commitments for the session's leaves.
    #[error("expected {expected} items (one per leaf), got {got}")]
    WrongCount {
        /// Leaves in the session.
        expected: usize,
        /// Items supplied.
        got: usize,
    },
    /// A share belongs to another member.
    #[error("share of {share:?} supplied by {member:?}")]
    WrongShare {
        /// Share's holder.
        share: MemberId,
        /// The helper.
        member: MemberId,
    },
    /// A message names another session, sender or recipient.
    #[error("message from {0:?} is for another session or recipient")]
    WrongSession(MemberId),
    /// A message did not authenticate.
    #[error("message from {sender:?} rejected: {error}")]
    Seal {
        /// Claimed sender.
        sender: MemberId,
        /// Why.
        error: SealError,
    },
    /// A message body is malformed (wrong length or non-canonical scalars).
    #[error("malformed message from {0:?}")]
    Malformed(MemberId),
    /// A helper sent twice, or some helpers have not sent.
    #[error("need exactly one message from each helper; problem with {0:?}")]
    Messages(MemberId),
    /// A helper is not a holder of the session's leaves.
    #[error("helper {0:?} does not hold the session's leaves")]
    NotAHolder(MemberId),
    /// Two participants (two helpers, or a helper and the target) share one X25519 key: its
    /// owner would open both of their addends and learn a helper's `λ_i·s_i`.
    #[error("{0:?} and {1:?} share an X25519 key")]
    SharedKey(MemberId, MemberId),
    /// Fewer helpers than the threshold of some leaf.
    #[error("{helpers} helpers for threshold {k}")]
    TooFewHelpers {
        /// Helpers.
        helpers: usize,
        /// Threshold.
        k: usize,
    },
    /// Repaired shares that do not verify (indices into the session's leaves).
    #[error("repaired shares of leaves {0:?} do not verify")]
    BadLeaves(Vec<usize>),
    /// Sharing-layer error.
    #[error(transparent)]
    Shamir(#[from] ShamirError),
}

/// Helper → helper: the addends `δ_ij` for every leaf, sealed to `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaMessage {
    /// Session digest.
    pub context: [u8; 32],
    /// Sending helper.
    pub from: MemberId,
    /// Receiving helper.
    pub to: MemberId,
    /// Sealed vector of scalars, one per leaf.
    pub sealed: Sealed,
}

/// Helper → target: the sums `σ_j` for every leaf, sealed to the target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigmaMessage {
    /// Session digest.
    pub context: [u8; 32],
    /// Sending helper.
    pub from: MemberId,
    /// Sealed vector of scalars, one per leaf.
    pub sealed: Sealed,
}

impl RepairSession {
    /// Builds a session, sorting helpers by member id and checking it.
    pub fn new(
        session_id: [u8; 32],
        epoch: u64,
        lost: MemberId,
        target: Participant,
        mut helpers: Vec<Participant>,
        leaves: Vec<u64>,
    ) -> Result<Self, RepairError> {
        helpers.sort_by_key(|p| p.member);
        let s = RepairSession {
            session_id,
            epoch,
            lost,
            target,
            helpers,
            leaves,
        };
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> Result<(), RepairError> {
        if self.helpers.is_empty() || self.helpers.len() > MAX_THRESHOLD {
            return Err(RepairError::InvalidSession("helper count out of range"));
        }
        if !self.helpers.windows(2).all(|w| w[0].member < w[1].member) {
            return Err(RepairError::InvalidSession(
                "helpers not sorted or duplicated",
            ));
        }
        if self.helpers.iter().any(|h| h.member == self.target.member) {
            return Err(RepairError::InvalidSession("target is a helper"));
        }
        if self.leaves.is_empty() || self.leaves.len() > MAX_LEAVES {
            return Err(RepairError::InvalidSession("leaf count out of range"));
        }
        Ok(())
    }

    /// Checks the helper set as a helper must before it sends anything: at least `k` helpers
    /// (with fewer, `λ_i(x_t)·s_i` reveals more of a share; with one, it is the share), all
    /// of them in `holders` (the members that hold every leaf of the session), and no X25519
    /// key used twice among the helpers and the target (the key's owner would open the
    /// addends sent to both and learn `λ_i·s_i`).
    pub fn check_helpers(&self, holders: &[MemberId], k: usize) -> Result<(), RepairError> {
        self.check()?;
        if self.helpers.len() < k || k == 0 {
            return Err(RepairError::TooFewHelpers {
                helpers: self.helpers.len(),
                k,
            });
        }
        if let Some(p) = self.helpers.iter().find(|p| !holders.contains(&p.member)) {
            return Err(RepairError::NotAHolder(p.member));
        }
        let mut keys = std::collections::BTreeMap::new();
        keys.insert(self.target.x25519, self.target.member);
        for p in &self.helpers {
            if let Some(other) = keys.insert(p.x25519, p.member) {
                return Err(RepairError::SharedKey(other, p.member));
            }
        }
        Ok(())
    }

    /// The helpers' member ids, in order.
    pub fn helper_ids(&self) -> Vec<MemberId> {
        self.helpers.iter().map(|p| p.member).collect()
    }

    /// Digest binding the whole session.
    pub fn context(&self) -> [u8; 32] {
        let mut helpers = Vec::with_capacity(self.helpers.len() * 64);
        for p in &self.helpers {
            helpers.extend_from_slice(p.member.as_bytes());
            helpers.extend_from_slice(&p.x25519);
        }
        let leaves: Vec<u8> = self.leaves.iter().flat_map(|l| l.to_le_bytes()).collect();
        hash32(
            CONTEXT,
            &[],
            &[0; 16],
            &[
                &self.session_id,
                &self.epoch.to_le_bytes(),
                self.lost.as_bytes(),
                self.target.member.as_bytes(),
                &self.target.x25519,
                &helpers,
                &leaves,
            ],
        )
    }

    fn helper(&self, m: &MemberId) -> Result<&Participant, RepairError> {
        self.helpers
            .iter()
            .find(|p| p.member == *m)
            .ok_or(RepairError::NotAHelper(*m))
    }
}

fn ad(label: &[u8], context: &[u8; 32], from: &MemberId, to: &MemberId) -> Vec<u8> {
    let mut v = Vec::with_capacity(label.len() + 96);
    v.extend_from_slice(label);
    v.extend_from_slice(context);
    v.extend_from_slice(from.as_bytes());
    v.extend_from_slice(to.as_bytes());
    v
}

fn encode(values: &[Scalar]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(32 * values.len()));
    for v in values {
        out.extend_from_slice(&v.to_bytes());
    }
    out
}

pub(crate) fn decode_scalars(
    bytes: &[u8],
    n: usize,
    from: MemberId,
) -> Result<Zeroizing<Vec<Scalar>>, RepairError> {
    if bytes.len() != 32 * n {
        return Err(RepairError::Malformed(from));
    }
    let mut out = Zeroizing::new(Vec::with_capacity(n));
    for chunk in bytes.chunks_exact(32) {
        let mut b = Zeroizing::new([0u8; 32]);
        b.copy_from_slice(chunk);
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(*b))
            .ok_or(RepairError::Malformed(from))?;
        out.push(s);
    }
    Ok(out)
}

fn check_key(p: &Participant, key: &StaticSecret) -> Result<(), RepairError> {
    if PublicKey::from(key).to_bytes() == p.x25519 {
        Ok(())
    } else {
        Err(RepairError::KeyMismatch(p.member))
    }
}

/// Step 1 (each helper): from its `shares` (one per session leaf, in order), the sealed addend
/// vectors for every helper, itself included (in helper order). `holders` are the members
/// that hold every leaf of the session and `k` the leaves' threshold: a helper set that
/// [`RepairSession::check_helpers`] refuses gets nothing.
pub fn helper_deltas<R: RngCore + CryptoRng>(
    session: &RepairSession,
    holders: &[MemberId],
    k: usize,
    me: &MemberId,
    my_key: &StaticSecret,
    shares: &[Share],
    rng: &mut R,
) -> Result<Vec<DeltaMessage>, RepairError> {
    session.check_helpers(holders, k)?;
    check_key(session.helper(me)?, my_key)?;
    let n = session.leaves.len();
    if shares.len() != n {
        return Err(RepairError::WrongCount {
            expected: n,
            got: shares.len(),
        });
    }
    if let Some(s) = shares.iter().find(|s| s.holder != *me) {
        return Err(RepairError::WrongShare {
            share: s.holder,
            member: *me,
        });
    }
    let ids = session.helper_ids();
    let pos = ids
        .iter()
        .position(|m| m == me)
        .ok_or(RepairError::NotAHelper(*me))?;
    let lambda = shamir::lagrange_coefficients(&ids, Some(&session.target.member))?[pos];
    let h = ids.len();
    // columns[j][l] = δ_{me, j} for leaf l; the last helper's addend closes the sum.
    let mut columns: Vec<Zeroizing<Vec<Scalar>>> = (0..h)
        .map(|_| Zeroizing::new(Vec::with_capacity(n)))
        .collect();
    for share in shares {
        let mut rest = Zeroizing::new(lambda * share.value());
        for col in columns.iter_mut().take(h - 1) {
            let d = Scalar::random(rng);
            *rest -= d;
            col.push(d);
        }
        columns[h - 1].push(*rest);
    }
    let context = session.context();
    let mut out = Vec::with_capacity(h);
    for (peer, col) in session.helpers.iter().zip(&columns) {
        let sealed = seal::seal(
            my_key,
            &PublicKey::from(peer.x25519),
            &ad(AD_DELTA, &context, me, &peer.member),
            &encode(col),
            rng,
        )
        .map_err(|error| RepairError::Seal {
            sender: peer.member,
            error,
        })?;
        out.push(DeltaMessage {
            context,
            from: *me,
            to: peer.member,
            sealed,
        });
    }
    Ok(out)
}

/// Opens one sealed vector (of `session.leaves.len()` scalars) from every helper, addressed to
/// `me` under the associated-data `label`, and sums them leaf by leaf. Each helper must send
/// exactly one; a duplicate or a missing helper is an error naming it.
fn sum_from_helpers<'a>(
    session: &RepairSession,
    my_key: &StaticSecret,
    me: &MemberId,
    label: &[u8],
    messages: impl Iterator<Item = (MemberId, &'a Sealed)>,
) -> Result<Zeroizing<Vec<Scalar>>, RepairError> {
    let context = session.context();
    let n = session.leaves.len();
    let mut seen = std::collections::BTreeSet::new();
    let mut sum = Zeroizing::new(vec![Scalar::ZERO; n]);
    for (from, sealed) in messages {
        let sender = session.helper(&from)?;
        if !seen.insert(from) {
            return Err(RepairError::Messages(from));
        }
        let body = seal::open(
            my_key,
            &PublicKey::from(sender.x25519),
            &ad(label, &context, &from, me),
            sealed,
        )
        .map_err(|error| RepairError::Seal {
            sender: from,
            error,
        })?;
        let values = decode_scalars(&body, n, from)?;
        for (acc, v) in sum.iter_mut().zip(values.iter()) {
            *acc += v;
        }
    }
    if let Some(missing) = session.helpers.iter().find(|p| !seen.contains(&p.member)) {
        return Err(RepairError::Messages(missing.member));
    }
    Ok(sum)
}

/// Step 2 (each helper): given the k delta messages addressed to it (one from every helper,
/// its own included), the sealed sum vector for the target.
pub fn helper_sigma<R: RngCore + CryptoRng>(
    session: &RepairSession,
    me: &MemberId,
    my_key: &StaticSecret,
    deltas: &[DeltaMessage],
    rng: &mut R,
) -> Result<SigmaMessage, RepairError> {
    session.check()?;
    check_key(session.helper(me)?, my_key)?;
    let context = session.context();
    for msg in deltas {
        if msg.context != context || msg.to != *me {
            return Err(RepairError::WrongSession(msg.from));
        }
    }
    let sum = sum_from_helpers(
        session,
        my_key,
        me,
        AD_DELTA,
        deltas.iter().map(|m| (m.from, &m.sealed)),
    )?;
    let sealed = seal::seal(
        my_key,
        &PublicKey::from(session.target.x25519),
        &ad(AD_SIGMA, &context, me, &session.target.member),
        &encode(&sum),
        rng,
    )
    .map_err(|error| RepairError::Seal { sender: *me, error })?;
    Ok(SigmaMessage {
        context,
        from: *me,
        sealed,
    })
}

/// Step 3 (target): sums the k sigma messages into its new shares (one per session leaf, in
/// order) and verifies them against `commitments` (one per leaf, each of threshold `k`, with
/// `k <=` helpers) in one batch.
pub fn target_finish<R: RngCore + CryptoRng>(
    session: &RepairSession,
    my_key: &StaticSecret,
    sigmas: &[SigmaMessage],
    commitments: &[Commitment],
    k: usize,
    rng: &mut R,
) -> Result<Vec<Share>, RepairError> {
    session.check()?;
    check_key(&session.target, my_key)?;
    let n = session.leaves.len();
    if commitments.len() != n {
        return Err(RepairError::WrongCount {
            expected: n,
            got: commitments.len(),
        });
    }
    if k > session.helpers.len() {
        return Err(RepairError::TooFewHelpers {
            helpers: session.helpers.len(),
            k,
        });
    }
    let context = session.context();
    let me = session.target.member;
    for msg in sigmas {
        if msg.context != context {
            return Err(RepairError::WrongSession(msg.from));
        }
    }
    let sum = sum_from_helpers(
        session,
        my_key,
        &me,
        AD_SIGMA,
        sigmas.iter().map(|m| (m.from, &m.sealed)),
    )?;
    let shares: Vec<Share> = sum.iter().map(|v| Share::from_scalar(me, *v)).collect();
    let items: Vec<(&Share, &Commitment)> = shares.iter().zip(commitments).collect();
    match shamir::verify_batch(&items, k, rng) {
        Ok(()) => Ok(shares),
        Err(ShamirError::BadShares { indices }) => Err(RepairError::BadLeaves(indices)),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests;
