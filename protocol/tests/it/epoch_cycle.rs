//! The whole epoch cycle in memory, on the federation of `common` (real ledgers and agents,
//! trivial consensus, direct messages delivered one step later). Every loop is bounded.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use x25519_dalek::StaticSecret;

use frost_ed25519::Ed25519Sha512;
use frost_ristretto255::Ristretto255Sha512;
use seedfed_protocol::agent::{Agent, Duty, EpochError, Fault};
use seedfed_protocol::checkpoint::MasterKey;
use seedfed_protocol::dkg::{self, Complaint, Envelope};
use seedfed_protocol::ledger::{
    beacon_input, chain_digest, decode, encode, validator_set_hash, CheckpointFaultKind,
    ComplaintKey, ComplaintPayload, DkgExclusion, DkgSuite, LedgerError, LedgerState,
    Round1Payload, TxBody,
};
use seedfed_protocol::light_client;
use seedfed_protocol::member::MemberId;
use seedfed_protocol::tprf;

use crate::common;
use common::*;

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
    let status = net.nodes[0].agent.as_ref().unwrap().status();
    assert_eq!(status.key_epochs, vec![0]);
    assert_eq!(status.height + 1, net.st().height);
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
        net.st().newest.assignment_epoch == Some(1) && !net.st().checkpoints.is_empty()
    });
    assert_eq!(
        net.st().newest.branch_owners.len(),
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
    // Before the master root is final the checkpoint vouches for no LMS key.
    assert_eq!(cp.master_key, MasterKey::NONE);
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
    // The last checkpoint key 0 signed is the rotation (a master-root checkpoint may precede it).
    let rotation = st
        .checkpoints
        .iter()
        .filter(|c| c.key_epoch == 0 && c.seq > first.seq)
        .max_by_key(|c| c.seq)
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
    assert_eq!(rotation.body.next_key, result1.ed25519_group_key);
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
    // The whole recorded chain walks from epoch 0's key alone: each checkpoint is numbered
    // one more than the last, and the rotation's next key is key 1, which signs the rest.
    let st = net.st();
    assert_eq!(
        st.checkpoints[0].seq, 0,
        "the state still holds checkpoint 0"
    );
    let links: Vec<(Vec<u8>, [u8; 64])> = st
        .checkpoints
        .iter()
        .map(|c| (c.body.checkpoint().to_bytes().to_vec(), c.signature.0))
        .collect();
    let mut trusted = light_client::Trusted::new(chain_digest(CHAIN), genesis_group_key).unwrap();
    let walked = trusted
        .walk(links.iter().map(|(b, s)| (b.as_slice(), s.as_slice())))
        .unwrap();
    assert_eq!(walked.len(), st.checkpoints.len());
    for (w, c) in walked.iter().zip(&st.checkpoints) {
        assert_eq!((w.seq, c.seq), (c.body.seq, c.body.seq));
    }
    assert_eq!(trusted.next_seq, st.checkpoints.len() as u64);
    assert_eq!(trusted.key, result1.ed25519_group_key);
    assert_eq!(trusted.retired_key, Some(genesis_group_key));
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

/// Exactly `t` qualified while a validator is absent leaves a key with no margin: the first
/// attempt is retried (recorded as a failure), and a validator that comes up meanwhile joins
/// the key. Past that one retry, a thin key is accepted (`full_cycle` of
/// `absent_validator_is_excluded_and_the_rest_complete`, checked here too).
#[test]
fn a_first_attempt_with_no_margin_is_retried_and_a_late_validator_joins_the_key() {
    let mut net = Net::new(4, &[3], &[], 31);
    net.run_until(200, |net| !net.st().dkg.failures.is_empty());
    let st = net.st();
    assert!(!st.dkg_results.contains_key(&0));
    let failure = &st.dkg.failures[0];
    assert_eq!((failure.attempt, failure.qualified), (0, 3));
    let late = id(&net.nodes[3].key);
    assert_eq!(failure.excluded[&late], DkgExclusion::Absent);
    assert_eq!(st.dkg.attempt, 1);
    // Node 3 comes up during the retry and deals in it.
    net.nodes[3].agent = Some(Agent::new(seed(3), xseed(3), Fault::default()));
    net.run_until(200, |net| net.st().dkg_results.contains_key(&0));
    let result = &net.st().dkg_results[&0];
    assert_eq!(result.attempt, 1);
    assert_eq!(result.qualified.len(), 4);
    assert!(result.qualified.contains(&late));

    // Still absent at the retry: the thin key is accepted, after exactly one failure.
    let mut net = Net::new(4, &[3], &[], 32);
    net.run_until(200, |net| net.st().dkg_results.contains_key(&0));
    let st = net.st();
    assert_eq!(st.dkg.failures.len(), 1);
    assert_eq!(st.dkg_results[&0].attempt, 1);
    assert_eq!(st.dkg_results[&0].qualified.len(), 3);
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

#[test]
fn lost_envelope_is_answered_on_the_ledger() {
    let mut net = Net::new(4, &[], &[], 6);
    net.drop_direct.insert((0, 1));
    let (dealer, recipient) = (id(&net.nodes[0].key), id(&net.nodes[1].key));
    net.run_until(200, |net| net.st().dkg_results.contains_key(&0));
    let d = &net.st().dkg;
    // Missing complaints in both suites, and the dealer's answers, are on the ledger.
    for suite in [DkgSuite::Ristretto255, DkgSuite::Ed25519] {
        assert!(d.complaints.contains_key(&ComplaintKey {
            suite,
            accuser: recipient,
            accused: dealer,
            missing: true
        }));
        assert!(d.answers.contains_key(&(suite, dealer, recipient)));
    }
    let result = &net.st().dkg_results[&0];
    assert_eq!(result.qualified.len(), 4, "{:?}", result.excluded);
    net.step();
    assert!(net.nodes[1].agent.as_ref().unwrap().root_key(0).is_some());
}

#[test]
fn answers_close_before_complaints_so_a_bad_answer_still_convicts() {
    // Before: answers were accepted until the last block of the complaint window, so a dealer
    // could answer a Missing complaint with a bad envelope in that block, leave no time for a
    // Bad complaint, and stay qualified.
    let net = Net::new(4, &[], &[(0, Fault::BadRound2Shares)], 9);
    let dealer = id(&net.nodes[0].key);
    let mut net = net;
    net.run_until(100, |net| net.inbox.iter().any(|(_, f, _)| *f == dealer));
    let st = net.st().clone();
    assert!(st.dkg.complaints.is_empty());
    let (to, _, payload) = net
        .inbox
        .iter()
        .find(|(_, f, _)| *f == dealer)
        .unwrap()
        .clone();
    let recipient = id(&net.nodes[to].key);
    let DirectMirror::Dkg(msg) = decode(&payload).unwrap();
    let env = Envelope::decode(&msg.ristretto255).unwrap();
    let p = &st.epochs;
    let (r1_end, answer_end, complaint_end) = (
        st.dkg.round1_end(p),
        st.dkg.answer_end(p),
        st.dkg.complaint_end(p),
    );
    assert!(st.dkg.missing_end(p) <= answer_end && answer_end < complaint_end);
    let complaint = |c: &Complaint| TxBody::DkgComplaint {
        epoch: 0,
        accused: dealer,
        payload: encode(&ComplaintPayload {
            suite: DkgSuite::Ristretto255,
            complaint: c.encode(),
        }),
    };
    let missing = Complaint::Missing {
        complainer: recipient,
        dealer,
    };
    let complained = net
        .try_tx(&st, to, r1_end + 1, complaint(&missing))
        .unwrap();
    let answer = TxBody::DkgAnswer {
        epoch: 0,
        suite: DkgSuite::Ristretto255,
        envelope: msg.ristretto255.clone(),
    };
    // Too late: in the complaint window's last blocks.
    for h in [answer_end + 1, complaint_end] {
        assert!(
            matches!(
                net.try_tx(&complained, 0, h, answer.clone()),
                Err(LedgerError::DkgWindow { what: "answer", .. })
            ),
            "answer at {h} (answers close at {answer_end})"
        );
    }
    // The dealer's agent answers only while the ledger takes answers.
    let answers_at = |h: u64| {
        let mut ledger = net.nodes[0].ledger.clone();
        ledger.state = complained.clone();
        ledger.state.height = h;
        let snap = net.nodes[0].agent.as_ref().unwrap().snapshot();
        let mut agent = Agent::restore(&snap, seed(0), xseed(0), Fault::BadRound2Shares).unwrap();
        let duties = agent.on_block(&ledger, &mut ChaCha20Rng::seed_from_u64(98));
        duties
            .iter()
            .filter(|d| matches!(d, Duty::Submit(TxBody::DkgAnswer { .. })))
            .count()
    };
    assert_eq!(answers_at(r1_end + 1), 1);
    assert_eq!(answers_at(answer_end - 1), 1);
    assert_eq!(answers_at(answer_end), 0);
    // In time; the bad envelope it publishes is then convicted by a Bad complaint, which
    // stays open until the window's last block.
    let answered = net.try_tx(&complained, 0, answer_end, answer).unwrap();
    let session = st.dkg.session::<Ristretto255Sha512>(CHAIN).unwrap();
    let bad = session
        .complain(
            &StaticSecret::from(xseed(to)),
            &env,
            &mut ChaCha20Rng::seed_from_u64(99),
        )
        .unwrap();
    let convicted = net
        .try_tx(&answered, to, complaint_end, complaint(&bad))
        .unwrap();
    let done = net
        .try_tx(
            &convicted,
            to,
            complaint_end + 1,
            TxBody::DkgFinalize { epoch: 0 },
        )
        .unwrap();
    // Three of four qualified, exactly `t`, on a first attempt: retried for margin
    // (`DkgRound::falls_short`), the dealer's conviction in the failure's record.
    assert!(!done.dkg_results.contains_key(&0));
    let failure = &done.dkg.failures[0];
    assert_eq!(failure.qualified, 3);
    assert_eq!(
        failure.excluded[&dealer],
        DkgExclusion::BadShare {
            suite: DkgSuite::Ristretto255,
            complainer: recipient
        }
    );
}

fn round1_payload(
    st: &LedgerState,
    me: &MemberId,
    t: Option<u16>,
    rng: &mut ChaCha20Rng,
) -> Vec<u8> {
    let sr = st.dkg.session::<Ristretto255Sha512>(CHAIN).unwrap();
    let se = st.dkg.session::<Ed25519Sha512>(CHAIN).unwrap();
    let pr = match t {
        None => sr.round1(me, rng).unwrap().1,
        Some(t) => {
            dkg::part1::<Ristretto255Sha512, _>(me, 4, t, rng)
                .unwrap()
                .1
        }
    };
    let pe = se.round1(me, rng).unwrap().1;
    encode(&Round1Payload {
        ristretto255: pr.serialize().unwrap(),
        ed25519: pe.serialize().unwrap(),
    })
}

/// The wire form of a DKG direct message (`agent::direct::Direct::Dkg`). `Serialize` too:
/// `ledger::decode` checks that the bytes are the value's canonical encoding.
#[derive(serde::Serialize, serde::Deserialize)]
enum DirectMirror {
    Dkg(DkgMirror),
}

#[derive(serde::Serialize, serde::Deserialize)]
struct DkgMirror {
    _epoch: u64,
    _attempt: u32,
    ristretto255: Vec<u8>,
    _ed25519: Vec<u8>,
}

/// An honest DKG does not wait out its windows: round 1 closes with the last package, the
/// complaint window with the last dealer's acknowledgement, and the DKG is finalised in a few
/// blocks instead of `R + C + 1` (21 at the default windows).
#[test]
fn an_honest_dkg_closes_both_windows_early() {
    let mut net = Net::new(4, &[], &[], 21);
    net.run_until(200, |net| net.st().dkg_results.contains_key(&0));
    let st = net.st();
    let d = &st.dkg;
    let full = st.epochs.dkg_round1_blocks + st.epochs.dkg_complaint_blocks + 1;
    let took = st.dkg_results[&0].height - d.opened_at;
    assert!(d.round1_closed_at.is_some() && d.complaints_closed_at.is_some());
    assert_eq!(d.acks.len(), 4);
    assert!(
        took <= 6,
        "the DKG took {took} blocks (full windows: {full})"
    );
    assert_eq!(st.dkg_results[&0].qualified.len(), 4);
}

/// The faulty cases keep the full windows: an absent validator keeps round 1 open for `R`
/// blocks, and a complaint keeps the complaint window open for `C` (its answer and any `Bad`
/// complaint about the answer need them).
#[test]
fn an_absent_dealer_or_a_complaint_keeps_the_full_windows() {
    let mut net = Net::new(4, &[3], &[], 22);
    net.run_until(200, |net| net.st().dkg_results.contains_key(&0));
    let st = net.st();
    assert_eq!(st.dkg.round1_closed_at, None);
    assert_eq!(
        st.dkg.round1_end(&st.epochs),
        st.dkg.opened_at + st.epochs.dkg_round1_blocks
    );

    let mut net = Net::new(4, &[], &[], 23);
    net.drop_direct.insert((0, 1));
    net.run_until(200, |net| net.st().dkg_results.contains_key(&0));
    let st = net.st();
    assert!(!st.dkg.complaints.is_empty());
    assert_eq!(st.dkg.complaints_closed_at, None);
    assert!(
        st.dkg_results[&0].height > st.dkg.round1_end(&st.epochs) + st.epochs.dkg_complaint_blocks
    );
}

/// `DkgAck`: only a dealer of the current attempt, once, after round 1 closed; the last one
/// closes the complaint window in its block, and a complaint in that same block reopens it.
#[test]
fn acknowledgements_close_the_complaint_window_and_a_complaint_reopens_it() {
    let mut net = Net::new(4, &[], &[], 24);
    net.run_until(100, |net| !net.inbox.is_empty());
    let st = net.st().clone();
    assert!(
        st.dkg.round1_closed_at.is_some(),
        "all four packages are in"
    );
    let r1_end = st.dkg.round1_end(&st.epochs);
    let ack = |attempt| TxBody::DkgAck { epoch: 0, attempt };
    assert!(matches!(
        net.try_tx(&st, 0, r1_end, ack(0)),
        Err(LedgerError::DkgWindow { .. })
    ));
    assert!(matches!(
        net.try_tx(&st, 0, r1_end + 1, ack(1)),
        Err(LedgerError::DkgRejected(_))
    ));
    let once = net.try_tx(&st, 0, r1_end + 1, ack(0)).unwrap();
    assert!(matches!(
        net.try_tx(&once, 0, r1_end + 1, ack(0)),
        Err(LedgerError::DuplicateDkg(_))
    ));
    let mut all = once;
    for i in 1..4 {
        assert_eq!(all.dkg.complaints_closed_at, None);
        all = net.try_tx(&all, i, r1_end + 1, ack(0)).unwrap();
    }
    assert_eq!(all.dkg.complaints_closed_at, Some(r1_end + 1));
    assert_eq!(all.dkg.complaint_end(&all.epochs), r1_end + 1);
    // A complaint in the next block is out of the window.
    let (to, from) = (1usize, id(&net.nodes[0].key));
    let missing = TxBody::DkgComplaint {
        epoch: 0,
        accused: from,
        payload: encode(&ComplaintPayload {
            suite: DkgSuite::Ristretto255,
            complaint: Complaint::Missing {
                complainer: id(&net.nodes[to].key),
                dealer: from,
            }
            .encode(),
        }),
    };
    assert!(matches!(
        net.try_tx(&all, to, r1_end + 2, missing.clone()),
        Err(LedgerError::DkgWindow { .. })
    ));
    // In the closing block it lands and reopens the full window.
    let reopened = net.try_tx(&all, to, r1_end + 1, missing).unwrap();
    assert_eq!(reopened.dkg.complaints_closed_at, None);
    assert_eq!(
        reopened.dkg.complaint_end(&reopened.epochs),
        r1_end + reopened.epochs.dkg_complaint_blocks
    );
}

#[test]
fn ledger_rejects_bad_cycle_transactions() {
    let mut net = Net::new(4, &[], &[], 8);
    let mut rng = ChaCha20Rng::seed_from_u64(88);
    let me = id(&net.nodes[0].key);
    let st0 = net.st().clone();
    // Round 1: window, epoch, encoding, proof of knowledge, degree.
    let good = round1_payload(&st0, &me, None, &mut rng);
    let commit = |payload: Vec<u8>, epoch| TxBody::DkgCommitment { epoch, payload };
    net.try_tx(&st0, 0, 1, commit(good.clone(), 0)).unwrap();
    assert!(matches!(
        net.try_tx(&st0, 0, 11, commit(good.clone(), 0)),
        Err(LedgerError::DkgWindow { .. })
    ));
    assert!(matches!(
        net.try_tx(&st0, 0, 1, commit(good.clone(), 1)),
        Err(LedgerError::WrongEpoch { .. })
    ));
    assert!(matches!(
        net.try_tx(&st0, 0, 1, commit(vec![1, 2, 3], 0)),
        Err(LedgerError::BadPayload(_))
    ));
    // Someone else's package: the proof of knowledge is for another identifier.
    assert!(matches!(
        net.try_tx(&st0, 1, 1, commit(good.clone(), 0)),
        Err(LedgerError::DkgRejected(_))
    ));
    let low_degree = round1_payload(&st0, &me, Some(2), &mut rng);
    assert!(matches!(
        net.try_tx(&st0, 0, 1, commit(low_degree, 0)),
        Err(LedgerError::DkgRejected(_))
    ));
    let twice = net.try_tx(&st0, 0, 1, commit(good.clone(), 0)).unwrap();
    assert!(matches!(
        net.try_tx(&twice, 0, 2, commit(good, 0)),
        Err(LedgerError::DuplicateDkg(_))
    ));

    // Complaints, answers and finalize while envelopes are in flight.
    net.run_until(100, |net| !net.inbox.is_empty());
    let st = net.st().clone();
    let r1_end = st.dkg.round1_end(&st.epochs);
    let (to, from, payload) = net.inbox[0].clone();
    let DirectMirror::Dkg(msg) = decode(&payload).unwrap();
    let env = Envelope::decode(&msg.ristretto255).unwrap();
    let session = st.dkg.session::<Ristretto255Sha512>(CHAIN).unwrap();
    let valid_share_complaint = session
        .complain(&StaticSecret::from(xseed(to)), &env, &mut rng)
        .unwrap();
    let complain = |c: &Complaint| TxBody::DkgComplaint {
        epoch: 0,
        accused: from,
        payload: encode(&ComplaintPayload {
            suite: DkgSuite::Ristretto255,
            complaint: c.encode(),
        }),
    };
    // A complaint about a share that verifies is false.
    assert!(matches!(
        net.try_tx(&st, to, r1_end + 1, complain(&valid_share_complaint)),
        Err(LedgerError::DkgRejected(_))
    ));
    // A complaint filed by someone other than the envelope's recipient.
    let other = (0..4)
        .find(|&k| k != to && id(&net.nodes[k].key) != from)
        .unwrap();
    assert!(matches!(
        net.try_tx(&st, other, r1_end + 1, complain(&valid_share_complaint)),
        Err(LedgerError::DkgRejected(_))
    ));
    let missing = Complaint::Missing {
        complainer: id(&net.nodes[to].key),
        dealer: from,
    };
    net.try_tx(&st, to, r1_end + 1, complain(&missing)).unwrap();
    assert!(matches!(
        net.try_tx(&st, to, r1_end, complain(&missing)),
        Err(LedgerError::DkgWindow { .. })
    ));
    assert!(matches!(
        net.try_tx(
            &st,
            to,
            st.dkg.complaint_end(&st.epochs),
            complain(&missing)
        ),
        Err(LedgerError::DkgWindow { .. })
    ));
    let dealer_i = net.index_of(&from);
    let answer = TxBody::DkgAnswer {
        epoch: 0,
        suite: DkgSuite::Ristretto255,
        envelope: msg.ristretto255.clone(),
    };
    // No Missing complaint to answer yet; then answered once; not by someone else.
    assert!(matches!(
        net.try_tx(&st, dealer_i, r1_end + 1, answer.clone()),
        Err(LedgerError::DkgRejected(_))
    ));
    let complained = net.try_tx(&st, to, r1_end + 1, complain(&missing)).unwrap();
    let answered = net
        .try_tx(&complained, dealer_i, r1_end + 2, answer.clone())
        .unwrap();
    assert!(matches!(
        net.try_tx(&answered, dealer_i, r1_end + 3, answer.clone()),
        Err(LedgerError::DuplicateDkg(_))
    ));
    assert!(matches!(
        net.try_tx(&complained, other, r1_end + 2, answer),
        Err(LedgerError::DkgRejected(_))
    ));
    assert!(matches!(
        net.try_tx(
            &st,
            0,
            st.dkg.complaint_end(&st.epochs),
            TxBody::DkgFinalize { epoch: 0 }
        ),
        Err(LedgerError::DkgWindow { .. })
    ));

    // Finalized: a second finalize is rejected.
    net.run_until(100, |net| net.st().dkg_results.contains_key(&0));
    let st = net.st().clone();
    assert_eq!(
        net.try_tx(&st, 1, st.height + 1, TxBody::DkgFinalize { epoch: 0 })
            .unwrap_err(),
        LedgerError::DkgDone(0)
    );

    // Beacon partials: wrong input, not the author's, wrong epoch.
    net.step();
    let st = net.st().clone();
    let kp = net.nodes[3].agent.as_ref().unwrap().root_key(0).unwrap();
    let m3 = id(&net.nodes[3].key);
    let input = beacon_input(&chain_digest(CHAIN), 1);
    let wrong_input =
        tprf::partial(&kp, &m3, &beacon_input(&chain_digest(CHAIN), 2), &mut rng).unwrap();
    let right = tprf::partial(&kp, &m3, &input, &mut rng).unwrap();
    let partial = |epoch, partial| TxBody::BeaconPartial { epoch, partial };
    let h = st.height + 1;
    if !st.beacon_partials.iter().any(|p| p.member == m3) && st.beacon_partials.len() < 3 {
        net.try_tx(&st, 3, h, partial(1, right)).unwrap();
    }
    assert!(matches!(
        net.try_tx(&st, 3, h, partial(1, wrong_input)),
        Err(LedgerError::BadPartial(_)
            | LedgerError::DuplicateDkg(_)
            | LedgerError::BeaconComplete)
    ));
    let mut forged = right;
    forged.point = tprf::hash_to_point(b"x").compress();
    let mut clean = st.clone();
    clean.beacon_partials.clear();
    assert!(matches!(
        net.try_tx(&clean, 3, h, partial(1, forged)),
        Err(LedgerError::BadPartial(_))
    ));
    assert!(matches!(
        net.try_tx(&clean, 3, h, partial(1, wrong_input)),
        Err(LedgerError::BadPartial(_))
    ));
    assert!(matches!(
        net.try_tx(&clean, 2, h, partial(1, right)),
        Err(LedgerError::BadPartial(_))
    ));
    assert!(matches!(
        net.try_tx(&clean, 3, h, partial(2, right)),
        Err(LedgerError::WrongEpoch { .. })
    ));

    // EpochStart: too early, wrong beacon.
    net.run_until(20, |net| net.st().beacon_partials.len() >= 3);
    let st = net.st().clone();
    let beacon = st.recorded_beacon().unwrap();
    let start = |beacon| TxBody::EpochStart { epoch: 1, beacon };
    let ok_height = st.next_epoch_height().max(st.height + 1);
    if st.height + 1 < st.next_epoch_height() {
        assert_eq!(
            net.try_tx(&st, 0, st.height + 1, start(beacon))
                .unwrap_err(),
            LedgerError::EpochTooEarly(st.next_epoch_height())
        );
    }
    let mut wrong = beacon;
    wrong[0] ^= 1;
    assert!(matches!(
        net.try_tx(&st, 0, ok_height, start(wrong)),
        Err(LedgerError::BadBeacon(_))
    ));
    net.try_tx(&st, 0, ok_height, start(beacon)).unwrap();

    // Checkpoint: a bad share is attributed and starts a new attempt.
    net.run_until(100, |net| {
        net.st().epoch == 1
            && net
                .st()
                .checkpoint_in_progress()
                .is_some_and(|(_, _, s, _)| s.commitments.len() >= 3 && s.shares.is_empty())
    });
    let st = net.st().clone();
    let (seq, _, signing, _) = st.checkpoint_in_progress().unwrap();
    let signing = signing.clone();
    assert!(matches!(
        net.try_tx(
            &st,
            0,
            st.height + 1,
            TxBody::CheckpointCommit {
                checkpoint: seq + 1,
                attempt: 0,
                commitments: vec![1]
            }
        ),
        Err(LedgerError::WrongCheckpoint { .. })
    ));
    let mut shares: Vec<(usize, TxBody)> = Vec::new();
    for (m, _) in &signing.commitments {
        let i = net.index_of(m);
        let node = &mut net.nodes[i];
        let duties = node
            .agent
            .as_mut()
            .unwrap()
            .on_block(&node.ledger, &mut rng);
        for d in duties {
            if let Duty::Submit(b @ TxBody::CheckpointShare { .. }) = d {
                shares.push((i, b));
            }
        }
    }
    assert_eq!(shares.len(), 3);
    let mut good = st.clone();
    let mut bad = st.clone();
    let h = st.height + 1;
    for (k, (i, body)) in shares.iter().enumerate() {
        good = net.try_tx(&good, *i, h, body.clone()).unwrap();
        let body = if k == 2 {
            let mut scalar = [0u8; 32];
            scalar[0] = 7;
            TxBody::CheckpointShare {
                checkpoint: seq,
                attempt: signing.attempt,
                share: scalar.to_vec(),
            }
        } else {
            body.clone()
        };
        bad = net.try_tx(&bad, *i, h, body).unwrap();
    }
    assert_eq!(good.checkpoints.len(), st.checkpoints.len() + 1);
    let culprit = id(&net.nodes[shares[2].0].key);
    assert_eq!(bad.checkpoints.len(), st.checkpoints.len());
    assert_eq!(bad.checkpoint_faults.last().unwrap().member, culprit);
    let (_, _, next, _) = bad.checkpoint_in_progress().unwrap();
    assert_eq!(next.attempt, signing.attempt + 1);
    assert!(next.excluded.contains(&culprit));
    // The culprit may not commit to the new attempt.
    assert!(matches!(
        net.try_tx(
            &bad,
            shares[2].0,
            h + 1,
            TxBody::CheckpointCommit {
                checkpoint: seq,
                attempt: next.attempt,
                commitments: signing.commitments[0].1.clone()
            }
        ),
        Err(LedgerError::NotSigner(..))
    ));
}

#[test]
fn too_few_qualified_fails_the_attempt_and_reopens_the_dkg() {
    let mut net = Net::new(
        4,
        &[],
        &[(2, Fault::BadRound2Shares), (3, Fault::BadRound2Shares)],
        9,
    );
    net.run_until(200, |net| !net.st().dkg.failures.is_empty());
    let st = net.st().clone();
    assert!(!st.dkg_results.contains_key(&0));
    let failure = &st.dkg.failures[0];
    assert_eq!(failure.attempt, 0);
    assert!(failure.qualified < 3);
    for i in [2, 3] {
        assert!(matches!(
            failure.excluded[&id(&net.nodes[i].key)],
            DkgExclusion::BadShare { .. }
        ));
    }
    // Reopened at once: attempt 1 with a fresh window, and the validators deal again.
    assert_eq!(st.dkg.attempt, 1);
    assert_eq!(st.dkg.opened_at, st.height);
    assert!(st.dkg.commitments.is_empty());
    net.step();
    assert_eq!(net.st().dkg.commitments.len(), 4);
    assert_eq!(net.st().epoch, 0);
}

#[test]
fn restored_signer_without_nonces_skips_the_attempt_and_signing_recovers() {
    let mut net = Net::new(4, &[], &[], 10);
    // Keep node 1's snapshot of every step.
    let mut history: Vec<(u64, Vec<u8>)> = Vec::new();
    let m1 = id(&net.nodes[1].key);
    for _ in 0..200 {
        let st = net.st();
        if st.epoch == 1
            && st
                .checkpoint_in_progress()
                .is_some_and(|(_, _, s, _)| s.commitments.iter().any(|(m, _)| *m == m1))
        {
            break;
        }
        history.push((
            st.height,
            net.nodes[1].agent.as_ref().unwrap().snapshot().to_vec(),
        ));
        net.step();
    }
    let st = net.st().clone();
    let (seq, _, signing, _) = st.checkpoint_in_progress().unwrap();
    let attempt = signing.attempt;
    assert!(signing.commitments.iter().any(|(m, _)| *m == m1));
    // Restore node 1 from the snapshot taken before its nonces were drawn.
    let (_, old) = history
        .iter()
        .rev()
        .find(|(h, _)| *h + 1 < st.height)
        .unwrap()
        .clone();
    net.nodes[1].agent = Some(Agent::restore(&old, seed(1), xseed(1), Fault::None).unwrap());
    let node = &mut net.nodes[1];
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let duties = node
        .agent
        .as_mut()
        .unwrap()
        .on_block(&node.ledger, &mut rng);
    for d in &duties {
        if let Duty::Submit(TxBody::CheckpointShare {
            checkpoint,
            attempt: a,
            ..
        })
        | Duty::Submit(TxBody::CheckpointCommit {
            checkpoint,
            attempt: a,
            ..
        }) = d
        {
            assert!(
                (*checkpoint, *a) != (seq, attempt),
                "restored signer acted on an attempt it had committed to: {d:?}"
            );
        }
    }
    // Node 1 is one of the fixed signers (commitments land in node order), so that attempt
    // stalls; after the attempt timeout a new attempt completes the checkpoint.
    let fixed: Vec<MemberId> = signing
        .commitments
        .iter()
        .take(3)
        .map(|(m, _)| *m)
        .collect();
    assert!(fixed.contains(&m1));
    net.run_until(100, |net| net.st().checkpoints.iter().any(|c| c.seq == seq));
    assert!(net.st().height > signing.started_at + net.st().epochs.checkpoint_attempt_blocks);
    // It could not sign that attempt: recorded as a withholder, excluded from the next.
    let faults = &net.st().checkpoint_faults;
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(
        (
            faults[0].member,
            faults[0].seq,
            faults[0].attempt,
            faults[0].kind
        ),
        (m1, seq, attempt, CheckpointFaultKind::Withheld)
    );
}

/// A fixed signer that commits to every attempt but never sends its share is excluded when
/// its stalled attempt is superseded (on the ledger, as a fault), so the next attempt's
/// signers complete the checkpoint; before, it committed first again and stalled every attempt.
#[test]
fn a_signer_that_withholds_its_share_is_excluded_and_the_checkpoint_completes() {
    let mut net = Net::new(4, &[], &[], 12);
    // Node 0's commitment lands first (node order), so it is a fixed signer of attempt 0.
    net.withhold_checkpoint_shares.insert(0);
    let m0 = id(&net.nodes[0].key);
    net.run_until(200, |net| {
        net.st().epoch == 1 && net.st().checkpoint_in_progress().is_some()
    });
    let (seq, _, first, _) = net.st().checkpoint_in_progress().unwrap();
    let (seq, first_attempt) = (seq, first.attempt);
    net.run_until(200, |net| net.st().checkpoints.iter().any(|c| c.seq == seq));
    let withheld: Vec<_> = net
        .st()
        .checkpoint_faults
        .iter()
        .filter(|f| f.seq == seq)
        .collect();
    assert_eq!(withheld.len(), 1, "{withheld:?}");
    assert_eq!(withheld[0].member, m0);
    assert_eq!(withheld[0].kind, CheckpointFaultKind::Withheld);
    assert_eq!(withheld[0].attempt, first_attempt);
}
