//! The input of the epoch beacon.
//!
//! The beacon of epoch `e` is the threshold PRF of [`beacon_input`]`(chain digest, e)` under the
//! ristretto255 key of the DKG completed in epoch `e - 1`. Guarantees: the input is a fixed,
//! labelled encoding of the chain digest and the epoch number, the same on every node.

const BEACON_LABEL: &[u8] = b"seedfed-beacon/v1";

/// The threshold-PRF input of the beacon of `epoch`: `"seedfed-beacon/v1" ‖ chain digest ‖
/// u64le(epoch)`.
pub fn beacon_input(chain_digest: &[u8; 32], epoch: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(BEACON_LABEL.len() + 40);
    v.extend_from_slice(BEACON_LABEL);
    v.extend_from_slice(chain_digest);
    v.extend_from_slice(&epoch.to_le_bytes());
    v
}
