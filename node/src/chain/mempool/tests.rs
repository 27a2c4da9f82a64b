//! The mempool's rules, each against the behaviour before it had them (noted per test), and a
//! chain built with the ledger's own block builder showing that one bad author delays no
//! other author by more than one block.

use std::collections::BTreeMap;

use ed25519_dalek::{Signer, SigningKey};
use seedfed_protocol::admission::Proof;
use seedfed_protocol::agent::{Agent, Duty, Fault};
use seedfed_protocol::ledger::{
    vote_digest, CommitInfo, DkgSuite, Evidence, Genesis, Ledger, Signature64, Tx, VoteKind,
    VoteRecord, MAX_TXS_PER_BLOCK,
};

use super::*;

const CHAIN: &str = "mempool-test";

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn id(k: &SigningKey) -> MemberId {
    MemberId(k.verifying_key().to_bytes())
}

fn signed(k: &SigningKey, nonce: u64, body: TxBody) -> SignedTx {
    Tx {
        author: id(k),
        nonce,
        body,
    }
    .sign(CHAIN, k)
}

fn transfer(k: &SigningKey, nonce: u64, to: &SigningKey) -> SignedTx {
    signed(
        k,
        nonce,
        TxBody::Transfer {
            to: id(to),
            amount: 1,
        },
    )
}

/// A transaction of `bytes` encoded bytes or a little more that never applies (leaf 0 was
/// never allocated).
fn bulky(k: &SigningKey, nonce: u64, bytes: usize) -> SignedTx {
    signed(
        k,
        nonce,
        TxBody::SignaturePublish {
            leaf: 0,
            signature: vec![7; bytes.saturating_sub(120)],
        },
    )
}

fn admit(k: &SigningKey) -> SignedTx {
    let x = x25519_dalek::StaticSecret::from(k.to_bytes());
    let peer_id = ledger::peer_id_bytes(&id(k));
    let x25519_proof = seedfed_protocol::seal::prove_possession(
        &x,
        &seedfed_protocol::admission::possession_context(CHAIN, &peer_id),
        &mut rand_core::OsRng,
    )
    .unwrap();
    signed(
        k,
        0,
        TxBody::Admit {
            peer_id,
            x25519: x25519_dalek::PublicKey::from(&x).to_bytes(),
            pow: Proof { nonce: 0 },
            x25519_proof,
        },
    )
}

/// `n` keys sorted by member id (so tests can pick who comes first in key order).
fn keys(first_seed: u8, n: u8) -> Vec<SigningKey> {
    let mut ks: Vec<SigningKey> = (first_seed..first_seed + n).map(key).collect();
    ks.sort_by_key(id);
    ks
}

fn genesis(members: &[(&SigningKey, u64)]) -> Genesis {
    let members: Vec<(MemberId, u64)> = members.iter().map(|(k, s)| (id(k), *s)).collect();
    crate::chain::test_genesis::genesis(CHAIN, &members, 1000)
}

fn state(members: &[(&SigningKey, u64)]) -> LedgerState {
    LedgerState::from_genesis(&genesis(members)).unwrap()
}

fn limits() -> MempoolLimits {
    MempoolLimits::default()
}

#[test]
fn size_caps_refuse_oversized_transactions() {
    // Before: any validly signed transaction up to the gossip cap went in.
    let a = key(1);
    let st = state(&[(&a, 100)]);
    let mut pool = Mempool::new(limits());
    let e = pool
        .insert(bulky(&a, 0, PAYLOAD_TX_CAP + 100), &st)
        .unwrap_err();
    assert!(
        matches!(
            e,
            TxRejected::TooLarge {
                kind: "SignaturePublish",
                cap: PAYLOAD_TX_CAP,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("over the"), "{e}");
    assert!(pool.is_empty());
    // A small kind has a small cap.
    let padded = signed(
        &a,
        0,
        TxBody::CheckpointCommit {
            checkpoint: 0,
            attempt: 0,
            commitments: vec![0; SMALL_TX_CAP],
        },
    );
    assert!(matches!(
        pool.insert(padded, &st),
        Err(TxRejected::TooLarge { .. })
    ));
    // Within the cap it goes in.
    pool.insert(bulky(&a, 0, 4000), &st).unwrap();
    assert_eq!(pool.len(), 1);
}

/// The largest legitimate transaction of every kind is under its cap: integers at their widest
/// encodings, payloads at the ledger's own bound, lists at what a block can carry.
#[test]
fn caps_hold_the_largest_legitimate_transaction_of_every_kind() {
    let k = key(1);
    let m = id(&key(2));
    let vote = VoteRecord {
        height: u64::MAX,
        round: u32::MAX,
        kind: VoteKind::Precommit,
        value: Some([0xff; 32]),
        validator: m,
        signature: Signature64([0xff; 64]),
    };
    let partial: seedfed_protocol::tprf::Partial = ledger::decode(&[0u8; 128]).unwrap();
    // frost-ed25519 serialises SigningCommitments in 69 bytes and a SignatureShare in 37.
    let frost = vec![0xff; 128];
    let payload = vec![0xff; MAX_PAYLOAD_BYTES];
    // What a block can carry besides its header: about this many list entries.
    let list = vec![m; (BLOCK_TX_BYTES - 1024) / 32];
    let bodies = vec![
        TxBody::Admit {
            peer_id: ledger::peer_id_bytes(&m),
            x25519: [0xff; 32],
            pow: Proof { nonce: u64::MAX },
            x25519_proof: seedfed_protocol::seal::PossessionProof {
                challenge: [0xff; 32],
                response: [0xff; 32],
            },
        },
        TxBody::Transfer {
            to: m,
            amount: u64::MAX,
        },
        TxBody::Exit,
        TxBody::Evict {
            member: m,
            evidence: Evidence::Equivocation {
                a: Box::new(vote.clone()),
                b: Box::new(vote),
            },
        },
        TxBody::Evict {
            member: m,
            evidence: Evidence::Inactivity {
                missed_heights: u64::MAX,
            },
        },
        TxBody::DkgCommitment {
            epoch: u64::MAX,
            payload: payload.clone(),
        },
        TxBody::DkgComplaint {
            epoch: u64::MAX,
            accused: m,
            payload: payload.clone(),
        },
        TxBody::DkgAnswer {
            epoch: u64::MAX,
            suite: DkgSuite::Ed25519,
            envelope: payload.clone(),
        },
        TxBody::DkgFinalize { epoch: u64::MAX },
        TxBody::BeaconPartial {
            epoch: u64::MAX,
            partial,
        },
        TxBody::EpochStart {
            epoch: u64::MAX,
            beacon: [0xff; 32],
        },
        TxBody::CheckpointCommit {
            checkpoint: u64::MAX,
            attempt: u32::MAX,
            commitments: frost.clone(),
        },
        TxBody::CheckpointShare {
            checkpoint: u64::MAX,
            attempt: u32::MAX,
            share: frost,
        },
        TxBody::BranchAssignment {
            epoch: u64::MAX,
            owners: list.clone(),
        },
        TxBody::SectorRoot {
            sector: u32::MAX,
            root: [0xff; 32],
            commitments_root: [0xff; 32],
            // One acknowledgement (holder, two roots, signature: 161 encoded bytes) per
            // validator, as many as a block can carry.
            acks: vec![
                seedfed_protocol::dealing::DealAck {
                    holder: m,
                    commitments_root: [0xff; 32],
                    root: [0xff; 32],
                    signature: vec![0xff; 64],
                };
                (BLOCK_TX_BYTES - 1024) / 162
            ],
        },
        TxBody::DealComplaint {
            sector: u32::MAX,
            complaint: payload.clone(),
        },
        TxBody::MasterRoot { root: [0xff; 32] },
        TxBody::SignRequest {
            request: ledger::SignedRequest {
                request: ledger::ClientRequest {
                    client: m,
                    digest: [0xff; 32],
                    epoch: u64::MAX,
                    nonce: u64::MAX,
                    issue_to: Some([0xff; 32]),
                },
                signature: ledger::Signature64([0xff; 64]),
            },
        },
        TxBody::ClientChange {
            change: ledger::ClientChange::Authorize {
                client: m,
                quota: u32::MAX,
            },
        },
        TxBody::SignaturePublish {
            leaf: u64::MAX,
            signature: payload,
        },
        TxBody::Repair {
            sector: u32::MAX,
            lost: m,
            replacement: m,
        },
        TxBody::PowDifficulty {
            difficulty: u8::MAX,
        },
    ];
    for body in bodies {
        let tx = signed(&k, u64::MAX, body);
        let size = ledger::encode(&tx).len();
        assert!(
            check_size(&tx.tx.body, size).is_ok(),
            "{} of {size} bytes is over its cap {}",
            kind(&tx.tx.body),
            size_cap(&tx.tx.body)
        );
    }
    // No cap is below what a block can carry for list kinds, and none above it.
    assert_eq!(LIST_TX_CAP, BLOCK_TX_BYTES);
}

/// Real DKG round-1 packages (both suites, from the epoch agent) of a federation of 1500
/// validators, near the most whose packages the ledger takes (it bounds payloads by
/// `MAX_PAYLOAD_BYTES`, which 1600 validators' packages exceed), fit the `DkgCommitment` cap.
#[test]
fn dkg_round1_packages_of_the_largest_federation_fit_their_cap() {
    let payload_at = |n: u16| -> Vec<u8> {
        let me = key(1);
        let mut members: Vec<(SigningKey, u64)> = vec![(me.clone(), 1)];
        for i in 1..n {
            let mut seed = [0u8; 32];
            seed[..2].copy_from_slice(&i.to_le_bytes());
            seed[31] = 0xaa;
            members.push((SigningKey::from_bytes(&seed), 1));
        }
        let refs: Vec<(&SigningKey, u64)> = members.iter().map(|(k, s)| (k, *s)).collect();
        let ledger = Ledger::from_genesis(&genesis(&refs)).unwrap();
        let mut agent = Agent::new([1; 32], [1; 32], Fault::None);
        let duties = agent.on_block(&ledger, &mut rand_core::OsRng);
        duties
            .into_iter()
            .find_map(|d| match d {
                Duty::Submit(TxBody::DkgCommitment { payload, .. }) => Some(payload),
                _ => None,
            })
            .expect("a round-1 commitment duty")
    };
    let payload = payload_at(1500);
    assert!(payload.len() <= MAX_PAYLOAD_BYTES, "{}", payload.len());
    let tx = signed(
        &key(1),
        u64::MAX,
        TxBody::DkgCommitment {
            epoch: u64::MAX,
            payload,
        },
    );
    let size = ledger::encode(&tx).len();
    assert!(size <= size_cap(&tx.tx.body), "{size}");
    assert!(payload_at(1600).len() > MAX_PAYLOAD_BYTES);
}

#[test]
fn non_members_may_only_send_their_admission_within_a_quota() {
    // Before: the pool took validly signed transactions from any key.
    let v = key(1);
    let st = state(&[(&v, 100)]);
    let mut pool = Mempool::new(MempoolLimits {
        max_newcomer_txs: 2,
        ..limits()
    });
    let stranger = key(50);
    let e = pool.insert(transfer(&stranger, 0, &v), &st).unwrap_err();
    assert_eq!(e, TxRejected::NotMember(id(&stranger)));
    assert!(e.to_string().contains("not an active ledger member"), "{e}");
    // Its own admission is fine, once.
    pool.insert(admit(&stranger), &st).unwrap();
    // An admission in someone else's name, or at another nonce, is not.
    let mut forged = admit(&key(51));
    if let TxBody::Admit { peer_id, .. } = &mut forged.tx.body {
        *peer_id = ledger::peer_id_bytes(&id(&v));
    }
    assert!(matches!(
        pool.insert(forged, &st),
        Err(TxRejected::Invalid(_))
    ));
    // Newcomers share a small quota.
    pool.insert(admit(&key(52)), &st).unwrap();
    let e = pool.insert(admit(&key(53)), &st).unwrap_err();
    assert!(
        matches!(e, TxRejected::Full(Full::Newcomers { txs: 2, .. })),
        "{e}"
    );
    assert_eq!(e.label(), "newcomer_quota");
    // Members are not held by the newcomers' quota.
    pool.insert(transfer(&v, 0, &stranger), &st).unwrap();
    assert_eq!(pool.len(), 3);
}

#[test]
fn the_pool_is_bounded_in_bytes_and_per_author() {
    // Before: 20,000 transactions of any size, any number from one author.
    let v = key(1);
    let ks = keys(10, 4);
    let (a, b, c, d) = (&ks[0], &ks[1], &ks[2], &ks[3]);
    let st = state(&[(&v, 100), (a, 0), (b, 0), (c, 0), (d, 0)]);
    let mut pool = Mempool::new(MempoolLimits {
        max_author_txs: 3,
        max_author_bytes: 10_000,
        max_bytes: 20_000,
        ..limits()
    });
    for n in 0..3 {
        pool.insert(transfer(a, n, &v), &st).unwrap();
    }
    let e = pool.insert(transfer(a, 3, &v), &st).unwrap_err();
    assert_eq!(e, TxRejected::Full(Full::AuthorTxs(3)));
    assert_eq!(e.label(), "author_txs");
    let e = pool.insert(bulky(b, 0, 12_000), &st).unwrap_err();
    assert_eq!(e, TxRejected::Full(Full::AuthorBytes(10_000)));
    pool.insert(bulky(b, 0, 9_000), &st).unwrap();
    pool.insert(bulky(c, 0, 9_000), &st).unwrap();
    let before = pool.bytes();
    assert!(before > 18_000 && before <= 20_000, "{before}");
    // A non-validator finds the pool full ...
    let e = pool.insert(bulky(d, 0, 2_000), &st).unwrap_err();
    assert_eq!(e, TxRejected::Full(Full::Bytes(20_000)));
    assert_eq!(e.label(), "pool_bytes");
    assert!(e.to_string().starts_with("mempool full"), "{e}");
    assert_eq!(pool.bytes(), before);
    // ... a validator pushes out the heaviest non-validator's last transaction.
    let r = pool.insert(bulky(&v, 0, 2_000), &st).unwrap();
    assert_eq!(r.evicted, 1);
    assert!(pool.contains(&id(&v), 0));
    assert!(pool.contains(&id(b), 0) != pool.contains(&id(c), 0));
    assert!(pool.bytes() <= 20_000);
    assert_eq!(pool.len(), 5);
    // The count bound works the same way.
    let mut small = Mempool::new(MempoolLimits {
        max_txs: 2,
        ..limits()
    });
    small.insert(transfer(a, 0, &v), &st).unwrap();
    small.insert(transfer(b, 0, &v), &st).unwrap();
    let e = small.insert(transfer(c, 0, &v), &st).unwrap_err();
    assert_eq!(e, TxRejected::Full(Full::Txs(2)));
    // Removing gives the room back.
    assert!(small.remove(&id(b), 0).is_some());
    small.insert(transfer(c, 0, &v), &st).unwrap();
    assert_eq!(small.next_nonce(&id(c)), Some(1));
    assert_eq!(small.next_nonce(&id(d)), None);
}

#[test]
fn nonces_must_be_current_and_near() {
    let v = key(1);
    let st = state(&[(&v, 100)]);
    let mut pool = Mempool::new(limits());
    let e = pool
        .insert(transfer(&v, MAX_NONCE_AHEAD, &key(2)), &st)
        .unwrap_err();
    assert!(matches!(e, TxRejected::NonceTooFarAhead { .. }), "{e}");
    pool.insert(transfer(&v, MAX_NONCE_AHEAD - 1, &key(2)), &st)
        .unwrap();
    // The same transaction again is a no-op; another with the same nonce replaces it.
    pool.insert(transfer(&v, MAX_NONCE_AHEAD - 1, &key(2)), &st)
        .unwrap();
    pool.insert(transfer(&v, MAX_NONCE_AHEAD - 1, &key(3)), &st)
        .unwrap();
    assert_eq!(pool.len(), 1);
}

#[test]
fn candidates_skip_what_does_not_fit_and_take_authors_in_turn() {
    let ks = keys(10, 2);
    let (a, b) = (&ks[0], &ks[1]); // a comes first in key order
    let st = state(&[(a, 100), (b, 100)]);
    let mut pool = Mempool::new(limits());
    pool.insert(bulky(a, 0, 2_000), &st).unwrap();
    pool.insert(transfer(a, 1, b), &st).unwrap();
    for n in 0..3 {
        pool.insert(transfer(b, n, a), &st).unwrap();
    }
    // Before: the loop stopped at a's 2,000-byte transaction and offered nothing.
    let c = pool.candidates(&st, MAX_TXS_PER_BLOCK, 1_500);
    assert_eq!(c.len(), 3, "{c:?}");
    assert!(c.iter().all(|t| t.tx.author == id(b)));
    // a's later transaction is not offered without the one before it.
    assert!(!c.iter().any(|t| t.tx.author == id(a)));
    // Authors in turn: with room for 4, two each (before: a's run first).
    for n in 2..5 {
        pool.insert(transfer(a, n, b), &st).unwrap();
    }
    let c = pool.candidates(&st, 4, BLOCK_TX_BYTES);
    let from = |k: &SigningKey| c.iter().filter(|t| t.tx.author == id(k)).count();
    assert_eq!((from(a), from(b)), (2, 2));
    // Each author's in nonce order; a nonce gap ends a run.
    let mut gapped = Mempool::new(limits());
    gapped.insert(transfer(a, 0, b), &st).unwrap();
    gapped.insert(transfer(a, 2, b), &st).unwrap();
    let c = gapped.candidates(&st, 10, BLOCK_TX_BYTES);
    assert_eq!(c.iter().map(|t| t.tx.nonce).collect::<Vec<_>>(), vec![0]);
}

#[test]
fn a_transaction_that_fails_is_dropped_with_the_ones_behind_it() {
    // Before: it stayed (and kept its author's later transactions) until its nonce passed,
    // which for a transaction that never applies is never.
    let ks = keys(10, 3);
    let (a, b, c) = (&ks[0], &ks[1], &ks[2]);
    let st = state(&[(a, 100), (b, 100), (c, 0)]);
    let mut pool = Mempool::new(limits());
    let stranger = key(99);
    pool.insert(transfer(a, 0, &stranger), &st).unwrap(); // unknown recipient
    pool.insert(transfer(a, 1, b), &st).unwrap();
    pool.insert(transfer(a, 2, b), &st).unwrap();
    pool.insert(transfer(b, 0, a), &st).unwrap();
    pool.insert(transfer(c, 1, a), &st).unwrap(); // waits for c's nonce 0
    let pruned = pool.prune(&st, &mut SigCache::default());
    assert_eq!(pruned.failed.len(), 1, "{pruned:?}");
    assert_eq!((pruned.failed[0].0, pruned.failed[0].1), (id(a), 0));
    assert!(pruned.failed[0].2.contains("is not a member"), "{pruned:?}");
    assert_eq!(pruned.behind, 2);
    assert!(!pool.contains(&id(a), 1) && !pool.contains(&id(a), 2));
    assert!(pool.contains(&id(b), 0));
    // A transaction waiting for its predecessor is not judged.
    assert!(pool.contains(&id(c), 1));
    assert_eq!(pool.len(), 2);
    // Applied transactions leave with the ledger nonce.
    let mut after = st.clone();
    after.apply_tx(&transfer(b, 0, a)).unwrap();
    let pruned = pool.prune(&after, &mut SigCache::default());
    assert_eq!(pruned.done, 1);
    assert_eq!(pool.len(), 1);
}

/// A chain of blocks built by the ledger's block builder from the pool's candidates.
struct Chain {
    ledger: Ledger,
    signers: Vec<SigningKey>,
    commit: CommitInfo,
}

impl Chain {
    fn new(members: &[(&SigningKey, u64)]) -> Self {
        Chain {
            ledger: Ledger::from_genesis(&genesis(members)).unwrap(),
            signers: members
                .iter()
                .filter(|(_, s)| *s > 0)
                .map(|(k, _)| (*k).clone())
                .collect(),
            commit: CommitInfo::default(),
        }
    }

    /// Proposes, applies and commits the next block; prunes the pool as the driver does.
    fn step(&mut self, pool: &mut Mempool) -> Vec<SignedTx> {
        let txs = pool.candidates(&self.ledger.state, MAX_TXS_PER_BLOCK, BLOCK_TX_BYTES);
        let proposer = id(&self.signers[0]);
        let (block, _) = self
            .ledger
            .build_block(proposer, self.commit.clone(), txs)
            .unwrap();
        self.ledger.apply_block(&block).unwrap();
        let hash = block.hash();
        let mut signatures: Vec<(MemberId, Signature64)> = self
            .signers
            .iter()
            .map(|k| {
                let d = vote_digest(
                    CHAIN,
                    block.height,
                    0,
                    VoteKind::Precommit,
                    Some(&hash),
                    &id(k),
                );
                (id(k), Signature64(k.sign(&d).to_bytes()))
            })
            .collect();
        signatures.sort_by_key(|(m, _)| *m);
        self.commit = CommitInfo {
            round: 0,
            signatures,
        };
        pool.prune(&self.ledger.state, &mut SigCache::default());
        block.txs
    }
}

/// Runs blocks until the pool is empty (at most `max_blocks`); returns, per author, the
/// height of the block that took its last transaction.
fn landing(
    members: &[(&SigningKey, u64)],
    txs: &[SignedTx],
    max_blocks: u64,
) -> BTreeMap<MemberId, u64> {
    let mut chain = Chain::new(members);
    let mut pool = Mempool::new(limits());
    for tx in txs {
        pool.insert(tx.clone(), &chain.ledger.state).unwrap();
    }
    let mut last = BTreeMap::new();
    for _ in 0..max_blocks {
        if pool.is_empty() {
            break;
        }
        let height = chain.ledger.height() + 1;
        for tx in chain.step(&mut pool) {
            last.insert(tx.tx.author, height);
        }
    }
    last
}

/// One oversized transaction, or one author's run of failing transactions, delays the others
/// by at most one block. Before: the candidate loop stopped at the first transaction that did
/// not fit and failing transactions never left, so the same bad transactions headed every
/// block and the other authors waited forever.
#[test]
fn one_bad_transaction_delays_no_other_author_by_more_than_one_block() {
    // bad1 and bad2 come first in key order (the order the old loop took).
    let ks = keys(20, 4);
    let (bad1, bad2, b, c) = (&ks[0], &ks[1], &ks[2], &ks[3]);
    let members = [(bad1, 0), (bad2, 0), (b, 1_000_000), (c, 1_000_000)];
    let honest: Vec<SignedTx> = (0..200)
        .flat_map(|n| [transfer(b, n, c), transfer(c, n, b)])
        .collect();
    let baseline = landing(&members, &honest, 10);
    assert_eq!(baseline.get(&id(b)), Some(&1));
    assert_eq!(baseline.get(&id(c)), Some(&1));

    // An oversized transaction that never applies, big enough to crowd the block.
    let mut with_big = vec![signed(
        bad1,
        0,
        TxBody::BranchAssignment {
            epoch: 7,
            owners: vec![id(b); (BLOCK_TX_BYTES - 8_000) / 32],
        },
    )];
    assert!(ledger::encode(&with_big[0]).len() <= LIST_TX_CAP);
    with_big.extend(honest.iter().cloned());
    let got = landing(&members, &with_big, 10);
    for k in [b, c] {
        assert!(
            got[&id(k)] <= baseline[&id(k)] + 1,
            "{got:?} vs {baseline:?}"
        );
    }

    // Two authors (without stake) with a full run each of transfers that cannot apply: as
    // many as a block holds.
    let mut with_failing: Vec<SignedTx> = (0..(MAX_TXS_PER_BLOCK / 2) as u64)
        .flat_map(|n| [transfer(bad1, n, b), transfer(bad2, n, b)])
        .collect();
    with_failing.extend(honest.iter().cloned());
    let got = landing(&members, &with_failing, 10);
    for k in [b, c] {
        assert!(
            got[&id(k)] <= baseline[&id(k)] + 1,
            "{got:?} vs {baseline:?}"
        );
    }
    assert!(!got.contains_key(&id(bad1)) && !got.contains_key(&id(bad2)));
}
