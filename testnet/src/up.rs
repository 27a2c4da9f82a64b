//! `seedfed-testnet up` / `down`: a local multi-process federation on loopback.
//!
//! `up` builds a genesis, starts one `seedfed-bootstrap` and N `seedfed run` processes (each with
//! its own home, ports and log file under one directory), waits until every node has admitted
//! every other node and the bootstrap node, and prints where everything is. Children run in
//! their own process groups with their pids in `<dir>/pids`; `down` stops them (SIGTERM, then
//! SIGKILL after a grace period). If `up` fails or is interrupted, it stops what it started.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use seedfed_node::api;
use seedfed_node::chain::ChainStatus;
use seedfed_node::genesis::{EpochParams, Genesis, GenesisValidator};

/// Pid file inside the testnet directory: one `name pid` per line.
pub const PIDS_FILE: &str = "pids";
/// The passphrase of every node's keystore in a local testnet (not a secret: test keys only).
pub const PASSPHRASE: &str = "seedfed-local-testnet";

/// `seedfed-testnet up`
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    /// Directory for homes, logs and pid files (default: $TMPDIR/seedfed-testnet).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Admission proof-of-work difficulty.
    #[arg(long, default_value_t = 12)]
    pub difficulty: u8,
    /// Seconds to wait for full mutual admission.
    #[arg(long, default_value_t = 90)]
    pub timeout: u64,
    /// Stay in the foreground and stop everything on Ctrl-C.
    #[arg(long)]
    pub foreground: bool,
    /// Genesis stake of each node (each node is a validator).
    #[arg(long, default_value_t = 100)]
    pub stake: u64,
    /// Seconds to wait, after admission, for the epoch cycle (DKG, beacon, assignment,
    /// checkpoint); 0 skips the wait.
    #[arg(long, default_value_t = 180)]
    pub cycle_timeout: u64,
    /// Epoch-cycle windows for the genesis (default: the ledger's defaults).
    #[arg(skip)]
    pub epochs: Option<EpochParams>,
    /// Extra environment for the node processes, e.g. `SEEDFED__CONSENSUS__BLOCK_INTERVAL_MS`
    /// (set by library callers such as the benchmark).
    #[arg(skip)]
    pub node_env: Vec<(String, String)>,
}

/// `seedfed-testnet down`
#[derive(Debug, Args)]
pub struct DownArgs {
    /// The testnet directory given to (or printed by) `up`.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

fn default_dir() -> PathBuf {
    std::env::temp_dir().join("seedfed-testnet")
}

/// Finds `seedfed` and `seedfed-bootstrap` next to this executable, building them first when
/// run through cargo.
fn binaries() -> anyhow::Result<(PathBuf, PathBuf)> {
    let exe = std::env::current_exe().context("cannot locate this executable")?;
    let dir = exe
        .parent()
        .context("executable has no parent directory")?
        .to_path_buf();
    if let Some(cargo) = std::env::var_os("CARGO") {
        let mut cmd = Command::new(cargo);
        // The same packages as `cargo run -p seedfed-testnet` plus the two binaries, so cargo
        // unifies features the same way and the two builds do not invalidate each other.
        cmd.args([
            "build",
            "--bins",
            "-p",
            "seedfed-node",
            "-p",
            "seedfed-bootstrap",
            "-p",
            "seedfed-testnet",
        ]);
        if dir.ends_with("release") {
            cmd.arg("--release");
        }
        eprintln!("building seedfed and seedfed-bootstrap ...");
        let st = cmd.status().context("cannot run cargo build")?;
        if !st.success() {
            bail!("cargo build of the node binaries failed");
        }
    }
    let node = dir.join("seedfed");
    let boot = dir.join("seedfed-bootstrap");
    for b in [&node, &boot] {
        if !b.exists() {
            bail!(
                "{} not found; build it with `cargo build --release -p seedfed-node -p seedfed-bootstrap`",
                b.display()
            );
        }
    }
    Ok((node, boot))
}

/// A loopback port free for both TCP and UDP right now.
fn free_port() -> anyhow::Result<u16> {
    for _ in 0..100 {
        let t = TcpListener::bind("127.0.0.1:0")?;
        let port = t.local_addr()?.port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free loopback port found")
}

/// Started processes; stopped on drop unless disarmed.
struct Group {
    dir: PathBuf,
    procs: Vec<(String, u32)>,
    armed: bool,
}

impl Group {
    fn spawn(&mut self, name: &str, mut cmd: Command) -> anyhow::Result<u32> {
        let log = self.dir.join(format!("{name}.log"));
        let out =
            fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        self.procs.push((name.to_string(), child.id()));
        self.write_pids()?;
        Ok(child.id())
    }

    fn write_pids(&self) -> anyhow::Result<()> {
        let text: String = self
            .procs
            .iter()
            .map(|(n, p)| format!("{n} {p}\n"))
            .collect();
        fs::write(self.dir.join(PIDS_FILE), text).context("cannot write pid file")
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.armed {
            eprintln!("stopping the processes started so far ...");
            stop_all(&self.procs);
            let _ = fs::remove_file(self.dir.join(PIDS_FILE));
        }
    }
}

fn alive(pid: u32) -> bool {
    i32::try_from(pid).is_ok_and(|p| kill(Pid::from_raw(p), None::<Signal>).is_ok())
}

/// SIGTERM everything, wait up to 10 s, then SIGKILL what is left.
fn stop_all(procs: &[(String, u32)]) {
    let pids: Vec<i32> = procs
        .iter()
        .filter_map(|(_, p)| i32::try_from(*p).ok())
        .collect();
    for p in &pids {
        let _ = kill(Pid::from_raw(*p), Signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let reap = |pids: &[i32]| {
        // Reap our own exited children so they do not linger as zombies (no-op for processes
        // started by another invocation).
        for p in pids {
            let _ = nix::sys::wait::waitpid(
                Pid::from_raw(*p),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            );
        }
    };
    while Instant::now() < deadline && pids.iter().any(|p| alive(*p as u32)) {
        reap(&pids);
        std::thread::sleep(Duration::from_millis(100));
    }
    for p in &pids {
        if alive(*p as u32) {
            let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
        }
    }
    // Reap our own children (no-op for processes started by another invocation).
    for p in &pids {
        let _ = nix::sys::wait::waitpid(
            Pid::from_raw(*p),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
    }
}

fn read_pids(dir: &Path) -> Vec<(String, u32)> {
    fs::read_to_string(dir.join(PIDS_FILE))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (n, p) = l.split_once(' ')?;
            Some((n.to_string(), p.trim().parse().ok()?))
        })
        .collect()
}

/// `seedfed-testnet down`
pub fn down(args: DownArgs) -> anyhow::Result<()> {
    let dir = args.dir.unwrap_or_else(default_dir);
    let procs = read_pids(&dir);
    if procs.is_empty() {
        println!("no testnet running in {}", dir.display());
        return Ok(());
    }
    stop_all(&procs);
    fs::remove_file(dir.join(PIDS_FILE)).ok();
    println!(
        "stopped {} processes of the testnet in {}",
        procs.len(),
        dir.display()
    );
    Ok(())
}

async fn wait_api(
    home: &Path,
    deadline: Instant,
) -> anyhow::Result<(SocketAddr, api::StatusReport)> {
    loop {
        if let Ok(addr) = api::running_api_addr(home) {
            if let Ok(s) = api::fetch_status(addr).await {
                return Ok((addr, s));
            }
        }
        if Instant::now() > deadline {
            bail!("{} did not start its API in time", home.display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

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
}

impl Testnet {
    /// Whether every started process is still running; names the first one that is not.
    pub fn check_alive(&self) -> anyhow::Result<()> {
        for (name, pid) in &self.group.procs {
            if !alive(*pid) {
                bail!(
                    "{name} exited; see {}",
                    self.dir.join(format!("{name}.log")).display()
                );
            }
        }
        Ok(())
    }

    /// Stops every process now (SIGTERM, then SIGKILL after 10 s).
    pub fn stop(self) {
        drop(self);
    }
}

/// Starts a testnet in `dir` (created; must not hold a running testnet) as `up` does and
/// returns once all nodes admitted each other. Every process is stopped again if this fails,
/// and when the returned [`Testnet`] is dropped.
pub async fn start(args: &UpArgs, dir: &Path) -> anyhow::Result<Testnet> {
    if args.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    if read_pids(&dir).iter().any(|(_, p)| alive(*p)) {
        bail!("a testnet is already running in {}", dir.display());
    }
    let mut group = Group {
        dir: dir.clone(),
        procs: vec![],
        armed: true,
    };
    let rows = up_inner(args, &dir, &mut group).await?;
    Ok(Testnet { group, dir, rows })
}

async fn up_inner(args: &UpArgs, dir: &Path, group: &mut Group) -> anyhow::Result<Vec<NodeRow>> {
    let (node_bin, boot_bin) = binaries()?;
    let genesis_path = dir.join("genesis.toml");
    let chain_id = "seedfed-local".to_string();
    let mut genesis = Genesis {
        chain_id: chain_id.clone(),
        pow_difficulty: args.difficulty,
        validators: vec![],
        key: Default::default(),
        epochs: args.epochs.clone().unwrap_or_default(),
    };
    fs::write(&genesis_path, genesis.to_toml())?;
    let pass_file = dir.join("passphrase");
    fs::write(&pass_file, PASSPHRASE)?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);

    // Bootstrap node.
    let boot_home = dir.join("bootstrap");
    let bport = free_port()?;
    let mut cmd = Command::new(&boot_bin);
    cmd.arg("run")
        .arg("--home")
        .arg(&boot_home)
        .arg("--genesis")
        .arg(&genesis_path)
        .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{bport}")])
        .args(["--listen", &format!("/ip4/127.0.0.1/udp/{bport}/quic-v1")])
        .args([
            "--api-listen",
            "127.0.0.1:0",
            "--discovery-interval-secs",
            "2",
        ]);
    group.spawn("bootstrap", cmd)?;
    let (boot_api, boot_status) = wait_api(&boot_home, deadline).await?;
    let boot_addr = format!(
        "/ip4/127.0.0.1/tcp/{bport}/p2p/{}",
        boot_status.network.peer_id
    );
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
        let port = free_port()?;
        let out = Command::new(&node_bin)
            .arg("--home")
            .arg(&home)
            .arg("init")
            .arg("--chain")
            .arg(&genesis_path)
            .arg("--passphrase-file")
            .arg(&pass_file)
            .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{port}")])
            .args(["--listen", &format!("/ip4/127.0.0.1/udp/{port}/quic-v1")])
            .args([
                "--bootstrap",
                &boot_addr,
                "--api-listen",
                "127.0.0.1:0",
                "--force",
            ])
            .stdin(Stdio::null())
            .output()
            .context("cannot run seedfed init")?;
        if !out.status.success() {
            bail!(
                "seedfed init for node{i} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let keys = Command::new(&node_bin)
            .arg("--home")
            .arg(&home)
            .args(["keys", "show", "--json"])
            .output()
            .context("cannot run seedfed keys show")?;
        let public: serde_json::Value = serde_json::from_slice(&keys.stdout)
            .with_context(|| format!("bad `keys show` output for node{i}"))?;
        let peer_id = public["peer_id"]
            .as_str()
            .context("no peer id in `keys show`")?
            .to_string();
        let x25519 = public["x25519_public"]
            .as_str()
            .context("no x25519 key in `keys show`")?
            .to_string();
        genesis.validators.push(GenesisValidator {
            peer_id: peer_id.clone(),
            stake: args.stake,
            x25519,
        });
        homes.push((home, peer_id, port));
    }
    fs::write(&genesis_path, genesis.to_toml())?;
    for (home, _, _) in &homes {
        fs::write(home.join("genesis.toml"), genesis.to_toml())?;
    }

    // Start the nodes.
    for (i, (home, _, _)) in homes.iter().enumerate() {
        let mut cmd = Command::new(&node_bin);
        cmd.arg("--home")
            .arg(home)
            .arg("run")
            .arg("--passphrase-file")
            .arg(&pass_file)
            .env("SEEDFED__NETWORK__DISCOVERY_INTERVAL_SECS", "2")
            .envs(args.node_env.iter().map(|(k, v)| (k, v)));
        group.spawn(&format!("node{i}"), cmd)?;
    }
    for (i, (home, peer_id, port)) in homes.iter().enumerate() {
        let (api, _) = wait_api(home, deadline).await?;
        rows.push(NodeRow {
            name: format!("node{i}"),
            peer_id: peer_id.clone(),
            api,
            p2p: format!("/ip4/127.0.0.1/tcp/{port}/p2p/{peer_id}"),
            log: dir.join(format!("node{i}.log")),
        });
    }

    // Wait for full mutual admission.
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
            break;
        }
        for (name, pid) in &group.procs {
            if !alive(*pid) {
                bail!(
                    "{name} exited; see {}",
                    dir.join(format!("{name}.log")).display()
                );
            }
        }
        if Instant::now() > deadline {
            bail!(
                "nodes did not all admit each other within {}s ({missing} admissions missing); logs in {}",
                args.timeout,
                dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(rows)
}

/// Verifies a recorded checkpoint: the signature over its 136 bytes verifies with
/// ed25519-dalek `verify_strict` under the group key that signed it, and that key is the
/// Ed25519 group key of a DKG completed on the ledger.
pub fn verify_checkpoint(c: &ChainStatus, seq: usize) -> anyhow::Result<()> {
    let cp = c.checkpoints.get(seq).context("no such checkpoint")?;
    if !c.dkgs.iter().any(|d| d.ed25519_group_key == cp.group_key) {
        bail!("checkpoint {} is signed by a key no DKG produced", cp.seq);
    }
    let key: [u8; 32] = hex::decode(&cp.group_key)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("group key is not 32 bytes"))?;
    let sig: [u8; 64] = hex::decode(&cp.signature)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("signature is not 64 bytes"))?;
    ed25519_dalek::VerifyingKey::from_bytes(&key)?
        .verify_strict(
            &hex::decode(&cp.bytes)?,
            &ed25519_dalek::Signature::from_bytes(&sig),
        )
        .with_context(|| format!("checkpoint {} does not verify", cp.seq))?;
    Ok(())
}

/// Waits until every node's ledger shows the epoch cycle done, printing each milestone once:
/// consensus running, the first DKG complete (the same result on every node), epoch 1 with
/// its beacon, a branch assignment, and a checkpoint that verifies.
async fn wait_cycle(nodes: &[NodeRow], deadline: Instant, group: &Group) -> anyhow::Result<()> {
    let mut printed = [false; 5];
    loop {
        let mut all = Vec::new();
        for r in nodes {
            if let Some(c) = api::fetch_status(r.api).await.ok().and_then(|s| s.chain) {
                all.push((r, c));
            }
        }
        let full = all.len() == nodes.len();
        let min_height = all.iter().map(|(_, c)| c.height).min().unwrap_or(0);
        if full && min_height > 0 && !printed[0] {
            printed[0] = true;
            println!("consensus: every node is deciding blocks (height {min_height})");
        }
        let dkg_done = full && all.iter().all(|(_, c)| !c.dkgs.is_empty());
        if dkg_done && !printed[1] {
            printed[1] = true;
            let d = &all[0].1.dkgs[0];
            if all.iter().any(|(_, c)| c.dkgs[0] != *d) {
                bail!("nodes recorded different DKG results");
            }
            println!(
                "DKG (epoch {}): {} of {} qualified, threshold {}",
                d.epoch,
                d.qualified.len(),
                d.qualified.len() + d.excluded.len(),
                d.threshold
            );
            println!(
                "  ristretto255 group key (seed-tree root, beacon): {}",
                d.ristretto255_group_key
            );
            println!(
                "  Ed25519 group key (checkpoints):                 {}",
                d.ed25519_group_key
            );
        }
        let epoch1 = full && all.iter().all(|(_, c)| c.epoch >= 1);
        if epoch1 && !printed[2] {
            printed[2] = true;
            println!(
                "epoch {} started; beacon {}",
                all[0].1.epoch, all[0].1.beacon
            );
        }
        let assigned = full && all.iter().all(|(_, c)| c.assignment_epoch.is_some());
        if assigned && !printed[3] {
            printed[3] = true;
            let c = &all[0].1;
            let names: BTreeMap<String, &str> = nodes
                .iter()
                .map(|r| (r.peer_id.clone(), r.name.as_str()))
                .collect();
            let by_id: BTreeMap<&str, &str> = c
                .validators
                .iter()
                .map(|v| (v.id.as_str(), names.get(&v.peer_id).copied().unwrap_or("?")))
                .collect();
            let owners: Vec<String> = c
                .assignment
                .iter()
                .enumerate()
                .map(|(i, o)| format!("sector {i} -> {}", by_id.get(o.as_str()).unwrap_or(&"?")))
                .collect();
            println!(
                "branch assignment (epoch {}): {}",
                c.assignment_epoch.unwrap_or_default(),
                owners.join(", ")
            );
        }
        let checkpointed = full && all.iter().all(|(_, c)| !c.checkpoints.is_empty());
        if checkpointed && !printed[4] {
            for (r, c) in &all {
                verify_checkpoint(c, 0).with_context(|| format!("on {}", r.name))?;
            }
            printed[4] = true;
            let cp = &all[0].1.checkpoints[0];
            println!(
                "checkpoint #{} (epoch {}, height {}) signed by the federation (FROST, Ed25519); verify_strict OK on every node",
                cp.seq, cp.epoch, cp.height
            );
        }
        if printed.iter().all(|p| *p) {
            println!(
                "the ledger agrees on every node: DKG, beacon, assignment and checkpoint done"
            );
            return Ok(());
        }
        for (name, pid) in &group.procs {
            if !alive(*pid) {
                bail!("{name} exited; see its log");
            }
        }
        if Instant::now() > deadline {
            bail!("the epoch cycle did not complete in time (milestones reached: {printed:?})");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// `seedfed-testnet up`
pub fn up(args: UpArgs) -> anyhow::Result<()> {
    let dir = args.dir.clone().unwrap_or_else(default_dir);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    if read_pids(&dir).iter().any(|(_, p)| alive(*p)) {
        bail!(
            "a testnet is already running in {}; stop it with `seedfed-testnet down --dir {}`",
            dir.display(),
            dir.display()
        );
    }
    if args.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    println!("testnet directory: {}", dir.display());
    let mut group = Group {
        dir: dir.clone(),
        procs: vec![],
        armed: true,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Signal handlers are installed before any child starts, so an interrupt at any point
    // reaches the cleanup below (children run in their own process groups).
    let (mut int, mut term) = rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    })?;
    let rows = rt.block_on(async {
        tokio::select! {
            r = up_inner(&args, &dir, &mut group) => r,
            _ = int.recv() => Err(anyhow::anyhow!("interrupted")),
            _ = term.recv() => Err(anyhow::anyhow!("terminated")),
        }
    })?;
    println!(
        "{:<10} {:<54} {:<22} {:<40} log",
        "name", "peer id", "api", "metrics"
    );
    for r in &rows {
        println!(
            "{:<10} {:<54} {:<22} {:<40} {}",
            r.name,
            r.peer_id,
            r.api,
            format!("http://{}/metrics", r.api),
            r.log.display()
        );
    }
    println!("bootstrap address: {}", rows[0].p2p);
    println!(
        "all {} nodes admitted each other and the bootstrap node",
        args.nodes
    );
    if args.cycle_timeout > 0 {
        let nodes: Vec<NodeRow> = rows
            .iter()
            .filter(|r| r.name != "bootstrap")
            .cloned()
            .collect();
        let deadline = Instant::now() + Duration::from_secs(args.cycle_timeout);
        rt.block_on(async {
            tokio::select! {
                r = wait_cycle(&nodes, deadline, &group) => r,
                _ = int.recv() => Err(anyhow::anyhow!("interrupted")),
                _ = term.recv() => Err(anyhow::anyhow!("terminated")),
            }
        })?;
    }
    if args.foreground {
        println!("running; press Ctrl-C to stop");
        rt.block_on(async {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        });
        return Ok(()); // the armed group stops everything on drop
    }
    group.armed = false;
    println!("stop with: seedfed-testnet down --dir {}", dir.display());
    Ok(())
}
