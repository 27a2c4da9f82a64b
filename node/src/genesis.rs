//! The genesis file (TOML): the chain id, the admission proof-of-work difficulty, the initial
//! validators with their stake and X25519 keys, the signing-key parameters (`[key]`) and the epoch
//! windows (`[epochs]`). [`Genesis::load`] checks it; [`Genesis::to_ledger`] also checks the key
//! parameters and gives the ledger's genesis, whose hash every block builds on. It holds no group
//! key: the first group keys come from epoch 0's DKG on the chain (`docs/light-client.md`).

use std::collections::BTreeMap;
use std::path::Path;

use libp2p::PeerId;
use seedfed_protocol::ledger;
pub use seedfed_protocol::ledger::EpochParams;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// One initial validator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    /// The validator's libp2p peer id (base58).
    pub peer_id: String,
    /// Its stake.
    pub stake: u64,
    /// Its X25519 share-encryption public key (64 hex digits, from `seedfed keys show`).
    pub x25519: String,
}

/// A client authorized to request signatures (`[[clients]]` in the file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisClient {
    /// The client's Ed25519 public key: 64 hex digits, or the peer id of a node whose identity
    /// key is the client (`seedfed keys show`).
    pub key: String,
    /// Sign requests it may make per epoch.
    pub quota: u32,
}

/// Parameters of the federation's LMS key and the ledger (`[key]` in the file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeySection {
    /// Height of the whole LMS tree (`2^h` one-time keys).
    pub tree_height: u8,
    /// The tree is split into `2^p` sectors (branches).
    pub sector_bits: u8,
    /// Shares needed to reconstruct a leaf seed (`k`).
    pub leaf_threshold: u16,
    /// Holders of each leaf seed's shares (`r`).
    pub leaf_holders: u16,
    /// Acknowledgements a sector root needs for each leaf from its own holders (`k ≤ a ≤ r`);
    /// unset: `min(k + 1, r)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_threshold: Option<u16>,
    /// Leaves of every published sector the audit draws, reconstructs publicly and retires
    /// (0: no audit).
    pub audit_leaves: u16,
    /// Blocks a sector owner has to land its sector root once assigned the sector (or once
    /// the holder basis changed); an owner that misses it loses its unpublished sectors to the
    /// next choice and owns none again. Must be > 0.
    pub sector_window: u64,
    /// The next key is generated once an allocation leaves fewer than this percentage of the
    /// newest key's one-time keys (0: never; at most 100).
    pub rotate_percent: u8,
    /// A validator missing this many consecutive commits may be evicted for inactivity.
    pub eviction_missed_heights: u64,
}

impl Default for KeySection {
    fn default() -> Self {
        Self {
            tree_height: 10,
            sector_bits: 2,
            leaf_threshold: 2,
            leaf_holders: 3,
            ack_threshold: None,
            audit_leaves: ledger::KeyParams::DEFAULT_AUDIT_LEAVES,
            sector_window: ledger::DEFAULT_SECTOR_WINDOW,
            rotate_percent: ledger::KeyParams::DEFAULT_ROTATE_PERCENT,
            eviction_missed_heights: 1000,
        }
    }
}

/// The genesis of a federation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// The chain (federation) identifier.
    pub chain_id: String,
    /// Leading zero bits required of an admission proof-of-work.
    pub pow_difficulty: u8,
    /// Initial validators and their stake.
    #[serde(default)]
    pub validators: Vec<GenesisValidator>,
    /// Signing-key and ledger parameters.
    #[serde(default)]
    pub key: KeySection,
    /// Block windows of the epoch cycle (DKG rounds, epoch length, checkpoint retries).
    #[serde(default)]
    pub epochs: EpochParams,
    /// Clients authorized to request signatures; validators holding more than 2/3 of the
    /// stake change the list on the ledger.
    #[serde(default)]
    pub clients: Vec<GenesisClient>,
}

/// Why a genesis file was rejected.
#[derive(Debug, Error)]
pub enum GenesisError {
    /// The file could not be read.
    #[error("cannot read genesis file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid genesis TOML.
    #[error("genesis file {path} is not valid: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The content is inconsistent.
    #[error("genesis is invalid: {0}")]
    Invalid(String),
}

impl Genesis {
    /// Reads and checks a genesis file.
    pub fn load(path: &Path) -> Result<Self, GenesisError> {
        let text = std::fs::read_to_string(path).map_err(|source| GenesisError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let g: Genesis = toml::from_str(&text).map_err(|e| GenesisError::Parse {
            path: path.display().to_string(),
            reason: e.message().to_string(),
        })?;
        g.check()?;
        Ok(g)
    }

    /// Checks the invariants: non-empty chain id, difficulty in range, distinct valid validators.
    pub fn check(&self) -> Result<(), GenesisError> {
        if self.chain_id.trim().is_empty() {
            return Err(GenesisError::Invalid("chain_id is empty".into()));
        }
        if self.pow_difficulty > seedfed_protocol::admission::MAX_DIFFICULTY {
            return Err(GenesisError::Invalid(format!(
                "pow_difficulty {} is above {}",
                self.pow_difficulty,
                seedfed_protocol::admission::MAX_DIFFICULTY
            )));
        }
        self.stakes()?;
        let k = &self.key;
        if ![5, 10, 15, 20, 25].contains(&k.tree_height) {
            return Err(GenesisError::Invalid(format!(
                "key.tree_height {} must be 5, 10, 15, 20 or 25 (the LMS tree heights)",
                k.tree_height
            )));
        }
        if k.sector_bits >= k.tree_height || k.sector_bits > 20 {
            return Err(GenesisError::Invalid(format!(
                "key.sector_bits {} must be below key.tree_height {} and at most 20",
                k.sector_bits, k.tree_height
            )));
        }
        let sector_leaves = 1u64 << (k.tree_height - k.sector_bits);
        if u64::from(k.audit_leaves) >= sector_leaves {
            return Err(GenesisError::Invalid(format!(
                "key.audit_leaves {} must be fewer than a sector's {sector_leaves} leaves",
                k.audit_leaves
            )));
        }
        if k.leaf_threshold == 0 || k.leaf_threshold > k.leaf_holders {
            return Err(GenesisError::Invalid(format!(
                "key.leaf_threshold {} must be between 1 and key.leaf_holders {}",
                k.leaf_threshold, k.leaf_holders
            )));
        }
        if let Some(a) = k.ack_threshold {
            if a < k.leaf_threshold || a > k.leaf_holders {
                return Err(GenesisError::Invalid(format!(
                    "key.ack_threshold {a} must be between key.leaf_threshold {} and \
                     key.leaf_holders {}",
                    k.leaf_threshold, k.leaf_holders
                )));
            }
        }
        if k.sector_window == 0 {
            return Err(GenesisError::Invalid(
                "key.sector_window must be > 0".into(),
            ));
        }
        if k.rotate_percent > 100 {
            return Err(GenesisError::Invalid(format!(
                "key.rotate_percent {} must be at most 100",
                k.rotate_percent
            )));
        }
        let mut clients = std::collections::BTreeSet::new();
        for c in &self.clients {
            let key = parse_client_key(&c.key).map_err(GenesisError::Invalid)?;
            if !clients.insert(key) {
                return Err(GenesisError::Invalid(format!(
                    "client {} listed twice",
                    c.key
                )));
            }
        }
        for v in &self.validators {
            parse_x25519(&v.x25519).map_err(|reason| {
                GenesisError::Invalid(format!("validator {} x25519 key: {reason}", v.peer_id))
            })?;
        }
        Ok(())
    }

    /// The ledger's genesis: the same federation in the form blocks are built on. Fails if a
    /// validator's peer id is not an Ed25519 identity or the key parameters are out of range.
    pub fn to_ledger(&self) -> Result<ledger::Genesis, GenesisError> {
        self.check()?;
        let mut validators = Vec::new();
        for v in &self.validators {
            let peer: PeerId = v
                .peer_id
                .parse()
                .map_err(|_| GenesisError::Invalid(format!("validator peer id {:?}", v.peer_id)))?;
            let id = crate::chain::member_of(&peer).ok_or_else(|| {
                GenesisError::Invalid(format!("validator {peer} is not an Ed25519 identity"))
            })?;
            validators.push(ledger::GenesisValidator {
                id,
                stake: v.stake,
                x25519: parse_x25519(&v.x25519).map_err(GenesisError::Invalid)?,
            });
        }
        let mut clients = Vec::new();
        for c in &self.clients {
            clients.push(ledger::GenesisClient {
                key: parse_client_key(&c.key).map_err(GenesisError::Invalid)?,
                quota: c.quota,
            });
        }
        let g = ledger::Genesis {
            chain_id: self.chain_id.clone(),
            pow_difficulty: self.pow_difficulty,
            validators,
            key: ledger::KeyParams {
                tree_height: self.key.tree_height,
                sector_bits: self.key.sector_bits,
                leaf_threshold: self.key.leaf_threshold,
                leaf_holders: self.key.leaf_holders,
                ack_threshold: self.key.ack_threshold.unwrap_or_else(|| {
                    ledger::KeyParams::default_ack_threshold(
                        self.key.leaf_threshold,
                        self.key.leaf_holders,
                    )
                }),
                audit_leaves: self.key.audit_leaves,
                sector_window: self.key.sector_window,
                rotate_percent: self.key.rotate_percent,
            },
            eviction_missed_heights: self.key.eviction_missed_heights,
            epochs: self.epochs.clone(),
            clients,
        };
        ledger::LedgerState::from_genesis(&g).map_err(|e| GenesisError::Invalid(e.to_string()))?;
        Ok(g)
    }

    /// The validators' stakes by peer id.
    pub fn stakes(&self) -> Result<BTreeMap<PeerId, u64>, GenesisError> {
        let mut out = BTreeMap::new();
        for v in &self.validators {
            let id: PeerId = v.peer_id.parse().map_err(|_| {
                GenesisError::Invalid(format!(
                    "validator peer id {:?} is not a peer id",
                    v.peer_id
                ))
            })?;
            if v.stake == 0 {
                return Err(GenesisError::Invalid(format!(
                    "validator {id} has zero stake"
                )));
            }
            if out.insert(id, v.stake).is_some() {
                return Err(GenesisError::Invalid(format!(
                    "validator {id} listed twice"
                )));
            }
        }
        Ok(out)
    }

    /// Whether the federation has validators (and so runs consensus).
    pub fn has_validators(&self) -> bool {
        !self.validators.is_empty()
    }

    /// The TOML text of this genesis.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

/// An authorized client's Ed25519 key: 64 hex digits, or the libp2p peer id of an Ed25519
/// identity (a node's key used as a client).
pub fn parse_client_key(s: &str) -> Result<seedfed_protocol::member::MemberId, String> {
    let s = s.trim();
    if let Ok(peer) = s.parse::<PeerId>() {
        return crate::chain::member_of(&peer)
            .ok_or_else(|| format!("client {s} is not an Ed25519 identity"));
    }
    let bytes: [u8; 32] = hex::decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("client key {s:?} is neither 64 hex digits nor a peer id"))?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map_err(|_| format!("client key {s:?} is not an Ed25519 public key"))?;
    Ok(seedfed_protocol::member::MemberId(bytes))
}

fn parse_x25519(s: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(s).map_err(|e| format!("not hex: {e}"))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("{} bytes, expected 32", b.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_checks() {
        let id = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        let g = Genesis {
            chain_id: "c".into(),
            pow_difficulty: 8,
            validators: vec![GenesisValidator {
                peer_id: id.to_string(),
                stake: 5,
                x25519: hex::encode(x25519_dalek::X25519_BASEPOINT_BYTES),
            }],
            key: KeySection::default(),
            epochs: EpochParams::default(),
            clients: vec![GenesisClient {
                key: hex::encode(
                    ed25519_dalek::SigningKey::from_bytes(&[0x5a; 32])
                        .verifying_key()
                        .to_bytes(),
                ),
                quota: 9,
            }],
        };
        let lg = g.to_ledger().unwrap();
        assert_eq!(lg.clients[0].quota, 9);
        let mut twice = g.clone();
        twice.clients.push(twice.clients[0].clone());
        assert!(twice.check().is_err());
        let mut bad = g.clone();
        bad.clients[0].key = "00".into();
        assert!(bad.check().is_err());
        let mut by_peer = g.clone();
        by_peer.clients[0].key = id.to_string();
        assert_eq!(
            by_peer.to_ledger().unwrap().clients[0].key,
            crate::chain::member_of(&id).unwrap()
        );
        assert_eq!(
            lg.validators[0].x25519,
            x25519_dalek::X25519_BASEPOINT_BYTES
        );
        assert_eq!(lg.validators[0].id, crate::chain::member_of(&id).unwrap());
        let mut short = g.clone();
        short.validators[0].x25519 = "abcd".into();
        assert!(short.check().is_err());
        let back: Genesis = toml::from_str(&g.to_toml()).unwrap();
        assert_eq!(back, g);
        assert_eq!(back.stakes().unwrap().get(&id), Some(&5));
        let mut dup = g.clone();
        dup.validators.push(dup.validators[0].clone());
        assert!(dup.check().is_err());
        let mut no_window = g.clone();
        no_window.key.sector_window = 0;
        assert!(no_window.check().is_err());
        assert_eq!(
            lg.key.sector_window,
            seedfed_protocol::ledger::DEFAULT_SECTOR_WINDOW
        );
        let mut bad = g;
        bad.validators[0].peer_id = "nope".into();
        assert!(bad.check().is_err());
    }
}
