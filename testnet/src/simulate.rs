//! In-process simulation of the whole federation: N nodes run every step of the key's life
//! with the real protocol code and hand their messages over in memory. Guarantees: the same
//! `--seed` gives the same bytes out (everything random comes from one seeded ChaCha20 stream),
//! every secret still travels sealed to its recipient's X25519 key, and every output is checked
//! (shares against commitments, sectors against the master tree, signatures by verification).
//!
//! The steps: a frost DKG (every node contributes entropy), the threshold-PRF beacon,
//! stake-weighted branch assignment, per-branch seeds by the threshold PRF, sector generation,
//! verifiable dealing of every leaf seed to its `r` holders and erasure, the master root, MPC
//! signing of fresh leaves (one of them with a Byzantine holder that is caught and excluded),
//! the loss of one holder and the batched repair of its shares onto replacement holders, and a
//! signature that uses a repaired share. What is *not* simulated: consensus (leaves are
//! allocated by one in-process counter standing in for the ledger) and the network. This is
//! the project's main job until the networked testnet does the same flow.
//!
//! Modules, in the order a run uses them: `federation` (the nodes and the public state),
//! `root_key` (identities, DKG, threshold PRF), `keygen` (beacon, assignment, sectors, master
//! root), `dealing`, `signing`, `repair`, `report` (the result and its files).

mod dealing;
mod federation;
mod keygen;
mod repair;
mod report;
mod root_key;
mod signing;

use std::path::PathBuf;

use anyhow::{anyhow, ensure, Result};
use seedfed_protocol::hash::Domain;
use seedfed_protocol::lms::LmsType;
use seedfed_protocol::member::MemberId;

use federation::Sim;
pub use report::SimReport;

/// Domain of the key identifier (hash of the chain, epoch and root group key).
const KEY_ID: Domain = Domain::new("seedfed-key-id");
/// Domain of signing and repair session identifiers.
const SESSION: Domain = Domain::new("seedfed-sim-sess");
/// Associated data of the sealed dealing boxes.
const DEAL_AD: &[u8] = b"seedfed-sim-deal/v1";
/// The simulated federation's chain id.
const CHAIN_ID: &str = "seedfed-sim";

/// Parameters of one simulation run.
#[derive(Clone, Debug, clap::Args)]
pub struct SimArgs {
    /// Number of simulated nodes (validators).
    #[arg(long, default_value_t = 7)]
    pub nodes: usize,
    /// LMS tree height h (5, 10, 15, 20 or 25): 2^h one-time keys.
    #[arg(long, default_value_t = 15)]
    pub height: u32,
    /// log2 of the number of sectors (branches): 2^P sectors.
    #[arg(long = "sectors", default_value_t = 4)]
    pub sector_levels: u32,
    /// Shares needed to reconstruct a leaf seed (k).
    #[arg(long, default_value_t = 3)]
    pub threshold: usize,
    /// Holders of each leaf seed (r).
    #[arg(long, default_value_t = 5)]
    pub holders: usize,
    /// Seed of the run's randomness; the same seed gives the same output bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of messages to sign before the repair (at least 2: one shows a Byzantine holder).
    #[arg(long, default_value_t = 3)]
    pub messages: usize,
    /// Worker threads for sector generation (the result does not depend on it).
    #[arg(long, default_value_t = default_threads())]
    pub threads: usize,
    /// Output directory for `seedfed.pub` and the signed messages.
    #[arg(long, default_value = "sim-out")]
    pub out: PathBuf,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Default for SimArgs {
    fn default() -> Self {
        SimArgs {
            nodes: 7,
            height: 15,
            sector_levels: 4,
            threshold: 3,
            holders: 5,
            seed: 1,
            messages: 3,
            threads: default_threads(),
            out: PathBuf::from("sim-out"),
            quiet: false,
        }
    }
}

/// Runs the whole simulation and writes its files.
pub fn run(args: SimArgs) -> Result<SimReport> {
    check_args(&args)?;
    let mut sim = Sim::setup(args)?;
    let mut public = sim.keygen()?;
    let mut report = SimReport {
        public_key: public.master.public_key(),
        signatures: Vec::new(),
        beacon: public.beacon,
        caught: None,
        repaired: (MemberId([0; 32]), 0),
        leaves_used: Vec::new(),
    };

    for i in 0..sim.args.messages {
        let message =
            format!("seedfed simulation message {i} (seed {})", sim.args.seed).into_bytes();
        // The second message meets a Byzantine holder that sends a wrong contribution.
        let byzantine = i == 1;
        let (q, sig, caught) = sim.sign(&mut public, &message, byzantine, None)?;
        if byzantine {
            report.caught =
                Some(caught.ok_or_else(|| anyhow!("the wrong contribution went unnoticed"))?);
        }
        report.leaves_used.push(q);
        report.signatures.push((message, sig));
    }

    let (lost, replaced) = sim.fail_and_repair(&mut public)?;
    report.repaired = (lost, replaced.len());
    // Sign once more with a leaf whose quorum must use a repaired share.
    let message = format!(
        "seedfed simulation message after repair (seed {})",
        sim.args.seed
    )
    .into_bytes();
    let (q, sig, _) = sim.sign(&mut public, &message, false, Some(&replaced))?;
    report.leaves_used.push(q);
    report.signatures.push((message, sig));

    sim.write(&report)?;
    sim.say(format!(
        "done in {:.1}s: public key {}, {} signatures in {}",
        sim.started.elapsed().as_secs_f64(),
        hex::encode(&report.public_key.encode()[24..]),
        report.signatures.len(),
        sim.args.out.display()
    ));
    Ok(report)
}

fn check_args(args: &SimArgs) -> Result<()> {
    ensure!(
        args.nodes >= 4,
        "--nodes must be at least 4 (got {})",
        args.nodes
    );
    ensure!(
        args.nodes <= 64,
        "--nodes must be at most 64 (got {})",
        args.nodes
    );
    LmsType::from_height(args.height).ok_or_else(|| {
        anyhow!(
            "--height must be one of 5, 10, 15, 20, 25 (got {})",
            args.height
        )
    })?;
    ensure!(
        args.sector_levels >= 1 && args.sector_levels < args.height,
        "--sectors P needs 1 <= P < height (got P = {})",
        args.sector_levels
    );
    ensure!(
        args.threshold >= 2 && args.threshold <= args.holders,
        "--threshold k needs 2 <= k <= holders (got k = {}, r = {})",
        args.threshold,
        args.holders
    );
    ensure!(
        args.holders < args.nodes,
        "--holders r must be below --nodes so a lost holder can be replaced (got r = {}, n = {})",
        args.holders,
        args.nodes
    );
    ensure!(args.messages >= 2, "--messages must be at least 2");
    ensure!(args.threads >= 1, "--threads must be at least 1");
    Ok(())
}
