//! The federation's keys on `/status`: each key's index, public key and master root, its
//! sectors (owner, root, audit), the convictions against sector owners, and what this node
//! holds (the driver fills in `held_sectors`). Public values only, from the ledger.

use seedfed_protocol::ledger::{leaf_id, ConvictionEvidence, LedgerState};
use serde::{Deserialize, Serialize};

/// The federation's key as the ledger has it, and what this node holds of it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The index of the newest key, which the fields below describe (being generated, or
    /// final); `keys` lists every key.
    #[serde(default)]
    pub index: u32,
    /// The key sign requests allocate from now (`None`: none endorsed with a leaf left).
    #[serde(default)]
    pub allocating: Option<u32>,
    /// Every key on the ledger, oldest first.
    #[serde(default)]
    pub keys: Vec<KeySummary>,
    /// `h`: the key has `2^h` one-time keys.
    pub tree_height: u8,
    /// `p`: `2^p` sectors.
    pub sector_bits: u8,
    /// `k`: shares that rebuild a leaf seed.
    pub leaf_threshold: u16,
    /// `r`: holders per leaf.
    pub leaf_holders: u16,
    /// `a`: acknowledgements every leaf needs before its sector root lands.
    pub ack_threshold: u16,
    /// Leaves of every sector the audit reconstructs publicly and retires (0: no audit).
    pub audit_leaves: u16,
    /// Sectors in the key.
    pub sectors_total: u32,
    /// Sectors whose root is on the ledger.
    pub sectors_final: usize,
    /// Sectors on the ledger whose audit passed.
    pub sectors_audited: usize,
    /// The sectors on the ledger.
    pub sectors: Vec<SectorInfo>,
    /// Owners convicted of a bad dealing of this key (evicted), with what proved it.
    pub convictions: Vec<ConvictionInfo>,
    /// The master root (hex), once final.
    pub master_root: Option<String>,
    /// The RFC 8554 public key in the HSS L=1 encoding (hex), once the master root is final.
    pub public_key: Option<String>,
    /// One-time keys in the key.
    pub leaves_total: u64,
    /// One-time keys allocated to signing requests (every key).
    pub leaves_allocated: u64,
    /// Allocated one-time keys whose signature is on the ledger (every key).
    #[serde(default)]
    pub leaves_signed: u64,
    /// One-time keys retired by audits (never allocated).
    pub leaves_retired: u64,
    /// Sectors this node holds leaf shares of (sealed in its store).
    pub held_sectors: usize,
    /// Blocks an owner has to land its sector root (`key.sector_window`).
    #[serde(default)]
    pub sector_window: u64,
    /// Owners that missed their sector window (hex identities; they own no sector of the key
    /// any more, and stay validators).
    #[serde(default)]
    pub missed: Vec<String>,
}

/// One key of the federation: where its generation and its use stand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySummary {
    /// Its index.
    pub index: u32,
    /// Sectors whose root is on the ledger.
    pub sectors_final: usize,
    /// The RFC 8554 public key in the HSS L=1 encoding (hex), once the master root is final.
    pub public_key: Option<String>,
    /// Sequence number of the checkpoint that endorsed it (it allocates only after).
    pub endorsed: Option<u64>,
    /// Leaves allocated to signing requests.
    pub leaves_allocated: u64,
    /// Leaves neither allocated nor retired.
    pub leaves_left: u64,
    /// Leaves retired by audits.
    pub leaves_retired: u64,
}

/// A sector on the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectorInfo {
    /// Sector index.
    pub sector: u32,
    /// Its owner (hex identity).
    pub owner: String,
    /// Its Merkle root (hex).
    pub root: String,
    /// The root of its leaves' Feldman commitments (hex).
    pub commitments_root: String,
    /// Holders that acknowledged their shares.
    pub acked: usize,
    /// Its audit: `drawing` (partials for the draw), `revealing` (leaves drawn, shares and
    /// paths coming in), `passed`; `off` without audits.
    pub audit: String,
    /// The audited leaves, once drawn.
    pub audit_leaves: Vec<u64>,
}

/// A dealer convicted on the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvictionInfo {
    /// The convicted owner (hex identity).
    pub member: String,
    /// The sector it was convicted on.
    pub sector: u32,
    /// Block height of the conviction.
    pub height: u64,
    /// `complaint` (a holder proved a bad batch), `audit` (a seed does not match the tree),
    /// `sign-blame` (a bad contribution or mask dispute) or `leaf-mismatch` (at signing, a
    /// dealt seed does not generate the leaf key the owner's sector root commits to).
    pub by: String,
    /// What the evidence proved.
    pub reason: String,
}

/// The key part of a status, from the ledger (the driver fills in `held_sectors`).
pub fn key_info(s: &LedgerState) -> KeyInfo {
    let public = |index| s.key_public(index).map(|pk| hex::encode(pk.encode_hss()));
    let keys = s
        .keys()
        .map(|k| KeySummary {
            index: k.index,
            sectors_final: k.sectors.len(),
            public_key: public(k.index),
            endorsed: k.endorsed,
            leaves_allocated: s
                .sign_requests
                .range(leaf_id(k.index, 0)..leaf_id(k.index + 1, 0))
                .count() as u64,
            leaves_left: k.leaves_left(&s.key),
            leaves_retired: k.retired_leaves().len() as u64,
        })
        .collect();
    KeyInfo {
        index: s.newest.index,
        allocating: s.allocating_key(),
        keys,
        tree_height: s.key.tree_height,
        sector_bits: s.key.sector_bits,
        leaf_threshold: s.key.leaf_threshold,
        leaf_holders: s.key.leaf_holders,
        ack_threshold: s.key.ack_threshold,
        audit_leaves: s.key.audit_leaves,
        sectors_total: s.key.sectors(),
        sectors_final: s.newest.sectors.len(),
        sectors: s
            .newest
            .sectors
            .iter()
            .map(|(i, r)| SectorInfo {
                sector: *i,
                owner: hex::encode(r.owner.as_bytes()),
                root: hex::encode(r.root),
                commitments_root: hex::encode(r.commitments_root),
                acked: r.acked.len(),
                audit: match s.newest.audits.get(i) {
                    _ if s.key.audit_leaves == 0 => "off",
                    Some(a) if a.passed() => "passed",
                    Some(a) if !a.leaves.is_empty() => "revealing",
                    _ => "drawing",
                }
                .into(),
                audit_leaves: s
                    .newest
                    .audits
                    .get(i)
                    .map(|a| a.leaves.keys().copied().collect())
                    .unwrap_or_default(),
            })
            .collect(),
        sectors_audited: s.newest.audits.values().filter(|a| a.passed()).count(),
        convictions: s
            .newest
            .keygen_convictions
            .iter()
            .chain(&s.sign_convictions)
            .map(|(m, c)| ConvictionInfo {
                member: hex::encode(m.as_bytes()),
                sector: c.sector,
                height: c.height,
                by: match c.evidence {
                    ConvictionEvidence::Complaint { .. } => "complaint",
                    ConvictionEvidence::Audit { .. } => "audit",
                    ConvictionEvidence::Signing { .. } => "sign-blame",
                    ConvictionEvidence::Mismatch { .. } => "leaf-mismatch",
                }
                .into(),
                reason: c.reason.clone(),
            })
            .collect(),
        master_root: s.newest.master_root.map(hex::encode),
        public_key: public(s.newest.index),
        leaves_total: s.key.leaves(),
        leaves_allocated: s.sign_requests.len() as u64,
        leaves_signed: s.signatures.len() as u64,
        leaves_retired: s.newest.retired_leaves().len() as u64,
        held_sectors: 0,
        sector_window: s.key.sector_window,
        missed: s
            .newest
            .keygen_misses
            .keys()
            .map(|m| hex::encode(m.as_bytes()))
            .collect(),
    }
}
