//! `seedfed-bench commit`: commit latency of a local multi-process federation, for empty blocks
//! and for blocks of a given number of transfers.
//!
//! The latency is what each validator's chain driver measures itself (see
//! `seedfed_node::chain::latency`): from holding the decided round's proposal to deciding the
//! height. The bench starts a testnet through [`crate::up::start`] (every process is stopped
//! when it returns, fails or is interrupted), takes the samples every node reports in `/status`
//! for `--heights` heights of empty blocks, then submits rounds of `--txs` signed transfers
//! (authors: the validators themselves, keys from their keystores, a ring of `amount: 1`
//! transfers so stakes stay level) through `POST /tx` and keeps the samples of blocks holding
//! at least `--txs` transactions. Every wait is bounded by `--timeout`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use seedfed_node::api::ApiClient;
use seedfed_node::chain::CommitSample;
use seedfed_protocol::ledger::{SignedTx, Tx, TxBody};
use seedfed_protocol::member::MemberId;
use serde_json::json;
use tokio::time::Instant;

use crate::bench_json::rounded;
use crate::up::{self, UpArgs};

/// Concurrent submission requests per node.
const SUBMIT_LANES: usize = 8;
/// The testnet's chain id (set by `up`).
const CHAIN_ID: &str = "seedfed-local";

/// `seedfed-bench commit`
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Validators (one process each).
    #[arg(long, default_value_t = 7)]
    pub nodes: usize,
    /// Heights to sample for each block kind.
    #[arg(long, default_value_t = 30)]
    pub heights: usize,
    /// Transactions per full block.
    #[arg(long, default_value_t = 1000)]
    pub txs: usize,
    /// The nodes' `consensus.block_interval_ms` (time from a decision to the next proposal;
    /// not part of the latency, but it must leave time to submit a round of transactions:
    /// on a loaded 2-core machine 1,000 submissions to 7 nodes take 2-3 s).
    #[arg(long, default_value_t = 3000)]
    pub block_interval_ms: u64,
    /// Upper bound on the whole run, in seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// Directory for the testnet (default: `$TMPDIR/seedfed-bench-commit-PID`, PID = ours).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Latency figures for one kind of block.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Median, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Samples (one per node and height).
    pub n: usize,
    /// Distinct heights.
    pub heights: usize,
}

/// Nearest-rank percentiles of the samples' latencies.
pub fn summarize(samples: &[CommitSample]) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    let mut v: Vec<u64> = samples.iter().map(|s| s.latency_us).collect();
    v.sort_unstable();
    let rank = |p: f64| {
        let r = (p * v.len() as f64).ceil() as usize;
        v[r.clamp(1, v.len()) - 1] as f64 / 1000.0
    };
    Some(Summary {
        p50_ms: rank(0.50),
        p99_ms: rank(0.99),
        n: v.len(),
        heights: samples
            .iter()
            .map(|s| s.height)
            .collect::<BTreeSet<_>>()
            .len(),
    })
}

/// One kind of block's figures as a JSON object (zero samples: null percentiles).
fn summary_json(s: &Option<Summary>) -> serde_json::Value {
    match s {
        Some(s) => json!({
            "p50_ms": rounded(s.p50_ms, 2),
            "p99_ms": rounded(s.p99_ms, 2),
            "n": s.n,
            "heights": s.heights,
        }),
        None => json!({ "p50_ms": null, "p99_ms": null, "n": 0, "heights": 0 }),
    }
}

struct Validator {
    api: SocketAddr,
    member: MemberId,
    key: ed25519_dalek::SigningKey,
}

/// `seedfed-bench commit`
pub fn run(args: CommitArgs) -> anyhow::Result<()> {
    if args.nodes == 0 || args.heights == 0 {
        bail!("--nodes and --heights must be at least 1");
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

async fn bench(args: &CommitArgs) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("seedfed-bench-commit-{}", std::process::id()))
    });
    eprintln!(
        "starting {} validators in {} (block interval {} ms) ...",
        args.nodes,
        dir.display(),
        args.block_interval_ms
    );
    let up_args = UpArgs {
        cycle_timeout: 0,
        key_timeout: 0,
        signatures: 0,
        tree_height: None,
        epochs: None,
        nodes: args.nodes,
        dir: Some(dir.clone()),
        difficulty: 8,
        timeout: 180,
        foreground: false,
        // Plenty of stake for rounds of transfers of 1.
        stake: 1_000_000_000,
        node_env: vec![(
            "SEEDFED__CONSENSUS__BLOCK_INTERVAL_MS".into(),
            args.block_interval_ms.to_string(),
        )],
    };
    let net = up::start(&up_args, &dir).await?;
    let client = ApiClient::new();

    // The validators' transaction keys, from their keystores.
    let mut vals = Vec::new();
    for row in net.rows.iter().skip(1) {
        let key = up::client_key(&net.dir.join(&row.name))?;
        vals.push(Validator {
            api: row.api,
            member: MemberId(key.verifying_key().to_bytes()),
            key,
        });
    }

    // All validators see the full set and decide.
    eprintln!("waiting for {} validators to commit ...", args.nodes);
    let start_h = wait_heights(&client, &net, &vals, deadline, |s| {
        s.validators.len() == args.nodes && s.height >= 2
    })
    .await?;

    // Empty blocks.
    let empty_to = start_h + args.heights as u64;
    eprintln!(
        "sampling empty blocks at heights {}..={empty_to} ...",
        start_h + 1
    );
    wait_heights(&client, &net, &vals, deadline, |s| s.height >= empty_to).await?;
    let all = collect(&client, &vals).await?;
    let empty: Vec<CommitSample> = all
        .iter()
        .filter(|s| s.height > start_h && s.height <= empty_to && s.txs == 0)
        .copied()
        .collect();

    // Full blocks: rounds of `txs` transfers around the ring of validators.
    eprintln!("sampling blocks of >= {} transactions ...", args.txs);
    let full_from = wait_heights(&client, &net, &vals, deadline, |_| true).await?;
    let mut full = Vec::new();
    let mut rounds = 0usize;
    let mut split = 0usize;
    while Instant::now() < deadline {
        net.check_alive()?;
        let (submitted_at, expected) = submit_round(&client, &vals, args.txs).await?;
        rounds += 1;
        // Wait until every author's nonce moved past the round (bounded).
        let round_deadline = (Instant::now() + Duration::from_secs(60)).min(deadline);
        loop {
            let mut done = true;
            for (v, want) in vals.iter().zip(&expected) {
                let n = client
                    .status(v.api)
                    .await
                    .ok()
                    .and_then(|s| s.chain)
                    .map_or(0, |c| c.nonce);
                if n < *want {
                    done = false;
                    break;
                }
            }
            if done {
                break;
            }
            if Instant::now() > round_deadline {
                bail!(
                    "round {rounds}: transactions not all committed within 60 s; logs in {}",
                    net.dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let all = collect(&client, &vals).await?;
        full = all
            .iter()
            .filter(|s| s.height > full_from && s.txs as usize >= args.txs)
            .copied()
            .collect();
        let heights = full.iter().map(|s| s.height).collect::<BTreeSet<_>>().len();
        split = rounds.saturating_sub(heights);
        eprintln!(
            "round {rounds}: {} tx submitted in {:.0} ms; {heights} full heights so far",
            args.txs,
            submitted_at.as_secs_f64() * 1000.0
        );
        if heights >= args.heights {
            break;
        }
    }

    let e = summarize(&empty);
    let f = summarize(&full);
    let show = |name: &str, s: &Option<Summary>| match s {
        Some(s) => println!(
            "{name}: p50 {:.2} ms, p99 {:.2} ms ({} samples over {} heights)",
            s.p50_ms, s.p99_ms, s.n, s.heights
        ),
        None => println!("{name}: no samples"),
    };
    println!(
        "commit latency, {} validators, block interval {} ms (proposal held -> decided, every node):",
        args.nodes, args.block_interval_ms
    );
    show("empty blocks", &e);
    show(&format!("blocks of >= {} txs", args.txs), &f);
    if split > 0 {
        println!("{split} of {rounds} rounds were split over several blocks (not sampled)");
    }
    let mut line = json!({
        "bench": "commit",
        "nodes": args.nodes,
        "block_interval_ms": args.block_interval_ms,
        "empty": summary_json(&e),
    });
    line[format!("txs_{}", args.txs)] = summary_json(&f);
    println!("{line}");
    net.stop();
    if e.is_none() || f.is_none() {
        bail!("not enough samples (see above)");
    }
    Ok(())
}

/// Polls every validator until `ok` holds for all of them; returns the lowest height seen.
async fn wait_heights(
    client: &ApiClient,
    net: &up::Testnet,
    vals: &[Validator],
    deadline: Instant,
    ok: impl Fn(&seedfed_node::chain::ChainStatus) -> bool,
) -> anyhow::Result<u64> {
    loop {
        let mut min = u64::MAX;
        let mut all = true;
        for v in vals {
            match client.status(v.api).await.ok().and_then(|s| s.chain) {
                Some(c) if ok(&c) => min = min.min(c.height),
                _ => {
                    all = false;
                    break;
                }
            }
        }
        if all {
            return Ok(min);
        }
        net.check_alive()?;
        if Instant::now() > deadline {
            bail!("timed out; logs in {}", net.dir.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every validator's recent samples.
async fn collect(client: &ApiClient, vals: &[Validator]) -> anyhow::Result<Vec<CommitSample>> {
    let mut out = Vec::new();
    for v in vals {
        let s = client.status(v.api).await?;
        out.extend(s.chain.context("a node runs no chain")?.recent_commits);
    }
    Ok(out)
}

/// Signs `total` transfers of 1 (validator i pays validator i+1, nonces from the ledger) and
/// posts each author's to its own node, all authors at once. Returns how long submission
/// took and each author's nonce once the round is committed.
async fn submit_round(
    client: &ApiClient,
    vals: &[Validator],
    total: usize,
) -> anyhow::Result<(Duration, Vec<u64>)> {
    let n = vals.len();
    let mut batches = Vec::new();
    let mut expected = Vec::new();
    for (i, v) in vals.iter().enumerate() {
        let status = client.status(v.api).await?;
        let base = status.chain.context("a node runs no chain")?.nonce;
        let count = total / n + usize::from(i < total % n);
        let to = vals[(i + 1) % n].member;
        let txs: Vec<SignedTx> = (0..count as u64)
            .map(|k| {
                Tx {
                    author: v.member,
                    nonce: base + k,
                    body: TxBody::Transfer { to, amount: 1 },
                }
                .sign(CHAIN_ID, &v.key)
            })
            .collect();
        expected.push(base + count as u64);
        batches.push((v.api, txs));
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    // Several requests in flight per node (the mempool orders by nonce, arrival order does
    // not matter).
    for (api, txs) in batches {
        for lane in 0..SUBMIT_LANES {
            let client = client.clone();
            let mine: Vec<SignedTx> = txs
                .iter()
                .skip(lane)
                .step_by(SUBMIT_LANES)
                .cloned()
                .collect();
            tasks.spawn(async move {
                for tx in &mine {
                    client.submit_tx(api, tx).await?;
                }
                Ok::<_, seedfed_node::api::ApiError>(())
            });
        }
    }
    while let Some(r) = tasks.join_next().await {
        r.context("submit task")??;
    }
    Ok((started.elapsed(), expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(height: u64, ms: u64) -> CommitSample {
        CommitSample {
            height,
            round: 0,
            txs: 0,
            latency_us: ms * 1000,
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(summarize(&[]), None);
        // 1..=100 ms over 10 heights.
        let v: Vec<CommitSample> = (1..=100).map(|i| sample(i % 10, i)).collect();
        let s = summarize(&v).unwrap();
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.n, 100);
        assert_eq!(s.heights, 10);
        let one = summarize(&[sample(1, 7)]).unwrap();
        assert_eq!((one.p50_ms, one.p99_ms), (7.0, 7.0));
    }

    #[test]
    fn summary_json_rounds_and_marks_missing_samples() {
        let s = Summary {
            p50_ms: 12.3456,
            p99_ms: 99.999,
            n: 3,
            heights: 2,
        };
        assert_eq!(
            summary_json(&Some(s)),
            json!({ "p50_ms": 12.35, "p99_ms": 100.0, "n": 3, "heights": 2 })
        );
        assert_eq!(
            summary_json(&None).to_string(),
            r#"{"heights":0,"n":0,"p50_ms":null,"p99_ms":null}"#
        );
    }
}
