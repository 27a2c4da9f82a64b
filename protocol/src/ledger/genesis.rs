//! The genesis document and the parameters fixed in it.
//!
//! Guarantees: [`Genesis::hash`] is the hash of the document's canonical encoding (the
//! `prev_hash` of block 1), and [`chain_digest`] and [`KeyParams::layout`] are pure functions
//! of the document, so every node derives the same chain digest and LMS layout from it. The
//! checks a genesis must pass are made when the state is built from it
//! ([`LedgerState::from_genesis`](crate::ledger::LedgerState::from_genesis)).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::codec::encode;
use crate::hash::{hash32, Domain};
use crate::lmots::LmotsType;
use crate::lms::LmsType;
use crate::member::MemberId;
use crate::sector::TreeLayout;

const GENESIS_DOMAIN: Domain = Domain::new("seedfed-genesis");
const CHAIN_DOMAIN: Domain = Domain::new("seedfed-chainid");
const KEY_ID_DOMAIN: Domain = Domain::new("seedfed-lmskeyid");

/// The 32-byte form of a chain id: BLAKE2b-256 of the UTF-8 string, personalised
/// `seedfed-chainid`. Used wherever 32 bytes are needed (DKG sessions, the beacon input,
/// checkpoints, light clients); transaction and vote signatures keep the string itself.
pub fn chain_digest(chain_id: &str) -> [u8; 32] {
    hash32(CHAIN_DOMAIN, &[], &[0; 16], &[chain_id.as_bytes()])
}

/// Largest total stake (so that `3 * total` fits a `u64` in the consensus thresholds).
pub const MAX_TOTAL_STAKE: u64 = u64::MAX / 4;

/// Parameters of the federation's signing key, fixed at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyParams {
    /// Height `h` of the whole LMS tree: the key has `2^h` one-time keys.
    pub tree_height: u8,
    /// `p`: the tree is split into `2^p` sectors (branches), `p <= h`.
    pub sector_bits: u8,
    /// `k`: shares needed to reconstruct a leaf seed.
    pub leaf_threshold: u16,
    /// `r`: holders of each leaf seed's shares.
    pub leaf_holders: u16,
    /// `a`: acknowledgements a sector root needs for every leaf from that leaf's own holders
    /// (`k ≤ a ≤ r`; default `min(k + 1, r)`, see [`KeyParams::default_ack_threshold`]).
    pub ack_threshold: u16,
    /// Leaves of every published sector the audit draws, reconstructs publicly and retires
    /// (`docs/protocol.md` step 6); 0 turns the audit off. Fewer than a sector's leaves.
    pub audit_leaves: u16,
    /// Blocks a sector owner has to land its sector root, counted from the block that assigned
    /// it the sector or last changed the holder basis; an owner that misses it loses its
    /// unpublished sectors and owns none of this key again (`docs/protocol.md` step 5).
    /// Default [`DEFAULT_SECTOR_WINDOW`]; must be > 0.
    pub sector_window: u64,
    /// The next key's generation starts when an allocation leaves fewer than this percentage
    /// of the newest key's leaves unallocated (`ledger::state::keys`); 0 never rotates.
    /// Default [`KeyParams::DEFAULT_ROTATE_PERCENT`]; at most 100.
    pub rotate_percent: u8,
}

/// The default [`KeyParams::sector_window`]: 64 blocks (about 13 s at the default 200 ms
/// block interval); a key whose sectors take longer to generate needs a larger one.
pub const DEFAULT_SECTOR_WINDOW: u64 = 64;

impl KeyParams {
    /// The default number of audited leaves per sector.
    pub const DEFAULT_AUDIT_LEAVES: u16 = 2;

    /// The default [`KeyParams::rotate_percent`]: the next key is generated while a quarter of
    /// the key in use is left.
    pub const DEFAULT_ROTATE_PERCENT: u8 = 25;

    /// The default acknowledgement threshold for `k`-of-`r`: one more than `k`, so a leaf
    /// survives one holder's loss before repair, capped at `r`.
    pub fn default_ack_threshold(k: u16, r: u16) -> u16 {
        k.saturating_add(1).min(r)
    }

    /// Number of one-time keys, `2^h`.
    pub fn leaves(&self) -> u64 {
        1u64 << self.tree_height
    }

    /// Number of sectors, `2^p`.
    pub fn sectors(&self) -> u32 {
        1u32 << self.sector_bits
    }

    /// The LMS layout of the federation's key number `index` on chain `chain_digest`: LMS type
    /// of height `h` (SHA-256/N32), LM-OTS `SHA256_N32_W4`, `p` sector levels, and the key
    /// identifier `I` = the first 16 bytes of BLAKE2b(`seedfed-lmskeyid`, chain digest,
    /// u64le(index)). Sector owners build their portions with this layout and the ledger checks
    /// the master root and published signatures against it.
    pub fn layout(&self, chain_digest: &[u8; 32], index: u32) -> Result<TreeLayout, GenesisError> {
        let lms_type = LmsType::from_height(u32::from(self.tree_height)).ok_or(
            GenesisError::BadKeyParams("tree height must be 5, 10, 15, 20 or 25"),
        )?;
        let digest = hash32(
            KEY_ID_DOMAIN,
            &[],
            &[0; 16],
            &[chain_digest, &u64::from(index).to_le_bytes()],
        );
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        TreeLayout::new(lms_type, LmotsType::W4, id, u32::from(self.sector_bits))
            .map_err(|_| GenesisError::BadKeyParams("sector bits must be below the tree height"))
    }
}

/// Block windows of the epoch cycle, fixed at genesis. Blocks come continuously (a few per
/// second on a local testnet), so these are small numbers of blocks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochParams {
    /// Length `R` of the DKG round-1 window (round-1 packages on the ledger).
    pub dkg_round1_blocks: u64,
    /// Length `C` of the complaint window after round 1 (envelopes, complaints, answers).
    /// `Missing` complaints close after `⌈C/2⌉` blocks, answers after `⌈C/2⌉ + ⌊C/4⌋`
    /// (`DkgRound::answer_end`), `Bad` complaints at `C`; use `C ≥ 4` so that a dealer can
    /// answer a late `Missing` complaint and a recipient can still convict a bad answer.
    pub dkg_complaint_blocks: u64,
    /// Minimum number of blocks between an epoch's start and the next `EpochStart`.
    pub epoch_min_blocks: u64,
    /// Blocks after which a checkpoint signing attempt that has not completed may be superseded
    /// by a new attempt.
    pub checkpoint_attempt_blocks: u64,
}

impl Default for EpochParams {
    /// Local-testnet defaults: 10 / 10 / 30 / 10 blocks.
    fn default() -> Self {
        EpochParams {
            dkg_round1_blocks: 10,
            dkg_complaint_blocks: 10,
            epoch_min_blocks: 30,
            checkpoint_attempt_blocks: 10,
        }
    }
}

/// One validator in the genesis document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisValidator {
    /// Ed25519 identity.
    pub id: MemberId,
    /// Initial stake (voting power).
    pub stake: u64,
    /// X25519 key for end-to-end share encryption.
    pub x25519: [u8; 32],
}

/// An authorized client as the genesis lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisClient {
    /// The client's Ed25519 key.
    pub key: MemberId,
    /// Requests it may make per epoch.
    pub quota: u32,
}

/// The genesis document: everything the first block builds on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// Chain (federation) identifier; part of every signature and proof of work.
    pub chain_id: String,
    /// Leading zero bits required of an admission proof of work.
    pub pow_difficulty: u8,
    /// Initial validators.
    pub validators: Vec<GenesisValidator>,
    /// Parameters of the signing key.
    pub key: KeyParams,
    /// A validator that misses this many consecutive commits may be evicted for inactivity.
    pub eviction_missed_heights: u64,
    /// Block windows of the epoch cycle (DKG rounds, minimum epoch length).
    pub epochs: EpochParams,
    /// Clients authorized to request signatures (`client`).
    pub clients: Vec<GenesisClient>,
}

impl Genesis {
    /// The hash of the genesis document; the `prev_hash` of block 1.
    pub fn hash(&self) -> [u8; 32] {
        hash32(GENESIS_DOMAIN, &[], &[0; 16], &[&encode(self)])
    }
}

/// Why a genesis document is unusable.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum GenesisError {
    /// No validator with non-zero stake.
    #[error("genesis has no validator with stake")]
    NoValidators,
    /// A validator appears twice.
    #[error("validator {0} listed twice in genesis")]
    DuplicateValidator(MemberId),
    /// Key parameters are out of range.
    #[error("bad key parameters: {0}")]
    BadKeyParams(&'static str),
    /// PoW difficulty above the admission module's maximum.
    #[error("proof-of-work difficulty {0} out of range")]
    BadDifficulty(u8),
    /// A validator's X25519 key is low-order, off the curve or non-canonical.
    #[error("validator {0} has an invalid X25519 key")]
    BadX25519(MemberId),
    /// A client is listed twice or its key is not an Ed25519 point.
    #[error("client {0} listed twice or not an Ed25519 key")]
    BadClient(MemberId),
    /// Total stake above [`MAX_TOTAL_STAKE`].
    #[error("total stake too large")]
    StakeOverflow,
}
