//! Our own transactions (the epoch agent's duties, evictions on evidence): signed with our
//! identity and the next free nonce, kept until the ledger applies them, and renumbered when
//! one of them can no longer apply.
//!
//! Guarantees: at most one pending transaction per distinct body; after [`Outbox::prune`]
//! every pending transaction is past the ledger's nonce, and if any of them could not apply
//! in the next block (a window passed, another validator's equal transaction landed first)
//! it is gone and the ones behind it come back to be signed again, so a stale transaction
//! never holds back every later one behind its nonce. Pure: signing is the only effect.

use std::collections::BTreeMap;

use seedfed_protocol::ledger::{LedgerState, SignedTx, Tx, TxBody};
use seedfed_protocol::member::MemberId;
use tracing::debug;

use super::mempool::TxRejected;

/// What [`Outbox::prune`] asks of the caller after dropping a stale transaction.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Renumber {
    /// Nonces of our transactions to take out of the mempool (all that were pending).
    pub withdrawn: Vec<u64>,
    /// Bodies to sign again, in order, with fresh nonces.
    pub bodies: Vec<TxBody>,
}

/// Our pending transactions, by nonce.
pub struct Outbox {
    me: MemberId,
    key: ed25519_dalek::SigningKey,
    pending: BTreeMap<u64, SignedTx>,
}

impl Outbox {
    /// An empty outbox signing with `key`.
    pub fn new(key: ed25519_dalek::SigningKey) -> Self {
        Outbox {
            me: MemberId(key.verifying_key().to_bytes()),
            key,
            pending: BTreeMap::new(),
        }
    }

    /// Why `tx`, signed with our key but not by this outbox (the operator's `seedfed tx`), must
    /// not enter our mempool now, if it must not. From our API (`from_api`) it waits while any
    /// of ours is pending: our transactions then always come after the operator's, so one of
    /// ours that goes stale and is withdrawn never leaves a nonce gap below the operator's
    /// (which could then never apply). From anywhere it never replaces one of ours at its
    /// nonce: the loser of that race, a duty perhaps, would be dropped.
    pub fn refuse_foreign(&self, tx: &SignedTx, from_api: bool) -> Option<TxRejected> {
        if tx.tx.author != self.me {
            return None;
        }
        let next = self.pending.keys().next_back().map(|n| n + 1);
        if self
            .pending
            .get(&tx.tx.nonce)
            .is_some_and(|ours| ours != tx)
        {
            return Some(TxRejected::NonceTaken {
                nonce: tx.tx.nonce,
                next: next.unwrap_or(tx.tx.nonce),
            });
        }
        if from_api && !self.pending.is_empty() {
            return Some(TxRejected::OwnPending {
                pending: self.pending.len(),
            });
        }
        None
    }

    /// The pending transactions, in nonce order.
    pub fn pending(&self) -> impl Iterator<Item = &SignedTx> {
        self.pending.values()
    }

    /// Signs `body` with our next free nonce: past the ledger's, past our pending ones and past
    /// `pooled` (one past the transactions signed with our key that reached the mempool some
    /// other way). `None` if an equal body is already pending.
    pub fn sign(
        &mut self,
        body: TxBody,
        state: &LedgerState,
        pooled: Option<u64>,
    ) -> Option<SignedTx> {
        if self.pending.values().any(|t| t.tx.body == body) {
            return None;
        }
        let base = state.members.get(&self.me).map_or(0, |m| m.nonce);
        let nonce = self
            .pending
            .keys()
            .next_back()
            .map_or(base, |n| n + 1)
            .max(base)
            .max(pooled.unwrap_or(base));
        let tx = Tx {
            author: self.me,
            nonce,
            body,
        }
        .sign(&state.chain_id, &self.key);
        self.pending.insert(nonce, tx.clone());
        Some(tx)
    }

    /// After a block: forgets what the ledger applied, then replays the rest in nonce order on
    /// a copy of `state` at the next height. If one no longer applies, every pending
    /// transaction is withdrawn and the ones that still apply are returned to be signed again.
    pub fn prune(&mut self, state: &LedgerState) -> Option<Renumber> {
        let next = state.members.get(&self.me).map_or(0, |m| m.nonce);
        self.pending.retain(|n, _| *n >= next);
        if self.pending.is_empty() {
            return None;
        }
        let mut probe = state.clone();
        probe.height += 1;
        let mut keep = Vec::new();
        let mut dropped = 0usize;
        for t in self.pending.values() {
            let nonce = probe.members.get(&self.me).map_or(0, |m| m.nonce);
            let tx = if t.tx.nonce == nonce {
                t.clone()
            } else {
                Tx {
                    author: self.me,
                    nonce,
                    body: t.tx.body.clone(),
                }
                .sign(&state.chain_id, &self.key)
            };
            match probe.apply_tx(&tx) {
                Ok(()) => keep.push(tx.tx.body),
                Err(e) => {
                    debug!(reason = %e, "dropping our stale transaction");
                    dropped += 1;
                }
            }
        }
        if dropped == 0 {
            return None;
        }
        let withdrawn = std::mem::take(&mut self.pending).into_keys().collect();
        Some(Renumber {
            withdrawn,
            bodies: keep,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Outbox, LedgerState, MemberId) {
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let other = ed25519_dalek::SigningKey::from_bytes(&[6; 32]);
        let me = MemberId(key.verifying_key().to_bytes());
        let them = MemberId(other.verifying_key().to_bytes());
        let g = crate::chain::test_genesis::genesis("outbox", &[(me, 10), (them, 10)], 1000);
        (
            Outbox::new(key),
            LedgerState::from_genesis(&g).unwrap(),
            them,
        )
    }

    #[test]
    fn signs_once_per_body_with_consecutive_nonces() {
        let (mut out, st, them) = setup();
        let pay = |amount| TxBody::Transfer { to: them, amount };
        assert_eq!(out.sign(pay(1), &st, None).unwrap().tx.nonce, 0);
        assert!(out.sign(pay(1), &st, None).is_none());
        assert_eq!(out.sign(pay(2), &st, None).unwrap().tx.nonce, 1);
        // Past transactions with our key that are pooled already.
        assert_eq!(out.sign(pay(3), &st, Some(7)).unwrap().tx.nonce, 7);
        assert!(out.pending().all(|t| t.verify("outbox").is_ok()));
    }

    #[test]
    fn the_operators_transactions_never_race_ours_for_a_nonce() {
        let (mut out, st, them) = setup();
        let duty = out
            .sign(
                TxBody::Transfer {
                    to: them,
                    amount: 1,
                },
                &st,
                None,
            )
            .unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let mine = |nonce, amount| {
            Tx {
                author: duty.tx.author,
                nonce,
                body: TxBody::Transfer { to: them, amount },
            }
            .sign("outbox", &key)
        };
        // From gossip: only the duty's nonce is refused, naming the next free one.
        assert_eq!(
            out.refuse_foreign(&mine(0, 9), false),
            Some(TxRejected::NonceTaken { nonce: 0, next: 1 }),
            "another body at the duty's nonce"
        );
        assert_eq!(out.refuse_foreign(&duty, false), None, "the duty itself");
        assert_eq!(out.refuse_foreign(&mine(1, 9), false), None, "a free nonce");
        // From our API: nothing while a duty is pending, anything once none is.
        assert_eq!(
            out.refuse_foreign(&mine(1, 9), true),
            Some(TxRejected::OwnPending { pending: 1 })
        );
        let mut decided = st.clone();
        decided.apply_tx(&duty).unwrap();
        assert_eq!(out.prune(&decided), None);
        assert_eq!(out.refuse_foreign(&mine(1, 9), true), None);
        let other = ed25519_dalek::SigningKey::from_bytes(&[6; 32]);
        let theirs = Tx {
            author: them,
            nonce: 0,
            body: TxBody::Transfer {
                to: duty.tx.author,
                amount: 1,
            },
        }
        .sign("outbox", &other);
        assert_eq!(out.refuse_foreign(&theirs, true), None, "another author");
    }

    #[test]
    fn a_stale_transaction_is_dropped_and_the_rest_renumbered() {
        let (mut out, st, them) = setup();
        out.sign(
            TxBody::Transfer {
                to: them,
                amount: 1,
            },
            &st,
            None,
        );
        // More than we have: can never apply.
        out.sign(
            TxBody::Transfer {
                to: them,
                amount: 1_000,
            },
            &st,
            None,
        );
        out.sign(
            TxBody::Transfer {
                to: them,
                amount: 2,
            },
            &st,
            None,
        );
        let r = out.prune(&st).unwrap();
        assert_eq!(r.withdrawn, vec![0, 1, 2]);
        assert_eq!(
            r.bodies,
            vec![
                TxBody::Transfer {
                    to: them,
                    amount: 1
                },
                TxBody::Transfer {
                    to: them,
                    amount: 2
                }
            ]
        );
        assert_eq!(out.pending().count(), 0);
        // Nothing stale: nothing to do; applied ones are forgotten.
        let t = out
            .sign(
                TxBody::Transfer {
                    to: them,
                    amount: 1,
                },
                &st,
                None,
            )
            .unwrap();
        assert_eq!(out.prune(&st), None);
        let mut after = st.clone();
        after.apply_tx(&t).unwrap();
        assert_eq!(out.prune(&after), None);
        assert_eq!(out.pending().count(), 0);
    }
}
