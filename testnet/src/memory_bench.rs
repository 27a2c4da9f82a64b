//! `seedfed-bench memory`: the peak resident memory of each validator process while the
//! federation generates, deals and then holds a key, next to the size of each validator's share
//! set on disk, measured on a real local multi-process testnet.
//!
//! **Memory.** The testnet is the `fedkeygen` bench's ([`fedkeygen_bench::wait_master_root`]:
//! the `up` code, key height `--height`, the node defaults otherwise). While it runs, every
//! `--sample-ms` the bench reads each validator's `/proc/<pid>/status` (Linux): `VmRSS` (resident
//! now) and `VmHWM` (the kernel's high-water mark of resident memory since the process started).
//! Each sample is tagged with the phase node0's ledger is in (setup, key generation from the
//! branch assignment to the master root, holding after it), so the report says in which phase
//! each process reached its peak (the phase of the sample where its `VmHWM` last grew). After
//! the master root is final and every node agrees on it, the bench keeps sampling for
//! `--hold-secs` (the nodes then hold their shares, audit and sign the key's checkpoint). The
//! peak of a process is its last `VmHWM`: exact, whatever the sampling interval.
//!
//! **Disk.** Then the testnet is stopped (each node closes its store) and the bench opens each
//! node's store and scans it: `share_set_bytes` is the bytes (keys and
//! values) of the `held` and `held_chunks` keyspaces, where a node keeps the leaf shares it
//! holds with their sectors' commitments, a sealed record per chunk and an index per sector
//! (`held_records` counts the indexes); `trees_bytes` those of the `trees` keyspace (the leaf public keys of
//! the sectors a node owns, and its replicas of every other published sector's tree);
//! `store_bytes` the size of the node's whole data directory (the redb
//! file: blocks, ledger state, WAL, shares).
//!
//! The last line is JSON; figures are measured in the run, the target (256 MiB) is the issue's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use clap::Args;
use seedfed_node::api::ApiClient;
use seedfed_node::chain::storage::{HELD, HELD_CHUNKS, TREES};
use seedfed_node::config::Config;
use seedfed_node::store::{self, Backend};
use serde_json::json;

use crate::bench_json::rounded;
use crate::fedkeygen_bench::{self, Phase};
use crate::proc_memory::{self, Memory};
use crate::up;

/// The target for a validator's peak resident memory, in MiB.
pub const TARGET_MIB: f64 = 256.0;

/// `seedfed-bench memory`
#[derive(Debug, Clone, Args)]
pub struct MemoryArgs {
    /// Validators (one process each).
    #[arg(long, default_value_t = 16)]
    pub nodes: usize,
    /// Height of the federation's LMS tree: 5, 10, 15, 20 or 25.
    #[arg(long, default_value_t = 20)]
    pub height: u8,
    /// Upper bound on start-up, epoch cycle and key generation, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub timeout: u64,
    /// Seconds to keep sampling once the master root is final (the nodes hold their shares).
    #[arg(long, default_value_t = 30)]
    pub hold_secs: u64,
    /// How often each node's `/proc/<pid>/status` is read, in ms.
    #[arg(long, default_value_t = 200)]
    pub sample_ms: u64,
    /// Stops the run when a node's resident memory exceeds this many MiB (the machine's
    /// memory is shared; the report then says how far it got, with `"completed": false`).
    #[arg(long, default_value_t = 4096)]
    pub abort_above_mib: u64,
    /// Directory for the testnet, kept afterwards with the nodes' logs and stores (default:
    /// `$TMPDIR/seedfed-bench-memory-PID`, removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// What the samples of one node showed.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeMemory {
    /// `node<i>`.
    pub name: String,
    /// Its last `VmHWM` (KiB).
    pub peak_kib: u64,
    /// The phase of the sample in which `VmHWM` last grew.
    pub peak_phase: Phase,
    /// The largest `VmRSS` sampled in each phase (KiB).
    pub max_rss_kib: BTreeMap<Phase, u64>,
    /// `VmRSS` at the last sample (KiB).
    pub last_rss_kib: u64,
    /// Samples taken.
    pub samples: usize,
}

impl NodeMemory {
    fn new(name: &str) -> Self {
        NodeMemory {
            name: name.to_string(),
            peak_kib: 0,
            peak_phase: Phase::Setup,
            max_rss_kib: BTreeMap::new(),
            last_rss_kib: 0,
            samples: 0,
        }
    }

    /// Adds one sample taken in `phase`.
    pub fn add(&mut self, phase: Phase, rss: Memory) {
        if rss.peak_kib > self.peak_kib {
            self.peak_kib = rss.peak_kib;
            self.peak_phase = phase;
        }
        let m = self.max_rss_kib.entry(phase).or_default();
        *m = (*m).max(rss.rss_kib);
        self.last_rss_kib = rss.rss_kib;
        self.samples += 1;
    }
}

/// Samples every validator process (not the bootstrap node) at most every `every`.
struct Sampler {
    every: Duration,
    /// A node resident above this many KiB ends the run.
    abort_above_kib: u64,
    last: Option<Instant>,
    nodes: BTreeMap<u32, NodeMemory>,
}

impl Sampler {
    fn new(every: Duration, abort_above_mib: u64) -> Self {
        Sampler {
            every,
            abort_above_kib: abort_above_mib.saturating_mul(1024),
            last: None,
            nodes: BTreeMap::new(),
        }
    }

    /// Samples now if `every` has passed since the last sample (or `force`); fails if a node
    /// is resident above the abort limit.
    fn sample(&mut self, net: &up::Testnet, phase: Phase, force: bool) -> anyhow::Result<()> {
        if !force && self.last.is_some_and(|t| t.elapsed() < self.every) {
            return Ok(());
        }
        self.last = Some(Instant::now());
        for (name, pid) in net.processes() {
            if name == "bootstrap" {
                continue;
            }
            if let Ok(rss) = proc_memory::of(*pid) {
                self.nodes
                    .entry(*pid)
                    .or_insert_with(|| NodeMemory::new(name))
                    .add(phase, rss);
                ensure!(
                    rss.rss_kib <= self.abort_above_kib,
                    "{name} is resident at {} MiB, above --abort-above-mib {} ({})",
                    rss.rss_kib / 1024,
                    self.abort_above_kib / 1024,
                    phase.name()
                );
            }
        }
        Ok(())
    }

    /// The nodes sampled, in the order of `names`.
    fn in_order(&self, names: &[String]) -> Vec<NodeMemory> {
        names
            .iter()
            .filter_map(|n| self.nodes.values().find(|m| &m.name == n).cloned())
            .collect()
    }
}

/// One node's share set and store on disk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeDisk {
    /// Held sectors (records in `held`).
    pub held_records: usize,
    /// Bytes of the `held` keyspace: keys and sealed records.
    pub share_set_bytes: u64,
    /// Bytes of the `trees` keyspace (sectors this node owns).
    pub trees_bytes: u64,
    /// Bytes of every file under the data directory.
    pub store_bytes: u64,
}

/// Bytes of every file under `dir`, recursively.
pub fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// The share set and store of the stopped node whose home is `home`.
pub fn node_disk(home: &Path) -> anyhow::Result<NodeDisk> {
    let config = Config::load(home).with_context(|| format!("config of {}", home.display()))?;
    let data = Config::resolve(home, &config.node.data_dir);
    let store_bytes = dir_bytes(&data).with_context(|| format!("size of {}", data.display()))?;
    let store = store::open(&data, Backend::Redb)
        .with_context(|| format!("cannot open the store in {}", data.display()))?;
    let mut disk = NodeDisk {
        store_bytes,
        ..NodeDisk::default()
    };
    for item in store.scan_prefix(HELD, &[])? {
        let (k, v) = item?;
        disk.held_records += 1;
        disk.share_set_bytes += (k.len() + v.len()) as u64;
    }
    for item in store.scan_prefix(HELD_CHUNKS, &[])? {
        let (k, v) = item?;
        disk.share_set_bytes += (k.len() + v.len()) as u64;
    }
    for item in store.scan_prefix(TREES, &[])? {
        let (k, v) = item?;
        disk.trees_bytes += (k.len() + v.len()) as u64;
    }
    Ok(disk)
}

/// Nearest-rank percentile `p` (0–100) of `xs` (sorted here); 0 if empty.
pub fn percentile(xs: &[f64], p: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

/// `{"min","p50","max"}` of `xs`, rounded to `places`.
fn spread(xs: &[f64], places: i32) -> serde_json::Value {
    json!({
        "min": rounded(percentile(xs, 0.0), places),
        "p50": rounded(percentile(xs, 50.0), places),
        "max": rounded(percentile(xs, 100.0), places),
    })
}

const MIB: f64 = 1024.0 * 1024.0;

/// The distinct node names of the sectors' owners.
fn node_names(owners: &[(u32, String)]) -> Vec<String> {
    let names: std::collections::BTreeSet<&String> = owners.iter().map(|(_, name)| name).collect();
    names.into_iter().cloned().collect()
}

/// The JSON line: peaks over nodes (MiB), owners' and holders' peaks apart, the largest
/// resident memory sampled in each phase, and the share sets and stores on disk (bytes).
pub fn report_json(
    nodes: usize,
    height: u8,
    wall_ms: Option<f64>,
    mem: &[NodeMemory],
    owners: &[String],
    disk: &[NodeDisk],
) -> serde_json::Value {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let peaks: Vec<f64> = mem.iter().map(|m| mib(m.peak_kib)).collect();
    let is_owner = |m: &&NodeMemory| owners.iter().any(|o| o == &m.name);
    let owner_peak = mem.iter().filter(is_owner).map(|m| mib(m.peak_kib));
    let holder_peak = mem.iter().filter(|m| !is_owner(m)).map(|m| mib(m.peak_kib));
    let mut by_phase = serde_json::Map::new();
    let mut peak_phase = serde_json::Map::new();
    for phase in Phase::ALL {
        let m = mem
            .iter()
            .filter_map(|n| n.max_rss_kib.get(&phase))
            .max()
            .map(|k| rounded(mib(*k), 1));
        by_phase.insert(phase.name().into(), json!(m));
        let count = mem.iter().filter(|n| n.peak_phase == phase).count();
        peak_phase.insert(phase.name().into(), json!(count));
    }
    let bytes =
        |f: fn(&NodeDisk) -> u64| -> Vec<f64> { disk.iter().map(|d| f(d) as f64).collect() };
    let max_peak = percentile(&peaks, 100.0);
    json!({
        "bench": "memory",
        "nodes": nodes,
        "height": height,
        "completed": wall_ms.is_some(),
        "keygen_wall_ms": wall_ms.map(|w| rounded(w, 1)),
        "peak_rss_mib": spread(&peaks, 1),
        "owner_peak_rss_mib": owner_peak.reduce(f64::max).map(|x| rounded(x, 1)),
        "holder_peak_rss_mib": holder_peak.reduce(f64::max).map(|x| rounded(x, 1)),
        "max_rss_mib_by_phase": by_phase,
        "nodes_peaking_in_phase": peak_phase,
        "share_set_bytes": spread(&bytes(|d| d.share_set_bytes), 0),
        "share_set_mib_p50": rounded(percentile(&bytes(|d| d.share_set_bytes), 50.0) / MIB, 1),
        "held_records": spread(&disk.iter().map(|d| d.held_records as f64).collect::<Vec<_>>(), 0),
        "trees_bytes": spread(&bytes(|d| d.trees_bytes), 0),
        "store_bytes": spread(&bytes(|d| d.store_bytes), 0),
        "target_mib": TARGET_MIB,
        "met": max_peak <= TARGET_MIB,
    })
}

/// `seedfed-bench memory`: the testnet, sampled until the key is held, then the stores; prints
/// one line per node and the JSON line, also when the run fails (a timeout, a node above
/// `--abort-above-mib`, an interrupt): then with what was sampled so far and
/// `"completed": false`, before the error.
pub fn run(args: MemoryArgs) -> anyhow::Result<()> {
    ensure!(args.nodes >= 1, "--nodes must be at least 1");
    ensure!(
        matches!(args.height, 5 | 10 | 15 | 20 | 25),
        "--height must be 5, 10, 15, 20 or 25"
    );
    ensure!(args.sample_ms >= 1, "--sample-ms must be at least 1");
    let params = fedkeygen_bench::key_params(args.nodes, args.height);
    println!(
        "memory: {}; /proc/<pid>/status every {} ms, {} s of holding after the master root",
        fedkeygen_bench::key_summary(args.nodes, &params),
        args.sample_ms,
        args.hold_secs
    );
    let (dir, temp) = fedkeygen_bench::bench_dir(args.dir.as_ref(), "memory");
    let mut sampler = Sampler::new(Duration::from_millis(args.sample_ms), args.abort_above_mib);
    let outcome = up::block_on_interruptible(
        &fedkeygen_bench::current_thread()?,
        networked(&args, &dir, &mut sampler),
    );
    // The testnet is stopped (its stores closed) by now, whatever the outcome.
    let names: Vec<String> = (0..args.nodes).map(|i| format!("node{i}")).collect();
    let mem = sampler.in_order(&names);
    let mut disk = Vec::with_capacity(mem.len());
    for m in &mem {
        disk.push(node_disk(&dir.join(&m.name)).unwrap_or_else(|e| {
            eprintln!("{}: no store figures: {e:#}", m.name);
            NodeDisk::default()
        }));
    }
    let wall_ms = match &outcome {
        Ok((wall, owners)) => {
            println!(
                "key generation (assignment -> master root on node0): {wall:.0} ms; \
                 sector owners {}",
                fedkeygen_bench::owners_line(owners)
            );
            Some(*wall)
        }
        Err(e) => {
            println!("run stopped before the key was held: {e:#}");
            None
        }
    };
    // Owners as the ledger recorded them, known once the key is final (every node keeps
    // replicas of the published trees, so a kept tree no longer tells an owner).
    let owner_names: Vec<String> = match &outcome {
        Ok((_, owners)) => node_names(owners),
        Err(_) => Vec::new(),
    };
    print_table(&mem, &disk, &owner_names);
    println!(
        "{}",
        report_json(args.nodes, args.height, wall_ms, &mem, &owner_names, &disk)
    );
    outcome?;
    fedkeygen_bench::finish_dir(&dir, temp);
    Ok(())
}

/// One line per node: its peak and phase, the largest resident memory sampled per phase, and
/// its stores.
fn print_table(mem: &[NodeMemory], disk: &[NodeDisk], owners: &[String]) {
    println!(
        "{:<8} {:>10} {:>8} {:>12} {:>12} {:>12} {:>6} {:>14} {:>12} {:>14}",
        "node",
        "peak MiB",
        "in",
        "setup MiB",
        "keygen MiB",
        "holding MiB",
        "held",
        "share set B",
        "trees B",
        "store B"
    );
    for (m, d) in mem.iter().zip(disk) {
        let at = |p: Phase| {
            m.max_rss_kib
                .get(&p)
                .map_or_else(|| "-".to_string(), |k| format!("{:.1}", *k as f64 / 1024.0))
        };
        println!(
            "{:<8} {:>10.1} {:>8} {:>12} {:>12} {:>12} {:>6} {:>14} {:>12} {:>14}{}",
            m.name,
            m.peak_kib as f64 / 1024.0,
            m.peak_phase.name(),
            at(Phase::Setup),
            at(Phase::Keygen),
            at(Phase::Holding),
            d.held_records,
            d.share_set_bytes,
            d.trees_bytes,
            d.store_bytes,
            if owners.contains(&m.name) {
                "  (owner)"
            } else {
                ""
            }
        );
    }
}

/// Starts the testnet in `dir`, samples it into `sampler` through key generation and
/// `--hold-secs` of holding, and stops it: (key generation wall ms, sector owners).
async fn networked(
    args: &MemoryArgs,
    dir: &Path,
    sampler: &mut Sampler,
) -> anyhow::Result<(f64, Vec<(u32, String)>)> {
    let run = fedkeygen_bench::wait_master_root(
        args.nodes,
        args.height,
        args.timeout,
        dir,
        |net, phase| sampler.sample(net, phase, phase == Phase::Holding),
    )
    .await?;
    let root = fedkeygen_bench::agreed_root(&ApiClient::new(), &run.net.rows, run.deadline).await?;
    eprintln!(
        "master root {root}: the same on every node; sampling {} s of holding",
        args.hold_secs
    );
    let hold_until = Instant::now() + Duration::from_secs(args.hold_secs);
    while Instant::now() < hold_until {
        run.net.check_alive()?;
        sampler.sample(&run.net, Phase::Holding, false)?;
        tokio::time::sleep(Duration::from_millis(args.sample_ms.min(1000))).await;
    }
    run.net.check_alive()?;
    sampler.sample(&run.net, Phase::Holding, true)?;
    let owners = run.timeline.owners.clone();
    let wall_ms = run.wall_ms;
    run.net.stop();
    Ok((wall_ms, owners))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_the_last_high_water_mark_and_its_phase() {
        let mut m = NodeMemory::new("node3");
        let s = |rss_kib, peak_kib| Memory { rss_kib, peak_kib };
        m.add(Phase::Setup, s(10_000, 12_000));
        m.add(Phase::Keygen, s(300_000, 300_000));
        m.add(Phase::Keygen, s(150_000, 300_000));
        m.add(Phase::Holding, s(160_000, 300_000));
        assert_eq!(m.peak_kib, 300_000);
        assert_eq!(m.peak_phase, Phase::Keygen);
        assert_eq!(m.max_rss_kib[&Phase::Holding], 160_000);
        assert_eq!(m.last_rss_kib, 160_000);
        assert_eq!(m.samples, 4);
    }

    #[test]
    fn the_json_line_summarises_nodes_and_disks() {
        let mut a = NodeMemory::new("node0");
        a.add(
            Phase::Keygen,
            Memory {
                rss_kib: 400 * 1024,
                peak_kib: 400 * 1024,
            },
        );
        let mut b = NodeMemory::new("node1");
        b.add(
            Phase::Holding,
            Memory {
                rss_kib: 100 * 1024,
                peak_kib: 100 * 1024,
            },
        );
        let disk = [
            NodeDisk {
                held_records: 4,
                share_set_bytes: 3 * 1024 * 1024,
                trees_bytes: 0,
                store_bytes: 10_000_000,
            },
            NodeDisk {
                held_records: 4,
                share_set_bytes: 1024 * 1024,
                trees_bytes: 64,
                store_bytes: 8_000_000,
            },
        ];
        let v = report_json(2, 10, Some(1234.56), &[a, b], &["node0".into()], &disk);
        let v: serde_json::Value = serde_json::from_str(&v.to_string()).expect("valid JSON");
        assert_eq!(v["bench"], "memory");
        assert_eq!(v["peak_rss_mib"]["max"], 400.0);
        assert_eq!(v["peak_rss_mib"]["p50"], 100.0);
        assert_eq!(v["owner_peak_rss_mib"], 400.0);
        assert_eq!(v["holder_peak_rss_mib"], 100.0);
        assert_eq!(v["max_rss_mib_by_phase"]["keygen"], 400.0);
        assert_eq!(v["max_rss_mib_by_phase"]["setup"], serde_json::Value::Null);
        assert_eq!(v["nodes_peaking_in_phase"]["holding"], 1);
        assert_eq!(v["share_set_bytes"]["max"], 3.0 * 1024.0 * 1024.0);
        assert_eq!(v["store_bytes"]["min"], 8e6);
        assert_eq!(v["met"], false);
        assert_eq!(v["completed"], true);
        assert_eq!(v["keygen_wall_ms"], 1234.6);
        let partial = report_json(2, 10, None, &[], &[], &[]);
        assert_eq!(partial["completed"], false);
        assert_eq!(partial["keygen_wall_ms"], serde_json::Value::Null);
        assert_eq!(v["target_mib"], 256.0);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let xs = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(percentile(&xs, 50.0), 3.0);
        assert_eq!(percentile(&xs, 0.0), 1.0);
        assert_eq!(percentile(&xs, 100.0), 5.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn owners_are_named_by_node_once_each() {
        let owners =
            [(0, "node12"), (1, "node1"), (2, "node12"), (3, "?")].map(|(s, n)| (s, n.to_string()));
        assert_eq!(node_names(&owners), ["?", "node1", "node12"]);
    }
}
