//! The leaves the key-generation audit retired, as a light client checks them.
//!
//! The audit (`docs/protocol.md` step 6) rebuilds the seeds of `audit_leaves` leaves of every
//! published sector in public on the ledger. Those one-time keys are therefore known to anyone:
//! a signature at a retired leaf verifies under the master public key (RFC 8554 cannot tell)
//! but proves nothing, so a verifier must refuse it. The ledger never allocates a retired leaf
//! and its set is fixed once the master root is final (`MasterRoot` waits for every audit), so
//! each checkpoint that carries the master key also commits to [`RetiredLeaves::digest`], and a
//! client checks a list it is handed against that digest before it trusts it.
//!
//! Guarantees: a [`RetiredLeaves`] is strictly increasing (the only encoding of a set, so the
//! digest is a function of the set); [`RetiredLeaves::from_sorted`], [`RetiredLeaves::from_text`]
//! and deserialisation refuse anything else; the digest is domain-separated BLAKE2b over the
//! length-prefixed `u64be` indices. Format and use: `docs/light-client.md`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::hash::{hash32, Domain};

const RETIRED_DOMAIN: Domain = Domain::new("seedfed-retired");

/// Why a list of retired leaves was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetiredError {
    /// The indices are not strictly increasing (unsorted or repeated) at this position.
    #[error("retired leaves are not strictly increasing at position {position}")]
    NotSorted {
        /// Index in the list of the first out-of-order or repeated entry.
        position: usize,
    },
    /// A line of the text form is not a decimal leaf index.
    #[error("line {line} of the retired-leaves list is not a leaf index")]
    BadLine {
        /// 1-based line number.
        line: usize,
    },
}

/// A set of retired leaf indices, kept sorted (strictly increasing).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<u64>", into = "Vec<u64>")]
pub struct RetiredLeaves(Vec<u64>);

impl RetiredLeaves {
    /// The set of `leaves` (any order, repeats collapse).
    pub fn new(leaves: impl IntoIterator<Item = u64>) -> Self {
        let set: BTreeSet<u64> = leaves.into_iter().collect();
        RetiredLeaves(set.into_iter().collect())
    }

    /// The set a strictly increasing list encodes; anything else is refused (`NotSorted`).
    pub fn from_sorted(leaves: Vec<u64>) -> Result<Self, RetiredError> {
        if let Some(i) = leaves.windows(2).position(|w| w[0] >= w[1]) {
            return Err(RetiredError::NotSorted { position: i + 1 });
        }
        Ok(RetiredLeaves(leaves))
    }

    /// The indices, strictly increasing.
    pub fn as_slice(&self) -> &[u64] {
        &self.0
    }

    /// How many leaves are retired.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no leaf is retired (audits off).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether leaf `q` is retired.
    pub fn contains(&self, q: u64) -> bool {
        self.0.binary_search(&q).is_ok()
    }

    /// What a checkpoint commits to: BLAKE2b-256 under the personalisation `seedfed-retired`
    /// of `u64le(8n) ‖ u64be(q_1) ‖ … ‖ u64be(q_n)` (the [`hash32`] length prefix, then the
    /// indices in increasing order).
    pub fn digest(&self) -> [u8; 32] {
        let bytes: Vec<u8> = self.0.iter().flat_map(|q| q.to_be_bytes()).collect();
        hash32(RETIRED_DOMAIN, &[], &[0; 16], &[&bytes])
    }

    /// The text form: one decimal index per line, increasing, each line ending in `\n` (empty
    /// for no leaves). What `seedfed pubkey` writes next to the key (`NAME.pub.retired`).
    pub fn to_text(&self) -> String {
        self.0.iter().map(|q| format!("{q}\n")).collect()
    }

    /// Strict inverse of [`to_text`](Self::to_text), tolerating a missing final newline and
    /// surrounding whitespace on a line; blank lines, signs, other characters and indices out
    /// of order are refused.
    pub fn from_text(text: &str) -> Result<Self, RetiredError> {
        let mut leaves = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || !line.bytes().all(|b| b.is_ascii_digit()) {
                return Err(RetiredError::BadLine { line: i + 1 });
            }
            let q = line
                .parse::<u64>()
                .map_err(|_| RetiredError::BadLine { line: i + 1 })?;
            leaves.push(q);
        }
        Self::from_sorted(leaves)
    }
}

impl TryFrom<Vec<u64>> for RetiredLeaves {
    type Error = RetiredError;

    fn try_from(leaves: Vec<u64>) -> Result<Self, RetiredError> {
        Self::from_sorted(leaves)
    }
}

impl From<RetiredLeaves> for Vec<u64> {
    fn from(r: RetiredLeaves) -> Vec<u64> {
        r.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_set_is_canonical_and_strictly_increasing() {
        let r = RetiredLeaves::new([40, 3, 17, 3]);
        assert_eq!(r.as_slice(), &[3, 17, 40]);
        assert!(r.contains(17) && !r.contains(18));
        assert_eq!(RetiredLeaves::from_sorted(vec![3, 17, 40]).unwrap(), r);
        assert_eq!(
            RetiredLeaves::from_sorted(vec![3, 40, 17]).unwrap_err(),
            RetiredError::NotSorted { position: 2 }
        );
        assert_eq!(
            RetiredLeaves::from_sorted(vec![3, 3]).unwrap_err(),
            RetiredError::NotSorted { position: 1 }
        );
        // Deserialisation is as strict as `from_sorted`.
        assert_eq!(serde_json::to_string(&r).unwrap(), "[3,17,40]");
        assert_eq!(
            serde_json::from_str::<RetiredLeaves>("[3,17,40]").unwrap(),
            r
        );
        assert!(serde_json::from_str::<RetiredLeaves>("[17,3]").is_err());
    }

    #[test]
    fn the_digest_is_domain_separated_and_binds_every_index() {
        let r = RetiredLeaves::new([3, 17, 40]);
        let d = r.digest();
        assert_ne!(d, RetiredLeaves::default().digest());
        assert_ne!(d, RetiredLeaves::new([3, 17]).digest());
        assert_ne!(d, RetiredLeaves::new([3, 17, 41]).digest());
        assert_ne!(d, RetiredLeaves::new([3, 17, 40, 41]).digest());
        let bytes: Vec<u8> = [3u64, 17, 40]
            .iter()
            .flat_map(|q| q.to_be_bytes())
            .collect();
        assert_eq!(d, hash32(RETIRED_DOMAIN, &[], &[0; 16], &[&bytes]));
        assert_ne!(
            d,
            hash32(Domain::new("seedfed-valset"), &[], &[0; 16], &[&bytes])
        );
    }

    #[test]
    fn the_text_form_round_trips_and_is_strict() {
        let r = RetiredLeaves::new([3, 17, 40]);
        assert_eq!(r.to_text(), "3\n17\n40\n");
        assert_eq!(RetiredLeaves::from_text(&r.to_text()).unwrap(), r);
        assert_eq!(RetiredLeaves::from_text("3\n17\n40").unwrap(), r);
        assert_eq!(
            RetiredLeaves::from_text("").unwrap(),
            RetiredLeaves::default()
        );
        for (text, line) in [("3\n\n17\n", 2), ("3\n-1\n", 2), ("x\n", 1), ("3 4\n", 1)] {
            assert_eq!(
                RetiredLeaves::from_text(text).unwrap_err(),
                RetiredError::BadLine { line }
            );
        }
        assert_eq!(
            RetiredLeaves::from_text("17\n3\n").unwrap_err(),
            RetiredError::NotSorted { position: 1 }
        );
        assert_eq!(
            RetiredLeaves::from_text("99999999999999999999999\n").unwrap_err(),
            RetiredError::BadLine { line: 1 }
        );
    }

    proptest! {
        #[test]
        fn digest_is_a_function_of_the_set(leaves in proptest::collection::vec(any::<u64>(), 0..32)) {
            let mut rev = leaves.clone();
            rev.reverse();
            let r = RetiredLeaves::new(leaves);
            prop_assert_eq!(r.digest(), RetiredLeaves::new(rev).digest());
            prop_assert_eq!(RetiredLeaves::from_text(&r.to_text()).unwrap(), r);
        }
    }
}
