//! Pedersen DKG (frost-core 3.0 `keys::dkg`) keyed by [`MemberId`], made robust: it finishes
//! when up to `n − t` dealers are absent or provably bad.
//!
//! Every member contributes a random polynomial, so the group secret is the sum of everyone's
//! entropy and nobody knows it; each member ends with a frost `KeyPackage` (its signing share)
//! and the common `PublicKeyPackage` (verifying shares and the group key). Identifiers are
//! `Identifier::derive("seedfed-member-x/v1" ‖ member id)` for any ciphersuite ([`identifier_for`];
//! for ristretto255 this is `shamir::identifier`). The code is generic over the frost
//! ciphersuite: ristretto255 for the seed-tree root (`tprf`), Ed25519 for checkpoints
//! (`checkpoint`).
//!
//! Robust flow over a [`Ceremony`] (chain id, epoch, threshold, members with X25519 keys):
//! 1. [`Ceremony::round1`]: each member's round-1 package goes through the ledger, so everyone
//!    sees the same set. Missing by the deadline = absent; a package with a bad proof of
//!    knowledge or the wrong degree is excluded by everyone alike ([`Ceremony::valid_round1`]).
//! 2. [`Ceremony::deal`]: each dealer sends every other valid dealer its share in an
//!    [`Envelope`]: sealed to the recipient's X25519 key with an ephemeral-static key only
//!    (`seal::seal_ephemeral`) and signed by the dealer's Ed25519 identity over
//!    (session context = chain id, epoch, ciphersuite, threshold, roster; sender; recipient;
//!    ephemeral; ciphertext). Point to point.
//! 3. [`Ceremony::open`]: the recipient checks signature, decryption and the share against the
//!    dealer's round-1 commitment. On failure it files [`Ceremony::complain`]: the signed
//!    envelope plus the box's Diffie–Hellman secret with a proof (`seal::reveal_ephemeral`), so
//!    anyone can decrypt that one box and re-run the check without trusting the complainer.
//!    Revealing it exposes only that dealer's share for that recipient. A recipient that got
//!    nothing files [`Complaint::Missing`]; the dealer answers by publishing the envelope.
//! 4. [`Ceremony::qualified_set`] (deterministic, run by every validator on the ledger's data):
//!    drops absent dealers, bad round-1 packages, dealers convicted by a valid complaint and
//!    dealers that left a `Missing` complaint unanswered; false complaints are rejected and
//!    reported with their complainer.
//! 5. [`Ceremony::finish`]: frost's part2/part3 over the qualified set only. frost checks that
//!    part3 gets exactly `max_signers − 1` packages, so the member's round-1 secret is re-wrapped
//!    with `max_signers = |qualified|` and part2 is run again on the qualified packages (it is
//!    deterministic given the polynomial) before part3. Every qualified member ends with the same
//!    public key package; the group is the qualified set.
//!
//! [`run_in_memory`] is the all-honest, all-present path for simulations and tests.

use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use frost_core::keys::dkg as fdkg;
use frost_core::keys::{SecretShare, SigningShare};
use frost_core::{Ciphersuite, Identifier as FrostIdentifier};
pub use frost_ristretto255::keys::dkg::{round1, round2};
pub use frost_ristretto255::keys::{KeyPackage, PublicKeyPackage};
use frost_ristretto255::Ristretto255Sha512;
use rand_core::{CryptoRng, RngCore};
use x25519_dalek::{PublicKey, StaticSecret};

use crate::hash::{hash32, Domain};
use crate::member::MemberId;
use crate::seal::{self, SealError, Sealed};
use crate::shamir::{ShamirError, IDENTIFIER_PREFIX};

const CONTEXT: Domain = Domain::new("seedfed-dkg-ctx");
const ENVELOPE_SIG: &[u8] = b"seedfed-dkg-envelope/v1";

/// Errors of the DKG. Never contain secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DkgError {
    /// The threshold or member count is out of range.
    #[error("invalid DKG parameters: {members} members, threshold {threshold}")]
    Parameters {
        /// Members.
        members: usize,
        /// Threshold.
        threshold: u16,
    },
    /// A member appears twice.
    #[error("member {0:?} appears more than once")]
    DuplicateMember(MemberId),
    /// A package arrived from someone not taking part.
    #[error("package from unknown member")]
    UnknownMember,
    /// frost rejected a step; `culprits` are the members it blames (if any).
    #[error("DKG step failed ({message}); blamed: {culprits:?}")]
    Frost {
        /// frost's error text.
        message: String,
        /// Members frost identified as misbehaving.
        culprits: Vec<MemberId>,
    },
    /// Identifier derivation failed.
    #[error(transparent)]
    Shamir(#[from] ShamirError),
    /// An envelope is bad; the recipient should complain about `dealer`.
    #[error("envelope from {dealer:?} is bad: {reason}")]
    BadEnvelope {
        /// Its sender.
        dealer: MemberId,
        /// What was wrong.
        reason: &'static str,
    },
    /// Encryption failed (a bad recipient key).
    #[error(transparent)]
    Seal(#[from] SealError),
    /// A byte string did not decode.
    #[error("malformed {what}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
    },
    /// This member is not in the qualified set (or its round-1 package is not valid).
    #[error("member {0:?} is not qualified")]
    NotQualified(MemberId),
    /// Fewer qualified dealers than the threshold.
    #[error("{qualified} qualified dealers, threshold {threshold}")]
    TooFewQualified {
        /// Qualified dealers.
        qualified: usize,
        /// Threshold.
        threshold: u16,
    },
    /// The shares received do not match the qualified set.
    #[error("missing share from qualified dealer {0:?}")]
    MissingShare(MemberId),
}

/// The default threshold for `n` members: `⌊2n/3⌋ + 1`.
pub fn default_threshold(n: usize) -> u16 {
    u16::try_from(2 * n / 3 + 1).unwrap_or(u16::MAX)
}

/// A member's frost identifier in ciphersuite `C`: `Identifier::derive(prefix ‖ member id)`.
pub fn identifier_for<C: Ciphersuite>(member: &MemberId) -> Result<FrostIdentifier<C>, DkgError> {
    let mut input = Vec::with_capacity(IDENTIFIER_PREFIX.len() + 32);
    input.extend_from_slice(IDENTIFIER_PREFIX);
    input.extend_from_slice(member.as_bytes());
    FrostIdentifier::<C>::derive(&input)
        .map_err(|_| DkgError::Shamir(ShamirError::Identifier(*member)))
}

/// Who is behind each frost identifier.
type Names<C> = BTreeMap<FrostIdentifier<C>, MemberId>;

fn frost_error<C: Ciphersuite>(e: frost_core::Error<C>, names: &Names<C>) -> DkgError {
    DkgError::Frost {
        message: e.to_string(),
        culprits: e
            .culprits()
            .iter()
            .filter_map(|id| names.get(id).copied())
            .collect(),
    }
}

#[allow(clippy::type_complexity)]
fn by_identifier<C: Ciphersuite, T: Clone>(
    map: &BTreeMap<MemberId, T>,
) -> Result<(BTreeMap<FrostIdentifier<C>, T>, Names<C>), DkgError> {
    let mut out = BTreeMap::new();
    let mut names = BTreeMap::new();
    for (m, v) in map {
        let id = identifier_for::<C>(m)?;
        out.insert(id, v.clone());
        names.insert(id, *m);
    }
    Ok((out, names))
}

/// Round 1 for `me` among `n` members with threshold `t`: keep the secret package, broadcast
/// the package (through consensus).
pub fn part1<C: Ciphersuite, R: RngCore + CryptoRng>(
    me: &MemberId,
    n: u16,
    t: u16,
    rng: &mut R,
) -> Result<(fdkg::round1::SecretPackage<C>, fdkg::round1::Package<C>), DkgError> {
    let id = identifier_for::<C>(me)?;
    // frost's part1 fails only on bad parameters (t < 2, t > n, n < 2).
    fdkg::part1(id, n, t, rng).map_err(|_| DkgError::Parameters {
        members: n.into(),
        threshold: t,
    })
}

/// Round 2: given everyone else's round-1 packages, keep the secret package and send each
/// returned package (sealed) to the member it is keyed by.
#[allow(clippy::type_complexity)]
pub fn part2<C: Ciphersuite>(
    secret: fdkg::round1::SecretPackage<C>,
    received: &BTreeMap<MemberId, fdkg::round1::Package<C>>,
) -> Result<
    (
        fdkg::round2::SecretPackage<C>,
        BTreeMap<MemberId, fdkg::round2::Package<C>>,
    ),
    DkgError,
> {
    let (r1, names) = by_identifier(received)?;
    let (secret2, out) = fdkg::part2(secret, &r1).map_err(|e| frost_error(e, &names))?;
    let out = out
        .into_iter()
        .map(|(id, p)| {
            names
                .get(&id)
                .map(|m| (*m, p))
                .ok_or(DkgError::UnknownMember)
        })
        .collect::<Result<_, _>>()?;
    Ok((secret2, out))
}

/// Round 3: given everyone else's round-1 and round-2 packages, this member's key package and
/// the group's public key package.
pub fn part3<C: Ciphersuite>(
    secret: &fdkg::round2::SecretPackage<C>,
    round1: &BTreeMap<MemberId, fdkg::round1::Package<C>>,
    round2: &BTreeMap<MemberId, fdkg::round2::Package<C>>,
) -> Result<
    (
        frost_core::keys::KeyPackage<C>,
        frost_core::keys::PublicKeyPackage<C>,
    ),
    DkgError,
> {
    let (r1, names) = by_identifier(round1)?;
    let (r2, _) = by_identifier(round2)?;
    fdkg::part3(secret, &r1, &r2).map_err(|e| frost_error(e, &names))
}

fn check_parameters(members: &[MemberId], t: u16) -> Result<u16, DkgError> {
    let mut seen = BTreeSet::new();
    for m in members {
        if !seen.insert(*m) {
            return Err(DkgError::DuplicateMember(*m));
        }
    }
    let n = u16::try_from(members.len()).map_err(|_| DkgError::Parameters {
        members: members.len(),
        threshold: t,
    })?;
    if t < 2 || t > n {
        return Err(DkgError::Parameters {
            members: members.len(),
            threshold: t,
        });
    }
    Ok(n)
}

/// Runs the whole ristretto255 DKG among `members` (threshold `t`) in memory, every member
/// contributing its own random polynomial; returns each member's key package and the public key
/// package. All-honest path only (see the module docs).
pub fn run_in_memory<R: RngCore + CryptoRng>(
    members: &[MemberId],
    t: u16,
    rng: &mut R,
) -> Result<(BTreeMap<MemberId, KeyPackage>, PublicKeyPackage), DkgError> {
    run_in_memory_for::<Ristretto255Sha512, R>(members, t, rng)
}

/// [`run_in_memory`] for any frost ciphersuite (e.g. Ed25519 for checkpoints).
#[allow(clippy::type_complexity)]
pub fn run_in_memory_for<C: Ciphersuite, R: RngCore + CryptoRng>(
    members: &[MemberId],
    t: u16,
    rng: &mut R,
) -> Result<
    (
        BTreeMap<MemberId, frost_core::keys::KeyPackage<C>>,
        frost_core::keys::PublicKeyPackage<C>,
    ),
    DkgError,
> {
    let n = check_parameters(members, t)?;
    let mut secrets1 = BTreeMap::new();
    let mut packages1 = BTreeMap::new();
    for m in members {
        let (s, p) = part1::<C, R>(m, n, t, rng)?;
        secrets1.insert(*m, s);
        packages1.insert(*m, p);
    }
    let mut secrets2 = BTreeMap::new();
    let mut inbox2: BTreeMap<MemberId, BTreeMap<MemberId, fdkg::round2::Package<C>>> =
        BTreeMap::new();
    for (m, s) in secrets1 {
        let (s2, out) = part2(s, &others(&m, &packages1))?;
        secrets2.insert(m, s2);
        for (to, p) in out {
            inbox2.entry(to).or_default().insert(m, p);
        }
    }
    let mut keys = BTreeMap::new();
    let mut public = None;
    for (m, s2) in &secrets2 {
        let received = inbox2.remove(m).unwrap_or_default();
        let (kp, pkp) = part3(s2, &others(m, &packages1), &received)?;
        keys.insert(*m, kp);
        agree(&mut public, pkp)?;
    }
    let public = public.ok_or(DkgError::Parameters {
        members: 0,
        threshold: t,
    })?;
    Ok((keys, public))
}

fn others<T: Clone>(me: &MemberId, all: &BTreeMap<MemberId, T>) -> BTreeMap<MemberId, T> {
    all.iter()
        .filter(|(m, _)| *m != me)
        .map(|(m, p)| (*m, p.clone()))
        .collect()
}

fn agree<C: Ciphersuite>(
    public: &mut Option<frost_core::keys::PublicKeyPackage<C>>,
    pkp: frost_core::keys::PublicKeyPackage<C>,
) -> Result<(), DkgError> {
    match public {
        None => *public = Some(pkp),
        Some(p) if *p == pkp => {}
        Some(_) => {
            return Err(DkgError::Frost {
                message: "members derived different public key packages".into(),
                culprits: vec![],
            })
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Robust DKG
// ---------------------------------------------------------------------------------------------

/// One robust DKG run's public parameters. Every validator builds it identically from the
/// ledger; its [`context`](Self::context) binds every envelope to this run.
#[derive(Clone, Debug)]
pub struct Ceremony<C: Ciphersuite> {
    chain_id: [u8; 32],
    epoch: u64,
    threshold: u16,
    members: BTreeMap<MemberId, [u8; 32]>,
    context: [u8; 32],
    _suite: PhantomData<fn() -> C>,
}

/// A round-2 share in transit: sealed to the recipient, signed by the sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The dealer (its Ed25519 identity key signs).
    pub sender: MemberId,
    /// The recipient (the box is sealed to its X25519 key).
    pub recipient: MemberId,
    /// `seal::seal_ephemeral` box of the share's canonical scalar bytes.
    pub sealed: Sealed,
    /// Ed25519 signature by `sender` over [`Ceremony::envelope_message`].
    pub signature: [u8; 64],
}

/// How a [`Complaint::Bad`] proves its case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadShareProof {
    /// The envelope's ephemeral key is not a valid curve point: visible to anyone.
    InvalidEphemeral,
    /// The box's Diffie–Hellman secret, with its proof.
    Reveal(seal::RevealedSecret),
}

/// A complaint against a dealer, filed on the ledger in a transaction signed by
/// [`Complaint::complainer`] (the ledger checks that). Complaints are rare, so the size
/// difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Complaint {
    /// The recipient got an envelope that does not decrypt or whose share fails verification.
    Bad {
        /// The dealer-signed envelope.
        envelope: Envelope,
        /// What lets anyone check it.
        evidence: BadShareProof,
    },
    /// The recipient got no envelope; the dealer must publish it (an answer) or be excluded.
    Missing {
        /// Who complains.
        complainer: MemberId,
        /// Who failed to deliver.
        dealer: MemberId,
    },
}

/// Why a dealer is not in the qualified set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExclusionCause {
    /// No round-1 package on the ledger by the deadline.
    Absent,
    /// Its round-1 package has a bad proof of knowledge or the wrong number of commitments.
    BadRound1,
    /// A valid complaint by `complainer` proved its share bad.
    BadShare {
        /// The recipient that proved it.
        complainer: MemberId,
    },
    /// It did not answer `complainer`'s `Missing` complaint with a signed envelope.
    NoShare {
        /// The recipient that got nothing.
        complainer: MemberId,
    },
}

/// Why a complaint was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The complainer or dealer is not in the session (or they are the same member).
    NotMember,
    /// The envelope's signature or context does not verify: it proves nothing about the dealer.
    Unsigned,
    /// The reveal's proof does not verify (the complainer lied about the box's secret).
    BadProof,
    /// The box opens and the share verifies: a false complaint.
    ShareValid,
    /// The dealer published the envelope (the share may still be contested by `Bad`).
    Answered,
    /// A `Missing` complaint from a member without a valid round-1 package: nobody owed it a
    /// share.
    NotOwed,
}

/// A complaint that did not exclude its dealer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RejectedComplaint {
    /// Who complained (reportable for `BadProof` / `ShareValid`).
    pub complainer: MemberId,
    /// Against whom.
    pub dealer: MemberId,
    /// Why it was rejected.
    pub reason: Rejection,
}

/// The outcome of [`Ceremony::qualified_set`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Qualification {
    /// The dealers (and key holders) the DKG finishes with.
    pub qualified: BTreeSet<MemberId>,
    /// Excluded members with the first reason found.
    pub excluded: BTreeMap<MemberId, ExclusionCause>,
    /// Complaints that excluded nobody.
    pub rejected: Vec<RejectedComplaint>,
}

type Round1Map<C> = BTreeMap<MemberId, fdkg::round1::Package<C>>;

impl<C: Ciphersuite> Ceremony<C> {
    /// A session of `members` (each with its X25519 public key) with threshold `threshold` for
    /// `epoch` of chain `chain_id`.
    pub fn new(
        chain_id: [u8; 32],
        epoch: u64,
        threshold: u16,
        members: BTreeMap<MemberId, [u8; 32]>,
    ) -> Result<Self, DkgError> {
        let ids: Vec<MemberId> = members.keys().copied().collect();
        check_parameters(&ids, threshold)?;
        let mut parts: Vec<Vec<u8>> = vec![
            C::ID.as_bytes().to_vec(),
            chain_id.to_vec(),
            epoch.to_le_bytes().to_vec(),
            threshold.to_le_bytes().to_vec(),
        ];
        for (m, x) in &members {
            identifier_for::<C>(m)?;
            parts.push(m.0.to_vec());
            parts.push(x.to_vec());
        }
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let context = hash32(CONTEXT, &[], &[0; 16], &refs);
        Ok(Ceremony {
            chain_id,
            epoch,
            threshold,
            members,
            context,
            _suite: PhantomData,
        })
    }

    /// The 32-byte hash of (ciphersuite, chain id, epoch, threshold, roster).
    pub fn context(&self) -> &[u8; 32] {
        &self.context
    }

    /// The chain id.
    pub fn chain_id(&self) -> &[u8; 32] {
        &self.chain_id
    }

    /// The epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The threshold.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// The roster: member → X25519 public key.
    pub fn members(&self) -> &BTreeMap<MemberId, [u8; 32]> {
        &self.members
    }

    fn n(&self) -> u16 {
        // `new` checked that the roster fits in u16.
        u16::try_from(self.members.len()).unwrap_or(u16::MAX)
    }

    /// Round 1 for `me`: keep the secret package; publish the package on the ledger.
    pub fn round1<R: RngCore + CryptoRng>(
        &self,
        me: &MemberId,
        rng: &mut R,
    ) -> Result<(fdkg::round1::SecretPackage<C>, fdkg::round1::Package<C>), DkgError> {
        if !self.members.contains_key(me) {
            return Err(DkgError::UnknownMember);
        }
        part1::<C, R>(me, self.n(), self.threshold, rng)
    }

    /// The round-1 packages on the ledger that count: from members, with `t` commitments and a
    /// valid proof of knowledge. Everyone else is excluded (`Absent` / `BadRound1`).
    pub fn valid_round1(
        &self,
        published: &Round1Map<C>,
    ) -> (Round1Map<C>, BTreeMap<MemberId, ExclusionCause>) {
        let mut valid = BTreeMap::new();
        let mut excluded = BTreeMap::new();
        for m in self.members.keys() {
            let Some(p) = published.get(m) else {
                excluded.insert(*m, ExclusionCause::Absent);
                continue;
            };
            let ok = p.commitment().coefficients().len() == usize::from(self.threshold)
                && identifier_for::<C>(m).is_ok_and(|id| {
                    fdkg::verify_proof_of_knowledge(id, p.commitment(), p.proof_of_knowledge())
                        .is_ok()
                });
            if ok {
                valid.insert(*m, p.clone());
            } else {
                excluded.insert(*m, ExclusionCause::BadRound1);
            }
        }
        (valid, excluded)
    }

    /// The associated data of an envelope's box: context ‖ sender ‖ recipient.
    fn envelope_ad(&self, sender: &MemberId, recipient: &MemberId) -> Vec<u8> {
        let mut ad = Vec::with_capacity(96);
        ad.extend_from_slice(&self.context);
        ad.extend_from_slice(sender.as_bytes());
        ad.extend_from_slice(recipient.as_bytes());
        ad
    }

    /// The bytes an envelope's signature covers: a domain label, the session context (chain id,
    /// epoch, …), sender, recipient, ephemeral key, ciphertext length and ciphertext.
    pub fn envelope_message(
        &self,
        sender: &MemberId,
        recipient: &MemberId,
        sealed: &Sealed,
    ) -> Vec<u8> {
        let mut msg = Vec::with_capacity(ENVELOPE_SIG.len() + 140 + sealed.ciphertext.len());
        msg.extend_from_slice(ENVELOPE_SIG);
        msg.extend_from_slice(&self.context);
        msg.extend_from_slice(sender.as_bytes());
        msg.extend_from_slice(recipient.as_bytes());
        msg.extend_from_slice(&sealed.ephemeral);
        msg.extend_from_slice(&(sealed.ciphertext.len() as u64).to_le_bytes());
        msg.extend_from_slice(&sealed.ciphertext);
        msg
    }

    /// Whether `envelope` is signed by its sender for this session between two distinct members.
    pub fn verify_envelope(&self, envelope: &Envelope) -> bool {
        if envelope.sender == envelope.recipient
            || !self.members.contains_key(&envelope.sender)
            || !self.members.contains_key(&envelope.recipient)
        {
            return false;
        }
        let Ok(key) = VerifyingKey::from_bytes(envelope.sender.as_bytes()) else {
            return false;
        };
        let msg = self.envelope_message(&envelope.sender, &envelope.recipient, &envelope.sealed);
        key.verify_strict(&msg, &Signature::from_bytes(&envelope.signature))
            .is_ok()
    }

    /// Round 2 for dealer `me` (whose Ed25519 identity is `identity`): one signed, sealed
    /// envelope with its share for every other member with a valid round-1 package. Keep them
    /// until the DKG ends: they are the answers to `Missing` complaints.
    pub fn deal<R: RngCore + CryptoRng>(
        &self,
        me: &MemberId,
        identity: &SigningKey,
        secret: &fdkg::round1::SecretPackage<C>,
        published: &Round1Map<C>,
        rng: &mut R,
    ) -> Result<Vec<Envelope>, DkgError> {
        if identity.verifying_key().to_bytes() != me.0 {
            return Err(DkgError::UnknownMember);
        }
        let (valid, _) = self.valid_round1(published);
        if !valid.contains_key(me) {
            return Err(DkgError::NotQualified(*me));
        }
        let recipients = others(me, &valid);
        let (_, shares) = self.part2_over(secret, &recipients)?;
        let mut out = Vec::with_capacity(shares.len());
        for (to, pkg) in shares {
            let x = self.members.get(&to).ok_or(DkgError::UnknownMember)?;
            let plaintext = zeroize::Zeroizing::new(pkg.signing_share().serialize());
            let sealed = seal::seal_ephemeral(
                &PublicKey::from(*x),
                &self.envelope_ad(me, &to),
                &plaintext,
                rng,
            )?;
            let signature = identity
                .sign(&self.envelope_message(me, &to, &sealed))
                .to_bytes();
            out.push(Envelope {
                sender: *me,
                recipient: to,
                sealed,
                signature,
            });
        }
        Ok(out)
    }

    /// frost part2 for `secret` against exactly `others` (re-wrapping the secret package with
    /// `max_signers = |others| + 1`, which is what frost's count checks compare against).
    #[allow(clippy::type_complexity)]
    fn part2_over(
        &self,
        secret: &fdkg::round1::SecretPackage<C>,
        others: &Round1Map<C>,
    ) -> Result<
        (
            fdkg::round2::SecretPackage<C>,
            BTreeMap<MemberId, fdkg::round2::Package<C>>,
        ),
        DkgError,
    > {
        let size = others.len() + 1;
        if size < usize::from(self.threshold) {
            return Err(DkgError::TooFewQualified {
                qualified: size,
                threshold: self.threshold,
            });
        }
        let max = u16::try_from(size).map_err(|_| DkgError::Parameters {
            members: size,
            threshold: self.threshold,
        })?;
        let rewrapped = fdkg::round1::SecretPackage::new(
            *secret.identifier(),
            secret.coefficients(),
            secret.commitment().clone(),
            *secret.min_signers(),
            max,
        );
        part2(rewrapped, others)
    }

    fn check_share(
        &self,
        recipient: &MemberId,
        dealer_package: &fdkg::round1::Package<C>,
        plaintext: &[u8],
    ) -> Result<fdkg::round2::Package<C>, &'static str> {
        let share =
            SigningShare::<C>::deserialize(plaintext).map_err(|_| "share does not decode")?;
        let id = identifier_for::<C>(recipient).map_err(|_| "bad recipient")?;
        SecretShare::new(id, share, dealer_package.commitment().clone())
            .verify()
            .map_err(|_| "share fails verification against the dealer's commitment")?;
        Ok(fdkg::round2::Package::new(share))
    }

    /// Opens an envelope addressed to the holder of `my_x25519`, checks it against the dealer's
    /// round-1 package on the ledger and returns the share. `BadEnvelope` means: complain.
    pub fn open(
        &self,
        my_x25519: &StaticSecret,
        envelope: &Envelope,
        published: &Round1Map<C>,
    ) -> Result<fdkg::round2::Package<C>, DkgError> {
        let dealer = envelope.sender;
        let bad = |reason| DkgError::BadEnvelope { dealer, reason };
        if self.members.get(&envelope.recipient) != Some(PublicKey::from(my_x25519).as_bytes()) {
            return Err(DkgError::UnknownMember);
        }
        if !self.verify_envelope(envelope) {
            // Not attributable to the dealer: drop it (and file `Missing` if nothing better comes).
            return Err(bad("signature or context invalid"));
        }
        let package = published.get(&dealer).ok_or(DkgError::UnknownMember)?;
        let plaintext = seal::open_ephemeral(
            my_x25519,
            &self.envelope_ad(&dealer, &envelope.recipient),
            &envelope.sealed,
        )
        .map_err(|_| bad("box does not open"))?;
        self.check_share(&envelope.recipient, package, &plaintext)
            .map_err(bad)
    }

    /// A publicly checkable complaint about a (signed) envelope that [`open`](Self::open)
    /// rejected: reveals that one box's Diffie–Hellman secret with its proof.
    pub fn complain<R: RngCore + CryptoRng>(
        &self,
        my_x25519: &StaticSecret,
        envelope: &Envelope,
        rng: &mut R,
    ) -> Result<Complaint, DkgError> {
        let evidence = if seal::ephemeral_is_valid(&envelope.sealed) {
            BadShareProof::Reveal(seal::reveal_ephemeral(my_x25519, &envelope.sealed, rng)?)
        } else {
            BadShareProof::InvalidEphemeral
        };
        Ok(Complaint::Bad {
            envelope: envelope.clone(),
            evidence,
        })
    }

    /// Judges one `Bad` complaint: `Ok(())` if it convicts the dealer, else why not.
    fn judge(
        &self,
        envelope: &Envelope,
        evidence: &BadShareProof,
        valid: &Round1Map<C>,
    ) -> Result<(), Rejection> {
        if !self.verify_envelope(envelope) {
            return Err(Rejection::Unsigned);
        }
        if !seal::ephemeral_is_valid(&envelope.sealed) {
            return Ok(());
        }
        let BadShareProof::Reveal(revealed) = evidence else {
            return Err(Rejection::BadProof);
        };
        let x = self
            .members
            .get(&envelope.recipient)
            .ok_or(Rejection::NotMember)?;
        let package = valid.get(&envelope.sender).ok_or(Rejection::NotMember)?;
        let ad = self.envelope_ad(&envelope.sender, &envelope.recipient);
        match seal::open_revealed(&PublicKey::from(*x), &ad, &envelope.sealed, revealed) {
            Err(SealError::BadReveal) | Err(SealError::NonContributory) => Err(Rejection::BadProof),
            Err(_) => Ok(()),
            Ok(plaintext) => match self.check_share(&envelope.recipient, package, &plaintext) {
                Ok(_) => Err(Rejection::ShareValid),
                Err(_) => Ok(()),
            },
        }
    }

    /// The qualified dealers, from the round-1 packages and the complaints and answers on the
    /// ledger (deterministic: every validator computes the same result; the set does not depend
    /// on the order of complaints, only which reason is recorded first).
    pub fn qualified_set(
        &self,
        published: &Round1Map<C>,
        complaints: &[Complaint],
        answers: &[Envelope],
    ) -> Qualification {
        let (valid, mut excluded) = self.valid_round1(published);
        let mut rejected = Vec::new();
        for complaint in complaints {
            let (complainer, dealer, verdict) = match complaint {
                Complaint::Bad { envelope, evidence } => (
                    envelope.recipient,
                    envelope.sender,
                    self.judge(envelope, evidence, &valid)
                        .map(|()| ExclusionCause::BadShare {
                            complainer: envelope.recipient,
                        }),
                ),
                Complaint::Missing { complainer, dealer } => {
                    let verdict = if complainer == dealer
                        || !self.members.contains_key(complainer)
                        || !self.members.contains_key(dealer)
                    {
                        Err(Rejection::NotMember)
                    } else if !valid.contains_key(complainer) {
                        Err(Rejection::NotOwed)
                    } else if answers.iter().any(|a| {
                        a.sender == *dealer && a.recipient == *complainer && self.verify_envelope(a)
                    }) {
                        Err(Rejection::Answered)
                    } else {
                        Ok(ExclusionCause::NoShare {
                            complainer: *complainer,
                        })
                    };
                    (*complainer, *dealer, verdict)
                }
            };
            if !valid.contains_key(&dealer) {
                // Already excluded (absent or bad round 1): nothing to decide.
                continue;
            }
            match verdict {
                Ok(reason) => {
                    excluded.entry(dealer).or_insert(reason);
                }
                Err(reason) => rejected.push(RejectedComplaint {
                    complainer,
                    dealer,
                    reason,
                }),
            }
        }
        let qualified = valid
            .keys()
            .filter(|m| !excluded.contains_key(m))
            .copied()
            .collect();
        Qualification {
            qualified,
            excluded,
            rejected,
        }
    }

    /// Finishes the DKG for qualified member `me`: `received` must hold the (opened) share of
    /// every other qualified dealer; shares from others are ignored. Returns this member's key
    /// package and the group's public key package, the same for every qualified member.
    #[allow(clippy::type_complexity)]
    pub fn finish(
        &self,
        me: &MemberId,
        secret: &fdkg::round1::SecretPackage<C>,
        published: &Round1Map<C>,
        qualified: &BTreeSet<MemberId>,
        received: &BTreeMap<MemberId, fdkg::round2::Package<C>>,
    ) -> Result<
        (
            frost_core::keys::KeyPackage<C>,
            frost_core::keys::PublicKeyPackage<C>,
        ),
        DkgError,
    > {
        if !qualified.contains(me) {
            return Err(DkgError::NotQualified(*me));
        }
        if qualified.len() < usize::from(self.threshold) {
            return Err(DkgError::TooFewQualified {
                qualified: qualified.len(),
                threshold: self.threshold,
            });
        }
        let mut r1 = BTreeMap::new();
        let mut r2 = BTreeMap::new();
        for m in qualified.iter().filter(|m| *m != me) {
            r1.insert(
                *m,
                published.get(m).ok_or(DkgError::NotQualified(*m))?.clone(),
            );
            r2.insert(
                *m,
                received.get(m).ok_or(DkgError::MissingShare(*m))?.clone(),
            );
        }
        let (secret2, _) = self.part2_over(secret, &r1)?;
        part3(&secret2, &r1, &r2)
    }
}

impl Envelope {
    /// Encoded length for a ciphertext of `len` bytes.
    fn encoded_len(len: usize) -> usize {
        32 + 32 + 32 + 4 + len + 64
    }

    /// `sender ‖ recipient ‖ ephemeral ‖ u32le(len) ‖ ciphertext ‖ signature`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::encoded_len(self.sealed.ciphertext.len()));
        out.extend_from_slice(self.sender.as_bytes());
        out.extend_from_slice(self.recipient.as_bytes());
        out.extend_from_slice(&self.sealed.ephemeral);
        // Ciphertexts are at most seal::MAX_CIPHERTEXT (16 MiB) < 2^32.
        out.extend_from_slice(&(self.sealed.ciphertext.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.sealed.ciphertext);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Strict decode of [`encode`](Self::encode).
    pub fn decode(bytes: &[u8]) -> Result<Self, DkgError> {
        let mut r = Cursor {
            bytes,
            what: "envelope",
        };
        let e = Self::read(&mut r)?;
        r.finish()?;
        Ok(e)
    }

    fn read(r: &mut Cursor<'_>) -> Result<Self, DkgError> {
        let sender = MemberId(r.array()?);
        let recipient = MemberId(r.array()?);
        let ephemeral = r.array()?;
        let len = u32::from_le_bytes(r.array()?) as usize;
        if !(16..=seal::MAX_CIPHERTEXT).contains(&len) {
            return Err(r.error());
        }
        let ciphertext = r.take(len)?.to_vec();
        let signature = r.array()?;
        Ok(Envelope {
            sender,
            recipient,
            sealed: Sealed {
                ephemeral,
                ciphertext,
            },
            signature,
        })
    }
}

impl Complaint {
    /// The member that filed (and must have signed the ledger transaction of) this complaint.
    pub fn complainer(&self) -> MemberId {
        match self {
            Complaint::Bad { envelope, .. } => envelope.recipient,
            Complaint::Missing { complainer, .. } => *complainer,
        }
    }

    /// The accused dealer.
    pub fn dealer(&self) -> MemberId {
        match self {
            Complaint::Bad { envelope, .. } => envelope.sender,
            Complaint::Missing { dealer, .. } => *dealer,
        }
    }

    /// `0 ‖ complainer ‖ dealer` (Missing), `1 ‖ envelope ‖ 0` (Bad, invalid ephemeral) or
    /// `1 ‖ envelope ‖ 1 ‖ reveal(96)` (Bad, reveal).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Complaint::Missing { complainer, dealer } => {
                let mut out = vec![0u8];
                out.extend_from_slice(complainer.as_bytes());
                out.extend_from_slice(dealer.as_bytes());
                out
            }
            Complaint::Bad { envelope, evidence } => {
                let mut out = vec![1u8];
                out.extend_from_slice(&envelope.encode());
                match evidence {
                    BadShareProof::InvalidEphemeral => out.push(0),
                    BadShareProof::Reveal(r) => {
                        out.push(1);
                        out.extend_from_slice(&r.to_bytes());
                    }
                }
                out
            }
        }
    }

    /// Strict decode of [`encode`](Self::encode): unknown tags, short input and trailing bytes
    /// are errors.
    pub fn decode(bytes: &[u8]) -> Result<Self, DkgError> {
        let mut r = Cursor {
            bytes,
            what: "complaint",
        };
        let c = match r.array::<1>()?[0] {
            0 => Complaint::Missing {
                complainer: MemberId(r.array()?),
                dealer: MemberId(r.array()?),
            },
            1 => {
                let envelope = Envelope::read(&mut r)?;
                let evidence = match r.array::<1>()?[0] {
                    0 => BadShareProof::InvalidEphemeral,
                    1 => BadShareProof::Reveal(seal::RevealedSecret::from_bytes(&r.array()?)),
                    _ => return Err(r.error()),
                };
                Complaint::Bad { envelope, evidence }
            }
            _ => return Err(r.error()),
        };
        r.finish()?;
        Ok(c)
    }
}

/// A strict little reader over a byte slice.
struct Cursor<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn error(&self) -> DkgError {
        DkgError::Decode { what: self.what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DkgError> {
        if self.bytes.len() < n {
            return Err(self.error());
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DkgError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn finish(&self) -> Result<(), DkgError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(self.error())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shamir;
    use crate::shamir::tests::members;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn default_thresholds() {
        assert_eq!(default_threshold(4), 3);
        assert_eq!(default_threshold(7), 5);
        assert_eq!(default_threshold(10), 7);
    }

    #[test]
    fn in_memory_dkg_gives_consistent_keys() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let ms = members(5, 0x33);
        let (keys, public) = run_in_memory(&ms, 3, &mut rng).unwrap();
        assert_eq!(keys.len(), 5);
        assert_eq!(public.min_signers(), Some(3));
        for (m, kp) in &keys {
            assert_eq!(*kp.identifier(), shamir::identifier(m).unwrap());
            assert_eq!(
                public.verifying_shares()[kp.identifier()],
                *kp.verifying_share()
            );
            assert_eq!(public.verifying_key(), kp.verifying_key());
        }
        // Any 3 key packages reconstruct the same group secret, whose public key is the group's.
        let all: Vec<KeyPackage> = keys.values().cloned().collect();
        let a = frost_ristretto255::keys::reconstruct(&all[..3]).unwrap();
        let b = frost_ristretto255::keys::reconstruct(&all[2..]).unwrap();
        assert_eq!(a.serialize(), b.serialize());
        assert_eq!(
            frost_ristretto255::VerifyingKey::from(a),
            *public.verifying_key()
        );
        // A second run gives a different key (fresh entropy).
        let (_, public2) = run_in_memory(&ms, 3, &mut rng).unwrap();
        assert_ne!(public.verifying_key(), public2.verifying_key());
    }

    #[test]
    fn bad_parameters_are_errors() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let ms = members(3, 0x34);
        assert!(matches!(
            run_in_memory(&ms, 4, &mut rng),
            Err(DkgError::Parameters { .. })
        ));
        assert!(matches!(
            run_in_memory(&ms, 1, &mut rng),
            Err(DkgError::Parameters { .. })
        ));
        let dup = vec![ms[0], ms[1], ms[0]];
        assert_eq!(
            run_in_memory(&dup, 2, &mut rng).unwrap_err(),
            DkgError::DuplicateMember(ms[0])
        );
    }

    #[test]
    fn tampered_round1_package_is_blamed_on_its_sender() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let ms = members(3, 0x35);
        let mut s1 = BTreeMap::new();
        let mut p1 = BTreeMap::new();
        for m in &ms {
            let (s, p) = part1::<Ristretto255Sha512, _>(m, 3, 2, &mut rng).unwrap();
            s1.insert(*m, s);
            p1.insert(*m, p);
        }
        // ms[2] sends ms[1]'s package as its own: its proof of knowledge fails for its identifier.
        let mut received = p1.clone();
        received.remove(&ms[0]);
        received.insert(ms[2], p1[&ms[1]].clone());
        let err = part2(s1.remove(&ms[0]).unwrap(), &received).unwrap_err();
        let DkgError::Frost { culprits, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(culprits, vec![ms[2]]);
    }

    // ---- robust DKG ----------------------------------------------------------------------

    use frost_ed25519::Ed25519Sha512;
    use proptest::prelude::{any, prop_assert, prop_assert_eq, proptest, ProptestConfig};

    pub(crate) struct Party {
        pub id: MemberId,
        pub sk: SigningKey,
        pub x: StaticSecret,
    }

    pub(crate) fn parties(n: usize, seed: u64) -> Vec<Party> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let sk = SigningKey::generate(&mut rng);
                let x = StaticSecret::random_from_rng(&mut rng);
                Party {
                    id: MemberId(sk.verifying_key().to_bytes()),
                    sk,
                    x,
                }
            })
            .collect()
    }

    pub(crate) fn session<C: Ciphersuite>(ps: &[Party], t: u16) -> Ceremony<C> {
        let roster = ps
            .iter()
            .map(|p| (p.id, PublicKey::from(&p.x).to_bytes()))
            .collect();
        Ceremony::new([7; 32], 3, t, roster).unwrap()
    }

    /// Misbehaviour injected into one robust run.
    #[derive(Default)]
    struct Faults {
        /// Dealers that publish no round-1 package.
        absent: Vec<usize>,
        /// (dealer, recipient): the dealer sends a wrong (but well-formed, signed) share.
        bad_share: Vec<(usize, usize)>,
        /// (dealer, recipient): the dealer sends nothing, and answers the Missing complaint
        /// only if the flag is set.
        withheld: Vec<(usize, usize, bool)>,
        /// (complainer, dealer): a false complaint with a genuine reveal of an honest envelope.
        false_complaint: Vec<(usize, usize)>,
    }

    struct Outcome<C: Ciphersuite> {
        q: Qualification,
        keys: BTreeMap<MemberId, frost_core::keys::KeyPackage<C>>,
        public: frost_core::keys::PublicKeyPackage<C>,
    }

    fn bad_envelope<C: Ciphersuite, R: RngCore + CryptoRng>(
        s: &Ceremony<C>,
        dealer: &Party,
        to: &Party,
        rng: &mut R,
    ) -> Envelope {
        // A valid scalar that is not the dealer's share for `to`.
        let wrong = SigningShare::<C>::new(
            <<C::Group as frost_core::Group>::Field as frost_core::Field>::one(),
        );
        let sealed = seal::seal_ephemeral(
            &PublicKey::from(&to.x),
            &s.envelope_ad(&dealer.id, &to.id),
            &wrong.serialize(),
            rng,
        )
        .unwrap();
        let signature = dealer
            .sk
            .sign(&s.envelope_message(&dealer.id, &to.id, &sealed))
            .to_bytes();
        Envelope {
            sender: dealer.id,
            recipient: to.id,
            sealed,
            signature,
        }
    }

    fn run_robust<C: Ciphersuite>(ps: &[Party], t: u16, faults: &Faults, seed: u64) -> Outcome<C> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let s = session::<C>(ps, t);
        let mut secrets = BTreeMap::new();
        let mut published = BTreeMap::new();
        for (i, p) in ps.iter().enumerate() {
            let (sec, pkg) = s.round1(&p.id, &mut rng).unwrap();
            secrets.insert(p.id, sec);
            if !faults.absent.contains(&i) {
                published.insert(p.id, pkg);
            }
        }
        let index: BTreeMap<MemberId, usize> =
            ps.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
        let mut inbox: BTreeMap<MemberId, Vec<Envelope>> = BTreeMap::new();
        let mut answers = Vec::new();
        for (i, p) in ps.iter().enumerate() {
            if !published.contains_key(&p.id) {
                continue;
            }
            let envs = s
                .deal(&p.id, &p.sk, &secrets[&p.id], &published, &mut rng)
                .unwrap();
            assert_eq!(envs.len(), published.len() - 1);
            for e in envs {
                let j = index[&e.recipient];
                if faults.bad_share.contains(&(i, j)) {
                    let bad = bad_envelope(&s, p, &ps[j], &mut rng);
                    inbox.entry(e.recipient).or_default().push(bad);
                } else if let Some(&(_, _, answer)) =
                    faults.withheld.iter().find(|w| (w.0, w.1) == (i, j))
                {
                    if answer {
                        answers.push(e);
                    }
                } else {
                    inbox.entry(e.recipient).or_default().push(e);
                }
            }
        }
        // Recipients open what they got, complain about bad or missing envelopes.
        let mut complaints = Vec::new();
        let mut received: BTreeMap<MemberId, BTreeMap<MemberId, fdkg::round2::Package<C>>> =
            BTreeMap::new();
        for p in ps {
            if !published.contains_key(&p.id) {
                continue;
            }
            let mine = inbox.remove(&p.id).unwrap_or_default();
            for e in &mine {
                match s.open(&p.x, e, &published) {
                    Ok(share) => {
                        received.entry(p.id).or_default().insert(e.sender, share);
                    }
                    Err(DkgError::BadEnvelope { .. }) => {
                        complaints.push(s.complain(&p.x, e, &mut rng).unwrap());
                    }
                    Err(other) => panic!("{other:?}"),
                }
            }
            for d in published.keys().filter(|d| **d != p.id) {
                if !mine.iter().any(|e| e.sender == *d) {
                    complaints.push(Complaint::Missing {
                        complainer: p.id,
                        dealer: *d,
                    });
                }
            }
        }
        // Answered envelopes are opened by their recipients.
        for a in &answers {
            let p = &ps[index[&a.recipient]];
            let share = s.open(&p.x, a, &published).unwrap();
            received.entry(p.id).or_default().insert(a.sender, share);
        }
        for &(c, d) in &faults.false_complaint {
            let e = s
                .deal(
                    &ps[d].id,
                    &ps[d].sk,
                    &secrets[&ps[d].id],
                    &published,
                    &mut rng,
                )
                .unwrap()
                .into_iter()
                .find(|e| e.recipient == ps[c].id)
                .unwrap();
            complaints.push(s.complain(&ps[c].x, &e, &mut rng).unwrap());
        }
        // Everyone computes the qualified set from the same ledger data, in any order.
        let q = s.qualified_set(&published, &complaints, &answers);
        let mut reversed = complaints.clone();
        reversed.reverse();
        assert_eq!(
            s.qualified_set(&published, &reversed, &answers).qualified,
            q.qualified
        );
        let mut keys = BTreeMap::new();
        let mut public = None;
        for m in &q.qualified {
            let (kp, pkp) = s
                .finish(m, &secrets[m], &published, &q.qualified, &received[m])
                .unwrap();
            keys.insert(*m, kp);
            agree(&mut public, pkp).unwrap();
        }
        Outcome {
            q,
            keys,
            public: public.unwrap(),
        }
    }

    /// Every qualified member's key agrees with the group key, and t of them reconstruct it.
    fn check_group<C: Ciphersuite>(o: &Outcome<C>, t: u16) {
        assert_eq!(o.public.verifying_shares().len(), o.q.qualified.len());
        for (m, kp) in &o.keys {
            assert_eq!(*kp.identifier(), identifier_for::<C>(m).unwrap());
            assert_eq!(kp.verifying_key(), o.public.verifying_key());
            assert_eq!(
                o.public.verifying_shares()[kp.identifier()],
                *kp.verifying_share()
            );
        }
        let all: Vec<_> = o.keys.values().cloned().collect();
        let t = usize::from(t);
        let a = frost_core::keys::reconstruct(&all[..t]).unwrap();
        let b = frost_core::keys::reconstruct(&all[all.len() - t..]).unwrap();
        assert_eq!(a.serialize(), b.serialize());
        assert_eq!(
            frost_core::VerifyingKey::<C>::from(a),
            *o.public.verifying_key()
        );
    }

    #[test]
    fn robust_all_honest() {
        let ps = parties(4, 10);
        let o = run_robust::<Ristretto255Sha512>(&ps, 3, &Faults::default(), 1);
        assert_eq!(o.q.qualified.len(), 4);
        assert!(o.q.excluded.is_empty() && o.q.rejected.is_empty());
        check_group(&o, 3);
    }

    #[test]
    fn robust_one_absent_dealer() {
        for (n, t) in [(4usize, 3u16), (7, 5)] {
            let ps = parties(n, 11 + n as u64);
            let faults = Faults {
                absent: vec![1],
                ..Faults::default()
            };
            let o = run_robust::<Ristretto255Sha512>(&ps, t, &faults, 2);
            assert_eq!(o.q.qualified.len(), n - 1);
            assert_eq!(o.q.excluded[&ps[1].id], ExclusionCause::Absent);
            assert!(!o.q.qualified.contains(&ps[1].id));
            check_group(&o, t);
        }
    }

    #[test]
    fn robust_bad_share_is_proven_and_excluded() {
        let ps = parties(4, 12);
        let faults = Faults {
            bad_share: vec![(2, 0)],
            ..Faults::default()
        };
        let o = run_robust::<Ristretto255Sha512>(&ps, 3, &faults, 3);
        assert_eq!(
            o.q.excluded[&ps[2].id],
            ExclusionCause::BadShare {
                complainer: ps[0].id
            }
        );
        assert_eq!(o.q.qualified.len(), 3);
        assert!(o.q.rejected.is_empty());
        check_group(&o, 3);
    }

    #[test]
    fn robust_false_complaints_are_rejected() {
        let ps = parties(4, 13);
        let faults = Faults {
            false_complaint: vec![(0, 1)],
            ..Faults::default()
        };
        let o = run_robust::<Ristretto255Sha512>(&ps, 3, &faults, 4);
        assert_eq!(o.q.qualified.len(), 4);
        assert_eq!(
            o.q.rejected,
            vec![RejectedComplaint {
                complainer: ps[0].id,
                dealer: ps[1].id,
                reason: Rejection::ShareValid
            }]
        );
        check_group(&o, 3);

        // A lying reveal (computed with someone else's key) is a bad proof.
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let s = session::<Ristretto255Sha512>(&ps, 3);
        let mut published = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        for p in &ps {
            let (sec, pkg) = s.round1(&p.id, &mut rng).unwrap();
            published.insert(p.id, pkg);
            secrets.insert(p.id, sec);
        }
        let e = s
            .deal(
                &ps[1].id,
                &ps[1].sk,
                &secrets[&ps[1].id],
                &published,
                &mut rng,
            )
            .unwrap()
            .into_iter()
            .find(|e| e.recipient == ps[0].id)
            .unwrap();
        let lie = s.complain(&ps[3].x, &e, &mut rng).unwrap();
        // An envelope re-signed by the complainer proves nothing about the dealer.
        let mut forged = e.clone();
        forged.signature = ps[0]
            .sk
            .sign(&s.envelope_message(&e.sender, &e.recipient, &e.sealed))
            .to_bytes();
        let forged = s.complain(&ps[0].x, &forged, &mut rng).unwrap();
        let q = s.qualified_set(&published, &[lie, forged], &[]);
        assert_eq!(q.qualified.len(), 4);
        let reasons: Vec<Rejection> = q.rejected.iter().map(|r| r.reason).collect();
        assert_eq!(reasons, vec![Rejection::BadProof, Rejection::Unsigned]);
    }

    #[test]
    fn robust_tolerates_f_bad_dealers_at_n7() {
        let ps = parties(7, 14);
        let faults = Faults {
            absent: vec![6],
            bad_share: vec![(3, 0), (3, 5)],
            ..Faults::default()
        };
        let o = run_robust::<Ristretto255Sha512>(&ps, 5, &faults, 6);
        assert_eq!(o.q.qualified.len(), 5);
        assert_eq!(o.q.excluded[&ps[6].id], ExclusionCause::Absent);
        assert!(matches!(
            o.q.excluded[&ps[3].id],
            ExclusionCause::BadShare { .. }
        ));
        check_group(&o, 5);
        // Two bad-share dealers and Ed25519 as the ciphersuite.
        let faults = Faults {
            bad_share: vec![(1, 2), (4, 0)],
            ..Faults::default()
        };
        let o = run_robust::<Ed25519Sha512>(&ps, 5, &faults, 7);
        assert_eq!(o.q.qualified.len(), 5);
        check_group(&o, 5);
        // The robust Ed25519 key signs a checkpoint that a light client accepts.
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let cp = crate::checkpoint::tests::sample_checkpoint();
        let signers: Vec<MemberId> = o.q.qualified.iter().copied().collect();
        let mut nonces = BTreeMap::new();
        let mut commitments = BTreeMap::new();
        for m in &signers {
            let (n, c) = crate::checkpoint::commit(&o.keys[m], &mut rng);
            nonces.insert(*m, n);
            commitments.insert(*m, c);
        }
        let package = crate::checkpoint::signing_package(&cp, &commitments).unwrap();
        let shares = signers
            .iter()
            .map(|m| {
                let share =
                    crate::checkpoint::sign(&cp, &package, &nonces[m], m, &o.keys[m]).unwrap();
                (*m, share)
            })
            .collect();
        let sig = crate::checkpoint::aggregate(&package, &shares, &o.public).unwrap();
        let gk = crate::checkpoint::group_key(&o.public).unwrap();
        let got = crate::light_client::verify_checkpoint(&gk, &cp.chain_id, &cp.to_bytes(), &sig)
            .unwrap();
        assert_eq!(got, cp);
    }

    #[test]
    fn robust_missing_envelopes() {
        let ps = parties(5, 15);
        let faults = Faults {
            withheld: vec![(1, 0, false), (2, 3, true)],
            ..Faults::default()
        };
        let o = run_robust::<Ristretto255Sha512>(&ps, 3, &faults, 8);
        assert_eq!(
            o.q.excluded[&ps[1].id],
            ExclusionCause::NoShare {
                complainer: ps[0].id
            }
        );
        assert!(o.q.qualified.contains(&ps[2].id));
        assert_eq!(
            o.q.rejected,
            vec![RejectedComplaint {
                complainer: ps[3].id,
                dealer: ps[2].id,
                reason: Rejection::Answered
            }]
        );
        check_group(&o, 3);

        // A member absent in round 1 is owed no share: its Missing complaint is rejected.
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let s = session::<Ristretto255Sha512>(&ps, 3);
        let mut published = BTreeMap::new();
        for p in &ps[..4] {
            published.insert(p.id, s.round1(&p.id, &mut rng).unwrap().1);
        }
        let c = Complaint::Missing {
            complainer: ps[4].id,
            dealer: ps[0].id,
        };
        let q = s.qualified_set(&published, &[c], &[]);
        assert_eq!(q.qualified.len(), 4);
        assert_eq!(q.rejected[0].reason, Rejection::NotOwed);
    }

    #[test]
    fn too_few_qualified_is_an_error() {
        let ps = parties(4, 16);
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let s = session::<Ristretto255Sha512>(&ps, 3);
        let mut published = BTreeMap::new();
        let (sec, pkg) = s.round1(&ps[0].id, &mut rng).unwrap();
        published.insert(ps[0].id, pkg);
        let (_, pkg) = s.round1(&ps[1].id, &mut rng).unwrap();
        published.insert(ps[1].id, pkg);
        assert!(matches!(
            s.deal(&ps[0].id, &ps[0].sk, &sec, &published, &mut rng),
            Err(DkgError::TooFewQualified { .. })
        ));
        let q = s.qualified_set(&published, &[], &[]);
        assert_eq!(q.qualified.len(), 2);
        assert!(matches!(
            s.finish(&ps[0].id, &sec, &published, &q.qualified, &BTreeMap::new()),
            Err(DkgError::TooFewQualified { .. })
        ));
    }

    #[test]
    fn ristretto_identifiers_match_shamir() {
        for m in members(4, 0x40) {
            assert_eq!(
                identifier_for::<Ristretto255Sha512>(&m).unwrap(),
                shamir::identifier(&m).unwrap()
            );
        }
    }

    /// A session with published round 1, one honest envelope 1 → 0 and a (false) complaint
    /// about it, for the decoder properties.
    fn complaint_fixture() -> (
        Ceremony<Ristretto255Sha512>,
        Round1Map<Ristretto255Sha512>,
        Complaint,
        Vec<Party>,
    ) {
        let ps = parties(4, 17);
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        let s = session::<Ristretto255Sha512>(&ps, 3);
        let mut published = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        for p in &ps {
            let (sec, pkg) = s.round1(&p.id, &mut rng).unwrap();
            published.insert(p.id, pkg);
            secrets.insert(p.id, sec);
        }
        let e = s
            .deal(
                &ps[1].id,
                &ps[1].sk,
                &secrets[&ps[1].id],
                &published,
                &mut rng,
            )
            .unwrap()
            .into_iter()
            .find(|e| e.recipient == ps[0].id)
            .unwrap();
        let c = s.complain(&ps[0].x, &e, &mut rng).unwrap();
        (s, published, c, ps)
    }

    #[test]
    fn complaint_encoding_round_trips_and_rejects_truncation() {
        let (_, _, c, ps) = complaint_fixture();
        let bytes = c.encode();
        assert_eq!(Complaint::decode(&bytes).unwrap(), c);
        for len in 0..bytes.len() {
            assert!(Complaint::decode(&bytes[..len]).is_err(), "prefix {len}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(Complaint::decode(&long).is_err());
        let missing = Complaint::Missing {
            complainer: ps[0].id,
            dealer: ps[1].id,
        };
        assert_eq!(Complaint::decode(&missing.encode()).unwrap(), missing);
        let mut bad_tag = bytes.clone();
        bad_tag[0] = 2;
        assert!(Complaint::decode(&bad_tag).is_err());
        let Complaint::Bad { envelope, .. } = &c else {
            unreachable!()
        };
        assert_eq!(Envelope::decode(&envelope.encode()).unwrap(), *envelope);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn complaint_decoder_never_panics_and_is_canonical(
            bytes in proptest::collection::vec(any::<u8>(), 0..400)
        ) {
            if let Ok(c) = Complaint::decode(&bytes) {
                prop_assert_eq!(c.encode(), bytes);
            }
        }

        /// No bit flip turns a false complaint against an honest dealer into a conviction.
        #[test]
        fn flipped_complaints_never_convict_an_honest_dealer(bit in 0usize..(8 * 400)) {
            let (s, published, c, ps) = complaint_fixture();
            let mut bytes = c.encode();
            let bit = bit % (8 * bytes.len());
            bytes[bit / 8] ^= 1 << (bit % 8);
            if let Ok(flipped) = Complaint::decode(&bytes) {
                let q = s.qualified_set(&published, &[flipped], &[]);
                prop_assert!(q.qualified.contains(&ps[1].id));
                prop_assert_eq!(q.qualified.len(), 4);
            }
        }
    }
}
