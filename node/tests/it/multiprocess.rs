//! Real `seedfed` processes on loopback with an in-process bootstrap node: five nodes find
//! each other; twenty Sybil identities without valid proofs are never admitted; after the
//! bootstrap node goes away, a node killed with SIGKILL restarts with the same identity and
//! rejoins from its saved peers.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup should panic

use crate::common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use seedfed_node::api;
use seedfed_node::genesis::Genesis;

const NODES: usize = 5;
const SYBILS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_sybils_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        pow_difficulty: DIFFICULTY,
        validators: vec![],
        key: Default::default(),
        epochs: Default::default(),
        clients: vec![],
    };
    let genesis_path = dir.path().join("genesis.toml");
    std::fs::write(&genesis_path, genesis.to_toml()).unwrap();
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "testnet pass").unwrap();
    // Passphrase files must be private to their owner.
    std::fs::set_permissions(&pass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();

    let (boot, boot_addr) = start_test_bootstrap(dir.path()).await;
    let boot_id = boot.network.local_peer_id().to_string();

    // Five nodes, each its own home and ports.
    let mut homes: Vec<PathBuf> = Vec::new();
    for i in 0..NODES {
        let home = dir.path().join(format!("node{i}"));
        init_home(&home, &genesis_path, &pass, &boot_addr.to_string());
        homes.push(home);
    }
    let mut procs: Vec<Option<Proc>> = homes
        .iter()
        .map(|h| Some(start_node(h, &pass, &[])))
        .collect();

    // Every node admits every other node and the bootstrap node.
    let mut ids: Vec<String> = Vec::new();
    for h in &homes {
        let s = eventually(30, "node API", || node_status(h)).await;
        ids.push(s.network.peer_id.clone());
    }
    let legit: BTreeSet<String> = ids.iter().cloned().chain([boot_id.clone()]).collect();
    for (i, h) in homes.iter().enumerate() {
        let me = ids[i].clone();
        let want: BTreeSet<String> = legit.iter().filter(|p| **p != me).cloned().collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = node_status(h).await {
                if admitted_ids(&s) == want {
                    assert!(s.network.routing_table.len() >= NODES - 1);
                    break;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "node{i} did not admit everyone; log:\n{}",
                log_tail(h)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // Twenty Sybils without valid proofs, against the bootstrap node and the nodes.
    let mut node_addrs = Vec::new();
    for h in &homes {
        let s = node_status(h).await.unwrap();
        let a: libp2p::Multiaddr = s.network.listen_addrs[0].parse().unwrap();
        node_addrs.push(a.with(libp2p::multiaddr::Protocol::P2p(
            s.network.peer_id.parse().unwrap(),
        )));
    }
    let before: u64 = {
        let mut t = 0;
        for h in &homes {
            t += node_status(h).await.unwrap().network.rejected_total;
        }
        t
    };
    let mut sybils = Vec::new();
    for i in 0..SYBILS {
        let targets = vec![boot_addr.clone(), node_addrs[i % NODES].clone()];
        sybils.push(spawn(config(false, targets)));
    }
    eventually(30, "every Sybil rejected by the bootstrap node", || async {
        (boot.network.status().await.ok()?.rejected_total >= SYBILS as u64).then_some(())
    })
    .await;
    eventually(30, "the nodes to reject their Sybils", || async {
        let mut t = 0;
        for h in &homes {
            t += node_status(h).await?.network.rejected_total;
        }
        (t >= before + SYBILS as u64).then_some(())
    })
    .await;
    // Give the Sybils a few more discovery rounds, then check: zero admissions anywhere.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let b = boot.network.status().await.unwrap();
    let b_admitted: BTreeSet<String> = b.admitted.iter().map(|p| p.peer_id.clone()).collect();
    assert!(b_admitted.is_subset(&legit), "bootstrap admitted a Sybil");
    for (i, h) in homes.iter().enumerate() {
        let s = node_status(h).await.unwrap();
        assert!(
            admitted_ids(&s).is_subset(&legit),
            "node{i} admitted a Sybil"
        );
        for p in &s.network.routing_table {
            assert!(
                legit.contains(p),
                "node{i} has Sybil {p} in its routing table"
            );
        }
    }
    drop(sybils);

    // The bootstrap node goes away; node0 is killed with SIGKILL and restarted.
    boot.stop().await;
    let old_id = ids[0].clone();
    let peers_file = homes[0].join(seedfed_node::node::PEERS_FILE);
    eventually(10, "node0 to have saved its peers", || async {
        peers_file.exists().then_some(())
    })
    .await;
    procs[0] = None; // SIGKILL + reap
    let _ = std::fs::remove_file(homes[0].join(api::API_ADDR_FILE));
    procs[0] = Some(start_node(&homes[0], &pass, &[]));
    let others: BTreeSet<String> = ids[1..].iter().cloned().collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = node_status(&homes[0]).await {
            assert_eq!(s.network.peer_id, old_id, "restart changed the identity");
            let connected: BTreeSet<String> = s
                .network
                .admitted
                .iter()
                .filter(|p| p.connected)
                .map(|p| p.peer_id.clone())
                .collect();
            if others.is_subset(&connected) {
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node0 did not rejoin; log:\n{}",
            log_tail(&homes[0])
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And the others see it connected again.
    for h in homes.iter().skip(1) {
        eventually(30, "peers to see node0 again", || async {
            let s = node_status(h).await?;
            s.network
                .admitted
                .iter()
                .any(|p| p.peer_id == old_id && p.connected)
                .then_some(())
        })
        .await;
    }
    drop(procs); // SIGKILL every node

    // node0's durable store survived the SIGKILLs: it opens cleanly and still counts both of
    // its starts (this is the third).
    let data = homes[0].join("data");
    let store = seedfed_node::node::open_store(&data).unwrap();
    let starts = seedfed_node::node::record_start(store.as_ref(), &data).unwrap();
    assert_eq!(starts, 3, "node0's store lost its start records");
}
