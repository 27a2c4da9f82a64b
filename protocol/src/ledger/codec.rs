//! The canonical binary encoding of ledger values.
//!
//! Guarantees: one value has one encoding (postcard 1; every map in the ledger is a `BTreeMap`,
//! so maps encode in key order), and [`decode`] accepts exactly the encodings of [`encode`],
//! with no trailing bytes. postcard alone also accepts overlong varints and maps with keys out
//! of order or repeated, so [`decode`] re-encodes what it decoded and refuses any other byte
//! string: the same value cannot arrive under two byte strings (a gossip message id is a hash
//! of the bytes; fuzzing found the gap). Hashes are also taken over the encoding of the
//! *decoded* value.

use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::Zeroizing;

/// The canonical binary encoding of ledger values: postcard 1 (varint integers, length-prefixed
/// sequences and strings, maps in key order because every map is a `BTreeMap`). Hashes are
/// always computed over this encoding of the *decoded* value, so a non-canonical byte string
/// on the wire cannot give a second hash for the same value.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value)
        .unwrap_or_else(|_| unreachable!("postcard encoding of in-memory values cannot fail"))
}

/// [`encode`] of a value that holds secrets: the same bytes, written into a buffer sized
/// beforehand (no reallocation leaves a partial copy behind) and wiped on drop.
pub fn encode_secret<T: Serialize>(value: &T) -> Zeroizing<Vec<u8>> {
    let size = postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default())
        .unwrap_or_else(|_| unreachable!("postcard encoding of in-memory values cannot fail"));
    let mut out = Zeroizing::new(vec![0u8; size]);
    let written = postcard::to_slice(value, &mut out[..])
        .unwrap_or_else(|_| unreachable!("the buffer has the measured size"))
        .len();
    debug_assert_eq!(written, size);
    out
}

/// Decodes a value encoded by [`encode`]; trailing bytes and any byte string other than the
/// value's canonical encoding (overlong integers, map keys out of order or repeated) are errors.
pub fn decode<T: Serialize + for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, DecodeError> {
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(|e| DecodeError(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError(format!("{} trailing bytes", rest.len())));
    }
    let canonical = postcard::serialize_with_flavor(
        &value,
        SameAs {
            expected: bytes,
            at: 0,
        },
    )
    .unwrap_or(false);
    if !canonical {
        return Err(DecodeError("not the canonical encoding".into()));
    }
    Ok(value)
}

/// A postcard output that compares what is written with `expected` instead of keeping it: the
/// canonical-encoding check allocates nothing and copies nothing (the value may hold secrets).
struct SameAs<'a> {
    expected: &'a [u8],
    at: usize,
}

impl postcard::ser_flavors::Flavor for SameAs<'_> {
    type Output = bool;

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.try_extend(&[byte])
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        let end = self.at + data.len();
        if self.expected.get(self.at..end) != Some(data) {
            // Stops the encoding at the first difference.
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.at = end;
        Ok(())
    }

    fn finalize(self) -> postcard::Result<bool> {
        Ok(self.at == self.expected.len())
    }
}

/// A byte string that is not a valid encoding of the expected type.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("malformed ledger encoding: {0}")]
pub struct DecodeError(pub String);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn canonical_encodings_round_trip() {
        let v: (u64, BTreeMap<u32, Vec<u8>>) = (300, [(1, vec![7]), (2, vec![])].into());
        assert_eq!(decode::<(u64, BTreeMap<u32, Vec<u8>>)>(&encode(&v)), Ok(v));
    }

    /// Found by the `api_body` and `consensus_message` fuzz targets: postcard accepted an
    /// overlong varint (here 0x3fff as three bytes instead of two).
    #[test]
    fn overlong_integers_are_refused() {
        assert_eq!(encode(&(0x3fffu64, Vec::<u8>::new())), [0xff, 0x7f, 0]);
        let overlong = [0xff, 0xff, 0x00, 0x00];
        assert!(decode::<(u64, Vec<u8>)>(&overlong).is_err());
        // An overlong length prefix too.
        assert!(decode::<Vec<u8>>(&[0x81, 0x00, 0x05]).is_err());
    }

    /// Found by the `ledger_state` fuzz target: a map with keys out of order or repeated
    /// decoded (into the sorted map) instead of being refused.
    #[test]
    fn maps_out_of_order_or_repeated_are_refused() {
        let sorted = encode(&BTreeMap::from([(1u8, 10u8), (2, 20)]));
        assert_eq!(sorted, [2, 1, 10, 2, 20]);
        assert!(decode::<BTreeMap<u8, u8>>(&[2, 2, 20, 1, 10]).is_err());
        assert!(decode::<BTreeMap<u8, u8>>(&[2, 1, 10, 1, 11]).is_err());
    }
}
