//! Transaction signatures and nonces.

use super::fixtures::{Fx, CHAIN};
use crate::ledger::{LedgerError, Tx, TxBody};

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
