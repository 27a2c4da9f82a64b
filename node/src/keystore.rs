//! The node's keystore: its Ed25519 identity (= libp2p `PeerId`) and X25519 share-encryption key,
//! sealed with XChaCha20-Poly1305 under an Argon2id key from the operator's passphrase. The public
//! part (peer id, X25519 key, admission proof) is in clear for `seedfed keys show` but bound to the
//! ciphertext as associated data, so tampering makes decryption fail. The Argon2id parameters are
//! stored in the file (also bound as associated data): new files use RFC 9106's second
//! recommended option ([`KdfCost::RFC9106_SECOND`]: 64 MiB, 3 passes, 4 lanes), files written
//! with the earlier 19 MiB / 2 passes / 1 lane still open, and [`change_passphrase`] re-seals a
//! file under a new passphrase and the current parameters. The file is written atomically with
//! mode 0600, and loading refuses a symlink, a file of another user, and a file group or others
//! can access ([`fsutil::read_private`]).

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

use crate::fsutil::{self, PrivateFileError};

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
    /// A symlink, another user's file, or access for group or others.
    #[error("keystore {0}")]
    Unsafe(PrivateFileError),
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
    /// The new passphrase is the old one.
    #[error("the new passphrase is the same as the old one")]
    SamePassphrase,
}

impl From<PrivateFileError> for KeystoreError {
    fn from(e: PrivateFileError) -> Self {
        match e {
            PrivateFileError::Io { path, source } => KeystoreError::Io { path, source },
            other => KeystoreError::Unsafe(other),
        }
    }
}

/// Argon2id cost parameters of a keystore (stored in its file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfCost {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl KdfCost {
    /// RFC 9106 section 4, second recommended option (for memory-constrained settings):
    /// 64 MiB, 3 passes, 4 lanes. What new keystores use.
    pub const RFC9106_SECOND: KdfCost = KdfCost {
        m_cost_kib: 64 * 1024,
        t_cost: 3,
        p_cost: 4,
    };
    /// What keystores were written with before (OWASP's minimum: 19 MiB, 2 passes, 1 lane);
    /// such files still open, and `seedfed keys passphrase` re-seals them with the default.
    pub const LEGACY: KdfCost = KdfCost {
        m_cost_kib: 19 * 1024,
        t_cost: 2,
        p_cost: 1,
    };
    /// Largest memory a keystore file may ask for (4 GiB): a damaged file must not make the node
    /// allocate without bound.
    pub const MAX_M_COST_KIB: u32 = 4 * 1024 * 1024;
    /// Most passes a keystore file may ask for.
    pub const MAX_T_COST: u32 = 64;
    /// Most lanes a keystore file may ask for.
    pub const MAX_P_COST: u32 = 64;
}

impl Default for KdfCost {
    fn default() -> Self {
        Self::RFC9106_SECOND
    }
}

fn derive_key(pass: &Passphrase, kdf: &KdfParams) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    if kdf.alg != "argon2id" {
        return Err(KeystoreError::Kdf(format!("unsupported kdf {:?}", kdf.alg)));
    }
    if kdf.m_cost_kib > KdfCost::MAX_M_COST_KIB
        || kdf.t_cost > KdfCost::MAX_T_COST
        || kdf.p_cost > KdfCost::MAX_P_COST
    {
        return Err(KeystoreError::Kdf(format!(
            "Argon2id parameters out of range ({} KiB, {} passes, {} lanes)",
            kdf.m_cost_kib, kdf.t_cost, kdf.p_cost
        )));
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

/// Encrypts and writes a keystore (mode 0600, atomic) with the default Argon2id parameters
/// ([`KdfCost::RFC9106_SECOND`]).
pub fn save(
    path: &Path,
    id: &Identity,
    admission: StoredAdmission,
    pass: &Passphrase,
) -> Result<(), KeystoreError> {
    save_with(path, id, admission, pass, KdfCost::default())
}

/// As [`save`] with explicit Argon2id parameters (tests use cheaper ones).
fn save_with(
    path: &Path,
    id: &Identity,
    admission: StoredAdmission,
    pass: &Passphrase,
    cost: KdfCost,
) -> Result<(), KeystoreError> {
    let io = |source| KeystoreError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let kdf = KdfParams {
        alg: "argon2id".into(),
        m_cost_kib: cost.m_cost_kib,
        t_cost: cost.t_cost,
        p_cost: cost.p_cost,
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

fn parse_file(path: &Path, text: &[u8]) -> Result<KeystoreFile, KeystoreError> {
    let p = path.display().to_string();
    let file: KeystoreFile = serde_json::from_slice(text).map_err(|e| KeystoreError::Corrupt {
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
    let text = std::fs::read(path).map_err(|source| KeystoreError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(parse_file(path, &text)?.public)
}

/// The Argon2id parameters a keystore file was written with.
pub fn kdf_cost(path: &Path) -> Result<KdfCost, KeystoreError> {
    let text = std::fs::read(path).map_err(|source| KeystoreError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let kdf = parse_file(path, &text)?.kdf;
    Ok(KdfCost {
        m_cost_kib: kdf.m_cost_kib,
        t_cost: kdf.t_cost,
        p_cost: kdf.p_cost,
    })
}

/// Checks the file (regular, ours, mode 0600 or stricter: [`fsutil::read_private`]), decrypts,
/// and checks the public part matches the secrets.
pub fn load(path: &Path, pass: &Passphrase) -> Result<(Identity, StoredAdmission), KeystoreError> {
    let p = path.display().to_string();
    let file = parse_file(path, &fsutil::read_private(path)?)?;
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

/// Re-seals the keystore at `path` under `new` (and the default Argon2id parameters): it is
/// opened with `old` first, and replaced atomically (temporary file, `fsync`, rename), so on
/// any failure the old file is left as it was.
pub fn change_passphrase(
    path: &Path,
    old: &Passphrase,
    new: &Passphrase,
) -> Result<(), KeystoreError> {
    change_passphrase_with(path, old, new, KdfCost::default())
}

fn change_passphrase_with(
    path: &Path,
    old: &Passphrase,
    new: &Passphrase,
    cost: KdfCost,
) -> Result<(), KeystoreError> {
    use subtle::ConstantTimeEq;
    if bool::from(old.bytes().ct_eq(new.bytes())) {
        return Err(KeystoreError::SamePassphrase);
    }
    let (id, admission) = load(path, old)?;
    save_with(path, &id, admission, new, cost)
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
    let exists = match std::fs::symlink_metadata(path) {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(io(e)),
    };
    let existing = if exists {
        let bytes = fsutil::read_private(path)?;
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

    /// Cheap Argon2id parameters for tests that do not test the parameters.
    const CHEAP: KdfCost = KdfCost {
        m_cost_kib: 256,
        t_cost: 1,
        p_cost: 1,
    };

    fn save_cheap(p: &Path, id: &Identity, adm: StoredAdmission, pass: &str) {
        save_with(p, id, adm, &Passphrase::new(pass.into()), CHEAP).unwrap();
    }

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
        save_cheap(&p, &id, adm.clone(), "pw\n");
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
        save_cheap(&p, &id, adm, "pw");
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
            Err(KeystoreError::Unsafe(PrivateFileError::Permissions {
                mode: 0o644,
                ..
            }))
        ));
        // Out-of-range parameters are refused before anything is allocated.
        let huge = text.replace("\"t_cost\": 1", "\"t_cost\": 1000000");
        assert_ne!(huge, text);
        fsutil::write_atomic(&p, huge.as_bytes(), 0o600).unwrap();
        let err = load(&p, &Passphrase::new("pw".into())).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
    }

    /// A keystore written before the parameters changed (19 MiB, 2 passes, 1 lane), passphrase
    /// "legacy pass".
    const LEGACY_FILE: &str = include_str!("../tests/data/keystore-legacy.json");

    #[test]
    fn a_keystore_with_the_earlier_parameters_still_opens() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ks");
        fsutil::write_atomic(&p, LEGACY_FILE.as_bytes(), 0o600).unwrap();
        assert_eq!(kdf_cost(&p).unwrap(), KdfCost::LEGACY);
        let (id, adm) = load(&p, &Passphrase::new("legacy pass".into())).unwrap();
        assert_eq!(id.peer_id().to_string(), load_public(&p).unwrap().peer_id);
        assert!(id
            .puzzle(&adm.chain_id)
            .verify(&adm.proof(), adm.difficulty)
            .is_ok());
        assert!(matches!(
            load(&p, &Passphrase::new("legacy pas".into())),
            Err(KeystoreError::WrongPassphrase(_))
        ));
        // Changing the passphrase moves it to the default parameters.
        change_passphrase(
            &p,
            &Passphrase::new("legacy pass".into()),
            &Passphrase::new("new pass".into()),
        )
        .unwrap();
        assert_eq!(kdf_cost(&p).unwrap(), KdfCost::RFC9106_SECOND);
        let (again, _) = load(&p, &Passphrase::new("new pass".into())).unwrap();
        assert_eq!(again.peer_id(), id.peer_id());
    }

    #[test]
    fn the_default_parameters_are_rfc_9106s_second_option() {
        assert_eq!(
            KdfCost::default(),
            KdfCost {
                m_cost_kib: 65536,
                t_cost: 3,
                p_cost: 4
            }
        );
        assert_eq!(KdfCost::default(), KdfCost::RFC9106_SECOND);
    }

    #[test]
    fn a_passphrase_change_replaces_the_file_atomically_or_not_at_all() {
        let (dir, id, adm) = setup();
        let p = dir.path().join("ks");
        save_cheap(&p, &id, adm.clone(), "old");
        let before = std::fs::read(&p).unwrap();
        let (old, new) = (Passphrase::new("old".into()), Passphrase::new("new".into()));
        // Wrong old passphrase, or the same one: nothing written.
        assert!(matches!(
            change_passphrase_with(&p, &new, &old, CHEAP),
            Err(KeystoreError::WrongPassphrase(_))
        ));
        assert!(matches!(
            change_passphrase_with(&p, &old, &Passphrase::new("old".into()), CHEAP),
            Err(KeystoreError::SamePassphrase)
        ));
        assert_eq!(std::fs::read(&p).unwrap(), before);
        // The temporary file cannot be created (a directory is in its way): the old file stays.
        let tmp = dir.path().join(format!(".ks.tmp{}", std::process::id()));
        std::fs::create_dir(&tmp).unwrap();
        assert!(matches!(
            change_passphrase_with(&p, &old, &new, CHEAP),
            Err(KeystoreError::Io { .. })
        ));
        assert_eq!(std::fs::read(&p).unwrap(), before);
        assert!(load(&p, &old).is_ok());
        std::fs::remove_dir(&tmp).unwrap();
        // Now it works: a new salt and nonce, the same identity, only the new passphrase.
        change_passphrase_with(&p, &old, &new, CHEAP).unwrap();
        assert_ne!(std::fs::read(&p).unwrap(), before);
        let (back, badm) = load(&p, &new).unwrap();
        assert_eq!(back.peer_id(), id.peer_id());
        assert_eq!(back.x25519_public(), id.x25519_public());
        assert_eq!(badm, adm);
        assert!(matches!(
            load(&p, &old),
            Err(KeystoreError::WrongPassphrase(_))
        ));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_new_keystore_uses_rfc_9106_argon2id_parameters() {
        // Before: 19 MiB, 2 passes, 1 lane (OWASP's floor).
        let (dir, id, adm) = setup();
        let p = dir.path().join("ks");
        save(&p, &id, adm, &Passphrase::new("pw".into())).unwrap();
        let file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(file["kdf"]["alg"], "argon2id");
        assert_eq!(file["kdf"]["m_cost_kib"], 64 * 1024);
        assert_eq!(file["kdf"]["t_cost"], 3);
        assert_eq!(file["kdf"]["p_cost"], 4);
        assert_eq!(
            hex::decode(file["kdf"]["salt"].as_str().unwrap())
                .unwrap()
                .len(),
            16
        );
        let (back, _) = load(&p, &Passphrase::new("pw".into())).unwrap();
        assert_eq!(back.peer_id(), id.peer_id());
    }

    #[test]
    fn a_symlinked_or_foreign_keystore_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, id, adm) = setup();
        let real = dir.path().join("real");
        save_cheap(&real, &id, adm.clone(), "pw");
        let link = dir.path().join("ks");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = load(&link, &Passphrase::new("pw".into())).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        // The bootstrap node's plain identity file too.
        let plain = dir.path().join("plain.json");
        open_plain(&plain, "c", 4, |_| {}).unwrap();
        let plain_link = dir.path().join("plain-link.json");
        std::os::unix::fs::symlink(&plain, &plain_link).unwrap();
        let err = open_plain(&plain_link, "c", 4, |_| {}).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        // Not a regular file.
        let err = load(dir.path(), &Passphrase::new("pw".into())).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        // Owned by someone else (only root can hand a file to another user).
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(&real, Some(65534), None).unwrap();
            std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
            let err = load(&real, &Passphrase::new("pw".into())).unwrap_err();
            assert!(err.to_string().contains("owned by uid 65534"), "{err}");
            assert!(err.to_string().contains("chown"), "{err}");
        }
    }
}
