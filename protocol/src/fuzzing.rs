//! Entry points for the fuzz targets in `fuzz/` to decoders that are private to their modules
//! (compiled only with the `fuzzing` feature; not part of the API).
//!
//! Each function runs exactly the production decoder on attacker-chosen bytes and reports
//! what it decoded, so a target can check that decoding never panics and round-trips.

use crate::member::MemberId;

/// Decodes an agent's point-to-point message (what [`Agent::on_direct`] decodes first) and
/// returns its canonical re-encoding, or `None` if the bytes do not decode.
///
/// [`Agent::on_direct`]: crate::agent::Agent::on_direct
pub fn direct_reencode(bytes: &[u8]) -> Option<Vec<u8>> {
    crate::agent::direct_reencode(bytes)
}

/// Decodes `bytes` as a repair message's plaintext of `n` scalars (what a helper's opened
/// delta or sigma message holds); the number of scalars on success.
pub fn repair_plaintext(bytes: &[u8], n: usize) -> Result<usize, crate::repair::RepairError> {
    crate::repair::decode_scalars(bytes, n, MemberId([0; 32])).map(|v| v.len())
}
