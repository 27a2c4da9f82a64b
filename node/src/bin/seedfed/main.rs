//! `seedfed`: the federation node binary. A thin shell over the `seedfed_node` library: it
//! parses the command line, sets up logging, and turns every error into one line on stderr and
//! a non-zero exit code. `init`, `run`, `status` and `keys` are here, with the helpers every
//! command shares (the API client, a small runtime); `pubkey` and `sign` are in `signing`,
//! `verify` in `verify`, `tx` in `tx`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use seedfed_node::cli::{self, Cli, Command, InitArgs, KeysCommand, StatusArgs};
use seedfed_node::config::{Config, CONFIG_FILE};
use seedfed_node::genesis::Genesis;
use seedfed_node::progress::PowProgress;
use seedfed_node::{api, fsutil, keystore, node};

mod signing;
mod tx;
mod verify;

use signing::{pubkey, sign};

/// mimalloc, not glibc's malloc: a node allocates and frees large buffers on many threads
/// (requests, dealt batches, held chunks), and glibc kept much of what was freed resident: at
/// 2^20 leaves with 16 validators, holders peaked at 217–333 MiB with glibc and 216–253 MiB
/// with mimalloc, and held at 157–421 against 101–169 MiB once the key was final
/// (docs/benchmarks.md, *Memory at 2^20 leaves*).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tx::tx;
use verify::verify;

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

fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn describe_key(hss: &[u8]) -> anyhow::Result<String> {
    let pk = seedfed_protocol::lms::LmsPublicKey::decode_hss(hss)
        .map_err(|e| anyhow::anyhow!("malformed public key: {e}"))?;
    Ok(format!("LMS root {}", hex::encode(pk.root)))
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
