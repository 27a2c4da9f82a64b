//! Consensus on real `seedfed` processes over loopback libp2p: four validators reach height 50;
//! one is killed with SIGKILL while the others go on, restarts, and catches up by block sync;
//! afterwards every node's store holds byte-identical blocks, each with a commit certificate
//! that verifies against the validator set that decided it.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup should panic

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use seedfed_node::chain::storage::ChainStore;
use seedfed_node::config::Config;
use seedfed_node::genesis::{Genesis, GenesisValidator};
use seedfed_protocol::ledger::Ledger;

const VALIDATORS: usize = 4;
/// Fast blocks for the test; everything else is the default configuration.
const ENV: &[(&str, &str)] = &[
    ("SEEDFED__CONSENSUS__BLOCK_INTERVAL_MS", "50"),
    ("SEEDFED__CONSENSUS__SYNC_INTERVAL_MS", "500"),
];

/// A federation of `n` validator homes sharing one genesis; returns the homes, the passphrase
/// file and the genesis.
pub fn federation(dir: &Path, n: usize, bootstrap: &str) -> (Vec<PathBuf>, PathBuf, Genesis) {
    let mut genesis = Genesis {
        chain_id: CHAIN.into(),
        pow_difficulty: DIFFICULTY,
        validators: vec![],
        key: Default::default(),
    };
    let genesis_path = dir.join("genesis.toml");
    std::fs::write(&genesis_path, genesis.to_toml()).unwrap();
    let pass = dir.join("pass");
    std::fs::write(&pass, "testnet pass").unwrap();
    let mut homes = Vec::new();
    for i in 0..n {
        let home = dir.join(format!("node{i}"));
        let out = Command::new(seedfed_bin())
            .arg("--home")
            .arg(&home)
            .args(["init", "--chain"])
            .arg(&genesis_path)
            .arg("--passphrase-file")
            .arg(&pass)
            .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
            .args(["--api-listen", "127.0.0.1:0"])
            .args(["--bootstrap", bootstrap])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let keys = Command::new(seedfed_bin())
            .arg("--home")
            .arg(&home)
            .args(["keys", "show", "--json"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&keys.stdout).unwrap();
        genesis.validators.push(GenesisValidator {
            peer_id: v["peer_id"].as_str().unwrap().into(),
            stake: 100,
            x25519: v["x25519_public"].as_str().unwrap().into(),
        });
        homes.push(home);
    }
    for h in &homes {
        std::fs::write(h.join("genesis.toml"), genesis.to_toml()).unwrap();
    }
    (homes, pass, genesis)
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
    let boot_genesis = Genesis {
        chain_id: CHAIN.into(),
        pow_difficulty: DIFFICULTY,
        validators: vec![],
        key: Default::default(),
    };
    let mut bconf = Config::default();
    bconf.network.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
    bconf.network.discovery_interval_secs = 1;
    bconf.network.admission_timeout_secs = 3;
    bconf.api.listen = "127.0.0.1:0".into();
    let boot = seedfed_node::node::start_bootstrap(&dir.path().join("boot"), &boot_genesis, &bconf)
        .await
        .unwrap();
    let boot_addr = listen_addr(&boot.network).await.to_string();
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
