//! `seedfed-bench idle`: what a federation costs while it does nothing but decide empty
//! blocks, per validator and per block, measured side by side for every process of one run.
//!
//! The bench starts a testnet through [`crate::up::start`] with an epoch that never ends (no
//! DKG, no key generation: consensus, gossip, discovery and timers only), waits until every
//! validator sees the full set, then reads each validator process's CPU time
//! (`/proc/<pid>/stat`, user + system) and the height before and after `--secs` seconds. It
//! prints the federation's CPU per decided block, each validator's share of a core, and the
//! cores the whole federation keeps busy: the per-process cost that decides how many
//! validators one machine can run (issue 12's 64-validator question).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::json;
use tokio::time::Instant;

use crate::bench_json::rounded;
use crate::commit_bench::wait_heights;
use crate::up::{self, UpArgs};
use seedfed_node::api::ApiClient;
use seedfed_protocol::ledger::EpochParams;

/// `seedfed-bench idle`
#[derive(Debug, Args)]
pub struct IdleArgs {
    /// Validators (one process each).
    #[arg(long, default_value_t = 16)]
    pub nodes: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 60)]
    pub secs: u64,
    /// The nodes' `consensus.block_interval_ms` (default: the node's own default).
    #[arg(long)]
    pub block_interval_ms: Option<u64>,
    /// Upper bound on the whole run, in seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// Directory for the testnet (default: `$TMPDIR/seedfed-bench-idle-PID`, PID = ours).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Runs the bench.
pub fn run(args: IdleArgs) -> anyhow::Result<()> {
    if args.nodes == 0 || args.secs == 0 {
        bail!("--nodes and --secs must be at least 1");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    up::block_on_interruptible(&rt, bench(&args))
}

/// Clock ticks per second of `/proc/<pid>/stat`'s times.
fn clock_ticks() -> anyhow::Result<f64> {
    let ticks =
        nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)?.context("CLK_TCK unknown")?;
    Ok(ticks as f64)
}

/// User + system time of process `pid`, in clock ticks, from `/proc/<pid>/stat`.
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    parse_cpu_ticks(&stat).with_context(|| format!("parsing /proc/{pid}/stat"))
}

/// `utime + stime` of a `/proc/<pid>/stat` line (fields 14 and 15; the command name, field 2,
/// may contain spaces and parentheses, so fields are counted from its last `)`).
fn parse_cpu_ticks(stat: &str) -> anyhow::Result<u64> {
    let rest = &stat[stat.rfind(')').context("no command name")? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
    let field = |i: usize| -> anyhow::Result<u64> {
        Ok(fields.get(i).context("too few fields")?.parse::<u64>()?)
    };
    Ok(field(11)? + field(12)?)
}

async fn bench(args: &IdleArgs) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("seedfed-bench-idle-{}", std::process::id()))
    });
    eprintln!(
        "starting {} validators in {} ...",
        args.nodes,
        dir.display()
    );
    let up_args = UpArgs {
        // No epoch ever ends: no DKG, no key generation.
        epochs: Some(EpochParams {
            epoch_min_blocks: u64::MAX / 4,
            ..EpochParams::default()
        }),
        timeout: args.timeout,
        ..UpArgs::for_bench(args.nodes, dir.clone(), args.block_interval_ms)
    };
    let net = up::start(&up_args, &dir).await?;
    let client = ApiClient::new();
    let validators: Vec<(SocketAddr, u32)> = net
        .rows
        .iter()
        .skip(1)
        .map(|row| {
            net.processes()
                .iter()
                .find(|(name, _)| *name == row.name)
                .map(|(_, pid)| (row.api, *pid))
                .with_context(|| format!("no process for {}", row.name))
        })
        .collect::<anyhow::Result<_>>()?;
    let apis: Vec<SocketAddr> = validators.iter().map(|(a, _)| *a).collect();
    eprintln!("waiting for {} validators to decide ...", args.nodes);
    wait_heights(&client, &net, &apis, deadline, |s| {
        s.validators.len() == args.nodes && s.height >= 2
    })
    .await?;
    if Instant::now() + Duration::from_secs(args.secs) > deadline {
        bail!("no time left for {} s of measuring", args.secs);
    }
    let ticks = clock_ticks()?;
    let cpu = || -> anyhow::Result<Vec<u64>> {
        validators.iter().map(|(_, pid)| cpu_ticks(*pid)).collect()
    };
    let (h0, cpu0, t0) = (
        wait_heights(&client, &net, &apis, deadline, |_| true).await?,
        cpu()?,
        Instant::now(),
    );
    eprintln!("measuring {} s from height {h0} ...", args.secs);
    tokio::time::sleep(Duration::from_secs(args.secs)).await;
    let (cpu1, wall) = (cpu()?, t0.elapsed().as_secs_f64());
    let h1 = wait_heights(&client, &net, &apis, deadline, |_| true).await?;
    net.check_alive()?;
    let mut rss = Vec::new();
    for (_, pid) in &validators {
        rss.push(crate::proc_memory::of(*pid)?.rss_kib as f64 / 1024.0);
    }
    rss.sort_by(f64::total_cmp);
    let per_node: Vec<f64> = cpu0
        .iter()
        .zip(&cpu1)
        .map(|(a, b)| b.saturating_sub(*a) as f64 / ticks)
        .collect();
    let total: f64 = per_node.iter().sum();
    let blocks = h1.saturating_sub(h0);
    let mut shares: Vec<f64> = per_node.iter().map(|s| s / wall).collect();
    shares.sort_by(f64::total_cmp);
    let line = json!({
        "bench": "idle",
        "nodes": args.nodes,
        "secs": rounded(wall, 1),
        "blocks": blocks,
        "blocks_per_s": rounded(blocks as f64 / wall, 2),
        "cores_busy": rounded(total / wall, 3),
        "cpu_ms_per_block": (blocks > 0).then(|| rounded(total * 1e3 / blocks as f64, 1)),
        "cpu_ms_per_block_per_node": (blocks > 0)
            .then(|| rounded(total * 1e3 / blocks as f64 / args.nodes as f64, 2)),
        "core_share_per_node": spread(&shares, 4),
        "rss_mib_per_node": spread(&rss, 1),
    });
    println!("{line}");
    net.stop();
    Ok(())
}

/// `{min, p50, max}` of sorted, non-empty `v`, rounded to `places`.
fn spread(v: &[f64], places: i32) -> serde_json::Value {
    let at = |i: usize| v.get(i).map(|x| rounded(*x, places));
    json!({"min": at(0), "p50": at(v.len() / 2), "max": at(v.len().saturating_sub(1))})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_counted_after_the_command_name() {
        let line = "4242 (seedfed (a) b) S 1 2 3 4 5 6 7 8 9 10 120 35 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_cpu_ticks(line).unwrap(), 155);
        assert!(parse_cpu_ticks("4242 (x) S 1 2").is_err());
        assert!(parse_cpu_ticks("no name here").is_err());
    }

    #[test]
    fn this_process_has_a_cpu_time() {
        assert!(cpu_ticks(std::process::id()).is_ok());
    }
}
