//! The whole epoch cycle in memory: validators with a real `Ledger` and an `epoch::Agent` each,
//! a trivial "consensus" that puts every submitted transaction into the next block (built with
//! `Ledger::build_block`, last commit signed by the validators), and point-to-point messages
//! delivered one step later. Every loop is bounded.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::{Signer, SigningKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use x25519_dalek::{PublicKey, StaticSecret};

use seedfed_protocol::epoch::{Agent, Duty, EpochError, Fault};
use seedfed_protocol::ledger::tx::vote_digest;
use seedfed_protocol::ledger::{
    beacon_input, chain_digest, validator_set_hash, CommitInfo, DkgExclusion, EpochParams, Genesis,
    GenesisValidator, KeyParams, Ledger, LedgerState, Signature64, SignedTx, Tx, TxBody, VoteKind,
};
use seedfed_protocol::light_client;
use seedfed_protocol::member::MemberId;
use seedfed_protocol::tprf;

const CHAIN: &str = "epoch-cycle-test";

struct Node {
    key: SigningKey,
    ledger: Ledger,
    agent: Option<Agent>,
}

struct Net {
    nodes: Vec<Node>,
    rng: ChaCha20Rng,
    /// (to, from, payload) delivered next step.
    inbox: Vec<(usize, MemberId, Vec<u8>)>,
    /// Node whose agent is rebuilt from its snapshot every step (persistence check).
    restore_each_step: Option<usize>,
    faults: BTreeMap<usize, Fault>,
}

fn seed(i: usize) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&(i as u64 + 11).to_le_bytes());
    s[31] = 0xe9;
    s
}

fn xseed(i: usize) -> [u8; 32] {
    let mut s = seed(i);
    s[30] = 0x55;
    s
}

fn id(k: &SigningKey) -> MemberId {
    MemberId(k.verifying_key().to_bytes())
}

impl Net {
    /// `n` genesis validators; those in `absent` run no agent and sign no commits.
    fn new(n: usize, absent: &[usize], faults: &[(usize, Fault)], seed_rng: u64) -> Self {
        let keys: Vec<SigningKey> = (0..n).map(|i| SigningKey::from_bytes(&seed(i))).collect();
        let genesis = Genesis {
            chain_id: CHAIN.into(),
            pow_difficulty: 0,
            validators: (0..n)
                .map(|i| GenesisValidator {
                    id: id(&keys[i]),
                    stake: 100,
                    x25519: PublicKey::from(&StaticSecret::from(xseed(i))).to_bytes(),
                })
                .collect(),
            key: KeyParams {
                tree_height: 5,
                sector_bits: 1,
                leaf_threshold: 2,
                leaf_holders: 3,
            },
            eviction_missed_heights: 1_000_000,
            epochs: EpochParams::default(),
        };
        let faults: BTreeMap<usize, Fault> = faults.iter().copied().collect();
        let nodes = keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| Node {
                key,
                ledger: Ledger::from_genesis(&genesis).unwrap(),
                agent: (!absent.contains(&i)).then(|| {
                    Agent::new(
                        seed(i),
                        xseed(i),
                        faults.get(&i).copied().unwrap_or_default(),
                    )
                }),
            })
            .collect();
        Net {
            nodes,
            rng: ChaCha20Rng::seed_from_u64(seed_rng),
            inbox: Vec::new(),
            restore_each_step: None,
            faults,
        }
    }

    fn st(&self) -> &LedgerState {
        &self.nodes[0].ledger.state
    }

    fn index_of(&self, m: &MemberId) -> usize {
        self.nodes.iter().position(|n| id(&n.key) == *m).unwrap()
    }

    /// One step: deliver last step's messages, collect duties, build and apply one block.
    fn step(&mut self) {
        let mut submits: Vec<(usize, TxBody)> = Vec::new();
        for (to, from, payload) in std::mem::take(&mut self.inbox) {
            let node = &mut self.nodes[to];
            if let Some(agent) = node.agent.as_mut() {
                if let Ok(duties) = agent.on_direct(&node.ledger, from, &payload, &mut self.rng) {
                    for d in duties {
                        if let Duty::Submit(b) = d {
                            submits.push((to, b));
                        }
                    }
                }
            }
        }
        for i in 0..self.nodes.len() {
            if self.restore_each_step == Some(i) {
                if let Some(a) = self.nodes[i].agent.take() {
                    let snap = a.snapshot();
                    let fault = self.faults.get(&i).copied().unwrap_or_default();
                    self.nodes[i].agent =
                        Some(Agent::restore(&snap, seed(i), xseed(i), fault).unwrap());
                }
            }
            let node = &mut self.nodes[i];
            let Some(agent) = node.agent.as_mut() else {
                continue;
            };
            let duties = agent.on_block(&node.ledger, &mut self.rng);
            // Idempotent for the same ledger: a second call gives the same duties.
            assert_eq!(agent.on_block(&node.ledger, &mut self.rng), duties);
            let me = id(&node.key);
            for d in duties {
                match d {
                    Duty::Submit(b) => submits.push((i, b)),
                    Duty::Send { to, payload } => {
                        let j = self.index_of(&to);
                        self.inbox.push((j, me, payload));
                    }
                }
            }
        }
        // The mempool: de-duplicate per author, sign with consecutive nonces, keep what applies.
        let mut shadow = self.nodes[0].ledger.state.clone();
        shadow.height += 1;
        let mut seen = BTreeSet::new();
        let mut txs: Vec<SignedTx> = Vec::new();
        for (i, body) in submits {
            let author = id(&self.nodes[i].key);
            if !seen.insert((author, format!("{body:?}"))) {
                continue;
            }
            let nonce = shadow.members.get(&author).map_or(0, |m| m.nonce);
            let tx = Tx {
                author,
                nonce,
                body,
            }
            .sign(CHAIN, &self.nodes[i].key);
            if shadow.apply_tx(&tx).is_ok() {
                txs.push(tx);
            }
        }
        let commit = self.commit();
        let proposer = id(&self.nodes[self.first_present()].key);
        let (block, rejected) = self.nodes[0]
            .ledger
            .build_block(proposer, commit, txs)
            .unwrap();
        assert!(rejected.is_empty(), "{rejected:?}");
        for node in &mut self.nodes {
            node.ledger.apply_block(&block).unwrap();
        }
    }

    fn first_present(&self) -> usize {
        self.nodes.iter().position(|n| n.agent.is_some()).unwrap()
    }

    fn commit(&self) -> CommitInfo {
        let st = self.st();
        if st.height == 0 {
            return CommitInfo::default();
        }
        let mut signatures: Vec<(MemberId, Signature64)> = self
            .nodes
            .iter()
            .filter(|n| n.agent.is_some() && st.last_validators.contains_key(&id(&n.key)))
            .map(|n| {
                let d = vote_digest(
                    CHAIN,
                    st.height,
                    0,
                    VoteKind::Precommit,
                    Some(&self.nodes[0].ledger.tip),
                    &id(&n.key),
                );
                (id(&n.key), Signature64(n.key.sign(&d).to_bytes()))
            })
            .collect();
        signatures.sort_by_key(|a| a.0);
        CommitInfo {
            round: 0,
            signatures,
        }
    }

    /// Steps until `done` holds, at most `max` steps.
    fn run_until(&mut self, max: usize, mut done: impl FnMut(&Net) -> bool) {
        for _ in 0..max {
            if done(self) {
                return;
            }
            self.step();
        }
        assert!(
            done(self),
            "not reached within {max} steps at height {}",
            self.st().height
        );
    }
}

/// Checks everything the cycle must deliver for an `n`-validator net with `bad` excluded.
/// A validator expected to be excluded, and the check of its reason.
type Expected = (usize, fn(&DkgExclusion) -> bool);

fn full_cycle(mut net: Net, expect_excluded: &[Expected]) {
    let n = net.nodes.len();
    net.run_until(200, |net| net.st().dkg_results.contains_key(&0));
    let result0 = net.st().dkg_results[&0].clone();
    for node in &net.nodes {
        assert_eq!(node.ledger.state.dkg_results[&0], result0);
    }
    assert_eq!(
        result0.qualified.len() + expect_excluded.len(),
        n,
        "{:?}",
        result0.excluded
    );
    for (i, pred) in expect_excluded {
        let m = id(&net.nodes[*i].key);
        let why = result0.excluded.get(&m).expect("excluded");
        assert!(pred(why), "{why:?}");
        assert!(!result0.qualified.contains(&m));
    }
    // Both group keys equal across the qualified nodes and the ledger.
    net.step();
    for node in &net.nodes {
        let m = id(&node.key);
        let Some(agent) = node.agent.as_ref() else {
            continue;
        };
        if !result0.qualified.contains(&m) {
            assert!(agent.root_key(0).is_none());
            continue;
        }
        let rk = agent.root_key(0).expect("root key");
        assert_eq!(
            rk.verifying_key().serialize().unwrap(),
            result0.ristretto255_group_key.to_vec()
        );
        let ck = agent.checkpoint_key(0).expect("checkpoint key");
        assert_eq!(
            ck.verifying_key().serialize().unwrap(),
            result0.ed25519_group_key.to_vec()
        );
    }
    let genesis_group_key = result0.ed25519_group_key;

    // Epoch 1 with the beacon; any t key holders give the same PRF value.
    net.run_until(200, |net| net.st().epoch == 1);
    let beacon = net.st().beacon;
    let input = beacon_input(&chain_digest(CHAIN), 1);
    let public = result0.ristretto255().unwrap();
    let mut partials: Vec<tprf::Partial> = net
        .nodes
        .iter()
        .filter_map(|node| {
            let kp = node.agent.as_ref()?.root_key(0)?;
            tprf::partial(
                &kp,
                &id(&node.key),
                &input,
                &mut ChaCha20Rng::seed_from_u64(9),
            )
            .ok()
        })
        .collect();
    partials.reverse();
    assert_eq!(tprf::combine(&public, &input, &partials).unwrap(), beacon);

    // Branch assignment and the first checkpoint, signed by the genesis group key.
    net.run_until(50, |net| {
        net.st().assignment_epoch == Some(1) && !net.st().checkpoints.is_empty()
    });
    assert_eq!(
        net.st().branch_owners.len(),
        net.st().key.sectors() as usize
    );
    let first = net.st().checkpoints[0].clone();
    assert_eq!(first.key_epoch, 0);
    assert_eq!(first.body.epoch, 1);
    let cp = light_client::verify_checkpoint(
        &genesis_group_key,
        &chain_digest(CHAIN),
        &first.body.checkpoint().to_bytes(),
        &first.signature.0,
    )
    .unwrap();
    assert_eq!(cp.master_root, [0; 32]);
    // Tampering is rejected.
    let mut forged = first.body.checkpoint();
    forged.height += 1;
    assert!(light_client::verify_checkpoint(
        &genesis_group_key,
        &chain_digest(CHAIN),
        &forged.to_bytes(),
        &first.signature.0
    )
    .is_err());

    // Epoch 1's DKG, the rotation checkpoint (signed by key 0, vouching for key 1), epoch 2.
    net.run_until(300, |net| net.st().epoch == 2);
    let st = net.st();
    let rotation = st
        .checkpoints
        .iter()
        .find(|c| c.key_epoch == 0 && c.seq > first.seq)
        .expect("rotation checkpoint");
    light_client::verify_checkpoint(
        &genesis_group_key,
        &chain_digest(CHAIN),
        &rotation.body.checkpoint().to_bytes(),
        &rotation.signature.0,
    )
    .unwrap();
    let result1 = st.dkg_results[&1].clone();
    let validators = st
        .epoch_validators
        .iter()
        .map(|(m, s)| (*m, (*s, st.members[m].x25519)))
        .collect();
    assert_eq!(
        rotation.body.validator_set_hash,
        validator_set_hash(
            &validators,
            &result1.ed25519_group_key,
            &result1.ristretto255_group_key
        )
    );
    assert_ne!(result1.ed25519_group_key, genesis_group_key);
    assert_eq!(st.checkpoint_key, Some(1));
    // The epoch-2 checkpoint is signed with key 1.
    net.run_until(50, |net| {
        net.st()
            .checkpoints
            .iter()
            .any(|c| c.body.epoch == 2 && c.key_epoch == 1)
    });
    let c2 = net
        .st()
        .checkpoints
        .iter()
        .find(|c| c.body.epoch == 2)
        .unwrap()
        .clone();
    light_client::verify_checkpoint(
        &result1.ed25519_group_key,
        &chain_digest(CHAIN),
        &c2.body.checkpoint().to_bytes(),
        &c2.signature.0,
    )
    .unwrap();
    assert!(net.st().checkpoint_faults.is_empty());
}

#[test]
fn four_validators_run_the_whole_cycle() {
    let mut net = Net::new(4, &[], &[], 1);
    net.restore_each_step = Some(1);
    full_cycle(net, &[]);
}

#[test]
fn seven_validators_run_the_whole_cycle() {
    full_cycle(Net::new(7, &[], &[], 2), &[]);
}

#[test]
fn absent_validator_is_excluded_and_the_rest_complete() {
    full_cycle(
        Net::new(4, &[3], &[], 3),
        &[(3, |e| matches!(e, DkgExclusion::Absent))],
    );
}

#[test]
fn bad_dealer_is_excluded_with_evidence() {
    let net = Net::new(4, &[], &[(2, Fault::BadRound2Shares)], 4);
    let bad = id(&net.nodes[2].key);
    let mut net = net;
    net.run_until(200, |net| net.st().dkg_results.contains_key(&0));
    // The convicting complaints are on the ledger (the evidence).
    let complaints: Vec<_> = net
        .st()
        .dkg
        .complaints
        .keys()
        .filter(|k| k.accused == bad && !k.missing)
        .collect();
    assert!(!complaints.is_empty());
    let why = net.st().dkg_results[&0].excluded[&bad];
    assert!(
        matches!(why, DkgExclusion::BadShare { complainer, .. } if complainer != bad),
        "{why:?}"
    );
    assert_eq!(net.st().dkg_results[&0].qualified.len(), 3);
    net.run_until(200, |net| {
        net.st().epoch == 1 && !net.st().checkpoints.is_empty()
    });
}

#[test]
fn bad_direct_messages_are_rejected_without_state_change() {
    let mut net = Net::new(4, &[], &[], 5);
    // Run to the point where envelopes are in flight.
    net.run_until(100, |net| !net.inbox.is_empty());
    let (to, from, payload) = net.inbox[0].clone();
    let other = net
        .nodes
        .iter()
        .map(|n| id(&n.key))
        .find(|m| *m != from && *m != id(&net.nodes[to].key))
        .unwrap();
    let node = &mut net.nodes[to];
    let agent = node.agent.as_mut().unwrap();
    let before = agent.snapshot();
    let mut rng = ChaCha20Rng::seed_from_u64(77);
    assert!(matches!(
        agent.on_direct(&node.ledger, from, b"garbage", &mut rng),
        Err(EpochError::Decode(_))
    ));
    // Authenticated as someone else than the envelope's dealer.
    assert!(matches!(
        agent.on_direct(&node.ledger, other, &payload, &mut rng),
        Err(EpochError::Envelope(_))
    ));
    // A flipped byte in the signed envelope.
    let mut flipped = payload.clone();
    let last = flipped.len() - 10;
    flipped[last] ^= 1;
    assert!(agent
        .on_direct(&node.ledger, from, &flipped, &mut rng)
        .is_err());
    // Truncated.
    assert!(agent
        .on_direct(&node.ledger, from, &payload[..payload.len() - 1], &mut rng)
        .is_err());
    assert_eq!(*agent.snapshot(), *before);
    // The genuine message is accepted (and a repeat is a no-op).
    assert_eq!(
        agent
            .on_direct(&node.ledger, from, &payload, &mut rng)
            .unwrap(),
        vec![]
    );
    let after = agent.snapshot();
    assert_ne!(*after, *before);
    agent
        .on_direct(&node.ledger, from, &payload, &mut rng)
        .unwrap();
    assert_eq!(*agent.snapshot(), *after);
    assert!(format!("{agent:?}").contains("redacted"));
}
