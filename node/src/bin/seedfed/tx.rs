//! `seedfed tx`: a ledger transaction signed with the home's identity key, submitted through
//! the node's API and followed until it is decided.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context};
use seedfed_node::cli::{self, TxCommand, TxCommon};
use seedfed_node::config::Config;
use seedfed_node::genesis::Genesis;
use seedfed_node::{api, keystore, node};

use super::{api_client, small_runtime};

/// Submissions of one `seedfed tx` when the node's own transactions (which share the key) are
/// pending or take its nonce first; a second apart, and within `--wait-secs`.
const TX_ATTEMPTS: usize = 10;

/// `seedfed tx`: checks the input against the ledger (recipient a member, non-zero amount,
/// enough stake), signs with the home's identity key at the next free nonce, submits through
/// `POST /tx`, then polls `GET /tx/{id}` until the transaction is decided (or dropped with the
/// ledger's reason) and prints the result. The node signs its own transactions with the same
/// key: when one of those took the nonce since it was read, this one is refused (409), and if
/// another node decided one of ours at its nonce it is `replaced`; then it is signed again with
/// the next nonce, at most [`TX_ATTEMPTS`] times.
pub(super) fn tx(home: &Path, command: TxCommand) -> anyhow::Result<()> {
    use seedfed_node::chain::TxState;
    use seedfed_protocol::ledger::{Tx, TxBody};
    use seedfed_protocol::member::MemberId;
    let (body, common, kind) = match command {
        TxCommand::Transfer { to, amount, common } => {
            if amount == 0 {
                bail!("--amount must be at least 1");
            }
            let to = api::parse_member(&to).map_err(|e| anyhow::anyhow!("--to: {e}"))?;
            (TxBody::Transfer { to, amount }, common, "transfer")
        }
        TxCommand::PowDifficulty { bits, common } => {
            if bits > seedfed_protocol::admission::MAX_DIFFICULTY {
                bail!(
                    "--bits {bits} is above the supported maximum {}",
                    seedfed_protocol::admission::MAX_DIFFICULTY
                );
            }
            (
                TxBody::PowDifficulty { difficulty: bits },
                common,
                "pow-difficulty approval",
            )
        }
        TxCommand::Exit { yes, common } => {
            if !yes {
                bail!(
                    "an exit cannot be undone: this identity stops validating for good; pass \
                     --yes to confirm"
                );
            }
            (TxBody::Exit, common, "exit")
        }
    };
    let TxCommon {
        json,
        api: api_addr,
        passphrase_file,
        wait_secs,
    } = common;
    let config = Config::load(home)?;
    let genesis = Genesis::load(&Config::resolve(home, &config.node.genesis))?;
    let (client, addr) = api_client(home, api_addr.as_deref())?;
    let rt = small_runtime()?;
    // Cheap checks first, before the passphrase.
    if let TxBody::Transfer { to, .. } = &body {
        match rt.block_on(client.account(addr, to))? {
            None => bail!(
                "the recipient {} is not a member of the ledger",
                hex::encode(to.as_bytes())
            ),
            Some(a) if a.status != "active" => bail!(
                "the recipient {} cannot receive stake: it is {}",
                a.member,
                a.status
            ),
            Some(_) => {}
        }
    }
    if let TxBody::PowDifficulty { difficulty } = &body {
        if *difficulty < genesis.pow_difficulty {
            bail!(
                "--bits {difficulty} is below the genesis difficulty {}, the floor",
                genesis.pow_difficulty
            );
        }
        let now = rt
            .block_on(client.request(addr, "/status", None))
            .ok()
            .and_then(|(code, body)| {
                (code == 200)
                    .then(|| serde_json::from_str::<api::StatusReport>(&body).ok())
                    .flatten()
            })
            .and_then(|r| r.chain)
            .map(|c| c.pow_difficulty);
        if now == Some(*difficulty) {
            bail!("the ledger's proof-of-work difficulty is already {difficulty}");
        }
    }
    let pass = cli::read_passphrase(passphrase_file.as_deref(), false)?;
    let (identity, _) = keystore::load(&Config::resolve(home, &config.node.keystore), &pass)?;
    drop(pass);
    let seed = node::identity_seed(&identity)?;
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    drop(seed);
    let me = MemberId(key.verifying_key().to_bytes());
    let deadline = Instant::now() + std::time::Duration::from_secs(wait_secs);
    for _ in 0..TX_ATTEMPTS {
        let account = rt.block_on(client.account(addr, &me))?.with_context(|| {
            format!(
                "this home's identity {} is not a member of the ledger",
                hex::encode(me.as_bytes())
            )
        })?;
        if account.status != "active" {
            bail!("this home's identity is {} on the ledger", account.status);
        }
        if let TxBody::Transfer { to, amount } = &body {
            if *to == me {
                bail!("--to is this home's own identity");
            }
            if account.stake < *amount {
                bail!(
                    "insufficient stake: {} holds {} at height {}, the transfer needs {amount}",
                    account.member,
                    account.stake,
                    account.height
                );
            }
        }
        let signed = Tx {
            author: me,
            nonce: account.next_nonce,
            body: body.clone(),
        }
        .sign(&genesis.chain_id, &key);
        let id = signed.tx.digest(&genesis.chain_id);
        match rt.block_on(client.submit_tx(addr, &signed)) {
            // One of the node's own transactions took this nonce: read the next nonce again a
            // second later.
            Err(api::ApiError::Refused {
                code: 409, reason, ..
            }) if Instant::now() < deadline => {
                eprintln!("{reason}; signing again in a second");
                std::thread::sleep(std::time::Duration::from_secs(1));
                continue;
            }
            r => r?,
        }
        eprintln!(
            "submitted {kind} {} (nonce {}); waiting for a block",
            hex::encode(id),
            account.next_nonce
        );
        // Each poll is bounded (5 s a step) and the loop by the deadline.
        let state = loop {
            let state = rt.block_on(client.tx_state(addr, &id))?;
            if state != TxState::Pending || Instant::now() >= deadline {
                break state;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
        match state {
            TxState::Decided { height } => {
                let after = rt.block_on(client.account(addr, &me))?;
                let recipient = match &body {
                    TxBody::Transfer { to, .. } => rt.block_on(client.account(addr, to))?,
                    _ => None,
                };
                print_tx_result(json, kind, &id, height, after, recipient)?;
                if let (false, TxBody::PowDifficulty { difficulty }) = (json, &body) {
                    print_difficulty(&rt, &client, addr, *difficulty);
                }
                return Ok(());
            }
            TxState::Dropped { reason } => {
                bail!("the ledger refused the {kind}: {reason}")
            }
            TxState::Replaced { height } => {
                eprintln!(
                    "another transaction of this identity took nonce {} at height {height}; \
                     signing again",
                    account.next_nonce
                );
            }
            TxState::Pending => bail!(
                "{kind} {} not decided within {wait_secs} s; it may still land (check \
                 `GET /tx/{}`)",
                hex::encode(id),
                hex::encode(id)
            ),
            TxState::Unknown => bail!(
                "the node no longer knows {kind} {} (restarted?); check the account before \
                 sending it again",
                hex::encode(id)
            ),
        }
    }
    bail!("the {kind} lost its nonce to this identity's other transactions {TX_ATTEMPTS} times")
}

/// After a difficulty approval: the ledger's difficulty now, and the stake approving
/// `asked` if it is still open (best effort: the approval is decided either way).
fn print_difficulty(
    rt: &tokio::runtime::Runtime,
    client: &api::ApiClient,
    addr: std::net::SocketAddr,
    asked: u8,
) {
    let Ok((200, body)) = rt.block_on(client.request(addr, "/status", None)) else {
        return;
    };
    let Some(c) = serde_json::from_str::<api::StatusReport>(&body)
        .ok()
        .and_then(|r| r.chain)
    else {
        return;
    };
    let total: u64 = c.validators.iter().map(|v| v.stake).sum();
    match c.pow_difficulty_approvals.get(&asked) {
        Some(stake) => println!(
            "  difficulty {asked}: approved by stake {stake} of {total} (applies above 2/3);              the ledger's difficulty is {}",
            c.pow_difficulty
        ),
        None => println!(
            "  the ledger's proof-of-work difficulty is now {}",
            c.pow_difficulty
        ),
    }
}

/// Prints a decided transaction: text, or one JSON object.
fn print_tx_result(
    json: bool,
    kind: &str,
    id: &[u8; 32],
    height: u64,
    after: Option<seedfed_node::chain::AccountInfo>,
    recipient: Option<seedfed_node::chain::AccountInfo>,
) -> anyhow::Result<()> {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "kind": kind,
                "tx": hex::encode(id),
                "height": height,
                "account": after,
                "recipient": recipient,
            })
        );
        return Ok(());
    }
    println!("{kind} {} decided at height {height}", hex::encode(id));
    if let Some(a) = after {
        println!(
            "  {}: {}, stake {}{}",
            a.member,
            a.status,
            a.stake,
            if a.validator { ", validating" } else { "" }
        );
    }
    if let Some(r) = recipient {
        println!("  recipient {}: stake {}", r.member, r.stake);
    }
    Ok(())
}
