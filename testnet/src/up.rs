//! `seedfed-testnet up` / `down`: a local multi-process federation on loopback.
//!
//! `up` builds a genesis, starts one `seedfed-bootstrap` and N `seedfed run` processes (each with
//! its own home, OS-picked ports and log file under one directory), waits until every node has
//! admitted every other node and the bootstrap node, and prints where everything is. Guarantees:
//! children run in their own process groups with their pids in `<dir>/pids`; `down` stops them
//! (SIGTERM, then SIGKILL after a grace period); if `up` fails or is interrupted, it stops what
//! it started.
//!
//! Modules: `binaries` (finding, and under cargo building, `seedfed` and `seedfed-bootstrap`),
//! `processes` (spawning, the pid file, stopping), `launch` (genesis, homes, processes,
//! admission), `milestones` (waiting for and printing the epoch cycle), `key` (waiting for the
//! federation's key and writing `seedfed.pub`), `signing` (signing a handful of messages
//! through the nodes and verifying them with the light client).

mod binaries;
mod key;
mod launch;
mod milestones;
mod processes;
mod signing;

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use seedfed_node::genesis::EpochParams;

pub use binaries::{binaries_in, build_command, is_package_env, BUILD_PACKAGES, PACKAGE_ENV};
pub(crate) use key::endorsing_checkpoint;
pub use key::PUBKEY_FILE;
pub use launch::{start, start_with, testnet_key, NodeRow, Testnet};
pub use milestones::verify_checkpoint;
pub use processes::PIDS_FILE;
pub use signing::{client_key, SIGNED_DIR};

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
    /// Height of the federation's LMS tree (5, 10, 15, 20 or 25; `2^h` one-time keys);
    /// default: the genesis default (10).
    #[arg(long)]
    pub tree_height: Option<u8>,
    /// Seconds to wait, after admission, for the epoch cycle (DKG, beacon, assignment,
    /// checkpoint); 0 skips the wait.
    #[arg(long, default_value_t = 180)]
    pub cycle_timeout: u64,
    /// Seconds to wait, after the epoch cycle, for the federation's key (every sector dealt,
    /// the master root final and signed by a checkpoint); 0 skips the wait.
    #[arg(long, default_value_t = 300)]
    pub key_timeout: u64,
    /// Messages to sign through the nodes once the key is final, each verified by the light
    /// client; 0 skips signing.
    #[arg(long, default_value_t = 4)]
    pub signatures: usize,
    /// Epoch-cycle windows for the genesis (default: the ledger's defaults).
    #[arg(skip)]
    pub epochs: Option<EpochParams>,
    /// Extra environment for the node processes, e.g. `SEEDFED__CONSENSUS__BLOCK_INTERVAL_MS`
    /// (set by library callers such as the benchmark).
    #[arg(skip)]
    pub node_env: Vec<(String, String)>,
}

impl UpArgs {
    /// A testnet of `nodes` validators in `dir` that a bench or test drives itself: no wait for
    /// the epoch cycle or a key, no signatures, genesis defaults, stake 100 each, and the
    /// nodes' block interval `block_interval_ms` if given.
    pub fn for_bench(nodes: usize, dir: PathBuf, block_interval_ms: Option<u64>) -> UpArgs {
        UpArgs {
            nodes,
            dir: Some(dir),
            difficulty: 8,
            timeout: 180,
            foreground: false,
            stake: 100,
            tree_height: None,
            cycle_timeout: 0,
            key_timeout: 0,
            signatures: 0,
            epochs: None,
            node_env: block_interval_ms
                .map(|ms| {
                    (
                        "SEEDFED__CONSENSUS__BLOCK_INTERVAL_MS".into(),
                        ms.to_string(),
                    )
                })
                .into_iter()
                .collect(),
        }
    }
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

/// Runs `fut` to completion on `rt`, or fails when this process gets SIGINT or SIGTERM
/// (dropping `fut` then stops the testnet it started): the benches' networked parts.
pub fn block_on_interruptible<T>(
    rt: &tokio::runtime::Runtime,
    fut: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = fut => r,
            _ = int.recv() => Err(anyhow::anyhow!("interrupted")),
            _ = term.recv() => Err(anyhow::anyhow!("terminated")),
        }
    })
}

/// `seedfed-testnet down`
pub fn down(args: DownArgs) -> anyhow::Result<()> {
    let dir = args.dir.unwrap_or_else(default_dir);
    let procs = processes::read_pids(&dir);
    if procs.is_empty() {
        println!("no testnet running in {}", dir.display());
        return Ok(());
    }
    processes::stop_all(&procs);
    fs::remove_file(dir.join(PIDS_FILE)).ok();
    println!(
        "stopped {} processes of the testnet in {}",
        procs.len(),
        dir.display()
    );
    Ok(())
}

/// Prints one line per process: name, peer id, API, status page and metrics URLs, and log
/// file.
fn print_table(rows: &[NodeRow]) {
    println!(
        "{:<10} {:<54} {:<22} {:<30} {:<37} log",
        "name", "peer id", "api", "status page", "metrics"
    );
    for r in rows {
        println!(
            "{:<10} {:<54} {:<22} {:<30} {:<37} {}",
            r.name,
            r.peer_id,
            r.api,
            page_url(r),
            format!("http://{}/metrics", r.api),
            r.log.display()
        );
    }
}

/// The status page of a process (served at its API's `/`).
pub fn page_url(r: &NodeRow) -> String {
    format!("http://{}/", r.api)
}

/// `seedfed-testnet up`
pub fn up(args: UpArgs) -> anyhow::Result<()> {
    let dir = args.dir.clone().unwrap_or_else(default_dir);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    println!("testnet directory: {}", dir.display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Signal handlers are installed before any child starts, so an interrupt at any point
    // reaches the cleanup (dropping `start`'s future stops what it started; children run in
    // their own process groups and do not see the terminal's Ctrl-C).
    let (mut int, mut term) = rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    })?;
    let net = rt.block_on(async {
        tokio::select! {
            r = start(&args, &dir) => r,
            _ = int.recv() => Err(anyhow::anyhow!("interrupted")),
            _ = term.recv() => Err(anyhow::anyhow!("terminated")),
        }
    })?;
    print_table(&net.rows);
    println!("bootstrap address: {}", net.rows[0].p2p);
    println!(
        "status pages (open in a browser; they refresh themselves): {}",
        net.rows.iter().map(page_url).collect::<Vec<_>>().join(" ")
    );
    println!(
        "all {} nodes admitted each other and the bootstrap node",
        args.nodes
    );
    if args.cycle_timeout > 0 {
        let deadline = Instant::now() + Duration::from_secs(args.cycle_timeout);
        let anchor = rt.block_on(async {
            tokio::select! {
                r = milestones::wait_cycle(&net, deadline) => r,
                _ = int.recv() => Err(anyhow::anyhow!("interrupted")),
                _ = term.recv() => Err(anyhow::anyhow!("terminated")),
            }
        })?;
        if args.key_timeout > 0 {
            let deadline = Instant::now() + Duration::from_secs(args.key_timeout);
            rt.block_on(async {
                tokio::select! {
                    r = key::wait_key(&net, &dir, deadline) => r.map(|_| ()),
                    _ = int.recv() => Err(anyhow::anyhow!("interrupted")),
                    _ = term.recv() => Err(anyhow::anyhow!("terminated")),
                }
            })?;
            if args.signatures > 0 {
                rt.block_on(async {
                    tokio::select! {
                        r = signing::sign_and_verify(&net, anchor, args.signatures, Duration::from_secs(120)) => r,
                        _ = int.recv() => Err(anyhow::anyhow!("interrupted")),
                        _ = term.recv() => Err(anyhow::anyhow!("terminated")),
                    }
                })?;
            }
        }
    }
    if args.foreground {
        println!("running; press Ctrl-C to stop");
        rt.block_on(async {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        });
        return Ok(()); // dropping `net` stops everything
    }
    net.detach();
    println!("stop with: seedfed-testnet down --dir {}", dir.display());
    Ok(())
}
