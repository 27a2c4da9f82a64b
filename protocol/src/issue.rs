//! Key issuance (the seed's pseudocode): the one-time key of a leaf is rebuilt by the
//! authorized client itself, not by a validator. The client names its X25519 key in its
//! request (`ClientRequest::issue_to`); the leaf's quorum seals its masked contributions to
//! that key and sends them to the relaying validator, which cannot open them and hands the
//! client an [`IssueBundle`]: the session, the `k` signed contributions of one attempt, the
//! leaf's Feldman commitment and the leaf's whole authentication path. [`sign_issued`] opens
//! them with the client's secret, checks them against the commitment (`reconstruct::combine`),
//! rebuilds the seed, signs the digest, erases the seed and verifies the signature under the
//! federation's public key before returning it.
//!
//! Guarantees: only the holder of the X25519 secret learns the seed; a bundle whose
//! contributions, commitment or path are wrong gives an error, never a signature that does not
//! verify under the public key. A contribution that is faulty on its own is blamed by the
//! client ([`blame_issued`]: its box revealed with a proof, as a recipient does), through the
//! relay, and the ledger convicts its sender; the next attempt's quorum leaves it out.

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use x25519_dalek::StaticSecret;

use crate::lms::{self, LmsPublicKey};
use crate::reconstruct::blame::{self, BlameEvidence};
use crate::reconstruct::{self, Contribution, Opened, ReconstructError, Session};
use crate::shamir::EncodedCommitment;

/// What a client needs to sign with an issued leaf.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueBundle {
    /// The leaf id (`ledger::leaf_id`: its key and its leaf index within the key).
    pub leaf: u64,
    /// The digest the request names.
    pub digest: [u8; 32],
    /// The reconstruction session (the client is its recipient).
    pub session: Session,
    /// The leaf's Feldman commitment.
    pub commitment: EncodedCommitment,
    /// Its path to the sector's commitments root (`dealing::chunk_path`): what a blame of a
    /// contribution carries, so the ledger can check the commitment is the dealt one.
    pub commitment_path: Vec<[u8; 32]>,
    /// The quorum's signed contributions, sealed to the client.
    pub contributions: Vec<Contribution>,
    /// The leaf's authentication path: inside its sector, then the master tree's.
    pub path: Vec<[u8; 32]>,
}

/// Why an issued leaf could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// The bundle is not for this key (the client's secret), or a contribution is invalid.
    #[error("contributions: {0}")]
    Reconstruct(#[from] reconstruct::ReconstructError),
    /// The commitment does not decode.
    #[error("the leaf's commitment does not decode")]
    Commitment,
    /// The leaf index is out of range.
    #[error("leaf {0} out of range")]
    Leaf(u64),
    /// Signing failed.
    #[error("cannot sign: {0}")]
    Sign(String),
    /// The rebuilt key's signature does not verify under the public key (wrong path, or a seed
    /// that does not match the tree).
    #[error("the signature does not verify under the public key: {0}")]
    Verify(String),
}

/// Opens the bundle's contributions with the client's X25519 secret, rebuilds the leaf's
/// seed, signs the digest and verifies the signature under `public` (the master public key of
/// the leaf's key); returns the one-level
/// HSS encoding of the signature. The seed is erased before returning.
pub fn sign_issued(
    bundle: &IssueBundle,
    secret: &StaticSecret,
    public: &LmsPublicKey,
) -> Result<Vec<u8>, IssueError> {
    let opened = bundle
        .contributions
        .iter()
        .map(|c| reconstruct::open_contribution(&bundle.session, secret, c))
        .collect::<Result<Vec<Opened>, _>>()?;
    let commitment = bundle
        .commitment
        .decode()
        .map_err(|_| IssueError::Commitment)?;
    let secret = reconstruct::combine(&bundle.session, &commitment, &opened)?;
    let seed = secret.lms_seed();
    drop(secret);
    let q = u32::try_from(crate::ledger::split_leaf(bundle.leaf).1)
        .map_err(|_| IssueError::Leaf(bundle.leaf))?;
    let sig = lms::sign(
        public.lms_type,
        public.ots_type,
        &public.id,
        q,
        &seed,
        &bundle.digest,
        bundle.path.clone(),
    )
    .map_err(|e| IssueError::Sign(e.to_string()))?;
    drop(seed);
    public
        .verify(&bundle.digest, &sig)
        .map_err(|e| IssueError::Verify(e.to_string()))?;
    Ok(sig.encode_hss())
}

/// When a bundle's contributions do not combine: the evidence against each contribution that
/// is faulty on its own (a box that does not open to a scalar, or a value that fails its check
/// against the commitment), each box revealed with the client's proof, for the relay to put on
/// the ledger as `SignBlame`. Empty if no contribution is faulty on its own (mask disputes are
/// visible to the relay, which reports them; a wrong path is nobody's contribution).
pub fn blame_issued<R: RngCore + CryptoRng>(
    bundle: &IssueBundle,
    secret: &StaticSecret,
    rng: &mut R,
) -> Result<Vec<BlameEvidence>, IssueError> {
    let session = &bundle.session;
    let mut culprits: Vec<&Contribution> = Vec::new();
    let mut opened = Vec::new();
    for c in &bundle.contributions {
        match reconstruct::open_contribution(session, secret, c) {
            Ok(o) => opened.push(o),
            Err(ReconstructError::Faulty(_)) => culprits.push(c),
            Err(e) => return Err(e.into()),
        }
    }
    if culprits.is_empty() {
        let commitment = bundle
            .commitment
            .decode()
            .map_err(|_| IssueError::Commitment)?;
        if let Err(ReconstructError::Faulty(report)) =
            reconstruct::combine(session, &commitment, &opened)
        {
            culprits.extend(
                bundle
                    .contributions
                    .iter()
                    .filter(|c| report.culprits.contains(&c.sender)),
            );
        }
    }
    culprits
        .into_iter()
        .map(|c| {
            blame::blame_contribution(
                session,
                secret,
                c,
                bundle.commitment.clone(),
                bundle.commitment_path.clone(),
                rng,
            )
            .map_err(IssueError::from)
        })
        .collect()
}
