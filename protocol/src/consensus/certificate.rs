//! Commit certificates and their verification: a pure function of the certificate, the chain
//! id and the validator set (member → stake) that decided the height. A light client or a
//! syncing node needs nothing else.
//!
//! Also the verification of Malachite's polka and round certificates, which the consensus
//! core asks for through effects; all share one rule: every signature must be a valid
//! Ed25519 (ZIP-215) signature by a distinct member of the set over the vote it stands for,
//! and the signers' stake must meet the threshold.

use std::collections::{BTreeMap, BTreeSet};

use malachitebft_core_types as mt;
use malachitebft_signing_ed25519 as ms;
use mt::{NilOrVal, Round, ThresholdParam, VoteType};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::context::{vote_kind, BlockHash, Height, SeedfedContext, ValidatorSet};
use crate::ledger::CommitInfo;
use crate::ledger::{verify_vote_signature, vote_digest, Signature64, VoteKind};
use crate::member::MemberId;

/// A commit certificate: precommits for one block at one height and round from more than two
/// thirds of the stake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitCertificate {
    /// Height decided.
    pub height: u64,
    /// Round decided in.
    pub round: u32,
    /// The decided block's hash.
    pub block_hash: [u8; 32],
    /// Precommit signatures, sorted by member.
    pub signatures: Vec<(MemberId, Signature64)>,
}

/// Why a certificate does not verify.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CertificateError {
    /// A signer is not in the validator set.
    #[error("signer {0} is not a validator")]
    UnknownSigner(MemberId),
    /// A signer appears twice.
    #[error("signer {0} appears twice")]
    DuplicateSigner(MemberId),
    /// A signature does not verify.
    #[error("invalid signature by {0}")]
    BadSignature(MemberId),
    /// Not enough stake signed.
    #[error("signed stake {signed} of {total} does not meet the threshold")]
    NotEnoughStake {
        /// Stake that signed.
        signed: u128,
        /// Total stake.
        total: u128,
    },
}

impl CommitCertificate {
    /// Converts Malachite's certificate.
    pub fn from_malachite(c: &mt::CommitCertificate<SeedfedContext>) -> Self {
        let mut signatures: Vec<(MemberId, Signature64)> = c
            .commit_signatures
            .iter()
            .map(|s| (s.address, Signature64(s.signature.to_bytes())))
            .collect();
        signatures.sort_by_key(|a| a.0);
        CommitCertificate {
            height: c.height.0,
            round: c.round.as_u32().unwrap_or(0),
            block_hash: c.value_id.0,
            signatures,
        }
    }

    /// The last-commit record the next block carries.
    pub fn commit_info(&self) -> CommitInfo {
        CommitInfo {
            round: self.round,
            signatures: self.signatures.clone(),
        }
    }

    /// Verifies the certificate against the validator set that decided `self.height`.
    pub fn verify(
        &self,
        chain_id: &str,
        validators: &BTreeMap<MemberId, u64>,
    ) -> Result<(), CertificateError> {
        let votes = self.signatures.iter().map(|(m, sig)| {
            (
                *m,
                vote_digest(
                    chain_id,
                    self.height,
                    self.round,
                    VoteKind::Precommit,
                    Some(&self.block_hash),
                    m,
                ),
                *sig,
            )
        });
        check_signed_stake(votes, validators, |s, t| 3 * s > 2 * t)
    }
}

/// Checks that distinct validators signed their digests and that their stake passes `enough`.
fn check_signed_stake(
    votes: impl Iterator<Item = (MemberId, [u8; 32], Signature64)>,
    validators: &BTreeMap<MemberId, u64>,
    enough: impl Fn(u128, u128) -> bool,
) -> Result<(), CertificateError> {
    let mut seen = BTreeSet::new();
    let mut signed: u128 = 0;
    for (m, digest, sig) in votes {
        let Some(stake) = validators.get(&m) else {
            return Err(CertificateError::UnknownSigner(m));
        };
        if !seen.insert(m) {
            return Err(CertificateError::DuplicateSigner(m));
        }
        if !verify_vote_signature(&m, &digest, &sig) {
            return Err(CertificateError::BadSignature(m));
        }
        signed += u128::from(*stake);
    }
    let total: u128 = validators.values().map(|s| u128::from(*s)).sum();
    if !enough(signed, total) {
        return Err(CertificateError::NotEnoughStake { signed, total });
    }
    Ok(())
}

fn threshold(p: ThresholdParam) -> impl Fn(u128, u128) -> bool {
    move |s, t| s * u128::from(p.denominator) > t * u128::from(p.numerator)
}

fn digest_of(
    chain_id: &str,
    height: Height,
    round: Round,
    kind: VoteType,
    value: &NilOrVal<BlockHash>,
    m: &MemberId,
) -> [u8; 32] {
    let v = match value {
        NilOrVal::Nil => None,
        NilOrVal::Val(h) => Some(&h.0),
    };
    vote_digest(
        chain_id,
        height.0,
        round.as_u32().unwrap_or(u32::MAX),
        vote_kind(kind),
        v,
        m,
    )
}

fn to_sig(s: &ms::Signature) -> Signature64 {
    Signature64(s.to_bytes())
}

fn map_err(e: CertificateError) -> mt::CertificateError<SeedfedContext> {
    match e {
        CertificateError::UnknownSigner(m) => mt::CertificateError::UnknownValidator(m),
        CertificateError::DuplicateSigner(m) => mt::CertificateError::DuplicateVote(m),
        CertificateError::BadSignature(_) => mt::CertificateError::VerificationError(None),
        CertificateError::NotEnoughStake { signed, total } => {
            mt::CertificateError::NotEnoughVotingPower {
                signed: u64::try_from(signed).unwrap_or(u64::MAX),
                total: u64::try_from(total).unwrap_or(u64::MAX),
                expected: 0,
            }
        }
    }
}

/// Verifies a Malachite commit certificate (for the consensus core's effect).
// The error type is Malachite's resume type for this effect.
#[allow(clippy::result_large_err)]
pub fn verify_commit(
    chain_id: &str,
    c: &mt::CommitCertificate<SeedfedContext>,
    set: &ValidatorSet,
    tp: mt::ThresholdParams,
) -> Result<(), mt::CertificateError<SeedfedContext>> {
    let votes = c.commit_signatures.iter().map(|s| {
        (
            s.address,
            digest_of(
                chain_id,
                c.height,
                c.round,
                VoteType::Precommit,
                &NilOrVal::Val(c.value_id),
                &s.address,
            ),
            to_sig(&s.signature),
        )
    });
    check_signed_stake(votes, &set.stakes(), threshold(tp.quorum)).map_err(map_err)
}

/// Verifies a Malachite polka certificate.
// The error type is Malachite's resume type for this effect.
#[allow(clippy::result_large_err)]
pub fn verify_polka(
    chain_id: &str,
    c: &mt::PolkaCertificate<SeedfedContext>,
    set: &ValidatorSet,
    tp: mt::ThresholdParams,
) -> Result<(), mt::CertificateError<SeedfedContext>> {
    let votes = c.polka_signatures.iter().map(|s| {
        (
            s.address,
            digest_of(
                chain_id,
                c.height,
                c.round,
                VoteType::Prevote,
                &NilOrVal::Val(c.value_id),
                &s.address,
            ),
            to_sig(&s.signature),
        )
    });
    check_signed_stake(votes, &set.stakes(), threshold(tp.quorum)).map_err(map_err)
}

/// Verifies a Malachite round certificate (skip: f+1 of any votes; precommit: 2f+1
/// precommits).
// The error type is Malachite's resume type for this effect.
#[allow(clippy::result_large_err)]
pub fn verify_round(
    chain_id: &str,
    c: &mt::RoundCertificate<SeedfedContext>,
    set: &ValidatorSet,
    tp: mt::ThresholdParams,
) -> Result<(), mt::CertificateError<SeedfedContext>> {
    if c.cert_type == mt::RoundCertificateType::Precommit {
        if let Some(s) = c
            .round_signatures
            .iter()
            .find(|s| s.vote_type != VoteType::Precommit)
        {
            return Err(mt::CertificateError::InvalidVoteType(s.address));
        }
    }
    let votes = c.round_signatures.iter().map(|s| {
        (
            s.address,
            digest_of(
                chain_id,
                c.height,
                c.round,
                s.vote_type,
                &s.value_id,
                &s.address,
            ),
            to_sig(&s.signature),
        )
    });
    let param = match c.cert_type {
        mt::RoundCertificateType::Skip => tp.honest,
        mt::RoundCertificateType::Precommit => tp.quorum,
    };
    check_signed_stake(votes, &set.stakes(), threshold(param)).map_err(map_err)
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};
    use proptest::prelude::*;

    use super::*;

    const CHAIN: &str = "cert-chain";

    fn keys(n: u8) -> Vec<SigningKey> {
        (0..n)
            .map(|i| SigningKey::from_bytes(&[i + 7; 32]))
            .collect()
    }

    fn id(k: &SigningKey) -> MemberId {
        MemberId(k.verifying_key().to_bytes())
    }

    fn set(keys: &[SigningKey], stakes: &[u64]) -> BTreeMap<MemberId, u64> {
        keys.iter().zip(stakes).map(|(k, s)| (id(k), *s)).collect()
    }

    fn cert(keys: &[SigningKey], signers: &[usize], block: [u8; 32]) -> CommitCertificate {
        let mut signatures: Vec<(MemberId, Signature64)> = signers
            .iter()
            .map(|&i| {
                let d = vote_digest(
                    CHAIN,
                    9,
                    2,
                    VoteKind::Precommit,
                    Some(&block),
                    &id(&keys[i]),
                );
                (id(&keys[i]), Signature64(keys[i].sign(&d).to_bytes()))
            })
            .collect();
        signatures.sort_by_key(|a| a.0);
        CommitCertificate {
            height: 9,
            round: 2,
            block_hash: block,
            signatures,
        }
    }

    #[test]
    fn quorum_of_stake_verifies() {
        let k = keys(4);
        let vs = set(&k, &[10, 10, 10, 10]);
        assert_eq!(cert(&k, &[0, 1, 2], [1; 32]).verify(CHAIN, &vs), Ok(()));
        assert_eq!(
            cert(&k, &[0, 1], [1; 32]).verify(CHAIN, &vs),
            Err(CertificateError::NotEnoughStake {
                signed: 20,
                total: 40
            })
        );
        // Stake, not head count: one heavy validator is enough.
        let vs = set(&k, &[70, 10, 10, 10]);
        assert_eq!(cert(&k, &[0], [1; 32]).verify(CHAIN, &vs), Ok(()));
        // Exactly two thirds is not more than two thirds.
        let vs = set(&k[..3], &[10, 10, 10]);
        assert!(cert(&k, &[0, 1], [1; 32]).verify(CHAIN, &vs).is_err());
    }

    #[test]
    fn tampering_is_detected() {
        let k = keys(4);
        let vs = set(&k, &[10, 10, 10, 10]);
        let good = cert(&k, &[0, 1, 2], [1; 32]);
        let mut c = good.clone();
        c.block_hash = [2; 32];
        assert!(matches!(
            c.verify(CHAIN, &vs),
            Err(CertificateError::BadSignature(_))
        ));
        let mut c = good.clone();
        c.height = 10;
        assert!(c.verify(CHAIN, &vs).is_err());
        let mut c = good.clone();
        c.round = 3;
        assert!(c.verify(CHAIN, &vs).is_err());
        assert!(good.verify("other-chain", &vs).is_err());
        let mut c = good.clone();
        c.signatures.push(c.signatures[0]);
        assert_eq!(
            c.verify(CHAIN, &vs),
            Err(CertificateError::DuplicateSigner(good.signatures[0].0))
        );
        let outsider = keys(6);
        let c = cert(&outsider, &[0, 1, 2, 5], [1; 32]);
        assert_eq!(
            c.verify(CHAIN, &vs),
            Err(CertificateError::UnknownSigner(id(&outsider[5])))
        );
        // A prevote signature is not a precommit signature.
        let mut c = good.clone();
        let d = vote_digest(CHAIN, 9, 2, VoteKind::Prevote, Some(&[1; 32]), &id(&k[3]));
        c.signatures
            .push((id(&k[3]), Signature64(k[3].sign(&d).to_bytes())));
        c.signatures.sort_by_key(|a| a.0);
        assert_eq!(
            c.verify(CHAIN, &vs),
            Err(CertificateError::BadSignature(id(&k[3])))
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// A certificate verifies exactly when its signers hold more than 2/3 of the stake.
        #[test]
        fn verifies_iff_quorum(stakes in proptest::collection::vec(1u64..100, 4), mask in 0u8..16) {
            let k = keys(4);
            let vs = set(&k, &stakes);
            let signers: Vec<usize> = (0..4).filter(|i| mask & (1 << i) != 0).collect();
            let signed: u64 = signers.iter().map(|&i| stakes[i]).sum();
            let total: u64 = stakes.iter().sum();
            let ok = cert(&k, &signers, [3; 32]).verify(CHAIN, &vs).is_ok();
            prop_assert_eq!(ok, 3 * signed > 2 * total);
        }
    }
}
