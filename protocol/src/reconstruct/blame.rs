//! Provable blame for a reconstruction (`docs/protocol.md`, Signing): the evidence a recipient
//! or a disputing quorum member puts on the ledger, and the pure judgement anyone (the ledger)
//! runs on it with the session and the leaf's Feldman commitment.
//!
//! Guarantees: a judgement convicts a member only on its own signature over a contribution that
//! an honest holder never signs for that session: one whose check
//! `c_i·G = λ_i·S_i + Σ σ_ij·M_ij` fails, that is malformed, or whose mask commitment for a
//! peer differs from the true `m_ij·G` (recomputed from the revealed pair point). Anything else
//! (another session, a bad signature, a bad reveal, a correct contribution, no dispute) is
//! rejected and convicts nobody, so an honest member can never be convicted.
//!
//! **What is revealed.** A *bad contribution* is shown with the recipient's reveal of its box's
//! ephemeral Diffie–Hellman output: anyone then reads the culprit's `c_i`, which is masked by
//! pair masks the public does not know (and the box of a faulty holder only). A *dispute*
//! between `i` and `j` is shown with both signed contributions (their clear mask commitments,
//! not their boxes) and one member's reveal of the pair's static point `D_ij`: anyone learns the
//! masks of that pair, but nobody learns a `c` it did not have, so no share and no secret leaks;
//! only the recipient, who holds the honest member's `c`, may learn `λ·s` of the leaf it is
//! entitled to rebuild anyway. `D_ij` is the same for every session of the pair, but the faulty
//! member of the pair already knows it (and could publish it), and it is convicted and evicted,
//! so no later session pairs them again. An honest member answers a dispute only when the
//! other's signed claim is provably wrong ([`answer_dispute`]).

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::CompressedRistretto;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use x25519_dalek::{PublicKey, StaticSecret};

use super::{
    associated_data, consistent, mask, mask_index, parse_value, true_mask_commitment, Contribution,
    HolderKeys, ReconstructError, Session,
};
use crate::member::MemberId;
use crate::seal::{self, RevealedSecret, SealError};
use crate::shamir::{self, Commitment, EncodedCommitment};

/// Why a blame was rejected. Never contains secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlameError {
    /// The evidence does not prove a fault of anyone.
    #[error("blame rejected: {0}")]
    Rejected(&'static str),
}

/// Evidence of a fault in one signing session, as the ledger takes it (`TxBody::SignBlame`).
/// The quorum names the attempt; the ledger rebuilds the session from its own records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlameEvidence {
    /// The recipient's: a signed contribution that fails its own check, with the box revealed.
    BadContribution {
        /// The attempt's quorum (member ids).
        quorum: Vec<MemberId>,
        /// The accused's contribution, as signed.
        contribution: Contribution,
        /// The box's ephemeral Diffie–Hellman output with its proof; `None` when the
        /// ephemeral key itself is invalid (visible to anyone).
        reveal: Option<RevealedSecret>,
        /// The leaf's Feldman commitment, as dealt.
        commitment: EncodedCommitment,
        /// Its path to the sector's commitments root (`dealing::chunk_path`).
        path: Vec<[u8; 32]>,
    },
    /// A quorum member's: its own contribution and another member's, which disagree on the
    /// commitment of their pairwise mask, with the author's reveal of the pair's point.
    MaskDispute {
        /// The attempt's quorum (member ids).
        quorum: Vec<MemberId>,
        /// The revealing member's contribution.
        mine: Contribution,
        /// The other member's contribution.
        theirs: Contribution,
        /// `seal::reveal_pairwise` by `mine.sender` about `theirs.sender`.
        reveal: RevealedSecret,
    },
}

impl BlameEvidence {
    /// The attempt's quorum.
    pub fn quorum(&self) -> &[MemberId] {
        match self {
            BlameEvidence::BadContribution { quorum, .. }
            | BlameEvidence::MaskDispute { quorum, .. } => quorum,
        }
    }
}

/// Recipient side: the evidence against the sender of `contribution` (opened by us and found
/// faulty), revealing its box. `commitment` and `path` are the leaf's, as the holder sent them.
pub fn blame_contribution<R: RngCore + CryptoRng>(
    session: &Session,
    my_key: &StaticSecret,
    contribution: &Contribution,
    commitment: EncodedCommitment,
    path: Vec<[u8; 32]>,
    rng: &mut R,
) -> Result<BlameEvidence, ReconstructError> {
    let reveal = if seal::ephemeral_is_valid(&contribution.sealed) {
        Some(
            seal::reveal_ephemeral(my_key, &contribution.sealed, rng).map_err(|error| {
                ReconstructError::Seal {
                    sender: contribution.sender,
                    error,
                }
            })?,
        )
    } else {
        None
    };
    Ok(BlameEvidence::BadContribution {
        quorum: session.members(),
        contribution: contribution.clone(),
        reveal,
        commitment,
        path,
    })
}

/// Judges a recipient's blame of `contribution` in `session` against the leaf's `commitment`
/// (the caller checked it is the dealt one): the reason if it proves the sender's fault.
pub fn judge_contribution(
    session: &Session,
    commitment: &Commitment,
    contribution: &Contribution,
    reveal: Option<&RevealedSecret>,
) -> Result<&'static str, BlameError> {
    let reject = BlameError::Rejected;
    let pos = contribution.check_header(session).map_err(|e| match e {
        ReconstructError::BadSignature(_) => reject("contribution not signed by its sender"),
        ReconstructError::NotInQuorum(_) => reject("sender not in the quorum"),
        _ => reject("contribution for another session"),
    })?;
    if commitment.threshold() != session.quorum.len() {
        return Err(reject("commitment of another threshold"));
    }
    let Some(masks) = contribution.mask_points(session) else {
        return Ok("malformed mask commitments");
    };
    if !seal::ephemeral_is_valid(&contribution.sealed) {
        return Ok("invalid ephemeral key");
    }
    let reveal = reveal.ok_or(reject("no reveal of the box"))?;
    if !seal::x25519_key_is_valid(&session.recipient.x25519) {
        return Err(reject("recipient key cannot receive"));
    }
    let ad = associated_data(
        &contribution.context,
        &contribution.sender,
        &session.recipient.member,
    );
    let body = match seal::open_revealed(
        &PublicKey::from(session.recipient.x25519),
        &ad,
        &contribution.sealed,
        reveal,
    ) {
        Ok(body) => body,
        Err(SealError::BadReveal) => return Err(reject("reveal does not verify")),
        Err(_) => return Ok("box does not open"),
    };
    let Some(value) = parse_value(&body) else {
        return Ok("malformed body");
    };
    let members = session.members();
    let lambdas = shamir::lagrange_coefficients(&members, None)
        .map_err(|_| reject("quorum has no Lagrange coefficients"))?;
    match consistent(&members, &lambdas, pos, commitment, &value, &masks) {
        Ok(true) => Err(reject("contribution is correct")),
        Ok(false) => Ok("contribution contradicts the leaf's commitment"),
        Err(_) => Err(reject("no x-coordinate for the sender")),
    }
}

/// The two claims of a dispute: `(position of a, position of b, M_ab claimed by a, M_ba
/// claimed by b)` after the header checks of both.
fn claims(
    session: &Session,
    a: &Contribution,
    b: &Contribution,
) -> Result<(usize, usize, [u8; 32], [u8; 32]), BlameError> {
    let reject = BlameError::Rejected;
    let mut pos = [0usize; 2];
    for (i, c) in [a, b].iter().enumerate() {
        pos[i] = c.check_header(session).map_err(|e| match e {
            ReconstructError::BadSignature(_) => reject("contribution not signed by its sender"),
            ReconstructError::NotInQuorum(_) => reject("sender not in the quorum"),
            _ => reject("contribution for another session"),
        })?;
        if c.masks.len() + 1 != session.quorum.len() {
            return Err(reject("malformed mask commitments: blame the contribution"));
        }
    }
    let [pa, pb] = pos;
    if pa == pb {
        return Err(reject("both contributions are from one member"));
    }
    Ok((
        pa,
        pb,
        a.masks[mask_index(pa, pb)],
        b.masks[mask_index(pb, pa)],
    ))
}

/// Quorum-member side: our answer to a dispute the recipient reports between our contribution
/// `mine` and `theirs`: the reveal of our pair's point, only if `theirs` is signed for this
/// session and its claim about our pair is provably wrong while ours is right.
pub fn answer_dispute<R: RngCore + CryptoRng>(
    session: &Session,
    keys: HolderKeys<'_>,
    mine: &Contribution,
    theirs: &Contribution,
    rng: &mut R,
) -> Result<BlameEvidence, ReconstructError> {
    if mine.sender != keys.member {
        return Err(ReconstructError::NoDispute(theirs.sender));
    }
    let (_, pb, my_claim, their_claim) =
        claims(session, mine, theirs).map_err(|_| ReconstructError::NoDispute(theirs.sender))?;
    let peer = session.quorum[pb];
    let (truth, _) = true_mask_commitment(keys.x25519, &keys.member, &peer, &session.context())?;
    if my_claim != truth || their_claim == truth {
        return Err(ReconstructError::NoDispute(theirs.sender));
    }
    let reveal = seal::reveal_pairwise(keys.x25519, &peer.x25519, rng).map_err(|error| {
        ReconstructError::Seal {
            sender: peer.member,
            error,
        }
    })?;
    Ok(BlameEvidence::MaskDispute {
        quorum: session.members(),
        mine: mine.clone(),
        theirs: theirs.clone(),
        reveal,
    })
}

/// Judges a dispute in `session`: `reveal` must be `mine.sender`'s proven pair point with
/// `theirs.sender`; returns every member of the two whose signed claim differs from the true
/// `m·G` (one, or both if both lied).
pub fn judge_dispute(
    session: &Session,
    mine: &Contribution,
    theirs: &Contribution,
    reveal: &RevealedSecret,
) -> Result<Vec<MemberId>, BlameError> {
    let reject = BlameError::Rejected;
    let (pa, pb, claim_a, claim_b) = claims(session, mine, theirs)?;
    if claim_a == claim_b {
        return Err(reject("the two claims agree: no dispute"));
    }
    let (a, b) = (session.quorum[pa], session.quorum[pb]);
    let point = seal::verify_pairwise(&a.x25519, &b.x25519, reveal)
        .map_err(|_| reject("pair reveal does not verify"))?;
    let m = mask(&point, &session.context(), &a.member, &b.member);
    let truth = (&*m * RISTRETTO_BASEPOINT_TABLE).compress().to_bytes();
    let mut liars = Vec::new();
    for (member, claim) in [(a.member, claim_a), (b.member, claim_b)] {
        if CompressedRistretto(claim) != CompressedRistretto(truth) {
            liars.push(member);
        }
    }
    Ok(liars)
}
