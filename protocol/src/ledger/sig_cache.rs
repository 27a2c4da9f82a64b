//! Transactions whose signatures this node has already checked, so that each transaction's
//! Ed25519 signature is verified once per node (at the gossip check or the API), not again
//! when a block carrying it is built, validated and committed.
//!
//! Guarantees: an entry is the fingerprint (domain-separated BLAKE2b) of the chain id, the
//! transaction's digest and its signature, added only after `verify_strict` accepted exactly
//! that signature on exactly that digest, here or by a caller that says it did
//! ([`SigCache::remember_verified`]). Any changed byte of the transaction, the signature or the
//! chain misses. A hit therefore means the same strict check passed, so a node with a warm
//! cache accepts exactly the transactions a node without one accepts. The set is bounded
//! (oldest first out); a miss only costs a verification.
//!
//! The same set also remembers other checks whose outcome depends only on their inputs
//! ([`SigCache::check_once`]): a client's signature on a relayed sign request, an LMS
//! signature on a leaf's digest under a key's master root. Those are fingerprinted under
//! their own domain with the name of the check and every input, so a hit means that exact
//! check passed on exactly those bytes.
//!
//! Batch verification (`ed25519-dalek`'s `verify_batch`) is deliberately not used: its
//! acceptance differs from single strict verification for signatures with small-order
//! components, and nodes that disagree on a transaction's validity disagree on a block's.

use std::collections::{HashSet, VecDeque};

use super::error::LedgerError;
use super::tx::{verify_vote_signature, Signature64, SignedTx};
use crate::hash::{hash32, Domain};
use crate::member::MemberId;

const FINGERPRINT: Domain = Domain::new("seedfed-sigcache");
const CHECK_FINGERPRINT: Domain = Domain::new("seedfed-check");

/// A bounded set of transactions whose signatures passed the strict check.
#[derive(Debug, Clone)]
pub struct SigCache {
    order: VecDeque<[u8; 32]>,
    set: HashSet<[u8; 32]>,
    capacity: usize,
    hits: u64,
    checks: u64,
}

impl Default for SigCache {
    fn default() -> Self {
        SigCache::new(SigCache::DEFAULT_CAPACITY)
    }
}

impl SigCache {
    /// Room for the transactions of four full blocks (`MAX_TXS_PER_BLOCK` is 4096): the
    /// mempool's and the proposals' of the current height, the oldest forgotten first (about
    /// 1 MiB with the set's overhead).
    pub const DEFAULT_CAPACITY: usize = 16_384;

    /// An empty cache holding at most `capacity` fingerprints (0: remember nothing).
    pub fn new(capacity: usize) -> Self {
        SigCache {
            order: VecDeque::new(),
            set: HashSet::new(),
            capacity,
            hits: 0,
            checks: 0,
        }
    }

    /// Checks `stx`'s signature: at once if it was checked before, otherwise strictly, and
    /// remembers it if it holds.
    pub fn verify(&mut self, stx: &SignedTx, chain_id: &str) -> Result<(), LedgerError> {
        let digest = stx.tx.digest(chain_id);
        self.answer(fingerprint(chain_id, &digest, stx), || {
            stx.verify_digest(&digest)
        })
        .map(|_| ())
    }

    /// Remembers `stx` as checked. Only for a transaction whose `stx.verify(chain_id)` the
    /// caller has just seen succeed (the gossip validator, the API handler) or that it signed
    /// itself: a wrong call here makes this node accept a forged signature.
    pub fn remember_verified(&mut self, stx: &SignedTx, chain_id: &str) {
        let digest = stx.tx.digest(chain_id);
        self.insert(fingerprint(chain_id, &digest, stx));
    }

    /// [`verify_vote_signature`] of a vote or proposal signature, answered from the cache when
    /// exactly this (signer, digest, signature) passed before: the consensus machine checks a
    /// vote once, not again in the next block's last commit, and the gossip check not again
    /// inside the certificates that carry it.
    pub fn verify_vote(
        &mut self,
        signer: &MemberId,
        digest: &[u8; 32],
        signature: &Signature64,
    ) -> bool {
        self.check_once(
            "vote signature",
            &[signer.as_bytes(), digest, &signature.0],
            || {
                verify_vote_signature(signer, digest, signature)
                    .then_some(())
                    .ok_or(())
            },
        )
        .is_ok()
    }

    /// Runs `check` unless the check named `what` passed on exactly these `inputs` before,
    /// and remembers it once it passes. `check` must be a pure function of `inputs` (every
    /// byte its outcome depends on is among them): a check that reads anything else would be
    /// answered for inputs it was never run on.
    pub fn check_once<E>(
        &mut self,
        what: &str,
        inputs: &[&[u8]],
        check: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        self.check_new(what, inputs, check).map(|_| ())
    }

    /// [`SigCache::check_once`], saying whether the check ran now (`Ok(true)`: first seen)
    /// or was answered from the cache (`Ok(false)`: it passed on these inputs before).
    pub fn check_new<E>(
        &mut self,
        what: &str,
        inputs: &[&[u8]],
        check: impl FnOnce() -> Result<(), E>,
    ) -> Result<bool, E> {
        let mut parts = Vec::with_capacity(inputs.len() + 1);
        parts.push(what.as_bytes());
        parts.extend_from_slice(inputs);
        self.answer(hash32(CHECK_FINGERPRINT, &[], &[0; 16], &parts), check)
    }

    /// A hit (`Ok(false)`) if `fp` is held; otherwise runs `check` and holds `fp` once it
    /// passed (`Ok(true)`).
    fn answer<E>(
        &mut self,
        fp: [u8; 32],
        check: impl FnOnce() -> Result<(), E>,
    ) -> Result<bool, E> {
        if self.set.contains(&fp) {
            self.hits += 1;
            return Ok(false);
        }
        self.checks += 1;
        check()?;
        self.insert(fp);
        Ok(true)
    }

    /// Checks answered from the cache so far.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Strict signature checks made so far (the misses).
    pub fn checks(&self) -> u64 {
        self.checks
    }

    /// Fingerprints held.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    fn insert(&mut self, fp: [u8; 32]) {
        if self.capacity == 0 || !self.set.insert(fp) {
            return;
        }
        self.order.push_back(fp);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }
}

fn fingerprint(chain_id: &str, digest: &[u8; 32], stx: &SignedTx) -> [u8; 32] {
    hash32(
        FINGERPRINT,
        &[],
        &[0; 16],
        &[chain_id.as_bytes(), digest, &stx.signature.0],
    )
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::ledger::{Signature64, Tx, TxBody};
    use crate::member::MemberId;

    fn tx(seed: u8, nonce: u64) -> SignedTx {
        let key = SigningKey::from_bytes(&[seed; 32]);
        Tx {
            author: MemberId(key.verifying_key().to_bytes()),
            nonce,
            body: TxBody::Transfer {
                to: MemberId([9; 32]),
                amount: 1,
            },
        }
        .sign("c", &key)
    }

    #[test]
    fn a_checked_transaction_is_answered_from_the_cache() {
        let mut c = SigCache::new(8);
        let t = tx(1, 0);
        c.verify(&t, "c").unwrap();
        assert_eq!((c.len(), c.hits()), (1, 0));
        c.verify(&t, "c").unwrap();
        assert_eq!(c.hits(), 1);
    }

    #[test]
    fn any_changed_byte_misses_and_a_bad_signature_is_never_remembered() {
        let mut c = SigCache::new(8);
        let good = tx(1, 0);
        c.verify(&good, "c").unwrap();
        // The same transaction on another chain: its signature does not hold there.
        assert!(c.verify(&good, "other").is_err());
        // Another signature on the same transaction.
        let mut forged = good.clone();
        forged.signature = Signature64([7; 64]);
        assert!(c.verify(&forged, "c").is_err());
        // Another body under the original signature.
        let mut changed = good.clone();
        changed.tx.nonce = 1;
        assert!(c.verify(&changed, "c").is_err());
        assert_eq!((c.len(), c.hits()), (1, 0));
        // Refused twice: still checked, still refused.
        assert!(c.verify(&forged, "c").is_err());
        assert_eq!(c.hits(), 0);
    }

    #[test]
    fn the_oldest_are_forgotten_first_and_nothing_is_kept_at_capacity_zero() {
        let mut c = SigCache::new(2);
        let (a, b, d) = (tx(1, 0), tx(1, 1), tx(1, 2));
        for t in [&a, &b, &d] {
            c.verify(t, "c").unwrap();
        }
        assert_eq!(c.len(), 2);
        c.verify(&a, "c").unwrap();
        assert_eq!(c.hits(), 0, "a was forgotten");
        c.verify(&d, "c").unwrap();
        assert_eq!(c.hits(), 1);

        let mut none = SigCache::new(0);
        none.verify(&a, "c").unwrap();
        none.verify(&a, "c").unwrap();
        assert_eq!((none.len(), none.hits()), (0, 0));
    }

    #[test]
    fn a_passed_check_is_answered_for_the_same_inputs_only() {
        let mut c = SigCache::new(8);
        let runs = std::cell::Cell::new(0);
        let pass = || -> Result<(), ()> {
            runs.set(runs.get() + 1);
            Ok(())
        };
        assert_eq!(c.check_new("a", &[b"x", b"y"], pass), Ok(true));
        assert_eq!(c.check_new("a", &[b"x", b"y"], pass), Ok(false));
        assert_eq!((runs.get(), c.hits()), (1, 1));
        // Another check, other inputs, the same bytes split differently: each runs.
        c.check_once("b", &[b"x", b"y"], pass).unwrap();
        c.check_once("a", &[b"x", b"z"], pass).unwrap();
        c.check_once("a", &[b"xy"], pass).unwrap();
        c.check_once("a", &[b"x", b"y", b""], pass).unwrap();
        assert_eq!((runs.get(), c.hits()), (5, 1));
        // A failed check is not remembered: it runs and fails again.
        let mut failures = 0;
        for _ in 0..2 {
            let r = c.check_once("a", &[b"bad"], || -> Result<(), ()> {
                failures += 1;
                Err(())
            });
            assert!(r.is_err());
        }
        assert_eq!(failures, 2);
        // A transaction's signature and a check never answer for each other.
        let t = tx(1, 0);
        c.check_once("tx", &[&t.signature.0], pass).unwrap();
        c.verify(&t, "c").unwrap();
        assert_eq!(c.checks(), 9);
    }

    #[test]
    fn remembered_transactions_hit() {
        let mut c = SigCache::default();
        let t = tx(2, 5);
        c.remember_verified(&t, "c");
        c.verify(&t, "c").unwrap();
        assert_eq!(c.hits(), 1);
    }
}
