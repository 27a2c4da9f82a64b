//! `seedfed-testnet`: runs a local federation.

use clap::{Parser, Subcommand};

use seedfed_testnet::simulate::{self, SimArgs};

/// Run a local seedfed federation.
#[derive(Debug, Parser)]
#[command(name = "seedfed-testnet", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulate the whole federation in one process (DKG, assignment, sectors, dealing, master
    /// key, MPC signing, repair) and write the public key and signatures to `--out`.
    Simulate(SimArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Simulate(args) => {
            simulate::run(args)?;
        }
    }
    Ok(())
}
