//! Ledger transactions, their author signatures, the DKG payloads they carry, and eviction
//! evidence.
//!
//! Every transaction names its author (an Ed25519 key = [`MemberId`]) and the author's next
//! sequence number (`nonce`), and is signed by the author over a domain-separated hash of the
//! chain id and the transaction's canonical encoding. The nonce makes every signed transaction
//! usable exactly once; the chain id stops replays across federations. Transaction signatures
//! are checked with `ed25519-dalek`'s `verify_strict` (no small-order keys, canonical `S`).
//!
//! Consensus votes use their own sign bytes ([`vote_digest`]) so that a vote can serve as
//! ledger evidence (equivocation, last-commit signatures). Vote signatures are verified with
//! the ZIP-215 rules of `ed25519-consensus` (the verifier Malachite's Ed25519 scheme uses),
//! so that consensus and ledger accept exactly the same votes.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::client::{ClientChange, SignedRequest};
use super::codec::encode;
use super::error::LedgerError;
use crate::admission::Proof;
use crate::dealing::DealAck;
use crate::hash::{hash32, Domain};
use crate::member::MemberId;
use crate::mismatch::LeafMismatch;
use crate::reconstruct::blame::BlameEvidence;
use crate::seal::PossessionProof;
use crate::shamir::EncodedCommitment;

const TX_DOMAIN: Domain = Domain::new("seedfed-ledgertx");
const VOTE_DOMAIN: Domain = Domain::new("seedfed-vote");

/// Largest opaque payload (DKG messages, LMS signatures) a transaction may carry.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// A 64-byte Ed25519 signature (serialised as a byte string).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Signature64(pub [u8; 64]);

impl std::fmt::Debug for Signature64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sig({})", hex::encode(&self.0[..6]))
    }
}

impl Serialize for Signature64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Signature64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Signature64;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Signature64, E> {
                let arr: [u8; 64] = v
                    .try_into()
                    .map_err(|_| E::invalid_length(v.len(), &self))?;
                Ok(Signature64(arr))
            }
            fn visit_borrowed_bytes<E: serde::de::Error>(
                self,
                v: &'de [u8],
            ) -> Result<Signature64, E> {
                self.visit_bytes(v)
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Signature64, E> {
                self.visit_bytes(&v)
            }
        }
        d.deserialize_bytes(V)
    }
}

/// Kind of consensus vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum VoteKind {
    /// First voting step.
    Prevote,
    /// Second voting step; a quorum of these commits a block.
    Precommit,
}

/// A signed consensus vote as it appears in ledger evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteRecord {
    /// Height voted on.
    pub height: u64,
    /// Round voted in.
    pub round: u32,
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// Block hash voted for, `None` for nil.
    pub value: Option<[u8; 32]>,
    /// The voter.
    pub validator: MemberId,
    /// The voter's signature over [`vote_digest`].
    pub signature: Signature64,
}

/// The 32-byte message a validator signs for a vote.
pub fn vote_digest(
    chain_id: &str,
    height: u64,
    round: u32,
    kind: VoteKind,
    value: Option<&[u8; 32]>,
    validator: &MemberId,
) -> [u8; 32] {
    let kind_byte = [match kind {
        VoteKind::Prevote => 1u8,
        VoteKind::Precommit => 2u8,
    }];
    let (tag, val): (&[u8], &[u8]) = match value {
        Some(v) => (&[1], v),
        None => (&[0], &[]),
    };
    hash32(
        VOTE_DOMAIN,
        &[],
        &[0; 16],
        &[
            chain_id.as_bytes(),
            &height.to_le_bytes(),
            &round.to_le_bytes(),
            &kind_byte,
            tag,
            val,
            validator.as_bytes(),
        ],
    )
}

/// Verifies an Ed25519 vote signature with the consensus (ZIP-215) rules.
pub fn verify_vote_signature(
    validator: &MemberId,
    digest: &[u8; 32],
    signature: &Signature64,
) -> bool {
    let Ok(pk) = malachitebft_signing_ed25519::PublicKey::from_bytes(validator.0) else {
        return false;
    };
    let sig = malachitebft_signing_ed25519::Signature::from_bytes(signature.0);
    pk.verify(digest, &sig).is_ok()
}

impl VoteRecord {
    /// The digest this vote's signature covers.
    pub fn digest(&self, chain_id: &str) -> [u8; 32] {
        vote_digest(
            chain_id,
            self.height,
            self.round,
            self.kind,
            self.value.as_ref(),
            &self.validator,
        )
    }

    /// Whether the signature verifies.
    pub fn verify(&self, chain_id: &str) -> bool {
        verify_vote_signature(&self.validator, &self.digest(chain_id), &self.signature)
    }
}

/// Evidence that a validator should be evicted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Evidence {
    /// The validator missed at least the genesis bound of consecutive commits, as counted by
    /// the ledger from blocks' last-commit records. The claimed count is checked against the
    /// ledger's own counter.
    Inactivity {
        /// Consecutive missed heights claimed.
        missed_heights: u64,
    },
    /// Two different votes by the validator for the same height, round and kind.
    Equivocation {
        /// One vote.
        a: Box<VoteRecord>,
        /// A conflicting vote.
        b: Box<VoteRecord>,
    },
}

/// Which of the two DKGs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DkgSuite {
    /// ristretto255: the seed-tree root key and the beacon's threshold PRF.
    Ristretto255,
    /// Ed25519: the checkpoint signing key.
    Ed25519,
}

/// A `DkgCommitment` payload: the author's frost round-1 packages for both suites.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Round1Payload {
    /// `frost_ristretto255::keys::dkg::round1::Package::serialize`.
    pub ristretto255: Vec<u8>,
    /// `frost_ed25519::keys::dkg::round1::Package::serialize`.
    pub ed25519: Vec<u8>,
}

/// A `DkgComplaint` payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplaintPayload {
    /// The DKG the complaint is about.
    pub suite: DkgSuite,
    /// `dkg::Complaint::encode`.
    pub complaint: Vec<u8>,
}

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxBody {
    /// The author joins as a member (stake arrives by transfer).
    Admit {
        /// libp2p `PeerId` bytes; must be the identity multihash of the author's key.
        peer_id: Vec<u8>,
        /// X25519 key for share encryption.
        x25519: [u8; 32],
        /// Proof of work over (chain id, peer id, x25519) at the ledger's current difficulty
        /// (`LedgerState::pow_difficulty`).
        pow: Proof,
        /// Proof of possession of the X25519 key, bound to (chain id, peer id)
        /// (`admission::possession_context`).
        x25519_proof: PossessionProof,
    },
    /// Move stake from the author to another member.
    Transfer {
        /// Recipient, an admitted member.
        to: MemberId,
        /// Amount, non-zero.
        amount: u64,
    },
    /// The author leaves the federation; its stake stops counting.
    Exit,
    /// Evict a validator on evidence.
    Evict {
        /// The validator to evict.
        member: MemberId,
        /// Why.
        evidence: Evidence,
    },
    /// The author's DKG round-1 packages for the current epoch: the [`encode`]d
    /// [`Round1Payload`] (ristretto255 and Ed25519 frost packages). Accepted only inside the
    /// round-1 window, with valid proofs of knowledge and degree.
    DkgCommitment {
        /// Epoch the DKG belongs to.
        epoch: u64,
        /// The encoded [`Round1Payload`].
        payload: Vec<u8>,
    },
    /// A DKG complaint against a dealer: the [`encode`]d [`ComplaintPayload`] (suite +
    /// `dkg::Complaint`). Accepted only inside the complaint window and only if it convicts
    /// (`Bad`) or is owed (`Missing`).
    DkgComplaint {
        /// Epoch the DKG belongs to.
        epoch: u64,
        /// The accused dealer.
        accused: MemberId,
        /// The encoded [`ComplaintPayload`].
        payload: Vec<u8>,
    },
    /// A dealer's answer to a `Missing` complaint: the signed round-2 envelope
    /// (`dkg::Envelope::encode`) it owes the complainer, published (still sealed to the
    /// recipient).
    DkgAnswer {
        /// Epoch the DKG belongs to.
        epoch: u64,
        /// Which of the two DKGs.
        suite: DkgSuite,
        /// The encoded envelope; its sender must be the author.
        envelope: Vec<u8>,
    },
    /// Closes the current epoch's DKG after the complaint window: the ledger computes the
    /// qualified set and both public key packages (or records the failure and reopens the DKG).
    DkgFinalize {
        /// Epoch the DKG belongs to.
        epoch: u64,
    },
    /// The author's threshold-PRF partial (with its DLEQ proof) for the beacon of `epoch`
    /// (= current + 1), under the ristretto255 key of the current epoch's completed DKG.
    BeaconPartial {
        /// The epoch whose beacon this contributes to.
        epoch: u64,
        /// The partial; `partial.member` must be the author.
        partial: crate::tprf::Partial,
    },
    /// Start the next epoch: snapshot the validator set, record the epoch beacon.
    EpochStart {
        /// The new epoch (current + 1).
        epoch: u64,
        /// The epoch beacon: the threshold PRF of (chain digest, epoch) combined from the first
        /// `t` partials on the ledger; the ledger recomputes it.
        beacon: [u8; 32],
    },
    /// The author's FROST round-1 commitments (`SigningCommitments::serialize`) for attempt
    /// `attempt` of checkpoint number `checkpoint`; the first `t` fix the signer set.
    CheckpointCommit {
        /// Sequence number of the due checkpoint.
        checkpoint: u64,
        /// Signing attempt (starts at 0; a new attempt after a bad share or a timeout).
        attempt: u32,
        /// Serialised frost-ed25519 `SigningCommitments`.
        commitments: Vec<u8>,
    },
    /// The author's FROST signature share (`SignatureShare::serialize`) for the signer set the
    /// ledger fixed; with all `t` shares in, the ledger aggregates and verifies.
    CheckpointShare {
        /// Sequence number of the due checkpoint.
        checkpoint: u64,
        /// Signing attempt.
        attempt: u32,
        /// Serialised frost-ed25519 `SignatureShare`.
        share: Vec<u8>,
    },
    /// The branch-owner assignment for the current epoch, checked by recomputation.
    BranchAssignment {
        /// Epoch.
        epoch: u64,
        /// Owner of each sector `0..2^p`.
        owners: Vec<MemberId>,
    },
    /// A sector (portion) root, published by its owner, with the holders' acknowledgements
    /// that they stored their shares (`dealing`); each leaf's holders are chosen by the ledger.
    SectorRoot {
        /// Sector index.
        sector: u32,
        /// The portion's Merkle root.
        root: [u8; 32],
        /// The root of the sector's per-leaf Feldman commitments (`dealing::commitments_root`).
        commitments_root: [u8; 32],
        /// Holders' signed acknowledgements over the commitments root (distinct holders).
        acks: Vec<DealAck>,
    },
    /// A holder's proof that the owner of a sector not yet published dealt it a bad batch:
    /// the [`encode`]d `dealing::DealComplaint` (the batch's signed fields, the box's revealed
    /// secret, and the accused leaf's commitment with its path to the signed chunk root), at
    /// most [`MAX_PAYLOAD_BYTES`]. If it proves the fault, the owner is convicted and evicted
    /// and its unpublished sectors go to the next rendezvous choice.
    DealComplaint {
        /// Sector index.
        sector: u32,
        /// The encoded `dealing::DealComplaint`.
        complaint: Vec<u8>,
    },
    /// A validator's threshold-PRF partial (with its DLEQ proof) for the audit draw of a
    /// published sector (`audit::draw_input`), under the root key the audit names
    /// (`SectorAudit::key_epoch`). The first `t` fix the draw.
    AuditPartial {
        /// Sector index.
        sector: u32,
        /// The partial; `partial.member` must be the author.
        partial: crate::tprf::Partial,
    },
    /// A holder's share of an audited leaf, in clear (the leaf is retired, never allocated),
    /// with the leaf's encoded commitment and its path to the sector's commitments root.
    AuditReveal {
        /// Sector index.
        sector: u32,
        /// The audited leaf (global index).
        leaf: u64,
        /// The author's share value (canonical scalar bytes).
        share: [u8; 32],
        /// The leaf's Feldman commitment, as dealt.
        commitment: EncodedCommitment,
        /// Its path to the commitments root (`dealing::chunk_path` over the whole sector).
        path: Vec<[u8; 32]>,
    },
    /// The sector owner's authentication path of an audited leaf inside its sector (`h − p`
    /// nodes, leaf level first), checked with the seed the holders' shares rebuild.
    AuditPath {
        /// Sector index.
        sector: u32,
        /// The audited leaf (global index).
        leaf: u64,
        /// The path.
        path: Vec<[u8; 32]>,
    },
    /// The master (system public key) root, once every sector is published.
    MasterRoot {
        /// The root of the top `p` levels.
        root: [u8; 32],
    },
    /// Request a signature: allocates the next leaf.
    SignRequest {
        /// The authorized client's signed request (digest, epoch, nonce, key issuance).
        request: SignedRequest,
    },
    /// Approve a change of the authorized clients (applied once validators holding more
    /// than 2/3 of the stake approved the same change).
    ClientChange {
        /// The change.
        change: ClientChange,
    },
    /// Publish the LMS signature for an allocated leaf.
    SignaturePublish {
        /// The leaf used.
        leaf: u64,
        /// The one-level HSS encoding of the LMS signature (`LmsSignature::encode_hss`) on the
        /// request's digest; verified against the master public key.
        signature: Vec<u8>,
    },
    /// Evidence that quorum members of an allocated leaf's reconstruction misbehaved
    /// (`reconstruct::blame`): the recipient's reveal of a bad contribution, or a disputing
    /// member's reveal of its pair's point. The ledger rebuilds the session from the request
    /// and the sector record, judges it, and convicts and evicts whoever it proves faulty.
    SignBlame {
        /// The leaf.
        leaf: u64,
        /// The evidence (boxed: it is much larger than most bodies).
        evidence: Box<BlameEvidence>,
    },
    /// Record that a sector's shares held by `lost` now live on `replacement`.
    Repair {
        /// Sector repaired.
        sector: u32,
        /// The holder whose shares were re-dealt.
        lost: MemberId,
        /// The new holder.
        replacement: MemberId,
    },
    /// Approve setting the admission proof-of-work difficulty to `difficulty` (applied once
    /// validators holding more than 2/3 of the stake approved the same value; the value must
    /// lie between the genesis difficulty and `admission::MAX_DIFFICULTY` and differ from the
    /// current one). After the older variants, so their encodings do not move.
    PowDifficulty {
        /// Leading zero bits required from now on.
        difficulty: u8,
    },
    /// The author, a dealer of the current DKG attempt, holds valid shares from every other
    /// dealer in both suites and has nothing to complain about. Once every dealer has posted
    /// one and no complaint is on the ledger, the complaint window closes (the DKG can be
    /// finalised in the next block instead of after the full window).
    DkgAck {
        /// Epoch the DKG belongs to.
        epoch: u64,
        /// The attempt acknowledged.
        attempt: u32,
    },
    /// Does nothing but use up the author's nonce. A node signs one at the nonce of its own
    /// pending transaction that can no longer apply (a duty whose window passed, one another
    /// validator's equal transaction beat to the ledger): the transactions behind it keep
    /// their nonces and stay valid, instead of all being dropped and signed again.
    Filler,
    /// Evidence that an allocated leaf's rebuilt seed, the secret of its commitment, does not
    /// generate the leaf key the owner's sector root commits to (`mismatch::judge`). The ledger
    /// retires the leaf, gives its request the next free leaf, convicts and evicts the owner and
    /// withdraws the owner's sectors of that key from allocation.
    LeafMismatch {
        /// The evidence (boxed: it is much larger than most bodies).
        evidence: Box<LeafMismatch>,
    },
}

/// An unsigned transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tx {
    /// Author (signer).
    pub author: MemberId,
    /// The author's sequence number: 0 for its first transaction, then +1 each time.
    pub nonce: u64,
    /// What it does.
    pub body: TxBody,
}

impl Tx {
    /// The digest the author signs (also the transaction id).
    pub fn digest(&self, chain_id: &str) -> [u8; 32] {
        hash32(
            TX_DOMAIN,
            &[],
            &[0; 16],
            &[chain_id.as_bytes(), &encode(self)],
        )
    }

    /// Signs with the author's key. The key must match `author`.
    pub fn sign(self, chain_id: &str, key: &SigningKey) -> SignedTx {
        let sig = key.sign(&self.digest(chain_id));
        SignedTx {
            tx: self,
            signature: Signature64(sig.to_bytes()),
        }
    }
}

/// A transaction with its author's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTx {
    /// The transaction.
    pub tx: Tx,
    /// Ed25519 signature over [`Tx::digest`].
    pub signature: Signature64,
}

impl SignedTx {
    /// Checks the author's signature (strict Ed25519).
    pub fn verify(&self, chain_id: &str) -> Result<(), LedgerError> {
        self.verify_digest(&self.tx.digest(chain_id))
    }

    /// [`SignedTx::verify`] with the digest already computed (`self.tx.digest(chain_id)`).
    pub(crate) fn verify_digest(&self, digest: &[u8; 32]) -> Result<(), LedgerError> {
        let author = self.tx.author;
        let vk = VerifyingKey::from_bytes(author.as_bytes())
            .map_err(|_| LedgerError::BadAuthorKey(author))?;
        let sig = ed25519_dalek::Signature::from_bytes(&self.signature.0);
        vk.verify_strict(digest, &sig)
            .map_err(|_| LedgerError::BadSignature(author))?;
        Ok(())
    }
}

/// The libp2p `PeerId` bytes of an Ed25519 identity: the identity multihash (code 0x00,
/// length 36) of the protobuf `PublicKey { Type: Ed25519, Data: key }`.
pub fn peer_id_bytes(member: &MemberId) -> Vec<u8> {
    let mut out = vec![0x00, 0x24, 0x08, 0x01, 0x12, 0x20];
    out.extend_from_slice(member.as_bytes());
    out
}
