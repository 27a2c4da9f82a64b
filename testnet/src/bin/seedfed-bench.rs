//! `seedfed-bench`: side-by-side benchmarks.
fn main() -> anyhow::Result<()> {
    anyhow::bail!("seedfed-bench: not implemented yet")
}
