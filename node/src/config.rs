//! Node configuration: `config.toml` in the home directory, overridden by environment variables
//! `SEEDFED__SECTION__KEY` (e.g. `SEEDFED__NETWORK__BOOTSTRAP='["/ip4/1.2.3.4/tcp/4001"]'`).
//! Layers, later wins: built-in defaults, the TOML file, the environment. Unknown keys are errors
//! (a typo must not silently fall back to a default); relative paths are relative to the home.
//!
//! Operator view (sections, overrides, `--dump-config`): `docs/operator-guide.md`.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Name of the config file inside the home directory.
pub const CONFIG_FILE: &str = "config.toml";
/// Environment variable prefix for overrides.
pub const ENV_PREFIX: &str = "SEEDFED__";

/// The whole configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Files and directories.
    pub node: NodeSection,
    /// Peer-to-peer networking.
    pub network: NetworkSection,
    /// Consensus timing.
    pub consensus: ConsensusSection,
    /// Local HTTP API (status, metrics, health).
    pub api: ApiSection,
    /// Logging.
    pub log: LogSection,
}

/// `[node]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSection {
    /// Genesis file. Env: `SEEDFED__NODE__GENESIS`.
    pub genesis: PathBuf,
    /// Encrypted keystore. Env: `SEEDFED__NODE__KEYSTORE`.
    pub keystore: PathBuf,
    /// Data directory (the durable store lives here). Env: `SEEDFED__NODE__DATA_DIR`.
    pub data_dir: PathBuf,
}

impl Default for NodeSection {
    fn default() -> Self {
        Self {
            genesis: "genesis.toml".into(),
            keystore: "keystore.json".into(),
            data_dir: "data".into(),
        }
    }
}

/// `[network]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSection {
    /// Listen multiaddresses (TCP). Env: `SEEDFED__NETWORK__LISTEN`.
    pub listen: Vec<String>,
    /// Multiaddresses other hosts should dial to reach this node (its public or LAN address,
    /// a forwarded port), without `/p2p/`. Set: peers learn only these; empty: peers learn
    /// the listen addresses of every interface. Env: `SEEDFED__NETWORK__ANNOUNCE`.
    pub announce: Vec<String>,
    /// Bootstrap multiaddresses, each ending in `/p2p/<peer id>`. Env: `SEEDFED__NETWORK__BOOTSTRAP`.
    pub bootstrap: Vec<String>,
    /// Maximum established connections. Env: `SEEDFED__NETWORK__MAX_CONNECTIONS`.
    pub max_connections: u32,
    /// Of those, slots only ledger validators may take.
    /// Env: `SEEDFED__NETWORK__RESERVED_VALIDATOR_SLOTS`.
    pub reserved_validator_slots: u32,
    /// Inbound connections of non-validators from one IP address.
    /// Env: `SEEDFED__NETWORK__MAX_CONNECTIONS_PER_IP`.
    pub max_connections_per_ip: u32,
    /// Inbound connections of non-validators from one /24 (IPv4) or /48 (IPv6).
    /// Env: `SEEDFED__NETWORK__MAX_CONNECTIONS_PER_SUBNET`.
    pub max_connections_per_subnet: u32,
    /// Loopback peers skip the per-IP and per-subnet caps.
    /// Env: `SEEDFED__NETWORK__EXEMPT_LOOPBACK`.
    pub exempt_loopback: bool,
    /// Maximum established connections per peer. Env: `SEEDFED__NETWORK__MAX_CONNECTIONS_PER_PEER`.
    pub max_connections_per_peer: u32,
    /// Maximum pending (handshaking) connections each way. Env: `SEEDFED__NETWORK__MAX_PENDING`.
    pub max_pending: u32,
    /// Refuse new connections above this fraction of system memory in use.
    /// Env: `SEEDFED__NETWORK__MAX_MEMORY_FRACTION`.
    pub max_memory_fraction: f64,
    /// Maximum gossip message size in bytes. Env: `SEEDFED__NETWORK__GOSSIP_MAX_BYTES`.
    pub gossip_max_bytes: usize,
    /// Maximum request/response size in bytes. Env: `SEEDFED__NETWORK__REQUEST_MAX_BYTES`.
    pub request_max_bytes: u64,
    /// Requests (`/seedfed/rpc/2`: block sync, the key protocols' direct messages) each peer
    /// may send per second, sustained. Env: `SEEDFED__NETWORK__RPC_REQUESTS_PER_SEC`.
    pub rpc_requests_per_sec: u32,
    /// Requests each peer may send at once after a quiet spell.
    /// Env: `SEEDFED__NETWORK__RPC_REQUEST_BURST`.
    pub rpc_request_burst: u32,
    /// Seconds a new peer has to present a valid admission record.
    /// Env: `SEEDFED__NETWORK__ADMISSION_TIMEOUT_SECS`.
    pub admission_timeout_secs: u64,
    /// Seconds between discovery rounds (Kademlia walks, redials).
    /// Env: `SEEDFED__NETWORK__DISCOVERY_INTERVAL_SECS`.
    pub discovery_interval_secs: u64,
    /// Seconds an idle connection stays open. Env: `SEEDFED__NETWORK__IDLE_TIMEOUT_SECS`.
    pub idle_timeout_secs: u64,
    /// Seconds `run` waits, on a first start, for a bootstrap node before giving up.
    /// Env: `SEEDFED__NETWORK__BOOTSTRAP_TIMEOUT_SECS`.
    pub bootstrap_timeout_secs: u64,
}

impl Default for NetworkSection {
    fn default() -> Self {
        Self {
            listen: vec!["/ip4/0.0.0.0/tcp/4001".into()],
            announce: vec![],
            bootstrap: vec![],
            max_connections: 128,
            reserved_validator_slots: 32,
            max_connections_per_ip: 8,
            max_connections_per_subnet: 32,
            exempt_loopback: true,
            max_connections_per_peer: 2,
            max_pending: 32,
            max_memory_fraction: 0.9,
            gossip_max_bytes: 1 << 20,
            request_max_bytes: 4 << 20,
            rpc_requests_per_sec: crate::network::DEFAULT_RPC_RATE.per_second,
            rpc_request_burst: crate::network::DEFAULT_RPC_RATE.burst,
            admission_timeout_secs: 10,
            discovery_interval_secs: 30,
            idle_timeout_secs: 3600,
            bootstrap_timeout_secs: 30,
        }
    }
}

/// `[consensus]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusSection {
    /// Least time between two blocks we propose. Env: `SEEDFED__CONSENSUS__BLOCK_INTERVAL_MS`.
    pub block_interval_ms: u64,
    /// Time to wait for a proposal in round 0 *after the block interval* (the proposer holds
    /// its proposal that long, so the timeout counts from when it may propose; see
    /// [`ConsensusSection::propose_timeout`]); each later round adds half of this (Malachite's
    /// `LinearTimeouts` with `propose_delta` = this / 2, capped at 60 s).
    /// Env: `SEEDFED__CONSENSUS__PROPOSE_TIMEOUT_MS`.
    pub propose_timeout_ms: u64,
    /// Time to wait for more votes after a quorum for anything (prevote and precommit steps);
    /// each later round adds Malachite's default 500 ms.
    /// Env: `SEEDFED__CONSENSUS__VOTE_TIMEOUT_MS`.
    pub vote_timeout_ms: u64,
    /// A node that decided nothing for twice this long asks a peer for blocks.
    /// Env: `SEEDFED__CONSENSUS__SYNC_INTERVAL_MS`.
    pub sync_interval_ms: u64,
}

impl ConsensusSection {
    /// The round-0 propose timeout consensus runs with: the block interval plus
    /// `propose_timeout_ms`, so a block interval longer than the configured timeout never makes
    /// every validator give up on an honest proposer that is still holding its proposal.
    pub fn propose_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(
            self.block_interval_ms
                .saturating_add(self.propose_timeout_ms),
        )
    }
}

impl Default for ConsensusSection {
    fn default() -> Self {
        Self {
            block_interval_ms: 200,
            propose_timeout_ms: 2000,
            vote_timeout_ms: 1000,
            sync_interval_ms: 1000,
        }
    }
}

/// `[api]`: where the local HTTP API listens and who it answers (`api::access`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// Address of the local HTTP API (`/status`, `/metrics`, `/health`, `POST /tx`, `/sign`).
    /// A non-loopback address is refused unless `allow_remote` and `token_file` are set.
    /// Env: `SEEDFED__API__LISTEN`.
    pub listen: String,
    /// Allow a non-loopback `listen` address and requests naming other hosts (IP addresses and
    /// `allowed_hosts`); needs `token_file`. Env: `SEEDFED__API__ALLOW_REMOTE`.
    pub allow_remote: bool,
    /// A file (owner only, mode 0600, not a symlink) holding the bearer token every request
    /// must then carry (`Authorization: Bearer <token>`, at least 16 visible characters).
    /// Env: `SEEDFED__API__TOKEN_FILE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// With `allow_remote`: host names (no port) requests may name besides loopback and IP
    /// addresses, e.g. the name clients use to reach this machine.
    /// Env: `SEEDFED__API__ALLOWED_HOSTS`.
    pub allowed_hosts: Vec<String>,
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9400".into(),
            allow_remote: false,
            token_file: None,
            allowed_hosts: vec![],
        }
    }
}

/// `[log]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// `tracing` filter directive (`RUST_LOG` wins if set). Env: `SEEDFED__LOG__FILTER`.
    pub filter: String,
    /// `plain` or `json`. Env: `SEEDFED__LOG__FORMAT`.
    pub format: LogFormat,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            filter: crate::logging::DEFAULT_FILTER.into(),
            format: LogFormat::Plain,
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

/// Why the configuration could not be loaded.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The config file is missing.
    #[error("config file {0} not found (run `seedfed init` first)")]
    Missing(String),
    /// The file or an override is invalid.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads `home/config.toml` with environment overrides.
    pub fn load(home: &Path) -> Result<Self, ConfigError> {
        let path = home.join(CONFIG_FILE);
        if !path.exists() {
            return Err(ConfigError::Missing(path.display().to_string()));
        }
        Self::figment(&path).extract().map_err(|e| {
            ConfigError::Invalid(e.to_string().lines().next().unwrap_or_default().to_string())
        })
    }

    fn figment(path: &Path) -> Figment {
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(path))
            .merge(Env::prefixed(ENV_PREFIX).split("__"))
    }

    /// Resolves a path from the config against the home directory.
    pub fn resolve(home: &Path, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            home.join(p)
        }
    }

    /// The effective configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// A commented `config.toml` for `seedfed init`, documenting each key's env override.
    pub fn commented_toml(&self) -> String {
        let q = |s: &str| toml::Value::String(s.to_string()).to_string();
        let list = |v: &[String]| {
            let items: Vec<String> = v.iter().map(|s| q(s)).collect();
            format!("[{}]", items.join(", "))
        };
        let n = &self.network;
        format!(
            r#"# seedfed node configuration. Every key can be overridden by an environment variable
# SEEDFED__<SECTION>__<KEY> (named next to each key); `seedfed run --dump-config` prints
# the effective configuration. Relative paths are relative to the home directory.

[node]
# SEEDFED__NODE__GENESIS: the federation's genesis file
genesis = {genesis}
# SEEDFED__NODE__KEYSTORE: encrypted identity keys (mode 0600)
keystore = {keystore}
# SEEDFED__NODE__DATA_DIR: the durable store
data_dir = {data_dir}

[network]
# SEEDFED__NETWORK__LISTEN: listen multiaddresses (TCP)
listen = {listen}
# SEEDFED__NETWORK__ANNOUNCE: addresses other hosts dial to reach this node (e.g.
# "/ip4/203.0.113.7/tcp/4001"); empty: the listen addresses of every interface
announce = {announce}
# SEEDFED__NETWORK__BOOTSTRAP: bootstrap multiaddresses ending in /p2p/<peer id>
bootstrap = {bootstrap}
# SEEDFED__NETWORK__MAX_CONNECTIONS: maximum established connections
max_connections = {max_connections}
# SEEDFED__NETWORK__RESERVED_VALIDATOR_SLOTS: of those, slots only ledger validators may take
reserved_validator_slots = {reserved}
# SEEDFED__NETWORK__MAX_CONNECTIONS_PER_IP: inbound connections of non-validators per IP
max_connections_per_ip = {per_ip}
# SEEDFED__NETWORK__MAX_CONNECTIONS_PER_SUBNET: ... per /24 (IPv4) or /48 (IPv6)
max_connections_per_subnet = {per_subnet}
# SEEDFED__NETWORK__EXEMPT_LOOPBACK: loopback peers skip the per-IP and per-subnet caps
exempt_loopback = {exempt_loopback}
# SEEDFED__NETWORK__MAX_CONNECTIONS_PER_PEER
max_connections_per_peer = {per_peer}
# SEEDFED__NETWORK__MAX_PENDING: maximum handshaking connections each way
max_pending = {max_pending}
# SEEDFED__NETWORK__MAX_MEMORY_FRACTION: refuse connections above this fraction of memory in use
max_memory_fraction = {mem}
# SEEDFED__NETWORK__GOSSIP_MAX_BYTES: largest gossip message
gossip_max_bytes = {gossip}
# SEEDFED__NETWORK__REQUEST_MAX_BYTES: largest request or response
request_max_bytes = {request}
# SEEDFED__NETWORK__RPC_REQUESTS_PER_SEC: requests each peer may send per second, sustained
rpc_requests_per_sec = {rpc_rate}
# SEEDFED__NETWORK__RPC_REQUEST_BURST: requests each peer may send at once
rpc_request_burst = {rpc_burst}
# SEEDFED__NETWORK__ADMISSION_TIMEOUT_SECS: time a new peer has to prove admission
admission_timeout_secs = {adm}
# SEEDFED__NETWORK__DISCOVERY_INTERVAL_SECS: period of Kademlia walks and redials
discovery_interval_secs = {disc}
# SEEDFED__NETWORK__IDLE_TIMEOUT_SECS: idle connection timeout
idle_timeout_secs = {idle}
# SEEDFED__NETWORK__BOOTSTRAP_TIMEOUT_SECS: on a first start, give up if no bootstrap node answers
bootstrap_timeout_secs = {boot_to}

[consensus]
# SEEDFED__CONSENSUS__BLOCK_INTERVAL_MS: least time between two blocks this node proposes
block_interval_ms = {block_interval}
# SEEDFED__CONSENSUS__PROPOSE_TIMEOUT_MS: wait for a proposal (round 0; grows per round)
propose_timeout_ms = {propose}
# SEEDFED__CONSENSUS__VOTE_TIMEOUT_MS: wait for more votes after a quorum for anything
vote_timeout_ms = {vote}
# SEEDFED__CONSENSUS__SYNC_INTERVAL_MS: ask a peer for blocks after twice this without a decision
sync_interval_ms = {sync}

[api]
# SEEDFED__API__LISTEN: local HTTP API (/status, /metrics, /health, POST /tx, /sign); keep it
# on loopback: another address is refused unless allow_remote and token_file are set
listen = {api}
# SEEDFED__API__ALLOW_REMOTE: serve the API beyond loopback (needs token_file)
allow_remote = {allow_remote}
# SEEDFED__API__TOKEN_FILE: a file (mode 0600) with the bearer token every request must carry
{token_file}
# SEEDFED__API__ALLOWED_HOSTS: with allow_remote, host names requests may name (IP addresses
# and loopback names always may)
allowed_hosts = {allowed_hosts}

[log]
# SEEDFED__LOG__FILTER: tracing filter (RUST_LOG wins if set); the consensus library logs
# every vote at INFO: add ",arc_malachitebft_core_consensus=info" to see them
filter = {filter}
# SEEDFED__LOG__FORMAT: plain or json
format = {format}
"#,
            genesis = q(&self.node.genesis.display().to_string()),
            keystore = q(&self.node.keystore.display().to_string()),
            data_dir = q(&self.node.data_dir.display().to_string()),
            listen = list(&n.listen),
            announce = list(&n.announce),
            bootstrap = list(&n.bootstrap),
            max_connections = n.max_connections,
            reserved = n.reserved_validator_slots,
            per_ip = n.max_connections_per_ip,
            per_subnet = n.max_connections_per_subnet,
            exempt_loopback = n.exempt_loopback,
            per_peer = n.max_connections_per_peer,
            max_pending = n.max_pending,
            mem = toml::Value::Float(n.max_memory_fraction),
            gossip = n.gossip_max_bytes,
            request = n.request_max_bytes,
            rpc_rate = n.rpc_requests_per_sec,
            rpc_burst = n.rpc_request_burst,
            adm = n.admission_timeout_secs,
            disc = n.discovery_interval_secs,
            idle = n.idle_timeout_secs,
            boot_to = n.bootstrap_timeout_secs,
            block_interval = self.consensus.block_interval_ms,
            propose = self.consensus.propose_timeout_ms,
            vote = self.consensus.vote_timeout_ms,
            sync = self.consensus.sync_interval_ms,
            api = q(&self.api.listen),
            allow_remote = self.api.allow_remote,
            token_file = match &self.api.token_file {
                Some(f) => format!("token_file = {}", q(&f.display().to_string())),
                None => "# token_file = \"api.token\"".to_string(),
            },
            allowed_hosts = list(&self.api.allowed_hosts),
            filter = q(&self.log.filter),
            format = q(match self.log.format {
                LogFormat::Plain => "plain",
                LogFormat::Json => "json",
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commented_template_parses_back_to_the_same_config() {
        let mut c = Config::default();
        c.network.bootstrap = vec!["/ip4/127.0.0.1/tcp/1/p2p/x".into()];
        c.network.announce = vec!["/ip4/203.0.113.7/tcp/4001".into()];
        c.log.format = LogFormat::Json;
        let back: Config = toml::from_str(&c.commented_toml()).unwrap();
        assert_eq!(back, c);
        let dumped: Config = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(dumped, c);
        c.api.allow_remote = true;
        c.api.token_file = Some("/etc/seedfed/api.token".into());
        c.api.allowed_hosts = vec!["node.example".into()];
        let back: Config = toml::from_str(&c.commented_toml()).unwrap();
        assert_eq!(back, c);
        let dumped: Config = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(dumped, c);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "[network]\nlisten_typo = []\n",
        )
        .unwrap();
        assert!(matches!(
            Config::load(dir.path()),
            Err(ConfigError::Invalid(_))
        ));
        assert!(matches!(
            Config::load(&dir.path().join("nope")),
            Err(ConfigError::Missing(_))
        ));
    }

    #[test]
    fn the_propose_timeout_counts_from_the_end_of_the_block_interval() {
        // Before: the timeout was `propose_timeout_ms` from round start, so a 3 s block
        // interval with the 2 s default made every validator time out before the proposer
        // proposed, and every height was decided in round 1.
        let mut c = ConsensusSection {
            block_interval_ms: 3000,
            ..ConsensusSection::default()
        };
        assert!(c.propose_timeout() > std::time::Duration::from_millis(c.block_interval_ms));
        assert_eq!(
            c.propose_timeout(),
            std::time::Duration::from_millis(3000 + c.propose_timeout_ms)
        );
        c.block_interval_ms = u64::MAX;
        assert_eq!(
            c.propose_timeout(),
            std::time::Duration::from_millis(u64::MAX)
        );
    }
}
