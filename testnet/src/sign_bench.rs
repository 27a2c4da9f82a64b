//! `seedfed-bench sign`: signing throughput and latency of a local multi-process federation,
//! from a client's request to a verified signature.
//!
//! The bench starts a testnet through [`crate::up::start`] (every process is stopped when it
//! returns, fails or is interrupted), waits until every node reports the final public key,
//! then sends `--requests` client-signed requests at once to the nodes' `POST /sign` (round
//! robin; each node's own key is its client) and times each from just before it is sent to
//! just after the returned signature verified under the public key (`lms::verify_hss_bytes`).
//! It prints the latency percentiles, the throughput (requests / wall time of the whole burst)
//! and the block interval the nodes ran with. Every wait is bounded by `--timeout`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use seedfed_node::api::ApiClient;
use seedfed_protocol::ledger::{message_digest, ClientRequest};
use seedfed_protocol::member::MemberId;
use serde_json::json;
use tokio::time::Instant;

use crate::bench_json::rounded;
use crate::up::{self, client_key, UpArgs};

/// The testnet's chain id (set by `up`).
const CHAIN_ID: &str = "seedfed-local";

/// `seedfed-bench sign`
#[derive(Debug, Args)]
pub struct SignArgs {
    /// Validators (one process each).
    #[arg(long, default_value_t = 7)]
    pub nodes: usize,
    /// Sign requests, all sent at once.
    #[arg(long, default_value_t = 2000)]
    pub requests: usize,
    /// Height of the key (5, 10, 15, 20 or 25): at least `requests` leaves plus the audited
    /// ones.
    #[arg(long, default_value_t = 15)]
    pub height: u8,
    /// The nodes' `consensus.block_interval_ms` (a signature takes two blocks: the one that
    /// allocates the leaf and the one that publishes the signature).
    #[arg(long, default_value_t = 200)]
    pub block_interval_ms: u64,
    /// Upper bound on the whole run, in seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// Directory for the testnet (default: `$TMPDIR/seedfed-bench-sign-PID`, PID = ours).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// `seedfed-bench sign`
pub fn run(args: SignArgs) -> anyhow::Result<()> {
    if args.nodes == 0 || args.requests == 0 {
        bail!("--nodes and --requests must be at least 1");
    }
    if (1u64 << args.height.min(63)) < args.requests as u64 * 2 {
        bail!(
            "a key of height {} has too few leaves for {} requests",
            args.height,
            args.requests
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    crate::up::block_on_interruptible(&rt, bench(&args))
}

/// Nearest-rank percentile of sorted `v`.
fn percentile(v: &[f64], p: f64) -> f64 {
    let r = (p * v.len() as f64).ceil() as usize;
    v[r.clamp(1, v.len()) - 1]
}

/// The bench's result line.
pub fn report_json(
    nodes: usize,
    requests: usize,
    latencies_ms: &mut [f64],
    wall_s: f64,
    block_interval_ms: u64,
) -> serde_json::Value {
    latencies_ms.sort_by(f64::total_cmp);
    json!({
        "bench": "sign",
        "nodes": nodes,
        "requests": requests,
        "p50_ms": rounded(percentile(latencies_ms, 0.50), 1),
        "p99_ms": rounded(percentile(latencies_ms, 0.99), 1),
        "sigs_per_s": rounded(requests as f64 / wall_s, 1),
        "block_interval_ms": block_interval_ms,
    })
}

async fn bench(args: &SignArgs) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("seedfed-bench-sign-{}", std::process::id()))
    });
    eprintln!(
        "starting {} validators in {} (block interval {} ms, key height {}) ...",
        args.nodes,
        dir.display(),
        args.block_interval_ms,
        args.height
    );
    let up_args = UpArgs {
        cycle_timeout: 0,
        key_timeout: 0,
        signatures: 0,
        tree_height: Some(args.height),
        epochs: None,
        nodes: args.nodes,
        dir: Some(dir.clone()),
        difficulty: 8,
        timeout: 180,
        foreground: false,
        stake: 100,
        node_env: vec![(
            "SEEDFED__CONSENSUS__BLOCK_INTERVAL_MS".into(),
            args.block_interval_ms.to_string(),
        )],
    };
    let net = up::start(&up_args, &dir).await?;
    let client = ApiClient::new();
    let nodes: Vec<_> = net.rows.iter().filter(|r| r.name != "bootstrap").collect();
    eprintln!("waiting for the key ...");
    let apis: Vec<SocketAddr> = nodes.iter().map(|r| r.api).collect();
    let (public, epoch) = loop {
        if Instant::now() > deadline {
            bail!("the key was not final in time; logs in {}", dir.display());
        }
        net.check_alive()?;
        if let Some(k) = final_key(&client, &apis).await {
            break k;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let mut signers = Vec::new();
    for r in &nodes {
        signers.push((r.api, client_key(&net.dir.join(&r.name))?));
    }
    eprintln!("sending {} sign requests at once ...", args.requests);
    let wait = deadline.saturating_duration_since(Instant::now());
    let public = std::sync::Arc::new(public);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.requests {
        let (api, key) = signers[i % signers.len()].clone();
        let (client, public) = (client.clone(), public.clone());
        tasks.spawn(async move {
            let message = format!("bench message {i}");
            sign_one(
                &client,
                api,
                &key,
                &public,
                (epoch, i as u64),
                message.as_bytes(),
                wait,
            )
            .await
        });
    }
    let mut latencies = Vec::with_capacity(args.requests);
    let mut leaves = std::collections::BTreeSet::new();
    while let Some(j) = tasks.join_next().await {
        let (ms, leaf) = j.context("a request task failed")??;
        if !leaves.insert(leaf) {
            bail!("leaf {leaf} was released twice");
        }
        latencies.push(ms);
    }
    let wall = started.elapsed().as_secs_f64();
    eprintln!(
        "{} signatures in {wall:.2} s, every one verified, no leaf twice",
        args.requests
    );
    println!(
        "{}",
        report_json(
            args.nodes,
            args.requests,
            &mut latencies,
            wall,
            args.block_interval_ms
        )
    );
    drop(net);
    Ok(())
}

/// The federation's final public key (HSS encoding) and the lowest epoch the nodes at `apis`
/// are in, if every one of them reports the same key and a checkpoint that signs it (until
/// then the nodes refuse sign requests: "key not endorsed yet"); `None` otherwise.
pub(crate) async fn final_key(client: &ApiClient, apis: &[SocketAddr]) -> Option<(Vec<u8>, u64)> {
    let mut keys = Vec::new();
    for api in apis {
        if let Some(c) = client.status(*api).await.ok().and_then(|s| s.chain) {
            if let Some(k) = &c.key.public_key {
                if up::endorsing_checkpoint(&c, k).is_some() {
                    keys.push((k.clone(), c.epoch));
                }
            }
        }
    }
    if keys.len() != apis.len() || keys.iter().any(|k| k.0 != keys[0].0) {
        return None;
    }
    let epoch = keys.iter().map(|k| k.1).min()?;
    Some((hex::decode(&keys[0].0).ok()?, epoch))
}

/// Signs `message` (its digest) through the node at `api` as the client `key`, with request
/// `(epoch, nonce)`, waiting at most `wait`, and verifies the signature under `public`. Returns
/// the latency in milliseconds, from just before the request is sent to just after the
/// signature verified, and the leaf it used.
pub(crate) async fn sign_one(
    client: &ApiClient,
    api: SocketAddr,
    key: &ed25519_dalek::SigningKey,
    public: &[u8],
    (epoch, nonce): (u64, u64),
    message: &[u8],
    wait: Duration,
) -> anyhow::Result<(f64, u64)> {
    let digest = message_digest(message);
    let req = ClientRequest {
        client: MemberId(key.verifying_key().to_bytes()),
        digest,
        epoch,
        nonce,
        issue_to: None,
    }
    .sign(CHAIN_ID, key);
    let t0 = Instant::now();
    let outcome = client.sign(api, &req, wait).await?;
    let sig = hex::decode(&outcome.signature)?;
    seedfed_protocol::lms::verify_hss_bytes(public, &digest, &sig)
        .map_err(|e| anyhow::anyhow!("leaf {}: {e}", outcome.leaf))?;
    Ok((t0.elapsed().as_secs_f64() * 1e3, outcome.leaf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_is_one_json_object_with_nearest_rank_percentiles() {
        let mut lat: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let v = report_json(7, 100, &mut lat, 2.0, 50);
        assert_eq!(v["bench"], "sign");
        assert_eq!(v["p50_ms"], 50.0);
        assert_eq!(v["p99_ms"], 99.0);
        assert_eq!(v["sigs_per_s"], 50.0);
        assert_eq!(v["block_interval_ms"], 50);
    }
}
