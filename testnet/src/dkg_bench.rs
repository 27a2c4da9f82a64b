//! `seedfed-bench dkg`: a real DKG through consensus on a local multi-process testnet, next to
//! the pure CPU time of the same frost-core rounds, measured in one run.
//!
//! Wall time is one epoch's DKG as node0 sees it: from the first status poll that shows the DKG
//! open (its `EpochStart` decided) to the first poll that shows it completed (its `DkgFinalize`
//! decided), polled every 10 ms. The epoch measured is the first whose DKG opens after the
//! federation key is endorsed (node0 reports a key to allocate from): by then every node is up
//! and in steady state, and key generation, dealing and the key's checkpoint signing no longer
//! share the machine with the DKG (the epoch-1 DKG overlapped them). The CPU figure runs
//! frost-core's three DKG parts for every member, both suites (ristretto255 and Ed25519), in
//! this process on one thread: the work the DKG needs at minimum, without network, consensus or
//! the ledger checks.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand_core::OsRng;
use seedfed_node::api;
use seedfed_node::genesis::EpochParams;
use seedfed_protocol::dkg;
use seedfed_protocol::member::MemberId;

use crate::bench_json::rounded;
use crate::up::{self, UpArgs};

/// What the bench measured.
#[derive(Debug, Clone, PartialEq)]
pub struct DkgReport {
    /// Validators.
    pub nodes: usize,
    /// Wall time of the networked DKG (ms).
    pub wall_ms: f64,
    /// Best single-threaded in-process time of the frost-core rounds (ms).
    pub cpu_bound_ms: f64,
    /// Blocks from the DKG's opening to its finalisation.
    pub blocks: u64,
    /// Qualified members of the measured DKG.
    pub qualified: usize,
    /// The epoch whose DKG was measured.
    pub epoch: u64,
}

/// Best of `rounds` in-process runs of both DKGs among `n` members (threshold ⌊2n/3⌋ + 1).
pub fn cpu_bound_ms(n: usize, rounds: u32) -> anyhow::Result<f64> {
    let members: Vec<MemberId> = (0..n)
        .map(|i| {
            let k = ed25519_dalek::SigningKey::from_bytes(&[(i as u8).wrapping_add(1); 32]);
            MemberId(k.verifying_key().to_bytes())
        })
        .collect();
    let t = dkg::default_threshold(n);
    let mut best = f64::INFINITY;
    for _ in 0..rounds.max(1) {
        let start = Instant::now();
        dkg::run_in_memory(&members, t, &mut OsRng).context("ristretto255 DKG")?;
        dkg::run_in_memory_for::<frost_ed25519::Ed25519Sha512, _>(&members, t, &mut OsRng)
            .context("Ed25519 DKG")?;
        best = best.min(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(best)
}

/// The windows the bench runs with: the shortest that still let every node's round-1 package
/// land (3 blocks each way), and a short first epoch.
pub fn bench_epochs() -> EpochParams {
    EpochParams {
        dkg_round1_blocks: 3,
        dkg_complaint_blocks: 3,
        epoch_min_blocks: 8,
        ..EpochParams::default()
    }
}

/// `seedfed-bench dkg`
#[derive(Debug, Clone, clap::Args)]
pub struct DkgArgs {
    /// Validators (one process each).
    #[arg(long, default_value_t = 16)]
    pub nodes: usize,
    /// The nodes' `consensus.block_interval_ms`.
    #[arg(long, default_value_t = 50)]
    pub block_interval_ms: u64,
    /// Seconds before giving up (start-up, admission, the genesis DKG, key generation and the
    /// measured DKG).
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

/// Runs the bench and prints the report, ending with one JSON line.
pub fn run(args: DkgArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let r = rt.block_on(measure(args.nodes, args.block_interval_ms, args.timeout))?;
    let ratio = r.wall_ms / r.cpu_bound_ms;
    println!(
        "networked DKG (epoch {}, {} nodes, {} qualified): {:.0} ms wall over {} blocks",
        r.epoch, r.nodes, r.qualified, r.wall_ms, r.blocks
    );
    println!(
        "frost-core rounds alone (both suites, every member, one thread): {:.1} ms",
        r.cpu_bound_ms
    );
    println!(
        "{}",
        serde_json::json!({
            "bench": "dkg",
            "nodes": r.nodes,
            "wall_ms": rounded(r.wall_ms, 1),
            "cpu_bound_ms": rounded(r.cpu_bound_ms, 1),
            "ratio": rounded(ratio, 2),
            "blocks": r.blocks,
            "qualified": r.qualified,
            "epoch": r.epoch,
        })
    );
    Ok(())
}

/// Runs the networked DKG on `nodes` processes and the CPU-bound reference.
pub async fn measure(
    nodes: usize,
    block_interval_ms: u64,
    timeout: u64,
) -> anyhow::Result<DkgReport> {
    let cpu = cpu_bound_ms(nodes, 3)?;
    let dir = std::env::temp_dir().join(format!("seedfed-bench-dkg-{}", std::process::id()));
    let args = UpArgs {
        nodes,
        dir: Some(dir.clone()),
        difficulty: 8,
        timeout,
        foreground: false,
        stake: 100,
        node_env: vec![(
            "SEEDFED__CONSENSUS__BLOCK_INTERVAL_MS".into(),
            block_interval_ms.to_string(),
        )],
        epochs: Some(bench_epochs()),
        cycle_timeout: 0,
        key_timeout: 0,
        signatures: 0,
        tree_height: None,
    };
    let net = up::start(&args, &dir).await?;
    let node0 = net
        .rows
        .iter()
        .find(|r| r.name == "node0")
        .context("no node0")?
        .api;
    let deadline = Instant::now() + Duration::from_secs(timeout);
    // Epochs up to this one opened before the key was endorsed (set at the first poll after).
    let mut skip_through: Option<u64> = None;
    // (when seen, height it opened at, epoch) of the DKG being timed.
    let mut opened: Option<(Instant, u64, u64)> = None;
    let result = loop {
        if Instant::now() > deadline {
            bail!(
                "no DKG opened after the key was endorsed and completed within {timeout}s; \
                 logs in {}",
                dir.display()
            );
        }
        net.check_alive()?;
        if let Ok(s) = api::fetch_status(node0).await {
            if let Some(c) = s.chain {
                if let Some((t0, h0, epoch)) = opened {
                    if let Some(done) = c.dkgs.iter().find(|d| d.epoch == epoch) {
                        break (
                            t0.elapsed(),
                            done.height.saturating_sub(h0),
                            done.qualified.len(),
                            epoch,
                        );
                    }
                } else if c.key.allocating.is_some() {
                    // The key is endorsed: the next DKG to open is the one measured (one
                    // already open when the key was endorsed overlapped its generation).
                    let open = c.dkg_in_progress.as_ref().map(|p| p.epoch);
                    let newest_done = c.dkgs.iter().map(|d| d.epoch).max().unwrap_or(0);
                    let after = *skip_through.get_or_insert(open.unwrap_or(newest_done));
                    if let Some(p) = c.dkg_in_progress.as_ref().filter(|p| p.epoch > after) {
                        opened = Some((Instant::now(), p.opened_at, p.epoch));
                    } else if newest_done > after {
                        bail!(
                            "the epoch-{newest_done} DKG completed before it was seen open; \
                             poll faster"
                        );
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    net.stop();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(DkgReport {
        nodes,
        wall_ms: result.0.as_secs_f64() * 1e3,
        cpu_bound_ms: cpu,
        blocks: result.1,
        qualified: result.2,
        epoch: result.3,
    })
}
