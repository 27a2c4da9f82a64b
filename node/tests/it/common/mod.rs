//! Shared helpers for the node's integration tests (loopback only, bounded waits).
#![allow(dead_code, clippy::unwrap_used)] // test helpers: a failed setup should panic

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::Multiaddr;
use seedfed_node::api;
use seedfed_node::chain::ChainStatus;
use seedfed_node::genesis::{EpochParams, Genesis, GenesisValidator, KeySection};
use seedfed_node::network::{
    self, AdmissionRecord, GossipValidator, Limits, NetworkConfig, NetworkHandle, NetworkStatus,
    Role,
};
use seedfed_protocol::admission::{Proof, Puzzle};

mod fed;
#[allow(unused_imports)] // not every test binary runs a federation
pub use fed::*;
pub mod secrets;

/// The `seedfed` binary under test (set by cargo for integration tests).
pub fn seedfed_bin() -> &'static str {
    env!("CARGO_BIN_EXE_seedfed")
}

pub const CHAIN: &str = "test-chain";
pub const DIFFICULTY: u8 = 8;

/// A solved (or deliberately wrong) proof for a fresh identity.
pub fn identity(valid_pow: bool) -> (Keypair, AdmissionRecord) {
    let kp = Keypair::generate_ed25519();
    let x25519_secret = x25519_dalek::StaticSecret::from([7u8; 32]);
    let x25519 = x25519_dalek::PublicKey::from(&x25519_secret).to_bytes();
    let puzzle = Puzzle {
        chain_id: CHAIN.into(),
        peer_id: kp.public().to_peer_id().to_bytes(),
        x25519,
    };
    let proof = if valid_pow {
        puzzle.solve(DIFFICULTY, 0, 1 << 24, |_| {}).unwrap()
    } else {
        let nonce = (0..100_000u64)
            .find(|n| puzzle.verify(&Proof { nonce: *n }, DIFFICULTY).is_err())
            .unwrap();
        Proof { nonce }
    };
    let rec = AdmissionRecord::sign(&kp, CHAIN, &x25519_secret, proof).unwrap();
    (kp, rec)
}

pub fn config(valid_pow: bool, bootstrap: Vec<Multiaddr>) -> NetworkConfig {
    let (keypair, record) = identity(valid_pow);
    NetworkConfig {
        keypair,
        record,
        chain_id: CHAIN.into(),
        difficulty: DIFFICULTY,
        ledger_difficulty: None,
        stakes: BTreeMap::new(),
        role: Role::Node,
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        announce: vec![],
        bootstrap,
        limits: Limits {
            gossip_max_bytes: 64 * 1024,
            request_max_bytes: 64 * 1024,
            ..Limits::default()
        },
        admission_timeout: Duration::from_secs(2),
        discovery_interval: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(60),
        gossip_validator: None,
        is_validator: None,
        peers_file: None,
    }
}

pub fn with_validator(mut c: NetworkConfig, v: GossipValidator) -> NetworkConfig {
    c.gossip_validator = Some(v);
    c
}

/// Polls `f` every 100 ms until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The first TCP listen address of a node, with its `/p2p/` suffix.
pub async fn listen_addr(h: &NetworkHandle) -> Multiaddr {
    let s = eventually(10, "listen address", || async {
        let s = h.status().await.ok()?;
        (!s.listen_addrs.is_empty()).then_some(s)
    })
    .await;
    let a: Multiaddr = s.listen_addrs[0].parse().unwrap();
    a.with(libp2p::multiaddr::Protocol::P2p(h.local_peer_id()))
}

pub async fn status(h: &NetworkHandle) -> NetworkStatus {
    h.status().await.unwrap()
}

pub fn spawn(
    c: NetworkConfig,
) -> (
    NetworkHandle,
    tokio::sync::mpsc::Receiver<network::NetworkEvent>,
) {
    let mut registry = prometheus_client::registry::Registry::default();
    let (h, ev, _join) = network::spawn(c, &mut registry).unwrap();
    (h, ev)
}

/// A child process killed (SIGKILL) and reaped on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `seedfed run` for `home` with extra environment `env`; output goes to `home/node.log`.
pub fn start_node(home: &Path, pass: &Path, env: &[(&str, &str)]) -> Proc {
    start_node_with(home, pass, env, &[])
}

/// [`start_node`] with extra `seedfed run` arguments.
pub fn start_node_with(home: &Path, pass: &Path, env: &[(&str, &str)], args: &[&str]) -> Proc {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.join("node.log"))
        .unwrap();
    let child = Command::new(seedfed_bin())
        .arg("--home")
        .arg(home)
        .arg("run")
        .arg("--passphrase-file")
        .arg(pass)
        .args(args)
        .env("SEEDFED__NETWORK__DISCOVERY_INTERVAL_SECS", "1")
        .env("SEEDFED__NETWORK__ADMISSION_TIMEOUT_SECS", "3")
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Proc(child)
}

pub async fn node_status(home: &Path) -> Option<api::StatusReport> {
    // A stale address file from a killed process may point at nothing: that is just "not yet".
    let addr = api::running_api_addr(home).ok()?;
    api::fetch_status(addr).await.ok()
}

pub fn admitted_ids(s: &api::StatusReport) -> BTreeSet<String> {
    s.network
        .admitted
        .iter()
        .map(|p| p.peer_id.clone())
        .collect()
}

pub fn log_tail(home: &Path) -> String {
    let text = std::fs::read_to_string(home.join("node.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// The log tails of the other nodes beside `home` (the sibling homes with a `node.log`), each
/// under its directory's name: when one node's wait times out, the cause is often another
/// node that went silent, whose home the test removes afterwards.
pub fn sibling_log_tails(home: &Path) -> String {
    let Some(dir) = home.parent() else {
        return String::new();
    };
    let mut homes: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p != home && p.join("node.log").is_file())
                .collect()
        })
        .unwrap_or_default();
    homes.sort();
    homes
        .iter()
        .map(|h| {
            let name = h.file_name().map(|n| n.to_string_lossy().into_owned());
            format!("== {} ==\n{}", name.unwrap_or_default(), log_tail(h))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// An in-process bootstrap node for [`CHAIN`] (the bootstrap binary runs this same library
/// function) on loopback, home `dir/bootstrap`; returns it and its dialable address.
pub async fn start_test_bootstrap(dir: &Path) -> (seedfed_node::node::RunningNode, Multiaddr) {
    let genesis = seedfed_node::genesis::Genesis {
        chain_id: CHAIN.into(),
        pow_difficulty: DIFFICULTY,
        validators: vec![],
        key: Default::default(),
        epochs: Default::default(),
        clients: vec![],
    };
    let mut conf = seedfed_node::config::Config::default();
    conf.network.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
    conf.network.discovery_interval_secs = 1;
    conf.network.admission_timeout_secs = 3;
    conf.api.listen = "127.0.0.1:0".into();
    let boot = seedfed_node::node::start_bootstrap(&dir.join("bootstrap"), &genesis, &conf)
        .await
        .unwrap();
    let addr = listen_addr(&boot.network).await;
    (boot, addr)
}

/// `seedfed init` of a home on loopback (random ports) for `genesis`, joining `bootstrap`.
pub fn init_home(home: &Path, genesis: &Path, pass: &Path, bootstrap: &str) {
    let out = Command::new(seedfed_bin())
        .arg("--home")
        .arg(home)
        .args(["init", "--chain"])
        .arg(genesis)
        .arg("--passphrase-file")
        .arg(pass)
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
}

/// A federation of `n` validator homes sharing one genesis; returns the homes, the passphrase
/// file and the genesis.
pub fn federation(dir: &Path, n: usize, bootstrap: &str) -> (Vec<PathBuf>, PathBuf, Genesis) {
    federation_with(dir, n, bootstrap, KeySection::default())
}

/// As [`federation`], generating the key `key`.
pub fn federation_with(
    dir: &Path,
    n: usize,
    bootstrap: &str,
    key: KeySection,
) -> (Vec<PathBuf>, PathBuf, Genesis) {
    federation_spec(
        dir,
        bootstrap,
        &Spec {
            key,
            ..Spec::new(n)
        },
    )
}

/// The genesis of a test federation.
pub struct Spec {
    /// Validators.
    pub n: usize,
    /// Key parameters.
    pub key: KeySection,
    /// Epoch windows.
    pub epochs: EpochParams,
    /// Stake of each validator (100 for those not listed).
    pub stakes: Vec<u64>,
    /// Sign requests per epoch of each validator's key as a client.
    pub client_quota: u32,
}

impl Spec {
    /// `n` validators of stake 100, the default key and epochs.
    pub fn new(n: usize) -> Self {
        Spec {
            n,
            key: KeySection::default(),
            epochs: EpochParams::default(),
            stakes: Vec::new(),
            client_quota: 100_000,
        }
    }
}

/// As [`federation`], with the genesis `spec`.
pub fn federation_spec(
    dir: &Path,
    bootstrap: &str,
    spec: &Spec,
) -> (Vec<PathBuf>, PathBuf, Genesis) {
    let n = spec.n;
    let mut genesis = Genesis {
        chain_id: CHAIN.into(),
        pow_difficulty: DIFFICULTY,
        validators: vec![],
        key: spec.key.clone(),
        epochs: spec.epochs.clone(),
        clients: vec![],
    };
    let genesis_path = dir.join("genesis.toml");
    std::fs::write(&genesis_path, genesis.to_toml()).unwrap();
    let pass = dir.join("pass");
    std::fs::write(&pass, "testnet pass").unwrap();
    // Passphrase files must be private to their owner.
    std::fs::set_permissions(&pass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut homes = Vec::new();
    for i in 0..n {
        let home = dir.join(format!("node{i}"));
        init_home(&home, &genesis_path, &pass, bootstrap);
        let keys = Command::new(seedfed_bin())
            .arg("--home")
            .arg(&home)
            .args(["keys", "show", "--json"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&keys.stdout).unwrap();
        genesis.validators.push(GenesisValidator {
            peer_id: v["peer_id"].as_str().unwrap().into(),
            stake: spec.stakes.get(i).copied().unwrap_or(100),
            x25519: v["x25519_public"].as_str().unwrap().into(),
        });
        // Every node's own key is an authorized client (as in `seedfed-testnet up`).
        genesis.clients.push(seedfed_node::genesis::GenesisClient {
            key: v["peer_id"].as_str().unwrap().into(),
            quota: spec.client_quota,
        });
        homes.push(home);
    }
    for h in &homes {
        std::fs::write(h.join("genesis.toml"), genesis.to_toml()).unwrap();
    }
    (homes, pass, genesis)
}

/// Waits until `home`'s chain status satisfies `pred`.
pub async fn wait_chain(
    home: &Path,
    secs: u64,
    what: &str,
    pred: impl Fn(&ChainStatus) -> bool,
) -> ChainStatus {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(c) = node_status(home).await.and_then(|s| s.chain) {
            if pred(&c) {
                return c;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {} timed out; status {:?}; log:\n{}\nthe other nodes' logs:\n{}",
            home.display(),
            node_status(home).await.and_then(|s| s.chain),
            log_tail(home),
            sibling_log_tails(home)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
