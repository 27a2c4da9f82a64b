//! Consensus on real `seedfed` processes over loopback libp2p: four validators reach height 50;
//! one is killed with SIGKILL while the others go on, restarts, and catches up by block sync;
//! afterwards every node's store holds byte-identical blocks, each with a commit certificate
//! that verifies against the validator set that decided it. On the way, the mempool's rules
//! hold on a running node: a non-member's transaction and an oversized one are refused through
//! `POST /tx`, and the refusal is counted on `/metrics` and `/status`.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup should panic

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use seedfed_node::chain::storage::ChainStore;
use seedfed_node::chain::ChainStatus;
use seedfed_node::genesis::Genesis;
use seedfed_protocol::ledger::Ledger;

const VALIDATORS: usize = 4;
/// Fast blocks for the test; everything else is the default configuration.
const ENV: &[(&str, &str)] = &[
    ("SEEDFED__CONSENSUS__BLOCK_INTERVAL_MS", "50"),
    ("SEEDFED__CONSENSUS__SYNC_INTERVAL_MS", "500"),
];

/// Checks a recorded checkpoint: its signature verifies (`verify_strict`) under the group key
/// that signed it, and that key is the Ed25519 key of a completed DKG.
fn check_checkpoint(c: &ChainStatus) {
    let cp = c.checkpoints.first().expect("a checkpoint");
    assert!(c.dkgs.iter().any(|d| d.ed25519_group_key == cp.group_key));
    let key: [u8; 32] = hex::decode(&cp.group_key).unwrap().try_into().unwrap();
    let sig: [u8; 64] = hex::decode(&cp.signature).unwrap().try_into().unwrap();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&key).unwrap();
    vk.verify_strict(
        &hex::decode(&cp.bytes).unwrap(),
        &ed25519_dalek::Signature::from_bytes(&sig),
    )
    .expect("checkpoint signature verifies");
}

async fn dropped(homes: &[PathBuf]) -> u64 {
    let mut n = 0;
    for h in homes {
        n += node_status(h)
            .await
            .and_then(|s| s.chain)
            .map_or(0, |c| c.gossip_dropped);
    }
    n
}

/// Runs a Byzantine member for a few seconds (bounded): see the caller.
async fn attack(bootstrap: &str, genesis: &Genesis, height: u64) {
    use seedfed_protocol::consensus::ConsensusMessage;
    use seedfed_protocol::ledger::{self, Signature64, VoteKind, VoteRecord};
    let mut conf = config(true, vec![bootstrap.parse().unwrap()]);
    conf.limits.gossip_max_bytes = 2 << 20;
    let (net, _events) = spawn(conf);
    let me = seedfed_node::chain::member_of(&net.local_peer_id()).unwrap();
    let validator = {
        let p: libp2p::PeerId = genesis.validators[0].peer_id.parse().unwrap();
        seedfed_node::chain::member_of(&p).unwrap()
    };
    net.subscribe("consensus").await.unwrap();
    let vote = |voter, height| {
        ledger::encode(&ConsensusMessage::Vote(VoteRecord {
            height,
            round: 0,
            kind: VoteKind::Prevote,
            value: None,
            validator: voter,
            signature: Signature64([7; 64]),
        }))
    };
    let payloads: Vec<Vec<u8>> = vec![
        b"\xff\x00 not a consensus message".to_vec(),
        vote(me, height + 1),
        vote(validator, height + 1),
        vote(validator, height + 10_000),
        vec![0u8; (1 << 20) + 1024],
    ];
    let mut sent = 0;
    // At most 20 s; the first attempts fail until the member is admitted and in the mesh.
    for i in 0..200 {
        let p = payloads[i % payloads.len()].clone();
        if net.publish("consensus", p).await.is_ok() {
            sent += 1;
            if sent >= 25 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sent > 0, "the attacker never got a message out");
    let _ = net.shutdown().await;
}

/// Posts a non-member's transaction and an oversized one to `home`'s API: both are refused with
/// their reasons (400, 413), and the driver's refusal is counted on `/metrics` and `/status`.
async fn mempool_refusals(home: &Path) {
    use seedfed_node::api;
    use seedfed_protocol::ledger::{self, Tx, TxBody};
    use seedfed_protocol::member::MemberId;
    let addr = api::running_api_addr(home).unwrap();
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[0x5a; 32]);
    let tx = |body| {
        Tx {
            author: MemberId(stranger.verifying_key().to_bytes()),
            nonce: 0,
            body,
        }
        .sign(CHAIN, &stranger)
    };
    let (code, reason) = api::post_bytes(addr, "/tx", ledger::encode(&tx(TxBody::Exit)))
        .await
        .unwrap();
    assert_eq!(code, 400, "{reason}");
    assert!(reason.contains("not an active ledger member"), "{reason}");
    let big = tx(TxBody::SignaturePublish {
        leaf: 0,
        signature: vec![1; 70_000],
    });
    let (code, reason) = api::post_bytes(addr, "/tx", ledger::encode(&big))
        .await
        .unwrap();
    assert_eq!(code, 413, "{reason}");
    let (_, metrics) = api::get_text(addr, "/metrics").await.unwrap();
    // Every reason's series exists from the start (at zero): the refusal must have counted.
    let refused = metrics
        .lines()
        .find_map(|l| l.strip_prefix("seedfed_mempool_refused_total{reason=\"not_member\"} "))
        .and_then(|v| v.trim().parse::<u64>().ok());
    assert!(refused.is_some_and(|n| n >= 1), "{metrics}");
    // /status catches up on the next tick or decision.
    wait_chain(home, 30, "the refusal on /status", |c| {
        c.mempool_refused >= 1
    })
    .await;
}

async fn height(home: &Path) -> Option<u64> {
    Some(node_status(home).await?.chain?.height)
}

async fn wait_height(home: &Path, at_least: u64, secs: u64, what: &str) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(h) = height(home).await {
            if h >= at_least {
                return h;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {} did not reach height {at_least}; log:\n{}",
            home.display(),
            log_tail(home)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_decide_and_a_killed_one_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let (boot, boot_addr) = start_test_bootstrap(dir.path()).await;
    let boot_addr = boot_addr.to_string();
    let (homes, pass, genesis) = federation(dir.path(), VALIDATORS, &boot_addr);
    let mut procs: Vec<Option<Proc>> = homes
        .iter()
        .map(|h| Some(start_node(h, &pass, ENV)))
        .collect();

    // All four reach height 50.
    for h in &homes {
        wait_height(h, 50, 180, "first 50 heights").await;
    }
    let s = node_status(&homes[0]).await.unwrap().chain.unwrap();
    assert_eq!(s.validators.len(), VALIDATORS);
    assert!(s.validator);

    // The epoch cycle runs through the ledger: a DKG with everyone qualified, the epoch-1
    // beacon, a branch assignment, and a threshold-signed checkpoint.
    let c = wait_chain(
        &homes[0],
        120,
        "epoch 1 with assignment and checkpoint",
        |c| c.epoch >= 1 && c.assignment_epoch.is_some() && !c.checkpoints.is_empty(),
    )
    .await;
    assert_eq!(c.dkgs[0].qualified.len(), VALIDATORS);
    assert!(c.dkgs[0].excluded.is_empty());
    assert_ne!(c.beacon, hex::encode([0u8; 32]));
    assert_eq!(c.assignment.len(), 1 << genesis.key.sector_bits);
    check_checkpoint(&c);
    mempool_refusals(&homes[0]).await;

    // A Byzantine member (admitted with a valid proof of work, no stake) floods the consensus
    // topic with malformed bytes, votes of its own, votes in a validator's name, votes for far
    // heights and an oversized message. The validators drop them with a reason (counted) and
    // keep deciding.
    let before = height(&homes[0]).await.unwrap();
    let dropped_before: u64 = dropped(&homes).await;
    attack(&boot_addr, &genesis, before).await;
    wait_height(&homes[0], before + 10, 60, "progress under attack").await;
    let dropped_after = dropped(&homes).await;
    assert!(
        dropped_after > dropped_before,
        "no gossip was dropped ({dropped_before} -> {dropped_after})"
    );

    // node3 is killed; the other three (3 of 4 = more than 2/3 of the stake) go on.
    procs[3] = None;
    let _ = std::fs::remove_file(homes[3].join(seedfed_node::api::API_ADDR_FILE));
    let at_kill = height(&homes[0]).await.unwrap();
    wait_height(&homes[0], at_kill + 20, 120, "progress without node3").await;
    let target = height(&homes[0]).await.unwrap();

    // node3 restarts and catches up by block sync.
    procs[3] = Some(start_node(&homes[3], &pass, ENV));
    wait_height(&homes[3], target, 120, "catch-up after restart").await;
    let s3 = node_status(&homes[3]).await.unwrap().chain.unwrap();
    assert!(
        s3.synced_blocks > 0,
        "node3 caught up without block sync? {s3:?}"
    );
    // And it takes part again: the chain keeps moving with it.
    wait_height(&homes[3], target + 10, 60, "progress after catch-up").await;

    // Graceful stop (SIGTERM) so the stores can be opened here.
    for p in procs.iter_mut().flatten() {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
    }
    for p in procs.iter_mut().flatten() {
        let _ = p.0.wait();
    }
    boot.stop().await;

    // Every store holds the same blocks; each certificate verifies against the validator set
    // that decided it, replaying from genesis.
    let lg = genesis.to_ledger().unwrap();
    let mut stores: Vec<ChainStore> = homes
        .iter()
        .map(|h| ChainStore::new(seedfed_node::node::open_store(&h.join("data")).unwrap()))
        .collect();
    let tips: Vec<u64> = stores
        .iter_mut()
        .map(|s| s.load(&lg).unwrap().ledger.height())
        .collect();
    let common = *tips.iter().min().unwrap();
    assert!(common >= target + 10, "tips {tips:?}");
    let mut ledger = Ledger::from_genesis(&lg).unwrap();
    for h in 1..=common {
        let validators = ledger.state.validators();
        let (block, _) = stores[0].block(h).unwrap().unwrap();
        for (i, s) in stores.iter().enumerate() {
            // Certificates may hold different (each > 2/3) sets of precommits; blocks may not.
            let (b, cert) = s.block(h).unwrap().unwrap();
            assert_eq!(b, block, "node{i} differs at height {h}");
            assert_eq!(cert.block_hash, block.hash());
            cert.verify(&lg.chain_id, &validators).unwrap();
        }
        ledger.apply_block(&block).unwrap();
    }
}

/// Seven validators: node5 is never started, node6 deals invalid round-2 shares. The DKG
/// completes with the other five; node5 is excluded as absent and node6 with a complaint
/// whose evidence is on the ledger; the epoch beacon, assignment and a checkpoint follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dkg_completes_without_an_absent_validator_and_excludes_a_bad_dealer() {
    let dir = tempfile::tempdir().unwrap();
    let (boot, boot_addr) = start_test_bootstrap(dir.path()).await;
    let boot_addr = boot_addr.to_string();
    let (homes, pass, genesis) = federation(dir.path(), 7, &boot_addr);
    let member = |i: usize| {
        let peer: libp2p::PeerId = genesis.validators[i].peer_id.parse().unwrap();
        hex::encode(seedfed_node::chain::member_of(&peer).unwrap().as_bytes())
    };
    let mut procs = Vec::new();
    for (i, h) in homes.iter().enumerate() {
        match i {
            5 => {} // down from the start
            6 => procs.push(start_node_with(
                h,
                &pass,
                ENV,
                &["--fault", "bad-dkg-shares"],
            )),
            _ => procs.push(start_node(h, &pass, ENV)),
        }
    }
    let c = wait_chain(&homes[0], 240, "the first DKG", |c| !c.dkgs.is_empty()).await;
    let dkg = &c.dkgs[0];
    assert_eq!(dkg.qualified.len(), 5, "{dkg:?}");
    let reasons: std::collections::BTreeMap<&str, &str> = dkg
        .excluded
        .iter()
        .map(|e| (e.member.as_str(), e.reason.as_str()))
        .collect();
    let (absent, bad) = (member(5), member(6));
    assert!(
        reasons[absent.as_str()].starts_with("Absent"),
        "{reasons:?}"
    );
    assert!(reasons[bad.as_str()].starts_with("BadShare"), "{reasons:?}");
    // Every running honest node recorded the same result.
    for h in &homes[1..5] {
        let o = wait_chain(h, 60, "the same DKG", |o| !o.dkgs.is_empty()).await;
        assert_eq!(o.dkgs[0], *dkg);
    }
    // The cycle goes on without them: beacon, assignment, checkpoint.
    let c = wait_chain(
        &homes[0],
        180,
        "epoch 1 with assignment and checkpoint",
        |c| c.epoch >= 1 && c.assignment_epoch.is_some() && !c.checkpoints.is_empty(),
    )
    .await;
    check_checkpoint(&c);
    drop(procs);
    boot.stop().await;
}
