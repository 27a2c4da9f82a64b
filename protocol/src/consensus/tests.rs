//! Tests of the consensus wrapper: a single validator builds, persists and decides blocks in
//! order, and the wire decoder is total.

use proptest::prelude::*;

use super::*;
use crate::ledger::{
    decode, encode, EpochParams, Genesis, GenesisValidator, KeyParams, Ledger, Tx, TxBody,
};
use crate::member::MemberId;

/// Node 0 of a chain whose genesis validators are the keys seeded `3, 4, ...` (`n` of them,
/// stake 10 each), with those keys.
fn node0_of(n: u8) -> (Consensus, Vec<ed25519_dalek::SigningKey>) {
    let sks: Vec<_> = (0..n)
        .map(|i| ed25519_dalek::SigningKey::from_bytes(&[3 + i; 32]))
        .collect();
    let g = Genesis {
        chain_id: "solo".into(),
        pow_difficulty: 0,
        validators: sks
            .iter()
            .map(|sk| GenesisValidator {
                id: MemberId(sk.verifying_key().to_bytes()),
                stake: 10,
                x25519: x25519_dalek::X25519_BASEPOINT_BYTES,
            })
            .collect(),
        key: KeyParams {
            tree_height: 5,
            sector_bits: 0,
            leaf_threshold: 1,
            leaf_holders: 1,
            ack_threshold: 1,
            audit_leaves: 0,
            sector_window: crate::ledger::DEFAULT_SECTOR_WINDOW,
            rotate_percent: 0,
        },
        eviction_missed_heights: 10,
        epochs: EpochParams::default(),
        clients: Vec::new(),
    };
    let ledger = Ledger::from_genesis(&g).unwrap();
    let c = Consensus::new(
        ledger,
        None,
        ConsensusKey::from_seed([3; 32]),
        ConsensusParams::default(),
    )
    .unwrap();
    (c, sks)
}

fn solo() -> (Consensus, ed25519_dalek::SigningKey) {
    let (c, mut sks) = node0_of(1);
    (c, sks.remove(0))
}

/// What `/status` shows of a round: the step, and the voting power heard out of the total,
/// as votes arrive.
#[test]
fn round_view_follows_the_step_and_the_votes_heard() {
    use crate::ledger::{vote_digest, Signature64, VoteKind, VoteRecord};
    use ed25519_dalek::Signer;
    let (mut c, sks) = node0_of(2);
    let me = c.id();
    let other = MemberId(sks[1].verifying_key().to_bytes());
    let out = c.start();
    let view = c.round_view();
    assert_eq!((view.height, view.core_height, view.round), (1, 1, 0));
    assert_eq!(view.step, "propose");
    assert_eq!((view.prevote_power, view.total_power), (0, 20));
    assert!(view.voters.is_empty());
    // Our prevote: for our own block if we propose, else nil once the propose timeout fires.
    let proposer = out.iter().find_map(|o| match o {
        Output::BuildBlock { height, round } => Some((*height, *round)),
        _ => None,
    });
    let input = match proposer {
        Some((height, round)) => Input::ProposeTxs {
            height,
            round,
            txs: Vec::new(),
        },
        None => Input::TimerFired(TimerId {
            height: 1,
            round: 0,
            kind: TimerKind::Propose,
        }),
    };
    c.handle(input);
    let view = c.round_view();
    assert_eq!(view.step, "prevote");
    assert_eq!((view.prevote_power, view.precommit_power), (10, 0));
    assert_eq!(view.voters, vec![me]);
    // The other validator's nil prevote: 20 of 20 prevoted, so we precommit.
    let signature = Signature64(
        sks[1]
            .sign(&vote_digest("solo", 1, 0, VoteKind::Prevote, None, &other))
            .to_bytes(),
    );
    c.handle(Input::Message(ConsensusMessage::Vote(VoteRecord {
        height: 1,
        round: 0,
        kind: VoteKind::Prevote,
        value: None,
        validator: other,
        signature,
    })));
    assert_eq!(c.round_view().prevote_power, 20);
    // Both nil: a quorum for nil, we precommit nil at once; our block and nil: a quorum for
    // nothing, we precommit nil when the prevote timeout fires.
    if c.round_view().step == "prevote" {
        c.handle(Input::TimerFired(TimerId {
            height: 1,
            round: 0,
            kind: TimerKind::Prevote,
        }));
    }
    let view = c.round_view();
    assert_eq!(view.step, "precommit");
    assert_eq!((view.prevote_power, view.precommit_power), (20, 10));
    assert_eq!(view.voters.len(), 2);
}

/// The node's loop in miniature: a single validator builds, signs, persists and decides.
#[test]
fn single_validator_decides_with_wal_before_broadcast() {
    let (mut c, sk) = solo();
    assert_eq!(format!("{:?}", c.key), "[redacted]");
    let mut out = c.start();
    let mut decided = Vec::new();
    for _ in 0..3 {
        let (height, round) = out
            .iter()
            .find_map(|o| match o {
                Output::BuildBlock { height, round } => Some((*height, *round)),
                _ => None,
            })
            .expect("asked to build a block");
        let nonce = c.ledger().state.members[&c.id()].nonce;
        let tx = Tx {
            author: c.id(),
            nonce,
            body: TxBody::Exit, // rejected (last validator): dropped from the block
        }
        .sign("solo", &sk);
        out = c.handle(Input::ProposeTxs {
            height,
            round,
            txs: vec![tx],
        });
        let first_wal = out.iter().position(|o| matches!(o, Output::PersistWal(_)));
        let first_vote = out
            .iter()
            .position(|o| matches!(o, Output::Broadcast(ConsensusMessage::Vote(_))));
        assert!(first_wal.unwrap() < first_vote.unwrap());
        for o in &out {
            if let Output::Decided { block, certificate } = o {
                assert!(block.txs.is_empty());
                certificate
                    .verify("solo", &[(c.id(), 10)].into_iter().collect())
                    .unwrap();
                decided.push(block.height);
            }
        }
    }
    assert_eq!(decided, vec![1, 2, 3]);
    assert_eq!(c.height(), 4);
    assert_eq!(c.ledger().height(), 3);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Decoding arbitrary bytes as a wire message never panics, and whatever decodes
    /// re-encodes to a value that decodes to itself.
    #[test]
    fn wire_decoder_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(m) = decode::<ConsensusMessage>(&bytes) {
            let again: ConsensusMessage = decode(&encode(&m)).unwrap();
            prop_assert_eq!(again, m);
        }
    }
}
