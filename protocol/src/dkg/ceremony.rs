//! The robust DKG run ([`Ceremony`]): parameters and context, round 1 and its validation,
//! dealing shares in sealed, signed [`Envelope`]s, opening them, finishing over the qualified set.
//! Guarantees: every envelope is bound to this run (chain id, epoch, ciphersuite, threshold,
//! roster), its sender and recipient; a share [`Ceremony::open`] accepts matches the dealer's
//! round-1 commitment; every qualified member that finishes gets the same public key package.

use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use frost_core::keys::dkg as fdkg;
use frost_core::keys::{SecretShare, SigningShare};
use frost_core::Ciphersuite;
use rand_core::{CryptoRng, RngCore};
use x25519_dalek::{PublicKey, StaticSecret};

use super::complaint::ExclusionCause;
use super::error::DkgError;
use super::frost::{check_parameters, identifier_for, others, part1, part2, part3};
use crate::hash::{hash32, Domain};
use crate::member::MemberId;
use crate::seal::{self, Sealed};

const CONTEXT: Domain = Domain::new("seedfed-dkg-ctx");
const ENVELOPE_SIG: &[u8] = b"seedfed-dkg-envelope/v1";

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

/// Round-1 packages by member.
pub(super) type Round1Map<C> = BTreeMap<MemberId, fdkg::round1::Package<C>>;

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
            if !self.members.get(m).is_some_and(seal::x25519_key_is_valid) {
                excluded.insert(*m, ExclusionCause::BadX25519Key);
                continue;
            }
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
    pub(super) fn envelope_ad(&self, sender: &MemberId, recipient: &MemberId) -> Vec<u8> {
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

    pub(super) fn check_share(
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
