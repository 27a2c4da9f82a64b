//! Members: transfers, admission (and its per-epoch budget and expiry), exit and eviction
//! (inactivity, equivocation).

use ed25519_dalek::{Signer, SigningKey};
use rand_core::SeedableRng;

use super::fixtures::{genesis, id, key, xpub, xsecret, Fx, CHAIN};
use crate::admission::{possession_context, Proof, Puzzle};
use crate::ledger::{
    peer_id_bytes, vote_digest, Evidence, LedgerError, MemberStatus, Signature64, SignedTx, Tx,
    TxBody, VoteKind, VoteRecord,
};
use crate::ledger::{GenesisError, LedgerState, MAX_ADMISSIONS_PER_EPOCH};
use crate::seal::{prove_possession, PossessionProof};

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

/// A proof of possession of member `x`'s X25519 key, made for `peer_id`.
fn possession(x: u8, peer_id: &[u8]) -> PossessionProof {
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([x; 32]);
    prove_possession(&xsecret(x), &possession_context(CHAIN, peer_id), &mut rng).unwrap()
}

/// An admission of `k` with X25519 key `x25519` (solved proof of work) and `proof`.
fn admit(k: &SigningKey, x25519: [u8; 32], x25519_proof: PossessionProof) -> SignedTx {
    let me = id(k);
    let puzzle = Puzzle {
        chain_id: CHAIN.into(),
        peer_id: peer_id_bytes(&me),
        x25519,
    };
    let pow = puzzle.solve(4, 0, 1 << 20, |_| {}).unwrap();
    Tx {
        author: me,
        nonce: 0,
        body: TxBody::Admit {
            peer_id: peer_id_bytes(&me),
            x25519,
            pow,
            x25519_proof,
        },
    }
    .sign(CHAIN, k)
}

fn admission_tx(k: &SigningKey, difficulty: u8) -> SignedTx {
    assert_eq!(difficulty, 4, "the fixtures' genesis difficulty");
    let x = k.to_bytes()[0];
    admit(k, xpub(x), possession(x, &peer_id_bytes(&id(k))))
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
        x25519: xpub(30),
    };
    let pow = puzzle.solve(4, 0, 1 << 20, |_| {}).unwrap();
    let t = Tx {
        author: me,
        nonce: 0,
        body: TxBody::Admit {
            peer_id: other.clone(),
            x25519: xpub(30),
            pow,
            x25519_proof: possession(30, &other),
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
        x25519: xpub(30),
    };
    let nonce = (0..).find(|n| puzzle.hash(*n)[0] & 0x80 != 0).unwrap();
    let t = Tx {
        author: me,
        nonce: 0,
        body: TxBody::Admit {
            peer_id: peer_id_bytes(&me),
            x25519: xpub(30),
            pow: Proof { nonce },
            x25519_proof: possession(30, &peer_id_bytes(&me)),
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

#[test]
fn admission_refuses_unusable_or_unproven_x25519_keys() {
    let mut fx = Fx::new(2);
    let k = key(40);
    let me = id(&k);
    let mine = peer_id_bytes(&me);
    let before = fx.st().clone();
    // A low-order key (all zeros), with a valid proof of work: every DH output is zero.
    let t = admit(&k, [0; 32], possession(40, &mine));
    assert_eq!(
        fx.ledger.state.apply_tx(&t),
        Err(LedgerError::BadX25519(me))
    );
    // Another member's key, which the author cannot prove it holds.
    let t = admit(&k, xpub(0), possession(40, &mine));
    assert_eq!(
        fx.ledger.state.apply_tx(&t),
        Err(LedgerError::NoX25519Possession(me))
    );
    // A valid proof made for another peer id does not carry over.
    let t = admit(&k, xpub(40), possession(40, &peer_id_bytes(&id(&key(41)))));
    assert_eq!(
        fx.ledger.state.apply_tx(&t),
        Err(LedgerError::NoX25519Possession(me))
    );
    assert_eq!(fx.st(), &before);
    // With its own key and proof it is admitted.
    fx.ledger
        .state
        .apply_tx(&admit(&k, xpub(40), possession(40, &mine)))
        .unwrap();
    assert_eq!(fx.st().members[&me].x25519, xpub(40));
}

#[test]
fn a_genesis_with_a_low_order_x25519_key_is_refused() {
    let mut g = genesis(3);
    g.validators[1].x25519 = [0; 32];
    let bad = g.validators[1].id;
    assert_eq!(
        LedgerState::from_genesis(&g).err(),
        Some(GenesisError::BadX25519(bad))
    );
}

#[test]
fn admissions_per_epoch_are_capped_and_the_budget_reopens_next_epoch() {
    let mut fx = Fx::new(2);
    for i in 0..MAX_ADMISSIONS_PER_EPOCH {
        let k = key(100 + i as u8);
        fx.ledger.state.apply_tx(&admission_tx(&k, 4)).unwrap();
    }
    let late = key(100 + MAX_ADMISSIONS_PER_EPOCH as u8);
    let before = fx.st().clone();
    assert_eq!(
        fx.ledger.state.apply_tx(&admission_tx(&late, 4)),
        Err(LedgerError::AdmissionsFull {
            epoch: 0,
            max: MAX_ADMISSIONS_PER_EPOCH
        })
    );
    assert_eq!(fx.st(), &before);
    fx.ledger.state.begin_epoch(1, [5; 32]);
    fx.ledger.state.apply_tx(&admission_tx(&late, 4)).unwrap();
    assert_eq!(fx.st().admitted_this_epoch, 1);
}

#[test]
fn idle_unstaked_admissions_expire_but_staked_or_active_members_stay() {
    let mut fx = Fx::new(2);
    let (idle, staked, spent) = (key(40), key(41), key(42));
    for k in [&idle, &staked, &spent] {
        fx.ledger.state.apply_tx(&admission_tx(k, 4)).unwrap();
    }
    for k in [&staked, &spent] {
        fx.apply(
            0,
            TxBody::Transfer {
                to: id(k),
                amount: 5,
            },
        )
        .unwrap();
    }
    // `spent` gives its stake back: no stake, but it has sent a transaction (nonce 2).
    let back = Tx {
        author: id(&spent),
        nonce: 1,
        body: TxBody::Transfer {
            to: fx.id(0),
            amount: 5,
        },
    }
    .sign(CHAIN, &spent);
    fx.ledger.state.apply_tx(&back).unwrap();
    fx.ledger.state.begin_epoch(1, [5; 32]);
    assert!(
        fx.st().members.contains_key(&id(&idle)),
        "kept for two epochs"
    );
    fx.ledger.state.begin_epoch(2, [6; 32]);
    let members = &fx.st().members;
    assert!(
        !members.contains_key(&id(&idle)),
        "idle since epoch 0: dropped"
    );
    assert!(members.contains_key(&id(&staked)) && members.contains_key(&id(&spent)));
    assert!(members.contains_key(&fx.id(0)) && members.contains_key(&fx.id(1)));
    // It may come back with a new admission, starting over.
    fx.ledger.state.apply_tx(&admission_tx(&idle, 4)).unwrap();
    assert_eq!(fx.st().members[&id(&idle)].admitted_epoch, 2);
}

#[test]
fn a_filler_uses_up_its_authors_nonce_and_changes_nothing_else() {
    let mut fx = Fx::new(4);
    let before = fx.st().clone();
    let filler = fx.tx(0, TxBody::Filler);
    fx.ledger.state.apply_tx(&filler).unwrap();
    let mut expected = before.clone();
    expected.members.get_mut(&fx.id(0)).expect("a member").nonce += 1;
    assert_eq!(fx.st().hash(), expected.hash());
    // Its nonce is used: it cannot be replayed, and the author's next transaction follows it.
    assert!(matches!(
        fx.ledger.state.apply_tx(&filler),
        Err(LedgerError::BadNonce { got: 0, .. })
    ));
    let to = fx.id(1);
    assert_eq!(fx.apply(0, TxBody::Transfer { to, amount: 1 }), Ok(()));
    // A stranger's filler is refused like any transaction of a non-member.
    let stranger = key(50);
    let t = Tx {
        author: id(&stranger),
        nonce: 0,
        body: TxBody::Filler,
    }
    .sign(CHAIN, &stranger);
    assert_eq!(
        fx.ledger.state.apply_tx(&t),
        Err(LedgerError::UnknownMember(id(&stranger)))
    );
}

#[test]
fn the_validator_set_kept_beside_the_members_is_the_one_a_pass_over_them_finds() {
    use std::collections::BTreeMap;

    use crate::ledger::{Member, MemberStatus, Members};
    use crate::member::MemberId;

    let scan = |m: &Members| -> BTreeMap<MemberId, u64> {
        m.iter()
            .filter(|(_, m)| m.status == MemberStatus::Active && m.stake > 0)
            .map(|(id, m)| (*id, m.stake))
            .collect()
    };
    let member = |stake| Member {
        peer_id: vec![1],
        x25519: [2; 32],
        stake,
        nonce: 0,
        status: MemberStatus::Active,
        admitted_epoch: 0,
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut m = Members::from(BTreeMap::from([(MemberId([0; 32]), member(5))]));
    for step in 0..400u32 {
        let who = MemberId([(rand_core::RngCore::next_u32(&mut rng) % 12) as u8; 32]);
        match rand_core::RngCore::next_u32(&mut rng) % 6 {
            0 => {
                m.insert(who, member(u64::from(step % 3)));
            }
            1 => {
                m.remove(&who);
            }
            2 | 3 => {
                if let Some(x) = m.get_mut(&who) {
                    x.stake = u64::from(step % 4);
                }
            }
            4 => {
                if let Some(x) = m.get_mut(&who) {
                    x.status = if step % 2 == 0 {
                        MemberStatus::Exited
                    } else {
                        MemberStatus::Active
                    };
                }
            }
            _ => m.settle(),
        }
        assert_eq!(m.validators(), scan(&m), "after step {step}");
        let decoded: Members = crate::ledger::decode(&crate::ledger::encode(&m)).unwrap();
        assert_eq!(decoded.validators(), scan(&m));
        assert_eq!(decoded.digest(), m.digest());
    }
}
