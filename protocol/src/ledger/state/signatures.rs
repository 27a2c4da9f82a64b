//! The published signatures by leaf, with a running digest of them in ledger order. The state
//! hash covers the digest instead of the signatures themselves, so a block costs the
//! signatures it adds, not every signature published so far (2.5 KB each, thousands per key)
//! encoded and hashed again for every block validated, built and applied. Each signature's
//! bytes are shared (`Arc`) and the map is persistent (`imbl::OrdMap`), so the state clones
//! that validating and building a block take share the map instead of copying it (the same
//! bytes on the wire and on disk as a `BTreeMap` of `Vec<u8>`).

use std::sync::Arc;

use imbl::OrdMap;

use serde::{Deserialize, Serialize};

use crate::hash::{hash32, Domain};

const SIGNATURES_DOMAIN: Domain = Domain::new("seedfed-sigsdig");

/// Published signatures by leaf; [`Signatures::digest`] commits to every one and to the order
/// they were published in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signatures {
    #[serde(with = "by_leaf_codec")]
    by_leaf: OrdMap<u64, Arc<[u8]>>,
    digest: [u8; 32],
}

/// `by_leaf` on the wire and on disk: a map in key order (the same bytes as imbl's encoder),
/// decoded through a `BTreeMap`. imbl's own decoder reserves room for the entry count the
/// input claims before reading any entry, so a forged count aborted the process on an
/// allocation failure (found by the `ledger_state` fuzz target); a `BTreeMap` grows with the
/// entries actually read.
mod by_leaf_codec {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use imbl::OrdMap;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        map: &OrdMap<u64, Arc<[u8]>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_map(map.iter())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<OrdMap<u64, Arc<[u8]>>, D::Error> {
        Ok(BTreeMap::<u64, Arc<[u8]>>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
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
        self.by_leaf.insert(leaf, signature.into());
    }

    /// Whether `leaf` has a published signature.
    pub fn contains_key(&self, leaf: &u64) -> bool {
        self.by_leaf.contains_key(leaf)
    }

    /// The signature published for `leaf`.
    pub fn get(&self, leaf: &u64) -> Option<&[u8]> {
        self.by_leaf.get(leaf).map(|s| &s[..])
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
        self.by_leaf.iter().map(|(l, s)| (l, &s[..]))
    }

    /// The same digest without the signatures: what a store keeps in the state at its tip
    /// while it keeps every signature once, beside it (`Signatures::rebuilt` puts them back).
    pub fn without_bytes(&self) -> Signatures {
        Signatures {
            by_leaf: OrdMap::new(),
            digest: self.digest,
        }
    }

    /// The signatures `published`, in publication order, if they lead to `digest`; `None` if
    /// one is missing, extra, out of order, damaged, or signs a leaf twice.
    pub fn rebuilt(
        published: impl IntoIterator<Item = (u64, Vec<u8>)>,
        digest: [u8; 32],
    ) -> Option<Signatures> {
        let mut out = Signatures::default();
        for (leaf, signature) in published {
            if out.contains_key(&leaf) {
                return None;
            }
            out.insert(leaf, signature);
        }
        (out.digest == digest).then_some(out)
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
    use std::collections::BTreeMap;

    use super::*;

    /// Before, imbl's decoder reserved room for the claimed entry count first: 2^40 entries
    /// claimed by a few bytes aborted the process (allocation failure) instead of failing to
    /// decode (fuzz target `ledger_state`, input kept in `fuzz/regressions/ledger_state/`).
    #[test]
    fn a_forged_entry_count_fails_to_decode_and_allocates_nothing_for_it() {
        // varint(2^40) entries, then nothing.
        let forged = [0x80, 0x80, 0x80, 0x80, 0x80, 0x20];
        assert!(crate::ledger::decode::<Signatures>(&forged).is_err());
        // What the encoder writes still decodes to the same map and digest.
        let mut a = Signatures::default();
        a.insert(7, vec![1, 2, 3]);
        a.insert(3, vec![4]);
        let bytes = crate::ledger::encode(&a);
        assert_eq!(crate::ledger::decode::<Signatures>(&bytes).unwrap(), a);
        let plain: BTreeMap<u64, Vec<u8>> = [(3, vec![4]), (7, vec![1, 2, 3])].into();
        assert!(bytes.starts_with(&crate::ledger::encode(&plain)));
    }

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

    #[test]
    fn rebuilt_from_the_same_signatures_in_order_and_nothing_else() {
        let mut a = Signatures::default();
        a.insert(4, vec![1]);
        a.insert(2, vec![2]);
        let d = a.without_bytes();
        assert!(d.is_empty());
        assert_eq!(d.digest(), a.digest());
        let ok = Signatures::rebuilt([(4, vec![1]), (2, vec![2])], d.digest());
        assert_eq!(ok.as_ref(), Some(&a));
        for bad in [
            vec![(2, vec![2]), (4, vec![1])],
            vec![(4, vec![1])],
            vec![(4, vec![1]), (2, vec![2]), (5, vec![3])],
            vec![(4, vec![1]), (2, vec![9])],
            vec![(4, vec![1]), (4, vec![1]), (2, vec![2])],
        ] {
            assert_eq!(Signatures::rebuilt(bad, d.digest()), None);
        }
    }

    /// Shared bytes are a storage detail: encoded as a `Vec<u8>` would be, and decoded back.
    #[test]
    fn signatures_encode_as_byte_vectors_and_clones_share_their_bytes() {
        let mut a = Signatures::default();
        a.insert(7, vec![1, 2, 3]);
        let plain: (BTreeMap<u64, Vec<u8>>, [u8; 32]) =
            ([(7, vec![1, 2, 3])].into_iter().collect(), a.digest());
        let bytes = crate::ledger::encode(&a);
        assert_eq!(bytes, crate::ledger::encode(&plain));
        assert_eq!(crate::ledger::decode::<Signatures>(&bytes).unwrap(), a);
        let b = a.clone();
        assert!(Arc::ptr_eq(&a.by_leaf[&7], &b.by_leaf[&7]));
    }
}
