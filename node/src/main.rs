//! `seedfed`: the federation node binary. A thin shell over the `seedfed_node` library: it
//! parses the command line, sets up logging, and turns every error into one line on stderr and
//! a non-zero exit code.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use seedfed_node::cli::{self, Cli, Command, InitArgs, KeysCommand, PubkeyArgs, StatusArgs};
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
        Command::Keys { command } => keys(&home, command),
    }
}

fn init(home: &Path, args: InitArgs) -> anyhow::Result<()> {
    let genesis = Genesis::load(&args.chain)?;
    let mut config = Config::default();
    if !args.listen.is_empty() {
        config.network.listen = args.listen.clone();
    }
    config.network.bootstrap = args.bootstrap.clone();
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

/// The running node's status, from `api` or the address it wrote into `home`.
fn fetch_status(home: &Path, api: Option<&str>) -> anyhow::Result<api::StatusReport> {
    let addr = match api {
        Some(a) => a
            .parse()
            .with_context(|| format!("invalid API address {a:?}"))?,
        None => api::running_api_addr(home)?,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(rt.block_on(api::fetch_status(addr))?)
}

fn pubkey(home: &Path, args: PubkeyArgs) -> anyhow::Result<()> {
    let report = fetch_status(home, args.api.as_deref())?;
    let chain = report
        .chain
        .context("the node runs no chain (is it a bootstrap node?)")?;
    let Some(hex_key) = &chain.key.public_key else {
        bail!(
            "the master root is not final yet: {} of {} sectors on the ledger",
            chain.key.sectors_final,
            chain.key.sectors_total
        );
    };
    let bytes = hex::decode(hex_key).context("the node reported a malformed public key")?;
    let key = seedfed_protocol::lms::LmsPublicKey::decode_hss(&bytes)
        .map_err(|e| anyhow::anyhow!("the node reported an invalid public key: {e}"))?;
    fsutil::write_atomic(&args.out, &bytes, 0o644)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "wrote {} ({} bytes): LMS root {}, 2^{} one-time keys",
        args.out.display(),
        bytes.len(),
        hex::encode(key.root),
        chain.key.tree_height
    );
    Ok(())
}

fn status(home: &Path, args: StatusArgs) -> anyhow::Result<()> {
    let report = fetch_status(home, args.api.as_deref())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let n = &report.network;
    println!("peer id:        {}", n.peer_id);
    println!(
        "role:           {} (seedfed {})",
        report.role, report.version
    );
    println!("chain:          {}", n.chain_id);
    println!("listening on:   {}", n.listen_addrs.join(", "));
    println!("connected:      {}", n.connected.len());
    println!("admitted:       {}", n.admitted.len());
    println!("routing table:  {}", n.routing_table.len());
    println!("rejected:       {}", n.rejected_total);
    if let Some(c) = &report.chain {
        println!(
            "ledger:         height {} (round {}), epoch {}, {} validators{}",
            c.height,
            c.round,
            c.epoch,
            c.validators.len(),
            if c.validator { ", we validate" } else { "" }
        );
        println!("state hash:     {}", c.state_hash);
        if let Some(e) = c.assignment_epoch {
            println!("assignment:     epoch {e}, {} sectors", c.assignment.len());
        }
        let k = &c.key;
        println!(
            "key:            2^{} leaves in {} sectors, {}-of-{} (ack {}); {} of {} sectors final, {} audited ({} leaves each, {} retired); {} of {} leaves allocated; we hold {} sectors",
            k.tree_height,
            k.sectors_total,
            k.leaf_threshold,
            k.leaf_holders,
            k.ack_threshold,
            k.sectors_final,
            k.sectors_total,
            k.sectors_audited,
            k.audit_leaves,
            k.leaves_retired,
            k.leaves_allocated,
            k.leaves_total,
            k.held_sectors
        );
        for c in &k.convictions {
            println!(
                "convicted:      {} by {} on sector {} at height {}: {}",
                c.member, c.by, c.sector, c.height, c.reason
            );
        }
        if let Some(root) = &k.master_root {
            println!("master root:    {root}");
        }
        for m in &k.missed {
            println!("missed window:  {m} (owns no sector of the key)");
        }
    }
    for p in &n.admitted {
        println!(
            "  {} {} stake={}",
            p.peer_id,
            if p.connected {
                "connected"
            } else {
                "disconnected"
            },
            p.stake
        );
    }
    Ok(())
}

fn keys(home: &Path, command: KeysCommand) -> anyhow::Result<()> {
    let config = Config::load(home)?;
    let public = keystore::load_public(&Config::resolve(home, &config.node.keystore))?;
    match command {
        KeysCommand::Show { json: true } => {
            println!("{}", serde_json::to_string_pretty(&public)?);
        }
        KeysCommand::Show { json: false } => {
            println!("peer id:        {}", public.peer_id);
            println!("ed25519 public: {}", public.ed25519_public);
            println!("x25519 public:  {}", public.x25519_public);
            println!(
                "admission:      chain {} difficulty {} nonce {}",
                public.admission.chain_id, public.admission.difficulty, public.admission.nonce
            );
        }
        KeysCommand::ExportPublic { out } => {
            let text = serde_json::to_string_pretty(&public)? + "\n";
            match out {
                Some(p) => fsutil::write_atomic(&p, text.as_bytes(), 0o644)
                    .with_context(|| format!("cannot write {}", p.display()))?,
                None => print!("{text}"),
            }
        }
    }
    Ok(())
}
