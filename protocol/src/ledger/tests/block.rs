//! Blocks: all-or-nothing application, proposer-side building, the canonical encoding.

use super::fixtures::{id, key, Fx, CHAIN};
use crate::ledger::{
    decode, encode, vote_digest, Block, LedgerError, LedgerState, SigCache, TxBody, VoteKind,
};

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

/// Each transaction's signature is checked once per node: the proposer checks it while
/// building (and neither validates its own block again nor re-applies it once decided); a
/// validator that checked it at gossip answers from its cache; the states agree with a full
/// check.
#[test]
fn a_validated_block_is_applied_without_checking_its_signatures_again() {
    let mut fx = Fx::new(4);
    fx.block(&[], vec![]);
    let txs: Vec<_> = (0..3)
        .map(|i| {
            fx.tx(
                i,
                TxBody::Transfer {
                    to: fx.id(3),
                    amount: 1,
                },
            )
        })
        .collect();
    let commit = fx.commit(&fx.all());

    let mut proposer_sigs = SigCache::default();
    let built = fx
        .ledger
        .build_block_with(fx.id(0), commit, txs.clone(), &mut proposer_sigs)
        .unwrap();
    assert_eq!(built.block.txs.len(), 3);
    assert_eq!((proposer_sigs.checks(), proposer_sigs.hits()), (3, 0));

    // A validator that checked the transactions at gossip, and the precommits as votes.
    let mut validator_sigs = SigCache::default();
    for t in &txs {
        validator_sigs.remember_verified(t, &fx.st().chain_id);
    }
    let commit = &built.block.last_commit;
    for (m, sig) in &commit.signatures {
        let digest = vote_digest(
            CHAIN,
            fx.st().height,
            commit.round,
            VoteKind::Precommit,
            Some(&fx.ledger.tip),
            m,
        );
        assert!(validator_sigs.verify_vote(m, &digest, sig));
    }
    assert_eq!((validator_sigs.checks(), validator_sigs.hits()), (4, 0));
    let checked = fx
        .ledger
        .validate_block_with(&built.block, &mut validator_sigs)
        .unwrap();
    assert_eq!((validator_sigs.checks(), validator_sigs.hits()), (4, 7));

    // Installing either gives what a full check gives.
    let mut full = fx.ledger.clone();
    full.apply_block(&built.block).unwrap();
    let mut via_build = fx.ledger.clone();
    via_build.apply_validated(built.validated.clone()).unwrap();
    let mut via_check = fx.ledger.clone();
    via_check.apply_validated(checked).unwrap();
    assert_eq!(via_build, full);
    assert_eq!(via_check, full);

    // A validated block is refused once the tip moved, and changes nothing.
    let before = full.clone();
    assert_eq!(
        full.apply_validated(built.validated),
        Err(LedgerError::BadPrevHash)
    );
    assert_eq!(full, before);
}

/// A cache warmed by one transaction does not vouch for another signature over it: a
/// proposal carrying a forged copy is invalid for a validator whose cache holds the original.
#[test]
fn a_warm_cache_still_refuses_a_forged_transaction_in_a_block() {
    let mut fx = Fx::new(4);
    fx.block(&[], vec![]);
    let good = fx.tx(
        0,
        TxBody::Transfer {
            to: fx.id(1),
            amount: 5,
        },
    );
    let commit = fx.commit(&fx.all());
    let (mut block, _) = fx
        .ledger
        .build_block(fx.id(0), commit, vec![good.clone()])
        .unwrap();
    block.txs[0].signature.0[10] ^= 1;
    let mut sigs = SigCache::default();
    sigs.remember_verified(&good, &fx.st().chain_id);
    assert!(matches!(
        fx.ledger.validate_block_with(&block, &mut sigs),
        Err(LedgerError::InvalidTx { index: 0, .. })
    ));
}

/// A precommit this node verified as a vote is not verified again in the next block's last
/// commit, and a forged one among remembered ones still makes the block invalid.
#[test]
fn remembered_precommits_are_not_verified_again_and_a_forged_one_is_refused() {
    let mut fx = Fx::new(4);
    fx.block(&[], vec![]);
    let commit = fx.commit(&fx.all());
    let (block, _) = fx.ledger.build_block(fx.id(0), commit, vec![]).unwrap();
    let mut sigs = SigCache::default();
    for (m, sig) in block.last_commit.signatures.iter().skip(1) {
        let digest = vote_digest(
            CHAIN,
            fx.st().height,
            0,
            VoteKind::Precommit,
            Some(&fx.ledger.tip),
            m,
        );
        assert!(sigs.verify_vote(m, &digest, sig));
    }
    assert_eq!(sigs.checks(), 3);
    fx.ledger.validate_block_with(&block, &mut sigs).unwrap();
    // Only the one not seen before was verified.
    assert_eq!((sigs.checks(), sigs.hits()), (4, 3));
    let mut forged = block.clone();
    forged.last_commit.signatures[0].1 .0[7] ^= 1;
    assert_eq!(
        fx.ledger
            .validate_block_with(&forged, &mut sigs)
            .map(|_| ()),
        Err(LedgerError::BadLastCommit("invalid precommit signature"))
    );
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

/// The state hash counts the published signatures by their digest, and still moves with each
/// one: its bytes, its leaf, and the state's other fields.
#[test]
fn the_state_hash_covers_published_signatures_by_their_digest() {
    let fx = Fx::new(3);
    let base = fx.st().clone();
    let mut a = base.clone();
    a.signatures.insert(7, vec![1; 64]);
    let mut b = base.clone();
    b.signatures.insert(7, vec![2; 64]);
    let mut c = base.clone();
    c.signatures.insert(8, vec![1; 64]);
    let hashes = [base.hash(), a.hash(), b.hash(), c.hash()];
    for (i, x) in hashes.iter().enumerate() {
        for y in &hashes[i + 1..] {
            assert_ne!(x, y);
        }
    }
    // The digest is persisted with the state: a decoded state hashes the same.
    let back: LedgerState = decode(&encode(&a)).unwrap();
    assert_eq!(back.hash(), a.hash());
    // A field next to the signatures still counts.
    let mut d = a.clone();
    d.repairs.clear();
    d.evictions.insert(fx.id(2), 1);
    assert_ne!(d.hash(), a.hash());
}
