//! The published signatures by leaf, with a running digest of them in ledger order. The state
//! hash covers the digest instead of the signatures themselves, so a block costs the
//! signatures it adds, not every signature published so far (2.5 KB each, thousands per key)
//! encoded and hashed again for every block validated, built and applied.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::hash::{hash32, Domain};

const SIGNATURES_DOMAIN: Domain = Domain::new("seedfed-sigsdig");

/// Published signatures by leaf; [`Signatures::digest`] commits to every one and to the order
/// they were published in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signatures {
    by_leaf: BTreeMap<u64, Vec<u8>>,
    digest: [u8; 32],
}

impl Signatures {
    /// Records `signature` for `leaf` (the ledger checks first that `leaf` has none: a leaf is
    /// signed once; an existing one is kept and the digest does not move).
    pub fn insert(&mut self, leaf: u64, signature: Vec<u8>) {
        if self.by_leaf.contains_key(&leaf) {
            return;
        }
        self.digest = hash32(
            SIGNATURES_DOMAIN,
            &[],
            &[0; 16],
            &[&self.digest, &leaf.to_be_bytes(), &signature],
        );
        self.by_leaf.insert(leaf, signature);
    }

    /// Whether `leaf` has a published signature.
    pub fn contains_key(&self, leaf: &u64) -> bool {
        self.by_leaf.contains_key(leaf)
    }

    /// The signature published for `leaf`.
    pub fn get(&self, leaf: &u64) -> Option<&[u8]> {
        self.by_leaf.get(leaf).map(Vec::as_slice)
    }

    /// Signatures published.
    pub fn len(&self) -> usize {
        self.by_leaf.len()
    }

    /// Whether none is published.
    pub fn is_empty(&self) -> bool {
        self.by_leaf.is_empty()
    }

    /// Every signature, by leaf.
    pub fn iter(&self) -> impl Iterator<Item = (&u64, &[u8])> {
        self.by_leaf.iter().map(|(l, s)| (l, s.as_slice()))
    }

    /// The running digest: zeros when none is published, then
    /// `H(previous digest, leaf (big-endian), signature)` for each in publication order.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }
}

impl std::ops::Index<&u64> for Signatures {
    type Output = [u8];

    fn index(&self, leaf: &u64) -> &[u8] {
        &self.by_leaf[leaf]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_commits_to_each_signature_and_the_order_and_a_leaf_is_signed_once() {
        let mut a = Signatures::default();
        assert_eq!(a.digest(), [0; 32]);
        a.insert(1, vec![1, 2]);
        a.insert(2, vec![3]);
        let mut b = Signatures::default();
        b.insert(2, vec![3]);
        b.insert(1, vec![1, 2]);
        // Same map, other order: another digest.
        assert_eq!(a.iter().collect::<Vec<_>>(), b.iter().collect::<Vec<_>>());
        assert_ne!(a.digest(), b.digest());
        // Other bytes, same leaves: another digest.
        let mut c = Signatures::default();
        c.insert(1, vec![1, 2]);
        c.insert(2, vec![4]);
        assert_ne!(a.digest(), c.digest());
        // A second signature for a leaf changes nothing.
        let before = a.clone();
        a.insert(1, vec![9]);
        assert_eq!(a, before);
        assert_eq!(&a[&1], &[1, 2]);
        assert_eq!(a.get(&3), None);
        assert_eq!(a.len(), 2);
    }
}
