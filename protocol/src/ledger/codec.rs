//! The canonical binary encoding of ledger values.
//!
//! Guarantees: one value has one encoding (postcard 1; every map in the ledger is a `BTreeMap`,
//! so maps encode in key order), and [`decode`] accepts exactly the encodings of [`encode`],
//! with no trailing bytes. Hashes are taken over the encoding of the *decoded* value, so a
//! non-canonical byte string on the wire cannot give a second hash for the same value.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The canonical binary encoding of ledger values: postcard 1 (varint integers, length-prefixed
/// sequences and strings, maps in key order because every map is a `BTreeMap`). Hashes are
/// always computed over this encoding of the *decoded* value, so a non-canonical byte string
/// on the wire cannot give a second hash for the same value.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value)
        .unwrap_or_else(|_| unreachable!("postcard encoding of in-memory values cannot fail"))
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
