//! The canonical binary encoding of ledger values.
//!
//! Guarantees: one value has one encoding (postcard 1; every map in the ledger is a `BTreeMap`,
//! so maps encode in key order), and [`decode`] accepts exactly the encodings of [`encode`],
//! with no trailing bytes. Hashes are taken over the encoding of the *decoded* value, so a
//! non-canonical byte string on the wire cannot give a second hash for the same value.

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

/// Decodes a value encoded by [`encode`]; trailing bytes are an error.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, DecodeError> {
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(|e| DecodeError(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError(format!("{} trailing bytes", rest.len())));
    }
    Ok(value)
}

/// A byte string that is not a valid encoding of the expected type.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("malformed ledger encoding: {0}")]
pub struct DecodeError(pub String);
