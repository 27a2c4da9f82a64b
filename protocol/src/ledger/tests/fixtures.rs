//! Shared fixtures: a genesis of `n` validators with deterministic keys, a ledger driven by
//! them, and the two real sectors of the test key.

use ed25519_dalek::{Signer, SigningKey};

use crate::ledger::{
    chain_digest, vote_digest, Block, ClientRequest, CommitInfo, EpochParams, Genesis,
    GenesisClient, GenesisValidator, KeyParams, Ledger, LedgerError, LedgerState, Signature64,
    SignedTx, Tx, TxBody, VoteKind,
};
use crate::member::MemberId;

pub(super) const CHAIN: &str = "test-chain";

pub(super) fn key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i + 1; 32])
}

/// Member `i`'s X25519 secret (deterministic).
pub(super) fn xsecret(i: u8) -> x25519_dalek::StaticSecret {
    x25519_dalek::StaticSecret::from([i.wrapping_add(0x40); 32])
}

/// Member `i`'s X25519 public key.
pub(super) fn xpub(i: u8) -> [u8; 32] {
    x25519_dalek::PublicKey::from(&xsecret(i)).to_bytes()
}

pub(super) fn id(k: &SigningKey) -> MemberId {
    MemberId(k.verifying_key().to_bytes())
}

pub(super) struct Fx {
    pub(super) keys: Vec<SigningKey>,
    pub(super) ledger: Ledger,
}

pub(super) fn genesis(n: u8) -> Genesis {
    Genesis {
        chain_id: CHAIN.into(),
        pow_difficulty: 4,
        validators: (0..n)
            .map(|i| GenesisValidator {
                id: id(&key(i)),
                stake: 100,
                x25519: xpub(i),
            })
            .collect(),
        key: KeyParams {
            tree_height: 5,
            sector_bits: 1,
            leaf_threshold: 2,
            leaf_holders: 3,
            ack_threshold: 3,
            audit_leaves: 0,
            sector_window: crate::ledger::DEFAULT_SECTOR_WINDOW,
            rotate_percent: 0,
        },
        eviction_missed_heights: 2,
        epochs: EpochParams::default(),
        clients: vec![GenesisClient {
            key: id(&client_key()),
            quota: CLIENT_QUOTA,
        }],
    }
}

/// The genesis's authorized client.
pub(super) fn client_key() -> SigningKey {
    SigningKey::from_bytes(&[0xc1; 32])
}

/// The genesis client's quota per epoch.
const CLIENT_QUOTA: u32 = 40;

impl Fx {
    pub(super) fn new(n: u8) -> Self {
        Fx {
            keys: (0..n).map(key).collect(),
            ledger: Ledger::from_genesis(&genesis(n)).unwrap(),
        }
    }

    pub(super) fn st(&self) -> &LedgerState {
        &self.ledger.state
    }

    pub(super) fn id(&self, i: usize) -> MemberId {
        id(&self.keys[i])
    }

    /// A `SignRequest` body: the genesis client asks for `digest` in the current epoch.
    pub(super) fn request(&self, digest: [u8; 32], nonce: u64) -> TxBody {
        TxBody::SignRequest {
            request: ClientRequest {
                client: id(&client_key()),
                digest,
                epoch: self.st().epoch,
                nonce,
                issue_to: None,
            }
            .sign(CHAIN, &client_key()),
        }
    }

    /// A transaction by validator `i` with its next nonce.
    pub(super) fn tx(&self, i: usize, body: TxBody) -> SignedTx {
        let author = self.id(i);
        let nonce = self.st().members.get(&author).map_or(0, |m| m.nonce);
        Tx {
            author,
            nonce,
            body,
        }
        .sign(CHAIN, &self.keys[i])
    }

    /// Applies one transaction to the state directly.
    pub(super) fn apply(&mut self, i: usize, body: TxBody) -> Result<(), LedgerError> {
        let t = self.tx(i, body);
        self.ledger.state.apply_tx(&t)
    }

    /// Precommits for the tip from the validators in `signers`.
    pub(super) fn commit(&self, signers: &[usize]) -> CommitInfo {
        let mut signatures: Vec<(MemberId, Signature64)> = signers
            .iter()
            .map(|&i| {
                let d = vote_digest(
                    CHAIN,
                    self.st().height,
                    0,
                    VoteKind::Precommit,
                    Some(&self.ledger.tip),
                    &self.id(i),
                );
                (self.id(i), Signature64(self.keys[i].sign(&d).to_bytes()))
            })
            .collect();
        signatures.sort_by_key(|a| a.0);
        CommitInfo {
            round: 0,
            signatures,
        }
    }

    /// Builds and applies a block with `txs`, the last commit signed by `signers`.
    pub(super) fn block(&mut self, signers: &[usize], txs: Vec<SignedTx>) -> Block {
        let commit = if self.st().height == 0 {
            CommitInfo::default()
        } else {
            self.commit(signers)
        };
        let (b, rejected) = self.ledger.build_block(self.id(0), commit, txs).unwrap();
        assert!(rejected.is_empty(), "{rejected:?}");
        self.ledger.apply_block(&b).unwrap();
        b
    }

    pub(super) fn all(&self) -> Vec<usize> {
        (0..self.keys.len()).collect()
    }
}

pub(super) fn leaf_seed(q: u32) -> crate::lmots::LeafSeed {
    let mut b = [0x3cu8; 32];
    b[..4].copy_from_slice(&q.to_le_bytes());
    crate::lmots::LeafSeed::from_bytes(b)
}

/// The two real sectors of the test key (H5, two sectors of 16 leaves).
pub(super) fn sectors() -> &'static [crate::sector::Sector] {
    static S: std::sync::OnceLock<Vec<crate::sector::Sector>> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        let layout = genesis(4).key.layout(&chain_digest(CHAIN), 0).unwrap();
        (0..2)
            .map(|b| crate::sector::Sector::generate(layout, b, 1, leaf_seed).unwrap())
            .collect()
    })
}

pub(super) fn master() -> crate::master::Master {
    let layout = genesis(4).key.layout(&chain_digest(CHAIN), 0).unwrap();
    let roots: Vec<[u8; 32]> = sectors().iter().map(|s| s.root()).collect();
    crate::master::Master::from_sector_roots(layout, &roots).unwrap()
}

/// Starts epoch 1 without the beacon checks (the DKG and the beacon are tested in
/// `protocol/tests/it/epoch_cycle.rs`).
pub(super) fn start_epoch_1(fx: &mut Fx) {
    fx.ledger.state.begin_epoch(1, [5; 32]);
}

/// The commitments root the test sectors' holders acknowledge (the ledger checks the
/// acknowledgements over it, not the commitments themselves).
pub(super) const COMMITMENTS_ROOT: [u8; 32] = [0xcc; 32];

/// Acknowledgements of `sector` (dealt by `owner`) over `commitments_root` and the sector
/// root `root` by the validators `by`.
pub(super) fn acks(
    fx: &Fx,
    sector: u32,
    owner: MemberId,
    (commitments_root, root): ([u8; 32], [u8; 32]),
    by: &[usize],
) -> Vec<crate::dealing::DealAck> {
    let id = crate::dealing::SectorId {
        chain: chain_digest(CHAIN),
        key: 0,
        sector,
        owner,
        basis: fx.st().holder_basis().digest(),
    };
    by.iter()
        .map(|&i| crate::dealing::sign_ack(&id, &fx.keys[i], commitments_root, root))
        .collect()
}

/// Runs epoch 1, assignment, and publishes both (real) sectors, acknowledged by every
/// validator; returns the fixture.
/// A ledger whose master root is final and endorsed, so requests allocate leaves. The
/// fixtures run no DKG, so no checkpoint can be signed: the endorsement a signed checkpoint
/// naming the key would record is set directly.
pub(super) fn signing_ready() -> Fx {
    let mut fx = key_ready();
    fx.apply(
        0,
        TxBody::MasterRoot {
            root: master().root(),
        },
    )
    .unwrap();
    fx.ledger.state.newest.endorsed = Some(0);
    fx
}

pub(super) fn key_ready() -> Fx {
    let mut fx = Fx::new(4);
    start_epoch_1(&mut fx);
    let owners = fx.st().compute_branch_owners().unwrap();
    assert_eq!(owners.len(), 2);
    fx.apply(1, TxBody::BranchAssignment { epoch: 1, owners })
        .unwrap();
    for sector in 0..2u32 {
        let owner = fx.st().newest.branch_owners[&sector];
        let i = (0..4).find(|&i| fx.id(i) == owner).unwrap();
        let root = sectors()[sector as usize].root();
        let acks = acks(&fx, sector, owner, (COMMITMENTS_ROOT, root), &[0, 1, 2, 3]);
        fx.apply(
            i,
            TxBody::SectorRoot {
                sector,
                root,
                commitments_root: COMMITMENTS_ROOT,
                acks,
            },
        )
        .unwrap();
    }
    fx
}
