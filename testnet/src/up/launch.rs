//! Launching a testnet: the genesis, one bootstrap node, N initialised validator homes, their
//! processes, and the wait until every node has admitted every other node and the bootstrap.
//!
//! Guarantees: every process listens on ports the OS picked (port 0) and its dialable address
//! is read back from its own `/status`, so no port is ever guessed or raced for; everything
//! started is stopped again if the launch fails, is interrupted, or its [`Testnet`] is dropped.

use std::collections::BTreeSet;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use seedfed_node::api;
use seedfed_node::genesis::{Genesis, GenesisClient, GenesisValidator, KeySection};

use super::binaries::binaries;
use super::processes::{self, Group};
use super::{UpArgs, PASSPHRASE};

/// The listen addresses every process gets: loopback TCP, ports picked by the OS.
const LISTEN_ANY_PORT: [&str; 1] = ["/ip4/127.0.0.1/tcp/0"];

/// One started process: the bootstrap node or a node (its home is `<dir>/<name>`).
#[derive(Clone, Debug)]
pub struct NodeRow {
    /// `bootstrap` or `node<i>`.
    pub name: String,
    /// libp2p peer id.
    pub peer_id: String,
    /// Local API address.
    pub api: SocketAddr,
    /// Dialable libp2p address.
    pub p2p: String,
    /// Log file.
    pub log: PathBuf,
}

/// A testnet started by [`start`]: its processes are stopped when this is dropped.
pub struct Testnet {
    group: Group,
    /// The testnet directory (homes, logs, genesis, passphrase file).
    pub dir: PathBuf,
    /// The bootstrap node first, then the nodes.
    pub rows: Vec<NodeRow>,
    /// The `seedfed` binary the nodes run.
    pub node_bin: PathBuf,
}

impl Testnet {
    /// Whether every started process is still running; names the first one that is not.
    pub fn check_alive(&self) -> anyhow::Result<()> {
        self.group.check_alive()
    }

    /// The processes: (name, pid), the bootstrap node first.
    pub fn processes(&self) -> &[(String, u32)] {
        self.group.procs()
    }

    /// Stops every process now (SIGTERM, then SIGKILL after 10 s).
    pub fn stop(self) {
        drop(self);
    }

    /// Leaves every process running (`seedfed-testnet down --dir <dir>` stops them).
    pub fn detach(mut self) {
        self.group.disarm();
    }
}

/// Starts a testnet in `dir` (created; must not hold a running testnet) as `up` does and
/// returns once all nodes admitted each other. Every process is stopped again if this fails
/// (or its future is dropped), and when the returned [`Testnet`] is dropped.
pub async fn start(args: &UpArgs, dir: &Path) -> anyhow::Result<Testnet> {
    let (node_bin, boot_bin) = binaries()?;
    start_with(args, dir, &node_bin, &boot_bin).await
}

/// As [`start`], running the `seedfed` and `seedfed-bootstrap` binaries given (a test finds
/// them in its target directory; [`start`] next to its own executable).
pub async fn start_with(
    args: &UpArgs,
    dir: &Path,
    node_bin: &Path,
    boot_bin: &Path,
) -> anyhow::Result<Testnet> {
    if args.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    if processes::running_in(&dir) {
        bail!(
            "a testnet is already running in {}; stop it with `seedfed-testnet down --dir {}`",
            dir.display(),
            dir.display()
        );
    }
    let mut group = Group::new(&dir);
    let rows = launch(args, &dir, &mut group, node_bin, boot_bin).await?;
    Ok(Testnet {
        group,
        dir,
        rows,
        node_bin: node_bin.to_path_buf(),
    })
}

/// Waits until the process with home `home` serves its API and listens on a TCP address;
/// returns its API address, its status and that address with its `/p2p/` suffix.
async fn wait_listening(
    home: &Path,
    deadline: Instant,
) -> anyhow::Result<(SocketAddr, api::StatusReport, String)> {
    loop {
        if let Ok(addr) = api::running_api_addr(home) {
            if let Ok(s) = api::fetch_status(addr).await {
                let tcp = s
                    .network
                    .listen_addrs
                    .iter()
                    .find(|a| a.contains("/tcp/"))
                    .map(|a| format!("{a}/p2p/{}", s.network.peer_id));
                if let Some(p2p) = tcp {
                    return Ok((addr, s, p2p));
                }
            }
        }
        if Instant::now() > deadline {
            bail!(
                "{} did not start its API and listen in time",
                home.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `seedfed init` for a node home and returns its peer id and X25519 public key (hex).
fn init_node(
    node_bin: &Path,
    home: &Path,
    genesis_path: &Path,
    pass_file: &Path,
    boot_addr: &str,
) -> anyhow::Result<(String, String)> {
    let name = home.file_name().map_or_else(
        || home.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut cmd = Command::new(node_bin);
    cmd.arg("--home")
        .arg(home)
        .arg("init")
        .arg("--chain")
        .arg(genesis_path)
        .arg("--passphrase-file")
        .arg(pass_file);
    for l in LISTEN_ANY_PORT {
        cmd.args(["--listen", l]);
    }
    let out = cmd
        .args([
            "--bootstrap",
            boot_addr,
            "--api-listen",
            "127.0.0.1:0",
            "--force",
        ])
        .stdin(Stdio::null())
        .output()
        .context("cannot run seedfed init")?;
    if !out.status.success() {
        bail!(
            "seedfed init for {name} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let keys = Command::new(node_bin)
        .arg("--home")
        .arg(home)
        .args(["keys", "show", "--json"])
        .output()
        .context("cannot run seedfed keys show")?;
    let public: serde_json::Value = serde_json::from_slice(&keys.stdout)
        .with_context(|| format!("bad `keys show` output for {name}"))?;
    let peer_id = public["peer_id"]
        .as_str()
        .context("no peer id in `keys show`")?
        .to_string();
    let x25519 = public["x25519_public"]
        .as_str()
        .context("no x25519 key in `keys show`")?
        .to_string();
    Ok((peer_id, x25519))
}

/// Sign requests each testnet node's client key may make per epoch: enough for the
/// benchmarks' bursts.
pub const TESTNET_CLIENT_QUOTA: u32 = 100_000;

/// The testnet's key parameters: leaf seeds 3-of-5 whenever there are at least 5
/// validators (each leaf needs 5 distinct holders), the genesis default 2-of-3 below that;
/// the tree height `tree_height` if given, else the genesis default, with a sector window that
/// grows with the sector (`2^(h − 6)` blocks from `h = 13` on: honest owners of a large key
/// need minutes to generate and deal). Everything else (sector bits, the acknowledgement
/// threshold) is the genesis default.
pub fn testnet_key(nodes: usize, tree_height: Option<u8>) -> KeySection {
    let mut key = if nodes >= 5 {
        KeySection {
            leaf_threshold: 3,
            leaf_holders: 5,
            ..KeySection::default()
        }
    } else {
        KeySection::default()
    };
    if let Some(h) = tree_height {
        key.tree_height = h;
        key.sector_window = key.sector_window.max(1u64 << h.saturating_sub(6).min(32));
    }
    key
}

/// The launch itself: genesis, bootstrap, node homes, node processes, mutual admission.
async fn launch(
    args: &UpArgs,
    dir: &Path,
    group: &mut Group,
    node_bin: &Path,
    boot_bin: &Path,
) -> anyhow::Result<Vec<NodeRow>> {
    let genesis_path = dir.join("genesis.toml");
    let mut genesis = Genesis {
        chain_id: "seedfed-local".to_string(),
        pow_difficulty: args.difficulty,
        validators: vec![],
        key: testnet_key(args.nodes, args.tree_height),
        epochs: args.epochs.clone().unwrap_or_default(),
        clients: vec![],
    };
    fs::write(&genesis_path, genesis.to_toml())?;
    let pass_file = dir.join("passphrase");
    // A passphrase file must be private to its owner (`seedfed` refuses it otherwise).
    seedfed_node::fsutil::write_atomic(&pass_file, PASSPHRASE.as_bytes(), 0o600)
        .with_context(|| format!("cannot write {}", pass_file.display()))?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);

    // Bootstrap node.
    let boot_home = dir.join("bootstrap");
    // A previous run's address file would point at a dead API.
    let _ = fs::remove_file(boot_home.join(api::API_ADDR_FILE));
    let mut cmd = Command::new(boot_bin);
    cmd.arg("run")
        .arg("--home")
        .arg(&boot_home)
        .arg("--genesis")
        .arg(&genesis_path);
    for l in LISTEN_ANY_PORT {
        cmd.args(["--listen", l]);
    }
    cmd.args([
        "--api-listen",
        "127.0.0.1:0",
        "--discovery-interval-secs",
        "2",
    ]);
    group.spawn("bootstrap", cmd)?;
    let (boot_api, boot_status, boot_addr) = wait_listening(&boot_home, deadline).await?;
    let mut rows = vec![NodeRow {
        name: "bootstrap".into(),
        peer_id: boot_status.network.peer_id.clone(),
        api: boot_api,
        p2p: boot_addr.clone(),
        log: dir.join("bootstrap.log"),
    }];

    // Initialise the nodes, then write the genesis with them as validators.
    let mut homes = Vec::new();
    for i in 0..args.nodes {
        let home = dir.join(format!("node{i}"));
        let (peer_id, x25519) = init_node(node_bin, &home, &genesis_path, &pass_file, &boot_addr)?;
        genesis.validators.push(GenesisValidator {
            peer_id: peer_id.clone(),
            stake: args.stake,
            x25519,
        });
        // Every node's own key is an authorized client, so `seedfed sign --home <node>`
        // works out of the box.
        genesis.clients.push(GenesisClient {
            key: peer_id.clone(),
            quota: TESTNET_CLIENT_QUOTA,
        });
        homes.push((home, peer_id));
    }
    fs::write(&genesis_path, genesis.to_toml())?;
    for (home, _) in &homes {
        fs::write(home.join("genesis.toml"), genesis.to_toml())?;
        let _ = fs::remove_file(home.join(api::API_ADDR_FILE));
    }

    // Start the nodes.
    for (i, (home, _)) in homes.iter().enumerate() {
        let mut cmd = Command::new(node_bin);
        cmd.arg("--home")
            .arg(home)
            .arg("run")
            .arg("--passphrase-file")
            .arg(&pass_file)
            .env("SEEDFED__NETWORK__DISCOVERY_INTERVAL_SECS", "2")
            .envs(args.node_env.iter().map(|(k, v)| (k, v)));
        group.spawn(&format!("node{i}"), cmd)?;
    }
    for (i, (home, peer_id)) in homes.iter().enumerate() {
        let (api, status, p2p) = wait_listening(home, deadline).await?;
        if status.network.peer_id != *peer_id {
            bail!(
                "node{i} runs as {}, but `keys show` said {peer_id}",
                status.network.peer_id
            );
        }
        rows.push(NodeRow {
            name: format!("node{i}"),
            peer_id: peer_id.clone(),
            api,
            p2p,
            log: dir.join(format!("node{i}.log")),
        });
    }

    wait_admission(&rows, group, deadline, args.timeout, dir).await?;
    Ok(rows)
}

/// Waits until every node (not the bootstrap) has admitted every other row's peer.
async fn wait_admission(
    rows: &[NodeRow],
    group: &Group,
    deadline: Instant,
    timeout_secs: u64,
    dir: &Path,
) -> anyhow::Result<()> {
    let all: BTreeSet<String> = rows.iter().map(|r| r.peer_id.clone()).collect();
    loop {
        let mut missing = 0usize;
        for r in rows.iter().skip(1) {
            match api::fetch_status(r.api).await {
                Ok(s) => {
                    let have: BTreeSet<String> = s
                        .network
                        .admitted
                        .iter()
                        .map(|p| p.peer_id.clone())
                        .collect();
                    missing += all
                        .iter()
                        .filter(|p| **p != r.peer_id && !have.contains(*p))
                        .count();
                }
                Err(_) => missing += all.len(),
            }
        }
        if missing == 0 {
            return Ok(());
        }
        group.check_alive()?;
        if Instant::now() > deadline {
            bail!(
                "nodes did not all admit each other within {timeout_secs}s ({missing} admissions missing); logs in {}",
                dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
