//! `seedfed-bootstrap`: a light Kademlia bootstrap node and the genesis tool.
//!
//! The bootstrap node runs the node crate's network with `Role::Bootstrap`: the same admission
//! filter (it inserts only admitted peers into its routing table and is itself admitted by the
//! same proof-of-work), no consensus and no shares. Its identity is kept unencrypted (mode 0600)
//! in its home so it restarts unattended. It serves `/status`, `/metrics` and `/health`.
//!
//! Modules: `run_config` (`bootstrap.toml` and the `run` flags over it), `genesis_tool` (the
//! `genesis` command: parameters from a file and flags, checks, summary).

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use seedfed_node::genesis::Genesis;

mod genesis_tool;
mod run_config;

use genesis_tool::GenesisArgs;
use run_config::RunArgs;

/// seedfed bootstrap node and genesis tool.
#[derive(Debug, Parser)]
#[command(name = "seedfed-bootstrap", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Write a genesis file from a parameter file and flags, check it and print what it holds.
    Genesis(GenesisArgs),
    /// Run a bootstrap node (configuration: `<home>/bootstrap.toml`, overridden by flags).
    Run(RunArgs),
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

fn real_main(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Genesis(a) => {
            print!("{}", a.run()?);
            Ok(())
        }
        Cmd::Run(a) => {
            let effective = a.effective()?;
            if a.dump_config {
                print!("{}", effective.to_toml());
                return Ok(());
            }
            let genesis = Genesis::load(&effective.genesis)?;
            let config = effective.node_config();
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

    #[test]
    fn both_commands_parse() {
        let c = Cli::try_parse_from(["seedfed-bootstrap", "genesis", "--out", "g.toml"]).unwrap();
        assert!(matches!(c.command, Cmd::Genesis(_)));
        let c = Cli::try_parse_from(["seedfed-bootstrap", "run", "--home", "h"]).unwrap();
        assert!(matches!(c.command, Cmd::Run(_)));
        // The home is required; so is the output of `genesis`.
        assert!(Cli::try_parse_from(["seedfed-bootstrap", "run"]).is_err());
        assert!(Cli::try_parse_from(["seedfed-bootstrap", "genesis"]).is_err());
    }
}
