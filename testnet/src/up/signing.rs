//! The signing milestone of a local testnet, as `up` runs it once the key is final: a handful
//! of messages signed through the nodes (each node's own key is an authorized client), every
//! signature verified by the light client (the checkpoint chain walked from epoch 0's key,
//! then the signature under the master key it vouches for), and the commands to do the same
//! by hand.
//!
//! Guarantees: a signature counts only if the light client accepts it; the messages and
//! signatures are left in `<dir>/signed/` so they can be checked again with `seedfed verify`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use seedfed_node::api::ApiClient;
use seedfed_node::config::Config;
use seedfed_node::genesis::Genesis;
use seedfed_node::keystore;
use seedfed_protocol::ledger::{chain_digest, message_digest, ClientRequest};
use seedfed_protocol::light_client::Trusted;
use seedfed_protocol::member::MemberId;

use super::launch::Testnet;
use super::{PASSPHRASE, PUBKEY_FILE};

/// Where `up` writes the messages it signed and their signatures.
pub const SIGNED_DIR: &str = "signed";

/// A testnet node home's identity key (which the testnet's genesis authorizes as a signing
/// client), from its keystore.
pub fn client_key(home: &Path) -> anyhow::Result<ed25519_dalek::SigningKey> {
    let config = Config::load(home)?;
    let pass = keystore::Passphrase::new(PASSPHRASE.to_string());
    let path = Config::resolve(home, &config.node.keystore);
    let (identity, _) =
        keystore::load(&path, &pass).with_context(|| format!("cannot load {}", path.display()))?;
    let seed = seedfed_node::node::identity_seed(&identity)?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

/// Signs `count` messages through the nodes in turn, all at once, and verifies every signature
/// with the light client (from `anchor`, epoch 0's checkpoint key, over node0's whole
/// checkpoint history); prints each and how to sign and verify by hand.
pub(super) async fn sign_and_verify(
    net: &Testnet,
    anchor: [u8; 32],
    count: usize,
    wait: Duration,
) -> anyhow::Result<()> {
    let dir = &net.dir;
    let genesis = Genesis::load(&dir.join("genesis.toml"))?;
    let mut nodes = Vec::new();
    for r in net.rows.iter().filter(|r| r.name != "bootstrap") {
        nodes.push((client_key(&dir.join(&r.name))?, r.api));
    }
    let client = ApiClient::new();
    let chain = client
        .status(nodes[0].1)
        .await?
        .chain
        .context("node0 runs no chain")?;
    let out = dir.join(SIGNED_DIR);
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let (key, addr) = &nodes[i % nodes.len()];
        let addr = *addr;
        let message = format!("seedfed local testnet message {i}\n");
        let path = out.join(format!("message{i}.txt"));
        std::fs::write(&path, &message)?;
        let digest = message_digest(message.as_bytes());
        let request = ClientRequest {
            client: MemberId(key.verifying_key().to_bytes()),
            digest,
            epoch: chain.epoch,
            nonce: i as u64,
            issue_to: None,
        }
        .sign(&genesis.chain_id, key);
        let client = client.clone();
        tasks.spawn(async move {
            let started = Instant::now();
            let r = client.sign(addr, &request, wait).await;
            (i, path, digest, r, started.elapsed())
        });
    }
    let mut signed = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, path, digest, r, took) = joined.context("a signing task failed")?;
        let outcome = r.with_context(|| format!("message {i} was not signed"))?;
        let sig = hex::decode(&outcome.signature).context("a malformed signature")?;
        std::fs::write(path.with_extension("sig"), &sig)?;
        signed.push((i, path, digest, sig, outcome.leaf, took));
    }
    signed.sort_by_key(|s| s.0);
    // The light client: the checkpoint chain from epoch 0's key, as `seedfed verify --api`
    // walks it.
    let history = client.checkpoint_history(nodes[0].1, 0).await?;
    let mut trusted = Trusted::new(chain_digest(&genesis.chain_id), anchor)
        .map_err(|e| anyhow::anyhow!("epoch 0's key rejected: {e}"))?;
    seedfed_node::chain::light_walk(&mut trusted, &history)
        .map_err(|e| anyhow::anyhow!("the checkpoint chain does not verify: {e}"))?;
    let public = std::fs::read(dir.join(PUBKEY_FILE))?;
    let mut leaves = std::collections::BTreeSet::new();
    for (i, path, digest, sig, leaf, took) in &signed {
        if !leaves.insert(*leaf) {
            bail!("leaf {leaf} was used twice");
        }
        trusted
            .verify_signature(&public, digest, sig)
            .map_err(|e| anyhow::anyhow!("signature {i} rejected by the light client: {e}"))?;
        println!(
            "signed {} with leaf {leaf} in {} ms; the light client verifies it (checkpoints 0..{})",
            path.display(),
            took.as_millis(),
            trusted.next_seq
        );
    }
    let bin = net.node_bin.display();
    println!("sign by hand:   {bin} sign --home {}/node0 --passphrase-file {}/passphrase --message FILE --out FILE.sig",
        dir.display(), dir.display());
    println!(
        "verify by hand: {bin} verify --pubkey {}/{PUBKEY_FILE} --message FILE --sig FILE.sig",
        dir.display()
    );
    println!(
        "  or through the checkpoint chain: {bin} verify --home {}/node0 --api {} --anchor-key {} --message FILE --sig FILE.sig",
        dir.display(),
        nodes[0].1,
        hex::encode(anchor)
    );
    Ok(())
}
