//! `seedfed-bench fedkeygen`: the federation's key generation on a real local multi-process
//! testnet, next to the CPU time of its cryptographic work in one process, measured in one run.
//!
//! **Wall time** (`wall_ms`) is key generation as node0's ledger sees it: from the first
//! `/status` poll of node0 that shows the epoch's branch assignment on the ledger
//! (`assignment_epoch` set: the `BranchAssignment` transaction decided) to the first poll that
//! shows the master root final (`key.master_root` set: the `MasterRoot` transaction decided),
//! polled every [`POLL_MS`] ms. It spans branch-partial delivery, every owner's sector
//! generation and dealing, the batches' transport, the holders' checks and acknowledgements,
//! the `SectorRoot` transactions and the `MasterRoot` transaction, all through consensus. The
//! checkpoint that later signs the key is not in it. After the measurement the bench checks
//! that every node reports the same master root. It also prints what node0's ledger showed
//! along the way (heights, sectors final) and the CPU time the node processes used over the
//! interval (`/proc/<pid>/stat`, summed), to tell work from waiting.
//!
//! **Bound** (`bound_ms`): on one thread of this process, before the testnet starts, with the
//! same key parameters (the testnet genesis for `--nodes` validators, see
//! [`crate::up::testnet_key`]) and the same tree layout, the thread CPU time
//! ([`crate::cpu_clock`]) of, for every sector: deriving its leaf seeds from a branch seed and
//! generating it (`Sector::generate`), Feldman-dealing every leaf `k`-of-`r` to its holders
//! (`shamir::deal_batch`, which also encodes the commitments, as the owner does), and
//! verifying every share as its holder does (`shamir::verify_batch`, once per holder and chunk
//! of `2^dealing::MAX_CHUNK_BITS` leaves, on the dealt commitments). Divided by the machine's
//! cores (`std::thread::available_parallelism`). Holder selection and the holders' decoding of
//! the commitments from their wire form are real work of the protocol too but are *not* in the
//! bound; the bench prints their CPU time separately (decoding extrapolated from each sector's
//! first chunk). `ratio = wall_ms / bound_ms`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use clap::Args;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use seedfed_node::api::ApiClient;
use seedfed_node::genesis::KeySection;
use seedfed_protocol::dealing::chunk_bits;
use seedfed_protocol::ledger::{chain_digest, HolderBasis, KeyParams};
use seedfed_protocol::member::MemberId;
use seedfed_protocol::sector::Sector;
use seedfed_protocol::seed_tree::{Branch, BranchSeed};
use seedfed_protocol::shamir::{self, Commitment, Share};
use serde_json::json;

use crate::bench_json::rounded;
use crate::cpu_clock::thread_cpu_ns;
use crate::up::{self, UpArgs};

/// The testnet's chain id (set by `up`).
const CHAIN_ID: &str = "seedfed-local";
/// How often node0's `/status` is polled while key generation runs (ms): the resolution of
/// both ends of the wall-time interval.
pub const POLL_MS: u64 = 20;

/// `seedfed-bench fedkeygen`
#[derive(Debug, Clone, Args)]
pub struct FedKeygenArgs {
    /// Validators (one process each).
    #[arg(long, default_value_t = 7)]
    pub nodes: usize,
    /// Height of the federation's LMS tree: 5, 10, 15, 20 or 25.
    #[arg(long, default_value_t = 20)]
    pub height: u8,
    /// Upper bound on the networked part (start-up, epoch cycle, key generation), in seconds.
    #[arg(long, default_value_t = 3600)]
    pub timeout: u64,
    /// Directory for the testnet, kept afterwards with the nodes' logs (default:
    /// `$TMPDIR/seedfed-bench-fedkeygen-PID`, PID = ours, removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// The single-process reference: thread CPU time of each part, in ms.
#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    /// Leaf seeds from the branch seed and `Sector::generate`, every sector.
    pub generate_ms: f64,
    /// `shamir::deal_batch` of every leaf.
    pub deal_ms: f64,
    /// `shamir::verify_batch` of every share, per holder and chunk.
    pub verify_ms: f64,
    /// Cores the CPU time is divided by.
    pub cores: usize,
    /// Not in the bound: holder selection (`HolderBasis::holders_of`) of every leaf, once.
    pub select_ms: f64,
    /// Not in the bound: decoding the commitments of every held leaf from bytes, once per
    /// holder (extrapolated from each sector's first chunk).
    pub decode_ms_est: f64,
}

impl Bound {
    /// CPU time of the parts in the bound.
    pub fn cpu_ms(&self) -> f64 {
        self.generate_ms + self.deal_ms + self.verify_ms
    }

    /// The bound: CPU time over cores.
    pub fn bound_ms(&self) -> f64 {
        self.cpu_ms() / self.cores.max(1) as f64
    }
}

/// The ledger's key parameters of a testnet of `nodes` validators with tree height `height`:
/// what `up` writes into the genesis, with the acknowledgement threshold resolved as the
/// ledger resolves it.
pub fn key_params(nodes: usize, height: u8) -> KeyParams {
    let k: KeySection = up::testnet_key(nodes, Some(height));
    KeyParams {
        tree_height: k.tree_height,
        sector_bits: k.sector_bits,
        leaf_threshold: k.leaf_threshold,
        leaf_holders: k.leaf_holders,
        ack_threshold: k
            .ack_threshold
            .unwrap_or_else(|| KeyParams::default_ack_threshold(k.leaf_threshold, k.leaf_holders)),
        audit_leaves: k.audit_leaves,
        sector_window: k.sector_window,
        rotate_percent: k.rotate_percent,
    }
}

/// "N validators, Hh (2^h leaves), S sectors, k-of-r leaf shares": a bench's first line.
pub fn key_summary(nodes: usize, params: &KeyParams) -> String {
    format!(
        "{nodes} validators, H{h} (2^{h} leaves), {} sectors, {}-of-{} leaf shares",
        params.sectors(),
        params.leaf_threshold,
        params.leaf_holders,
        h = params.tree_height,
    )
}

/// A current-thread runtime for a bench's networked part.
pub fn current_thread() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// `n` members with equal stake, as in a testnet (fixed Ed25519 identities).
fn members(n: usize) -> Vec<(MemberId, u64)> {
    (0..n)
        .map(|i| {
            let k = ed25519_dalek::SigningKey::from_bytes(&[(i as u8).wrapping_add(1); 32]);
            (MemberId(k.verifying_key().to_bytes()), 100)
        })
        .collect()
}

fn cpu_ms_since(start: u64) -> anyhow::Result<f64> {
    let now = thread_cpu_ns().context("no thread CPU clock")?;
    Ok(now.saturating_sub(start) as f64 / 1e6)
}

fn cpu_now() -> anyhow::Result<u64> {
    thread_cpu_ns().context("no thread CPU clock")
}

/// Measures the [`Bound`] for `params` among `nodes` validators, on the calling thread.
pub fn cpu_bound(params: &KeyParams, nodes: usize) -> anyhow::Result<Bound> {
    let layout = params
        .layout(&chain_digest(CHAIN_ID), 0)
        .map_err(|e| anyhow::anyhow!("key parameters: {e}"))?;
    let basis = HolderBasis {
        beacon: [0x5b; 32],
        members: members(nodes),
    };
    let (k, r) = (usize::from(params.leaf_threshold), params.leaf_holders);
    let chunk_len = 1usize << chunk_bits(layout.sector_height());
    let mut rng = ChaCha20Rng::from_seed([0x17; 32]);
    let mut b = Bound {
        generate_ms: 0.0,
        deal_ms: 0.0,
        verify_ms: 0.0,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        select_ms: 0.0,
        decode_ms_est: 0.0,
    };
    for sector in 0..layout.sectors() {
        let leaves = layout.sector_leaves(sector)?;
        let first = leaves.start;

        let t = cpu_now()?;
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&sector.to_le_bytes());
        let branch = Branch::new(BranchSeed::from_bytes(seed), sector, layout.sector_height())?;
        let seeds = branch.leaf_seeds(0, branch.size())?;
        let tree = Sector::generate(layout, sector, 1, |q| {
            seeds[(q - first) as usize].lms_seed()
        })?;
        std::hint::black_box(tree.root());
        b.generate_ms += cpu_ms_since(t)?;

        let t = cpu_now()?;
        let holders = basis.holders_of(u64::from(first)..u64::from(leaves.end), r)?;
        b.select_ms += cpu_ms_since(t)?;

        let t = cpu_now()?;
        let dealings = shamir::deal_batch(
            seeds.iter().zip(holders.iter().map(Vec::as_slice)),
            k,
            &mut rng,
        )?;
        b.deal_ms += cpu_ms_since(t)?;
        drop(seeds);

        // Every holder checks its shares of each chunk in one batch, as `open_batch` does.
        let chunks = dealings.len().div_ceil(chunk_len);
        for (c, chunk) in dealings.chunks(chunk_len).enumerate() {
            let mut per_holder: BTreeMap<MemberId, Vec<(&Share, &Commitment)>> = BTreeMap::new();
            for d in chunk {
                for s in &d.shares {
                    per_holder
                        .entry(s.holder)
                        .or_default()
                        .push((s, &d.commitment));
                }
            }
            if c == 0 {
                let t = cpu_now()?;
                for items in per_holder.values() {
                    for (_, commitment) in items {
                        std::hint::black_box(commitment.encoded().decode()?);
                    }
                }
                b.decode_ms_est += cpu_ms_since(t)? * chunks as f64;
            }
            let t = cpu_now()?;
            for items in per_holder.values() {
                shamir::verify_batch(items, k, &mut rng)?;
            }
            b.verify_ms += cpu_ms_since(t)?;
        }
    }
    Ok(b)
}

/// What the networked run saw on node0, in ms since the assignment landed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timeline {
    /// Height and epoch of the first poll showing the assignment.
    pub assigned_height: u64,
    /// Epoch of the assignment.
    pub assigned_epoch: u64,
    /// Each change of the final-sector count: (ms, height, sectors final).
    pub sectors: Vec<(f64, u64, usize)>,
    /// The master root final: (ms, height, epoch).
    pub master: (f64, u64, u64),
    /// Each sector and its owner's node name, as the ledger recorded them.
    pub owners: Vec<(u32, String)>,
    /// CPU time the node processes used over the interval, summed (ms).
    pub nodes_cpu_ms: f64,
    /// The 1-minute load average when the assignment landed and when the root was final.
    pub load: (Option<f64>, Option<f64>),
}

/// `seedfed-bench fedkeygen`: the bound, then the testnet; prints the report, ending with one
/// JSON line.
pub fn run(args: FedKeygenArgs) -> anyhow::Result<()> {
    ensure!(args.nodes >= 1, "--nodes must be at least 1");
    ensure!(
        matches!(args.height, 5 | 10 | 15 | 20 | 25),
        "--height must be 5, 10, 15, 20 or 25"
    );
    let params = key_params(args.nodes, args.height);
    println!(
        "fedkeygen: {}, {} acks per leaf",
        key_summary(args.nodes, &params),
        params.ack_threshold
    );
    let b = cpu_bound(&params, args.nodes)?;
    println!(
        "bound (one thread, CPU time): seeds + Sector::generate {:.0} ms, deal_batch {:.0} ms, \
         verify_batch {:.0} ms = {:.0} ms / {} cores = {:.0} ms",
        b.generate_ms,
        b.deal_ms,
        b.verify_ms,
        b.cpu_ms(),
        b.cores,
        b.bound_ms()
    );
    println!(
        "not in the bound (CPU time): holder selection {:.0} ms (once; every owner, holder and \
         ledger computes it), commitment decoding by the holders ~{:.0} ms (extrapolated)",
        b.select_ms, b.decode_ms_est
    );
    let (wall_ms, tl) = up::block_on_interruptible(&current_thread()?, networked(&args))?;
    println!(
        "timeline (node0, ms after the assignment landed at height {}, epoch {}; sector owners {}):",
        tl.assigned_height,
        tl.assigned_epoch,
        owners_line(&tl.owners)
    );
    for (ms, h, n) in &tl.sectors {
        println!("  {ms:>10.0} ms  height {h:>5}  {n} sectors final");
    }
    println!(
        "  {:>10.0} ms  height {:>5}  master root final (epoch {})",
        tl.master.0, tl.master.1, tl.master.2
    );
    let fmt_load = |l: Option<f64>| l.map_or_else(|| "?".to_string(), |l| format!("{l:.1}"));
    println!(
        "node processes' CPU over the interval: {:.0} ms summed = {:.2} x the bound's CPU time \
         ({:.0} ms); machine load average {} -> {}",
        tl.nodes_cpu_ms,
        tl.nodes_cpu_ms / b.cpu_ms(),
        b.cpu_ms(),
        fmt_load(tl.load.0),
        fmt_load(tl.load.1)
    );
    println!(
        "{}",
        report_json(args.nodes, args.height, wall_ms, b.bound_ms())
    );
    Ok(())
}

/// The JSON line.
pub fn report_json(nodes: usize, height: u8, wall_ms: f64, bound_ms: f64) -> serde_json::Value {
    json!({
        "bench": "fedkeygen",
        "nodes": nodes,
        "height": height,
        "wall_ms": rounded(wall_ms, 1),
        "bound_ms": rounded(bound_ms, 1),
        "ratio": rounded(wall_ms / bound_ms, 3),
    })
}

/// The bench's testnet directory: `dir` if given (kept afterwards), else
/// `$TMPDIR/seedfed-bench-<bench>-PID` (removed afterwards); the flag says whether it is
/// temporary.
pub fn bench_dir(dir: Option<&PathBuf>, bench: &str) -> (PathBuf, bool) {
    match dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("seedfed-bench-{bench}-{}", std::process::id())),
            true,
        ),
    }
}

/// Removes a temporary bench directory, or says where a kept one is.
pub fn finish_dir(dir: &Path, temp: bool) {
    if temp {
        let _ = std::fs::remove_dir_all(dir);
    } else {
        eprintln!("node logs kept in {}", dir.display());
    }
}

/// Where key generation stands, as node0's ledger shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Start-up and the epoch cycle: no branch assignment on the ledger yet.
    Setup,
    /// From the assignment to the master root: owners generate and deal, holders check and
    /// keep their shares.
    Keygen,
    /// The master root is final: the nodes hold their share sets.
    Holding,
}

impl Phase {
    /// Every phase, in order.
    pub const ALL: [Phase; 3] = [Phase::Setup, Phase::Keygen, Phase::Holding];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Setup => "setup",
            Phase::Keygen => "keygen",
            Phase::Holding => "holding",
        }
    }
}

/// A testnet whose federation key is final, as [`wait_master_root`] leaves it: still running.
pub struct KeyedTestnet {
    /// The testnet (stopped when dropped).
    pub net: up::Testnet,
    /// Assignment landed → master root final on node0 (ms).
    pub wall_ms: f64,
    /// What node0 showed along the way.
    pub timeline: Timeline,
    /// The end of the run's time budget.
    pub deadline: Instant,
}

/// Starts a testnet of `nodes` validators with tree height `height` in `dir` and waits, polling
/// node0 every [`POLL_MS`] ms, until its master root is final; `on_poll` is called after every
/// poll with the phase node0 is in, and an error it returns ends the wait. Fails if that takes
/// more than `timeout_secs` from the start, or a process dies; the testnet is stopped on
/// failure.
pub async fn wait_master_root(
    nodes: usize,
    height: u8,
    timeout_secs: u64,
    dir: &Path,
    mut on_poll: impl FnMut(&up::Testnet, Phase) -> anyhow::Result<()>,
) -> anyhow::Result<KeyedTestnet> {
    eprintln!("starting {nodes} validators in {} ...", dir.display());
    let up_args = UpArgs {
        nodes,
        dir: Some(dir.to_path_buf()),
        difficulty: 8,
        timeout: timeout_secs,
        foreground: false,
        stake: 100,
        tree_height: Some(height),
        node_env: vec![],
        epochs: None,
        cycle_timeout: 0,
        key_timeout: 0,
        signatures: 0,
    };
    let deadline = Instant::now() + Duration::from_secs(timeout_secs);
    let net = up::start(&up_args, dir).await?;
    let node0 = net
        .rows
        .iter()
        .find(|r| r.name == "node0")
        .context("no node0")?
        .api;
    let client = ApiClient::new();
    let mut tl = Timeline::default();
    let mut assigned: Option<Instant> = None;
    let mut cpu_at_assignment = 0.0;
    let mut last_assignment = 0;
    let wall = loop {
        if Instant::now() > deadline {
            bail!(
                "key generation did not complete within {timeout_secs}s ({} sectors final); logs in {}",
                tl.sectors.last().map_or(0, |s| s.2),
                dir.display()
            );
        }
        net.check_alive()?;
        if let Some(c) = client.status(node0).await.ok().and_then(|s| s.chain) {
            if assigned.is_none() && c.assignment_epoch.is_some() {
                assigned = Some(Instant::now());
                cpu_at_assignment = nodes_cpu_ms(&net);
                tl.load.0 = load_average();
                tl.assigned_height = c.height;
                tl.assigned_epoch = c.assignment_epoch.unwrap_or_default();
                last_assignment = tl.assigned_epoch;
            }
            if let Some(t0) = assigned {
                let ms = t0.elapsed().as_secs_f64() * 1e3;
                if tl.sectors.last().map_or(0, |s| s.2) != c.key.sectors_final {
                    tl.sectors.push((ms, c.height, c.key.sectors_final));
                    eprintln!(
                        "{ms:>10.0} ms: {} of {} sectors final (height {})",
                        c.key.sectors_final, c.key.sectors_total, c.height
                    );
                }
                let epoch = c.assignment_epoch.unwrap_or_default();
                if epoch > last_assignment {
                    last_assignment = epoch;
                    eprintln!(
                        "{ms:>10.0} ms: epoch {epoch} re-assigned the branches (height {}); \
                         sectors not yet final are generated and dealt again",
                        c.height
                    );
                }
                if c.key.master_root.is_some() {
                    tl.master = (ms, c.height, c.epoch);
                    tl.nodes_cpu_ms = nodes_cpu_ms(&net) - cpu_at_assignment;
                    tl.load.1 = load_average();
                    tl.owners = owner_names(&c, &net.rows);
                    on_poll(&net, Phase::Holding)?;
                    break ms;
                }
            } else if c.key.master_root.is_some() {
                bail!("the master root was final before the assignment was seen; poll faster");
            }
        }
        on_poll(
            &net,
            if assigned.is_some() {
                Phase::Keygen
            } else {
                Phase::Setup
            },
        )?;
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    };
    Ok(KeyedTestnet {
        net,
        wall_ms: wall,
        timeline: tl,
        deadline,
    })
}

/// Starts the testnet, times key generation on node0, checks every node agrees, stops it.
async fn networked(args: &FedKeygenArgs) -> anyhow::Result<(f64, Timeline)> {
    let (dir, temp) = bench_dir(args.dir.as_ref(), "fedkeygen");
    let run = wait_master_root(args.nodes, args.height, args.timeout, &dir, |_, _| Ok(())).await?;
    let root = agreed_root(&ApiClient::new(), &run.net.rows, run.deadline).await?;
    eprintln!("master root {root}: the same on every node");
    run.net.stop();
    finish_dir(&dir, temp);
    Ok((run.wall_ms, run.timeline))
}

/// CPU time (user + system, ms) that process `pid` has used so far, from `/proc/<pid>/stat`
/// (Linux): fields 14 and 15, in `USER_HZ` ticks, which the kernel reports at 100 per second
/// whatever its internal tick rate.
pub fn process_cpu_ms(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 * 10.0)
}

/// The summed CPU time (ms) of the testnet's node processes (not the bootstrap node).
fn nodes_cpu_ms(net: &up::Testnet) -> f64 {
    net.processes()
        .iter()
        .filter(|(name, _)| name != "bootstrap")
        .filter_map(|(_, pid)| process_cpu_ms(*pid))
        .sum()
}

/// The 1-minute load average (`/proc/loadavg`), if readable.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Each sector and its owner's node name (`?` for an owner not among `rows`).
fn owner_names(c: &seedfed_node::chain::ChainStatus, rows: &[up::NodeRow]) -> Vec<(u32, String)> {
    let by_peer: BTreeMap<&str, &str> = rows
        .iter()
        .map(|r| (r.peer_id.as_str(), r.name.as_str()))
        .collect();
    let by_id: BTreeMap<&str, &str> = c
        .validators
        .iter()
        .map(|v| {
            (
                v.id.as_str(),
                by_peer.get(v.peer_id.as_str()).copied().unwrap_or("?"),
            )
        })
        .collect();
    c.key
        .sectors
        .iter()
        .map(|s| {
            let name = by_id.get(s.owner.as_str()).copied().unwrap_or("?");
            (s.sector, name.to_string())
        })
        .collect()
}

/// `sector:node` for each owner, comma-separated (the benches' printed form).
pub fn owners_line(owners: &[(u32, String)]) -> String {
    owners
        .iter()
        .map(|(sector, name)| format!("{sector}:{name}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits until every node reports the same master root; returns it.
pub async fn agreed_root(
    client: &ApiClient,
    rows: &[up::NodeRow],
    deadline: Instant,
) -> anyhow::Result<String> {
    let apis: Vec<SocketAddr> = rows
        .iter()
        .filter(|r| r.name != "bootstrap")
        .map(|r| r.api)
        .collect();
    loop {
        let mut roots = Vec::new();
        for a in &apis {
            if let Some(root) = client
                .status(*a)
                .await
                .ok()
                .and_then(|s| s.chain)
                .and_then(|c| c.key.master_root)
            {
                roots.push(root);
            }
        }
        if roots.len() == apis.len() {
            ensure!(
                roots.iter().all(|r| *r == roots[0]),
                "nodes report different master roots: {roots:?}"
            );
            return Ok(roots.swap_remove(0));
        }
        if Instant::now() > deadline {
            bail!("not every node has the master root in time");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_cpu_time_is_readable() {
        let before = process_cpu_ms(std::process::id()).expect("/proc/self/stat");
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        assert!(process_cpu_ms(std::process::id()).expect("stat") >= before);
    }

    #[test]
    fn testnet_key_parameters_are_the_genesis_defaults() {
        let p = key_params(7, 20);
        assert_eq!(
            (
                p.tree_height,
                p.sector_bits,
                p.leaf_threshold,
                p.leaf_holders,
                p.ack_threshold
            ),
            (20, 2, 3, 5, 4)
        );
        let p = key_params(4, 10);
        assert_eq!(
            (p.leaf_threshold, p.leaf_holders, p.ack_threshold),
            (2, 3, 3)
        );
    }

    #[test]
    fn bound_of_a_tiny_key_and_the_json_line() {
        let b = cpu_bound(&key_params(7, 5), 7).expect("bound");
        assert!(b.generate_ms > 0.0 && b.deal_ms > 0.0 && b.verify_ms > 0.0);
        assert!(b.bound_ms() <= b.cpu_ms());
        let line = report_json(7, 5, 1234.56, b.bound_ms()).to_string();
        let v: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(v["bench"], "fedkeygen");
        assert_eq!(v["nodes"], 7);
        assert_eq!(v["height"], 5);
        assert_eq!(v["wall_ms"], 1234.6);
        assert!(v["ratio"].as_f64().expect("ratio") > 0.0);
    }
}
