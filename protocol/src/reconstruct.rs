//! MPC reconstruction of one leaf secret to one recipient (`docs/sharing.md`, `reconstruct`).
//! A quorum of k holders each send the recipient a masked contribution sealed to it: only the
//! recipient learns the secret, no share is ever on the wire, and a wrong contribution names its
//! sender (a culprit) or excludes it together with one peer (a dispute), so every retry drops at
//! least one faulty holder.
//!
//! Each holder `i` of a quorum `Q` (exactly k holders) sends the recipient
//! `c_i = λ_i·s_i + Σ_{j∈Q, j≠i} σ_ij·m_ij`, where `λ_i` is its Lagrange coefficient at 0 over `Q`,
//! `m_ij = m_ji` is a pairwise mask (a domain-separated hash of the session context keyed by the
//! pair's static Diffie–Hellman point `D_ij = s_i·P_j` on the Edwards curve,
//! `seal::pairwise_point`) and `σ_ij = +1` if `i < j` else `−1`, so the masks cancel:
//! `Σ c_i = Σ λ_i·s_i = s`. The context is a digest of the session (session id, epoch, leaf,
//! recipient and quorum with their X25519 keys), so masks are fresh per session and per quorum.
//! `c_i` is sealed to the recipient under an ephemeral key only (`seal::seal_ephemeral`), with
//! the context, sender and recipient as associated data; the header (context, sender,
//! recipient), the mask commitments and the box are signed with the sender's Ed25519 identity.
//! No share is ever on the wire; the recipient sees a fresh additive sharing of `s`, which
//! reveals nothing beyond `s`.
//!
//! **Attribution.** Each contribution carries, in clear, `M_ij = m_ij·G` for every peer. With the
//! public share point `S_i = f(x_i)·G` from the Feldman commitment, the recipient checks
//! (1) `c_i·G = λ_i·S_i + Σ σ_ij·M_ij` for each `i` — an honest holder always passes, so a
//! failure names `i` (a *culprit*); and (2) `M_ij` (claimed by `i`) `= M_ji` (claimed by `j`) —
//! honest pairs always agree. If both hold for everyone, the mask terms cancel in the sum and
//! `(Σ c_i)·G = Σ λ_i·S_i = C_0`, so the result is exactly the secret. A pair that disagrees on
//! `M_ij` is a *dispute*: one of the two lies. Seeing `M_ij` reveals nothing about `m_ij`
//! (discrete log). Masks change with the quorum (it is in the context), so contributions to two
//! attempts cannot be subtracted to expose `λ_i·s_i`.
//!
//! **Blame** ([`blame`]): both kinds of fault are provable to anyone, so the ledger convicts
//! the faulty member alone. A culprit's signed contribution, with the recipient's reveal of its
//! box's ephemeral Diffie–Hellman output (`seal::reveal_ephemeral`), lets anyone re-run check
//! (1). A dispute is settled by the honest one of the two revealing `D_ij` with a
//! Chaum–Pedersen proof (`seal::reveal_pairwise`): anyone recomputes `m_ij·G` and convicts
//! whichever signed claim differs. An honest member's signed contribution always passes (1) and
//! its claims always equal the true `m_ij·G`, so it can never be convicted.
//!
//! **Quorum checks.** The masks hide `λ_i·s_i` only from someone who lacks a pairwise secret
//! of `i`, so before it contributes a holder checks the quorum ([`Session::check_leaf`]):
//! exactly `k` members with `k ≥ 2` (alone, `λ_i = 1` and no mask: the share itself would
//! leave), every member one of the leaf's holders (no identities made up to pad the quorum;
//! a recipient that holds the leaf may be a member, under its own key: it learns the seed
//! anyway, and its pair masks expose at most the others' shares of this one leaf), and no
//! X25519 key twice among the quorum and the recipient otherwise (whoever holds a repeated key
//! strips the masks between its two identities).

use std::collections::{BTreeMap, BTreeSet};

use curve25519_dalek::constants::{RISTRETTO_BASEPOINT_POINT, RISTRETTO_BASEPOINT_TABLE};
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::hash::{hash32, Domain};
use crate::member::MemberId;
use crate::seal::{self, SealError, Sealed};
use crate::shamir::{self, Commitment, LeafSecret, ShamirError, Share, MAX_THRESHOLD};

pub mod blame;
mod mask;
pub use mask::mask_disputes;
use mask::{
    disagreeing_pairs, mask, mask_index, sign_of, true_mask_commitment, true_mask_commitment_with,
};

const CONTEXT: Domain = Domain::new("seedfed-recon");
const SIGNED: Domain = Domain::new("seedfed-recon-sg");
const AD_LABEL: &[u8] = b"seedfed-recon-ad/v1";

/// A member taking part: its identity and its X25519 public key (from its admission record).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// Identity.
    pub member: MemberId,
    /// X25519 public key bytes.
    pub x25519: [u8; 32],
}

/// One reconstruction attempt: which leaf, to whom, from which quorum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Unique id of the request (e.g. the ledger's sign-request id).
    pub session_id: [u8; 32],
    /// Epoch.
    pub epoch: u64,
    /// Leaf index.
    pub leaf: u64,
    /// Who learns the secret.
    pub recipient: Participant,
    /// The k holders, sorted by member id, distinct.
    pub quorum: Vec<Participant>,
}

/// Errors of reconstruction. Never contain secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconstructError {
    /// The quorum is empty, too large, unsorted or has duplicates.
    #[error("invalid quorum: {0}")]
    InvalidQuorum(&'static str),
    /// The quorum size differs from the commitment's threshold.
    #[error("quorum of {quorum} for a {k}-threshold commitment")]
    QuorumSize {
        /// Quorum size.
        quorum: usize,
        /// Threshold of the commitment.
        k: usize,
    },
    /// The member is not in the quorum.
    #[error("member {0:?} is not in the quorum")]
    NotInQuorum(MemberId),
    /// The leaf's threshold is below 2: one contribution would be the share itself.
    #[error("threshold {0} is below 2: a contribution would be the share itself")]
    ThresholdTooLow(usize),
    /// A quorum member is not one of the leaf's holders.
    #[error("quorum member {0:?} is not a holder of the leaf")]
    NotAHolder(MemberId),
    /// Two participants (two quorum members, or a quorum member and the recipient) share one
    /// X25519 key: whoever holds it would strip both of their masks.
    #[error("{0:?} and {1:?} share an X25519 key")]
    SharedKey(MemberId, MemberId),
    /// Our secret key does not match the key the session lists for us.
    #[error("the X25519 key of {0:?} does not match the session")]
    KeyMismatch(MemberId),
    /// The share belongs to another member.
    #[error("share belongs to {share:?}, not {member:?}")]
    WrongShare {
        /// The share's holder.
        share: MemberId,
        /// The contributing member.
        member: MemberId,
    },
    /// A contribution's header names another session, leaf, epoch, quorum or recipient.
    #[error("contribution from {0:?} is for another session")]
    WrongSession(MemberId),
    /// A contribution did not decrypt/authenticate under the session context.
    #[error("contribution from {sender:?} rejected: {error}")]
    Seal {
        /// Claimed sender.
        sender: MemberId,
        /// Why.
        error: SealError,
    },
    /// A contribution's signature does not verify under its claimed sender's identity.
    #[error("contribution from {0:?} is not signed by it")]
    BadSignature(MemberId),
    /// There is no dispute to answer: the peer's signed claim about our pairwise mask is
    /// right, or our own is wrong.
    #[error("no provable dispute with {0:?}")]
    NoDispute(MemberId),
    /// A sender contributed twice.
    #[error("two contributions from {0:?}")]
    Duplicate(MemberId),
    /// Some quorum members have not contributed.
    #[error("missing contributions from {0:?}")]
    Missing(Vec<MemberId>),
    /// Faulty contributions were found; retry without [`FaultReport::excluded`].
    #[error("faulty contributions: culprits {:?}, disputed pairs {:?}", .0.culprits, .0.disputes)]
    Faulty(FaultReport),
    /// Sharing-layer error.
    #[error(transparent)]
    Shamir(#[from] ShamirError),
}

/// Who was caught. `culprits` provably misbehaved (their own contribution contradicts the
/// Feldman commitment, or is malformed); each dispute has at least one faulty member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultReport {
    /// Members whose contribution is inconsistent on its own.
    pub culprits: Vec<MemberId>,
    /// Pairs that disagree on their shared mask commitment.
    pub disputes: Vec<(MemberId, MemberId)>,
}

impl FaultReport {
    /// Everyone to leave out of the next quorum.
    pub fn excluded(&self) -> BTreeSet<MemberId> {
        let mut out: BTreeSet<MemberId> = self.culprits.iter().copied().collect();
        for (a, b) in &self.disputes {
            out.insert(*a);
            out.insert(*b);
        }
        out
    }
}

/// The message a holder sends to the recipient. The header and the mask commitments are in
/// clear (for routing, an early rejection, and blame without opening the box); the body `c_i`
/// is sealed with the header as associated data. The sender signs all of it, so the recipient
/// can show it to anyone ([`blame`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    /// Digest of the session (id, epoch, leaf, recipient, quorum).
    pub context: [u8; 32],
    /// Sender.
    pub sender: MemberId,
    /// Recipient.
    pub recipient: MemberId,
    /// `M_ij = m_ij·G` (compressed Ristretto) for each other quorum member, in quorum order.
    pub masks: Vec<[u8; 32]>,
    /// `seal_ephemeral` box of `c_i` (32 bytes) to the recipient.
    pub sealed: Sealed,
    /// The sender's Ed25519 signature over [`Contribution::signed_message`].
    pub signature: Vec<u8>,
}

impl Contribution {
    /// What the sender signs: the header, the mask commitments and the box.
    pub fn signed_message(&self) -> [u8; 32] {
        hash32(
            SIGNED,
            &[],
            &[0; 16],
            &[
                &self.context,
                self.sender.as_bytes(),
                self.recipient.as_bytes(),
                &self.masks.concat(),
                &self.sealed.ephemeral,
                &self.sealed.ciphertext,
            ],
        )
    }

    /// Checks the sender's signature (strict Ed25519).
    pub fn verify_signature(&self) -> Result<(), ReconstructError> {
        let bad = || ReconstructError::BadSignature(self.sender);
        let key = VerifyingKey::from_bytes(self.sender.as_bytes()).map_err(|_| bad())?;
        let sig = Signature::from_slice(&self.signature).map_err(|_| bad())?;
        key.verify_strict(&self.signed_message(), &sig)
            .map_err(|_| bad())
    }

    /// The claimed `M_ij`, in the order of `session`'s quorum without the sender; `None` if
    /// there are not `k − 1` of them or one is not a point.
    fn mask_points(&self, session: &Session) -> Option<Vec<RistrettoPoint>> {
        if self.masks.len() + 1 != session.quorum.len() {
            return None;
        }
        self.masks
            .iter()
            .map(|m| CompressedRistretto(*m).decompress())
            .collect()
    }

    /// The header checks every party runs before anything else: the session's context and
    /// recipient, a sender of the quorum (its position), and the sender's signature.
    fn check_header(&self, session: &Session) -> Result<usize, ReconstructError> {
        if self.context != session.context() || self.recipient != session.recipient.member {
            return Err(ReconstructError::WrongSession(self.sender));
        }
        let pos = session.position(&self.sender)?;
        self.verify_signature()?;
        Ok(pos)
    }
}

/// A holder's keys, to contribute: its identity, its X25519 secret and its Ed25519 signing key
/// (whose public key is the identity). `Debug` prints only the member.
#[derive(Clone, Copy)]
pub struct HolderKeys<'a> {
    /// The holder.
    pub member: MemberId,
    /// Its X25519 secret (the key the ledger lists for it).
    x25519: &'a StaticSecret,
    /// `PublicKey::from(x25519)`, derived once ([`HolderKeys::new`], or kept by the agent):
    /// deriving it is a base-point multiplication, which each contribution used to pay again.
    x25519_public: [u8; 32],
    /// Its Ed25519 identity key.
    pub identity: &'a SigningKey,
}

impl<'a> HolderKeys<'a> {
    /// The keys of `member`, its X25519 public key derived from `x25519`.
    pub fn new(member: MemberId, x25519: &'a StaticSecret, identity: &'a SigningKey) -> Self {
        Self::with_public(member, x25519, PublicKey::from(x25519).to_bytes(), identity)
    }

    /// [`HolderKeys::new`] with the public key derived earlier: `x25519_public` must be
    /// `PublicKey::from(x25519)` (the agent derives it once, when it is made).
    pub(crate) fn with_public(
        member: MemberId,
        x25519: &'a StaticSecret,
        x25519_public: [u8; 32],
        identity: &'a SigningKey,
    ) -> Self {
        HolderKeys {
            member,
            x25519,
            x25519_public,
            identity,
        }
    }
}

impl std::fmt::Debug for HolderKeys<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HolderKeys({:?}, [redacted])", self.member)
    }
}

/// A deliberately wrong contribution, for fault-injection tests (`agent::Fault`). Every variant
/// but `None` is caught and convicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ContributionFault {
    /// Honest.
    #[default]
    None,
    /// `c_i + 1`: check (1) fails, a culprit.
    WrongValue,
    /// Every `M_ij` shifted by `G` and `c_i` adjusted so that check (1) still holds: a dispute
    /// with every other quorum member.
    DisputeEveryone,
}

/// A contribution the recipient has opened and authenticated. Secret; Debug is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Opened {
    #[zeroize(skip)]
    sender: MemberId,
    value: Scalar,
    #[zeroize(skip)]
    masks: Vec<RistrettoPoint>,
}

impl Opened {
    /// The authenticated sender.
    pub fn sender(&self) -> MemberId {
        self.sender
    }
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Opened({:?}, [redacted])", self.sender)
    }
}

impl Session {
    /// Builds a session, sorting the quorum by member id and checking it.
    pub fn new(
        session_id: [u8; 32],
        epoch: u64,
        leaf: u64,
        recipient: Participant,
        mut quorum: Vec<Participant>,
    ) -> Result<Self, ReconstructError> {
        quorum.sort_by_key(|p| p.member);
        let s = Session {
            session_id,
            epoch,
            leaf,
            recipient,
            quorum,
        };
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> Result<(), ReconstructError> {
        if self.quorum.is_empty() || self.quorum.len() > MAX_THRESHOLD {
            return Err(ReconstructError::InvalidQuorum("size out of range"));
        }
        if !self.quorum.windows(2).all(|w| w[0].member < w[1].member) {
            return Err(ReconstructError::InvalidQuorum(
                "not sorted by member or duplicate member",
            ));
        }
        Ok(())
    }

    /// Checks the quorum against the leaf it reconstructs, as a holder must before it
    /// contributes: exactly `k` members with `k >= 2` (a lone contribution is `λ·s = s`,
    /// the share itself), all of them `holders` of the leaf (so the recipient cannot pad the
    /// quorum with identities of its own: only a recipient that holds the leaf is in it, once,
    /// under its own key), and no X25519 key used twice among the quorum and the recipient
    /// (the key's owner would remove the masks between the two and learn `λ_i·s_i`).
    pub fn check_leaf(&self, holders: &[MemberId], k: usize) -> Result<(), ReconstructError> {
        self.check()?;
        if k < 2 {
            return Err(ReconstructError::ThresholdTooLow(k));
        }
        if self.quorum.len() != k {
            return Err(ReconstructError::QuorumSize {
                quorum: self.quorum.len(),
                k,
            });
        }
        if let Some(p) = self.quorum.iter().find(|p| !holders.contains(&p.member)) {
            return Err(ReconstructError::NotAHolder(p.member));
        }
        let mut keys: BTreeMap<[u8; 32], MemberId> = BTreeMap::new();
        keys.insert(self.recipient.x25519, self.recipient.member);
        for p in &self.quorum {
            if p.member == self.recipient.member {
                // A recipient that holds the leaf may contribute its own share: it learns the
                // leaf's seed anyway, and what it could strip from the others' contributions
                // (its pair masks) reveals at most their shares of this one leaf, which
                // nothing else uses. Only under its own key.
                if p.x25519 != self.recipient.x25519 {
                    return Err(ReconstructError::KeyMismatch(p.member));
                }
                continue;
            }
            if let Some(other) = keys.insert(p.x25519, p.member) {
                return Err(ReconstructError::SharedKey(other, p.member));
            }
        }
        Ok(())
    }

    /// The quorum's member ids, in order.
    pub fn members(&self) -> Vec<MemberId> {
        self.quorum.iter().map(|p| p.member).collect()
    }

    /// Digest binding everything a contribution depends on.
    pub fn context(&self) -> [u8; 32] {
        let mut quorum = Vec::with_capacity(self.quorum.len() * 64);
        for p in &self.quorum {
            quorum.extend_from_slice(p.member.as_bytes());
            quorum.extend_from_slice(&p.x25519);
        }
        hash32(
            CONTEXT,
            &[],
            &[0; 16],
            &[
                &self.session_id,
                &self.epoch.to_le_bytes(),
                &self.leaf.to_le_bytes(),
                self.recipient.member.as_bytes(),
                &self.recipient.x25519,
                &quorum,
            ],
        )
    }

    fn position(&self, member: &MemberId) -> Result<usize, ReconstructError> {
        self.quorum
            .iter()
            .position(|p| p.member == *member)
            .ok_or(ReconstructError::NotInQuorum(*member))
    }
}

fn associated_data(context: &[u8; 32], sender: &MemberId, recipient: &MemberId) -> Vec<u8> {
    let mut ad = Vec::with_capacity(AD_LABEL.len() + 96);
    ad.extend_from_slice(AD_LABEL);
    ad.extend_from_slice(context);
    ad.extend_from_slice(sender.as_bytes());
    ad.extend_from_slice(recipient.as_bytes());
    ad
}

/// Holder side: computes, seals and signs this holder's contribution for `session`, a leaf
/// whose `holders` the ledger names and whose commitment has threshold `k`. Refuses a quorum
/// that [`Session::check_leaf`] refuses.
pub fn contribute<R: RngCore + CryptoRng>(
    session: &Session,
    holders: &[MemberId],
    k: usize,
    keys: HolderKeys<'_>,
    share: &Share,
    rng: &mut R,
) -> Result<Contribution, ReconstructError> {
    contribute_cached(
        session,
        holders,
        k,
        keys,
        share,
        ContributionFault::None,
        None,
        rng,
    )
}

/// A holder's static Diffie–Hellman points with its peers (`seal::pairwise_point`), by the
/// peer's X25519 key: the same for every session, so a holder contributing to many leaves
/// computes each once. Secret (wiped on drop).
pub type PairPoints = std::collections::BTreeMap<[u8; 32], Zeroizing<[u8; 32]>>;

/// [`contribute`], with the pairs' points taken from `pairs` where it holds them (the caller
/// computed them with `seal::pairwise_point` for `keys.x25519`), and made wrong as `fault`
/// says (fault-injection tests; the node passes `ContributionFault::None`).
#[allow(clippy::too_many_arguments)] // contribute's, plus the cache and the fault
pub fn contribute_cached<R: RngCore + CryptoRng>(
    session: &Session,
    holders: &[MemberId],
    k: usize,
    keys: HolderKeys<'_>,
    share: &Share,
    fault: ContributionFault,
    pairs: Option<&PairPoints>,
    rng: &mut R,
) -> Result<Contribution, ReconstructError> {
    session.check_leaf(holders, k)?;
    let me = keys.member;
    if share.holder != me {
        return Err(ReconstructError::WrongShare {
            share: share.holder,
            member: me,
        });
    }
    let pos = session.position(&me)?;
    if keys.x25519_public != session.quorum[pos].x25519
        || keys.identity.verifying_key().to_bytes() != *me.as_bytes()
    {
        return Err(ReconstructError::KeyMismatch(me));
    }
    let context = session.context();
    let lambdas = shamir::lagrange_coefficients(&session.members(), None)?;
    let mut value = Zeroizing::new(lambdas[pos] * share.value());
    let mut masks = Vec::with_capacity(session.quorum.len() - 1);
    for peer in &session.quorum {
        if peer.member == me {
            continue;
        }
        let (mut commitment, m) =
            true_mask_commitment_with(keys.x25519, &me, peer, &context, pairs)?;
        let sign = sign_of(&me, &peer.member);
        *value += sign * *m;
        if fault == ContributionFault::DisputeEveryone {
            // M' = M + G and c' = c + σ: check (1) still holds, no peer agrees.
            let shifted = CompressedRistretto(commitment)
                .decompress()
                .map(|p| p + RISTRETTO_BASEPOINT_POINT)
                .ok_or(ReconstructError::InvalidQuorum("mask commitment"))?;
            commitment = shifted.compress().to_bytes();
            *value += sign;
        }
        masks.push(commitment);
    }
    if fault == ContributionFault::WrongValue {
        *value += Scalar::ONE;
    }
    let ad = associated_data(&context, &me, &session.recipient.member);
    let body = Zeroizing::new(value.to_bytes());
    let sealed = seal::seal_ephemeral(&PublicKey::from(session.recipient.x25519), &ad, &*body, rng)
        .map_err(|e| ReconstructError::Seal {
            sender: me,
            error: e,
        })?;
    let mut contribution = Contribution {
        context,
        sender: me,
        recipient: session.recipient.member,
        masks,
        sealed,
        signature: Vec::new(),
    };
    contribution.signature = keys
        .identity
        .sign(&contribution.signed_message())
        .to_bytes()
        .to_vec();
    Ok(contribution)
}

/// Recipient side, per message: checks the header against `session` and the sender's
/// signature, opens the box and parses it. A contribution for another
/// session/leaf/epoch/quorum/recipient, or not signed by its sender, is an error (drop it). A
/// signed contribution that is malformed (mask commitments, ephemeral key, box, body) is
/// reported as a culprit: it is provable ([`blame::blame_contribution`]).
pub fn open_contribution(
    session: &Session,
    my_key: &StaticSecret,
    contribution: &Contribution,
) -> Result<Opened, ReconstructError> {
    session.check()?;
    let sender = contribution.sender;
    contribution.check_header(session)?;
    let culprit = || {
        ReconstructError::Faulty(FaultReport {
            culprits: vec![sender],
            disputes: vec![],
        })
    };
    let masks = contribution.mask_points(session).ok_or_else(culprit)?;
    if !seal::ephemeral_is_valid(&contribution.sealed) {
        return Err(culprit());
    }
    let ad = associated_data(&contribution.context, &sender, &session.recipient.member);
    // Opened as sealed to the key the session lists for us; it opens only if that is our key.
    // If it does not open, our key is checked (once, not for every box) before the sender is
    // blamed.
    let body =
        seal::open_ephemeral_to(my_key, &session.recipient.x25519, &ad, &contribution.sealed)
            .map_err(|_| {
                if PublicKey::from(my_key).to_bytes() != session.recipient.x25519 {
                    ReconstructError::KeyMismatch(session.recipient.member)
                } else {
                    culprit()
                }
            })?;
    let value = parse_value(&body).ok_or_else(culprit)?;
    Ok(Opened {
        sender,
        value,
        masks,
    })
}

/// `c_i` from a box's plaintext: exactly one canonical scalar.
fn parse_value(body: &[u8]) -> Option<Scalar> {
    let mut head = Zeroizing::new([0u8; 32]);
    if body.len() != 32 {
        return None;
    }
    head.copy_from_slice(body);
    Option::<Scalar>::from(Scalar::from_canonical_bytes(*head))
}

/// Check (1) for the member at `pos`: `c_i·G == λ_i·S_i + Σ σ_ij·M_ij`.
fn consistent(
    members: &[MemberId],
    lambdas: &[Scalar],
    pos: usize,
    commitment: &Commitment,
    value: &Scalar,
    masks: &[RistrettoPoint],
) -> Result<bool, ReconstructError> {
    let me = members[pos];
    let x = shamir::x_coordinate(&me)?;
    let k = members.len();
    let mut scalars: Vec<Scalar> = Vec::with_capacity(2 * k + 1);
    let mut points: Vec<RistrettoPoint> = Vec::with_capacity(2 * k + 1);
    // λ_i·S_i = Σ_j λ_i x^j C_j
    let mut coeff = lambdas[pos];
    for c in commitment.points() {
        scalars.push(coeff);
        points.push(*c);
        coeff *= x;
    }
    let peers = members.iter().filter(|m| **m != me);
    for (peer, point) in peers.zip(masks) {
        scalars.push(sign_of(&me, peer));
        points.push(*point);
    }
    // `c_i` is secret-derived (the k values sum to the secret): constant-time, never in the
    // variable-time multiscalar multiplication, whose scalars are all public.
    let value_point = value * RISTRETTO_BASEPOINT_TABLE;
    Ok((RistrettoPoint::vartime_multiscalar_mul(scalars, points) - value_point).is_identity())
}

/// Recipient side, once all k contributions are opened: checks them against the Feldman
/// `commitment` (see the module docs), attributes faults, and returns the secret.
pub fn combine(
    session: &Session,
    commitment: &Commitment,
    opened: &[Opened],
) -> Result<LeafSecret, ReconstructError> {
    session.check()?;
    let k = session.quorum.len();
    if commitment.threshold() != k {
        return Err(ReconstructError::QuorumSize {
            quorum: k,
            k: commitment.threshold(),
        });
    }
    let members = session.members();
    let mut by_pos: BTreeMap<usize, &Opened> = BTreeMap::new();
    for o in opened {
        let pos = session.position(&o.sender)?;
        if by_pos.insert(pos, o).is_some() {
            return Err(ReconstructError::Duplicate(o.sender));
        }
    }
    if by_pos.len() != k {
        let missing = (0..k)
            .filter(|p| !by_pos.contains_key(p))
            .map(|p| members[p])
            .collect();
        return Err(ReconstructError::Missing(missing));
    }
    let lambdas = shamir::lagrange_coefficients(&members, None)?;
    let mut report = FaultReport::default();

    // (1) each contribution on its own: c_i·G == λ_i·S_i + Σ σ_ij·M_ij.
    for (pos, o) in &by_pos {
        if !consistent(&members, &lambdas, *pos, commitment, &o.value, &o.masks)? {
            report.culprits.push(members[*pos]);
        }
    }

    // (2) pairwise agreement on M_ij, among members not already caught.
    let uncaught = by_pos
        .iter()
        .filter(|(p, _)| !report.culprits.contains(&members[**p]))
        .map(|(p, o)| (*p, &o.masks[..]))
        .collect();
    report.disputes = disagreeing_pairs(&members, &uncaught);
    if !report.culprits.is_empty() || !report.disputes.is_empty() {
        return Err(ReconstructError::Faulty(report));
    }

    let mut sum = Scalar::ZERO;
    for o in by_pos.values() {
        sum += o.value;
    }
    let secret = LeafSecret::from_scalar(sum);
    sum.zeroize();
    // Implied by (1) and (2); checked anyway as a last line of defence.
    if secret.scalar() * RISTRETTO_BASEPOINT_TABLE != commitment.secret_point() {
        return Err(ReconstructError::Faulty(FaultReport {
            culprits: members,
            disputes: vec![],
        }));
    }
    Ok(secret)
}

/// The next quorum: the first `k` of `holders` (by member id) not in `excluded`.
pub fn next_quorum(
    holders: &[MemberId],
    excluded: &BTreeSet<MemberId>,
    k: usize,
) -> Result<Vec<MemberId>, ReconstructError> {
    let mut left: Vec<MemberId> = holders
        .iter()
        .filter(|m| !excluded.contains(m))
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if left.len() < k || k == 0 {
        return Err(ReconstructError::Shamir(ShamirError::NotEnoughShares {
            got: left.len(),
            need: k,
        }));
    }
    left.truncate(k);
    Ok(left)
}

#[cfg(test)]
mod tests;
