//! `seedfed-testnet`: runs a local federation.
//!
//! `simulate` runs the whole key life cycle in one process (see `simulate.rs`); `up` / `down`
//! start and stop a multi-process testnet on loopback (see `up.rs`).

use clap::{Parser, Subcommand};

use seedfed_testnet::simulate::{self, SimArgs};
use seedfed_testnet::up;

/// seedfed local federation tools.
#[derive(Debug, Parser)]
#[command(name = "seedfed-testnet", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Simulate the whole federation in one process (DKG, assignment, sectors, dealing, master
    /// key, MPC signing, repair) and write the public key and signatures to `--out`.
    Simulate(SimArgs),
    /// Start a bootstrap node and N nodes on loopback and wait until they admit each other.
    Up(up::UpArgs),
    /// Stop a testnet started by `up`.
    Down(up::DownArgs),
}

fn main() -> std::process::ExitCode {
    let r = match Cli::parse().command {
        Cmd::Simulate(args) => simulate::run(args).map(|_| ()),
        Cmd::Up(a) => up::up(a),
        Cmd::Down(a) => up::down(a),
    };
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
