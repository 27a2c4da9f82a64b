//! `seedfed-bootstrap`: a light Kademlia bootstrap node and the genesis tool.
//!
//! The bootstrap node runs the node crate's network with `Role::Bootstrap`: the same admission
//! filter (it inserts only admitted peers into its routing table and is itself admitted by the
//! same proof-of-work), no consensus and no shares. Its identity is kept unencrypted (mode 0600)
//! in its home so it restarts unattended. It serves `/status`, `/metrics` and `/health`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use libp2p::PeerId;
use seedfed_node::config::{Config, LogFormat};
use seedfed_node::fsutil;
use seedfed_node::genesis::{Genesis, GenesisValidator};

/// seedfed bootstrap node and genesis tool.
#[derive(Debug, Parser)]
#[command(name = "seedfed-bootstrap", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Write a genesis file.
    Genesis(GenesisArgs),
    /// Run a bootstrap node.
    Run(RunArgs),
}

#[derive(Debug, Args)]
struct GenesisArgs {
    /// Chain (federation) identifier.
    #[arg(long)]
    chain_id: String,
    /// Admission proof-of-work difficulty (leading zero bits).
    #[arg(long, default_value_t = 20)]
    difficulty: u8,
    /// Initial validator as `<peer id>=<stake>=<x25519 public key hex>` (repeatable; both keys
    /// are printed by `seedfed keys show`).
    #[arg(long = "validator", value_name = "PEER_ID=STAKE=X25519_HEX", value_parser = parse_validator)]
    validators: Vec<GenesisValidator>,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Home directory (identity file, peers file, API address file).
    #[arg(long)]
    home: PathBuf,
    /// The federation's genesis file.
    #[arg(long)]
    genesis: PathBuf,
    /// Listen multiaddresses.
    #[arg(long, default_values_t = ["/ip4/0.0.0.0/tcp/4000".to_string(), "/ip4/0.0.0.0/udp/4000/quic-v1".to_string()])]
    listen: Vec<String>,
    /// Other bootstrap nodes.
    #[arg(long)]
    bootstrap: Vec<String>,
    /// Local API address (status, metrics, health).
    #[arg(long, default_value = "127.0.0.1:9300")]
    api_listen: String,
    /// Seconds between discovery rounds.
    #[arg(long, default_value_t = 30)]
    discovery_interval_secs: u64,
    /// Log filter (RUST_LOG wins).
    #[arg(long, default_value = "info")]
    log_filter: String,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
}

fn main() -> ExitCode {
    match real_main(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Parses a `--validator` value, `<peer id>=<stake>=<x25519 public key hex>`: a libp2p peer
/// id, a stake in base units and 32 bytes of hex. The error says which part is wrong.
fn parse_validator(s: &str) -> Result<GenesisValidator, String> {
    let mut parts = s.split('=');
    let (Some(id), Some(stake), Some(x25519), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!(
            "{s:?} is not <peer id>=<stake>=<x25519 public key hex> (three parts separated by '=')"
        ));
    };
    id.parse::<PeerId>()
        .map_err(|e| format!("peer id {id:?} is not a libp2p peer id: {e}"))?;
    let stake = stake
        .parse()
        .map_err(|e| format!("stake {stake:?} is not a whole number: {e}"))?;
    if x25519.len() != 64 || !x25519.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "x25519 public key {x25519:?} is not 64 hex digits (32 bytes)"
        ));
    }
    Ok(GenesisValidator {
        peer_id: id.to_string(),
        stake,
        x25519: x25519.to_string(),
    })
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Genesis(a) => {
            let genesis = Genesis {
                chain_id: a.chain_id,
                pow_difficulty: a.difficulty,
                validators: a.validators,
                key: Default::default(),
                epochs: Default::default(),
            };
            genesis.check()?;
            fsutil::write_atomic(&a.out, genesis.to_toml().as_bytes(), 0o644)
                .with_context(|| format!("cannot write {}", a.out.display()))?;
            println!("wrote {}", a.out.display());
            Ok(())
        }
        Cmd::Run(a) => {
            let genesis = Genesis::load(&a.genesis)?;
            let mut config = Config::default();
            config.network.listen = a.listen;
            config.network.bootstrap = a.bootstrap;
            config.network.discovery_interval_secs = a.discovery_interval_secs;
            config.api.listen = a.api_listen;
            config.log.filter = a.log_filter;
            config.log.format = if a.log_json {
                LogFormat::Json
            } else {
                LogFormat::Plain
            };
            seedfed_node::logging::init(&config)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            rt.block_on(seedfed_node::node::run_bootstrap(
                &a.home,
                &genesis,
                &config,
                seedfed_node::node::shutdown_signal(),
            ))?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-formed X25519 public key in hex.
    const X25519: &str = "0101010101010101010101010101010101010101010101010101010101010101";

    fn peer() -> String {
        libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id()
            .to_string()
    }

    fn genesis_with(validator: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from([
            "seedfed-bootstrap",
            "genesis",
            "--chain-id",
            "c",
            "--difficulty",
            "8",
            "--validator",
            validator,
            "--out",
            "g.toml",
        ])
    }

    #[test]
    fn parse_genesis_and_run() {
        let peer = peer();
        let c = genesis_with(&format!("{peer}=1={X25519}")).unwrap();
        match c.command {
            Cmd::Genesis(g) => {
                assert_eq!(g.difficulty, 8);
                assert_eq!(
                    g.validators,
                    vec![GenesisValidator {
                        peer_id: peer,
                        stake: 1,
                        x25519: X25519.into(),
                    }]
                );
            }
            other => panic!("{other:?}"),
        }
        let c = Cli::parse_from(["seedfed-bootstrap", "run", "--home", "h", "--genesis", "g"]);
        match c.command {
            Cmd::Run(r) => assert_eq!(r.listen.len(), 2),
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["seedfed-bootstrap", "run"]).is_err());
    }

    #[test]
    fn malformed_validator_is_a_clear_usage_error() {
        let peer = peer();
        let cases: [(String, &str); 7] = [
            ("x".into(), "three parts"),
            ("x=5".into(), "three parts"),
            (format!("{peer}=5={X25519}=c"), "three parts"),
            (format!("x=5={X25519}"), "is not a libp2p peer id"),
            (
                format!("{peer}=y={X25519}"),
                "stake \"y\" is not a whole number",
            ),
            (format!("{peer}=5=ab"), "not 64 hex digits"),
            (format!("{peer}=5={}", "zz".repeat(32)), "not 64 hex digits"),
        ];
        for (value, why) in cases {
            let err = genesis_with(&value).unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{value}"
            );
            let text = err.to_string();
            assert!(text.contains("--validator"), "{text}");
            assert!(text.contains(why), "{value}: {text}");
        }
    }
}
