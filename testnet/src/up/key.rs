//! The key-generation milestone of a local testnet, as `up` waits for it after the epoch
//! cycle: sectors landing on the ledger (printed as they do), the master root, a checkpoint
//! that signs it, and `seedfed.pub` written into the testnet directory with the leaves the
//! audit retired next to it (`seedfed.pub.retired`, what `seedfed verify --pubkey` reads).
//!
//! Guarantees: the key counts only when every node's ledger has the same master root and
//! public key, and every node has a checkpoint that signs that whole public key (type codes,
//! identifier, root) and verifies (`verify_strict`); the file is
//! the HSS L=1 encoding every node reports, checked to decode before it is written.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use seedfed_node::api;
use seedfed_node::chain::ChainStatus;
use seedfed_protocol::checkpoint::Checkpoint;
use seedfed_protocol::lms::LmsPublicKey;
use seedfed_protocol::retired::RetiredLeaves;

use super::launch::{NodeRow, Testnet};
use super::milestones::verify_checkpoint;

/// The file `up` writes the federation's public key to.
pub const PUBKEY_FILE: &str = "seedfed.pub";

/// The index of `c`'s first recorded checkpoint that signs the public key `public` (the HSS
/// encoding, hex): its master key has the same type codes, identifier and root.
pub(crate) fn endorsing_checkpoint(c: &ChainStatus, public: &str) -> Option<usize> {
    c.checkpoints.iter().position(|cp| {
        hex::decode(&cp.bytes)
            .ok()
            .and_then(|b| Checkpoint::from_bytes(&b).ok())
            .and_then(|parsed| parsed.master_key.encode_hss().ok())
            .is_some_and(|key| hex::encode(key) == public)
    })
}

/// Waits until every node has the same final master root endorsed by a verified checkpoint,
/// printing progress; writes the public key to `dir/seedfed.pub` and returns its path.
pub(super) async fn wait_key(
    net: &Testnet,
    dir: &Path,
    deadline: Instant,
) -> anyhow::Result<std::path::PathBuf> {
    let nodes: Vec<&NodeRow> = net.rows.iter().filter(|r| r.name != "bootstrap").collect();
    let mut last_final = (usize::MAX, usize::MAX);
    loop {
        let mut all = Vec::new();
        for r in &nodes {
            if let Some(c) = api::fetch_status(r.api).await.ok().and_then(|s| s.chain) {
                all.push((*r, c));
            }
        }
        if all.len() == nodes.len() {
            let k = &all[0].1.key;
            let least =
                |f: fn(&ChainStatus) -> usize| all.iter().map(|(_, c)| f(c)).min().unwrap_or(0);
            let done = least(|c| c.key.sectors_final);
            let audited = least(|c| c.key.sectors_audited);
            if (done, audited) != last_final {
                last_final = (done, audited);
                let held: usize = all.iter().map(|(_, c)| c.key.held_sectors).sum();
                println!(
                    "key generation: {done} of {} sectors final, {audited} audited ({} leaves each) on every node ({} leaves, {}-of-{} shares; {held} held sector records across the nodes)",
                    k.sectors_total, k.audit_leaves, k.leaves_total, k.leaf_threshold, k.leaf_holders
                );
                for c in &k.convictions {
                    println!(
                        "  owner {} convicted by {} on sector {}: {}",
                        &c.member[..16],
                        c.by,
                        c.sector,
                        c.reason
                    );
                }
            }
            if let Some(path) = finished(&all, dir)? {
                return Ok(path);
            }
        }
        net.check_alive()?;
        if Instant::now() > deadline {
            bail!(
                "key generation did not complete in time ({} sectors final, {} audited on every node)",
                last_final.0,
                last_final.1
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// If every node has the key endorsed, checks it everywhere, prints it and writes the file.
fn finished(
    all: &[(&NodeRow, ChainStatus)],
    dir: &Path,
) -> anyhow::Result<Option<std::path::PathBuf>> {
    let c0 = &all[0].1;
    let (Some(root), Some(public)) = (&c0.key.master_root, &c0.key.public_key) else {
        return Ok(None);
    };
    let mut seqs = Vec::new();
    for (r, c) in all {
        if c.key.master_root.as_ref() != Some(root) || c.key.public_key.as_ref() != Some(public) {
            return Ok(None);
        }
        let Some(i) = endorsing_checkpoint(c, public) else {
            return Ok(None);
        };
        verify_checkpoint(c, i).with_context(|| format!("on {}", r.name))?;
        seqs.push(c.checkpoints[i].seq);
    }
    let bytes = hex::decode(public).context("a node reported a malformed public key")?;
    LmsPublicKey::decode_hss(&bytes)
        .map_err(|e| anyhow::anyhow!("the nodes reported an invalid public key: {e}"))?;
    let path = dir.join(PUBKEY_FILE);
    std::fs::write(&path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
    // The leaves the audit retired, checked against the digest the endorsing checkpoint signs.
    let cp = endorsing_checkpoint(c0, public).map(|i| &c0.checkpoints[i]);
    let retired = cp
        .and_then(|cp| {
            let digest = Checkpoint::from_bytes(&hex::decode(&cp.bytes).ok()?)
                .ok()?
                .retired_digest;
            let list = RetiredLeaves::from_sorted(cp.retired_leaves.clone()?).ok()?;
            (list.digest() == digest).then_some(list)
        })
        .context("node0 serves no retired leaves matching its checkpoint of the key")?;
    let retired_path = dir.join(format!("{PUBKEY_FILE}.retired"));
    std::fs::write(&retired_path, retired.to_text())
        .with_context(|| format!("cannot write {}", retired_path.display()))?;
    println!("master root {root}: the same on every node");
    println!(
        "checkpoint #{} signs the whole public key (FROST, Ed25519); verify_strict OK on every node",
        seqs[0]
    );
    println!("public key (RFC 8554, HSS L=1): {public}");
    println!(
        "wrote {} and {} ({} leaves retired by the audit)",
        path.display(),
        retired_path.display(),
        retired.len()
    );
    Ok(Some(path))
}
