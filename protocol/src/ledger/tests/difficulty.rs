//! The admission proof-of-work difficulty as a chain parameter: changed by more than 2/3 of the
//! stake through the same approval path as client changes, within the genesis
//! difficulty..=`MAX_DIFFICULTY`, checked by every later `Admit`, covered by the state hash.

use ed25519_dalek::SigningKey;
use rand_core::SeedableRng;

use super::fixtures::{id, key, xpub, xsecret, Fx, CHAIN};
use crate::admission::MAX_DIFFICULTY;
use crate::admission::{leading_zero_bits, possession_context, AdmissionError, Proof, Puzzle};
use crate::ledger::{
    decode, encode, peer_id_bytes, Change, ClientChange, LedgerError, LedgerState, SignedTx, Tx,
    TxBody, MAX_OPEN_CHANGES,
};
use crate::seal::prove_possession;

/// The fixtures' genesis difficulty.
const GENESIS: u8 = 4;

fn raise(difficulty: u8) -> TxBody {
    TxBody::PowDifficulty { difficulty }
}

fn puzzle(k: &SigningKey) -> Puzzle {
    let x = k.to_bytes()[0];
    Puzzle {
        chain_id: CHAIN.into(),
        peer_id: peer_id_bytes(&id(k)),
        x25519: xpub(x),
    }
}

/// The first nonce whose proof has at least `min` and fewer than `below` leading zero bits.
fn proof_between(k: &SigningKey, min: u32, below: u32) -> Proof {
    let p = puzzle(k);
    let nonce = (0u64..)
        .find(|n| {
            let bits = leading_zero_bits(&p.hash(*n));
            bits >= min && bits < below
        })
        .unwrap();
    Proof { nonce }
}

/// `k`'s admission with proof `pow`.
fn admit(k: &SigningKey, pow: Proof) -> SignedTx {
    let x = k.to_bytes()[0];
    let me = id(k);
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([x; 32]);
    let x25519_proof = prove_possession(
        &xsecret(x),
        &possession_context(CHAIN, &peer_id_bytes(&me)),
        &mut rng,
    )
    .unwrap();
    Tx {
        author: me,
        nonce: 0,
        body: TxBody::Admit {
            peer_id: peer_id_bytes(&me),
            x25519: xpub(x),
            pow,
            x25519_proof,
        },
    }
    .sign(CHAIN, k)
}

#[test]
fn a_difficulty_change_applies_only_above_two_thirds_of_the_stake() {
    // 3 validators of equal stake: 1 approval is 1/3, 2 are exactly 2/3 (not enough), 3 pass.
    let mut fx = Fx::new(3);
    fx.apply(0, raise(10)).unwrap();
    assert_eq!(fx.st().pow_difficulty, GENESIS);
    fx.apply(1, raise(10)).unwrap();
    assert_eq!(fx.st().pow_difficulty, GENESIS, "exactly 2/3 is not enough");
    assert_eq!(fx.st().changes[&Change::PowDifficulty(10)].len(), 2);
    fx.apply(2, raise(10)).unwrap();
    assert_eq!(fx.st().pow_difficulty, 10);
    assert_eq!(fx.st().min_pow_difficulty, GENESIS);
    assert!(
        fx.st().changes.is_empty(),
        "approvals are dropped once applied"
    );
}

#[test]
fn approvals_count_by_stake_not_by_head() {
    // 0 moves 90 to 1: stakes 10, 190, 100, 100 (400).
    let mut fx = Fx::new(4);
    let to = fx.id(1);
    fx.apply(0, TxBody::Transfer { to, amount: 90 }).unwrap();
    // Three of four validators, 210 of 400: not enough.
    for i in [0, 2, 3] {
        fx.apply(i, raise(9)).unwrap();
    }
    assert_eq!(fx.st().pow_difficulty, GENESIS);
    // Two validators, 290 of 400 (> 2/3): enough.
    fx.apply(1, raise(11)).unwrap();
    fx.apply(2, raise(11)).unwrap();
    assert_eq!(fx.st().pow_difficulty, 11);
}

#[test]
fn an_approver_that_stops_validating_no_longer_counts() {
    let mut fx = Fx::new(4);
    fx.apply(0, raise(9)).unwrap();
    fx.apply(1, raise(9)).unwrap();
    fx.apply(1, TxBody::Exit).unwrap();
    // Validators now 0, 2, 3 (300); 0 and 2 hold exactly 2/3: not enough.
    fx.apply(2, raise(9)).unwrap();
    assert_eq!(fx.st().pow_difficulty, GENESIS);
    fx.apply(3, raise(9)).unwrap();
    assert_eq!(fx.st().pow_difficulty, 9);
}

#[test]
fn duplicate_approvals_are_refused_and_change_nothing() {
    let mut fx = Fx::new(4);
    fx.apply(0, raise(12)).unwrap();
    let before = fx.st().clone();
    assert_eq!(
        fx.apply(0, raise(12)),
        Err(LedgerError::DuplicateApproval(fx.id(0)))
    );
    assert_eq!(fx.st(), &before);
    // The same validator may approve another value (a separate change).
    fx.apply(0, raise(13)).unwrap();
    assert_eq!(fx.st().changes.len(), 2);
}

#[test]
fn out_of_range_unchanged_and_non_validator_changes_are_refused() {
    let mut fx = Fx::new(4);
    let before = fx.st().clone();
    assert_eq!(
        fx.apply(0, raise(GENESIS - 1)),
        Err(LedgerError::DifficultyOutOfRange {
            got: GENESIS - 1,
            min: GENESIS,
            max: MAX_DIFFICULTY
        })
    );
    assert_eq!(
        fx.apply(0, raise(MAX_DIFFICULTY + 1)),
        Err(LedgerError::DifficultyOutOfRange {
            got: MAX_DIFFICULTY + 1,
            min: GENESIS,
            max: MAX_DIFFICULTY
        })
    );
    assert!(matches!(
        fx.apply(0, raise(u8::MAX)),
        Err(LedgerError::DifficultyOutOfRange { .. })
    ));
    assert_eq!(
        fx.apply(0, raise(GENESIS)),
        Err(LedgerError::DifficultyUnchanged(GENESIS))
    );
    assert_eq!(fx.st(), &before);
    // A stake-0 member may not approve.
    let newcomer = key(30);
    fx.ledger
        .state
        .apply_tx(&admit(&newcomer, proof_between(&newcomer, 4, 64)))
        .unwrap();
    let stx = Tx {
        author: id(&newcomer),
        nonce: 1,
        body: raise(8),
    }
    .sign(CHAIN, &newcomer);
    assert_eq!(
        fx.ledger.state.apply_tx(&stx),
        Err(LedgerError::NotValidator(id(&newcomer)))
    );
    // The largest supported value is accepted.
    fx.apply(0, raise(MAX_DIFFICULTY)).unwrap();
}

#[test]
fn a_raised_difficulty_may_come_back_down_but_never_below_genesis() {
    let mut fx = Fx::new(4);
    for i in 0..3 {
        fx.apply(i, raise(20)).unwrap();
    }
    assert_eq!(fx.st().pow_difficulty, 20);
    assert!(matches!(
        fx.apply(0, raise(GENESIS - 1)),
        Err(LedgerError::DifficultyOutOfRange { .. })
    ));
    for i in 1..4 {
        fx.apply(i, raise(GENESIS)).unwrap();
    }
    assert_eq!(fx.st().pow_difficulty, GENESIS);
}

#[test]
fn an_admission_meeting_only_the_old_difficulty_is_refused_after_a_raise() {
    let mut fx = Fx::new(4);
    // Admitted before the raise: stays a member after it.
    let early = key(40);
    fx.ledger
        .state
        .apply_tx(&admit(&early, proof_between(&early, 4, 64)))
        .unwrap();
    for i in 0..3 {
        fx.apply(i, raise(12)).unwrap();
    }
    assert_eq!(fx.st().pow_difficulty, 12);
    assert!(fx.st().members.contains_key(&id(&early)));
    let late = key(41);
    let weak = proof_between(&late, 4, 12);
    let before = fx.st().clone();
    match fx.ledger.state.apply_tx(&admit(&late, weak)) {
        Err(LedgerError::Admission(AdmissionError::TooWeak { need: 12, got })) => {
            assert!((4..12).contains(&got))
        }
        other => panic!("expected a too-weak proof, got {other:?}"),
    }
    assert_eq!(fx.st(), &before);
    // The same proof was good enough before the raise.
    let mut at_genesis = Fx::new(4);
    at_genesis
        .ledger
        .state
        .apply_tx(&admit(&late, weak))
        .unwrap();
    // A proof at the new difficulty admits.
    fx.ledger
        .state
        .apply_tx(&admit(&late, proof_between(&late, 12, 65)))
        .unwrap();
    assert!(fx.st().members.contains_key(&id(&late)));
}

#[test]
fn the_open_change_cap_counts_client_and_difficulty_changes_together() {
    let mut fx = Fx::new(4);
    for n in 0..MAX_OPEN_CHANGES - 1 {
        let client = id(&SigningKey::from_bytes(&[n as u8 + 1; 32]));
        fx.apply(
            0,
            TxBody::ClientChange {
                change: ClientChange::Revoke { client },
            },
        )
        .unwrap();
    }
    fx.apply(0, raise(10)).unwrap();
    assert_eq!(
        fx.apply(0, raise(11)),
        Err(LedgerError::TooManyChanges(fx.id(0)))
    );
    let client = id(&SigningKey::from_bytes(&[0xee; 32]));
    assert_eq!(
        fx.apply(
            0,
            TxBody::ClientChange {
                change: ClientChange::Revoke { client }
            }
        ),
        Err(LedgerError::TooManyChanges(fx.id(0)))
    );
    // Another validator's budget is its own.
    fx.apply(1, raise(11)).unwrap();
}

#[test]
fn the_state_hash_and_encoding_cover_the_difficulty_and_its_floor() {
    let fx = Fx::new(4);
    let base = fx.st().clone();
    let mut raised = base.clone();
    raised.pow_difficulty += 1;
    assert_ne!(raised.hash(), base.hash());
    let mut floor = base.clone();
    floor.min_pow_difficulty += 1;
    assert_ne!(floor.hash(), base.hash());
    let mut pending = base.clone();
    pending
        .changes
        .entry(Change::PowDifficulty(9))
        .or_default()
        .insert(fx.id(0));
    assert_ne!(pending.hash(), base.hash());
    for s in [base, raised, floor, pending] {
        let back: LedgerState = decode(&encode(&s)).unwrap();
        assert_eq!(back, s);
    }
}
