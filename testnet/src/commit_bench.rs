//! `seedfed-bench commit`: commit latency of a local multi-process federation, for empty blocks
//! and for blocks of a given number of transfers.
//!
//! The latency is what each validator's chain driver measures itself (see
//! `seedfed_node::chain::latency`): from holding the decided round's proposal to deciding the
//! height. The bench starts a testnet through [`crate::up::start`] (every process is stopped
//! when it returns, fails or is interrupted), takes the samples every node reports in `/status`
//! for `--heights` heights of empty blocks, then submits rounds of `--txs` signed transfers
//! (authors: the validators themselves, keys from their keystores, a ring of `amount: 1`
//! transfers so stakes stay level) through `POST /txs`, one request per author, and keeps the
//! samples of blocks holding at least `--txs` transactions. Next to the driver's latency it
//! reports what a client sees (a round's transactions accepted by the nodes → all of them
//! decided) and the share of heights decided in round 0. Every wait is bounded by
//! `--timeout`.
//!
//! The authors' nonces come from `GET /account` (past each node's mempool). A node refuses a
//! transaction of its own key at a nonce one of its own duties took in the meantime (409): the
//! bench posts the refused ones again, signed from the new next nonce, and reports how often a
//! batch had to.

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
    let mut v: Vec<f64> = samples
        .iter()
        .map(|s| s.latency_us as f64 / 1000.0)
        .collect();
    let (p50_ms, p99_ms) = percentiles(&mut v)?;
    Some(Summary {
        p50_ms,
        p99_ms,
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
    crate::up::block_on_interruptible(&rt, bench(&args))
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
        // Plenty of stake for rounds of transfers of 1.
        stake: 1_000_000_000,
        ..UpArgs::for_bench(args.nodes, dir.clone(), Some(args.block_interval_ms))
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

    let apis: Vec<SocketAddr> = vals.iter().map(|v| v.api).collect();
    // All validators see the full set and decide.
    eprintln!("waiting for {} validators to commit ...", args.nodes);
    let start_h = wait_heights(&client, &net, &apis, deadline, |s| {
        s.validators.len() == args.nodes && s.height >= 2
    })
    .await?;

    // Empty blocks.
    let empty_to = start_h + args.heights as u64;
    eprintln!(
        "sampling empty blocks at heights {}..={empty_to} ...",
        start_h + 1
    );
    wait_heights(&client, &net, &apis, deadline, |s| s.height >= empty_to).await?;
    let all = collect(&client, &apis).await?;
    let empty: Vec<CommitSample> = all
        .iter()
        .filter(|s| s.height > start_h && s.height <= empty_to && s.txs == 0)
        .copied()
        .collect();

    // Full blocks: rounds of `txs` transfers around the ring of validators.
    eprintln!("sampling blocks of >= {} transactions ...", args.txs);
    let full_from = wait_heights(&client, &net, &apis, deadline, |_| true).await?;
    let mut full = Vec::new();
    let mut rounds = 0usize;
    let mut split = 0usize;
    let mut client_ms: Vec<f64> = Vec::new();
    let mut taken = 0usize;
    while Instant::now() < deadline {
        net.check_alive()?;
        let submitted = submit_round(&client, &vals, args.txs).await?;
        let (submitted_in, expected) = (submitted.took, submitted.expected);
        taken += submitted.taken;
        let accepted_at = Instant::now();
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
                client_ms.push(accepted_at.elapsed().as_secs_f64() * 1000.0);
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
        let all = collect(&client, &apis).await?;
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
            submitted_in.as_secs_f64() * 1000.0
        );
        if heights >= args.heights {
            break;
        }
    }

    let e = summarize(&empty);
    let f = summarize(&full);
    let sampled: Vec<CommitSample> = collect(&client, &apis)
        .await?
        .into_iter()
        .filter(|s| s.height > start_h)
        .collect();
    let round0 = round_zero_share(&sampled);
    let client = percentiles(&mut client_ms);
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
    if let Some((p50, p99)) = client {
        println!(
            "client view, {} txs accepted -> all decided (includes the block interval): p50 {p50:.0} ms, p99 {p99:.0} ms over {} rounds",
            args.txs,
            client_ms.len()
        );
    }
    if let Some((r0, heights)) = round0 {
        println!(
            "heights decided in round 0: {:.1}% of {heights}",
            r0 * 100.0
        );
    }
    if split > 0 {
        println!("{split} of {rounds} rounds were split over several blocks (not sampled)");
    }
    if taken > 0 {
        println!("{taken} batches met a nonce their node's own transactions took (409)");
    }
    let mut line = json!({
        "bench": "commit",
        "nodes": args.nodes,
        "block_interval_ms": args.block_interval_ms,
        "empty": summary_json(&e),
        "client_ms": client.map(|(p50, p99)| json!({"p50": rounded(p50, 1), "p99": rounded(p99, 1), "rounds": client_ms.len()})),
        "round0_share": round0.map(|(r, _)| rounded(r, 4)),
        "nonce_retries": taken,
    });
    line[format!("txs_{}", args.txs)] = summary_json(&f);
    println!("{line}");
    net.stop();
    if e.is_none() || f.is_none() {
        bail!("not enough samples (see above)");
    }
    Ok(())
}

/// Polls every validator (by its API address) until `ok` holds for all of them; returns the
/// lowest height seen.
pub(crate) async fn wait_heights(
    client: &ApiClient,
    net: &up::Testnet,
    apis: &[SocketAddr],
    deadline: Instant,
    ok: impl Fn(&seedfed_node::chain::ChainStatus) -> bool,
) -> anyhow::Result<u64> {
    loop {
        let mut min = u64::MAX;
        let mut all = true;
        for api in apis {
            match client.status(*api).await.ok().and_then(|s| s.chain) {
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

/// Every validator's recent samples (validators by their API address).
pub(crate) async fn collect(
    client: &ApiClient,
    apis: &[SocketAddr],
) -> anyhow::Result<Vec<CommitSample>> {
    let mut out = Vec::new();
    for api in apis {
        let s = client.status(*api).await?;
        out.extend(s.chain.context("a node runs no chain")?.recent_commits);
    }
    Ok(out)
}

/// The share of distinct heights whose commit was in round 0, and how many heights.
pub fn round_zero_share(samples: &[CommitSample]) -> Option<(f64, usize)> {
    let mut by_height = std::collections::BTreeMap::new();
    for s in samples {
        by_height.entry(s.height).or_insert(s.round);
    }
    if by_height.is_empty() {
        return None;
    }
    let zero = by_height.values().filter(|r| **r == 0).count();
    Some((zero as f64 / by_height.len() as f64, by_height.len()))
}

/// Nearest-rank p50 and p99 of `v` (sorted in place).
pub(crate) fn percentiles(v: &mut [f64]) -> Option<(f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Some((rank(0.50), rank(0.99)))
}

/// What [`submit_round`] did.
struct Submitted {
    /// From the first request to the last answer.
    took: Duration,
    /// Each author's nonce once the round is committed.
    expected: Vec<u64>,
    /// Times an author's batch met a nonce the node's own transactions took (409).
    taken: usize,
}

/// Signs `total` transfers of 1 (validator i pays validator i+1, nonces from `GET /account`,
/// past each node's mempool) and posts each author's to its own node in one `POST /txs`, all
/// authors at once. A node refuses its own key's transaction (409) at a nonce a transaction it
/// signed itself (a duty) took since `GET /account`: those are signed again from the new next
/// nonce and posted again, 50 ms later, within 30 s. Any other refusal fails the bench.
async fn submit_round(
    client: &ApiClient,
    vals: &[Validator],
    total: usize,
) -> anyhow::Result<Submitted> {
    let n = vals.len();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, v) in vals.iter().enumerate() {
        let count = total / n + usize::from(i < total % n);
        let to = vals[(i + 1) % n].member;
        let (client, api, member, key) = (client.clone(), v.api, v.member, v.key.clone());
        tasks.spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut waited = 0usize;
            let mut left = count;
            loop {
                let base = client
                    .account(api, &member)
                    .await?
                    .context("a validator has no account")?
                    .next_nonce;
                let txs: Vec<SignedTx> = (0..left as u64)
                    .map(|k| {
                        Tx {
                            author: member,
                            nonce: base + k,
                            body: TxBody::Transfer { to, amount: 1 },
                        }
                        .sign(CHAIN_ID, &key)
                    })
                    .collect();
                let mut refused = 0usize;
                for chunk in txs.chunks(seedfed_node::api::MAX_TXS_PER_REQUEST) {
                    if refused > 0 {
                        refused += chunk.len();
                        continue;
                    }
                    let verdict = client.submit_txs(api, chunk).await?;
                    for r in &verdict.refused {
                        if r.code != 409 {
                            bail!("{api} refused transaction {}: {}", r.index, r.reason);
                        }
                    }
                    refused += verdict.refused.len();
                }
                if refused == 0 {
                    return Ok::<_, anyhow::Error>((i, base + left as u64, waited));
                }
                // The node's own transactions first: the refused ones again, from the new
                // next nonce (an accepted prefix keeps its nonces).
                left = refused;
                waited += 1;
                if Instant::now() > deadline {
                    bail!("{api} refused our transactions for 30 s (nonces taken by its own)");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }
    let mut expected = vec![0u64; n];
    let mut taken = 0usize;
    while let Some(r) = tasks.join_next().await {
        let (i, nonce, waited) = r.context("submit task")??;
        expected[i] = nonce;
        taken += waited;
    }
    Ok(Submitted {
        took: started.elapsed(),
        expected,
        taken,
    })
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
    fn round_zero_share_counts_each_height_once() {
        assert_eq!(round_zero_share(&[]), None);
        let mut v = vec![sample(1, 5), sample(1, 6), sample(2, 5), sample(3, 5)];
        v[2].round = 1;
        assert_eq!(round_zero_share(&v), Some((2.0 / 3.0, 3)));
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
