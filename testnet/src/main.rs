//! `seedfed-testnet`: runs a local federation.
fn main() -> anyhow::Result<()> {
    anyhow::bail!("seedfed-testnet: simulate is not implemented yet")
}
