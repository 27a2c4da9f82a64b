use ed25519_dalek::{Signer, SigningKey};
use proptest::prelude::*;

use super::tx::{peer_id_bytes, vote_digest};
use super::*;
use crate::admission::Puzzle;

const CHAIN: &str = "test-chain";

fn key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i + 1; 32])
}

fn id(k: &SigningKey) -> MemberId {
    MemberId(k.verifying_key().to_bytes())
}

struct Fx {
    keys: Vec<SigningKey>,
    ledger: Ledger,
}

fn genesis(n: u8) -> Genesis {
    Genesis {
        chain_id: CHAIN.into(),
        pow_difficulty: 4,
        validators: (0..n)
            .map(|i| GenesisValidator {
                id: id(&key(i)),
                stake: 100,
                x25519: [i; 32],
            })
            .collect(),
        key: KeyParams {
            tree_height: 5,
            sector_bits: 1,
            leaf_threshold: 2,
            leaf_holders: 3,
        },
        eviction_missed_heights: 2,
        epochs: EpochParams::default(),
    }
}

impl Fx {
    fn new(n: u8) -> Self {
        Fx {
            keys: (0..n).map(key).collect(),
            ledger: Ledger::from_genesis(&genesis(n)).unwrap(),
        }
    }

    fn st(&self) -> &LedgerState {
        &self.ledger.state
    }

    fn id(&self, i: usize) -> MemberId {
        id(&self.keys[i])
    }

    /// A transaction by validator `i` with its next nonce.
    fn tx(&self, i: usize, body: TxBody) -> SignedTx {
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
    fn apply(&mut self, i: usize, body: TxBody) -> Result<(), LedgerError> {
        let t = self.tx(i, body);
        self.ledger.state.apply_tx(&t)
    }

    /// Precommits for the tip from the validators in `signers`.
    fn commit(&self, signers: &[usize]) -> CommitInfo {
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
    fn block(&mut self, signers: &[usize], txs: Vec<SignedTx>) -> Block {
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

    fn all(&self) -> Vec<usize> {
        (0..self.keys.len()).collect()
    }
}

#[test]
fn genesis_checks() {
    let mut g = genesis(4);
    assert!(Ledger::from_genesis(&g).is_ok());
    g.validators[1].id = g.validators[0].id;
    assert_eq!(
        LedgerState::from_genesis(&g),
        Err(GenesisError::DuplicateValidator(g.validators[0].id))
    );
    let mut g = genesis(2);
    for v in &mut g.validators {
        v.stake = 0;
    }
    assert_eq!(
        LedgerState::from_genesis(&g),
        Err(GenesisError::NoValidators)
    );
    let mut g = genesis(2);
    g.key.leaf_threshold = 4;
    assert!(matches!(
        LedgerState::from_genesis(&g),
        Err(GenesisError::BadKeyParams(_))
    ));
    // p must be below h (5), and h an RFC 8554 height.
    let mut g = genesis(2);
    g.key.sector_bits = 5;
    assert!(matches!(
        LedgerState::from_genesis(&g),
        Err(GenesisError::BadKeyParams(_))
    ));
    let mut g = genesis(2);
    g.key.sector_bits = 4;
    assert!(LedgerState::from_genesis(&g).is_ok());
    let mut g = genesis(2);
    g.key.tree_height = 6;
    assert!(matches!(
        LedgerState::from_genesis(&g),
        Err(GenesisError::BadKeyParams(_))
    ));
    let mut g = genesis(2);
    g.validators[0].stake = u64::MAX;
    assert_eq!(
        LedgerState::from_genesis(&g),
        Err(GenesisError::StakeOverflow)
    );
}

#[test]
fn transfer_moves_stake_and_rejects_replay() {
    let mut fx = Fx::new(4);
    let t = fx.tx(
        0,
        TxBody::Transfer {
            to: fx.id(1),
            amount: 30,
        },
    );
    fx.ledger.state.apply_tx(&t).unwrap();
    assert_eq!(fx.st().members[&fx.id(0)].stake, 70);
    assert_eq!(fx.st().members[&fx.id(1)].stake, 130);
    let before = fx.st().hash();
    assert_eq!(
        fx.ledger.state.apply_tx(&t),
        Err(LedgerError::BadNonce {
            author: fx.id(0),
            got: 0,
            expected: 1
        })
    );
    assert_eq!(fx.st().hash(), before);
}

#[test]
fn transfer_rejections_leave_state_unchanged() {
    let mut fx = Fx::new(4);
    let before = fx.st().clone();
    let to = fx.id(1);
    assert_eq!(
        fx.apply(0, TxBody::Transfer { to, amount: 101 }),
        Err(LedgerError::InsufficientStake {
            has: 100,
            needs: 101
        })
    );
    assert!(matches!(
        fx.apply(0, TxBody::Transfer { to, amount: 0 }),
        Err(LedgerError::InvalidTransfer(_))
    ));
    let me = fx.id(0);
    assert!(matches!(
        fx.apply(0, TxBody::Transfer { to: me, amount: 1 }),
        Err(LedgerError::InvalidTransfer(_))
    ));
    let stranger = id(&key(50));
    assert_eq!(
        fx.apply(
            0,
            TxBody::Transfer {
                to: stranger,
                amount: 1
            }
        ),
        Err(LedgerError::UnknownMember(stranger))
    );
    assert_eq!(fx.st(), &before);
}

#[test]
fn nonce_gap_rejected() {
    let mut fx = Fx::new(2);
    let t = Tx {
        author: fx.id(0),
        nonce: 1,
        body: TxBody::Exit,
    }
    .sign(CHAIN, &fx.keys[0]);
    assert!(matches!(
        fx.ledger.state.apply_tx(&t),
        Err(LedgerError::BadNonce { got: 1, .. })
    ));
}

#[test]
fn bad_signatures_rejected() {
    let mut fx = Fx::new(4);
    // Tampered body.
    let mut t = fx.tx(
        0,
        TxBody::Transfer {
            to: fx.id(1),
            amount: 1,
        },
    );
    t.tx.body = TxBody::Transfer {
        to: fx.id(1),
        amount: 99,
    };
    assert_eq!(
        fx.ledger.state.apply_tx(&t),
        Err(LedgerError::BadSignature(fx.id(0)))
    );
    // Signed by someone else.
    let t = Tx {
        author: fx.id(0),
        nonce: 0,
        body: TxBody::Exit,
    }
    .sign(CHAIN, &fx.keys[1]);
    assert_eq!(
        fx.ledger.state.apply_tx(&t),
        Err(LedgerError::BadSignature(fx.id(0)))
    );
    // Signed for another chain.
    let t = Tx {
        author: fx.id(0),
        nonce: 0,
        body: TxBody::Exit,
    }
    .sign("other-chain", &fx.keys[0]);
    assert_eq!(
        fx.ledger.state.apply_tx(&t),
        Err(LedgerError::BadSignature(fx.id(0)))
    );
    // Flipped signature bit.
    let mut t = fx.tx(0, TxBody::Exit);
    t.signature.0[3] ^= 1;
    assert_eq!(
        fx.ledger.state.apply_tx(&t),
        Err(LedgerError::BadSignature(fx.id(0)))
    );
    assert_eq!(fx.st().members[&fx.id(0)].nonce, 0);
}

fn admission_tx(k: &SigningKey, difficulty: u8) -> SignedTx {
    let me = id(k);
    let puzzle = Puzzle {
        chain_id: CHAIN.into(),
        peer_id: peer_id_bytes(&me),
        x25519: [9; 32],
    };
    let pow = puzzle.solve(difficulty, 0, 1 << 20, |_| {}).unwrap();
    Tx {
        author: me,
        nonce: 0,
        body: TxBody::Admit {
            peer_id: peer_id_bytes(&me),
            x25519: [9; 32],
            pow,
        },
    }
    .sign(CHAIN, k)
}

#[test]
fn admission_then_stake_makes_a_validator() {
    let mut fx = Fx::new(4);
    let newcomer = key(20);
    let nid = id(&newcomer);
    fx.ledger
        .state
        .apply_tx(&admission_tx(&newcomer, 4))
        .unwrap();
    assert!(fx.st().members.contains_key(&nid));
    assert!(!fx.st().is_validator(&nid));
    // Replaying the admission is rejected.
    assert!(matches!(
        fx.ledger.state.apply_tx(&admission_tx(&newcomer, 4)),
        Err(LedgerError::BadNonce { .. })
    ));
    fx.apply(
        0,
        TxBody::Transfer {
            to: nid,
            amount: 10,
        },
    )
    .unwrap();
    assert!(fx.st().is_validator(&nid));
    assert_eq!(fx.st().validators()[&nid], 10);
}

#[test]
fn admission_rejections() {
    let mut fx = Fx::new(2);
    let k = key(30);
    let me = id(&k);
    // Peer id of someone else.
    let other = peer_id_bytes(&id(&key(31)));
    let puzzle = Puzzle {
        chain_id: CHAIN.into(),
        peer_id: other.clone(),
        x25519: [1; 32],
    };
    let pow = puzzle.solve(4, 0, 1 << 20, |_| {}).unwrap();
    let t = Tx {
        author: me,
        nonce: 0,
        body: TxBody::Admit {
            peer_id: other,
            x25519: [1; 32],
            pow,
        },
    }
    .sign(CHAIN, &k);
    assert_eq!(
        fx.ledger.state.apply_tx(&t),
        Err(LedgerError::PeerIdMismatch(me))
    );
    // Weak proof: find a nonce with no leading zero bit.
    let puzzle = Puzzle {
        chain_id: CHAIN.into(),
        peer_id: peer_id_bytes(&me),
        x25519: [1; 32],
    };
    let nonce = (0..).find(|n| puzzle.hash(*n)[0] & 0x80 != 0).unwrap();
    let t = Tx {
        author: me,
        nonce: 0,
        body: TxBody::Admit {
            peer_id: peer_id_bytes(&me),
            x25519: [1; 32],
            pow: crate::admission::Proof { nonce },
        },
    }
    .sign(CHAIN, &k);
    assert!(matches!(
        fx.ledger.state.apply_tx(&t),
        Err(LedgerError::Admission(_))
    ));
    // An existing member cannot be admitted again (nonce 0 only matches before its first tx).
    let t = admission_tx(&fx.keys[1], 4);
    assert_eq!(
        fx.ledger.state.apply_tx(&t),
        Err(LedgerError::AlreadyMember(fx.id(1)))
    );
    // A non-member can do nothing else.
    let t = Tx {
        author: me,
        nonce: 0,
        body: TxBody::Exit,
    }
    .sign(CHAIN, &k);
    assert_eq!(
        fx.ledger.state.apply_tx(&t),
        Err(LedgerError::UnknownMember(me))
    );
}

#[test]
fn exit_removes_validator_but_not_the_last() {
    let mut fx = Fx::new(2);
    fx.apply(1, TxBody::Exit).unwrap();
    assert!(!fx.st().is_validator(&fx.id(1)));
    assert_eq!(fx.st().validators().len(), 1);
    assert_eq!(fx.apply(0, TxBody::Exit), Err(LedgerError::LastValidator));
    // An exited member can no longer transact.
    let to = fx.id(0);
    assert_eq!(
        fx.apply(1, TxBody::Transfer { to, amount: 1 }),
        Err(LedgerError::NotValidator(fx.id(1)))
    );
}

#[test]
fn inactivity_counted_from_last_commits_and_evicts() {
    let mut fx = Fx::new(4);
    fx.block(&[], vec![]); // height 1
    fx.block(&[0, 1, 2], vec![]); // 3 missed once
    assert_eq!(fx.st().missed.get(&fx.id(3)), Some(&1));
    let idle = fx.id(3);
    let early = fx.tx(
        0,
        TxBody::Evict {
            member: idle,
            evidence: Evidence::Inactivity { missed_heights: 2 },
        },
    );
    assert!(matches!(
        fx.ledger.state.clone().apply_tx(&early),
        Err(LedgerError::BadEvidence(_))
    ));
    fx.block(&[0, 1, 2], vec![]); // missed twice
    assert_eq!(fx.st().missed.get(&idle), Some(&2));
    // Claiming more than counted fails, below the bound fails, exactly the count works.
    for claim in [3, 1] {
        let t = fx.tx(
            0,
            TxBody::Evict {
                member: idle,
                evidence: Evidence::Inactivity {
                    missed_heights: claim,
                },
            },
        );
        assert!(matches!(
            fx.ledger.state.clone().apply_tx(&t),
            Err(LedgerError::BadEvidence(_))
        ));
    }
    let t = fx.tx(
        0,
        TxBody::Evict {
            member: idle,
            evidence: Evidence::Inactivity { missed_heights: 2 },
        },
    );
    fx.block(&[0, 1, 2], vec![t]);
    assert_eq!(fx.st().members[&idle].status, MemberStatus::Evicted);
    assert!(!fx.st().validators().contains_key(&idle));
    assert_eq!(fx.st().evictions.get(&idle), Some(&4));
    // Signing resets the counter.
    fx.block(&[0, 1, 2], vec![]);
    assert!(fx.st().missed.is_empty());
}

fn vote(k: &SigningKey, height: u64, value: Option<[u8; 32]>) -> VoteRecord {
    let d = vote_digest(CHAIN, height, 0, VoteKind::Prevote, value.as_ref(), &id(k));
    VoteRecord {
        height,
        round: 0,
        kind: VoteKind::Prevote,
        value,
        validator: id(k),
        signature: Signature64(k.sign(&d).to_bytes()),
    }
}

#[test]
fn equivocation_evidence() {
    let mut fx = Fx::new(4);
    let bad = fx.id(2);
    let k = fx.keys[2].clone();
    let evict = |fx: &Fx, a: VoteRecord, b: VoteRecord| {
        fx.tx(
            0,
            TxBody::Evict {
                member: bad,
                evidence: Evidence::Equivocation {
                    a: Box::new(a),
                    b: Box::new(b),
                },
            },
        )
    };
    // Same value: no conflict.
    let t = evict(&fx, vote(&k, 5, Some([1; 32])), vote(&k, 5, Some([1; 32])));
    assert!(matches!(
        fx.ledger.state.apply_tx(&t),
        Err(LedgerError::BadEvidence(_))
    ));
    // Different heights.
    let t = evict(&fx, vote(&k, 5, Some([1; 32])), vote(&k, 6, Some([2; 32])));
    assert!(matches!(
        fx.ledger.state.apply_tx(&t),
        Err(LedgerError::BadEvidence(_))
    ));
    // Forged signature.
    let mut b = vote(&k, 5, None);
    b.signature.0[0] ^= 1;
    let t = evict(&fx, vote(&k, 5, Some([1; 32])), b);
    assert!(matches!(
        fx.ledger.state.apply_tx(&t),
        Err(LedgerError::BadEvidence(_))
    ));
    // Votes by someone else.
    let t = evict(
        &fx,
        vote(&fx.keys[1], 5, Some([1; 32])),
        vote(&fx.keys[1], 5, None),
    );
    assert!(matches!(
        fx.ledger.state.apply_tx(&t),
        Err(LedgerError::BadEvidence(_))
    ));
    // Real equivocation.
    let t = evict(&fx, vote(&k, 5, Some([1; 32])), vote(&k, 5, None));
    fx.ledger.state.apply_tx(&t).unwrap();
    assert_eq!(fx.st().members[&bad].status, MemberStatus::Evicted);
}

fn leaf_seed(q: u32) -> crate::lmots::LeafSeed {
    let mut b = [0x3cu8; 32];
    b[..4].copy_from_slice(&q.to_le_bytes());
    crate::lmots::LeafSeed::from_bytes(b)
}

/// The two real sectors of the test key (H5, two sectors of 16 leaves).
fn sectors() -> &'static [crate::sector::Sector] {
    static S: std::sync::OnceLock<Vec<crate::sector::Sector>> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        let layout = genesis(4).key.layout(&chain_digest(CHAIN)).unwrap();
        (0..2)
            .map(|b| crate::sector::Sector::generate(layout, b, 1, leaf_seed).unwrap())
            .collect()
    })
}

fn master() -> crate::master::Master {
    let layout = genesis(4).key.layout(&chain_digest(CHAIN)).unwrap();
    let roots: Vec<[u8; 32]> = sectors().iter().map(|s| s.root()).collect();
    crate::master::Master::from_sector_roots(layout, &roots).unwrap()
}

/// Starts epoch 1 without the beacon checks (the DKG and beacon are tested in
/// `epochs_tests` and `tests/epoch_cycle.rs`).
fn start_epoch_1(fx: &mut Fx) {
    fx.ledger.state.begin_epoch(1, [5; 32]);
}

/// Runs epoch 1, assignment, and publishes both (real) sectors; returns the fixture.
fn key_ready() -> Fx {
    let mut fx = Fx::new(4);
    start_epoch_1(&mut fx);
    let owners = fx.st().compute_branch_owners().unwrap();
    assert_eq!(owners.len(), 2);
    fx.apply(1, TxBody::BranchAssignment { epoch: 1, owners })
        .unwrap();
    let mut holders: Vec<MemberId> = (0..3).map(|i| fx.id(i)).collect();
    holders.sort();
    for sector in 0..2u32 {
        let owner = fx.st().branch_owners[&sector];
        let i = (0..4).find(|&i| fx.id(i) == owner).unwrap();
        fx.apply(
            i,
            TxBody::SectorRoot {
                sector,
                root: sectors()[sector as usize].root(),
                holders: holders.clone(),
            },
        )
        .unwrap();
    }
    fx
}

#[test]
fn epoch_and_assignment_checks() {
    let mut fx = Fx::new(4);
    assert_eq!(
        fx.apply(
            0,
            TxBody::EpochStart {
                epoch: 2,
                beacon: [0; 32]
            }
        ),
        Err(LedgerError::WrongEpoch {
            got: 2,
            expected: 1
        })
    );
    // No completed DKG: no beacon can be valid.
    assert_eq!(
        fx.apply(
            0,
            TxBody::EpochStart {
                epoch: 1,
                beacon: [5; 32]
            }
        ),
        Err(LedgerError::DkgIncomplete(0))
    );
    start_epoch_1(&mut fx);
    assert_eq!(fx.st().epoch, 1);
    let mut owners = fx.st().compute_branch_owners().unwrap();
    owners.reverse();
    if owners[0] != owners[1] {
        assert_eq!(
            fx.apply(0, TxBody::BranchAssignment { epoch: 1, owners }),
            Err(LedgerError::AssignmentMismatch)
        );
    }
    let wrong_len = vec![fx.id(0)];
    assert_eq!(
        fx.apply(
            0,
            TxBody::BranchAssignment {
                epoch: 1,
                owners: wrong_len
            }
        ),
        Err(LedgerError::AssignmentMismatch)
    );
}

#[test]
fn sector_publication_rules() {
    let mut fx = Fx::new(4);
    // No assignment yet.
    assert_eq!(
        fx.apply(
            0,
            TxBody::SectorRoot {
                sector: 0,
                root: [0; 32],
                holders: vec![]
            }
        ),
        Err(LedgerError::NoAssignment)
    );
    let mut fx2 = key_ready();
    let owner0 = fx2.st().branch_owners[&0];
    let non_owner = (0..4).find(|&i| fx2.id(i) != owner0).unwrap();
    let owner = (0..4).find(|&i| fx2.id(i) == owner0).unwrap();
    assert_eq!(
        fx2.apply(
            owner,
            TxBody::SectorRoot {
                sector: 0,
                root: [1; 32],
                holders: vec![]
            }
        ),
        Err(LedgerError::SectorPublished(0))
    );
    assert_eq!(
        fx2.apply(
            owner,
            TxBody::SectorRoot {
                sector: 9,
                root: [1; 32],
                holders: vec![]
            }
        ),
        Err(LedgerError::SectorOutOfRange(9))
    );
    // Fresh ledger with assignment only: non-owner and bad holder sets are rejected.
    start_epoch_1(&mut fx);
    let owners = fx.st().compute_branch_owners().unwrap();
    fx.apply(0, TxBody::BranchAssignment { epoch: 1, owners })
        .unwrap();
    let mut holders: Vec<MemberId> = (0..3).map(|i| fx.id(i)).collect();
    holders.sort();
    let owner0 = fx.st().branch_owners[&0];
    let non_owner_i = (0..4).find(|&i| fx.id(i) != owner0).unwrap();
    let owner_i = (0..4).find(|&i| fx.id(i) == owner0).unwrap();
    assert_eq!(
        fx.apply(
            non_owner_i,
            TxBody::SectorRoot {
                sector: 0,
                root: [1; 32],
                holders: holders.clone()
            }
        ),
        Err(LedgerError::NotSectorOwner(fx.id(non_owner_i)))
    );
    assert!(matches!(
        fx.apply(
            owner_i,
            TxBody::SectorRoot {
                sector: 0,
                root: [1; 32],
                holders: holders[..2].to_vec()
            }
        ),
        Err(LedgerError::BadHolders(_))
    ));
    let mut unsorted = holders.clone();
    unsorted.reverse();
    assert!(matches!(
        fx.apply(
            owner_i,
            TxBody::SectorRoot {
                sector: 0,
                root: [1; 32],
                holders: unsorted
            }
        ),
        Err(LedgerError::BadHolders(_))
    ));
    let _ = non_owner;
}

#[test]
fn master_root_and_leaf_allocation() {
    let mut fx = Fx::new(4);
    assert_eq!(
        fx.apply(0, TxBody::SignRequest { digest: [1; 32] }),
        Err(LedgerError::MasterNotFinal)
    );
    assert_eq!(
        fx.apply(0, TxBody::MasterRoot { root: [0; 32] }),
        Err(LedgerError::SectorsMissing { missing: 2 })
    );
    let mut fx = key_ready();
    assert_eq!(
        fx.apply(0, TxBody::MasterRoot { root: [7; 32] }),
        Err(LedgerError::BadMasterRoot)
    );
    let root = master().root();
    fx.apply(0, TxBody::MasterRoot { root }).unwrap();
    assert_eq!(fx.st().master_root, Some(root));
    assert_eq!(
        fx.apply(0, TxBody::MasterRoot { root }),
        Err(LedgerError::MasterFinal)
    );
    // 2^5 = 32 leaves, each allocated exactly once, in order.
    for q in 0..32u64 {
        fx.apply(
            (q % 4) as usize,
            TxBody::SignRequest {
                digest: [q as u8; 32],
            },
        )
        .unwrap();
        assert_eq!(fx.st().next_leaf, q + 1);
        assert_eq!(fx.st().sign_requests[&q].digest, [q as u8; 32]);
    }
    assert_eq!(
        fx.apply(0, TxBody::SignRequest { digest: [9; 32] }),
        Err(LedgerError::KeyExhausted(32))
    );
    assert_eq!(fx.st().next_leaf, 32);
    // Signatures: real LMS signatures on the request's digest by the leaf, once.
    let m = master();
    let secs = sectors();
    let sign = |q: u32, msg: &[u8]| {
        m.sign(&secs[(q / 16) as usize], q, &leaf_seed(q), msg)
            .unwrap()
            .encode_hss()
    };
    let digest3 = fx.st().sign_requests[&3].digest;
    // Garbage, a signature by another leaf, and one on another message are rejected.
    for bad in [
        vec![1; 10],
        sign(4, &fx.st().sign_requests[&4].digest.clone()),
        sign(3, b"another message"),
    ] {
        assert!(matches!(
            fx.apply(
                1,
                TxBody::SignaturePublish {
                    leaf: 3,
                    signature: bad
                }
            ),
            Err(LedgerError::BadLmsSignature(_))
        ));
    }
    let good = sign(3, &digest3);
    fx.apply(
        1,
        TxBody::SignaturePublish {
            leaf: 3,
            signature: good.clone(),
        },
    )
    .unwrap();
    assert_eq!(
        fx.apply(
            1,
            TxBody::SignaturePublish {
                leaf: 3,
                signature: good
            }
        ),
        Err(LedgerError::LeafSigned(3))
    );
    assert_eq!(
        fx.apply(
            1,
            TxBody::SignaturePublish {
                leaf: 40,
                signature: vec![2; 10]
            }
        ),
        Err(LedgerError::LeafNotAllocated(40))
    );
}

#[test]
fn repair_replaces_a_holder() {
    let mut fx = key_ready();
    let lost = fx.id(0);
    let replacement = fx.id(3);
    assert!(matches!(
        fx.apply(
            1,
            TxBody::Repair {
                sector: 0,
                lost: replacement,
                replacement: lost
            }
        ),
        Err(LedgerError::BadRepair(_))
    ));
    fx.apply(
        1,
        TxBody::Repair {
            sector: 0,
            lost,
            replacement,
        },
    )
    .unwrap();
    let holders = &fx.st().sectors[&0].holders;
    assert!(holders.contains(&replacement) && !holders.contains(&lost));
    assert!(holders.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(fx.st().repairs.len(), 1);
    assert!(matches!(
        fx.apply(
            1,
            TxBody::Repair {
                sector: 0,
                lost,
                replacement
            }
        ),
        Err(LedgerError::BadRepair(_))
    ));
}

#[test]
fn block_checks_are_all_or_nothing() {
    let mut fx = Fx::new(4);
    let b1 = fx.block(&[], vec![]);
    assert_eq!(fx.ledger.tip, b1.hash());
    // A valid next block, then variations of it.
    let good_tx = fx.tx(
        0,
        TxBody::Transfer {
            to: fx.id(1),
            amount: 5,
        },
    );
    let (good, _) = fx
        .ledger
        .build_block(fx.id(0), fx.commit(&fx.all()), vec![good_tx.clone()])
        .unwrap();
    let before = fx.ledger.clone();

    let mut b = good.clone();
    b.height = 5;
    assert!(matches!(
        fx.ledger.apply_block(&b),
        Err(LedgerError::BadHeight { .. })
    ));
    let mut b = good.clone();
    b.prev_hash = [0; 32];
    assert_eq!(fx.ledger.apply_block(&b), Err(LedgerError::BadPrevHash));
    let mut b = good.clone();
    b.state_hash[0] ^= 1;
    assert_eq!(
        fx.ledger.apply_block(&b),
        Err(LedgerError::StateHashMismatch)
    );
    // An invalid transaction (replayed) makes the whole block invalid.
    let mut b = good.clone();
    b.txs.push(good_tx.clone());
    assert!(matches!(
        fx.ledger.apply_block(&b),
        Err(LedgerError::InvalidTx { index: 1, .. })
    ));
    // Commit from too little stake.
    let mut b = good.clone();
    b.last_commit = fx.commit(&[0, 1]);
    assert!(matches!(
        fx.ledger.apply_block(&b),
        Err(LedgerError::BadLastCommit(_))
    ));
    // A forged precommit.
    let mut b = good.clone();
    b.last_commit.signatures[0].1 .0[5] ^= 1;
    assert!(matches!(
        fx.ledger.apply_block(&b),
        Err(LedgerError::BadLastCommit(_))
    ));
    // Unknown proposer.
    let mut b = good.clone();
    b.proposer = id(&key(60));
    assert!(matches!(
        fx.ledger.apply_block(&b),
        Err(LedgerError::BadProposer(_))
    ));
    assert_eq!(fx.ledger, before);
    fx.ledger.apply_block(&good).unwrap();
    assert_eq!(fx.st().height, 2);
    assert_eq!(fx.st().members[&fx.id(1)].stake, 105);
}

#[test]
fn build_block_drops_invalid_candidates() {
    let mut fx = Fx::new(3);
    fx.block(&[], vec![]);
    let t = fx.tx(
        0,
        TxBody::Transfer {
            to: fx.id(1),
            amount: 5,
        },
    );
    let (b, rejected) = fx
        .ledger
        .build_block(fx.id(0), fx.commit(&[0, 1, 2]), vec![t.clone(), t])
        .unwrap();
    assert_eq!(b.txs.len(), 1);
    assert_eq!(rejected.len(), 1);
    fx.ledger.apply_block(&b).unwrap();
}

#[test]
fn encoding_roundtrips_and_rejects_trailing_bytes() {
    let mut fx = Fx::new(3);
    fx.block(&[], vec![]);
    let t = fx.tx(
        0,
        TxBody::Transfer {
            to: fx.id(1),
            amount: 5,
        },
    );
    let (b, _) = fx
        .ledger
        .build_block(fx.id(0), fx.commit(&[0, 1, 2]), vec![t])
        .unwrap();
    let bytes = encode(&b);
    let back: Block = decode(&bytes).unwrap();
    assert_eq!(back, b);
    assert_eq!(back.hash(), b.hash());
    let mut long = bytes.clone();
    long.push(0);
    assert!(decode::<Block>(&long).is_err());
    assert!(decode::<Block>(&bytes[..bytes.len() - 1]).is_err());
    let st: LedgerState = decode(&encode(fx.st())).unwrap();
    assert_eq!(st.hash(), fx.st().hash());
}

/// A random action by a random validator; many are invalid on purpose.
fn arb_action() -> impl Strategy<Value = (usize, u8, u64, usize)> {
    (0usize..4, 0u8..8, 0u64..150, 0usize..4)
}

fn body_for(fx: &Fx, kind: u8, amount: u64, other: usize) -> TxBody {
    match kind {
        0 | 1 => TxBody::Transfer {
            to: fx.id(other),
            amount,
        },
        2 => TxBody::SignRequest {
            digest: [amount as u8; 32],
        },
        3 => TxBody::DkgCommitment {
            epoch: amount % 2,
            payload: vec![amount as u8; 3],
        },
        4 => TxBody::EpochStart {
            epoch: fx.st().epoch + (amount % 2),
            beacon: [amount as u8; 32],
        },
        5 => TxBody::Exit,
        6 => TxBody::SignaturePublish {
            leaf: amount % 10,
            signature: vec![1; 4],
        },
        _ => TxBody::Evict {
            member: fx.id(other),
            evidence: Evidence::Inactivity {
                missed_heights: amount % 4,
            },
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Two copies fed the same random blocks end with byte-identical state; every rejected
    /// transaction leaves the state as it was; leaves are never allocated twice.
    #[test]
    fn replicas_agree(actions in proptest::collection::vec(arb_action(), 1..40), per_block in 1usize..6) {
        let mut a = key_ready();
        a.apply(0, TxBody::MasterRoot { root: master().root() }).unwrap();
        let mut b_ledger = a.ledger.clone();
        let mut allocated = std::collections::BTreeSet::new();
        for chunk in actions.chunks(per_block) {
            let mut txs = Vec::new();
            let mut shadow = a.ledger.state.clone();
            for &(who, kind, amount, other) in chunk {
                let body = body_for(&a, kind, amount, other);
                let author = a.id(who);
                let nonce = shadow.members.get(&author).map_or(0, |m| m.nonce);
                let t = Tx { author, nonce, body }.sign(CHAIN, &a.keys[who]);
                let before = shadow.clone();
                match shadow.apply_tx(&t) {
                    Ok(()) => txs.push(t),
                    Err(_) => prop_assert_eq!(&shadow, &before),
                }
            }
            let signers: Vec<usize> = a
                .all()
                .into_iter()
                .filter(|i| a.st().last_validators.contains_key(&a.id(*i)))
                .collect();
            let commit = if a.st().height == 0 { CommitInfo::default() } else { a.commit(&signers) };
            let proposer = *a.st().validators().keys().next().unwrap();
            let (block, rejected) = a.ledger.build_block(proposer, commit, txs).unwrap();
            prop_assert!(rejected.is_empty());
            a.ledger.apply_block(&block).unwrap();
            let wire: Block = decode(&encode(&block)).unwrap();
            b_ledger.apply_block(&wire).unwrap();
            prop_assert_eq!(a.st().hash(), b_ledger.state.hash());
            prop_assert_eq!(encode(a.st()), encode(&b_ledger.state));
            for (leaf, _) in a.st().sign_requests.iter() {
                allocated.insert(*leaf);
            }
            prop_assert_eq!(allocated.len() as u64, a.st().next_leaf);
            prop_assert!(a.st().next_leaf <= a.st().key.leaves());
        }
    }
}
