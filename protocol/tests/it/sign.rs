//! Signing over the in-memory federation of `common` (real ledgers and agents): sign requests
//! on the ledger, each leaf rebuilt by its quorum's masked contributions at the requester, the
//! leaf's path (the relay's replica of the tree, or the owner's), the signature published and
//! verified by the ledger, a light client and hbs-lms. Every loop is bounded.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use crate::common;

use std::collections::BTreeSet;

use common::*;
use seedfed_protocol::agent::{Agent, Fault};
use seedfed_protocol::ledger::{leaf_id, split_leaf, ConvictionEvidence, KeyParams};
use seedfed_protocol::lms::LmsSignature;
use seedfed_protocol::reconstruct::blame::BlameEvidence;

#[test]
fn requests_are_signed_by_mpc_and_every_signature_verifies() {
    let mut net = Net::new(4, &[], &[], 41);
    net.run_until(400, |net| net.st().newest.endorsed.is_some());
    let public = net.st().master_public_key().unwrap();
    // Three requesters, two requests each, all in one block.
    let mut digests = Vec::new();
    for i in 0..6u8 {
        let digest = [i + 1; 32];
        digests.push(digest);
        let body = request(digest, net.st().epoch, u64::from(i));
        net.submit.push((usize::from(i % 3), body));
    }
    net.step();
    let allocated: Vec<u64> = net.st().sign_requests.keys().copied().collect();
    assert_eq!(allocated.len(), 6);
    net.run_until(60, |net| net.st().signatures.len() == 6);
    let st = net.st();
    let retired = st.newest.retired_leaves();
    let mut leaves = BTreeSet::new();
    for (leaf, request) in &st.sign_requests {
        assert!(!retired.contains(leaf));
        assert!(leaves.insert(*leaf));
        let bytes = &st.signatures[leaf];
        let sig = LmsSignature::decode_hss(bytes).unwrap();
        assert_eq!(u64::from(sig.q), *leaf);
        public.verify(&request.digest, &sig).unwrap();
        // An independent implementation agrees.
        let hpk = public.encode_hss();
        assert!(hbs_lms::verify::<hbs_lms::Sha256_256>(&request.digest, bytes, &hpk).is_ok());
    }
    // Nobody keeps anything of a signed leaf in memory.
    for node in &net.nodes {
        let s = node.agent.as_ref().unwrap().status();
        assert!(s.keygen_owned.is_empty(), "{s:?}");
    }
}

#[test]
fn a_holder_that_went_silent_delays_its_leaves_but_the_next_quorum_signs_them() {
    let mut net = Net::new(4, &[], &[], 43);
    net.run_until(400, |net| net.st().newest.endorsed.is_some());
    // A holder that owns no sector stops after the key is made: it holds shares of many
    // leaves and never contributes again (it still signs commits, so it stays a validator).
    // (An owner that stops: `a_dead_owners_leaves_are_signed_from_the_relays_replica_of_its_tree`.)
    let owners: BTreeSet<_> = net.st().newest.sectors.values().map(|r| r.owner).collect();
    let quiet = (0..4)
        .find(|i| !owners.contains(&id(&net.nodes[*i].key)))
        .expect("a validator that owns no sector");
    net.nodes[quiet].agent = None;
    let silent = id(&net.nodes[quiet].key);
    submit_through(
        &mut net,
        &(0..4).filter(|i| *i != quiet).collect::<Vec<_>>(),
        8,
    );
    net.run_until(200, |net| net.st().signatures.len() == 8);
    let st = net.st();
    let public = st.master_public_key().unwrap();
    // Some of these leaves had node 1 in their first quorum: they were signed by a later one.
    let mut delayed = 0;
    for (leaf, request) in &st.sign_requests {
        let sig = LmsSignature::decode_hss(&st.signatures[leaf]).unwrap();
        public.verify(&request.digest, &sig).unwrap();
        let sector = st
            .key
            .layout(&seedfed_protocol::ledger::chain_digest(&st.chain_id), 0)
            .unwrap()
            .sector_of(*leaf as u32)
            .unwrap();
        let record = &st.newest.sectors[&sector];
        let first_quorum: Vec<_> = record
            .basis
            .leaf_holders(*leaf, st.key.leaf_holders)
            .unwrap()
            .into_iter()
            .filter(|h| record.acked.contains(h))
            .take(usize::from(st.key.leaf_threshold))
            .collect();
        if first_quorum.contains(&silent) {
            delayed += 1;
        }
    }
    assert!(
        delayed > 0,
        "node 1 was in no first quorum: the test proves nothing"
    );
}

#[test]
fn a_tiny_key_runs_out_while_requests_arrive_and_the_next_key_takes_over_without_a_gap() {
    // 32 leaves, 4 retired by the audits; the next key opens once fewer than 75% are left.
    let mut params = key(2, 3);
    params.rotate_percent = 75;
    let mut net = Net::with_key(4, &[], &[], 47, params);
    net.run_until(400, |net| net.st().newest.endorsed.is_some());
    let usable = 32 - net.st().newest.retired_leaves().len() as u64;
    let total = usable + 10;
    // One request every other block, by turns from every validator: each is allocated in the
    // block after it was submitted, on key 0 and then on key 1, never refused.
    for i in 0..total {
        let body = request([(i + 1) as u8; 32], net.st().epoch, i);
        net.submit.push(((i % 4) as usize, body.clone()));
        let before = net.st().sign_requests.len();
        net.step();
        assert_eq!(
            net.st().sign_requests.len(),
            before + 1,
            "request {i} was not allocated: {:?}",
            net.try_tx(net.st(), (i % 4) as usize, net.st().height + 1, body)
                .err()
        );
        net.step();
    }
    net.run_until(120, |net| net.st().signatures.len() as u64 == total);
    let st = net.st();
    assert_eq!(st.signatures.len() as u64, total);
    // Key 1 too fell below 75% left (18 of 32), so key 2 is open: the cycle repeats.
    let indices: Vec<u32> = st.keys().map(|k| k.index).collect();
    assert_eq!(indices, [0, 1, 2]);
    let (old, new) = (&st.older_keys[&0], &st.older_keys[&1]);
    assert_eq!(old.leaves_left(&st.key), 0, "key 0 is spent");
    // Key 1 was endorsed by a checkpoint before its first leaf was allocated.
    let first_on_new = st.sign_requests.range(leaf_id(1, 0)..).next().unwrap();
    let endorsing = st
        .checkpoints
        .iter()
        .find(|c| Some(c.seq) == new.endorsed)
        .unwrap();
    assert!(endorsing.body.height <= first_on_new.1.height);
    let named = endorsing.body.master_key;
    assert_eq!(Some(named.root), new.master_root);
    assert_ne!(old.master_root, new.master_root);
    let mut per_key = [0u64; 2];
    for (id, request) in &st.sign_requests {
        let (k, q) = split_leaf(*id);
        per_key[k as usize] += 1;
        assert!(!st.key_state(k).unwrap().retired_leaves().contains(&q));
        let bytes = &st.signatures[id];
        let sig = LmsSignature::decode_hss(bytes).unwrap();
        assert_eq!(u64::from(sig.q), q);
        let public = st.key_public(k).unwrap();
        public.verify(&request.digest, &sig).unwrap();
        assert!(hbs_lms::verify::<hbs_lms::Sha256_256>(
            &request.digest,
            bytes,
            &public.encode_hss()
        )
        .is_ok());
        // Under the other key it does not verify.
        let other = st.key_public(1 - k).unwrap();
        assert!(other.verify(&request.digest, &sig).is_err());
    }
    assert_eq!(per_key, [usable, 10]);
}

/// `count` sign requests (digests `[i + 1; 32]`, nonces `i`), relayed in turn by `relays`,
/// in one block.
fn submit_through(net: &mut Net, relays: &[usize], count: u8) {
    let epoch = net.st().epoch;
    for i in 0..count {
        let relay = relays[usize::from(i) % relays.len()];
        net.submit
            .push((relay, request([i + 1; 32], epoch, u64::from(i))));
    }
    net.step();
}

/// Node `i`'s agent runs `fault` from now on (restored from its own snapshot).
fn turn(net: &mut Net, i: usize, fault: Fault) {
    let snap = net.nodes[i].agent.as_ref().unwrap().snapshot();
    net.nodes[i].agent = Some(Agent::restore(&snap, seed(i), xseed(i), fault).unwrap());
    net.faults.insert(i, fault);
}

fn key(k: u16, r: u16) -> KeyParams {
    KeyParams {
        tree_height: 5,
        sector_bits: 1,
        leaf_threshold: k,
        leaf_holders: r,
        ack_threshold: r,
        audit_leaves: 2,
        sector_window: seedfed_protocol::ledger::DEFAULT_SECTOR_WINDOW,
        rotate_percent: 0,
    }
}

/// `n` validators generating a `k`-of-`r` key, the last one running `fault`, once the key is
/// endorsed; and the faulty one's index.
fn faulty_net(n: usize, k: u16, r: u16, fault: Fault, seed: u64) -> (Net, usize) {
    let bad = n - 1;
    let mut net = Net::with_key(n, &[], &[(bad, fault)], seed, key(k, r));
    net.run_until(400, |net| net.st().newest.endorsed.is_some());
    (net, bad)
}

/// Runs `requests` sign requests by node 0 on a federation with one faulty validator, until
/// every leaf is signed; returns the net and the faulty member.
fn sign_with_fault(
    n: usize,
    k: u16,
    r: u16,
    fault: Fault,
    seed: u64,
    requests: u8,
) -> (Net, usize) {
    let (mut net, bad) = faulty_net(n, k, r, fault, seed);
    let epoch = net.st().epoch;
    for i in 0..requests {
        net.submit
            .push((0, request([i + 1; 32], epoch, u64::from(i))));
    }
    net.step();
    let public = net.st().master_public_key().unwrap();
    net.run_until(150, |net| {
        net.st().signatures.len() == usize::from(requests)
    });
    for (leaf, request) in &net.st().sign_requests {
        let sig =
            seedfed_protocol::lms::LmsSignature::decode_hss(&net.st().signatures[leaf]).unwrap();
        public.verify(&request.digest, &sig).unwrap();
    }
    (net, bad)
}

/// The member `bad` and nobody else is convicted (by a signing blame with a mask dispute if
/// `dispute`, else a bad contribution) and evicted.
fn only_the_faulty_is_convicted(net: &Net, bad: usize, dispute: bool) {
    let st = net.st();
    let liar = id(&net.nodes[bad].key);
    assert_eq!(
        st.sign_convictions.keys().copied().collect::<Vec<_>>(),
        vec![liar]
    );
    let c = &st.sign_convictions[&liar];
    let ConvictionEvidence::Signing { evidence, .. } = &c.evidence else {
        panic!("{c:?}")
    };
    let kind = matches!(**evidence, BlameEvidence::MaskDispute { .. });
    assert_eq!(kind, dispute, "{evidence:?}");
    assert!(!st.is_validator(&liar), "the convicted member is evicted");
    assert_eq!(st.evictions.keys().copied().collect::<Vec<_>>(), vec![liar]);
}

#[test]
fn a_wrong_contribution_is_convicted_on_the_ledger_and_signing_completes() {
    let (net, bad) = sign_with_fault(6, 2, 4, Fault::BadContribution, 43, 4);
    only_the_faulty_is_convicted(&net, bad, false);
}

#[test]
fn a_member_disputing_everyone_is_the_only_one_excluded_and_signing_completes() {
    let (net, bad) = sign_with_fault(7, 3, 5, Fault::DisputeEveryone, 44, 4);
    only_the_faulty_is_convicted(&net, bad, true);
}

/// Key issuance on a federation with one faulty validator: `requests` leaves issued to the
/// client through node 0; the client signs each bundle it can, and blames the contributions
/// of a bundle that does not combine (`issue::blame_issued`) through the relay, until every
/// leaf is signed; returns the net and the faulty member.
fn issue_with_fault(
    n: usize,
    k: u16,
    r: u16,
    fault: Fault,
    seed: u64,
    requests: u8,
) -> (Net, usize) {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use seedfed_protocol::issue::{blame_issued, sign_issued};
    use seedfed_protocol::ledger::{ClientRequest, TxBody};
    use x25519_dalek::{PublicKey, StaticSecret};

    let (mut net, bad) = faulty_net(n, k, r, fault, seed);
    let client_x = StaticSecret::from([0x33; 32]);
    let relay = 0;
    let epoch = net.st().epoch;
    for i in 0..requests {
        let request = ClientRequest {
            client: id(&client_key()),
            digest: [i + 1; 32],
            epoch,
            nonce: u64::from(i),
            issue_to: Some(PublicKey::from(&client_x).to_bytes()),
        };
        let request = request.sign(CHAIN, &client_key());
        net.submit.push((relay, TxBody::SignRequest { request }));
    }
    net.step();
    let leaves: Vec<u64> = net.st().sign_requests.keys().copied().collect();
    assert_eq!(leaves.len(), usize::from(requests));
    let public = net.st().master_public_key().unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut blamed = 0;
    for _ in 0..300 {
        if leaves.iter().all(|l| net.st().signatures.contains_key(l)) {
            break;
        }
        for &leaf in &leaves {
            let agent = net.nodes[relay].agent.as_ref().unwrap();
            let Some(b) = agent.issue_bundle(net.st(), leaf) else {
                continue;
            };
            match sign_issued(&b, &client_x, &public) {
                Ok(signature) => net
                    .submit
                    .push((relay, TxBody::SignaturePublish { leaf, signature })),
                Err(_) => {
                    for evidence in blame_issued(&b, &client_x, &mut rng).unwrap() {
                        blamed += 1;
                        let evidence = Box::new(evidence);
                        net.submit
                            .push((relay, TxBody::SignBlame { leaf, evidence }));
                    }
                }
            }
        }
        net.step();
    }
    assert!(
        leaves.iter().all(|l| net.st().signatures.contains_key(l)),
        "not every issued leaf was signed ({blamed} blames)"
    );
    (net, bad)
}

/// Before, the ledger judged every blame against the relay as the recipient, so the client of
/// an issued leaf could not blame anyone: a wrong contribution left its bundles failing.
#[test]
fn a_wrong_contribution_to_an_issued_leaf_is_blamed_by_the_client_and_convicted() {
    let (net, bad) = issue_with_fault(6, 2, 4, Fault::BadContribution, 43, 4);
    only_the_faulty_is_convicted(&net, bad, false);
}

/// The relay sees mask disputes among an issued leaf's contributions (the mask commitments are
/// in clear), reports them to both members, withholds the bundle, and only the liar is
/// convicted; the client signs with a later attempt's bundle.
#[test]
fn a_member_disputing_everyone_in_an_issued_leaf_is_the_only_one_excluded() {
    let (net, bad) = issue_with_fault(7, 3, 5, Fault::DisputeEveryone, 44, 4);
    only_the_faulty_is_convicted(&net, bad, true);
}

#[test]
fn key_issuance_gives_the_client_a_bundle_only_it_can_open_and_it_signs_locally() {
    use seedfed_protocol::issue::{sign_issued, IssueBundle};
    use seedfed_protocol::ledger::{ClientRequest, TxBody};
    use x25519_dalek::{PublicKey, StaticSecret};

    let mut net = Net::new(4, &[], &[], 47);
    net.run_until(400, |net| net.st().newest.endorsed.is_some());
    let client_x = StaticSecret::from([0x33; 32]);
    let digest = [0x5e; 32];
    let body = TxBody::SignRequest {
        request: ClientRequest {
            client: id(&client_key()),
            digest,
            epoch: net.st().epoch,
            nonce: 1,
            issue_to: Some(PublicKey::from(&client_x).to_bytes()),
        }
        .sign(CHAIN, &client_key()),
    };
    let relay = 2;
    net.submit.push((relay, body));
    net.step();
    let leaf = *net.st().sign_requests.keys().next().unwrap();
    assert_eq!(net.st().sign_requests[&leaf].client, id(&client_key()));
    let bundle = |net: &Net| -> Option<IssueBundle> {
        net.nodes[relay]
            .agent
            .as_ref()
            .unwrap()
            .issue_bundle(net.st(), leaf)
    };
    net.run_until(40, |net| bundle(net).is_some());
    let b = bundle(&net).unwrap();
    assert_eq!(b.session.recipient.member, id(&client_key()));
    assert_eq!(
        b.contributions.len(),
        usize::from(net.st().key.leaf_threshold)
    );
    // Nobody signed: the relay cannot open what is sealed to the client.
    assert!(net.st().signatures.is_empty());
    let relay_x = StaticSecret::from(xseed(relay));
    let public = net.st().master_public_key().unwrap();
    assert!(sign_issued(&b, &relay_x, &public).is_err());
    // The client can, and its signature verifies (here and in hbs-lms).
    let sig = sign_issued(&b, &client_x, &public).unwrap();
    let hpk = public.encode_hss();
    assert!(hbs_lms::verify::<hbs_lms::Sha256_256>(&digest, &sig, &hpk).is_ok());
    assert_eq!(u64::from(LmsSignature::decode_hss(&sig).unwrap().q), leaf);
    // A tampered bundle gives an error, never a bad signature.
    let mut wrong = b.clone();
    wrong.path[0][0] ^= 1;
    assert!(sign_issued(&wrong, &client_x, &public).is_err());
    let mut short = b.clone();
    short.contributions.pop();
    assert!(sign_issued(&short, &client_x, &public).is_err());
    // Published through the relay, the ledger takes it and holders stop.
    net.submit.push((
        relay,
        TxBody::SignaturePublish {
            leaf,
            signature: sig.clone(),
        },
    ));
    net.step();
    assert_eq!(net.st().signatures[&leaf], sig);
}

/// A sector owner whose dealt seeds do not generate the tree it published, with no audit to
/// catch it (`audit_leaves` 0): the recipient's `LeafMismatch` (the rebuilt seed, and the
/// tree's key and path of the leaf, which give the owner's root) convicts it, the leaf is
/// retired, its sectors are withdrawn, and every request waiting in them is signed with a leaf
/// of another sector.
#[test]
fn an_owner_whose_tree_its_dealt_seeds_do_not_generate_is_convicted_and_its_requests_move_on() {
    let mut net = Net::with_key(
        4,
        &[],
        &[],
        48,
        KeyParams {
            audit_leaves: 0,
            ..key(2, 3)
        },
    );
    // The owner of sector 0, where the first leaves are, turns bad once it is chosen and
    // before it deals (dealing waits for the branch seed's partials, a block later at least).
    net.run_until(400, |net| net.st().newest.branch_owners.contains_key(&0));
    let owner = net.st().newest.branch_owners[&0];
    let bad = net.index_of(&owner);
    turn(&mut net, bad, Fault::BadTree);
    net.run_until(400, |net| net.st().newest.endorsed.is_some());
    assert_eq!(net.st().newest.sectors[&0].owner, owner);
    let relay = (bad + 1) % 4;
    submit_through(&mut net, &[relay], 3);
    let first: Vec<u64> = net.st().sign_requests.keys().copied().collect();
    assert_eq!(first.len(), 3);
    assert!(
        first.iter().all(|l| *l < 16),
        "allocated in sector 0: {first:?}"
    );
    net.run_until(200, |net| net.st().signatures.len() == 3);
    let st = net.st();
    // Convicted with the evidence, evicted; its sectors withdrawn; one leaf retired.
    assert_eq!(
        st.sign_convictions.keys().copied().collect::<Vec<_>>(),
        vec![owner]
    );
    let c = &st.sign_convictions[&owner];
    let ConvictionEvidence::Mismatch { evidence } = &c.evidence else {
        panic!("{c:?}")
    };
    assert!(first.contains(&evidence.leaf));
    assert!(!st.is_validator(&owner));
    let owned: BTreeSet<u32> = st
        .newest
        .sectors
        .iter()
        .filter(|(_, r)| r.owner == owner)
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(st.newest.withdrawn, owned);
    assert_eq!(
        st.newest.retired.keys().copied().collect::<Vec<_>>(),
        vec![evidence.leaf]
    );
    assert!(st.newest.retired_leaves().contains(&evidence.leaf));
    // Every request was signed once, in a sector the bad owner does not own, with a leaf
    // allocated after the first ones; none of the first leaves was signed.
    let public = st.master_public_key().unwrap();
    let layout = st
        .key
        .layout(&seedfed_protocol::ledger::chain_digest(&st.chain_id), 0)
        .unwrap();
    let mut nonces = BTreeSet::new();
    for (leaf, request) in &st.sign_requests {
        assert!(!first.contains(leaf));
        let sector = layout.sector_of(*leaf as u32).unwrap();
        assert!(
            !owned.contains(&sector),
            "leaf {leaf} in a withdrawn sector"
        );
        let sig = LmsSignature::decode_hss(&st.signatures[leaf]).unwrap();
        public.verify(&request.digest, &sig).unwrap();
        assert!(nonces.insert(request.request.1));
    }
    assert_eq!(nonces.len(), 3);
    assert!(first.iter().all(|l| !st.signatures.contains_key(l)));
    // The same evidence again: its leaf holds no request any more.
    let again = seedfed_protocol::ledger::TxBody::LeafMismatch {
        evidence: evidence.clone(),
    };
    assert!(matches!(
        net.try_tx(st, relay, st.height + 1, again),
        Err(seedfed_protocol::ledger::LedgerError::LeafNotAllocated(_))
    ));
}

/// The owner of the sector where requests are allocated is gone after the key is made, and
/// no node fetches a replica of any tree after publication (the node's replica task is off):
/// every request is still signed, because every holder kept the sector's tree before it
/// acknowledged the dealing, and the ledger published the sector only with acknowledgements
/// that name its root. Before, a tree lived only with its owner until replicas were fetched
/// after publication, and this run stalled on the dead owner's leaves.
#[test]
fn a_dead_owners_leaves_are_signed_from_the_trees_its_holders_kept_at_dealing() {
    let mut net = Net::new(4, &[], &[], 44);
    net.replicate_trees = false;
    net.run_until(400, |net| net.st().newest.endorsed.is_some());
    // Every acknowledging holder keeps the published tree.
    for (sector, record) in &net.st().newest.sectors {
        assert!(record.acked.len() >= 2, "sector {sector}");
        for holder in &record.acked {
            let i = net.index_of(holder);
            assert!(
                net.nodes[i].trees.contains_key(&(*sector, record.root)),
                "holder {i} acknowledged sector {sector} without its tree"
            );
        }
    }
    let owner = net.st().newest.sectors[&0].owner;
    let dead = net.index_of(&owner);
    net.nodes[dead].agent = None;
    submit_through(
        &mut net,
        &(0..4).filter(|i| *i != dead).collect::<Vec<_>>(),
        6,
    );
    let layout = net
        .st()
        .key
        .layout(
            &seedfed_protocol::ledger::chain_digest(&net.st().chain_id),
            0,
        )
        .unwrap();
    let in_dead_sectors = net
        .st()
        .sign_requests
        .keys()
        .filter(|l| net.st().newest.sectors[&layout.sector_of(**l as u32).unwrap()].owner == owner)
        .count();
    assert!(
        in_dead_sectors > 0,
        "no request in the dead owner's sectors"
    );
    net.run_until(200, |net| net.st().signatures.len() == 6);
    let st = net.st();
    let public = st.master_public_key().unwrap();
    for (leaf, request) in &st.sign_requests {
        let sig = LmsSignature::decode_hss(&st.signatures[leaf]).unwrap();
        public.verify(&request.digest, &sig).unwrap();
    }
    assert!(st.sign_convictions.is_empty());
}

/// An owner that sends wrong paths convicts nobody and stalls nothing: the relay refuses the
/// path (its key and path miss the sector root) and signs with the path of its own replica.
#[test]
fn a_wrong_path_from_the_owner_is_refused_and_the_relay_signs_with_its_replica() {
    let mut net = Net::new(4, &[], &[], 45);
    net.run_until(400, |net| net.st().newest.endorsed.is_some());
    let owner = net.st().newest.sectors[&0].owner;
    let bad = net.index_of(&owner);
    turn(&mut net, bad, Fault::BadPath);
    let relay = (bad + 1) % 4;
    submit_through(&mut net, &[relay], 3);
    net.run_until(60, |net| net.st().signatures.len() == 3);
    assert!(net.st().sign_convictions.is_empty());
    assert!(net.st().newest.retired.is_empty());
    assert!(
        net.refused.iter().any(|(to, from, why)| *to == relay
            && *from == owner
            && why
                .to_string()
                .contains("the leaf key and path do not give the sector root")),
        "the owner's wrong path was not refused: {:?}",
        net.refused
    );
}

/// Blame on a leaf of the second key: before, the ledger checked the evidence's commitment
/// path and the leaf's holders at the leaf id (key index in its high bits) instead of the
/// leaf's index in its key, so every blame after the first key was refused and the liar was
/// never convicted.
#[test]
fn a_wrong_contribution_to_a_leaf_of_the_second_key_is_convicted() {
    let mut params = key(2, 3);
    params.rotate_percent = 75;
    let mut net = Net::with_key(4, &[], &[], 49, params);
    net.run_until(400, |net| net.st().newest.endorsed.is_some());
    let usable = 32 - net.st().newest.retired_leaves().len() as u64;
    let epoch = net.st().epoch;
    for i in 0..usable {
        net.submit
            .push(((i % 4) as usize, request([(i + 1) as u8; 32], epoch, i)));
    }
    net.step();
    net.run_until(400, |net| {
        net.st().signatures.len() as u64 == usable
            && net.st().key_state(1).is_some_and(|k| k.endorsed.is_some())
    });
    assert_eq!(net.st().allocating_key(), Some(1));
    // Node 3 turns liar; node 0 relays four requests on key 1.
    let bad = 3;
    let snap = net.nodes[bad].agent.as_ref().unwrap().snapshot();
    net.nodes[bad].agent =
        Some(Agent::restore(&snap, seed(bad), xseed(bad), Fault::BadContribution).unwrap());
    net.faults.insert(bad, Fault::BadContribution);
    let epoch = net.st().epoch;
    for i in 0..4 {
        net.submit
            .push((0, request([0xa0 + i as u8; 32], epoch, usable + i)));
    }
    net.step();
    net.run_until(200, |net| {
        net.st().signatures.len() as u64 == usable + 4 && !net.st().sign_convictions.is_empty()
    });
    let st = net.st();
    let liar = id(&net.nodes[bad].key);
    let c = &st.sign_convictions[&liar];
    let ConvictionEvidence::Signing { leaf, .. } = &c.evidence else {
        panic!("{c:?}")
    };
    assert_eq!(split_leaf(*leaf).0, 1, "blamed on a leaf of key 1");
    assert!(!st.is_validator(&liar));
}

/// A quorum member re-sends its contribution every few blocks until the signature lands (the
/// relay may have restarted); before, each re-send was a new contribution (fresh masks' boxes,
/// a new signature: the holder's work again, and the relay opened each one again). Now a
/// re-send within one attempt is the same message, which the node does not queue twice.
#[test]
fn a_contribution_re_sent_within_one_attempt_is_the_same_message() {
    let mut net = Net::new(4, &[], &[], 44);
    net.run_until(400, |net| net.st().newest.endorsed.is_some());
    // The first leaves are in sector 0: a relay that does not own it.
    let relay = (net.index_of(&net.st().newest.sectors[&0].owner) + 1) % 4;
    let epoch = net.st().epoch;
    net.submit.push((relay, request([9; 32], epoch, 0)));
    net.step();
    let leaf = *net.st().sign_requests.keys().next().unwrap();
    // The owner's path never reaches the relay: the leaf stays open and its quorum re-sends.
    let st = net.st();
    let layout = st
        .key
        .layout(&seedfed_protocol::ledger::chain_digest(&st.chain_id), 0)
        .unwrap();
    let owner = st.newest.sectors[&layout.sector_of(leaf as u32).unwrap()].owner;
    let owner = net.index_of(&owner);
    assert_ne!(
        owner, relay,
        "the relay owns the leaf: the test proves nothing"
    );
    net.drop_direct.insert((owner, relay));
    net.sent = Some(Vec::new());
    // Less than one attempt (`SIGN_ATTEMPT_BLOCKS`, 8): the first send and one re-send.
    for _ in 0..6 {
        net.step();
    }
    assert!(!net.st().signatures.contains_key(&leaf));
    let mut by_holder: std::collections::BTreeMap<usize, Vec<Vec<u8>>> = Default::default();
    for (i, j, payload) in net.sent.take().unwrap() {
        if j == relay && i != relay && i != owner {
            by_holder.entry(i).or_default().push(payload.to_vec());
        }
    }
    assert!(
        by_holder.values().any(|sent| sent.len() >= 2),
        "no re-send seen: {:?}",
        by_holder.values().map(Vec::len).collect::<Vec<_>>()
    );
    for sent in by_holder.values() {
        assert!(sent.windows(2).all(|w| w[0] == w[1]));
    }
}
