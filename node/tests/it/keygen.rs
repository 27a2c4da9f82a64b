//! Key generation on real `seedfed` processes over loopback libp2p: validators send branch-seed
//! partials to owners, owners generate and deal their sectors to the ledger's holders, holders
//! keep their shares sealed and acknowledge, sector roots and the master root land, and a
//! checkpoint signs the key. Afterwards every node's store is read with its passphrase: every
//! leaf has at least `a` verified shares at its ledger-chosen holders, `k` of them rebuild leaf
//! seeds that regenerate exactly the sector roots on the ledger, and no leaf seed or share value
//! appears in any raw store file. With 7 validators, the same holds when one is killed during
//! generation (its branch moves through the sector window), one deals a bad share (a holder's
//! complaint convicts it on the ledger) or one never acknowledges (it is left out of the
//! acknowledged lists).

#![allow(clippy::unwrap_used)] // test helpers: a failed setup should panic

use crate::common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use seedfed_node::at_rest::AtRestKey;
use seedfed_node::chain::storage::ChainStore;
use seedfed_node::chain::ChainStatus;
use seedfed_node::genesis::{EpochParams, Genesis, KeySection};
use seedfed_node::keystore::{self, Passphrase};
use seedfed_protocol::assignment::{branch_owners, Weighted};
use seedfed_protocol::dealing::{DealComplaint, HeldSector};
use seedfed_protocol::ledger::{
    chain_digest, decode, ConvictionEvidence, LedgerState, MemberStatus,
};
use seedfed_protocol::lmots::LeafSeed;
use seedfed_protocol::member::MemberId;
use seedfed_protocol::sector::Sector;
use seedfed_protocol::shamir::{self, Share};

/// What one stopped node's store holds: its ledger, its held sectors, opened with its
/// passphrase, and the sectors whose tree it keeps.
struct Opened {
    ledger: LedgerState,
    held: BTreeMap<u32, HeldSector>,
    trees: BTreeSet<u32>,
}

fn open_node(home: &Path, pass: &Path, genesis: &Genesis) -> Opened {
    let pass = Passphrase::new(std::fs::read_to_string(pass).unwrap());
    let (identity, _) = keystore::load(&home.join("keystore.json"), &pass).unwrap();
    let seed = seedfed_node::node::identity_seed(&identity).unwrap();
    let key = AtRestKey::derive(&seed, &identity.x25519.to_bytes());
    let mut store = ChainStore::new(seedfed_node::node::open_store(&home.join("data")).unwrap());
    let ledger = store
        .load(&genesis.to_ledger().unwrap())
        .unwrap()
        .ledger
        .state;
    let mut held = BTreeMap::new();
    let mut named = BTreeSet::new();
    for (sector, root) in store.held_index().unwrap() {
        let rec = store.held(&key, sector, &root).unwrap().unwrap();
        assert_eq!(ledger.newest.sectors[&sector].commitments_root, root);
        held.insert(sector, rec);
        let index = store.held_index_of(sector, &root).unwrap().unwrap();
        named.extend(index.chunk_roots.iter().map(|r| (sector, *r)));
    }
    // Every chunk kept is one of a kept sector's: those of dealings that lost were deleted.
    let chunks: BTreeSet<(u32, [u8; 32])> = store.held_chunk_index().unwrap().into_iter().collect();
    assert_eq!(chunks, named, "held chunks that no kept index names");
    // Every tree kept is a published sector's: those of dealings that lost were deleted.
    let mut trees = BTreeSet::new();
    for (sector, root) in store.tree_index().unwrap() {
        assert_eq!(
            ledger.newest.sectors[&sector].root, root,
            "tree of sector {sector}"
        );
        trees.insert(sector);
    }
    Opened {
        ledger,
        held,
        trees,
    }
}

/// Every bytes of every regular file under `dir`.
fn raw_files(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.extend(std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The store-level checks: every tree kept is a published sector's, and every holder that
/// acknowledged a sector keeps its tree; for every leaf of every sector, the ledger-chosen
/// holders that acknowledged hold a share that fits its commitment (at least `a` per leaf),
/// `k` of them rebuild seeds that regenerate the sector's root; every sector passed its audit;
/// no seed or share value of a leaf that was not audited is in any raw file. `nodes` are the
/// indices of the homes to open (the others, e.g. a killed validator, are left out; every
/// holder that acknowledged must be among them); the first one's ledger is the reference.
/// Returns the nodes opened.
fn check_stores(
    homes: &[PathBuf],
    nodes: &[usize],
    pass: &Path,
    genesis: &Genesis,
) -> Vec<(MemberId, Opened)> {
    let nodes: Vec<(MemberId, Opened)> = nodes
        .iter()
        .map(|&i| (member(genesis, i), open_node(&homes[i], pass, genesis)))
        .collect();
    let st = &nodes[0].1.ledger;
    let layout = st.key.layout(&chain_digest(&st.chain_id), 0).unwrap();
    let (k, r, a) = (
        usize::from(st.key.leaf_threshold),
        st.key.leaf_holders,
        usize::from(st.key.ack_threshold),
    );
    let by_member: BTreeMap<MemberId, &Opened> = nodes.iter().map(|(m, o)| (*m, o)).collect();
    // Every secret value seen (leaf seeds and shares), to look for in the raw files at the end;
    // the audited leaves are retired and their shares are on the ledger in clear by design.
    let mut secrets: HashSet<[u8; 32]> = HashSet::new();
    assert_eq!(st.newest.sectors.len() as u32, st.key.sectors());
    let retired = st.newest.retired_leaves();
    assert!(st.audits_passed());
    assert_eq!(
        retired.len(),
        st.newest.sectors.len() * usize::from(st.key.audit_leaves)
    );
    for (sector, rec) in &st.newest.sectors {
        let leaves = layout.sector_leaves(*sector).unwrap();
        let range = u64::from(leaves.start)..u64::from(leaves.end);
        let holders = rec.basis.holders_of(range.clone(), r).unwrap();
        let mut seeds: Vec<LeafSeed> = Vec::new();
        // Every holder that acknowledged keeps the tree (its acknowledgement names the root).
        for h in rec.acked.iter().filter(|h| by_member.contains_key(*h)) {
            assert!(
                by_member[h].trees.contains(sector),
                "a holder acknowledged sector {sector} without keeping its tree"
            );
        }
        for (leaf, hs) in range.clone().zip(&holders) {
            let i = (leaf - range.start) as usize;
            let mut shares: Vec<Share> = Vec::new();
            for h in hs.iter().filter(|h| rec.acked.contains(h)) {
                let held = &by_member[h].held[sector];
                let (_, share) = held.shares.iter().find(|(l, _)| *l == leaf).unwrap();
                let commitment = held.commitments[i].decode().unwrap();
                shamir::verify_share(share, &commitment, k).unwrap();
                shares.push(share.clone());
            }
            assert!(shares.len() >= a, "leaf {leaf}: {} shares", shares.len());
            let secret = shamir::reconstruct(&shares[..k], k).unwrap();
            if !retired.contains(&leaf) {
                secrets.insert(*secret.to_bytes());
                secrets.extend(shares.iter().map(|s| *s.value_bytes()));
            }
            seeds.push(secret.lms_seed());
        }
        let tree = Sector::generate_from_seeds(layout, *sector, 1, &seeds).unwrap();
        assert_eq!(tree.root(), rec.root, "sector {sector}");
    }
    for h in homes {
        if !h.join("data").exists() {
            continue;
        }
        let raw = raw_files(&h.join("data"));
        let found = raw.windows(32).filter(|w| secrets.contains(*w)).count();
        assert_eq!(
            found,
            0,
            "{}: a leaf seed or share is on disk in clear",
            h.display()
        );
    }
    nodes
}

/// Stops every process and the bootstrap node, then checks the stores of `nodes` (see
/// [`check_stores`]).
async fn stop_and_check(mut fed: Fed, nodes: &[usize]) -> Vec<(MemberId, Opened)> {
    fed.procs.clear();
    fed.boot.stop().await;
    check_stores(&fed.homes, nodes, &fed.pass, &fed.genesis)
}

/// A key of 2^10 leaves in 4 sectors, 3-of-5 (4 acknowledgements), for 7 validators.
fn key_3_of_5() -> KeySection {
    KeySection {
        tree_height: 10,
        sector_bits: 2,
        leaf_threshold: 3,
        leaf_holders: 5,
        ack_threshold: None,
        ..KeySection::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_generate_a_key_across_processes() {
    // 2^10 leaves in 4 sectors, 2-of-3, 3 acknowledgements.
    let fed = Fed::start(&Spec::new(4), &[]).await;
    let all: Vec<usize> = (0..4).collect();
    fed.key_generated(&all).await;
    stop_and_check(fed, &all).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_validators_generate_a_key_across_processes() {
    let spec = Spec {
        key: key_3_of_5(),
        ..Spec::new(7)
    };
    let fed = Fed::start(&spec, &[]).await;
    let all: Vec<usize> = (0..7).collect();
    let c = fed.key_generated(&all).await;
    assert!(c.key.missed.is_empty() && c.key.convictions.is_empty());
    let nodes = stop_and_check(fed, &all).await;
    // Every holder of a sector acknowledged it.
    let st = &nodes[0].1.ledger;
    for (sector, rec) in &st.newest.sectors {
        let held_by = nodes.iter().filter(|(_, o)| o.held.contains_key(sector));
        assert_eq!(rec.acked.len(), held_by.count(), "sector {sector}");
        assert!(rec.acked.len() >= 5);
    }
}

/// The owners of every sector in the epoch that `c.next_beacon` will start, computed as the
/// ledger will (stake-weighted rendezvous over the validators).
fn next_epoch_owners(c: &ChainStatus) -> Vec<MemberId> {
    let beacon: [u8; 32] = hex::decode(c.next_beacon.as_ref().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let members: Vec<Weighted> = c
        .validators
        .iter()
        .map(|v| Weighted {
            member: MemberId(hex::decode(&v.id).unwrap().try_into().unwrap()),
            stake: v.stake,
        })
        .collect();
    branch_owners(&beacon, c.key.sectors_total, &members).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_killed_during_generation_loses_its_branch_and_the_key_completes() {
    // A short sector window, and epochs long enough that the key completes in epoch 1.
    let spec = Spec {
        key: KeySection {
            sector_window: 24,
            ..key_3_of_5()
        },
        epochs: EpochParams {
            epoch_min_blocks: 50,
            ..EpochParams::default()
        },
        ..Spec::new(7)
    };
    let t0 = std::time::Instant::now();
    let mut fed = Fed::start_with(&spec, &[], ENV_DEAD_PROPOSER).await;
    // Epoch 1's beacon is on the ledger blocks before epoch 1 starts: it fixes the owners.
    let c = wait_chain(&fed.homes[0], 120, "the epoch-1 beacon", |c| {
        c.next_beacon.is_some()
    })
    .await;
    assert_eq!(c.epoch, 0);
    eprintln!("beacon at {:?}, height {}", t0.elapsed(), c.height);
    let owners = next_epoch_owners(&c);
    let victim = fed.index_of(&owners[0]);
    let victim_id = fed.member(victim);
    let lost: Vec<u32> = (0..owners.len() as u32)
        .filter(|s| owners[*s as usize] == victim_id)
        .collect();
    // The owner of sector 0 freezes now, so it cannot land anything, and is killed once the
    // assignment that gives it the sector is on the ledger.
    let pid = fed.procs[victim].as_ref().unwrap().0.id();
    kill(Pid::from_raw(pid as i32), Signal::SIGSTOP).unwrap();
    let alive: Vec<usize> = (0..7).filter(|&i| i != victim).collect();
    let a = wait_chain(&fed.homes[alive[0]], 60, "the epoch-1 assignment", |c| {
        c.assignment_epoch == Some(1)
    })
    .await;
    let expected: Vec<String> = owners.iter().map(|m| hex::encode(m.as_bytes())).collect();
    assert_eq!(a.assignment, expected);
    eprintln!("assignment at {:?}, height {}", t0.elapsed(), a.height);
    fed.procs[victim] = None;
    let c = fed.key_generated(&alive).await;
    eprintln!("key at {:?}, height {}", t0.elapsed(), c.height);
    // It missed its window; its sectors were dealt by others.
    assert_eq!(c.key.missed, vec![fed.hex(victim)]);
    assert!(c.key.convictions.is_empty());
    for s in &lost {
        assert_ne!(c.key.sectors[*s as usize].owner, fed.hex(victim));
    }
    let nodes = stop_and_check(fed, &alive).await;
    let st = &nodes[0].1.ledger;
    let miss = &st.newest.keygen_misses[&victim_id];
    assert_eq!(miss.epoch, 1);
    assert!(lost.contains(&miss.sector));
    // Not evicted: missing is not misbehaviour; it acknowledged nothing.
    assert_eq!(st.members[&victim_id].status, MemberStatus::Active);
    assert!(st
        .newest
        .sectors
        .values()
        .all(|r| !r.acked.contains(&victim_id)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_dealer_is_convicted_on_the_ledger_and_the_key_completes() {
    // The bad dealer has a third of the stake and the key 32 sectors, so it owns some: the
    // chance it owns none is (2/3)^32, about 2e-6.
    let bad = 2;
    let mut stakes = vec![100; 7];
    stakes[bad] = 300;
    let spec = Spec {
        key: KeySection {
            sector_bits: 5,
            ..key_3_of_5()
        },
        stakes,
        ..Spec::new(7)
    };
    let fed = Fed::start(&spec, &[(bad, &["--fault", "bad-deal-share"])]).await;
    let honest: Vec<usize> = (0..7).filter(|&i| i != bad).collect();
    let c = fed.key_generated(&honest).await;
    let convicted: Vec<&str> = c
        .key
        .convictions
        .iter()
        .map(|x| x.member.as_str())
        .collect();
    assert_eq!(convicted, vec![fed.hex(bad).as_str()]);
    assert_eq!(c.key.convictions[0].by, "complaint");
    assert!(c.validators.iter().all(|v| v.id != fed.hex(bad)));
    assert!(c.key.sectors.iter().all(|s| s.owner != fed.hex(bad)));
    let bad_id = fed.member(bad);
    // Its store too: it may have acknowledged honest sectors before its conviction.
    let mut open = honest.clone();
    open.push(bad);
    let nodes = stop_and_check(fed, &open).await;
    let st = &nodes[0].1.ledger;
    let conviction = &st.newest.keygen_convictions[&bad_id];
    assert_eq!(conviction.reason, "share fails its commitment");
    let ConvictionEvidence::Complaint { holder, complaint } = &conviction.evidence else {
        panic!("conviction by complaint: {:?}", conviction.evidence);
    };
    assert_ne!(*holder, bad_id);
    let complaint: DealComplaint = decode(complaint).unwrap();
    assert_eq!(complaint.id.owner, bad_id);
    assert_eq!(complaint.id.sector, conviction.sector);
    assert_eq!(complaint.holder, *holder);
    assert_eq!(st.members[&bad_id].status, MemberStatus::Evicted);
    assert!(st.evictions.contains_key(&bad_id));
    assert!(st.newest.sectors.values().all(|r| r.owner != bad_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_whose_tree_its_seeds_do_not_generate_is_convicted_by_the_audit() {
    // Half the stake and 32 sectors: the bad owner owns some (it owns none with chance 2^-32).
    // Its shares check out, so its sectors land; the audit of the first one convicts it.
    let bad = 1;
    let spec = Spec {
        key: KeySection {
            sector_bits: 5,
            ..KeySection::default()
        },
        stakes: vec![100, 300, 100, 100],
        ..Spec::new(4)
    };
    let fed = Fed::start(&spec, &[(bad, &["--fault", "bad-tree"])]).await;
    let honest: Vec<usize> = (0..4).filter(|&i| i != bad).collect();
    let c = fed.key_generated(&honest).await;
    assert_eq!(c.key.convictions.len(), 1, "{:?}", c.key.convictions);
    assert_eq!(c.key.convictions[0].member, fed.hex(bad));
    assert_eq!(c.key.convictions[0].by, "audit");
    assert_eq!(c.key.sectors_audited, 32);
    assert!(c
        .key
        .sectors
        .iter()
        .all(|s| s.owner != fed.hex(bad) && s.audit == "passed"));
    let bad_id = fed.member(bad);
    // Its store too: it acknowledged honest sectors before its conviction.
    let mut open = honest.clone();
    open.push(bad);
    let nodes = stop_and_check(fed, &open).await;
    let st = &nodes[0].1.ledger;
    let conviction = &st.newest.keygen_convictions[&bad_id];
    let ConvictionEvidence::Audit {
        leaf,
        root,
        seed,
        path,
    } = &conviction.evidence
    else {
        panic!("conviction by audit: {:?}", conviction.evidence);
    };
    // The evidence convicts on its own: the rebuilt seed with the owner's path misses its root.
    let layout = st.key.layout(&chain_digest(&st.chain_id), 0).unwrap();
    let seed = shamir::LeafSecret::from_canonical_bytes(seed).unwrap();
    assert!(!seedfed_protocol::audit::leaf_matches(
        layout.ots_type,
        &layout.id,
        layout.height(),
        *leaf as u32,
        &seed,
        path,
        root
    ));
    assert_eq!(st.members[&bad_id].status, MemberStatus::Evicted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_never_acknowledges_is_left_out_and_the_key_completes() {
    let silent = 4;
    let spec = Spec {
        key: key_3_of_5(),
        ..Spec::new(7)
    };
    let fed = Fed::start(&spec, &[(silent, &["--fault", "never-ack"])]).await;
    let all: Vec<usize> = (0..7).collect();
    fed.key_generated(&all).await;
    let silent_id = fed.member(silent);
    let nodes = stop_and_check(fed, &all).await;
    let st = &nodes[0].1.ledger;
    for rec in st.newest.sectors.values() {
        assert!(!rec.acked.contains(&silent_id));
        assert!(rec.acked.len() >= 4);
    }
    // It kept its shares all the same (it only withheld the acknowledgements).
    assert!(!nodes[silent].1.held.is_empty());
    assert!(st.newest.keygen_misses.is_empty() && st.newest.keygen_convictions.is_empty());
}
