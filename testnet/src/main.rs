//! `seedfed-testnet`: runs a local federation.
//!
//! `up` / `down` start and stop a multi-process testnet on loopback (see `up.rs`).

mod up;

use clap::{Parser, Subcommand};

/// seedfed local federation tools.
#[derive(Debug, Parser)]
#[command(name = "seedfed-testnet", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Start a bootstrap node and N nodes on loopback and wait until they admit each other.
    Up(up::UpArgs),
    /// Stop a testnet started by `up`.
    Down(up::DownArgs),
    /// In-process simulation (not implemented yet).
    Simulate,
}

fn main() -> std::process::ExitCode {
    let r = match Cli::parse().command {
        Cmd::Up(a) => up::up(a),
        Cmd::Down(a) => up::down(a),
        Cmd::Simulate => Err(anyhow::anyhow!(
            "seedfed-testnet: simulate is not implemented yet"
        )),
    };
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
