//! The milestones of the epoch cycle on a running testnet, as `up` waits for them and prints
//! each once: consensus deciding, the first DKG (both group keys), epoch 1 with its beacon, a
//! branch assignment, and a checkpoint signed by the federation.
//!
//! Guarantees: a milestone counts only when every node's ledger shows it; the DKG result must
//! be the same on every node, and every node's first checkpoint must verify (`verify_strict`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use seedfed_node::api;
use seedfed_node::chain::ChainStatus;
use seedfed_protocol::checkpoint::Checkpoint;

use super::launch::{NodeRow, Testnet};

/// Verifies a recorded checkpoint: its bytes are a canonical 232-byte checkpoint encoding of
/// the sequence number, epoch and height the status reports, the signature over them verifies with
/// ed25519-dalek `verify_strict` under the group key that signed it, and that key is the
/// Ed25519 group key of a DKG completed on the ledger.
pub fn verify_checkpoint(c: &ChainStatus, seq: usize) -> anyhow::Result<()> {
    let cp = c.checkpoints.get(seq).context("no such checkpoint")?;
    if !c.dkgs.iter().any(|d| d.ed25519_group_key == cp.group_key) {
        bail!("checkpoint {} is signed by a key no DKG produced", cp.seq);
    }
    let key: [u8; 32] = hex::decode(&cp.group_key)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("group key is not 32 bytes"))?;
    let sig: [u8; 64] = hex::decode(&cp.signature)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("signature is not 64 bytes"))?;
    let bytes = hex::decode(&cp.bytes)?;
    let decoded = Checkpoint::from_bytes(&bytes)
        .with_context(|| format!("checkpoint {} does not decode", cp.seq))?;
    if (decoded.seq, decoded.epoch, decoded.height) != (cp.seq, cp.epoch, cp.height) {
        bail!(
            "checkpoint {} signs seq {} epoch {} height {}, status says epoch {} height {}",
            cp.seq,
            decoded.seq,
            decoded.epoch,
            decoded.height,
            cp.epoch,
            cp.height
        );
    }
    ed25519_dalek::VerifyingKey::from_bytes(&key)?
        .verify_strict(&bytes, &ed25519_dalek::Signature::from_bytes(&sig))
        .with_context(|| format!("checkpoint {} does not verify", cp.seq))?;
    Ok(())
}

/// Waits until every node's ledger shows the epoch cycle done, printing each milestone once:
/// consensus running, the first DKG complete (the same result on every node), epoch 1 with
/// its beacon, a branch assignment, and a checkpoint that verifies. Returns epoch 0's Ed25519
/// checkpoint key, as every node recorded it: the light client's trust anchor.
pub(super) async fn wait_cycle(net: &Testnet, deadline: Instant) -> anyhow::Result<[u8; 32]> {
    let nodes: Vec<&NodeRow> = net.rows.iter().filter(|r| r.name != "bootstrap").collect();
    let mut printed = [false; 5];
    let mut anchor = None;
    loop {
        let mut all = Vec::new();
        for r in &nodes {
            if let Some(c) = api::fetch_status(r.api).await.ok().and_then(|s| s.chain) {
                all.push((r, c));
            }
        }
        let full = all.len() == nodes.len();
        let min_height = all.iter().map(|(_, c)| c.height).min().unwrap_or(0);
        if full && min_height > 0 && !printed[0] {
            printed[0] = true;
            println!("consensus: every node is deciding blocks (height {min_height})");
        }
        let dkg_done = full && all.iter().all(|(_, c)| !c.dkgs.is_empty());
        if dkg_done && !printed[1] {
            printed[1] = true;
            let d = &all[0].1.dkgs[0];
            if all.iter().any(|(_, c)| c.dkgs[0] != *d) {
                bail!("nodes recorded different DKG results");
            }
            if d.epoch != 0 {
                bail!("epoch 0's DKG left every node's /status before this milestone saw it");
            }
            let key: [u8; 32] = hex::decode(&d.ed25519_group_key)
                .ok()
                .and_then(|b| b.try_into().ok())
                .context("a malformed Ed25519 group key")?;
            anchor = Some(key);
            println!(
                "DKG (epoch {}): {} of {} qualified, threshold {}",
                d.epoch,
                d.qualified.len(),
                d.qualified.len() + d.excluded.len(),
                d.threshold
            );
            println!(
                "  ristretto255 group key (seed-tree root, beacon): {}",
                d.ristretto255_group_key
            );
            println!(
                "  Ed25519 group key (checkpoints):                 {}",
                d.ed25519_group_key
            );
        }
        let epoch1 = full && all.iter().all(|(_, c)| c.epoch >= 1);
        if epoch1 && !printed[2] {
            printed[2] = true;
            println!(
                "epoch {} started; beacon {}",
                all[0].1.epoch, all[0].1.beacon
            );
        }
        let assigned = full && all.iter().all(|(_, c)| c.assignment_epoch.is_some());
        if assigned && !printed[3] {
            printed[3] = true;
            let c = &all[0].1;
            let names: BTreeMap<String, &str> = nodes
                .iter()
                .map(|r| (r.peer_id.clone(), r.name.as_str()))
                .collect();
            let by_id: BTreeMap<&str, &str> = c
                .validators
                .iter()
                .map(|v| (v.id.as_str(), names.get(&v.peer_id).copied().unwrap_or("?")))
                .collect();
            let owners: Vec<String> = c
                .assignment
                .iter()
                .enumerate()
                .map(|(i, o)| format!("sector {i} -> {}", by_id.get(o.as_str()).unwrap_or(&"?")))
                .collect();
            println!(
                "branch assignment (epoch {}): {}",
                c.assignment_epoch.unwrap_or_default(),
                owners.join(", ")
            );
        }
        let checkpointed = full && all.iter().all(|(_, c)| !c.checkpoints.is_empty());
        if checkpointed && !printed[4] {
            for (r, c) in &all {
                verify_checkpoint(c, 0).with_context(|| format!("on {}", r.name))?;
            }
            printed[4] = true;
            let cp = &all[0].1.checkpoints[0];
            println!(
                "checkpoint #{} (epoch {}, height {}) signed by the federation (FROST, Ed25519); verify_strict OK on every node",
                cp.seq, cp.epoch, cp.height
            );
        }
        if printed.iter().all(|p| *p) {
            println!(
                "the ledger agrees on every node: DKG, beacon, assignment and checkpoint done"
            );
            return anchor.context("no DKG milestone");
        }
        net.check_alive()?;
        if Instant::now() > deadline {
            bail!("the epoch cycle did not complete in time (milestones reached: {printed:?})");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use seedfed_node::chain::{CheckpointInfo, DkgStatus};
    use seedfed_protocol::checkpoint::MasterKey;

    /// A status with one DKG whose Ed25519 key signed `bytes` (an ordinary Ed25519 key: its
    /// signatures are what the FROST aggregate is).
    fn status(bytes: &[u8], epoch: u64, height: u64) -> ChainStatus {
        let sk = SigningKey::from_bytes(&[7; 32]);
        let key = hex::encode(sk.verifying_key().as_bytes());
        ChainStatus {
            dkgs: vec![DkgStatus {
                ed25519_group_key: key.clone(),
                ..DkgStatus::default()
            }],
            checkpoints: vec![CheckpointInfo {
                seq: 0,
                epoch,
                height,
                bytes: hex::encode(bytes),
                signature: hex::encode(sk.sign(bytes).to_bytes()),
                group_key: key,
                key_epoch: 0,
                retired_leaves: None,
            }],
            ..ChainStatus::default()
        }
    }

    #[test]
    fn only_signed_canonical_checkpoints_of_the_reported_height_pass() {
        let cp = Checkpoint {
            chain_id: [1; 32],
            seq: 0,
            epoch: 2,
            height: 30,
            master_key: MasterKey {
                lms_type: 5,
                lmots_type: 3,
                id: [4; 16],
                root: [5; 32],
            },
            next_key: [7; 32],
            validator_set_hash: [6; 32],
            retired_digest: [8; 32],
        };
        let bytes = cp.to_bytes();
        verify_checkpoint(&status(&bytes, 2, 30), 0).unwrap();
        // Signed, but not the height the status reports.
        assert!(verify_checkpoint(&status(&bytes, 2, 31), 0).is_err());
        // Signed, but the old 160-byte layout (no seq, no next key) does not decode.
        let old: Vec<u8> = [&bytes[..56], &bytes[64..136], &bytes[168..200]].concat();
        assert_eq!(old.len(), 160);
        let err = verify_checkpoint(&status(&old, 2, 30), 0).unwrap_err();
        assert!(format!("{err:#}").contains("does not decode"), "{err:#}");
        // A signature over other bytes.
        let mut s = status(&bytes, 2, 30);
        let mut other = cp;
        other.master_key.id[0] ^= 1;
        s.checkpoints[0].bytes = hex::encode(other.to_bytes());
        assert!(verify_checkpoint(&s, 0).is_err());
    }
}
