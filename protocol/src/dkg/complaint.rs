//! Complaint judging: the [`Complaint`]s a recipient files against a dealer, how anyone checks
//! them, and the [`Qualification`] every validator computes from the ledger's data. Guarantees:
//! a `Bad` complaint convicts only with the dealer's signature on the envelope and a valid proof
//! of the revealed box secret, so no false complaint excludes an honest dealer; the qualified
//! set is deterministic and does not depend on the order of complaints.

use std::collections::{BTreeMap, BTreeSet};

use frost_core::Ciphersuite;
use rand_core::{CryptoRng, RngCore};
use x25519_dalek::{PublicKey, StaticSecret};

use super::ceremony::{Ceremony, Envelope, Round1Map};
use super::error::DkgError;
use crate::member::MemberId;
use crate::seal::{self, SealError};

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
    /// Its X25519 key cannot receive a sealed share (low-order, off the curve or
    /// non-canonical): nobody deals to it, so it cannot hold a key share either.
    BadX25519Key,
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

impl<C: Ciphersuite> Ceremony<C> {
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
            .members()
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
                        || !self.members().contains_key(complainer)
                        || !self.members().contains_key(dealer)
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
}
