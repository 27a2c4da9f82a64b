//! `seedfed pubkey` and `seedfed sign`: the master key the node's ledger holds, and a
//! signature from the federation over a file's digest, checked before it is written.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context};
use seedfed_node::cli::{self, PubkeyArgs, SignArgs};
use seedfed_node::config::Config;
use seedfed_node::genesis::Genesis;
use seedfed_node::{fsutil, keystore, node};

use super::{
    api_client, describe_key, fetch_status, key_public_hex, read_file, retired_companion,
    small_runtime,
};

/// `seedfed pubkey`: the master key the node's ledger holds, and next to it (`OUT.retired`)
/// the leaves the audit retired, taken from the latest checkpoint of that key and checked
/// against the digest it commits to. Like the key, the list is trusted from the node.
pub(super) fn pubkey(home: &Path, args: PubkeyArgs) -> anyhow::Result<()> {
    use seedfed_protocol::checkpoint::Checkpoint;
    use seedfed_protocol::retired::RetiredLeaves;
    let report = fetch_status(home, args.api.as_deref())?;
    let chain = report
        .chain
        .context("the node runs no chain (is it a bootstrap node?)")?;
    // The key asked for; by default the one sign requests allocate from, else the newest
    // final one.
    let index = args.key.or(chain.key.allocating).or_else(|| {
        chain
            .key
            .keys
            .iter()
            .rev()
            .find(|k| k.public_key.is_some())
            .map(|k| k.index)
    });
    let Some(hex_key) = index.and_then(|i| key_public_hex(&chain, i)) else {
        bail!(
            "{}: key {} has {} of {} sectors on the ledger",
            match args.key {
                Some(i) => format!("key {i} has no final master root"),
                None => "no master root is final yet".to_string(),
            },
            chain.key.index,
            chain.key.sectors_final,
            chain.key.sectors_total
        );
    };
    let bytes = hex::decode(&hex_key).context("the node reported a malformed public key")?;
    let key = seedfed_protocol::lms::LmsPublicKey::decode_hss(&bytes)
        .map_err(|e| anyhow::anyhow!("the node reported an invalid public key: {e}"))?;
    let mut retired = None;
    for c in chain.checkpoints.iter().rev() {
        let Some(list) = &c.retired_leaves else {
            continue;
        };
        let cp = hex::decode(&c.bytes)
            .ok()
            .and_then(|b| Checkpoint::from_bytes(&b).ok())
            .with_context(|| format!("the node sent checkpoint {} malformed", c.seq))?;
        if cp.master_key.encode_hss().ok().as_deref() != Some(bytes.as_slice()) {
            continue;
        }
        let list = RetiredLeaves::from_sorted(list.clone())
            .map_err(|e| anyhow::anyhow!("the node's retired leaves are malformed: {e}"))?;
        if list.digest() != cp.retired_digest {
            bail!(
                "the node's retired leaves do not match the digest checkpoint {} commits to",
                c.seq
            );
        }
        retired = Some(list);
        break;
    }
    let retired = retired.context(
        "no recorded checkpoint of the master key carries the retired leaves yet (the \
         checkpoint of the master root is still being signed): try again shortly",
    )?;
    let retired_path = retired_companion(&args.out);
    fsutil::write_atomic(&args.out, &bytes, 0o644)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    fsutil::write_atomic(&retired_path, retired.to_text().as_bytes(), 0o644)
        .with_context(|| format!("cannot write {}", retired_path.display()))?;
    println!(
        "wrote {} ({} bytes): LMS root {}, 2^{} one-time keys; {} ({} leaves retired by the audit)",
        args.out.display(),
        bytes.len(),
        hex::encode(key.root),
        chain.key.tree_height,
        retired_path.display(),
        retired.len()
    );
    Ok(())
}

/// `seedfed sign`: the home's identity key signs a request for the file's digest in the
/// node's current epoch; the node relays it and answers with the published signature, which
/// is checked against the master key the node reports before it is written.
pub(super) fn sign(home: &Path, args: SignArgs) -> anyhow::Result<()> {
    use seedfed_protocol::ledger::{message_digest, ClientRequest};
    let config = Config::load(home)?;
    let genesis = Genesis::load(&Config::resolve(home, &config.node.genesis))?;
    let message = read_file(&args.message)?;
    let digest = message_digest(&message);
    let pass = cli::read_passphrase(args.passphrase_file.as_deref(), false)?;
    let (identity, _) = keystore::load(&Config::resolve(home, &config.node.keystore), &pass)?;
    drop(pass);
    let seed = node::identity_seed(&identity)?;
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    drop(seed);
    let (client, addr) = api_client(home, args.api.as_deref())?;
    let rt = small_runtime()?;
    let chain = rt
        .block_on(client.status(addr))?
        .chain
        .context("the node runs no chain (is it a bootstrap node?)")?;
    if chain.key.allocating.is_none() {
        bail!(
            "no key can sign now (key {}: {} of {} sectors on the ledger; a key signs once a \
             checkpoint endorses it): try again shortly",
            chain.key.index,
            chain.key.sectors_final,
            chain.key.sectors_total
        );
    }
    // Key issuance: a fresh X25519 key for this one request, erased on drop.
    let issue_key = args
        .issue
        .then(|| x25519_dalek::StaticSecret::random_from_rng(rand_core::OsRng));
    let request = ClientRequest {
        client: seedfed_protocol::member::MemberId(key.verifying_key().to_bytes()),
        digest,
        epoch: chain.epoch,
        nonce: rand_core::RngCore::next_u64(&mut rand_core::OsRng),
        issue_to: issue_key
            .as_ref()
            .map(|k| x25519_dalek::PublicKey::from(k).to_bytes()),
    }
    .sign(&genesis.chain_id, &key);
    drop(key);
    let started = Instant::now();
    let outcome = rt.block_on(client.sign(
        addr,
        &request,
        std::time::Duration::from_secs(args.wait_secs),
    ))?;
    // The public key of the leaf's key (a rotation may have endorsed it since `chain`).
    let (key_index, _) = seedfed_protocol::ledger::split_leaf(outcome.leaf);
    let public_hex = match key_public_hex(&chain, key_index) {
        Some(k) => k,
        None => {
            let again = rt.block_on(client.status(addr))?.chain;
            again
                .and_then(|c| key_public_hex(&c, key_index))
                .with_context(|| format!("the node reports no public key {key_index}"))?
        }
    };
    let public = hex::decode(&public_hex).context("the node reported a malformed public key")?;
    let sig = match (&issue_key, &outcome.bundle) {
        (Some(secret), Some(first)) => {
            let pk = seedfed_protocol::lms::LmsPublicKey::decode_hss(&public)
                .map_err(|e| anyhow::anyhow!("the node reported an invalid public key: {e}"))?;
            let deadline = started + std::time::Duration::from_secs(args.wait_secs);
            let mut bundle_hex = first.clone();
            // Each pass that fails blames a holder (convicted, so the next attempt's quorum
            // leaves it out) or gives up: bounded by the holders and by the deadline.
            let sig = loop {
                let bundle: seedfed_protocol::issue::IssueBundle =
                    seedfed_protocol::ledger::decode(
                        &hex::decode(&bundle_hex).context("the node sent a malformed bundle")?,
                    )
                    .context("the node sent a malformed bundle")?;
                let failed = match seedfed_protocol::issue::sign_issued(&bundle, secret, &pk) {
                    Ok(sig) => break sig,
                    Err(e) => e,
                };
                let blames =
                    seedfed_protocol::issue::blame_issued(&bundle, secret, &mut rand_core::OsRng)
                        .map_err(|e| anyhow::anyhow!("cannot sign with the issued leaf: {e}"))?;
                if blames.is_empty() {
                    bail!("cannot sign with the issued leaf (no contribution to blame): {failed}");
                }
                for evidence in &blames {
                    match rt.block_on(client.blame(addr, outcome.leaf, evidence)) {
                        Ok(convicted) => eprintln!(
                            "a bad contribution to leaf {}: blamed on the ledger ({})",
                            outcome.leaf,
                            convicted.join(", ")
                        ),
                        Err(e) => eprintln!("a blame was not taken: {e}"),
                    }
                }
                bundle_hex = loop {
                    if Instant::now() >= deadline {
                        bail!(
                            "no bundle of leaf {} from another quorum within {} s",
                            outcome.leaf,
                            args.wait_secs
                        );
                    }
                    std::thread::sleep(std::time::Duration::from_millis(500));
                    match rt.block_on(client.bundle(addr, outcome.leaf))? {
                        Some(next) if next != bundle_hex => break next,
                        _ => {}
                    }
                };
            };
            rt.block_on(client.publish(addr, outcome.leaf, &sig))?;
            sig
        }
        (None, None) => {
            hex::decode(&outcome.signature).context("the node sent a malformed signature")?
        }
        _ => bail!("the node answered in the wrong mode"),
    };
    drop(issue_key);
    seedfed_protocol::lms::verify_hss_bytes(&public, &digest, &sig)
        .map_err(|e| anyhow::anyhow!("the node's signature does not verify: {e}"))?;
    fsutil::write_atomic(&args.out, &sig, 0o644)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let latency_ms = started.elapsed().as_millis();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "leaf": outcome.leaf,
                "key_index": key_index,
                "key": public_hex,
                "digest": outcome.digest,
                "out": args.out.display().to_string(),
                "allocated_at": outcome.allocated_at,
                "signed_at": outcome.signed_at,
                "latency_ms": latency_ms,
            })
        );
    } else {
        println!(
            "wrote {} ({} bytes): leaf {} of {}, signed in {latency_ms} ms (blocks {}..{})",
            args.out.display(),
            sig.len(),
            outcome.leaf,
            describe_key(&public)?,
            outcome.allocated_at,
            outcome.signed_at
        );
    }
    Ok(())
}
