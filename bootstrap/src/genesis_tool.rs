//! `seedfed-bootstrap genesis`: writes a federation's genesis file from a parameter file
//! (`--from`, TOML or JSON, the genesis file's own layout, any subset of keys) and flags,
//! checks it, and prints what it wrote with its hashes.
//!
//! Precedence, later wins: built-in defaults, the `--from` file, the flags (a list flag such as
//! `--validator` replaces the file's list). Beyond the checks every node makes on load
//! (`Genesis::check`, and with validators the ledger's own), the tool refuses epoch windows
//! under which the DKG cannot work (`window_problem`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use libp2p::PeerId;
use seedfed_node::fsutil;
use seedfed_node::genesis::{EpochParams, Genesis, GenesisClient, GenesisValidator, KeySection};
use sha2::{Digest, Sha256};

/// Default admission proof-of-work difficulty when neither the file nor a flag sets it.
pub const DEFAULT_DIFFICULTY: u8 = 20;

/// `seedfed-bootstrap genesis`: each flag, when given, overrides the `--from` file.
#[derive(Debug, Args)]
pub struct GenesisArgs {
    /// Parameter file (TOML, or JSON if it ends in `.json`) with any of the genesis file's
    /// keys; flags override it.
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// Chain (federation) identifier (`chain_id`).
    #[arg(long)]
    pub chain_id: Option<String>,
    /// Admission proof-of-work difficulty in leading zero bits (`pow_difficulty`; default 20).
    #[arg(long)]
    pub difficulty: Option<u8>,
    /// Initial validator as `<peer id>=<stake>=<x25519 public key hex>` (repeatable; both keys
    /// are printed by `seedfed keys show`). Replaces the file's validators.
    #[arg(long = "validator", value_name = "PEER_ID=STAKE=X25519_HEX", value_parser = parse_validator)]
    pub validators: Vec<GenesisValidator>,
    /// Client authorized to request signatures, as `<key>=<quota per epoch>` where the key is
    /// an Ed25519 public key in hex or a node's peer id (repeatable). Replaces the file's
    /// clients.
    #[arg(long = "client", value_name = "KEY=QUOTA", value_parser = parse_client)]
    pub clients: Vec<GenesisClient>,
    /// Height of the whole LMS tree (`key.tree_height`: `2^h` one-time keys; 5, 10, 15, 20 or
    /// 25). The one-time signatures are LM-OTS with W = 4, fixed by the protocol.
    #[arg(long)]
    pub tree_height: Option<u8>,
    /// The tree is split into `2^p` sectors (`key.sector_bits`, `p < h`, `p ≤ 20`).
    #[arg(long)]
    pub sector_bits: Option<u8>,
    /// Shares needed to rebuild a leaf seed (`key.leaf_threshold`, `k`).
    #[arg(long)]
    pub leaf_threshold: Option<u16>,
    /// Holders of each leaf seed's shares (`key.leaf_holders`, `r`).
    #[arg(long)]
    pub leaf_holders: Option<u16>,
    /// Acknowledgements a sector root needs for each leaf from its own holders
    /// (`key.ack_threshold`, `k ≤ a ≤ r`; default `min(k + 1, r)`).
    #[arg(long)]
    pub ack_threshold: Option<u16>,
    /// Leaves of every published sector the audit reconstructs publicly and retires
    /// (`key.audit_leaves`; 0: none; fewer than a sector's leaves).
    #[arg(long)]
    pub audit_leaves: Option<u16>,
    /// Blocks a sector owner has to land its sector root (`key.sector_window`, > 0).
    #[arg(long)]
    pub sector_window: Option<u64>,
    /// The next key is generated once an allocation leaves fewer than this percentage of the
    /// key in use (`key.rotate_percent`; 0: never; at most 100).
    #[arg(long)]
    pub rotate_percent: Option<u8>,
    /// Consecutive missed commits after which a validator may be evicted
    /// (`key.eviction_missed_heights`, > 0).
    #[arg(long)]
    pub eviction_missed_heights: Option<u64>,
    /// DKG round-1 window in blocks (`epochs.dkg_round1_blocks`, `R ≥ 1`).
    #[arg(long)]
    pub dkg_round1_blocks: Option<u64>,
    /// DKG complaint window in blocks (`epochs.dkg_complaint_blocks`, `C ≥ 4`).
    #[arg(long)]
    pub dkg_complaint_blocks: Option<u64>,
    /// Least blocks between an epoch's start and the next (`epochs.epoch_min_blocks`).
    #[arg(long)]
    pub epoch_min_blocks: Option<u64>,
    /// Blocks after which an unfinished checkpoint signing attempt may be superseded
    /// (`epochs.checkpoint_attempt_blocks`, ≥ 1).
    #[arg(long)]
    pub checkpoint_attempt_blocks: Option<u64>,
    /// Output file.
    #[arg(long)]
    pub out: PathBuf,
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

/// The genesis defaults as a table (no chain id yet).
fn defaults() -> anyhow::Result<toml::Table> {
    let g = Genesis {
        chain_id: String::new(),
        pow_difficulty: DEFAULT_DIFFICULTY,
        validators: vec![],
        key: KeySection::default(),
        epochs: EpochParams::default(),
        clients: vec![],
    };
    Ok(toml::Table::try_from(&g)?)
}

/// Reads a parameter file: JSON if its name ends in `.json`, else TOML.
fn read_params(path: &Path) -> anyhow::Result<toml::Table> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let table = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?;
        toml::Table::try_from(v)
            .with_context(|| format!("{} must be a JSON object without nulls", path.display()))?
    } else {
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?
    };
    Ok(table)
}

/// Lays `over` onto `base`, one level into tables (`[key]`, `[epochs]`).
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => {
                for (k2, v2) in o {
                    b.insert(k2, v2);
                }
            }
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Keys of `given` (one level into tables) that `known` lacks, as `section.key`.
fn unknown_keys(given: &toml::Table, known: &toml::Table) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in given {
        match (v, known.get(k)) {
            (toml::Value::Table(g), Some(toml::Value::Table(kn))) => {
                out.extend(
                    g.keys()
                        .filter(|k2| !kn.contains_key(*k2))
                        .map(|k2| format!("{k}.{k2}")),
                );
            }
            (_, None) => out.push(k.clone()),
            _ => {}
        }
    }
    out
}

impl GenesisArgs {
    /// The flags that were given, as a table in the genesis file's layout.
    fn flag_table(&self) -> anyhow::Result<toml::Table> {
        fn set<T: serde::Serialize>(
            t: &mut toml::Table,
            key: &str,
            v: &Option<T>,
        ) -> anyhow::Result<()> {
            if let Some(v) = v {
                t.insert(key.into(), toml::Value::try_from(v)?);
            }
            Ok(())
        }
        let mut top = toml::Table::new();
        set(&mut top, "chain_id", &self.chain_id)?;
        set(&mut top, "pow_difficulty", &self.difficulty)?;
        if !self.validators.is_empty() {
            top.insert(
                "validators".into(),
                toml::Value::try_from(&self.validators)?,
            );
        }
        if !self.clients.is_empty() {
            top.insert("clients".into(), toml::Value::try_from(&self.clients)?);
        }
        let mut key = toml::Table::new();
        set(&mut key, "tree_height", &self.tree_height)?;
        set(&mut key, "sector_bits", &self.sector_bits)?;
        set(&mut key, "leaf_threshold", &self.leaf_threshold)?;
        set(&mut key, "leaf_holders", &self.leaf_holders)?;
        set(&mut key, "ack_threshold", &self.ack_threshold)?;
        set(&mut key, "audit_leaves", &self.audit_leaves)?;
        set(&mut key, "sector_window", &self.sector_window)?;
        set(&mut key, "rotate_percent", &self.rotate_percent)?;
        set(
            &mut key,
            "eviction_missed_heights",
            &self.eviction_missed_heights,
        )?;
        top.insert("key".into(), toml::Value::Table(key));
        let mut epochs = toml::Table::new();
        set(&mut epochs, "dkg_round1_blocks", &self.dkg_round1_blocks)?;
        set(
            &mut epochs,
            "dkg_complaint_blocks",
            &self.dkg_complaint_blocks,
        )?;
        set(&mut epochs, "epoch_min_blocks", &self.epoch_min_blocks)?;
        set(
            &mut epochs,
            "checkpoint_attempt_blocks",
            &self.checkpoint_attempt_blocks,
        )?;
        top.insert("epochs".into(), toml::Value::Table(epochs));
        Ok(top)
    }

    /// The genesis the file and flags describe, checked.
    pub fn build(&self) -> anyhow::Result<Genesis> {
        let base = defaults()?;
        let mut table = base.clone();
        if let Some(p) = &self.from {
            let file = read_params(p)?;
            // `ack_threshold` is optional, so the defaults do not list it.
            let mut known = base.clone();
            if let Some(toml::Value::Table(k)) = known.get_mut("key") {
                k.insert("ack_threshold".into(), toml::Value::Integer(0));
            }
            let unknown = unknown_keys(&file, &known);
            if !unknown.is_empty() {
                bail!(
                    "{}: unknown key(s) {} (the keys are those of a genesis file: \
                     `seedfed-bootstrap genesis --help` names each)",
                    p.display(),
                    unknown.join(", ")
                );
            }
            merge(&mut table, file);
        }
        merge(&mut table, self.flag_table()?);
        let g: Genesis = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| anyhow::anyhow!("invalid parameter: {}", e.message()))?;
        if g.chain_id.trim().is_empty() {
            bail!("no chain id: give --chain-id or chain_id in the --from file");
        }
        g.check()?;
        if let Some(problem) = window_problem(&g.key, &g.epochs) {
            bail!("genesis is invalid: {problem}");
        }
        if g.has_validators() {
            // Every ledger rule on the genesis (key layout, thresholds, X25519 keys).
            g.to_ledger()?;
        }
        Ok(g)
    }

    /// Builds, writes and describes the genesis; returns the description printed.
    pub fn run(&self) -> anyhow::Result<String> {
        let g = self.build()?;
        let text = g.to_toml();
        fsutil::write_atomic(&self.out, text.as_bytes(), 0o644)
            .with_context(|| format!("cannot write {}", self.out.display()))?;
        Ok(summary(&g, &self.out, text.as_bytes()))
    }
}

/// Why the epoch windows or the key's time parameters cannot work, if they cannot. The DKG's
/// complaint window `C` must be at least 4: `Missing` complaints close after `⌈C/2⌉` blocks
/// and answers after `⌈C/2⌉ + ⌊C/4⌋`, so with `C < 4` a `Missing` complaint filed in the last
/// block of its window could never be answered and would disqualify an honest dealer.
pub fn window_problem(key: &KeySection, e: &EpochParams) -> Option<String> {
    if e.dkg_round1_blocks == 0 {
        return Some("epochs.dkg_round1_blocks must be at least 1".into());
    }
    if e.dkg_complaint_blocks < 4 {
        return Some(format!(
            "epochs.dkg_complaint_blocks {} must be at least 4: with fewer, a Missing complaint \
             filed in the last block of its window cannot be answered before answers close",
            e.dkg_complaint_blocks
        ));
    }
    if e.epoch_min_blocks == 0 {
        return Some("epochs.epoch_min_blocks must be at least 1".into());
    }
    if e.checkpoint_attempt_blocks == 0 {
        return Some("epochs.checkpoint_attempt_blocks must be at least 1".into());
    }
    if key.eviction_missed_heights == 0 {
        return Some("key.eviction_missed_heights must be at least 1".into());
    }
    None
}

/// What the tool prints: every parameter in words, the file's SHA-256 (what `sha256sum`
/// prints, for comparing copies) and, with validators, the ledger's genesis hash (block 1's
/// previous hash).
pub fn summary(g: &Genesis, out: &Path, bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let k = &g.key;
    let e = &g.epochs;
    let leaves = 1u64 << k.tree_height.min(63);
    let sectors = 1u64 << k.sector_bits.min(63);
    let ack = k.ack_threshold.unwrap_or_else(|| {
        seedfed_protocol::ledger::KeyParams::default_ack_threshold(k.leaf_threshold, k.leaf_holders)
    });
    let mut s = String::new();
    let _ = writeln!(s, "wrote {}", out.display());
    let _ = writeln!(s, "  chain id:         {}", g.chain_id);
    let _ = writeln!(
        s,
        "  file sha256:      {}",
        hex::encode(Sha256::digest(bytes))
    );
    match g.to_ledger() {
        Ok(l) => {
            let _ = writeln!(s, "  genesis hash:     {}", hex::encode(l.hash()));
        }
        Err(_) => {
            let _ = writeln!(
                s,
                "  genesis hash:     none (no validators: a bootstrap-only genesis)"
            );
        }
    }
    let _ = writeln!(
        s,
        "  pow difficulty:   {} leading zero bits",
        g.pow_difficulty
    );
    let total: u64 = g
        .validators
        .iter()
        .map(|v| v.stake)
        .fold(0, u64::saturating_add);
    let _ = writeln!(
        s,
        "  validators:       {} (total stake {total})",
        g.validators.len()
    );
    for v in &g.validators {
        let _ = writeln!(s, "    {} stake {} x25519 {}", v.peer_id, v.stake, v.x25519);
    }
    let _ = writeln!(s, "  clients:          {}", g.clients.len());
    for c in &g.clients {
        let _ = writeln!(s, "    {} quota {} per epoch", c.key, c.quota);
    }
    let _ = writeln!(
        s,
        "  key:              LMS height {} ({leaves} one-time keys, LM-OTS W=4), {sectors} sectors \
         of {} leaves",
        k.tree_height,
        leaves / sectors.max(1)
    );
    let _ = writeln!(
        s,
        "  leaf shares:      {}-of-{} (k-of-r), {ack} acknowledgements per leaf",
        k.leaf_threshold, k.leaf_holders
    );
    let _ = writeln!(
        s,
        "  audit:            {} leaves per sector; sector window {} blocks; rotate below {}% left",
        k.audit_leaves, k.sector_window, k.rotate_percent
    );
    let _ = writeln!(
        s,
        "  epochs:           DKG round 1 {} blocks, complaints {} blocks, epoch at least {} \
         blocks, checkpoint attempt {} blocks",
        e.dkg_round1_blocks,
        e.dkg_complaint_blocks,
        e.epoch_min_blocks,
        e.checkpoint_attempt_blocks
    );
    let _ = writeln!(
        s,
        "  eviction:         after {} consecutive missed commits",
        k.eviction_missed_heights
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cmd {
        #[command(flatten)]
        g: GenesisArgs,
    }

    /// A valid X25519 public key in hex (the base point).
    const X25519: &str = "0900000000000000000000000000000000000000000000000000000000000000";

    fn peer() -> String {
        libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id()
            .to_string()
    }

    fn parse(extra: &[&str]) -> Result<GenesisArgs, clap::Error> {
        let mut v = vec!["genesis", "--out", "g.toml"];
        v.extend_from_slice(extra);
        Cmd::try_parse_from(v).map(|c| c.g)
    }

    fn build(extra: &[&str]) -> anyhow::Result<Genesis> {
        parse(extra).unwrap().build()
    }

    #[test]
    fn every_parameter_comes_from_flags() {
        let p = peer();
        let v = format!("{p}=7={X25519}");
        let c = format!("{p}=9");
        let g = build(&[
            "--chain-id",
            "c",
            "--difficulty",
            "8",
            "--validator",
            &v,
            "--client",
            &c,
            "--tree-height",
            "15",
            "--sector-bits",
            "3",
            "--leaf-threshold",
            "3",
            "--leaf-holders",
            "5",
            "--ack-threshold",
            "4",
            "--audit-leaves",
            "1",
            "--sector-window",
            "100",
            "--rotate-percent",
            "40",
            "--eviction-missed-heights",
            "77",
            "--dkg-round1-blocks",
            "6",
            "--dkg-complaint-blocks",
            "8",
            "--epoch-min-blocks",
            "40",
            "--checkpoint-attempt-blocks",
            "12",
        ])
        .unwrap();
        assert_eq!((g.chain_id.as_str(), g.pow_difficulty), ("c", 8));
        assert_eq!(
            g.validators,
            vec![GenesisValidator {
                peer_id: p.clone(),
                stake: 7,
                x25519: X25519.into()
            }]
        );
        assert_eq!(g.clients, vec![GenesisClient { key: p, quota: 9 }]);
        let k = &g.key;
        assert_eq!(
            (
                k.tree_height,
                k.sector_bits,
                k.leaf_threshold,
                k.leaf_holders,
                k.ack_threshold
            ),
            (15, 3, 3, 5, Some(4))
        );
        assert_eq!(
            (
                k.audit_leaves,
                k.sector_window,
                k.rotate_percent,
                k.eviction_missed_heights
            ),
            (1, 100, 40, 77)
        );
        assert_eq!(
            g.epochs,
            EpochParams {
                dkg_round1_blocks: 6,
                dkg_complaint_blocks: 8,
                epoch_min_blocks: 40,
                checkpoint_attempt_blocks: 12
            }
        );
        // Nothing given: the defaults, and the default difficulty.
        let g = build(&["--chain-id", "c"]).unwrap();
        assert_eq!(g.key, KeySection::default());
        assert_eq!(g.epochs, EpochParams::default());
        assert_eq!(g.pow_difficulty, DEFAULT_DIFFICULTY);
    }

    #[test]
    fn a_parameter_file_is_read_and_flags_override_it() {
        let dir = tempfile::tempdir().unwrap();
        let toml_file = dir.path().join("params.toml");
        std::fs::write(
            &toml_file,
            "chain_id = \"from-file\"\npow_difficulty = 12\n[key]\ntree_height = 15\n\
             leaf_holders = 5\n[epochs]\ndkg_complaint_blocks = 6\n",
        )
        .unwrap();
        let f = toml_file.to_str().unwrap();
        let g = build(&["--from", f]).unwrap();
        assert_eq!((g.chain_id.as_str(), g.pow_difficulty), ("from-file", 12));
        assert_eq!((g.key.tree_height, g.key.leaf_holders), (15, 5));
        assert_eq!(g.epochs.dkg_complaint_blocks, 6);
        // Keys the file leaves out keep their defaults.
        assert_eq!(
            g.epochs.dkg_round1_blocks,
            EpochParams::default().dkg_round1_blocks
        );
        assert_eq!(g.key.sector_bits, KeySection::default().sector_bits);
        let g = build(&["--from", f, "--chain-id", "flag", "--tree-height", "20"]).unwrap();
        assert_eq!((g.chain_id.as_str(), g.key.tree_height), ("flag", 20));
        assert_eq!(g.key.leaf_holders, 5);
        // JSON works the same way.
        let json = dir.path().join("params.json");
        std::fs::write(
            &json,
            r#"{"chain_id": "j", "key": {"leaf_threshold": 3, "leaf_holders": 4},
                "epochs": {"epoch_min_blocks": 99}}"#,
        )
        .unwrap();
        let g = build(&["--from", json.to_str().unwrap()]).unwrap();
        assert_eq!(g.chain_id, "j");
        assert_eq!((g.key.leaf_threshold, g.key.leaf_holders), (3, 4));
        assert_eq!(g.epochs.epoch_min_blocks, 99);
        // An unknown key, even in a section whose type would ignore it, is refused by name.
        std::fs::write(
            &toml_file,
            "chain_id = \"c\"\n[epochs]\ndkg_complaint_blockz = 6\n",
        )
        .unwrap();
        let e = format!("{:#}", build(&["--from", f]).unwrap_err());
        assert!(
            e.contains("unknown key(s) epochs.dkg_complaint_blockz"),
            "{e}"
        );
        std::fs::write(&toml_file, "chain_id = \"c\"\nwinternitz = 8\n").unwrap();
        let e = format!("{:#}", build(&["--from", f]).unwrap_err());
        assert!(e.contains("unknown key(s) winternitz"), "{e}");
        std::fs::write(
            &toml_file,
            "chain_id = \"c\"\n[key]\ntree_height = \"ten\"\n",
        )
        .unwrap();
        let e = format!("{:#}", build(&["--from", f]).unwrap_err());
        assert!(e.contains("invalid parameter"), "{e}");
        std::fs::write(&toml_file, "chain_id = [").unwrap();
        let e = format!("{:#}", build(&["--from", f]).unwrap_err());
        assert!(e.contains("is not valid TOML"), "{e}");
        let e = format!("{:#}", build(&["--from", "/nonexistent.toml"]).unwrap_err());
        assert!(e.contains("cannot read /nonexistent.toml"), "{e}");
    }

    #[test]
    fn each_bad_parameter_is_refused_by_name() {
        let p = peer();
        let v = format!("{p}=1={X25519}");
        let v0 = format!("{p}=0={X25519}");
        let cases: &[(&[&str], &str)] = &[
            (&[], "no chain id"),
            (
                &["--leaf-threshold", "4", "--leaf-holders", "3"],
                "key.leaf_threshold 4",
            ),
            (&["--leaf-threshold", "0"], "key.leaf_threshold 0"),
            (
                &["--ack-threshold", "1", "--leaf-threshold", "2"],
                "key.ack_threshold 1",
            ),
            (
                &["--ack-threshold", "4", "--leaf-holders", "3"],
                "key.ack_threshold 4",
            ),
            (
                &["--tree-height", "12"],
                "key.tree_height 12 must be 5, 10, 15, 20 or 25",
            ),
            (&["--tree-height", "30"], "key.tree_height 30"),
            (
                &["--tree-height", "5", "--sector-bits", "5"],
                "key.sector_bits 5",
            ),
            (
                &["--tree-height", "25", "--sector-bits", "21"],
                "key.sector_bits 21",
            ),
            (
                &[
                    "--tree-height",
                    "5",
                    "--sector-bits",
                    "2",
                    "--audit-leaves",
                    "8",
                ],
                "key.audit_leaves 8",
            ),
            (&["--rotate-percent", "101"], "key.rotate_percent 101"),
            (&["--sector-window", "0"], "key.sector_window"),
            (
                &["--eviction-missed-heights", "0"],
                "key.eviction_missed_heights",
            ),
            (&["--dkg-round1-blocks", "0"], "epochs.dkg_round1_blocks"),
            (
                &["--dkg-complaint-blocks", "3"],
                "epochs.dkg_complaint_blocks 3 must be at least 4",
            ),
            (&["--epoch-min-blocks", "0"], "epochs.epoch_min_blocks"),
            (
                &["--checkpoint-attempt-blocks", "0"],
                "epochs.checkpoint_attempt_blocks",
            ),
            (&["--difficulty", "255"], "pow_difficulty 255"),
            (&["--validator", &v0], "zero stake"),
            (&["--validator", &v, "--validator", &v], "listed twice"),
        ];
        for (flags, why) in cases {
            let mut all = flags.to_vec();
            if *why != "no chain id" {
                all.extend_from_slice(&["--chain-id", "c"]);
            }
            let e = format!("{:#}", build(&all).unwrap_err());
            assert!(e.contains(why), "{flags:?}: {e}");
        }
        // The edge values themselves are accepted.
        build(&[
            "--chain-id",
            "c",
            "--dkg-complaint-blocks",
            "4",
            "--tree-height",
            "5",
            "--sector-bits",
            "4",
            "--audit-leaves",
            "1",
            "--rotate-percent",
            "100",
        ])
        .unwrap();
    }

    #[test]
    fn malformed_validator_or_client_is_a_clear_usage_error() {
        let peer = peer();
        let cases: [(&str, String, &str); 9] = [
            ("--validator", "x".into(), "three parts"),
            ("--validator", "x=5".into(), "three parts"),
            ("--validator", format!("{peer}=5={X25519}=c"), "three parts"),
            (
                "--validator",
                format!("x=5={X25519}"),
                "is not a libp2p peer id",
            ),
            (
                "--validator",
                format!("{peer}=y={X25519}"),
                "stake \"y\" is not a whole number",
            ),
            ("--validator", format!("{peer}=5=ab"), "not 64 hex digits"),
            (
                "--validator",
                format!("{peer}=5={}", "zz".repeat(32)),
                "not 64 hex digits",
            ),
            (
                "--client",
                "00=5".into(),
                "neither 64 hex digits nor a peer id",
            ),
            (
                "--client",
                format!("{peer}=many"),
                "quota \"many\" is not a whole number",
            ),
        ];
        for (flag, value, why) in cases {
            let err = parse(&["--chain-id", "c", flag, &value]).unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{value}"
            );
            let text = err.to_string();
            assert!(text.contains(flag), "{text}");
            assert!(text.contains(why), "{value}: {text}");
        }
    }

    #[test]
    fn it_writes_the_genesis_and_prints_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("genesis.toml");
        let p = peer();
        let v = format!("{p}=100={X25519}");
        let c = format!("{p}=9");
        let mut a = parse(&["--chain-id", "fed", "--validator", &v, "--client", &c]).unwrap();
        a.out = out.clone();
        let text = a.run().unwrap();
        let written = std::fs::read(&out).unwrap();
        let g = Genesis::load(&out).unwrap();
        assert_eq!(g, a.build().unwrap());
        assert!(text.contains(&format!("wrote {}", out.display())), "{text}");
        assert!(text.contains("chain id:         fed"), "{text}");
        let sha = hex::encode(Sha256::digest(&written));
        assert!(text.contains(&format!("file sha256:      {sha}")), "{text}");
        let hash = hex::encode(g.to_ledger().unwrap().hash());
        assert!(
            text.contains(&format!("genesis hash:     {hash}")),
            "{text}"
        );
        assert!(text.contains(&format!("{p} stake 100")), "{text}");
        assert!(text.contains(&format!("{p} quota 9 per epoch")), "{text}");
        assert!(
            text.contains("LMS height 10 (1024 one-time keys, LM-OTS W=4), 4 sectors of 256"),
            "{text}"
        );
        assert!(
            text.contains("2-of-3 (k-of-r), 3 acknowledgements"),
            "{text}"
        );
        // A refused genesis writes nothing.
        let bad = dir.path().join("bad.toml");
        let mut a = parse(&["--chain-id", "fed", "--dkg-complaint-blocks", "2"]).unwrap();
        a.out = bad.clone();
        assert!(a.run().is_err());
        assert!(!bad.exists());
    }
}
