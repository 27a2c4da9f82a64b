//! The key on the ledger: epoch start and branch assignment, sectors, master root, leaf
//! allocation, published signatures, repair.

use super::fixtures::{key_ready, leaf_seed, master, sectors, start_epoch_1, Fx};
use crate::ledger::{LedgerError, TxBody};
use crate::member::MemberId;

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
