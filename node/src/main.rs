//! `seedfed`: the federation node binary.
//!
//! The networked node is being built (issue 3); until it lands every subcommand says so and
//! exits non-zero rather than pretending to run.

use clap::Parser;

/// seedfed federation node.
#[derive(Debug, Parser)]
#[command(name = "seedfed", version)]
struct Cli {
    /// Node home directory.
    #[arg(long, global = true, default_value = "~/.seedfed")]
    home: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    anyhow::bail!(
        "the networked node is not implemented yet (home {}); use `seedfed-testnet simulate`",
        cli.home
    )
}
