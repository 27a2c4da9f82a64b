//! Key generation in memory, on the federation of `common` (real ledgers and agents, trivial
//! consensus, direct messages delivered one step later): branch-seed partials, sectors dealt
//! to the ledger's holders, acknowledged sector roots, the master root and its checkpoint; a
//! bad dealing proven on the ledger by its holder, which convicts the owner. Every loop is
//! bounded.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use crate::common;

use std::collections::BTreeMap;

use common::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use seedfed_protocol::agent::{Agent, Fault, Payload};
use seedfed_protocol::audit::leaf_matches;
use seedfed_protocol::checkpoint::MasterKey;
use seedfed_protocol::dealing::{self, chunk_bits, DealComplaint, HeldSector};
use seedfed_protocol::ledger::{
    chain_digest, decode, ConvictionEvidence, KeyParams, LedgerState, MemberStatus,
};
use seedfed_protocol::light_client;
use seedfed_protocol::lmots::LeafSeed;
use seedfed_protocol::master::Master;
use seedfed_protocol::member::MemberId;
use seedfed_protocol::sector::Sector;
use seedfed_protocol::shamir::{self, Commitment, LeafSecret, Share};

fn key(h: u8, p: u8, k: u16, r: u16, a: u16) -> KeyParams {
    KeyParams {
        tree_height: h,
        sector_bits: p,
        leaf_threshold: k,
        leaf_holders: r,
        ack_threshold: a,
        audit_leaves: KeyParams::DEFAULT_AUDIT_LEAVES,
        sector_window: seedfed_protocol::ledger::DEFAULT_SECTOR_WINDOW,
        rotate_percent: 0,
    }
}

/// Runs until the master root is final and a checkpoint of it is signed; checks it everywhere.
fn until_master_checkpoint(net: &mut Net) -> [u8; 32] {
    net.run_until(400, |net| {
        let st = net.st();
        st.newest
            .master_root
            .is_some_and(|r| st.checkpoints.iter().any(|c| c.body.master_key.root == r))
    });
    let st = net.st();
    let root = st.newest.master_root.unwrap();
    for node in &net.nodes {
        assert_eq!(node.ledger.state.newest.master_root, Some(root));
    }
    let layout = st.key.layout(&chain_digest(CHAIN), 0).unwrap();
    let roots: Vec<[u8; 32]> = st.newest.sectors.values().map(|s| s.root).collect();
    let master = Master::from_sector_roots(layout, &roots).unwrap();
    assert_eq!(master.root(), root);
    let cp = st
        .checkpoints
        .iter()
        .find(|c| c.body.master_key.root == root)
        .unwrap();
    let verified = light_client::verify_checkpoint(
        &cp.group_key,
        &chain_digest(CHAIN),
        &cp.body.checkpoint().to_bytes(),
        &cp.signature.0,
    )
    .unwrap();
    // The checkpoint signs the whole RFC 8554 public key (type codes, I, root), and its HSS
    // encoding is the master tree's public key.
    assert_eq!(verified.master_key, MasterKey::from(&master.public_key()));
    assert_eq!(st.master_public_key(), Some(master.public_key()));
    assert_eq!(
        verified.master_key.encode_hss().unwrap(),
        master.public_key().encode_hss()
    );
    check_audits(st, &master);
    root
}

/// Every sector passed its audit: `audit_leaves` distinct leaves of the sector, each with at
/// least `k` shares in clear from its own holders that rebuild a seed whose one-time key is
/// that leaf of the master tree; none of them is allocatable.
fn check_audits(st: &LedgerState, master: &Master) {
    let k = usize::from(st.key.leaf_threshold);
    let per_sector = st.key.leaves() >> st.key.sector_bits;
    assert!(st.audits_passed());
    assert_eq!(st.newest.audits.len(), st.newest.sectors.len());
    for (sector, audit) in &st.newest.audits {
        let rec = &st.newest.sectors[sector];
        assert_eq!(audit.leaves.len(), usize::from(st.key.audit_leaves));
        for (leaf, la) in &audit.leaves {
            assert_eq!(leaf / per_sector, u64::from(*sector));
            assert!(la.passed && la.shares.len() >= k, "{la:?}");
            let holders = rec.basis.leaf_holders(*leaf, st.key.leaf_holders).unwrap();
            let shares: Vec<Share> = la
                .shares
                .iter()
                .map(|(m, v)| {
                    assert!(holders.contains(m));
                    Share::new(*m, v).unwrap()
                })
                .collect();
            let seed = shamir::reconstruct(&shares[..k], k).unwrap();
            let q = *leaf as u32;
            let public = master.public_key();
            let path = la.path.as_ref().unwrap();
            assert!(leaf_matches(
                public.ots_type,
                &public.id,
                u32::from(st.key.tree_height),
                q,
                &seed,
                path,
                &rec.root,
            ));
        }
    }
    assert_eq!(
        st.newest.retired_leaves().len(),
        st.newest.sectors.len() * usize::from(st.key.audit_leaves)
    );
}

/// The holder record `holder` kept for `sector` of the ledger.
fn held(net: &Net, st: &LedgerState, holder: &MemberId, sector: u32) -> Option<HeldSector> {
    let rec = &st.newest.sectors[&sector];
    let node = &net.nodes[net.index_of(holder)];
    let bytes = node.kept.get(&(sector, rec.commitments_root))?;
    Some(decode(bytes).unwrap())
}

/// Every leaf: each acknowledging holder of it kept a share that fits the leaf's commitment
/// (the commitments hash to the ledger's commitments root; each holder's shares are checked in
/// one batch, which names any bad one); `k` of them rebuild leaf seeds that regenerate exactly
/// the sector root on the ledger (for the first `rebuild` sectors). Returns the holders that
/// kept nothing.
fn check_shares(net: &Net, rebuild: usize) -> Vec<MemberId> {
    let st = net.st().clone();
    let layout = st.key.layout(&chain_digest(CHAIN), 0).unwrap();
    let (k, r) = (usize::from(st.key.leaf_threshold), st.key.leaf_holders);
    let mut missing = Vec::new();
    for (n, (sector, rec)) in st.newest.sectors.iter().enumerate() {
        let leaves = layout.sector_leaves(*sector).unwrap();
        let range = u64::from(leaves.start)..u64::from(leaves.end);
        let holders = rec.basis.holders_of(range.clone(), r).unwrap();
        let mut records: BTreeMap<MemberId, HeldSector> = BTreeMap::new();
        for h in holders.iter().flatten() {
            if records.contains_key(h) {
                continue;
            }
            match held(net, &st, h, *sector) {
                Some(rec_h) => {
                    records.insert(*h, rec_h);
                }
                None => missing.push(*h),
            }
        }
        // The commitments every holder kept are the ones the ledger's root names.
        for h in records.values() {
            let bits = chunk_bits(layout.sector_height());
            let roots: Vec<[u8; 32]> = h
                .commitments
                .chunks(1 << bits)
                .enumerate()
                .map(|(c, cs)| dealing::chunk_root(range.start + ((c as u64) << bits), cs).unwrap())
                .collect();
            assert_eq!(
                dealing::commitments_root(range.start, bits, &roots),
                rec.commitments_root
            );
        }
        // So every holder kept the same commitments: decode them once, and check each holder's
        // shares against them.
        if let Some(first) = records.values().next() {
            let commitments: Vec<Commitment> = first
                .commitments
                .iter()
                .map(|c| c.decode().unwrap())
                .collect();
            let mut rng = ChaCha20Rng::seed_from_u64(u64::from(*sector));
            for held in records.values() {
                assert_eq!(held.commitments, first.commitments);
                let items: Vec<(&Share, &Commitment)> = held
                    .shares
                    .iter()
                    .map(|(leaf, share)| (share, &commitments[(leaf - range.start) as usize]))
                    .collect();
                shamir::verify_batch(&items, k, &mut rng).unwrap();
            }
        }
        let mut seeds: Vec<LeafSeed> = Vec::new();
        for (leaf, hs) in range.clone().zip(&holders) {
            let mut shares: Vec<Share> = Vec::new();
            for h in hs {
                let Some(held) = records.get(h) else { continue };
                let at = held.shares.binary_search_by_key(&leaf, |(l, _)| *l);
                shares.push(held.shares[at.unwrap()].1.clone());
            }
            assert!(
                shares.len() >= usize::from(st.key.ack_threshold),
                "leaf {leaf}"
            );
            if n < rebuild {
                seeds.push(shamir::reconstruct(&shares[..k], k).unwrap().lms_seed());
            }
        }
        if n >= rebuild {
            continue;
        }
        let tree = Sector::generate_from_seeds(layout, *sector, 1, &seeds).unwrap();
        assert_eq!(tree.root(), rec.root, "sector {sector}");
    }
    missing
}

fn no_keygen_work_left(net: &Net) {
    for node in &net.nodes {
        if let Some(a) = node.agent.as_ref() {
            let s = a.status();
            assert!(
                s.keygen_owned.is_empty() && s.keygen_holding.is_empty(),
                "{s:?}"
            );
        }
    }
}

#[test]
fn four_validators_generate_a_key() {
    let mut net = Net::with_key(4, &[], &[], 21, key(10, 2, 2, 3, 3));
    until_master_checkpoint(&mut net);
    assert!(check_shares(&net, usize::MAX).is_empty());
    no_keygen_work_left(&net);
    // Every holder acknowledged every sector it holds leaves of.
    for rec in net.st().newest.sectors.values() {
        assert_eq!(rec.acked.len(), 4, "{:?}", rec.acked);
    }
    assert!(net.refused.is_empty(), "{:?}", net.refused);
}

#[test]
fn seven_validators_generate_a_key_in_chunks() {
    // 2^13 leaves per sector: eight chunks of 2^10 per batch stream.
    let mut net = Net::with_key(7, &[], &[], 22, key(15, 2, 3, 5, 4));
    until_master_checkpoint(&mut net);
    // Rebuilding one sector of 2^13 leaves from shares is enough here (and the slow part).
    assert!(check_shares(&net, 1).is_empty());
    no_keygen_work_left(&net);
}

#[test]
fn a_holder_that_never_acknowledges_is_left_out_and_the_key_completes() {
    let mut net = Net::with_key(7, &[], &[(3, Fault::NeverAck)], 23, key(10, 2, 3, 5, 4));
    until_master_checkpoint(&mut net);
    let silent = id(&net.nodes[3].key);
    for rec in net.st().newest.sectors.values() {
        assert!(!rec.acked.contains(&silent));
        assert!(rec.acked.len() >= 4);
    }
    // It still kept its shares (it only withheld the acknowledgement).
    check_shares(&net, usize::MAX);
}

/// The node does not queue a message to a peer while the same payload is queued or in flight
/// to it (`node::chain::agent::send_direct`): that holds only if the owner re-sends its
/// batches as the same payloads (clones sharing the bytes it keeps), not new copies.
#[test]
fn an_owner_re_sends_its_batches_as_the_same_payloads() {
    let silent = 3;
    let mut net = Net::with_key(
        7,
        &[],
        &[(silent, Fault::NeverAck)],
        23,
        key(10, 2, 3, 5, 4),
    );
    net.sent = Some(Vec::new());
    until_master_checkpoint(&mut net);
    // Batches to the holder that never acknowledges: re-sent until the sector lands. (A
    // sector's batch carries its 2^8 commitments: far larger than any other direct message.)
    let batches: Vec<(usize, Payload)> = net
        .sent
        .take()
        .unwrap()
        .into_iter()
        .filter(|(_, to, p)| *to == silent && p.len() > 8 << 10)
        .map(|(from, _, p)| (from, p))
        .collect();
    let mut resent = 0;
    for (n, (from, p)) in batches.iter().enumerate() {
        for (from2, p2) in &batches[..n] {
            if from == from2 && p == p2 {
                assert!(p.same(p2), "a re-send of a batch is a new copy");
                resent += 1;
            }
        }
    }
    assert!(resent > 0, "no batch was re-sent");
}

#[test]
fn an_owner_whose_seeds_do_not_match_its_tree_is_convicted_by_the_audit() {
    // Same run as the bad-share test up to the dealing: validator 2 owns a sector.
    let bad = 2;
    let mut net = Net::with_key(7, &[], &[(bad, Fault::BadTree)], 24, key(10, 2, 3, 5, 4));
    let owner = id(&net.nodes[bad].key);
    // Its shares check out, so its sector lands; the audit then convicts it.
    net.run_until(300, |net| {
        net.st().newest.keygen_convictions.contains_key(&owner)
    });
    let st = net.st().clone();
    let conviction = &st.newest.keygen_convictions[&owner];
    let ConvictionEvidence::Audit {
        leaf,
        root,
        seed,
        path,
    } = &conviction.evidence
    else {
        panic!("conviction by audit: {:?}", conviction.evidence);
    };
    assert_eq!(
        conviction.reason,
        "an audited leaf's seed does not generate the sector's leaf"
    );
    // Anyone can check the evidence: the rebuilt seed, with the owner's own path, does not
    // give the root it published.
    let layout = st.key.layout(&chain_digest(CHAIN), 0).unwrap();
    let seed = LeafSecret::from_canonical_bytes(seed).unwrap();
    assert!(!leaf_matches(
        layout.ots_type,
        &layout.id,
        layout.height(),
        *leaf as u32,
        &seed,
        path,
        root
    ));
    // Evicted; its sector discarded and handed on.
    assert_eq!(st.members[&owner].status, MemberStatus::Evicted);
    assert!(!st.newest.sectors.contains_key(&conviction.sector));
    assert!(!st.newest.audits.contains_key(&conviction.sector));
    assert_ne!(st.newest.branch_owners[&conviction.sector], owner);
    // The key completes from honest owners, every sector audited.
    until_master_checkpoint(&mut net);
    let st = net.st();
    assert!(st.newest.sectors.values().all(|rec| rec.owner != owner));
    assert!(check_shares(&net, usize::MAX).is_empty());
}

#[test]
fn a_bad_share_convicts_its_owner_on_the_ledger_and_another_deals_the_branch() {
    let bad = 2;
    let mut net = Net::with_key(
        7,
        &[],
        &[(bad, Fault::BadDealShare)],
        24,
        key(10, 2, 3, 5, 4),
    );
    let owner = id(&net.nodes[bad].key);
    // The holder of the corrupted share proves it on the ledger before the owner can publish.
    net.run_until(200, |net| {
        net.st().newest.keygen_convictions.contains_key(&owner)
    });
    let st = net.st().clone();
    let conviction = &st.newest.keygen_convictions[&owner];
    assert_eq!(conviction.reason, "share fails its commitment");
    assert_eq!(conviction.key, 0);
    // The evidence names the owner, its batch to the complaining holder, and one leaf.
    let ConvictionEvidence::Complaint { holder, complaint } = &conviction.evidence else {
        panic!("conviction by complaint: {:?}", conviction.evidence);
    };
    let complaint: DealComplaint = decode(complaint).unwrap();
    assert_eq!(complaint.id.owner, owner);
    assert_eq!(complaint.id.sector, conviction.sector);
    assert_eq!(complaint.holder, *holder);
    assert!(complaint.evidence.is_some());
    // The owner is evicted and its branch went to another validator, not yet published.
    assert_eq!(st.members[&owner].status, MemberStatus::Evicted);
    let next = st.newest.branch_owners[&conviction.sector];
    assert_ne!(next, owner);
    assert!(st.is_validator(&next));
    assert!(!st.newest.sectors.contains_key(&conviction.sector));
    assert!(!st.newest.branch_owners.values().any(|o| *o == owner));
    // The key still completes, every sector from an honest owner whose shares rebuild it.
    until_master_checkpoint(&mut net);
    let st = net.st().clone();
    assert_eq!(st.newest.sectors[&conviction.sector].owner, next);
    assert!(st.newest.sectors.values().all(|rec| rec.owner != owner));
    assert!(check_shares(&net, usize::MAX).is_empty());
    // Everyone else's work on the convicted owner's dealing is gone.
    for (i, node) in net.nodes.iter().enumerate() {
        if i != bad {
            let s = node.agent.as_ref().unwrap().status();
            assert!(
                s.keygen_owned.is_empty() && s.keygen_holding.is_empty(),
                "{s:?}"
            );
        }
    }
}

#[test]
fn an_owner_restarted_mid_dealing_deals_the_same_sector_again() {
    let mut net = Net::with_key(4, &[], &[], 25, key(10, 2, 2, 3, 3));
    // Run until some owner has dealt, then restart it from its snapshot (its key-generation
    // work is in memory only).
    net.run_until(200, |net| {
        net.nodes.iter().any(|n| {
            n.agent
                .as_ref()
                .is_some_and(|a| !a.status().keygen_owned.is_empty())
        }) && net.nodes.iter().any(|n| !n.kept.is_empty())
    });
    let i = net
        .nodes
        .iter()
        .position(|n| {
            n.agent
                .as_ref()
                .is_some_and(|a| !a.status().keygen_owned.is_empty())
        })
        .unwrap();
    let snap = net.nodes[i].agent.as_ref().unwrap().snapshot();
    net.nodes[i].agent = Some(Agent::restore(&snap, seed(i), xseed(i), Fault::None).unwrap());
    until_master_checkpoint(&mut net);
    assert!(check_shares(&net, usize::MAX).is_empty());
}

/// Key `key(10, 2, 3, 5, 4)` with a sector window of `window` blocks.
fn key_with_window(window: u64) -> KeyParams {
    KeyParams {
        sector_window: window,
        rotate_percent: 0,
        ..key(10, 2, 3, 5, 4)
    }
}

/// The sectors `m` owns in the current assignment.
fn owned_by(st: &LedgerState, m: &MemberId) -> Vec<u32> {
    st.newest
        .branch_owners
        .iter()
        .filter(|(_, o)| *o == m)
        .map(|(s, _)| *s)
        .collect()
}

#[test]
fn a_silent_owner_misses_its_window_and_the_others_deal_its_sectors() {
    const WINDOW: u64 = 16;
    let silent = 3;
    // Validator 3 runs no agent and signs nothing (a node that is down). The first seed whose
    // epoch-1 beacon gives it a sector (the search is deterministic and bounded).
    let (mut net, lost) = (30..50)
        .find_map(|seed| {
            let mut net = Net::with_key(7, &[silent], &[], seed, key_with_window(WINDOW));
            net.run_until(200, |net| net.st().newest.assignment_epoch == Some(1));
            let lost = owned_by(net.st(), &id(&net.nodes[silent].key));
            (!lost.is_empty()).then_some((net, lost))
        })
        .unwrap();
    let who = id(&net.nodes[silent].key);
    let assigned_at = net.st().height;
    net.run_until(100, |net| net.st().newest.keygen_misses.contains_key(&who));
    let st = net.st().clone();
    // The window opened at the assignment's block and closed WINDOW blocks later.
    let miss = &st.newest.keygen_misses[&who];
    assert_eq!(miss.height, assigned_at + WINDOW + 1);
    assert_eq!((miss.key, miss.epoch), (0, 1));
    assert!(lost.contains(&miss.sector));
    // Not evicted, but it owns nothing any more; the honest owners did not miss.
    assert_eq!(st.members[&who].status, MemberStatus::Active);
    assert!(owned_by(&st, &who).is_empty());
    assert_eq!(st.newest.keygen_misses.len(), 1);
    // The agents of the new owners noticed: the key completes with every sector dealt by a
    // present validator.
    until_master_checkpoint(&mut net);
    let st = net.st().clone();
    assert!(st.newest.sectors.values().all(|rec| rec.owner != who));
    assert_eq!(st.newest.keygen_misses.len(), 1);
    // Only the silent validator kept nothing; every leaf still has `a` checked shares.
    let missing = check_shares(&net, usize::MAX);
    assert!(missing.iter().all(|m| *m == who), "{missing:?}");
    no_keygen_work_left(&net);
}

#[test]
fn a_cut_off_owner_loses_its_branch_and_comes_back_as_a_holder() {
    const WINDOW: u64 = 16;
    let mut net = Net::with_key(7, &[], &[], 26, key_with_window(WINDOW));
    net.run_until(200, |net| net.st().newest.assignment_epoch == Some(1));
    // The owner of sector 0 receives nothing from now on (its agent has not seen the
    // assignment yet): no partials, so it cannot deal, and it is late.
    let owner = net.st().newest.branch_owners[&0];
    let x = net.index_of(&owner);
    let lost = owned_by(net.st(), &owner);
    for i in (0..7).filter(|&i| i != x) {
        net.drop_direct.insert((i, x));
    }
    net.run_until(100, |net| {
        net.st().newest.keygen_misses.contains_key(&owner)
    });
    let st = net.st().clone();
    assert_eq!(st.newest.keygen_misses.len(), 1);
    for s in &lost {
        assert_ne!(st.newest.branch_owners[s], owner);
    }
    // Its agent dropped the sectors it lost at the next block.
    net.step();
    assert!(net.nodes[x]
        .agent
        .as_ref()
        .unwrap()
        .status()
        .keygen_owned
        .is_empty());
    // Reachable again: the key completes, it deals nothing, and it holds shares.
    net.drop_direct.clear();
    until_master_checkpoint(&mut net);
    let st = net.st().clone();
    assert!(st.newest.sectors.values().all(|rec| rec.owner != owner));
    assert!(owned_by(&st, &owner).is_empty());
    // It kept nothing of the sectors that landed while it was cut off, and holds the ones
    // dealt after.
    let missing = check_shares(&net, usize::MAX);
    assert!(missing.iter().all(|m| *m == owner), "{missing:?}");
    assert!(st
        .newest
        .sectors
        .values()
        .any(|rec| rec.acked.contains(&owner)));
    no_keygen_work_left(&net);
}
