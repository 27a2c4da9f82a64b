//! Tests of the consensus wrapper: a single validator builds, persists and decides blocks in
//! order, and the wire decoder is total.

use proptest::prelude::*;

use super::*;
use crate::ledger::{
    decode, encode, EpochParams, Genesis, GenesisValidator, KeyParams, Ledger, Tx, TxBody,
};
use crate::member::MemberId;

fn solo() -> (Consensus, ed25519_dalek::SigningKey) {
    let sk = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let id = MemberId(sk.verifying_key().to_bytes());
    let g = Genesis {
        chain_id: "solo".into(),
        pow_difficulty: 0,
        validators: vec![GenesisValidator {
            id,
            stake: 10,
            x25519: x25519_dalek::X25519_BASEPOINT_BYTES,
        }],
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
    (c, sk)
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
