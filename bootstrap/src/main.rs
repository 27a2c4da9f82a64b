//! `seedfed-bootstrap`: a light Kademlia bootstrap node and the genesis tool.
//!
//! Not implemented yet (issue 3): it exits non-zero with a clear message.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("seedfed-bootstrap is not implemented yet")
}
