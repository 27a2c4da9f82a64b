//! The key on the ledger: epoch start and branch assignment, sectors, master root, leaf
//! allocation, published signatures, the next key, repair.

use super::fixtures::{
    acks, key_ready, leaf_seed, master, sectors, signing_ready, start_epoch_1, Fx, COMMITMENTS_ROOT,
};
use crate::agent::ISSUE_WINDOW_BLOCKS;
use crate::ledger::{leaf_id, split_leaf, KeyState, LedgerError, SigCache, TxBody};

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
                commitments_root: COMMITMENTS_ROOT,
                acks: vec![]
            }
        ),
        Err(LedgerError::NoAssignment)
    );
    let mut fx2 = key_ready();
    let owner0 = fx2.st().newest.branch_owners[&0];
    let owner = (0..4).find(|&i| fx2.id(i) == owner0).unwrap();
    assert_eq!(
        fx2.apply(
            owner,
            TxBody::SectorRoot {
                sector: 0,
                root: [1; 32],
                commitments_root: COMMITMENTS_ROOT,
                acks: vec![]
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
                commitments_root: COMMITMENTS_ROOT,
                acks: vec![]
            }
        ),
        Err(LedgerError::SectorOutOfRange(9))
    );
    // The published record keeps who acknowledged and what the holders were chosen from:
    // every leaf's r = 3 holders are validators, recomputable from the record.
    let rec = &fx2.st().newest.sectors[&0];
    assert_eq!(rec.acked.len(), 4);
    assert_eq!(rec.commitments_root, COMMITMENTS_ROOT);
    for leaf in 0..16u64 {
        let holders = rec.basis.leaf_holders(leaf, 3).unwrap();
        assert_eq!(holders.len(), 3);
        assert!(holders.iter().all(|h| fx2.st().is_validator(h)));
    }

    // Fresh ledger with assignment only: each bad sector root is rejected, state untouched.
    start_epoch_1(&mut fx);
    let owners = fx.st().compute_branch_owners().unwrap();
    fx.apply(0, TxBody::BranchAssignment { epoch: 1, owners })
        .unwrap();
    let owner0 = fx.st().newest.branch_owners[&0];
    let non_owner_i = (0..4).find(|&i| fx.id(i) != owner0).unwrap();
    let owner_i = (0..4).find(|&i| fx.id(i) == owner0).unwrap();
    let root = sectors()[0].root();
    let publish = |acks| TxBody::SectorRoot {
        sector: 0,
        root,
        commitments_root: COMMITMENTS_ROOT,
        acks,
    };
    let all = acks(&fx, 0, owner0, (COMMITMENTS_ROOT, root), &[0, 1, 2, 3]);
    assert_eq!(
        fx.apply(non_owner_i, publish(all.clone())),
        Err(LedgerError::NotSectorOwner(fx.id(non_owner_i)))
    );
    let before = fx.st().clone();
    // With a = r = 3, a missing acknowledgement leaves some leaf short (each leaf has 3 of
    // the 4 validators as holders, and 16 leaves cover every 3-subset's complement).
    for missing in 0..4 {
        let some: Vec<usize> = (0..4).filter(|&i| i != missing).collect();
        assert!(matches!(
            fx.apply(
                owner_i,
                publish(acks(&fx, 0, owner0, (COMMITMENTS_ROOT, root), &some))
            ),
            Err(LedgerError::NotEnoughAcks {
                need: 3,
                got: 2,
                ..
            })
        ));
    }
    // A duplicate, an acknowledgement of another commitments root or of another sector tree
    // (its holder stored a tree other than the one published), one for another sector, and
    // one by a non-validator are each refused by name.
    let mut dup = all.clone();
    dup.push(all[0].clone());
    assert!(matches!(
        fx.apply(owner_i, publish(dup)),
        Err(LedgerError::BadAck {
            reason: "acknowledged twice",
            ..
        })
    ));
    let mut other_root = all.clone();
    other_root[1] = acks(&fx, 0, owner0, ([0xdd; 32], root), &[1]).remove(0);
    assert!(matches!(
        fx.apply(owner_i, publish(other_root)),
        Err(LedgerError::BadAck {
            reason: "does not verify",
            ..
        })
    ));
    let mut other_tree = all.clone();
    other_tree[3] = acks(&fx, 0, owner0, (COMMITMENTS_ROOT, [0xee; 32]), &[3]).remove(0);
    assert!(matches!(
        fx.apply(owner_i, publish(other_tree)),
        Err(LedgerError::BadAck {
            reason: "does not verify",
            ..
        })
    ));
    let mut other_sector = all.clone();
    other_sector[2] = acks(&fx, 1, owner0, (COMMITMENTS_ROOT, root), &[2]).remove(0);
    assert!(matches!(
        fx.apply(owner_i, publish(other_sector)),
        Err(LedgerError::BadAck {
            reason: "does not verify",
            ..
        })
    ));
    let stranger = super::fixtures::key(50);
    let id = crate::dealing::SectorId {
        chain: crate::ledger::chain_digest(super::fixtures::CHAIN),
        key: 0,
        sector: 0,
        owner: owner0,
        basis: fx.st().holder_basis().digest(),
    };
    let mut with_stranger = all.clone();
    with_stranger.push(crate::dealing::sign_ack(
        &id,
        &stranger,
        COMMITMENTS_ROOT,
        root,
    ));
    assert!(matches!(
        fx.apply(owner_i, publish(with_stranger)),
        Err(LedgerError::BadAck {
            reason: "not a validator of this epoch",
            ..
        })
    ));
    assert_eq!(fx.st(), &before);
    // Every validator's acknowledgement: published.
    fx.apply(owner_i, publish(all)).unwrap();
    assert_eq!(fx.st().newest.sectors[&0].root, root);
}

#[test]
fn master_root_and_leaf_allocation() {
    let mut fx = Fx::new(4);
    assert_eq!(
        fx.apply(0, fx.request([1; 32], 0)),
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
    assert_eq!(fx.st().newest.master_root, Some(root));
    assert_eq!(
        fx.apply(0, TxBody::MasterRoot { root }),
        Err(LedgerError::MasterFinal)
    );
    // No allocation before a signed checkpoint names the key (set here as one would).
    assert_eq!(
        fx.apply(0, fx.request([1; 32], 0)),
        Err(LedgerError::KeyNotEndorsed)
    );
    fx.ledger.state.newest.endorsed = Some(0);
    // 2^5 = 32 leaves, each allocated exactly once, in order.
    for q in 0..32u64 {
        fx.apply((q % 4) as usize, fx.request([q as u8; 32], q))
            .unwrap();
        assert_eq!(fx.st().newest.next_leaf, q + 1);
        assert_eq!(fx.st().sign_requests[&q].digest, [q as u8; 32]);
    }
    assert_eq!(
        fx.apply(0, fx.request([9; 32], 99)),
        Err(LedgerError::KeyExhausted(32))
    );
    assert_eq!(fx.st().newest.next_leaf, 32);
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
fn request_and_lms_signatures_that_passed_are_not_checked_again_and_nothing_else_is_answered() {
    let mut fx = signing_ready();
    let mut cache = SigCache::default();
    // A relayed request: the transaction's and the client's signature, each checked once.
    let request = fx.tx(0, fx.request([3; 32], 0));
    let mut again = fx.st().clone();
    fx.ledger
        .state
        .apply_tx_with(&request, Some(&mut cache))
        .unwrap();
    assert_eq!((cache.checks(), cache.hits()), (2, 0));
    again.apply_tx_with(&request, Some(&mut cache)).unwrap();
    assert_eq!((cache.checks(), cache.hits()), (2, 2));
    assert_eq!(&again, fx.st());
    // A published LMS signature: checked once, answered on the next copy of the state.
    let (m, secs) = (master(), sectors());
    let digest = fx.st().sign_requests[&0].digest;
    let sign = |q: u32, msg: &[u8]| {
        m.sign(&secs[(q / 16) as usize], q, &leaf_seed(q), msg)
            .unwrap()
            .encode_hss()
    };
    let publish = |fx: &Fx, i: usize, signature: Vec<u8>| {
        fx.tx(i, TxBody::SignaturePublish { leaf: 0, signature })
    };
    let good = publish(&fx, 1, sign(0, &digest));
    let mut copy = fx.st().clone();
    copy.apply_tx_with(&good, Some(&mut cache)).unwrap();
    assert_eq!((cache.checks(), cache.hits()), (4, 2));
    let mut copy = fx.st().clone();
    copy.apply_tx_with(&good, Some(&mut cache)).unwrap();
    assert_eq!((cache.checks(), cache.hits()), (4, 4));
    // The same LMS signature in another author's transaction: only that signature is new.
    let relayed = publish(&fx, 2, sign(0, &digest));
    fx.st()
        .clone()
        .apply_tx_with(&relayed, Some(&mut cache))
        .unwrap();
    assert_eq!((cache.checks(), cache.hits()), (5, 5));
    // Another message's signature, by a warm cache or a cold one, is refused alike.
    let wrong = publish(&fx, 1, sign(0, b"another message"));
    for mut c in [cache.clone(), SigCache::default()] {
        assert!(matches!(
            fx.st().clone().apply_tx_with(&wrong, Some(&mut c)),
            Err(LedgerError::BadLmsSignature(_))
        ));
    }
}

#[test]
fn repair_is_refused_until_the_ledger_picks_replacements() {
    let mut fx = key_ready();
    let before = fx.st().clone();
    let lost = fx.id(0);
    let replacement = fx.id(3);
    assert_eq!(
        fx.apply(
            1,
            TxBody::Repair {
                sector: 0,
                lost,
                replacement
            }
        ),
        Err(LedgerError::RepairDisabled)
    );
    assert_eq!(fx.st(), &before);
}

#[test]
fn the_next_key_opens_when_the_newest_runs_low_and_allocation_waits_for_its_endorsement() {
    let mut fx = signing_ready();
    fx.ledger.state.key.rotate_percent = 50;
    // 32 leaves: the allocation that leaves 15 (fewer than half) opens key 1.
    for q in 0..16u64 {
        fx.apply((q % 4) as usize, fx.request([1; 32], q)).unwrap();
        assert_eq!(fx.st().newest.index, 0, "opened early, after {q}");
    }
    fx.apply(0, fx.request([1; 32], 16)).unwrap();
    let st = fx.st();
    assert_eq!(st.newest.index, 1);
    assert_eq!(st.newest, KeyState::new(1), "key 1 starts from nothing");
    assert_eq!(st.older_keys[&0].next_leaf, 17);
    // Key 0 keeps allocating until it is spent; key 1 is not endorsed, so then nothing can.
    for q in 17..32u64 {
        fx.apply((q % 4) as usize, fx.request([2; 32], q)).unwrap();
        assert!(fx.st().sign_requests.contains_key(&leaf_id(0, q)));
    }
    assert_eq!(fx.st().allocating_key(), None);
    assert_eq!(
        fx.apply(0, fx.request([3; 32], 32)),
        Err(LedgerError::KeyExhausted(32))
    );
    // Key 1's layout differs from key 0's in its identifier only.
    let (l0, l1) = (
        fx.st().key_layout(0).unwrap(),
        fx.st().key_layout(1).unwrap(),
    );
    assert_ne!(l0.id, l1.id);
    assert_eq!(split_leaf(leaf_id(7, 19)), (7, 19));
}

/// A key is spent once it is an older key with nothing left to allocate and every leaf it
/// allocated is signed; not before, and the newest key never.
#[test]
fn a_key_is_spent_once_nothing_is_left_to_allocate_and_every_allocated_leaf_is_signed() {
    let mut fx = signing_ready();
    fx.ledger.state.key.rotate_percent = 50;
    // 32 leaves: the 17th allocation opens key 1; key 0 allocates the other 15 after it.
    for q in 0..32u64 {
        fx.apply((q % 4) as usize, fx.request([1; 32], q)).unwrap();
    }
    let st = fx.st();
    assert_eq!((st.newest.index, st.allocating_key()), (1, None));
    assert!(!st.key_spent(0), "32 leaves allocated, none signed");
    assert!(!st.key_spent(1) && !st.key_spent(2));
    let mut st = st.clone();
    for q in 0..31u64 {
        st.signatures.insert(leaf_id(0, q), vec![q as u8]);
    }
    assert!(!st.key_spent(0), "leaf 31 still waits for its signature");
    // Issued to a client, leaf 31 is done once its quorum serves it no more, signed or not.
    let mut issued = st.clone();
    issued
        .sign_requests
        .get_mut(&leaf_id(0, 31))
        .unwrap()
        .issue_to = Some([7; 32]);
    let allocated = issued.sign_requests[&leaf_id(0, 31)].height;
    issued.height = allocated + ISSUE_WINDOW_BLOCKS - 1;
    assert!(!issued.key_spent(0));
    issued.height += 1;
    assert!(issued.key_spent(0));
    st.signatures.insert(leaf_id(0, 31), vec![31]);
    assert!(st.key_spent(0));
    // A signature of another key's leaf does not count for this one, nor the reverse.
    let mut open = st.clone();
    open.sign_requests
        .insert(leaf_id(1, 0), st.sign_requests[&leaf_id(0, 0)].clone());
    assert!(open.key_spent(0));
    // An older key with a leaf left to allocate is not spent.
    let mut left = st.clone();
    left.older_keys.get_mut(&0).unwrap().next_leaf = 31;
    left.sign_requests.remove(&leaf_id(0, 31));
    left.signatures = Default::default();
    for q in 0..31u64 {
        left.signatures.insert(leaf_id(0, q), vec![q as u8]);
    }
    assert!(!left.key_spent(0));
}

/// Withdrawn sectors and retired leaves are skipped by allocation and not counted as left.
#[test]
fn allocation_skips_withdrawn_sectors_and_retired_leaves() {
    let params = crate::ledger::KeyParams {
        tree_height: 5,
        sector_bits: 2,
        leaf_threshold: 2,
        leaf_holders: 3,
        ack_threshold: 3,
        audit_leaves: 0,
        sector_window: crate::ledger::DEFAULT_SECTOR_WINDOW,
        rotate_percent: 0,
    };
    // 32 leaves in 4 sectors of 8.
    let mut k = KeyState::new(0);
    assert_eq!(k.leaves_left(&params), 32);
    k.next_leaf = 3;
    k.retired.insert(3, "test".into());
    k.retired.insert(20, "test".into());
    k.withdrawn.insert(0);
    k.withdrawn.insert(2);
    // Left: sector 1 (8..16) and sector 3 (24..32); 3 and 20 are in withdrawn sectors.
    assert_eq!(k.leaves_left(&params), 16);
    k.withdrawn.remove(&2);
    // Sector 2 is back, less its retired leaf 20.
    assert_eq!(k.leaves_left(&params), 23);
    k.next_leaf = 31;
    assert_eq!(k.leaves_left(&params), 1);
    k.withdrawn.insert(3);
    assert_eq!(k.leaves_left(&params), 0);
}
