//! The `seedfed` command line (clap derive, a global `--home`; subcommands `init`, `run`,
//! `status`, `keys`) and its small helpers: home-directory expansion and the passphrase sources
//! (file, `SEEDFED_PASSPHRASE`, or an interactive prompt), which never accept an empty passphrase.
//! A passphrase file is a secret file: it is read only if it is a regular file (not a symlink),
//! owned by the user running us, with no access for group or others.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use thiserror::Error;

use crate::keystore::Passphrase;

/// Environment variable holding the keystore passphrase.
pub const PASSPHRASE_ENV: &str = "SEEDFED_PASSPHRASE";

/// seedfed federation node.
#[derive(Debug, Parser)]
#[command(name = "seedfed", version, about = "seedfed federation node")]
pub struct Cli {
    /// Node home directory (keys, config, data).
    #[arg(
        long,
        global = true,
        env = "SEEDFED_HOME",
        default_value = "~/.seedfed"
    )]
    pub home: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the home directory, identity keys, admission proof and config.toml.
    Init(InitArgs),
    /// Run the node.
    Run(RunArgs),
    /// Print the running node's view of the network (from its local API).
    Status(StatusArgs),
    /// Ask the federation to sign a file (its SHA-256 digest) as an authorized client, through
    /// the running node of this home (or `--api`), and write the RFC 8554 signature.
    Sign(SignArgs),
    /// Write the federation's public key (RFC 8554, HSS L=1 encoding) once its master root is
    /// final, from the running node's ledger.
    Pubkey(PubkeyArgs),
    /// Verify an LMS signature: under a public key file (`--pubkey`), or under the master key
    /// of a checkpoint chain walked from epoch 0's key (`--api`).
    Verify(VerifyArgs),
    /// Build, sign (with the home's identity key) and submit a ledger transaction through the
    /// running node, and wait until it is decided.
    Tx {
        /// Which.
        #[command(subcommand)]
        command: TxCommand,
    },
    /// Show public identity material, or change the keystore's passphrase.
    Keys {
        /// Which.
        #[command(subcommand)]
        command: KeysCommand,
    },
}

/// `seedfed init`
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The federation's genesis file.
    #[arg(long)]
    pub chain: PathBuf,
    /// Read the keystore passphrase from this file instead of prompting.
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// Listen multiaddresses to write into config.toml (default: TCP port 4001).
    #[arg(long)]
    pub listen: Vec<String>,
    /// Addresses other hosts dial to reach this node (`network.announce`, e.g.
    /// `/ip4/203.0.113.7/tcp/4001`), to write into config.toml.
    #[arg(long)]
    pub announce: Vec<String>,
    /// Bootstrap multiaddresses (ending in `/p2p/<peer id>`) to write into config.toml.
    #[arg(long)]
    pub bootstrap: Vec<String>,
    /// Local API address to write into config.toml.
    #[arg(long)]
    pub api_listen: Option<String>,
    /// Overwrite an existing home directory's keys and config.
    #[arg(long)]
    pub force: bool,
}

/// `seedfed run`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Read the keystore passphrase from this file instead of prompting.
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// Print the effective configuration (file + environment overrides) and exit.
    #[arg(long)]
    pub dump_config: bool,
    /// Fault injection for tests: make this node misbehave on purpose. Never use it on a real
    /// federation.
    #[arg(long, value_enum, default_value_t = FaultArg::None)]
    pub fault: FaultArg,
}

/// `--fault` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FaultArg {
    /// Behave honestly.
    None,
    /// Deal invalid (but signed) DKG round-2 shares to every recipient.
    BadDkgShares,
    /// As a sector owner, deal one holder a share that fails its commitment.
    BadDealShare,
    /// As a holder, store dealt shares but never acknowledge them.
    NeverAck,
    /// As a sector owner, publish a tree the dealt seeds do not generate (the audit catches
    /// it).
    BadTree,
    /// As a signing quorum member, send a wrong (signed) contribution: the recipient blames it
    /// on the ledger.
    BadContribution,
    /// As a signing quorum member, lie about every pairwise mask commitment: the honest
    /// members reveal their pair points and the ledger convicts this member alone.
    DisputeEveryone,
    /// As a sector owner, send a wrong path for a leaf being signed: the relay refuses it and
    /// uses its own replica of the tree (nobody is convicted, nothing stalls).
    BadPath,
}

impl FaultArg {
    /// The protocol's fault for this flag.
    pub fn to_fault(self) -> seedfed_protocol::agent::Fault {
        match self {
            FaultArg::None => seedfed_protocol::agent::Fault::None,
            FaultArg::BadDkgShares => seedfed_protocol::agent::Fault::BadRound2Shares,
            FaultArg::BadDealShare => seedfed_protocol::agent::Fault::BadDealShare,
            FaultArg::NeverAck => seedfed_protocol::agent::Fault::NeverAck,
            FaultArg::BadTree => seedfed_protocol::agent::Fault::BadTree,
            FaultArg::BadContribution => seedfed_protocol::agent::Fault::BadContribution,
            FaultArg::DisputeEveryone => seedfed_protocol::agent::Fault::DisputeEveryone,
            FaultArg::BadPath => seedfed_protocol::agent::Fault::BadPath,
        }
    }
}

/// `seedfed status`
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// API address (default: the one the running node wrote into its home directory).
    #[arg(long)]
    pub api: Option<String>,
    /// Keep polling the node (every second, until interrupted or `--watch-secs`) and draw
    /// progress bars on stderr for block sync, key generation, our dealing and leaf use (a
    /// line per change when stderr is not a terminal).
    #[arg(long, conflicts_with = "json")]
    pub watch: bool,
    /// Stop watching after this many seconds (default: until interrupted).
    #[arg(long, requires = "watch")]
    pub watch_secs: Option<u64>,
}

/// `seedfed sign`
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The file to sign (the federation signs its SHA-256 digest).
    #[arg(long)]
    pub message: PathBuf,
    /// Where to write the signature (RFC 8554 HSS encoding with one level).
    #[arg(long)]
    pub out: PathBuf,
    /// Print leaf, key and latency as JSON.
    #[arg(long)]
    pub json: bool,
    /// API address of the node to relay through (default: the one the node of `--home`
    /// wrote into its home directory).
    #[arg(long)]
    pub api: Option<String>,
    /// Read the keystore passphrase from this file instead of prompting (the client key is
    /// the home's identity key).
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// Give up waiting for the signature after this many seconds (the request stays on the
    /// ledger and is still signed).
    #[arg(long, default_value_t = 300)]
    pub wait_secs: u64,
    /// Key issuance mode: the leaf's holders seal their contributions to a fresh X25519 key of
    /// this command, which rebuilds the one-time key, signs locally, erases it and publishes
    /// the signature through the node; no validator learns the key.
    #[arg(long)]
    pub issue: bool,
}

/// `seedfed pubkey`
#[derive(Debug, Args)]
pub struct PubkeyArgs {
    /// Output file (e.g. `seedfed.pub`). The leaves the audit retired are written next to it,
    /// one per line, as `OUT.retired` (`seedfed verify --pubkey` reads that file).
    #[arg(long)]
    pub out: PathBuf,
    /// API address (default: the one the running node wrote into its home directory).
    #[arg(long)]
    pub api: Option<String>,
    /// Which key (its index): default the one sign requests allocate from now, else the newest
    /// whose master root is final. After a rotation, signatures made under an older key verify
    /// only under that key.
    #[arg(long)]
    pub key: Option<u32>,
}

/// `seedfed verify`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The signature (RFC 8554 HSS encoding with one level, e.g. `release.sig`).
    #[arg(long)]
    pub sig: PathBuf,
    /// The signed file (the federation signs its SHA-256 digest).
    #[arg(long)]
    pub message: PathBuf,
    /// The public key file (HSS, one level: `seedfed.pub`). Without `--api` it is trusted as
    /// given, with the leaves the audit retired from `--retired` or `PUBKEY.retired`; with
    /// `--api` it must equal the master key the checkpoints vouch for.
    #[arg(long, required_unless_present = "api")]
    pub pubkey: Option<PathBuf>,
    /// The leaves the key-generation audit retired (one decimal index per line, increasing;
    /// what `seedfed pubkey` writes as `OUT.retired`), trusted as given like `--pubkey`.
    /// Default: `PUBKEY.retired`. A signature at one of these leaves is refused: the audit
    /// made their one-time keys public.
    #[arg(long, requires = "pubkey", conflicts_with = "api")]
    pub retired: Option<PathBuf>,
    /// Verify under `--pubkey` without a list of retired leaves. Unsafe: anyone can forge a
    /// signature at a retired leaf, and this accepts it (as plain RFC 8554 verifiers do).
    #[arg(long, requires = "pubkey", conflicts_with_all = ["api", "retired"])]
    pub no_retired_check: bool,
    /// Fetch the checkpoint chain from this node API address and walk it first.
    #[arg(long)]
    pub api: Option<String>,
    /// The genesis file: the chain id the checkpoints must carry (default: the home
    /// directory's).
    #[arg(long, requires = "api")]
    pub genesis: Option<PathBuf>,
    /// Epoch 0's Ed25519 checkpoint key (64 hex digits): the walk's trust anchor. The genesis
    /// does not fix it; obtain it from nodes you trust. Not needed with an existing
    /// `--trusted` file.
    #[arg(long, requires = "api")]
    pub anchor_key: Option<String>,
    /// The light client's cache (JSON): read if it exists, so the walk resumes from the last
    /// verified checkpoint, and written back after a successful walk.
    #[arg(long, requires = "api")]
    pub trusted: Option<PathBuf>,
}

/// `seedfed tx ...`. The ledger has no separate staking transaction: stake is what a member
/// holds, and it moves by `transfer`.
#[derive(Debug, Subcommand)]
pub enum TxCommand {
    /// Move stake from this home's identity to another member.
    Transfer {
        /// The recipient: its member id (64 hex digits) or its peer id.
        #[arg(long)]
        to: String,
        /// Stake to move (non-zero).
        #[arg(long)]
        amount: u64,
        /// Options every transaction takes.
        #[command(flatten)]
        common: TxCommon,
    },
    /// Approve setting the admission proof-of-work difficulty (leading zero bits) to `--bits`:
    /// it applies once validators holding more than 2/3 of the stake approved the same value
    /// (each runs this command). Allowed: the genesis difficulty up to 64, not the current
    /// value. Every node then solves its own proof again (see the operator guide).
    PowDifficulty {
        /// The difficulty to approve.
        #[arg(long)]
        bits: u8,
        /// Options every transaction takes.
        #[command(flatten)]
        common: TxCommon,
    },
    /// Leave the federation: this identity's stake stops counting and it validates no more.
    /// There is no way back for the identity.
    Exit {
        /// Confirm the exit (required: it cannot be undone).
        #[arg(long)]
        yes: bool,
        /// Options every transaction takes.
        #[command(flatten)]
        common: TxCommon,
    },
}

/// Options of every `seedfed tx` command.
#[derive(Debug, Args)]
pub struct TxCommon {
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// API address of the node to submit through (default: the one the node of `--home`
    /// wrote into its home directory).
    #[arg(long)]
    pub api: Option<String>,
    /// Read the keystore passphrase from this file instead of prompting.
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// Give up waiting for the decision after this many seconds (the transaction may still
    /// land).
    #[arg(long, default_value_t = 60)]
    pub wait_secs: u64,
}

/// `seedfed keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print the peer id, public keys and admission proof.
    Show {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write the public identity (JSON) to a file or stdout.
    ExportPublic {
        /// Output file (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Re-encrypt the keystore under a new passphrase (and the current Argon2id parameters),
    /// replacing it atomically: if anything fails the old file is left as it was. Stop the
    /// node first if it should use the new passphrase at its next start.
    Passphrase(PassphraseArgs),
    /// Solve the admission proof of work at `--bits` (the ledger's difficulty after a raise,
    /// from `seedfed status` of any node) and keep it in `<home>/admission-proof.json`, which
    /// the node uses from its next start. A new node joining after a raise needs this before
    /// its first start: peers that are not validators admit it only at the raised difficulty.
    SolvePow {
        /// Leading zero bits to reach.
        #[arg(long)]
        bits: u8,
        /// Read the keystore passphrase from this file instead of prompting.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
}

/// `seedfed keys passphrase`
#[derive(Debug, Args)]
pub struct PassphraseArgs {
    /// Read the current passphrase from this file (else `SEEDFED_PASSPHRASE`, else a prompt).
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// Read the new passphrase from this file (else a prompt, asked twice).
    #[arg(long)]
    pub new_passphrase_file: Option<PathBuf>,
}

/// Why a passphrase could not be obtained.
#[derive(Debug, Error)]
pub enum PassphraseError {
    /// File unreadable, or not private (a symlink, another user's, group or others can read).
    #[error("passphrase file: {0}")]
    File(#[from] crate::fsutil::PrivateFileError),
    /// File is not UTF-8.
    #[error("passphrase file {0} is not UTF-8 text")]
    NotText(String),
    /// No source for the new passphrase.
    #[error("no new passphrase: use --new-passphrase-file, or run in a terminal")]
    NoNewSource,
    /// No source available.
    #[error("no passphrase: use --passphrase-file, {PASSPHRASE_ENV}, or run in a terminal")]
    NoSource,
    /// Prompt failed.
    #[error("cannot read passphrase: {0}")]
    Prompt(String),
    /// Confirmation mismatch.
    #[error("passphrases do not match")]
    Mismatch,
    /// Empty.
    #[error("the passphrase is empty")]
    Empty,
}

/// Expands a leading `~/` with `$HOME`.
pub fn expand_home(home: &str) -> PathBuf {
    if let Some(rest) = home.strip_prefix("~/") {
        if let Some(h) = std::env::var_os("HOME") {
            return Path::new(&h).join(rest);
        }
    }
    PathBuf::from(home)
}

/// Gets the passphrase from a file, the environment, or a prompt (confirmed twice if `confirm`).
pub fn read_passphrase(file: Option<&Path>, confirm: bool) -> Result<Passphrase, PassphraseError> {
    let pass = if let Some(path) = file {
        passphrase_file(path)?
    } else if let Ok(v) = std::env::var(PASSPHRASE_ENV) {
        Passphrase::new(v)
    } else if std::io::stdin().is_terminal() {
        prompt("keystore passphrase: ", confirm)?
    } else {
        return Err(PassphraseError::NoSource);
    };
    non_empty(pass)
}

/// Gets a new passphrase (`seedfed keys passphrase`) from a file or a prompt asked twice; the
/// environment variable holds the current one, so it is not a source here.
pub fn read_new_passphrase(file: Option<&Path>) -> Result<Passphrase, PassphraseError> {
    let pass = if let Some(path) = file {
        passphrase_file(path)?
    } else if std::io::stdin().is_terminal() {
        prompt("new keystore passphrase: ", true)?
    } else {
        return Err(PassphraseError::NoNewSource);
    };
    non_empty(pass)
}

/// A passphrase file's content (a private file: [`crate::fsutil::read_private`]).
fn passphrase_file(path: &Path) -> Result<Passphrase, PassphraseError> {
    let bytes = crate::fsutil::read_private(path)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| PassphraseError::NotText(path.display().to_string()))?;
    Ok(Passphrase::new(text.to_owned()))
}

fn prompt(question: &str, confirm: bool) -> Result<Passphrase, PassphraseError> {
    let mut p = zeroize::Zeroizing::new(
        rpassword::prompt_password(question).map_err(|e| PassphraseError::Prompt(e.to_string()))?,
    );
    if confirm {
        let again = zeroize::Zeroizing::new(
            rpassword::prompt_password("repeat passphrase: ")
                .map_err(|e| PassphraseError::Prompt(e.to_string()))?,
        );
        if *again != *p {
            return Err(PassphraseError::Mismatch);
        }
    }
    Ok(Passphrase::new(std::mem::take(&mut *p)))
}

fn non_empty(pass: Passphrase) -> Result<Passphrase, PassphraseError> {
    if pass.is_empty() {
        return Err(PassphraseError::Empty);
    }
    Ok(pass)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn a_passphrase_file_others_can_read_or_a_symlink_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pass");
        std::fs::write(&p, "correct horse\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(!read_passphrase(Some(&p), false).unwrap().is_empty());
        for mode in [0o640, 0o604, 0o644] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = read_passphrase(Some(&p), false).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{mode:o}: {err}");
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        let err = read_passphrase(Some(&link), false).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
            let err = read_passphrase(Some(&p), false).unwrap_err().to_string();
            assert!(err.contains("owned by uid 65534"), "{err}");
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn signing_fault_names_parse() {
        use clap::ValueEnum;
        for (name, fault) in [
            (
                "bad-contribution",
                seedfed_protocol::agent::Fault::BadContribution,
            ),
            (
                "dispute-everyone",
                seedfed_protocol::agent::Fault::DisputeEveryone,
            ),
        ] {
            let arg = FaultArg::from_str(name, false).expect("fault name");
            assert_eq!(arg.to_fault(), fault);
        }
    }

    #[test]
    fn parse_init_with_global_home_after_subcommand() {
        let cli = Cli::parse_from([
            "seedfed",
            "init",
            "--chain",
            "g.toml",
            "--home",
            "/tmp/h",
            "--listen",
            "/ip4/127.0.0.1/tcp/1",
            "--listen",
            "/ip4/127.0.0.1/tcp/2",
            "--passphrase-file",
            "pw",
        ]);
        assert_eq!(cli.home, "/tmp/h");
        match cli.command {
            Command::Init(a) => {
                assert_eq!(a.chain, PathBuf::from("g.toml"));
                assert_eq!(a.listen.len(), 2);
                assert_eq!(a.passphrase_file, Some(PathBuf::from("pw")));
                assert!(!a.force);
            }
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn parse_run_status_keys() {
        let cli = Cli::parse_from(["seedfed", "--home", "h", "run", "--dump-config"]);
        assert!(matches!(
            cli.command,
            Command::Run(RunArgs {
                dump_config: true,
                ..
            })
        ));
        let cli = Cli::parse_from(["seedfed", "status", "--json"]);
        assert!(matches!(
            cli.command,
            Command::Status(StatusArgs {
                json: true,
                api: None,
                watch: false,
                ..
            })
        ));
        let cli = Cli::parse_from(["seedfed", "keys", "show"]);
        assert!(matches!(
            cli.command,
            Command::Keys {
                command: KeysCommand::Show { json: false }
            }
        ));
        let cli = Cli::parse_from([
            "seedfed",
            "keys",
            "passphrase",
            "--passphrase-file",
            "old",
            "--new-passphrase-file",
            "new",
        ]);
        match cli.command {
            Command::Keys {
                command: KeysCommand::Passphrase(a),
            } => {
                assert_eq!(a.passphrase_file, Some(PathBuf::from("old")));
                assert_eq!(a.new_passphrase_file, Some(PathBuf::from("new")));
            }
            other => panic!("parsed {other:?}"),
        }
        let cli = Cli::parse_from(["seedfed", "keys", "export-public", "--out", "p.json"]);
        assert!(matches!(
            cli.command,
            Command::Keys {
                command: KeysCommand::ExportPublic { out: Some(_) }
            }
        ));
    }

    #[test]
    fn parse_verify_with_files_or_api() {
        let cli = Cli::parse_from([
            "seedfed",
            "verify",
            "--pubkey",
            "f.pub",
            "--sig",
            "m.sig",
            "--message",
            "m",
        ]);
        match cli.command {
            Command::Verify(a) => {
                assert_eq!(a.pubkey, Some(PathBuf::from("f.pub")));
                assert_eq!(a.sig, PathBuf::from("m.sig"));
                assert_eq!(a.message, PathBuf::from("m"));
                assert!(a.api.is_none());
            }
            other => panic!("parsed {other:?}"),
        }
        let cli = Cli::parse_from([
            "seedfed",
            "verify",
            "--api",
            "127.0.0.1:9",
            "--sig",
            "m.sig",
            "--message",
            "m",
            "--genesis",
            "g.toml",
            "--anchor-key",
            "00",
            "--trusted",
            "t.json",
        ]);
        match cli.command {
            Command::Verify(a) => {
                assert_eq!(a.api.as_deref(), Some("127.0.0.1:9"));
                assert!(a.pubkey.is_none());
                assert_eq!(a.genesis, Some(PathBuf::from("g.toml")));
                assert_eq!(a.anchor_key.as_deref(), Some("00"));
                assert_eq!(a.trusted, Some(PathBuf::from("t.json")));
            }
            other => panic!("parsed {other:?}"),
        }
        let cli = Cli::parse_from([
            "seedfed",
            "verify",
            "--pubkey",
            "f.pub",
            "--retired",
            "f.retired",
            "--sig",
            "m.sig",
            "--message",
            "m",
        ]);
        match cli.command {
            Command::Verify(a) => {
                assert_eq!(a.retired, Some(PathBuf::from("f.retired")));
                assert!(!a.no_retired_check);
            }
            other => panic!("parsed {other:?}"),
        }
        let files = [
            "seedfed",
            "verify",
            "--pubkey",
            "p",
            "--sig",
            "s",
            "--message",
            "m",
        ];
        let with = |extra: &[&'static str]| {
            let mut v = files.to_vec();
            v.extend_from_slice(extra);
            Cli::try_parse_from(v)
        };
        match with(&["--no-retired-check"]).unwrap().command {
            Command::Verify(a) => assert!(a.no_retired_check && a.retired.is_none()),
            other => panic!("parsed {other:?}"),
        }
        // Either a list or no check; neither with --api (the checkpoints give the list).
        assert!(with(&["--no-retired-check", "--retired", "r"]).is_err());
        assert!(with(&["--api", "127.0.0.1:9", "--retired", "r"]).is_err());
        assert!(with(&["--api", "127.0.0.1:9", "--no-retired-check"]).is_err());
        // Neither a key file nor an API: nothing to verify under.
        assert!(
            Cli::try_parse_from(["seedfed", "verify", "--sig", "s", "--message", "m"]).is_err()
        );
        // Walk options make sense only with --api.
        assert!(Cli::try_parse_from([
            "seedfed",
            "verify",
            "--pubkey",
            "p",
            "--sig",
            "s",
            "--message",
            "m",
            "--genesis",
            "g"
        ])
        .is_err());
    }

    #[test]
    fn parse_tx_transfer_and_exit() {
        let cli = Cli::parse_from([
            "seedfed", "tx", "transfer", "--to", "ab", "--amount", "5", "--json",
        ]);
        let Command::Tx {
            command: TxCommand::Transfer { to, amount, common },
        } = cli.command
        else {
            panic!("not a transfer");
        };
        assert_eq!(
            (to.as_str(), amount, common.json, common.wait_secs),
            ("ab", 5, true, 60)
        );
        let cli = Cli::parse_from(["seedfed", "tx", "exit", "--yes", "--wait-secs", "9"]);
        assert!(matches!(
            cli.command,
            Command::Tx {
                command: TxCommand::Exit {
                    yes: true,
                    common: TxCommon { wait_secs: 9, .. }
                }
            }
        ));
        let cli = Cli::parse_from(["seedfed", "tx", "pow-difficulty", "--bits", "20"]);
        assert!(matches!(
            cli.command,
            Command::Tx {
                command: TxCommand::PowDifficulty { bits: 20, .. }
            }
        ));
        assert!(Cli::try_parse_from(["seedfed", "tx", "pow-difficulty", "--bits", "256"]).is_err());
        assert!(Cli::try_parse_from(["seedfed", "tx", "pow-difficulty"]).is_err());
        assert!(Cli::try_parse_from(["seedfed", "tx", "transfer", "--to", "ab"]).is_err());
        assert!(Cli::try_parse_from(["seedfed", "tx", "stake", "--amount", "1"]).is_err());
        assert!(
            Cli::try_parse_from(["seedfed", "tx", "transfer", "--to", "a", "--amount", "-1"])
                .is_err()
        );
    }

    #[test]
    fn missing_required_and_unknown_flags_fail() {
        assert!(Cli::try_parse_from(["seedfed", "init"]).is_err());
        assert!(Cli::try_parse_from(["seedfed", "run", "--nope"]).is_err());
        assert!(Cli::try_parse_from(["seedfed"]).is_err());
    }

    #[test]
    fn home_expansion() {
        if let Some(h) = std::env::var_os("HOME") {
            assert_eq!(expand_home("~/x"), Path::new(&h).join("x"));
        }
        assert_eq!(expand_home("/abs"), PathBuf::from("/abs"));
    }

    #[test]
    fn passphrase_from_file_strips_newline_and_rejects_empty() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        crate::fsutil::write_atomic(&f, b"secret\n", 0o600).unwrap();
        assert!(!read_passphrase(Some(&f), false).unwrap().is_empty());
        std::fs::write(&f, "\n").unwrap();
        assert!(matches!(
            read_passphrase(Some(&f), false),
            Err(PassphraseError::Empty)
        ));
        assert!(matches!(
            read_passphrase(Some(&dir.path().join("missing")), false),
            Err(PassphraseError::File(_))
        ));
    }
}
