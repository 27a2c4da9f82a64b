//! The node's keystore: its Ed25519 identity (= libp2p `PeerId`) and X25519 share-encryption key,
//! sealed with XChaCha20-Poly1305 under an Argon2id key from the operator's passphrase. The public
//! part (peer id, X25519 key, admission proof) is in clear for `seedfed keys show` but bound to the
//! ciphertext as associated data, so tampering makes decryption fail. The file is written
//! atomically with mode 0600, and loading refuses a file that group or others can read.

use std::fmt;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use libp2p::identity::Keypair;
use libp2p::PeerId;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::{Zeroize, Zeroizing};

use seedfed_protocol::admission::{Proof, Puzzle};

use crate::fsutil;

/// Keystore file format version.
pub const KEYSTORE_VERSION: u32 = 1;

/// The node's secret identity. Zeroized on drop (libp2p's and dalek's key types zeroize
/// themselves); Debug never prints secrets.
pub struct Identity {
    /// Ed25519 identity keypair; its public key is the `PeerId`.
    pub keypair: Keypair,
    /// X25519 secret for share encryption.
    pub x25519: x25519_dalek::StaticSecret,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({}, [redacted])", self.peer_id())
    }
}

impl Identity {
    /// A fresh random identity.
    pub fn generate() -> Self {
        Self {
            keypair: Keypair::generate_ed25519(),
            x25519: x25519_dalek::StaticSecret::random_from_rng(OsRng),
        }
    }

    /// The libp2p peer id.
    pub fn peer_id(&self) -> PeerId {
        self.keypair.public().to_peer_id()
    }

    /// The X25519 public key.
    pub fn x25519_public(&self) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&self.x25519).to_bytes()
    }

    /// The admission puzzle for this identity on `chain_id`.
    pub fn puzzle(&self, chain_id: &str) -> Puzzle {
        Puzzle {
            chain_id: chain_id.to_string(),
            peer_id: self.peer_id().to_bytes(),
            x25519: self.x25519_public(),
        }
    }
}

/// The solved admission proof stored with the keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredAdmission {
    /// Chain the proof is bound to.
    pub chain_id: String,
    /// Difficulty it was solved at.
    pub difficulty: u8,
    /// The nonce.
    pub nonce: u64,
}

impl StoredAdmission {
    /// The proof.
    pub fn proof(&self) -> Proof {
        Proof { nonce: self.nonce }
    }
}

/// Public identity material (safe to print and share).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicIdentity {
    /// Peer id (base58).
    pub peer_id: String,
    /// Ed25519 public key, libp2p protobuf encoding, hex.
    pub ed25519_public: String,
    /// X25519 public key, hex.
    pub x25519_public: String,
    /// Admission proof of work.
    pub admission: StoredAdmission,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfParams {
    alg: String,
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealed {
    alg: String,
    nonce: String,
    ciphertext: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeystoreFile {
    version: u32,
    public: PublicIdentity,
    kdf: KdfParams,
    cipher: Sealed,
}

/// A passphrase (zeroized on drop, never printed).
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase; trailing newline characters (from files) are stripped.
    pub fn new(mut s: String) -> Self {
        while s.ends_with('\n') || s.ends_with('\r') {
            s.pop();
        }
        Self(Zeroizing::new(s))
    }
    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Why the keystore could not be used.
#[derive(Debug, Error)]
pub enum KeystoreError {
    /// I/O failure.
    #[error("keystore {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Permissions too open.
    #[error(
        "keystore {path} is accessible by group or others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    Permissions {
        /// The file.
        path: String,
        /// Its mode.
        mode: u32,
    },
    /// Not a keystore file.
    #[error("keystore {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// Wrong passphrase (or tampered file).
    #[error("wrong passphrase for keystore {0} (or the file was modified)")]
    WrongPassphrase(String),
    /// Key derivation failed.
    #[error("key derivation failed: {0}")]
    Kdf(String),
}

/// Argon2id cost parameters (OWASP's recommended minimum: 19 MiB, 2 passes, 1 lane).
const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

fn derive_key(pass: &Passphrase, kdf: &KdfParams) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    if kdf.alg != "argon2id" {
        return Err(KeystoreError::Kdf(format!("unsupported kdf {:?}", kdf.alg)));
    }
    let salt = hex::decode(&kdf.salt).map_err(|_| KeystoreError::Kdf("salt is not hex".into()))?;
    let params = argon2::Params::new(kdf.m_cost_kib, kdf.t_cost, kdf.p_cost, Some(32))
        .map_err(|e| KeystoreError::Kdf(e.to_string()))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(pass.bytes(), &salt, &mut key[..])
        .map_err(|e| KeystoreError::Kdf(e.to_string()))?;
    Ok(key)
}

fn aad(public: &PublicIdentity, kdf: &KdfParams) -> Vec<u8> {
    let mut v = b"seedfed-keystore-v1".to_vec();
    v.extend(serde_json::to_vec(public).unwrap_or_default());
    v.extend(serde_json::to_vec(kdf).unwrap_or_default());
    v
}

fn public_of(id: &Identity, admission: StoredAdmission) -> PublicIdentity {
    PublicIdentity {
        peer_id: id.peer_id().to_string(),
        ed25519_public: hex::encode(id.keypair.public().encode_protobuf()),
        x25519_public: hex::encode(id.x25519_public()),
        admission,
    }
}

/// Encrypts and writes a keystore (mode 0600, atomic).
pub fn save(
    path: &Path,
    id: &Identity,
    admission: StoredAdmission,
    pass: &Passphrase,
) -> Result<(), KeystoreError> {
    let io = |source| KeystoreError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let kdf = KdfParams {
        alg: "argon2id".into(),
        m_cost_kib: M_COST_KIB,
        t_cost: T_COST,
        p_cost: P_COST,
        salt: hex::encode(salt),
    };
    let key = derive_key(pass, &kdf)?;
    let public = public_of(id, admission);
    let mut secret = Zeroizing::new([0u8; 64]);
    let ed = id
        .keypair
        .clone()
        .try_into_ed25519()
        .map_err(|_| KeystoreError::Kdf("identity is not Ed25519".into()))?;
    secret[..32].copy_from_slice(ed.secret().as_ref());
    secret[32..].copy_from_slice(id.x25519.as_bytes());
    let mut nonce = [0u8; 24];
    OsRng.fill_bytes(&mut nonce);
    let cipher = XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&key[..]));
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &secret[..],
                aad: &aad(&public, &kdf),
            },
        )
        .map_err(|_| KeystoreError::Kdf("encryption failed".into()))?;
    let file = KeystoreFile {
        version: KEYSTORE_VERSION,
        public,
        kdf,
        cipher: Sealed {
            alg: "xchacha20poly1305".into(),
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(ct),
        },
    };
    let text = serde_json::to_vec_pretty(&file).map_err(|e| KeystoreError::Corrupt {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    fsutil::write_atomic(path, &text, 0o600).map_err(io)
}

fn read_file(path: &Path) -> Result<KeystoreFile, KeystoreError> {
    let p = path.display().to_string();
    let text = std::fs::read(path).map_err(|source| KeystoreError::Io {
        path: p.clone(),
        source,
    })?;
    let file: KeystoreFile = serde_json::from_slice(&text).map_err(|e| KeystoreError::Corrupt {
        path: p.clone(),
        reason: e.to_string(),
    })?;
    if file.version != KEYSTORE_VERSION {
        return Err(KeystoreError::Corrupt {
            path: p,
            reason: format!("unsupported version {}", file.version),
        });
    }
    Ok(file)
}

/// Reads the public part without the passphrase (for `keys show`).
pub fn load_public(path: &Path) -> Result<PublicIdentity, KeystoreError> {
    Ok(read_file(path)?.public)
}

/// Checks permissions, decrypts, and checks the public part matches the secrets.
pub fn load(path: &Path, pass: &Passphrase) -> Result<(Identity, StoredAdmission), KeystoreError> {
    let p = path.display().to_string();
    if let Some(mode) = fsutil::readable_by_others(path).map_err(|source| KeystoreError::Io {
        path: p.clone(),
        source,
    })? {
        return Err(KeystoreError::Permissions { path: p, mode });
    }
    let file = read_file(path)?;
    let corrupt = |reason: &str| KeystoreError::Corrupt {
        path: p.clone(),
        reason: reason.to_string(),
    };
    if file.cipher.alg != "xchacha20poly1305" {
        return Err(corrupt("unsupported cipher"));
    }
    let nonce = hex::decode(&file.cipher.nonce).map_err(|_| corrupt("nonce is not hex"))?;
    if nonce.len() != 24 {
        return Err(corrupt("nonce has the wrong length"));
    }
    let ct = hex::decode(&file.cipher.ciphertext).map_err(|_| corrupt("ciphertext is not hex"))?;
    let key = derive_key(pass, &file.kdf)?;
    let cipher = XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&key[..]));
    let plain = Zeroizing::new(
        cipher
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ct,
                    aad: &aad(&file.public, &file.kdf),
                },
            )
            .map_err(|_| KeystoreError::WrongPassphrase(p.clone()))?,
    );
    if plain.len() != 64 {
        return Err(corrupt("secret has the wrong length"));
    }
    let mut ed = Zeroizing::new([0u8; 32]);
    ed.copy_from_slice(&plain[..32]);
    let keypair =
        Keypair::ed25519_from_bytes(&mut ed[..]).map_err(|_| corrupt("bad Ed25519 secret"))?;
    let mut x = [0u8; 32];
    x.copy_from_slice(&plain[32..]);
    let x25519 = x25519_dalek::StaticSecret::from(x);
    x.zeroize();
    let id = Identity { keypair, x25519 };
    if public_of(&id, file.public.admission.clone()) != file.public {
        return Err(corrupt("public part does not match the secret keys"));
    }
    Ok((id, file.public.admission))
}

/// Solves the admission proof-of-work for `id`, reporting progress (attempts so far).
pub fn solve_admission(
    id: &Identity,
    chain_id: &str,
    difficulty: u8,
    progress: impl FnMut(u64),
) -> Result<StoredAdmission, seedfed_protocol::admission::AdmissionError> {
    let mut start = [0u8; 8];
    OsRng.fill_bytes(&mut start);
    let proof =
        id.puzzle(chain_id)
            .solve(difficulty, u64::from_le_bytes(start), u64::MAX, progress)?;
    Ok(StoredAdmission {
        chain_id: chain_id.to_string(),
        difficulty,
        nonce: proof.nonce,
    })
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainKeyFile {
    ed25519_secret: String,
    x25519_secret: String,
    admission: StoredAdmission,
}

/// Loads or creates an *unencrypted* identity file (mode 0600), for the bootstrap node, which
/// holds no shares and must restart unattended. A stored proof for another chain or a lower
/// difficulty is re-solved.
pub fn open_plain(
    path: &Path,
    chain_id: &str,
    difficulty: u8,
    progress: impl FnMut(u64),
) -> Result<(Identity, StoredAdmission), KeystoreError> {
    let p = path.display().to_string();
    let corrupt = |reason: &str| KeystoreError::Corrupt {
        path: p.clone(),
        reason: reason.to_string(),
    };
    let io = |source| KeystoreError::Io {
        path: p.clone(),
        source,
    };
    let existing = if path.exists() {
        if let Some(mode) = fsutil::readable_by_others(path).map_err(io)? {
            return Err(KeystoreError::Permissions { path: p, mode });
        }
        let bytes = Zeroizing::new(std::fs::read(path).map_err(io)?);
        let f: PlainKeyFile =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(&e.to_string()))?;
        let mut ed = Zeroizing::new(
            hex::decode(&f.ed25519_secret).map_err(|_| corrupt("secret is not hex"))?,
        );
        let keypair = Keypair::ed25519_from_bytes(ed.as_mut_slice())
            .map_err(|_| corrupt("bad Ed25519 secret"))?;
        let xs = Zeroizing::new(
            hex::decode(&f.x25519_secret).map_err(|_| corrupt("secret is not hex"))?,
        );
        let mut x = [0u8; 32];
        if xs.len() != 32 {
            return Err(corrupt("bad X25519 secret"));
        }
        x.copy_from_slice(&xs);
        let id = Identity {
            keypair,
            x25519: x25519_dalek::StaticSecret::from(x),
        };
        x.zeroize();
        Some((id, f.admission))
    } else {
        None
    };
    let (id, admission) = match existing {
        Some((id, adm))
            if adm.chain_id == chain_id
                && adm.difficulty >= difficulty
                && id.puzzle(chain_id).verify(&adm.proof(), difficulty).is_ok() =>
        {
            return Ok((id, adm));
        }
        Some((id, _)) => {
            let adm = solve_admission(&id, chain_id, difficulty, progress)
                .map_err(|e| KeystoreError::Kdf(e.to_string()))?;
            (id, adm)
        }
        None => {
            let id = Identity::generate();
            let adm = solve_admission(&id, chain_id, difficulty, progress)
                .map_err(|e| KeystoreError::Kdf(e.to_string()))?;
            (id, adm)
        }
    };
    let ed = id
        .keypair
        .clone()
        .try_into_ed25519()
        .map_err(|_| corrupt("identity is not Ed25519"))?;
    let file = PlainKeyFile {
        ed25519_secret: hex::encode(ed.secret().as_ref()),
        x25519_secret: hex::encode(id.x25519.as_bytes()),
        admission: admission.clone(),
    };
    let text =
        Zeroizing::new(serde_json::to_vec_pretty(&file).map_err(|e| corrupt(&e.to_string()))?);
    fsutil::write_atomic(path, &text, 0o600).map_err(io)?;
    Ok((id, admission))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Identity, StoredAdmission) {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::generate();
        let adm = solve_admission(&id, "c", 4, |_| {}).unwrap();
        (dir, id, adm)
    }

    #[test]
    fn plain_identity_is_stable_and_resolved_for_a_new_chain() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bootstrap-key.json");
        let (a, adm_a) = open_plain(&p, "c", 4, |_| {}).unwrap();
        let (b, adm_b) = open_plain(&p, "c", 4, |_| {}).unwrap();
        assert_eq!(a.peer_id(), b.peer_id());
        assert_eq!(adm_a, adm_b);
        let (c, adm_c) = open_plain(&p, "d", 4, |_| {}).unwrap();
        assert_eq!(c.peer_id(), a.peer_id());
        assert_eq!(adm_c.chain_id, "d");
        assert!(c.puzzle("d").verify(&adm_c.proof(), 4).is_ok());
    }

    #[test]
    fn roundtrip() {
        let (dir, id, adm) = setup();
        let p = dir.path().join("ks");
        save(&p, &id, adm.clone(), &Passphrase::new("pw\n".into())).unwrap();
        let (back, badm) = load(&p, &Passphrase::new("pw".into())).unwrap();
        assert_eq!(back.peer_id(), id.peer_id());
        assert_eq!(back.x25519_public(), id.x25519_public());
        assert_eq!(badm, adm);
        assert!(id.puzzle("c").verify(&badm.proof(), 4).is_ok());
        assert_eq!(load_public(&p).unwrap().peer_id, id.peer_id().to_string());
        assert!(!format!("{back:?}").contains(&hex::encode(id.x25519.as_bytes())));
    }

    #[test]
    fn wrong_passphrase_tamper_and_permissions() {
        let (dir, id, adm) = setup();
        let p = dir.path().join("ks");
        save(&p, &id, adm, &Passphrase::new("pw".into())).unwrap();
        assert!(matches!(
            load(&p, &Passphrase::new("other".into())),
            Err(KeystoreError::WrongPassphrase(_))
        ));
        // Tamper with the public part: authenticated as associated data.
        let text = std::fs::read_to_string(&p).unwrap();
        let other = Identity::generate().peer_id().to_string();
        let tampered = text.replace(&id.peer_id().to_string(), &other);
        fsutil::write_atomic(&p, tampered.as_bytes(), 0o600).unwrap();
        assert!(matches!(
            load(&p, &Passphrase::new("pw".into())),
            Err(KeystoreError::WrongPassphrase(_))
        ));
        fsutil::write_atomic(&p, b"{not json", 0o600).unwrap();
        assert!(matches!(
            load(&p, &Passphrase::new("pw".into())),
            Err(KeystoreError::Corrupt { .. })
        ));
        fsutil::write_atomic(&p, text.as_bytes(), 0o644).unwrap();
        assert!(matches!(
            load(&p, &Passphrase::new("pw".into())),
            Err(KeystoreError::Permissions { mode: 0o644, .. })
        ));
    }
}
