//! Property test: replicas fed the same random blocks agree byte for byte.

use proptest::prelude::*;

use super::fixtures::{signing_ready, Fx, CHAIN};
use crate::ledger::{decode, encode, Block, CommitInfo, Evidence, Tx, TxBody};

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
        2 => fx.request([amount as u8; 32], amount),
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
        let mut a = signing_ready();
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
            prop_assert_eq!(allocated.len() as u64, a.st().newest.next_leaf);
            prop_assert!(a.st().newest.next_leaf <= a.st().key.leaves());
        }
    }
}
