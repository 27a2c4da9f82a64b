//! `seedfed-bench`: side-by-side benchmarks of seedfed's LMS core against `hbs-lms` and
//! against the raw SHA-256 compression rate of this machine (`keygen`, `verify`), and the
//! commit latency of a local multi-process federation (`commit`, see
//! `seedfed_testnet::commit_bench`), its DKG (`dkg`), its key generation (`fedkeygen`, see
//! `seedfed_testnet::fedkeygen_bench`), its signing (`sign`, see `seedfed_testnet::sign_bench`)
//! and both under a flood of hostile traffic (`flood`, see `seedfed_testnet::flood_bench`), and
//! what one block costs as the ledger grows (`ledger`, see `seedfed_testnet::ledger_bench`).
//!
//! Every measurement is repeated `--rounds` times, interleaved (limit, ours, hbs-lms, ...), and
//! the best round of each is reported, so noise from other processes affects all sides alike.
//! The last line of output is one JSON object.

use std::hint::black_box;
use std::time::Instant;

use anyhow::{ensure, Context};
use clap::{Parser, Subcommand};
use hbs_lms::{HssParameter, LmotsAlgorithm, LmsAlgorithm, Seed, Sha256_256};
use seedfed_protocol::lmots::{LeafSeed, LmotsType};
use seedfed_protocol::lms::{self, LmsType};
use seedfed_protocol::master::Master;
use seedfed_protocol::sector::{Sector, TreeLayout};
use seedfed_testnet::bench_json::rounded;
use seedfed_testnet::cpu_clock::thread_cpu_ns;
use serde_json::json;
use sha2::digest::generic_array::GenericArray;

#[derive(Parser, Debug)]
#[command(name = "seedfed-bench", about = "seedfed benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// LMS key generation (SHA-256, N32, W4, H10): ours vs hbs-lms vs the SHA-256 limit.
    Keygen {
        /// Minimum seconds per measurement.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Interleaved repetitions; the best of each is reported.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Threads for the multi-threaded rate (default: available parallelism).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// LMS verification (SHA-256, N32, W4, H10) of the same signatures: ours vs hbs-lms.
    Verify {
        /// Minimum seconds per measurement.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Interleaved repetitions; the best of each is reported.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Number of distinct signatures.
        #[arg(long, default_value_t = 256)]
        signatures: u32,
    },
    /// Commit latency (p50/p99) of a local multi-process federation, for empty blocks and for
    /// blocks of `--txs` transfers.
    Commit(seedfed_testnet::commit_bench::CommitArgs),
    /// A real DKG through consensus on a local multi-process federation (epoch 1's), next to
    /// the CPU time of the same frost-core rounds in one process.
    Dkg(seedfed_testnet::dkg_bench::DkgArgs),
    /// The federation's key generation on a local multi-process testnet (branch assignment to
    /// master root), next to the CPU time of generating, dealing and verifying every sector
    /// in one process, divided by the cores.
    Fedkeygen(seedfed_testnet::fedkeygen_bench::FedKeygenArgs),
    /// What an idle federation costs (consensus on empty blocks, no DKG, no key): each
    /// validator's share of a core, the CPU per decided block, resident memory.
    Idle(seedfed_testnet::idle_bench::IdleArgs),
    /// Peak resident memory of each validator process while the federation generates, deals
    /// and holds a key on a local multi-process testnet, next to its share set on disk.
    Memory(seedfed_testnet::memory_bench::MemoryArgs),
    /// Signing on a local multi-process testnet: a burst of client requests to the nodes'
    /// `POST /sign`, latency from request to verified signature and signatures per second.
    Sign(seedfed_testnet::sign_bench::SignArgs),
    /// What validating one block costs as the ledger grows (signatures, members), in-process.
    Ledger(seedfed_testnet::ledger_bench::LedgerArgs),
    /// Consensus and signing latency of a local testnet unloaded and while fresh identities
    /// flood it with invalid gossip, requests and transactions, against the 3x bound, and each
    /// node's peak memory.
    Flood(seedfed_testnet::flood_bench::FloodArgs),
}

const LMS_TYPE: LmsType = LmsType::H10;
const OTS_TYPE: LmotsType = LmotsType::W4;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Keygen {
            seconds,
            rounds,
            threads,
        } => keygen(seconds, rounds.max(1), threads),
        Command::Verify {
            seconds,
            rounds,
            signatures,
        } => verify(seconds, rounds.max(1), signatures.max(1)),
        Command::Commit(args) => seedfed_testnet::commit_bench::run(args),
        Command::Dkg(args) => seedfed_testnet::dkg_bench::run(args),
        Command::Fedkeygen(args) => seedfed_testnet::fedkeygen_bench::run(args),
        Command::Idle(args) => seedfed_testnet::idle_bench::run(args),
        Command::Memory(args) => seedfed_testnet::memory_bench::run(args),
        Command::Sign(args) => seedfed_testnet::sign_bench::run(args),
        Command::Ledger(args) => seedfed_testnet::ledger_bench::run(args),
        Command::Flood(args) => seedfed_testnet::flood_bench::run(args),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Clock {
    /// This thread's CPU time (wall time where unavailable).
    ThreadCpu,
    /// Wall time (for multi-threaded runs).
    Wall,
}

/// Runs `f` (which does `units` units of work per call) until `seconds` of the chosen clock
/// have passed; returns units per second.
fn rate(clock: Clock, seconds: f64, mut f: impl FnMut(u64) -> u64) -> f64 {
    let cpu = if clock == Clock::ThreadCpu {
        thread_cpu_ns()
    } else {
        None
    };
    let wall = Instant::now();
    let elapsed = || match cpu {
        Some(start) => thread_cpu_ns().map_or(0.0, |now| now.saturating_sub(start) as f64 * 1e-9),
        None => wall.elapsed().as_secs_f64(),
    };
    // Reading the clock costs a system call: read it only between batches of calls, and
    // double the batch until one takes at least 10 ms.
    let mut units = 0u64;
    let mut iter = 0u64;
    let mut batch = 1u64;
    loop {
        let before = elapsed();
        for _ in 0..batch {
            units += f(iter);
            iter += 1;
        }
        let after = elapsed();
        if after >= seconds {
            return units as f64 / after;
        }
        if after - before < 0.01 {
            batch *= 2;
        }
    }
}

fn leaf_seeds(tag: u64, n: u32) -> Vec<LeafSeed> {
    (0..n)
        .map(|q| {
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&tag.to_le_bytes());
            b[8..12].copy_from_slice(&q.to_le_bytes());
            b[31] = 0x5e;
            LeafSeed::from_bytes(b)
        })
        .collect()
}

fn id_for(iter: u64) -> [u8; 16] {
    let mut id = [0x1du8; 16];
    id[..8].copy_from_slice(&iter.to_le_bytes());
    id
}

/// Exact SHA-256 compressions per leaf for a whole tree of this shape: key derivation
/// (`p`), chains (`p (2^w - 1)`), the `K` hash, the leaf node hash (1 block) and the
/// amortised interior node hashes (2 blocks each, `2^h - 1` of them).
fn compressions_per_leaf(lms_type: LmsType, ots_type: LmotsType) -> f64 {
    let leaves = lms_type.leaves() as f64;
    ots_type.keygen_compressions() as f64 + 1.0 + 2.0 * (leaves - 1.0) / leaves
}

fn compress_rate(seconds: f64) -> f64 {
    // 256 blocks = 16 KiB, resident in L1.
    let blocks: Vec<GenericArray<u8, _>> = (0..256u32)
        .map(|i| {
            let mut b = GenericArray::default();
            b[..4].copy_from_slice(&i.to_le_bytes());
            b
        })
        .collect();
    let mut state = [0x6a09_e667u32; 8];
    let r = rate(Clock::ThreadCpu, seconds, |_| {
        sha2::compress256(&mut state, &blocks);
        blocks.len() as u64
    });
    black_box(state);
    r
}

/// Informational: four independent states advanced round-robin one block at a time (the
/// throughput an interleaving implementation can reach; not used for the JSON limit).
fn compress_rate_4way(seconds: f64) -> f64 {
    let blocks: Vec<GenericArray<u8, _>> = (0..4u32)
        .map(|i| {
            let mut b = GenericArray::default();
            b[..4].copy_from_slice(&i.to_le_bytes());
            b
        })
        .collect();
    let mut states = [[0x6a09_e667u32; 8]; 4];
    let r = rate(Clock::ThreadCpu, seconds, |_| {
        for _ in 0..64 {
            for (st, b) in states.iter_mut().zip(&blocks) {
                sha2::compress256(st, std::slice::from_ref(b));
            }
        }
        256
    });
    black_box(states);
    r
}

fn keygen(seconds: f64, rounds: u32, threads: Option<usize>) -> anyhow::Result<()> {
    let threads = threads
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .max(1);
    let n = LMS_TYPE.leaves() as u32;
    let per_leaf = compressions_per_leaf(LMS_TYPE, OTS_TYPE);
    println!(
        "keygen: LMS_SHA256_M32_H10 / LMOTS_SHA256_N32_W4, {n} leaves per key, \
         {per_leaf:.3} SHA-256 compressions per leaf, best of {rounds} rounds of >= {seconds} s"
    );
    let seeds = leaf_seeds(7, n);
    let (mut best_limit, mut best_ours, mut best_hbs, mut best_mt) = (0f64, 0f64, 0f64, 0f64);
    for round in 0..rounds {
        let comps = compress_rate(seconds);
        let limit = comps / per_leaf;
        let ours = rate(Clock::ThreadCpu, seconds, |iter| {
            let layout = TreeLayout::new(LMS_TYPE, OTS_TYPE, id_for(iter), 0)
                .unwrap_or_else(|_| unreachable!("p = 0 < h"));
            let s = Sector::generate_from_seeds(layout, 0, 1, &seeds)
                .unwrap_or_else(|_| unreachable!("seed count matches"));
            black_box(s.root());
            u64::from(n)
        });
        let hbs = rate(Clock::ThreadCpu, seconds, |iter| {
            let mut master = [0u8; 32];
            master[..8].copy_from_slice(&iter.to_le_bytes());
            let keys = hbs_lms::keygen::<Sha256_256>(
                &[HssParameter::new(
                    LmotsAlgorithm::LmotsW4,
                    LmsAlgorithm::LmsH10,
                )],
                &Seed::from(master),
                None,
            );
            black_box(keys.is_ok());
            u64::from(n)
        });
        let mt = rate(Clock::Wall, seconds, |iter| {
            let layout = TreeLayout::new(LMS_TYPE, OTS_TYPE, id_for(iter), 0)
                .unwrap_or_else(|_| unreachable!("p = 0 < h"));
            let s = Sector::generate_from_seeds(layout, 0, threads, &seeds)
                .unwrap_or_else(|_| unreachable!("seed count matches"));
            black_box(s.root());
            u64::from(n)
        });
        let comps4 = compress_rate_4way(seconds / 2.0);
        println!(
            "round {round}: sha256 4-way interleaved (informational) {comps4:.0} compressions/s \
             (= {:.0} leaves/s)",
            comps4 / per_leaf
        );
        println!(
            "round {round}: sha256 {comps:.0} compressions/s (limit {limit:.0} leaves/s), \
             ours {ours:.0} leaves/s, hbs-lms {hbs:.0} leaves/s, ours x{threads} threads {mt:.0} leaves/s"
        );
        best_limit = best_limit.max(limit);
        best_ours = best_ours.max(ours);
        best_hbs = best_hbs.max(hbs);
        best_mt = best_mt.max(mt);
    }
    ensure!(
        best_hbs > 0.0 && best_limit > 0.0,
        "no measurement completed"
    );
    println!(
        "best: ours {best_ours:.0} leaves/s = {:.3} x hbs-lms, {:.3} x SHA-256 limit",
        best_ours / best_hbs,
        best_ours / best_limit
    );
    println!(
        "{}",
        json!({
            "bench": "keygen",
            "leaves_per_s": rounded(best_ours, 1),
            "hbs_lms_leaves_per_s": rounded(best_hbs, 1),
            "limit_leaves_per_s": rounded(best_limit, 1),
            "ratio_vs_hbs_lms": rounded(best_ours / best_hbs, 4),
            "ratio_vs_limit": rounded(best_ours / best_limit, 4),
            "threads": threads,
            "mt_leaves_per_s": rounded(best_mt, 1),
        })
    );
    Ok(())
}

fn verify(seconds: f64, rounds: u32, count: u32) -> anyhow::Result<()> {
    let n = LMS_TYPE.leaves() as u32;
    let layout = TreeLayout::new(LMS_TYPE, OTS_TYPE, [0x5a; 16], 0)?;
    let seeds = leaf_seeds(11, n);
    let sector = Sector::generate_from_seeds(layout, 0, 1, &seeds)?;
    let master = Master::from_sector_roots(layout, &[sector.root()])?;
    let pk = master.public_key().encode_hss();
    let mut items = Vec::new();
    for i in 0..count {
        let q = i % n;
        let msg = format!("benchmark message {i}").into_bytes();
        let sig = master
            .sign(&sector, q, &seeds[q as usize], &msg)
            .context("signing")?
            .encode_hss();
        ensure!(
            hbs_lms::verify::<Sha256_256>(&msg, &sig, &pk).is_ok(),
            "hbs-lms rejected signature {i}"
        );
        ensure!(
            lms::verify_hss_bytes(&pk, &msg, &sig).is_ok(),
            "we rejected signature {i}"
        );
        items.push((msg, sig));
    }
    println!(
        "verify: LMS_SHA256_M32_H10 / LMOTS_SHA256_N32_W4, {count} distinct signatures \
         (HSS L=1 encoding, decode + verify), best of {rounds} rounds of >= {seconds} s"
    );
    let (mut best_ours, mut best_hbs) = (0f64, 0f64);
    for round in 0..rounds {
        let ours = rate(Clock::ThreadCpu, seconds, |iter| {
            let (msg, sig) = &items[(iter % items.len() as u64) as usize];
            black_box(lms::verify_hss_bytes(&pk, msg, sig).is_ok());
            1
        });
        let hbs = rate(Clock::ThreadCpu, seconds, |iter| {
            let (msg, sig) = &items[(iter % items.len() as u64) as usize];
            black_box(hbs_lms::verify::<Sha256_256>(msg, sig, &pk).is_ok());
            1
        });
        println!("round {round}: ours {ours:.0} verifies/s, hbs-lms {hbs:.0} verifies/s");
        best_ours = best_ours.max(ours);
        best_hbs = best_hbs.max(hbs);
    }
    ensure!(best_hbs > 0.0, "no measurement completed");
    println!(
        "{}",
        json!({
            "bench": "verify",
            "verifies_per_s": rounded(best_ours, 1),
            "hbs_lms_verifies_per_s": rounded(best_hbs, 1),
            "ratio_vs_hbs_lms": rounded(best_ours / best_hbs, 4),
        })
    );
    Ok(())
}
