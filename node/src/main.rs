//! `seedfed`: the federation node binary. A thin shell over the `seedfed_node` library: it
//! parses the command line, sets up logging, and turns every error into one line on stderr and
//! a non-zero exit code.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use seedfed_node::cli::{
    self, Cli, Command, InitArgs, KeysCommand, PubkeyArgs, SignArgs, StatusArgs, TxCommand,
    TxCommon, VerifyArgs,
};
use seedfed_node::config::{Config, CONFIG_FILE};
use seedfed_node::genesis::Genesis;
use seedfed_node::progress::PowProgress;
use seedfed_node::{api, fsutil, keystore, node};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    let home = cli::expand_home(&cli.home);
    match cli.command {
        Command::Init(args) => init(&home, args),
        Command::Run(args) => {
            let config = Config::load(&home)?;
            if args.dump_config {
                print!("{}", config.to_toml());
                return Ok(());
            }
            seedfed_node::logging::init(&config)?;
            let ks_path = Config::resolve(&home, &config.node.keystore);
            let pass = cli::read_passphrase(args.passphrase_file.as_deref(), false)?;
            let (identity, admission) = keystore::load(&ks_path, &pass)?;
            drop(pass);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            rt.block_on(node::run_node(
                &home,
                &config,
                &identity,
                &admission,
                args.fault.to_fault(),
                node::shutdown_signal(),
            ))?;
            Ok(())
        }
        Command::Status(args) => status(&home, args),
        Command::Pubkey(args) => pubkey(&home, args),
        Command::Sign(args) => sign(&home, args),
        Command::Verify(args) => verify(&home, args),
        Command::Keys { command } => keys(&home, command),
        Command::Tx { command } => tx(&home, command),
    }
}

fn init(home: &Path, args: InitArgs) -> anyhow::Result<()> {
    let genesis = Genesis::load(&args.chain)?;
    let mut config = Config::default();
    if !args.listen.is_empty() {
        config.network.listen = args.listen.clone();
    }
    config.network.bootstrap = args.bootstrap.clone();
    config.network.announce = args.announce.clone();
    seedfed_node::node::announce_addrs(&config.network.announce)?;
    if let Some(a) = &args.api_listen {
        config.api.listen = a.clone();
    }
    for a in config
        .network
        .listen
        .iter()
        .chain(&config.network.bootstrap)
    {
        a.parse::<libp2p::Multiaddr>()
            .with_context(|| format!("invalid multiaddress {a:?}"))?;
    }
    let ks_path = Config::resolve(home, &config.node.keystore);
    if ks_path.exists() && !args.force {
        bail!(
            "{} already exists; refusing to overwrite an identity (use --force)",
            ks_path.display()
        );
    }
    let pass = cli::read_passphrase(args.passphrase_file.as_deref(), true)?;
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(home)
            .with_context(|| format!("cannot create home directory {}", home.display()))?;
    }
    let identity = keystore::Identity::generate();
    let d = genesis.pow_difficulty;
    let started = Instant::now();
    eprintln!(
        "solving the admission proof-of-work for {} (difficulty {d} bits, ~{} hashes expected)",
        identity.peer_id(),
        1u128 << d
    );
    let progress = PowProgress::new(d);
    let admission =
        keystore::solve_admission(&identity, &genesis.chain_id, d, |n| progress.update(n))?;
    progress.finish();
    eprintln!("  solved in {:.1}s", started.elapsed().as_secs_f64());
    keystore::save(&ks_path, &identity, admission, &pass)?;
    let genesis_path = Config::resolve(home, &config.node.genesis);
    fsutil::write_atomic(&genesis_path, genesis.to_toml().as_bytes(), 0o644)
        .with_context(|| format!("cannot write {}", genesis_path.display()))?;
    let cfg_path = home.join(CONFIG_FILE);
    fsutil::write_atomic(&cfg_path, config.commented_toml().as_bytes(), 0o644)
        .with_context(|| format!("cannot write {}", cfg_path.display()))?;
    // Create the store now so a bad data directory fails `init`, not the first `run`.
    node::open_store(&Config::resolve(home, &config.node.data_dir))?.close()?;
    println!("initialised {}", home.display());
    println!("  peer id:  {}", identity.peer_id());
    println!("  keystore: {}", ks_path.display());
    println!("  config:   {}", cfg_path.display());
    Ok(())
}

/// The API address `api`, or the one the node running in `home` wrote there, and a client for
/// it. The client carries the home's API token (`[api] token_file`) only to the home's own node
/// (the address it wrote, or its configured `[api] listen`), so an `--api` elsewhere never
/// receives it.
fn api_client(
    home: &Path,
    api: Option<&str>,
) -> anyhow::Result<(api::ApiClient, std::net::SocketAddr)> {
    let running = api::running_api_addr(home).ok();
    let (addr, own) = match api {
        Some(a) => {
            let addr: std::net::SocketAddr = a
                .parse()
                .with_context(|| format!("invalid API address {a:?}"))?;
            let configured = Config::load(home)
                .ok()
                .and_then(|c| c.api.listen.parse::<std::net::SocketAddr>().ok());
            (addr, running == Some(addr) || configured == Some(addr))
        }
        None => (api::running_api_addr(home)?, true),
    };
    let client = if own {
        api::ApiClient::for_home(home)?
    } else {
        api::ApiClient::new()
    };
    Ok((client, addr))
}

/// A single-threaded runtime for one command's requests.
fn small_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The running node's status, from `api` or the address it wrote into `home`.
fn fetch_status(home: &Path, api: Option<&str>) -> anyhow::Result<api::StatusReport> {
    let (client, addr) = api_client(home, api)?;
    Ok(small_runtime()?.block_on(client.status(addr))?)
}

/// `seedfed pubkey`: the master key the node's ledger holds, and next to it (`OUT.retired`)
/// the leaves the audit retired, taken from the latest checkpoint of that key and checked
/// against the digest it commits to. Like the key, the list is trusted from the node.
fn pubkey(home: &Path, args: PubkeyArgs) -> anyhow::Result<()> {
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

/// The public key (HSS hex) of key `index` as the node's status reports it.
fn key_public_hex(chain: &seedfed_node::chain::ChainStatus, index: u32) -> Option<String> {
    chain
        .key
        .keys
        .iter()
        .find(|k| k.index == index)
        .and_then(|k| k.public_key.clone())
}

/// `NAME.pub.retired` for `NAME.pub`: where `seedfed pubkey` writes the retired leaves and
/// `seedfed verify --pubkey` looks for them.
fn retired_companion(pubkey: &Path) -> std::path::PathBuf {
    let mut name = pubkey.as_os_str().to_owned();
    name.push(".retired");
    name.into()
}

/// `seedfed sign`: the home's identity key signs a request for the file's digest in the
/// node's current epoch; the node relays it and answers with the published signature, which
/// is checked against the master key the node reports before it is written.
fn sign(home: &Path, args: SignArgs) -> anyhow::Result<()> {
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
        (Some(secret), Some(bundle)) => {
            let bundle: seedfed_protocol::issue::IssueBundle = seedfed_protocol::ledger::decode(
                &hex::decode(bundle).context("the node sent a malformed bundle")?,
            )
            .context("the node sent a malformed bundle")?;
            let pk = seedfed_protocol::lms::LmsPublicKey::decode_hss(&public)
                .map_err(|e| anyhow::anyhow!("the node reported an invalid public key: {e}"))?;
            let sig = seedfed_protocol::issue::sign_issued(&bundle, secret, &pk)
                .map_err(|e| anyhow::anyhow!("cannot sign with the issued leaf: {e}"))?;
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
fn tx(home: &Path, command: TxCommand) -> anyhow::Result<()> {
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

fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// `seedfed verify`: from files alone, or after walking a node's checkpoint chain.
fn verify(home: &Path, args: VerifyArgs) -> anyhow::Result<()> {
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

fn describe_key(hss: &[u8]) -> anyhow::Result<String> {
    let pk = seedfed_protocol::lms::LmsPublicKey::decode_hss(hss)
        .map_err(|e| anyhow::anyhow!("malformed public key: {e}"))?;
    Ok(format!("LMS root {}", hex::encode(pk.root)))
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

/// `seedfed status --watch`: polls `/status` every second and moves the bars of
/// [`WatchBars`](seedfed_node::progress::WatchBars) (stderr only; without a terminal, one line
/// on stderr whenever a position changes). Bounded by `--watch-secs` or Ctrl-C; a node that
/// stops answering ends it with the error.
fn watch(home: &Path, args: &StatusArgs) -> anyhow::Result<()> {
    use seedfed_node::progress::{WatchBars, WatchPositions};
    let (client, addr) = api_client(home, args.api.as_deref())?;
    let rt = small_runtime()?;
    let bars = WatchBars::new();
    let until = args
        .watch_secs
        .map(|s| Instant::now() + std::time::Duration::from_secs(s));
    let mut last = None;
    while until.is_none_or(|u| Instant::now() < u) {
        let chain = rt
            .block_on(client.status(addr))?
            .chain
            .context("the node runs no chain (is it a bootstrap node?)")?;
        bars.update(&chain);
        let p = WatchPositions::of(&chain);
        if !bars.is_visible() && last != Some(p) {
            eprintln!(
                "height {}/{}, key {} sectors {}/{}, our dealing {}/{}, leaves used {}/{}",
                p.sync.0,
                p.sync.1,
                chain.key.index,
                p.sectors.0,
                p.sectors.1,
                p.dealing.0,
                p.dealing.1,
                p.leaves.0,
                p.leaves.1
            );
        }
        last = Some(p);
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    Ok(())
}

fn status(home: &Path, args: StatusArgs) -> anyhow::Result<()> {
    if args.watch {
        return watch(home, &args);
    }
    let report = fetch_status(home, args.api.as_deref())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    // The headline first (the same lines as the top of the status page), then the rest.
    let now = seedfed_node::chain::unix_ms(std::time::SystemTime::now());
    print!("{}", api::text::render(&report, now));
    Ok(())
}

/// `seedfed keys solve-pow`: the better of the keystore's proof and the saved one if it meets
/// `bits` already, else a new proof (with a progress bar) saved where the node looks for it.
fn solve_pow(
    home: &Path,
    config: &Config,
    keystore_path: &Path,
    bits: u8,
    passphrase_file: Option<&Path>,
) -> anyhow::Result<()> {
    use seedfed_node::own_proof;
    let max = seedfed_protocol::admission::MAX_DIFFICULTY;
    if bits == 0 || bits > max {
        bail!("--bits must be between 1 and {max}");
    }
    let genesis = Genesis::load(&Config::resolve(home, &config.node.genesis))?;
    let chain = &genesis.chain_id;
    let pass = cli::read_passphrase(passphrase_file, false)?;
    let (identity, admission) = keystore::load(keystore_path, &pass)?;
    drop(pass);
    let best = own_proof::best_proof(home, &identity, chain, &admission);
    let have = own_proof::met_difficulty(&identity, chain, &best);
    if have >= bits {
        println!("the admission proof already meets {have} bits (asked: {bits}); nothing to do");
        return Ok(());
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    let progress = seedfed_node::progress::PowProgress::new(bits);
    let solved = own_proof::solve(&identity, chain, bits, &stop, |n| progress.update(n));
    progress.finish();
    let solved = solved?;
    own_proof::save(home, &identity, &solved)?;
    println!(
        "solved a {bits}-bit admission proof (nonce {}); saved to {} for the node's next start",
        solved.nonce,
        home.join(own_proof::PROOF_FILE).display()
    );
    Ok(())
}

fn keys(home: &Path, command: KeysCommand) -> anyhow::Result<()> {
    let config = Config::load(home)?;
    let path = Config::resolve(home, &config.node.keystore);
    let public = || keystore::load_public(&path);
    match command {
        KeysCommand::Show { json: true } => {
            println!("{}", serde_json::to_string_pretty(&public()?)?);
        }
        KeysCommand::Show { json: false } => {
            let public = public()?;
            println!("peer id:        {}", public.peer_id);
            println!("ed25519 public: {}", public.ed25519_public);
            println!("x25519 public:  {}", public.x25519_public);
            println!(
                "admission:      chain {} difficulty {} nonce {}",
                public.admission.chain_id, public.admission.difficulty, public.admission.nonce
            );
        }
        KeysCommand::ExportPublic { out } => {
            let text = serde_json::to_string_pretty(&public()?)? + "\n";
            match out {
                Some(p) => fsutil::write_atomic(&p, text.as_bytes(), 0o644)
                    .with_context(|| format!("cannot write {}", p.display()))?,
                None => print!("{text}"),
            }
        }
        KeysCommand::SolvePow {
            bits,
            passphrase_file,
        } => solve_pow(home, &config, &path, bits, passphrase_file.as_deref())?,
        KeysCommand::Passphrase(args) => {
            let old = cli::read_passphrase(args.passphrase_file.as_deref(), false)?;
            let new = cli::read_new_passphrase(args.new_passphrase_file.as_deref())?;
            keystore::change_passphrase(&path, &old, &new)?;
            let cost = keystore::KdfCost::default();
            println!(
                "re-encrypted {} under the new passphrase (Argon2id, {} MiB, {} passes, {} lanes)",
                path.display(),
                cost.m_cost_kib / 1024,
                cost.t_cost,
                cost.p_cost
            );
        }
    }
    Ok(())
}
