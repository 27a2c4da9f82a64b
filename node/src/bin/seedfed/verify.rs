//! `seedfed verify`: an LMS signature checked from files alone, or under the key a node's
//! checkpoint chain vouches for (walked from the genesis anchor or a trusted cache).

use std::path::Path;

use anyhow::{bail, Context};
use seedfed_node::cli::VerifyArgs;
use seedfed_node::config::Config;
use seedfed_node::fsutil;
use seedfed_node::genesis::Genesis;

use super::{api_client, describe_key, read_file, retired_companion, small_runtime};

/// `seedfed verify`: from files alone, or after walking a node's checkpoint chain.
pub(super) fn verify(home: &Path, args: VerifyArgs) -> anyhow::Result<()> {
    let sig = read_file(&args.sig)?;
    // The federation signs a message's SHA-256 digest (`ledger::message_digest`).
    let message = seedfed_protocol::ledger::message_digest(&read_file(&args.message)?);
    let pubkey = args.pubkey.as_deref().map(read_file).transpose()?;
    let Some(api) = &args.api else {
        let path = args
            .pubkey
            .as_deref()
            .context("--pubkey is required without --api")?;
        let pk = pubkey.context("--pubkey is required without --api")?;
        return verify_files(&args, path, &pk, &message, &sig);
    };
    let trusted = walk_checkpoints(home, api, &args)?;
    let pk = match pubkey {
        Some(pk) => {
            trusted
                .verify_signature(&pk, &message, &sig)
                .map_err(|e| anyhow::anyhow!("signature rejected: {e}"))?;
            pk
        }
        // The signature does not name its key: any master key a checkpoint vouched for (the
        // key in force, or one a rotation replaced).
        None if trusted.master_key.is_none() => bail!(
            "no verified checkpoint carries the master key yet (the master root is not final)"
        ),
        None => trusted
            .verify_under_any(&message, &sig)
            .map_err(|e| anyhow::anyhow!("signature rejected: {e}"))?
            .encode_hss()
            .map_err(|e| anyhow::anyhow!("the verified master key is unusable: {e}"))?,
    };
    println!(
        "signature verifies under {}, the master key vouched for by checkpoints 0..{} (epoch {}, height {})",
        describe_key(&pk)?,
        trusted.next_seq,
        trusted.epoch,
        trusted.height
    );
    Ok(())
}

/// `seedfed verify --pubkey` without `--api`: the key file and the list of retired leaves
/// (`--retired`, else `PUBKEY.retired`) are trusted as given; a signature at a retired leaf is
/// refused, and without a list nothing is decided unless `--no-retired-check`.
fn verify_files(
    args: &VerifyArgs,
    path: &Path,
    pk: &[u8],
    message: &[u8],
    sig: &[u8],
) -> anyhow::Result<()> {
    if args.no_retired_check {
        eprintln!(
            "warning: --no-retired-check: a signature at a leaf the audit retired is a \
             forgery anyone can make, and is not refused"
        );
        seedfed_protocol::lms::verify_hss_bytes(pk, message, sig)
            .map_err(|e| anyhow::anyhow!("signature rejected: {e}"))?;
        println!("signature verifies under {}", describe_key(pk)?);
        return Ok(());
    }
    let retired_path = match &args.retired {
        Some(p) => p.clone(),
        None => retired_companion(path),
    };
    if args.retired.is_none() && !retired_path.exists() {
        bail!(
            "no list of retired leaves for {}: the audit made some one-time keys public, \
             so a signature at one of them proves nothing. Pass --retired FILE, or keep \
             the {} that `seedfed pubkey` writes next to the key (or --no-retired-check \
             to accept such forgeries)",
            path.display(),
            retired_path.display()
        );
    }
    let text = std::fs::read_to_string(&retired_path)
        .with_context(|| format!("cannot read {}", retired_path.display()))?;
    let retired = seedfed_protocol::retired::RetiredLeaves::from_text(&text)
        .with_context(|| format!("{} is not a list of retired leaves", retired_path.display()))?;
    seedfed_protocol::light_client::verify_unretired(pk, &retired, message, sig)
        .map_err(|e| anyhow::anyhow!("signature rejected: {e}"))?;
    println!(
        "signature verifies under {}, at a leaf that is not among the {} retired",
        describe_key(pk)?,
        retired.len()
    );
    Ok(())
}

/// Fetches the checkpoints a node serves and walks them from the trusted state (the
/// `--trusted` cache, else epoch 0's `--anchor-key`), writing the cache back if asked.
fn walk_checkpoints(
    home: &Path,
    api: &str,
    args: &VerifyArgs,
) -> anyhow::Result<seedfed_protocol::light_client::Trusted> {
    use seedfed_protocol::light_client::Trusted;
    let genesis_path = match &args.genesis {
        Some(p) => p.clone(),
        None => {
            let config = Config::load(home)
                .context("no --genesis given and no node home to take it from")?;
            Config::resolve(home, &config.node.genesis)
        }
    };
    let genesis = Genesis::load(&genesis_path)?;
    let chain_id = seedfed_protocol::ledger::chain_digest(&genesis.chain_id);
    let cached = match &args.trusted {
        Some(p) if p.exists() => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            let t: Trusted = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a light-client cache", p.display()))?;
            if t.chain_id != chain_id {
                bail!(
                    "{} belongs to another chain than {:?}",
                    p.display(),
                    genesis.chain_id
                );
            }
            Some(t)
        }
        _ => None,
    };
    let mut trusted = match (cached, &args.anchor_key) {
        (Some(t), _) => t,
        (None, Some(hex_key)) => {
            let key: [u8; 32] = hex::decode(hex_key.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .context("--anchor-key must be 64 hex digits (an Ed25519 public key)")?;
            Trusted::new(chain_id, key)
                .map_err(|e| anyhow::anyhow!("--anchor-key rejected: {e}"))?
        }
        (None, None) => bail!(
            "no trust anchor: the genesis fixes no checkpoint key, so pass --anchor-key (epoch 0's \
             Ed25519 checkpoint key, e.g. the first `dkgs` entry's `ed25519_group_key` in the \
             /status of nodes you trust) or an existing --trusted cache"
        ),
    };
    // Its whole stored history from where we stand; the walk verifies every link.
    let (client, addr) = api_client(home, Some(api))?;
    let served = small_runtime()?.block_on(client.checkpoint_history(addr, trusted.next_seq))?;
    let from = seedfed_node::chain::light_walk(&mut trusted, &served)?.start;
    eprintln!(
        "verified checkpoints {from}..{} from {api}; key in force {}",
        trusted.next_seq,
        hex::encode(trusted.key)
    );
    if let Some(p) = &args.trusted {
        let text = serde_json::to_string_pretty(&trusted)? + "\n";
        fsutil::write_atomic(p, text.as_bytes(), 0o644)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(trusted)
}
