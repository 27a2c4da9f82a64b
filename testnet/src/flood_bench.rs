//! `seedfed-bench flood`: consensus and signing latency of a local 4-validator federation,
//! unloaded and then while several fresh identities flood it (`crate::flood`), side by side
//! with their ratio against the 3× bound, and every node process's peak memory.
//!
//! The bench starts a testnet through [`crate::up::start`] (every process is stopped when it
//! returns, fails or is interrupted). If `--sign-requests` is not 0 it waits up to
//! `--key-timeout` for the federation's key; if the key is not final by then it says so and
//! measures consensus only. Each phase (baseline, then flood) lasts `--window-secs`: the
//! commit latency is what each node's chain driver measures (`/status` →
//! `chain.recent_commits`, proposal held → decided) for the heights decided within the window,
//! and the signing latency is `--sign-requests` requests sent one after the other to the
//! nodes' `POST /sign` (round robin, each node's own client key), each timed from just before
//! it is sent to just after its signature verified (`sign_bench::sign_one`). The flooders are
//! made and admitted between the phases (their proof of work and admission are in neither
//! window). Peak memory is each process's `VmHWM` at the end; the CPU the node processes and
//! this process (the flooders) used in each window is printed next to it, to tell the nodes'
//! work from the flooders' on a shared machine. The last line is JSON. The
//! bench exits non-zero if a loaded figure exceeds 3× its baseline or the flood could not run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use seedfed_node::api::ApiClient;
use seedfed_node::chain::CommitSample;
use serde_json::json;
use tokio::time::Instant;

use crate::bench_json::rounded;
use crate::commit_bench::{collect, percentiles, summarize, wait_heights, Summary};
use crate::fedkeygen_bench::process_cpu_ms;
use crate::flood::{observe, FloodPlan, FloodReport, Flooders, Target};
use crate::sign_bench::{final_key, sign_one};
use crate::up::{self, client_key, UpArgs};

/// The testnet's chain id (set by `up`).
const CHAIN_ID: &str = "seedfed-local";
/// The testnet's admission difficulty.
const DIFFICULTY: u8 = 8;
/// The bound the issue sets: loaded latency at most this many times the baseline.
pub const BOUND: f64 = 3.0;

/// `seedfed-bench flood`
#[derive(Debug, Args)]
pub struct FloodArgs {
    /// Validators (one process each).
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    /// Flooding identities.
    #[arg(long, default_value_t = 8)]
    pub flooders: usize,
    /// Seconds of each phase (baseline, flood).
    #[arg(long, default_value_t = 30)]
    pub window_secs: u64,
    /// Gossip messages per second per flooder.
    #[arg(long, default_value_t = 100)]
    pub gossip_rate: u32,
    /// Request-response requests per second per flooder.
    #[arg(long, default_value_t = 100)]
    pub request_rate: u32,
    /// HTTP API calls per second per flooder.
    #[arg(long, default_value_t = 20)]
    pub api_rate: u32,
    /// Sign requests per phase, one after the other (0: consensus only).
    #[arg(long, default_value_t = 10)]
    pub sign_requests: usize,
    /// Seconds to wait for the federation's key before measuring consensus only.
    #[arg(long, default_value_t = 300)]
    pub key_timeout: u64,
    /// The nodes' `consensus.block_interval_ms` (default: the node's).
    #[arg(long)]
    pub block_interval_ms: Option<u64>,
    /// Upper bound on the whole run, in seconds.
    #[arg(long, default_value_t = 1200)]
    pub timeout: u64,
    /// Directory for the testnet (default: `$TMPDIR/seedfed-bench-flood-PID`, PID = ours).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// `seedfed-bench flood`
pub fn run(args: FloodArgs) -> anyhow::Result<()> {
    if args.nodes == 0 || args.flooders == 0 || args.window_secs == 0 {
        bail!("--nodes, --flooders and --window-secs must be at least 1");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = bench(&args) => r,
            _ = int.recv() => Err(anyhow::anyhow!("interrupted")),
            _ = term.recv() => Err(anyhow::anyhow!("terminated")),
        }
    })
}

/// One phase's figures.
#[derive(Debug, Default)]
struct Phase {
    /// Commit latency over the heights decided in the window.
    commit: Option<Summary>,
    /// Heights decided per second (the lowest node's progress over the window).
    heights_per_s: f64,
    /// Signing latencies, milliseconds.
    sign_ms: Vec<f64>,
    /// Sign requests that failed, with the first reason.
    sign_failed: (usize, Option<String>),
    /// CPU seconds per wall second over the window: the node processes summed, and this
    /// process (the flooders, the measuring client).
    cpu: (f64, f64),
}

/// CPU time (ms) used so far by the node processes (summed) and by this process.
fn cpu_ms(net: &up::Testnet) -> (f64, f64) {
    let nodes = net
        .processes()
        .iter()
        .filter(|(name, _)| name != "bootstrap")
        .filter_map(|(_, pid)| process_cpu_ms(*pid))
        .sum();
    (nodes, process_cpu_ms(std::process::id()).unwrap_or(0.0))
}

/// The nodes' API addresses and client keys.
struct Nodes {
    apis: Vec<SocketAddr>,
    keys: Vec<ed25519_dalek::SigningKey>,
}

/// Runs one phase of `secs`: signs `requests` one after the other (if `key` is given), then
/// waits out the window; returns the figures for heights decided within it.
async fn phase(
    client: &ApiClient,
    net: &up::Testnet,
    nodes: &Nodes,
    key: Option<&[u8]>,
    requests: (usize, u64),
    secs: u64,
) -> anyhow::Result<Phase> {
    let started = Instant::now();
    let cpu0 = cpu_ms(net);
    let end = started + Duration::from_secs(secs);
    let from = wait_heights(client, net, &nodes.apis, end, |_| true).await?;
    let mut out = Phase::default();
    if let Some(public) = key {
        let (count, first_nonce) = requests;
        for i in 0..count {
            let n = i % nodes.apis.len();
            let epoch = client
                .status(nodes.apis[n])
                .await?
                .chain
                .context("a node runs no chain")?
                .epoch;
            let nonce = first_nonce + i as u64;
            let wait = end
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(5));
            match sign_one(
                client,
                nodes.apis[n],
                &nodes.keys[n],
                public,
                (epoch, nonce),
                format!("flood bench message {nonce}").as_bytes(),
                wait,
            )
            .await
            {
                Ok((ms, _)) => out.sign_ms.push(ms),
                Err(e) => {
                    out.sign_failed.0 += 1;
                    out.sign_failed.1.get_or_insert(format!("{e:#}"));
                }
            }
        }
    }
    tokio::time::sleep_until(end).await;
    let to = wait_heights(
        client,
        net,
        &nodes.apis,
        end + Duration::from_secs(30),
        |_| true,
    )
    .await?;
    let samples: Vec<CommitSample> = collect(client, &nodes.apis)
        .await?
        .into_iter()
        .filter(|s| s.height > from && s.height <= to)
        .collect();
    out.commit = summarize(&samples);
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let cpu1 = cpu_ms(net);
    out.heights_per_s = to.saturating_sub(from) as f64 / started.elapsed().as_secs_f64();
    out.cpu = ((cpu1.0 - cpu0.0) / wall_ms, (cpu1.1 - cpu0.1) / wall_ms);
    Ok(out)
}

/// `loaded / baseline`, if both exist and the baseline is not zero.
fn ratio(baseline: Option<f64>, loaded: Option<f64>) -> Option<f64> {
    match (baseline, loaded) {
        (Some(b), Some(l)) if b > 0.0 => Some(l / b),
        _ => None,
    }
}

fn p50_p99(v: &[f64]) -> Option<(f64, f64)> {
    percentiles(&mut v.to_vec())
}

async fn bench(args: &FloodArgs) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("seedfed-bench-flood-{}", std::process::id()))
    });
    eprintln!(
        "starting {} validators in {} ...",
        args.nodes,
        dir.display()
    );
    let up_args = UpArgs {
        difficulty: DIFFICULTY,
        ..UpArgs::for_bench(args.nodes, dir.clone(), args.block_interval_ms)
    };
    let net = up::start(&up_args, &dir).await?;
    let client = ApiClient::new();
    let rows: Vec<_> = net.rows.iter().filter(|r| r.name != "bootstrap").collect();
    let mut nodes = Nodes {
        apis: rows.iter().map(|r| r.api).collect(),
        keys: vec![],
    };
    for r in &rows {
        nodes.keys.push(client_key(&net.dir.join(&r.name))?);
    }
    eprintln!("waiting for {} validators to commit ...", args.nodes);
    wait_heights(&client, &net, &nodes.apis, deadline, |s| {
        s.validators.len() == args.nodes && s.height >= 2
    })
    .await?;

    let mut key = None;
    let mut consensus_only = None;
    if args.sign_requests > 0 {
        eprintln!(
            "waiting up to {} s for the federation's key ...",
            args.key_timeout
        );
        let key_deadline = (Instant::now() + Duration::from_secs(args.key_timeout)).min(deadline);
        while Instant::now() < key_deadline {
            net.check_alive()?;
            if let Some((public, _)) = final_key(&client, &nodes.apis).await {
                key = Some(public);
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if key.is_none() {
            let why = format!(
                "the federation's key was not final within {} s: consensus only",
                args.key_timeout
            );
            eprintln!("{why}");
            consensus_only = Some(why);
        }
    }

    eprintln!("baseline: {} s unloaded ...", args.window_secs);
    let requests = args.sign_requests;
    let base = phase(
        &client,
        &net,
        &nodes,
        key.as_deref(),
        (requests, 1_000_000),
        args.window_secs,
    )
    .await?;

    eprintln!("making and admitting {} flooders ...", args.flooders);
    let targets: Vec<Target> = rows
        .iter()
        .map(|r| {
            Ok(Target {
                name: r.name.clone(),
                api: r.api,
                p2p: r
                    .p2p
                    .parse()
                    .with_context(|| format!("{}'s address", r.name))?,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let plan = FloodPlan {
        chain_id: CHAIN_ID.into(),
        difficulty: DIFFICULTY,
        identities: args.flooders,
        // The flood outlasts the window by a little, so every loaded height is flooded.
        duration: Duration::from_secs(args.window_secs + 5),
        gossip_per_s: args.gossip_rate,
        requests_per_s: args.request_rate,
        api_per_s: args.api_rate,
        max_per_kind: u64::from(args.gossip_rate.max(args.request_rate).max(args.api_rate))
            * (args.window_secs + 5),
        stale_keys: nodes.keys.clone(),
        admission_secs: 60,
    };
    let flooders = Flooders::prepare(plan, targets).await?;
    let flooder_ids: Vec<String> = flooders.peer_ids().iter().map(|p| p.to_string()).collect();
    eprintln!("flooding for {} s ...", args.window_secs);
    let flood = tokio::spawn(flooders.run());
    // The first two seconds let the flood reach its steady state.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let loaded = phase(
        &client,
        &net,
        &nodes,
        key.as_deref(),
        (requests, 2_000_000),
        args.window_secs,
    )
    .await;
    let mut views = Vec::new();
    for (r, api) in rows.iter().zip(&nodes.apis) {
        views.push((
            r.name.clone(),
            observe::node_view(&client, *api, &flooder_ids).await,
        ));
    }
    let report: FloodReport = flood.await.context("the flood task failed")?;
    let loaded = loaded?;
    net.check_alive()?;

    let mut memory = serde_json::Map::new();
    for (name, pid) in net.processes() {
        let m = crate::proc_memory::of(*pid)?;
        println!("{name}: {m}");
        memory.insert(name.clone(), json!(rounded(m.peak_kib as f64 / 1024.0, 1)));
    }
    print_and_judge(
        args,
        &base,
        &loaded,
        &report,
        &views,
        memory,
        consensus_only,
    )
}

/// Prints the side-by-side table and the JSON line; fails if a loaded figure exceeds
/// [`BOUND`] times its baseline or a phase had no samples.
fn print_and_judge(
    args: &FloodArgs,
    base: &Phase,
    loaded: &Phase,
    report: &FloodReport,
    views: &[(String, Option<observe::NodeView>)],
    memory: serde_json::Map<String, serde_json::Value>,
    consensus_only: Option<String>,
) -> anyhow::Result<()> {
    println!(
        "flood: {} identities for {:.1} s: gossip {:?}; requests {:?}; api {:?}",
        report.flooders.len(),
        report.seconds,
        report.gossip,
        report.requests,
        report.api
    );
    for (name, v) in views {
        match v {
            Some(v) => println!(
                "{name}: height {}, gossip rejected {}, mempool refused {}, flooders admitted {} / connected {} / penalised {} (lowest score {:?})",
                v.height, v.gossip_rejected, v.mempool_refused, v.flooders_admitted, v.flooders_connected, v.flooders_penalised, v.lowest_score
            ),
            None => println!("{name}: did not answer during the flood"),
        }
    }
    let c = |p: &Phase| p.commit.as_ref().map(|s| (s.p50_ms, s.p99_ms));
    let s = |p: &Phase| p50_p99(&p.sign_ms);
    let (cb, cl, sb, sl) = (c(base), c(loaded), s(base), s(loaded));
    let ratios = [
        ("commit p50", ratio(cb.map(|x| x.0), cl.map(|x| x.0))),
        ("commit p99", ratio(cb.map(|x| x.1), cl.map(|x| x.1))),
        ("sign p50", ratio(sb.map(|x| x.0), sl.map(|x| x.0))),
        ("sign p99", ratio(sb.map(|x| x.1), sl.map(|x| x.1))),
    ];
    println!(
        "{:<12} {:>12} {:>12} {:>8}  (bound {BOUND}x)",
        "", "baseline ms", "flooded ms", "ratio"
    );
    let show = |name: &str, b: Option<f64>, l: Option<f64>, r: Option<f64>| {
        let f = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.2}"));
        let verdict = match r {
            Some(r) if r <= BOUND => "within",
            Some(_) => "EXCEEDS",
            None => "",
        };
        println!(
            "{name:<12} {:>12} {:>12} {:>8}  {verdict}",
            f(b),
            f(l),
            r.map_or("-".into(), |r| format!("{r:.2}x"))
        );
    };
    show("commit p50", cb.map(|x| x.0), cl.map(|x| x.0), ratios[0].1);
    show("commit p99", cb.map(|x| x.1), cl.map(|x| x.1), ratios[1].1);
    show("sign p50", sb.map(|x| x.0), sl.map(|x| x.0), ratios[2].1);
    show("sign p99", sb.map(|x| x.1), sl.map(|x| x.1), ratios[3].1);
    println!(
        "heights per second: baseline {:.2}, flooded {:.2}",
        base.heights_per_s, loaded.heights_per_s
    );
    println!(
        "CPU cores busy: nodes {:.2} -> {:.2}, this process (flooders) {:.2} -> {:.2}",
        base.cpu.0, loaded.cpu.0, base.cpu.1, loaded.cpu.1
    );
    for (label, p) in [("baseline", base), ("flooded", loaded)] {
        if let (n, Some(why)) = &p.sign_failed {
            println!("{label}: {n} sign requests failed, first: {why}");
        }
    }
    if let Some(why) = &consensus_only {
        println!("{why}");
    }
    let phase_json = |p: &Phase, sign: Option<(f64, f64)>| {
        json!({
            "commit": p.commit.as_ref().map(|s| json!({"p50_ms": rounded(s.p50_ms, 2), "p99_ms": rounded(s.p99_ms, 2), "n": s.n, "heights": s.heights})),
            "heights_per_s": rounded(p.heights_per_s, 2),
            "cpu_cores": {"nodes": rounded(p.cpu.0, 2), "bench": rounded(p.cpu.1, 2)},
            "sign": sign.map(|(p50, p99)| json!({"p50_ms": rounded(p50, 1), "p99_ms": rounded(p99, 1), "n": p.sign_ms.len(), "failed": p.sign_failed.0})),
        })
    };
    let within = ratios.iter().all(|(_, r)| r.is_none_or(|r| r <= BOUND));
    let line = json!({
        "bench": "flood",
        "nodes": args.nodes,
        "flooders": args.flooders,
        "window_secs": args.window_secs,
        "rates_per_flooder": {"gossip": args.gossip_rate, "requests": args.request_rate, "api": args.api_rate},
        "baseline": phase_json(base, sb),
        "flooded": phase_json(loaded, sl),
        "ratio": {
            "commit_p50": ratios[0].1.map(|r| rounded(r, 2)),
            "commit_p99": ratios[1].1.map(|r| rounded(r, 2)),
            "sign_p50": ratios[2].1.map(|r| rounded(r, 2)),
            "sign_p99": ratios[3].1.map(|r| rounded(r, 2)),
        },
        "bound": BOUND,
        "within_bound": within,
        "consensus_only": consensus_only.is_some(),
        "sent": {"gossip": report.gossip.sent, "requests": report.requests.sent, "api": report.api.sent},
        "peak_rss_mib": memory,
    });
    println!("{line}");
    if base.commit.is_none() || loaded.commit.is_none() {
        bail!("a phase decided no height (see above)");
    }
    if !within {
        bail!("a flooded latency exceeds {BOUND}x its baseline (see above)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_need_both_figures_and_a_baseline_above_zero() {
        assert_eq!(ratio(Some(10.0), Some(25.0)), Some(2.5));
        assert_eq!(ratio(Some(0.0), Some(25.0)), None);
        assert_eq!(ratio(None, Some(25.0)), None);
        assert_eq!(ratio(Some(10.0), None), None);
    }
}
