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
use seedfed_node::genesis::{Genesis, GenesisClient, GenesisValidator, KeySection};

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
    /// Client authorized to request signatures, as `<key>=<quota per epoch>` where the key is
    /// an Ed25519 public key in hex or a node's peer id (repeatable).
    #[arg(long = "client", value_name = "KEY=QUOTA", value_parser = parse_client)]
    clients: Vec<GenesisClient>,
    /// Height of the whole LMS tree (`2^h` one-time keys: 5, 10, 15, 20 or 25).
    #[arg(long, default_value_t = KeySection::default().tree_height)]
    tree_height: u8,
    /// The tree is split into `2^p` sectors (branches), `p < h`.
    #[arg(long, default_value_t = KeySection::default().sector_bits)]
    sector_bits: u8,
    /// Shares needed to rebuild a leaf seed (`k`).
    #[arg(long, default_value_t = KeySection::default().leaf_threshold)]
    leaf_threshold: u16,
    /// Holders of each leaf seed's shares (`r`).
    #[arg(long, default_value_t = KeySection::default().leaf_holders)]
    leaf_holders: u16,
    /// Acknowledgements a sector root needs for each leaf from its own holders
    /// (`k ≤ a ≤ r`; default `min(k + 1, r)`).
    #[arg(long)]
    ack_threshold: Option<u16>,
    /// Leaves of every published sector the audit reconstructs publicly and retires (0: none).
    #[arg(long, default_value_t = KeySection::default().audit_leaves)]
    audit_leaves: u16,
    /// Blocks a sector owner has to land its sector root; an owner that misses it loses its
    /// unpublished sectors to the next choice (> 0).
    #[arg(long, default_value_t = KeySection::default().sector_window)]
    sector_window: u64,
    /// The next key is generated once an allocation leaves fewer than this percentage of the
    /// key in use (0: never; at most 100).
    #[arg(long, default_value_t = KeySection::default().rotate_percent)]
    rotate_percent: u8,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
}

impl GenesisArgs {
    /// The key parameters the flags name.
    fn key(&self) -> KeySection {
        KeySection {
            tree_height: self.tree_height,
            sector_bits: self.sector_bits,
            leaf_threshold: self.leaf_threshold,
            leaf_holders: self.leaf_holders,
            ack_threshold: self.ack_threshold,
            audit_leaves: self.audit_leaves,
            sector_window: self.sector_window,
            rotate_percent: self.rotate_percent,
            ..KeySection::default()
        }
    }
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
    /// Local API address (status, metrics, health). A non-loopback address needs
    /// `--api-allow-remote` and `--api-token-file` (the node's `[api] allow_remote` and
    /// `[api] token_file`).
    #[arg(long, default_value = "127.0.0.1:9300")]
    api_listen: String,
    /// Serve the API beyond loopback (needs `--api-token-file`).
    #[arg(long)]
    api_allow_remote: bool,
    /// A file (mode 0600) holding the bearer token every API request must carry.
    #[arg(long)]
    api_token_file: Option<PathBuf>,
    /// With `--api-allow-remote`: a host name API requests may name (repeatable).
    #[arg(long)]
    api_allowed_host: Vec<String>,
    /// Seconds between discovery rounds.
    #[arg(long, default_value_t = 30)]
    discovery_interval_secs: u64,
    /// Log filter (RUST_LOG wins).
    #[arg(long, default_value = seedfed_node::logging::DEFAULT_FILTER)]
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

/// Parses a `--client` value, `<ed25519 public key hex or peer id>=<quota>`.
fn parse_client(s: &str) -> Result<GenesisClient, String> {
    let Some((key, quota)) = s.split_once('=') else {
        return Err(format!(
            "{s:?} is not <ed25519 public key hex or peer id>=<quota per epoch>"
        ));
    };
    seedfed_node::genesis::parse_client_key(key)?;
    let quota = quota
        .parse()
        .map_err(|e| format!("quota {quota:?} is not a whole number: {e}"))?;
    Ok(GenesisClient {
        key: key.to_string(),
        quota,
    })
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
            let key = a.key();
            let genesis = Genesis {
                chain_id: a.chain_id,
                pow_difficulty: a.difficulty,
                validators: a.validators,
                key,
                epochs: Default::default(),
                clients: a.clients,
            };
            genesis.check()?;
            if !genesis.validators.is_empty() {
                // Every ledger rule on the genesis (key layout, thresholds, X25519 keys).
                genesis.to_ledger()?;
            }
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
            config.api.allow_remote = a.api_allow_remote;
            // Relative to the working directory, as usual for a command-line path.
            config.api.token_file = a
                .api_token_file
                .map(|p| std::path::absolute(&p))
                .transpose()
                .context("invalid --api-token-file")?;
            config.api.allowed_hosts = a.api_allowed_host;
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
            Cmd::Run(r) => {
                assert_eq!(r.listen.len(), 2);
                assert!(!r.api_allow_remote && r.api_token_file.is_none());
            }
            other => panic!("{other:?}"),
        }
        let c = Cli::parse_from([
            "seedfed-bootstrap",
            "run",
            "--home",
            "h",
            "--genesis",
            "g",
            "--api-listen",
            "0.0.0.0:9300",
            "--api-allow-remote",
            "--api-token-file",
            "t",
            "--api-allowed-host",
            "boot.example",
        ]);
        match c.command {
            Cmd::Run(r) => {
                assert!(r.api_allow_remote);
                assert_eq!(r.api_token_file, Some(PathBuf::from("t")));
                assert_eq!(r.api_allowed_host, vec!["boot.example".to_string()]);
            }
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

    #[test]
    fn key_parameters_come_from_flags_and_are_checked() {
        let c = Cli::try_parse_from([
            "seedfed-bootstrap",
            "genesis",
            "--chain-id",
            "c",
            "--leaf-threshold",
            "3",
            "--leaf-holders",
            "5",
            "--ack-threshold",
            "4",
            "--tree-height",
            "15",
            "--sector-bits",
            "3",
            "--sector-window",
            "100",
            "--out",
            "g.toml",
        ])
        .unwrap();
        let Cmd::Genesis(g) = c.command else {
            panic!("not genesis");
        };
        let key = g.key();
        assert_eq!(
            (
                key.tree_height,
                key.sector_bits,
                key.leaf_threshold,
                key.leaf_holders
            ),
            (15, 3, 3, 5)
        );
        assert_eq!(key.ack_threshold, Some(4));
        assert_eq!(key.sector_window, 100);
        // k above r, or an acknowledgement threshold outside [k, r], is refused by name.
        let mut bad = Genesis {
            chain_id: "c".into(),
            pow_difficulty: 8,
            validators: vec![],
            key: KeySection {
                leaf_threshold: 6,
                ..key.clone()
            },
            epochs: Default::default(),
            clients: vec![],
        };
        let e = bad.check().unwrap_err().to_string();
        assert!(e.contains("key.leaf_threshold 6"), "{e}");
        bad.key = KeySection {
            ack_threshold: Some(2),
            ..key.clone()
        };
        let e = bad.check().unwrap_err().to_string();
        assert!(e.contains("key.ack_threshold 2"), "{e}");
        bad.key = KeySection {
            sector_window: 0,
            ..key.clone()
        };
        let e = bad.check().unwrap_err().to_string();
        assert!(e.contains("key.sector_window"), "{e}");
        bad.key = KeySection {
            rotate_percent: 101,
            ..key
        };
        let e = bad.check().unwrap_err().to_string();
        assert!(e.contains("key.rotate_percent 101"), "{e}");
    }
}
