//! Blocks: all-or-nothing application, proposer-side building, the canonical encoding.

use super::fixtures::{id, key, Fx};
use crate::ledger::{decode, encode, Block, LedgerError, LedgerState, TxBody};

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
