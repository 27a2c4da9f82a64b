//! An ordered map whose digest costs what changed: the ledger's large sections (members, sign
//! requests) grow with the federation, and encoding and hashing them again for every block
//! validated, built and applied made a block cost the size of the ledger.
//!
//! The entries are held in a persistent map (`imbl::OrdMap`: a clone shares the tree, a change
//! copies one path), and their digest is a homomorphic multiset hash, LtHash16 (Bellare and
//! Micciancio's lattice hash as specified by Lewi, Kim, Maykov and Weis, "Securing Update
//! Propagation with Homomorphic Hashing", 2019, and used the same way for Solana's accounts
//! hash): each entry is expanded to 1,024 16-bit lanes (ChaCha20 keyed by the BLAKE2b hash of
//! the entry's encoding) and the section's sum is the lane-wise sum mod 2^16 of its entries.
//! Removing an entry subtracts its lanes, so a change costs two expansions whatever the size.
//! Collision resistance rests on the short-integer-solution problem at these parameters
//! (about 200 bits by the paper's estimate).
//!
//! Changes are folded into the sum lazily: the first change of a key records the value it had
//! ([`HashedMap::settle`] folds them in; [`HashedMap::digest`] folds them into a copy), so a
//! key changed many times in one block is expanded twice, not twice per change.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeBounds;
use std::sync::Arc;

use imbl::OrdMap;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::hash::{hash32, Domain};
use crate::ledger::codec::encode;

const ENTRY_DOMAIN: Domain = Domain::new("seedfed-lthash-e");
const DIGEST_DOMAIN: Domain = Domain::new("seedfed-lthash-d");

/// Lanes of an LtHash16 value (2 KiB).
const LANES: usize = 1024;

/// A sum of entry vectors, lane-wise mod 2^16; shared until changed.
#[derive(Clone, PartialEq, Eq)]
struct LtHash(Arc<[u16; LANES]>);

impl LtHash {
    fn zero() -> Self {
        LtHash(Arc::new([0; LANES]))
    }

    fn add(&mut self, v: &[u16; LANES]) {
        for (a, b) in Arc::make_mut(&mut self.0).iter_mut().zip(v) {
            *a = a.wrapping_add(*b);
        }
    }

    fn sub(&mut self, v: &[u16; LANES]) {
        for (a, b) in Arc::make_mut(&mut self.0).iter_mut().zip(v) {
            *a = a.wrapping_sub(*b);
        }
    }

    /// The 32-byte digest of the sum (its lanes little-endian).
    fn digest(&self) -> [u8; 32] {
        let mut bytes = [0u8; 2 * LANES];
        for (out, lane) in bytes.chunks_exact_mut(2).zip(self.0.iter()) {
            out.copy_from_slice(&lane.to_le_bytes());
        }
        hash32(DIGEST_DOMAIN, &[], &[0; 16], &[&bytes])
    }
}

/// The lanes of one entry: ChaCha20 keyed by the BLAKE2b hash of `encode(&(key, value))`.
fn entry_lanes<K: Serialize, V: Serialize>(key: &K, value: &V) -> [u16; LANES] {
    let seed = hash32(ENTRY_DOMAIN, &[], &[0; 16], &[&encode(&(key, value))]);
    let mut bytes = [0u8; 2 * LANES];
    ChaCha20Rng::from_seed(seed).fill_bytes(&mut bytes);
    let mut lanes = [0u16; LANES];
    for (lane, b) in lanes.iter_mut().zip(bytes.chunks_exact(2)) {
        *lane = u16::from_le_bytes([b[0], b[1]]);
    }
    lanes
}

/// An ordered map with an incrementally maintained digest of its entries; encoded exactly as
/// a `BTreeMap` of the same entries.
#[derive(Clone)]
pub struct HashedMap<K: Ord + Clone, V: Clone> {
    map: OrdMap<K, V>,
    /// The sum of the entries as they were before the keys in `touched` changed.
    sum: LtHash,
    /// Keys changed since the sum was last settled, with the value each had then.
    touched: OrdMap<K, Option<V>>,
}

impl<K, V> HashedMap<K, V>
where
    K: Ord + Clone + Serialize,
    V: Clone + PartialEq + Serialize,
{
    /// An empty map.
    pub fn new() -> Self {
        HashedMap {
            map: OrdMap::new(),
            sum: LtHash::zero(),
            touched: OrdMap::new(),
        }
    }

    /// The value of `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.map.get(key)
    }

    /// Whether `key` has a value.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.map.contains_key(key)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The entries in key order.
    pub fn iter(&self) -> imbl::ordmap::Iter<'_, K, V, imbl::shared_ptr::DefaultSharedPtr> {
        self.map.iter()
    }

    /// The keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + '_ {
        self.map.keys()
    }

    /// The values in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + '_ {
        self.map.values()
    }

    /// The entries whose keys are in `range`, in order.
    pub fn range<R>(&self, range: R) -> impl DoubleEndedIterator<Item = (&K, &V)> + '_
    where
        R: RangeBounds<K>,
    {
        self.map.range(range)
    }

    /// The entry with the greatest key.
    pub fn last_key_value(&self) -> Option<(&K, &V)> {
        self.map.get_max().map(|(k, v)| (k, v))
    }

    /// Sets `key` to `value`; returns the value it had.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.touch(&key);
        self.map.insert(key, value)
    }

    /// Removes `key`; returns the value it had.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.touch_held(key)?;
        self.map.remove(key)
    }

    /// The value of `key`, to change in place.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.touch_held(key)?;
        self.map.get_mut(key)
    }

    /// Keeps only the entries for which `keep` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        let gone: Vec<K> = self
            .map
            .iter()
            .filter(|(k, v)| !keep(k, v))
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            self.remove(&k);
        }
    }

    /// The digest of the entries: equal for equal maps, whatever the order they were built in.
    pub fn digest(&self) -> [u8; 32] {
        if self.touched.is_empty() {
            return self.sum.digest();
        }
        let mut sum = self.sum.clone();
        self.fold_into(&mut sum);
        sum.digest()
    }

    /// Folds the changes since the last settle into the sum, so that [`HashedMap::digest`]
    /// costs nothing more until the next change.
    pub fn settle(&mut self) {
        if self.touched.is_empty() {
            return;
        }
        let mut sum = self.sum.clone();
        self.fold_into(&mut sum);
        self.sum = sum;
        self.touched = OrdMap::new();
    }

    /// The entries that differ from those of `earlier`, in key order: `(key, Some(value))`
    /// for one added or changed, `(key, None)` for one removed. It costs what differs when
    /// this map was made from `earlier` (the trees they share are skipped), so a store can
    /// write the entries a block changed and not the whole map.
    pub fn changes_since<'a>(
        &'a self,
        earlier: &'a Self,
    ) -> impl Iterator<Item = (&'a K, Option<&'a V>)> + 'a {
        earlier.map.diff(&self.map).map(|d| match d {
            imbl::ordmap::DiffItem::Add(k, v)
            | imbl::ordmap::DiffItem::Update { new: (k, v), .. } => (k, Some(v)),
            imbl::ordmap::DiffItem::Remove(k, _) => (k, None),
        })
    }

    /// The keys changed since the last settle (some may be back to their value then).
    pub(super) fn touched_keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.touched.keys()
    }

    fn fold_into(&self, sum: &mut LtHash) {
        for (k, before) in &self.touched {
            let now = self.map.get(k);
            if before.as_ref() == now {
                continue;
            }
            if let Some(v) = before {
                sum.sub(&entry_lanes(k, v));
            }
            if let Some(v) = now {
                sum.add(&entry_lanes(k, v));
            }
        }
    }

    /// [`HashedMap::touch`] for a key the map holds (`None` if it holds none).
    fn touch_held<Q>(&mut self, key: &Q) -> Option<()>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let (k, _) = self.map.get_key_value(key)?;
        let k = k.clone();
        self.touch(&k);
        Some(())
    }

    fn touch(&mut self, key: &K) {
        if !self.touched.contains_key(key) {
            self.touched.insert(key.clone(), self.map.get(key).cloned());
        }
    }
}

impl<K, V> Default for HashedMap<K, V>
where
    K: Ord + Clone + Serialize,
    V: Clone + PartialEq + Serialize,
{
    fn default() -> Self {
        HashedMap::new()
    }
}

impl<K, V> FromIterator<(K, V)> for HashedMap<K, V>
where
    K: Ord + Clone + Serialize,
    V: Clone + PartialEq + Serialize,
{
    /// Built from scratch: every entry expanded once.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        let map: OrdMap<K, V> = entries.into_iter().collect();
        let mut sum = LtHash::zero();
        for (k, v) in &map {
            sum.add(&entry_lanes(k, v));
        }
        HashedMap {
            map,
            sum,
            touched: OrdMap::new(),
        }
    }
}

impl<K, V> From<BTreeMap<K, V>> for HashedMap<K, V>
where
    K: Ord + Clone + Serialize,
    V: Clone + PartialEq + Serialize,
{
    fn from(map: BTreeMap<K, V>) -> Self {
        map.into_iter().collect()
    }
}

impl<K: Ord + Clone, V: Clone + PartialEq> PartialEq for HashedMap<K, V> {
    /// Equal entries (the digest is a function of them).
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl<K: Ord + Clone, V: Clone + Eq> Eq for HashedMap<K, V> {}

impl<K: Ord + Clone + fmt::Debug, V: Clone + fmt::Debug> fmt::Debug for HashedMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.map.iter()).finish()
    }
}

impl<'a, K, V> IntoIterator for &'a HashedMap<K, V>
where
    K: Ord + Clone + Serialize,
    V: Clone + PartialEq + Serialize,
{
    type Item = (&'a K, &'a V);
    type IntoIter = imbl::ordmap::Iter<'a, K, V, imbl::shared_ptr::DefaultSharedPtr>;

    fn into_iter(self) -> Self::IntoIter {
        self.map.iter()
    }
}

impl<K, V, Q> std::ops::Index<&Q> for HashedMap<K, V>
where
    K: Ord + Clone + Serialize + Borrow<Q>,
    V: Clone + PartialEq + Serialize,
    Q: Ord + ?Sized,
{
    type Output = V;

    fn index(&self, key: &Q) -> &V {
        match self.map.get(key) {
            Some(v) => v,
            None => panic!("no entry for the key"),
        }
    }
}

impl<K, V> Serialize for HashedMap<K, V>
where
    K: Ord + Clone + Serialize,
    V: Clone + Serialize,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.map.iter())
    }
}

impl<'de, K, V> Deserialize<'de> for HashedMap<K, V>
where
    K: Ord + Clone + Serialize + Deserialize<'de>,
    V: Clone + PartialEq + Serialize + Deserialize<'de>,
{
    /// A map decoded is hashed from scratch (its digest is never taken from the wire).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<K, V>::deserialize(deserializer).map(HashedMap::from)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    type M = HashedMap<u16, Vec<u8>>;

    fn scratch(m: &BTreeMap<u16, Vec<u8>>) -> [u8; 32] {
        M::from(m.clone()).digest()
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, Vec<u8>),
        Remove(u16),
        Push(u16, u8),
        Retain(u16),
        Settle,
        Clone,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u16..24, proptest::collection::vec(any::<u8>(), 0..4))
                .prop_map(|(k, v)| Op::Insert(k, v)),
            (0u16..24).prop_map(Op::Remove),
            (0u16..24, any::<u8>()).prop_map(|(k, b)| Op::Push(k, b)),
            (1u16..6).prop_map(Op::Retain),
            Just(Op::Settle),
            Just(Op::Clone),
        ]
    }

    proptest! {
        /// Whatever the changes, their order and where the sum was settled, the digest is the
        /// digest of the same entries hashed from scratch, the map equals a `BTreeMap` given
        /// the same changes, it encodes to the same bytes, and the changes it reports since an
        /// earlier copy are exactly those that differ.
        #[test]
        fn the_digest_is_that_of_the_entries_hashed_from_scratch(
            ops in proptest::collection::vec(op(), 0..40),
        ) {
            let mut m = M::new();
            let mut model = BTreeMap::new();
            let mut copies = Vec::new();
            for o in ops {
                match o {
                    Op::Insert(k, v) => {
                        prop_assert_eq!(m.insert(k, v.clone()), model.insert(k, v));
                    }
                    Op::Remove(k) => prop_assert_eq!(m.remove(&k), model.remove(&k)),
                    Op::Push(k, b) => {
                        if let Some(v) = m.get_mut(&k) {
                            v.push(b);
                        }
                        if let Some(v) = model.get_mut(&k) {
                            v.push(b);
                        }
                    }
                    Op::Retain(d) => {
                        m.retain(|k, _| k % d != 0);
                        model.retain(|k, _| k % d != 0);
                    }
                    Op::Settle => m.settle(),
                    Op::Clone => copies.push((m.clone(), model.clone())),
                }
                prop_assert_eq!(m.digest(), scratch(&model));
            }
            prop_assert!(m.iter().map(|(k, v)| (*k, v.clone())).eq(model.clone()));
            prop_assert_eq!(encode(&m), encode(&model));
            let decoded: M = postcard::from_bytes(&encode(&model)).unwrap();
            prop_assert_eq!(decoded.digest(), m.digest());
            // Copies taken along the way were not changed by what came after, and the
            // changes since each one, applied to it, give the map as it ends.
            for (copy, then) in copies {
                prop_assert_eq!(copy.digest(), scratch(&then));
                let mut caught_up = then;
                for (k, v) in m.changes_since(&copy) {
                    match v {
                        Some(v) => {
                            let before = caught_up.insert(*k, v.clone());
                            prop_assert_ne!(before.as_ref(), Some(v));
                        }
                        None => prop_assert!(caught_up.remove(k).is_some()),
                    }
                }
                prop_assert_eq!(&caught_up, &model);
            }
        }
    }

    #[test]
    fn digests_differ_for_different_entries_and_not_for_a_change_undone() {
        let mut m = M::new();
        let empty = m.digest();
        m.insert(1, vec![1]);
        let one = m.digest();
        assert_ne!(one, empty);
        m.insert(1, vec![2]);
        assert_ne!(m.digest(), one);
        m.insert(1, vec![1]);
        assert_eq!(m.digest(), one);
        // Key and value are bound together: (1, [2]) and (2, [1]) are other entries.
        let mut a = M::new();
        a.insert(1, vec![2]);
        let mut b = M::new();
        b.insert(2, vec![1]);
        assert_ne!(a.digest(), b.digest());
        m.remove(&1);
        m.settle();
        assert_eq!(m.digest(), empty);
    }
}
