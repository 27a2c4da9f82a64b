//! The genesis file: what every member of a federation agrees on before the first block.
//!
//! It fixes the chain id (bound into every admission proof, so identities cannot move between
//! federations), the admission proof-of-work difficulty, and the initial validators with their
//! stake. It is TOML so an operator can read and diff it.

use std::collections::BTreeMap;
use std::path::Path;

use libp2p::PeerId;
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
        self.stakes().map(|_| ())
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

    /// The TOML text of this genesis.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
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
            }],
        };
        let back: Genesis = toml::from_str(&g.to_toml()).unwrap();
        assert_eq!(back, g);
        assert_eq!(back.stakes().unwrap().get(&id), Some(&5));
        let mut dup = g.clone();
        dup.validators.push(dup.validators[0].clone());
        assert!(dup.check().is_err());
        let mut bad = g;
        bad.validators[0].peer_id = "nope".into();
        assert!(bad.check().is_err());
    }
}
