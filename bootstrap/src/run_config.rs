//! `seedfed-bootstrap run`'s configuration: `<home>/bootstrap.toml` (the node's `[network]`,
//! `[api]` and `[log]` sections plus the genesis path), overridden by command-line flags.
//!
//! Precedence, later wins: built-in defaults, the file, the flags. A missing file is the
//! defaults (so flags alone still work); a file that does not parse, or names an unknown key,
//! is an error naming the file and the key: a typo must not silently fall back to a default.
//! Relative paths in the file are relative to the home, on the command line to the working
//! directory.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use seedfed_node::config::{ApiSection, Config, LogFormat, LogSection, NetworkSection};
use serde::{Deserialize, Serialize};

/// The config file's name inside the home.
pub const CONFIG_FILE: &str = "bootstrap.toml";

/// The bootstrap node's configuration file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BootstrapConfig {
    /// The federation's genesis file.
    pub genesis: PathBuf,
    /// Peer-to-peer networking (the node's keys; `listen`, `announce`, `bootstrap`, limits).
    pub network: NetworkSection,
    /// Local HTTP API (`/status`, `/metrics`, `/health`).
    pub api: ApiSection,
    /// Logging.
    pub log: LogSection,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            genesis: "genesis.toml".into(),
            network: NetworkSection {
                listen: vec!["/ip4/0.0.0.0/tcp/4000".into()],
                ..NetworkSection::default()
            },
            api: ApiSection {
                listen: "127.0.0.1:9300".into(),
                ..ApiSection::default()
            },
            log: LogSection::default(),
        }
    }
}

/// `seedfed-bootstrap run`: each flag, when given, overrides the config file.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Home directory (identity, peers file, API address file, `bootstrap.toml`).
    #[arg(long)]
    pub home: PathBuf,
    /// Config file (default `<home>/bootstrap.toml`; then it may be absent). A file named here
    /// must exist.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print the effective configuration (file + flags) as TOML and exit.
    #[arg(long)]
    pub dump_config: bool,
    /// The federation's genesis file (`genesis`; default `<home>/genesis.toml`).
    #[arg(long)]
    pub genesis: Option<PathBuf>,
    /// Listen multiaddresses (`network.listen`; default TCP port 4000).
    #[arg(long)]
    pub listen: Vec<String>,
    /// Addresses other hosts dial to reach this node (`network.announce`).
    #[arg(long)]
    pub announce: Vec<String>,
    /// Other bootstrap nodes (`network.bootstrap`).
    #[arg(long)]
    pub bootstrap: Vec<String>,
    /// Local API address (`api.listen`; default 127.0.0.1:9300). A non-loopback address
    /// needs `--api-allow-remote` and `--api-token-file`.
    #[arg(long)]
    pub api_listen: Option<String>,
    /// Serve the API beyond loopback (`api.allow_remote`; needs a token file).
    #[arg(long)]
    pub api_allow_remote: bool,
    /// A file (mode 0600) holding the bearer token every API request must carry
    /// (`api.token_file`).
    #[arg(long)]
    pub api_token_file: Option<PathBuf>,
    /// With `--api-allow-remote`: a host name API requests may name (repeatable;
    /// `api.allowed_hosts`).
    #[arg(long)]
    pub api_allowed_host: Vec<String>,
    /// Seconds between discovery rounds (`network.discovery_interval_secs`).
    #[arg(long)]
    pub discovery_interval_secs: Option<u64>,
    /// Log filter (`log.filter`; RUST_LOG wins).
    #[arg(long)]
    pub log_filter: Option<String>,
    /// Log as JSON lines (`log.format = "json"`).
    #[arg(long)]
    pub log_json: bool,
}

impl RunArgs {
    /// The effective configuration: defaults, then the file, then the flags. Paths in the
    /// result are absolute or relative to the working directory.
    pub fn effective(&self) -> anyhow::Result<BootstrapConfig> {
        let (path, required) = match &self.config {
            Some(p) => (p.clone(), true),
            None => (self.home.join(CONFIG_FILE), false),
        };
        let mut c = BootstrapConfig::load(&path, required)?;
        // Paths from the file are relative to the home (`api.token_file` is resolved against
        // the home by the node library itself).
        c.genesis = Config::resolve(&self.home, &c.genesis);
        if let Some(g) = &self.genesis {
            c.genesis = g.clone();
        }
        if !self.listen.is_empty() {
            c.network.listen = self.listen.clone();
        }
        if !self.announce.is_empty() {
            c.network.announce = self.announce.clone();
        }
        if !self.bootstrap.is_empty() {
            c.network.bootstrap = self.bootstrap.clone();
        }
        if let Some(a) = &self.api_listen {
            c.api.listen = a.clone();
        }
        if self.api_allow_remote {
            c.api.allow_remote = true;
        }
        if let Some(t) = &self.api_token_file {
            // Relative to the working directory, as usual for a command-line path.
            c.api.token_file = Some(std::path::absolute(t).context("invalid --api-token-file")?);
        }
        if !self.api_allowed_host.is_empty() {
            c.api.allowed_hosts = self.api_allowed_host.clone();
        }
        if let Some(s) = self.discovery_interval_secs {
            c.network.discovery_interval_secs = s;
        }
        if let Some(f) = &self.log_filter {
            c.log.filter = f.clone();
        }
        if self.log_json {
            c.log.format = LogFormat::Json;
        }
        Ok(c)
    }
}

impl BootstrapConfig {
    /// Reads `path`; a missing file is the defaults unless `required`.
    pub fn load(path: &Path, required: bool) -> anyhow::Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Self::default())
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        match toml::from_str(&text) {
            Ok(c) => Ok(c),
            Err(e) => bail!(
                "invalid config file {}: {}",
                path.display(),
                e.to_string().trim()
            ),
        }
    }

    /// The node library's configuration for `run_bootstrap` (its `[node]` section unused).
    pub fn node_config(&self) -> Config {
        Config {
            network: self.network.clone(),
            api: self.api.clone(),
            log: self.log.clone(),
            ..Config::default()
        }
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cmd {
        #[command(flatten)]
        run: RunArgs,
    }

    fn args(extra: &[&str]) -> RunArgs {
        let mut v = vec!["run"];
        v.extend_from_slice(extra);
        Cmd::try_parse_from(v).unwrap().run
    }

    #[test]
    fn without_a_file_the_defaults_and_flags_apply() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        let c = args(&["--home", home]).effective().unwrap();
        assert_eq!(c.genesis, dir.path().join("genesis.toml"));
        assert_eq!(c.network.listen[0], "/ip4/0.0.0.0/tcp/4000");
        assert_eq!(c.api.listen, "127.0.0.1:9300");
        assert!(c.network.announce.is_empty());
        let c = args(&[
            "--home",
            home,
            "--genesis",
            "/g.toml",
            "--listen",
            "/ip4/10.0.0.1/tcp/7",
        ])
        .effective()
        .unwrap();
        assert_eq!(c.genesis, PathBuf::from("/g.toml"));
        assert_eq!(c.network.listen, vec!["/ip4/10.0.0.1/tcp/7".to_string()]);
    }

    #[test]
    fn the_file_is_read_and_flags_override_it() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            r#"genesis = "chain/genesis.toml"
[network]
listen = ["/ip4/10.0.0.1/tcp/4000"]
announce = ["/ip4/203.0.113.7/tcp/4000"]
discovery_interval_secs = 5
[api]
listen = "127.0.0.1:9555"
[log]
filter = "debug"
format = "json"
"#,
        )
        .unwrap();
        let c = args(&["--home", home]).effective().unwrap();
        assert_eq!(c.genesis, dir.path().join("chain/genesis.toml"));
        assert_eq!(c.network.listen, vec!["/ip4/10.0.0.1/tcp/4000".to_string()]);
        assert_eq!(
            c.network.announce,
            vec!["/ip4/203.0.113.7/tcp/4000".to_string()]
        );
        assert_eq!(c.network.discovery_interval_secs, 5);
        assert_eq!(c.api.listen, "127.0.0.1:9555");
        assert_eq!(
            (c.log.filter.as_str(), c.log.format),
            ("debug", LogFormat::Json)
        );
        // Keys the file does not name keep their defaults.
        assert_eq!(
            c.network.max_connections,
            NetworkSection::default().max_connections
        );
        // Flags win over the file, key by key.
        let c = args(&[
            "--home",
            home,
            "--announce",
            "/ip4/198.51.100.1/tcp/4000",
            "--api-listen",
            "127.0.0.1:9666",
            "--discovery-interval-secs",
            "9",
            "--log-filter",
            "warn",
        ])
        .effective()
        .unwrap();
        assert_eq!(
            c.network.announce,
            vec!["/ip4/198.51.100.1/tcp/4000".to_string()]
        );
        assert_eq!(c.network.listen, vec!["/ip4/10.0.0.1/tcp/4000".to_string()]);
        assert_eq!(c.api.listen, "127.0.0.1:9666");
        assert_eq!(c.network.discovery_interval_secs, 9);
        assert_eq!(c.log.filter, "warn");
        assert_eq!(c.log.format, LogFormat::Json);
        // The dump parses back to the same configuration.
        let back: BootstrapConfig = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn a_bad_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        let file = dir.path().join(CONFIG_FILE);
        for (text, why) in [
            ("[network]\nlisten_typo = []\n", "listen_typo"),
            ("difficulty = 3\n", "difficulty"),
            ("[api]\nlisten = 5\n", "listen"),
            ("[network\n", "invalid"),
        ] {
            std::fs::write(&file, text).unwrap();
            let e = format!("{:#}", args(&["--home", home]).effective().unwrap_err());
            assert!(e.contains("invalid config file"), "{text}: {e}");
            assert!(e.contains(&file.display().to_string()), "{e}");
            assert!(e.contains(why), "{text}: {e}");
        }
        // A file named with --config must exist.
        let e = format!(
            "{:#}",
            args(&["--home", home, "--config", "/nonexistent/b.toml"])
                .effective()
                .unwrap_err()
        );
        assert!(e.contains("cannot read /nonexistent/b.toml"), "{e}");
    }
}
