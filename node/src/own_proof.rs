//! The node's own admission proof against the ledger's difficulty.
//!
//! The keystore holds the proof solved at `seedfed init` (at the genesis difficulty); it is
//! sealed under the passphrase, which the running node no longer has. When the ledger raises
//! the difficulty (`PowDifficulty`), peers that are not validators admit us only with a proof
//! at the new difficulty, so the node solves again and keeps the result in
//! [`PROOF_FILE`] in its home (public data: a nonce for our public keys, mode 0644).
//!
//! Guarantees: a proof is used only if it verifies for our identity, our chain and the
//! difficulty it is needed at (the file is disk input: anything else in it is ignored with a
//! warning, never trusted); at start-up the node solves before it starts the network if its
//! best proof falls short of the stored ledger's difficulty; while running it solves on a
//! blocking thread when the ledger's difficulty rises past its proof, then hands the new record
//! to the network (peers that admit us from then on receive it; peers that admitted us keep
//! us). A solve stops when the node shuts down (checked every [`CHUNK`] hashes).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use seedfed_protocol::admission::Proof;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::keystore::{Identity, StoredAdmission};
use crate::network::{AdmissionRecord, NetworkHandle};

/// File (in the home directory) holding the proof solved after a difficulty raise.
pub const PROOF_FILE: &str = "admission-proof.json";

/// Hashes tried between two checks of the stop flag.
pub const CHUNK: u64 = 1 << 20;

/// Why the node's own proof could not be brought to the ledger's difficulty.
#[derive(Debug, Error)]
pub enum OwnProofError {
    /// The solver stopped (shutdown) or failed.
    #[error("solving the admission proof at difficulty {difficulty}: {reason}")]
    Solve {
        /// The difficulty aimed at.
        difficulty: u8,
        /// Why it stopped.
        reason: String,
    },
    /// The solved proof could not be written.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The record could not be signed.
    #[error("signing the admission record: {0}")]
    Sign(String),
}

/// What [`PROOF_FILE`] holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProofFile {
    /// Our peer id (base58), so a file copied from another home is recognised as not ours.
    peer_id: String,
    /// The proof.
    admission: StoredAdmission,
}

/// The difficulty `admission` really meets for `identity` on `chain_id` (0 if it is for
/// another chain or does not verify even at its own claim).
pub fn met_difficulty(identity: &Identity, chain_id: &str, admission: &StoredAdmission) -> u8 {
    if admission.chain_id != chain_id {
        return 0;
    }
    let bits = seedfed_protocol::admission::leading_zero_bits(
        &identity.puzzle(chain_id).hash(admission.nonce),
    );
    u8::try_from(bits)
        .unwrap_or(u8::MAX)
        .min(seedfed_protocol::admission::MAX_DIFFICULTY)
}

/// The better of the keystore's proof and the one in [`PROOF_FILE`] (if the file holds a
/// valid proof of ours for this chain): the one meeting the higher difficulty.
pub fn best_proof(
    home: &Path,
    identity: &Identity,
    chain_id: &str,
    keystore: &StoredAdmission,
) -> StoredAdmission {
    let path = home.join(PROOF_FILE);
    let stored = match std::fs::read(&path) {
        Ok(bytes) => match serde_json::from_slice::<ProofFile>(&bytes) {
            Ok(f) if f.peer_id == identity.peer_id().to_string() => Some(f.admission),
            Ok(_) => {
                warn!(path = %path.display(), "the stored admission proof is another identity's; ignored");
                None
            }
            Err(e) => {
                warn!(path = %path.display(), "the stored admission proof is unreadable ({e}); ignored");
                None
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            warn!(path = %path.display(), "cannot read the stored admission proof ({e}); ignored");
            None
        }
    };
    match stored {
        Some(s)
            if met_difficulty(identity, chain_id, &s)
                > met_difficulty(identity, chain_id, keystore) =>
        {
            StoredAdmission {
                difficulty: met_difficulty(identity, chain_id, &s),
                ..s
            }
        }
        _ => keystore.clone(),
    }
}

/// Solves a proof for `identity` at `difficulty`, checking `stop` every [`CHUNK`] hashes
/// (blocking: run it on a blocking thread).
pub fn solve(
    identity: &Identity,
    chain_id: &str,
    difficulty: u8,
    stop: &AtomicBool,
    mut progress: impl FnMut(u64),
) -> Result<StoredAdmission, OwnProofError> {
    let puzzle = identity.puzzle(chain_id);
    let mut start = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut start);
    let start = u64::from_le_bytes(start);
    let mut tried = 0u64;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(OwnProofError::Solve {
                difficulty,
                reason: "stopped".into(),
            });
        }
        let base = tried;
        match puzzle.solve(difficulty, start.wrapping_add(tried), CHUNK, |n| {
            progress(base + n)
        }) {
            Ok(Proof { nonce }) => {
                return Ok(StoredAdmission {
                    chain_id: chain_id.to_string(),
                    difficulty,
                    nonce,
                })
            }
            Err(seedfed_protocol::admission::AdmissionError::Exhausted(_)) => {
                tried = tried.wrapping_add(CHUNK);
            }
            Err(e) => {
                return Err(OwnProofError::Solve {
                    difficulty,
                    reason: e.to_string(),
                })
            }
        }
    }
}

/// Writes `admission` to [`PROOF_FILE`] in `home`, atomically.
pub fn save(
    home: &Path,
    identity: &Identity,
    admission: &StoredAdmission,
) -> Result<(), OwnProofError> {
    let path: PathBuf = home.join(PROOF_FILE);
    let io = |reason: String| OwnProofError::Io {
        path: path.display().to_string(),
        reason,
    };
    let file = ProofFile {
        peer_id: identity.peer_id().to_string(),
        admission: admission.clone(),
    };
    let text = serde_json::to_vec_pretty(&file).map_err(|e| io(e.to_string()))?;
    crate::fsutil::write_atomic(&path, &text, 0o644).map_err(|e| io(e.to_string()))
}

/// Brings `admission` to at least `difficulty`: returned as is if it meets it, else solved
/// again on a blocking thread (progress on the terminal and in the log) and saved to
/// [`PROOF_FILE`].
pub async fn ensure(
    home: &Path,
    identity: &Identity,
    chain_id: &str,
    admission: StoredAdmission,
    difficulty: u8,
    stop: Arc<AtomicBool>,
) -> Result<StoredAdmission, OwnProofError> {
    if met_difficulty(identity, chain_id, &admission) >= difficulty {
        return Ok(admission);
    }
    info!(
        have = met_difficulty(identity, chain_id, &admission),
        need = difficulty,
        "our admission proof is below the ledger's difficulty; solving it again"
    );
    let id = clone_identity(identity);
    let chain = chain_id.to_string();
    let solved = tokio::task::spawn_blocking(move || {
        let progress = crate::progress::PowProgress::new(difficulty);
        let r = solve(&id, &chain, difficulty, &stop, |n| progress.update(n));
        progress.finish();
        r.map(|a| (id, a))
    })
    .await
    .map_err(|e| OwnProofError::Solve {
        difficulty,
        reason: e.to_string(),
    })??;
    let (id, adm) = solved;
    save(home, &id, &adm)?;
    info!(difficulty, "admission proof solved again and saved");
    Ok(adm)
}

/// A second handle on the same identity (both halves zeroize on drop).
pub fn clone_identity(identity: &Identity) -> Identity {
    Identity {
        keypair: identity.keypair.clone(),
        x25519: identity.x25519.clone(),
    }
}

/// Follows the ledger's difficulty while the node runs: whenever it rises past what our proof
/// meets, solves again ([`ensure`]) and gives the network the new record. Ends when the
/// difficulty's sender is gone or `stop` is set.
pub async fn follow(
    home: PathBuf,
    identity: Identity,
    chain_id: String,
    mut admission: StoredAdmission,
    mut difficulty: watch::Receiver<u8>,
    network: NetworkHandle,
    stop: Arc<AtomicBool>,
) {
    loop {
        let need = *difficulty.borrow_and_update();
        if need > met_difficulty(&identity, &chain_id, &admission) {
            match ensure(
                &home,
                &identity,
                &chain_id,
                admission.clone(),
                need,
                stop.clone(),
            )
            .await
            {
                Ok(a) => {
                    match AdmissionRecord::sign(
                        &identity.keypair,
                        &chain_id,
                        &identity.x25519,
                        a.proof(),
                    ) {
                        Ok(record) => match network.set_admission_record(record).await {
                            Ok(()) => admission = a,
                            Err(e) => warn!("the network refused our new admission record: {e}"),
                        },
                        Err(e) => warn!("{}", OwnProofError::Sign(e.to_string())),
                    }
                }
                Err(e) => {
                    if !stop.load(Ordering::Relaxed) {
                        warn!("{e}; peers that are not validators will refuse us until a restart solves it");
                    }
                    return;
                }
            }
        }
        if difficulty.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weak_proof_is_solved_again_and_the_better_stored_proof_wins() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::generate();
        // A 2-bit proof meets 10 bits by luck once in 256 tries: take one that does not.
        let weak = (0..64)
            .map(|_| crate::keystore::solve_admission(&id, "c", 2, |_| {}).unwrap())
            .find(|w| met_difficulty(&id, "c", w) < 10)
            .unwrap();
        let stop = AtomicBool::new(false);
        let strong = solve(&id, "c", 10, &stop, |_| {}).unwrap();
        assert!(met_difficulty(&id, "c", &strong) >= 10);
        // No file: the keystore's proof.
        assert_eq!(best_proof(dir.path(), &id, "c", &weak), weak);
        save(dir.path(), &id, &strong).unwrap();
        let best = best_proof(dir.path(), &id, "c", &weak);
        assert_eq!(best.nonce, strong.nonce);
        // Another identity's file, or a garbled one, is ignored.
        let other = Identity::generate();
        assert_eq!(best_proof(dir.path(), &other, "c", &weak), weak);
        std::fs::write(dir.path().join(PROOF_FILE), b"{not json").unwrap();
        assert_eq!(best_proof(dir.path(), &id, "c", &weak), weak);
        // A claim the nonce does not back is not believed.
        let lie = StoredAdmission {
            difficulty: 60,
            ..weak.clone()
        };
        assert!(met_difficulty(&id, "c", &lie) < 60);
        // Another chain's proof meets nothing here.
        assert_eq!(met_difficulty(&id, "other", &strong), 0);
        // A stopped solver gives up with an error.
        stop.store(true, Ordering::Relaxed);
        assert!(solve(&id, "c", 60, &stop, |_| {}).is_err());
    }
}
