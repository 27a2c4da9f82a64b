//! Our own transactions (the epoch agent's duties, evictions on evidence): signed with our
//! identity and the next free nonce, kept until the ledger applies them.
//!
//! Guarantees: at most one pending transaction per distinct body; after [`Outbox::prune`]
//! every pending transaction is past the ledger's nonce, and every nonce of our key up to our
//! last pending one holds a transaction that applies in the next block: one that went stale
//! (a window passed, another validator's equal transaction landed first), ours or the
//! operator's in between, gives its nonce to a [`TxBody::Filler`]. Nothing behind it is
//! stranded and nothing is renumbered, so the operator's transactions (`seedfed tx`) may
//! interleave with ours. Pure: signing is the only effect.

use std::collections::BTreeMap;

use seedfed_protocol::ledger::{LedgerState, SigCache, SignedTx, Tx, TxBody};
use seedfed_protocol::member::MemberId;

use super::mempool::TxRejected;

/// A filler [`Outbox::prune`] signed, and why the transaction whose nonce it takes could not
/// apply.
#[derive(Debug, PartialEq, Eq)]
pub struct Filled {
    /// The filler, now pending here.
    pub filler: SignedTx,
    /// Why the transaction at its nonce could not apply (or that none was there).
    pub reason: String,
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

    /// Why `tx`, signed with our key but not by this outbox (the operator's `seedfed tx`, here
    /// or at another node), must not enter our mempool, if it must not: it never replaces one
    /// of ours at its nonce (the loser of that race, a duty perhaps, would be dropped). At any
    /// other nonce it may sit between ours: if it cannot apply when its turn comes, a filler
    /// takes its nonce ([`Outbox::prune`]).
    pub fn refuse_foreign(&self, tx: &SignedTx) -> Option<TxRejected> {
        if tx.tx.author != self.me {
            return None;
        }
        match self.pending.get(&tx.tx.nonce) {
            Some(ours) if ours != tx => Some(TxRejected::NonceTaken {
                nonce: tx.tx.nonce,
                next: self
                    .pending
                    .keys()
                    .next_back()
                    .map_or(tx.tx.nonce, |n| n + 1),
            }),
            _ => None,
        }
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
        let tx = self.sign_at(nonce, body, &state.chain_id);
        self.pending.insert(nonce, tx.clone());
        Some(tx)
    }

    fn sign_at(&self, nonce: u64, body: TxBody, chain_id: &str) -> SignedTx {
        Tx {
            author: self.me,
            nonce,
            body,
        }
        .sign(chain_id, &self.key)
    }

    /// After a block: forgets what the ledger applied, then replays in nonce order, on a copy
    /// of `state` at the next height, every transaction of our key up to our last pending one:
    /// ours, and between them what `pooled` holds at a nonce (the operator's). Each that no
    /// longer applies, and each nonce nothing holds, gets a filler, so the ones behind keep
    /// their nonces and stay valid. Returns the fillers (pending here from now on), to take
    /// those nonces in the mempool and to be gossiped. If not even a filler applies (we are
    /// no longer an active member), nothing of ours can: everything pending is forgotten.
    /// Signatures that passed before are answered from `checks`, so replaying a long queue
    /// of our own transactions does not verify them again every block.
    pub fn prune(
        &mut self,
        state: &LedgerState,
        checks: &mut SigCache,
        pooled: impl Fn(u64) -> Option<SignedTx>,
    ) -> Vec<Filled> {
        let next = state.members.get(&self.me).map_or(0, |m| m.nonce);
        self.pending.retain(|n, _| *n >= next);
        let Some(&last) = self.pending.keys().next_back() else {
            return Vec::new();
        };
        let mut probe = state.clone();
        probe.height += 1;
        let mut filled = Vec::new();
        for nonce in next..=last {
            let reason = match self.pending.get(&nonce).cloned().or_else(|| pooled(nonce)) {
                Some(tx) => match probe.apply_tx_with(&tx, Some(checks)) {
                    Ok(()) => continue,
                    Err(e) => e.to_string(),
                },
                None => "no transaction holds this nonce".to_string(),
            };
            let filler = self.sign_at(nonce, TxBody::Filler, &state.chain_id);
            if probe.apply_tx_with(&filler, Some(checks)).is_err() {
                self.pending.clear();
                return Vec::new();
            }
            self.pending.insert(nonce, filler.clone());
            filled.push(Filled { filler, reason });
        }
        filled
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

    fn pay(them: MemberId, amount: u64) -> TxBody {
        TxBody::Transfer { to: them, amount }
    }

    /// A transaction signed with the outbox's key but not by the outbox: the operator's.
    fn operators(me: MemberId, nonce: u64, body: TxBody) -> SignedTx {
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        Tx {
            author: me,
            nonce,
            body,
        }
        .sign("outbox", &key)
    }

    #[test]
    fn the_operators_transactions_never_race_ours_for_a_nonce() {
        let (mut out, st, them) = setup();
        let duty = out.sign(pay(them, 1), &st, None).unwrap();
        let me = duty.tx.author;
        // Only the duty's nonce is refused, naming the next free one.
        assert_eq!(
            out.refuse_foreign(&operators(me, 0, pay(them, 9))),
            Some(TxRejected::NonceTaken { nonce: 0, next: 1 }),
            "another body at the duty's nonce"
        );
        assert_eq!(out.refuse_foreign(&duty), None, "the duty itself");
        // While the duty is pending, the operator's may follow it.
        assert_eq!(out.refuse_foreign(&operators(me, 1, pay(them, 9))), None);
        let other = ed25519_dalek::SigningKey::from_bytes(&[6; 32]);
        let theirs = Tx {
            author: them,
            nonce: 0,
            body: pay(me, 1),
        }
        .sign("outbox", &other);
        assert_eq!(out.refuse_foreign(&theirs), None, "another author");
    }

    /// Applies every pending transaction of `out` to `st` in nonce order.
    fn apply_pending(out: &Outbox, st: &mut LedgerState) {
        for t in out.pending() {
            st.apply_tx(t).unwrap();
        }
    }

    #[test]
    fn a_stale_transaction_gives_its_nonce_to_a_filler_and_strands_nothing() {
        let (mut out, st, them) = setup();
        out.sign(pay(them, 1), &st, None);
        // More than we have: can never apply.
        out.sign(pay(them, 1_000), &st, None);
        out.sign(pay(them, 2), &st, None);
        let filled = out.prune(&st, &mut SigCache::default(), |_| None);
        assert_eq!(filled.len(), 1);
        assert_eq!(filled[0].filler.tx.nonce, 1);
        assert_eq!(filled[0].filler.tx.body, TxBody::Filler);
        assert!(
            filled[0].reason.contains("insufficient stake"),
            "{}",
            filled[0].reason
        );
        let bodies: Vec<_> = out.pending().map(|t| t.tx.body.clone()).collect();
        assert_eq!(bodies, vec![pay(them, 1), TxBody::Filler, pay(them, 2)]);
        // Nonces kept: all three apply in turn, and the filler moved nothing but the nonce.
        let mut after = st.clone();
        apply_pending(&out, &mut after);
        assert_eq!(after.members[&them].stake, st.members[&them].stake + 3);
        assert_eq!(
            out.prune(&st, &mut SigCache::default(), |_| None),
            vec![],
            "nothing stale any more"
        );
        // Applied ones are forgotten.
        assert_eq!(
            out.prune(&after, &mut SigCache::default(), |_| None),
            vec![]
        );
        assert_eq!(out.pending().count(), 0);
    }

    #[test]
    fn the_operators_transaction_between_ours_that_cannot_apply_is_filled_as_is_a_gap() {
        let (mut out, st, them) = setup();
        let me = out.sign(pay(them, 1), &st, None).unwrap().tx.author;
        // The operator's, pooled at 1 (cannot apply), then nothing at 2, ours again at 3.
        let bad = operators(me, 1, pay(them, 1_000));
        out.sign(pay(them, 2), &st, Some(3));
        let pooled = |n| (n == 1).then(|| bad.clone());
        let filled = out.prune(&st, &mut SigCache::default(), pooled);
        let nonces: Vec<u64> = filled.iter().map(|f| f.filler.tx.nonce).collect();
        assert_eq!(nonces, vec![1, 2]);
        assert!(
            filled[1].reason.contains("no transaction"),
            "{}",
            filled[1].reason
        );
        let mut after = st.clone();
        apply_pending(&out, &mut after);
        assert_eq!(after.members[&me].nonce, 4);
        // The operator's that do apply are replayed and kept in place.
        let (mut out, st, them) = setup();
        let me = out.sign(pay(them, 1), &st, None).unwrap().tx.author;
        let good = operators(me, 1, pay(them, 5));
        out.sign(pay(them, 2), &st, Some(2));
        assert_eq!(
            out.prune(&st, &mut SigCache::default(), |n| (n == 1)
                .then(|| good.clone())),
            vec![]
        );
    }

    /// The driver's order after a block: fillers first (with the pool's transactions of our
    /// key between ours), into the pool at their nonces, then the pool's own prune. Before,
    /// the stale duty was withdrawn and the rest renumbered, and every pool's prune dropped the
    /// operator's transfers behind it: they never applied.
    #[test]
    fn the_operators_transfers_behind_a_stale_duty_survive_the_pools_prune_and_apply() {
        use crate::chain::mempool::{Mempool, MempoolLimits, BLOCK_TX_BYTES};
        let (mut out, st, them) = setup();
        let mut pool = Mempool::new(MempoolLimits::default());
        // The duty (here: a transfer of more than we hold, as a duty whose window passed).
        let duty = out.sign(pay(them, 1_000), &st, None).unwrap();
        let me = duty.tx.author;
        pool.insert(duty, &st).unwrap();
        for nonce in 1..4 {
            let t = operators(me, nonce, pay(them, 1));
            assert_eq!(out.refuse_foreign(&t), None);
            pool.insert(t, &st).unwrap();
        }
        let later = out.sign(pay(them, 2), &st, pool.next_nonce(&me)).unwrap();
        assert_eq!(later.tx.nonce, 4);
        pool.insert(later, &st).unwrap();
        let filled = out.prune(&st, &mut SigCache::default(), |n| pool.get(&me, n).cloned());
        assert_eq!(filled.len(), 1);
        for f in filled {
            pool.insert(f.filler, &st).unwrap();
        }
        let pruned = pool.prune(&st, &mut SigCache::default());
        assert!(pruned.failed.is_empty(), "{pruned:?}");
        let txs = pool.candidates(&st, 100, BLOCK_TX_BYTES);
        assert_eq!(txs.len(), 5);
        let mut after = st.clone();
        for t in &txs {
            after.apply_tx(t).unwrap();
        }
        assert_eq!(after.members[&them].stake, st.members[&them].stake + 5);
    }

    #[test]
    fn a_node_that_is_no_member_forgets_its_pending_transactions() {
        let (mut out, st, them) = setup();
        out.sign(pay(them, 1), &st, None);
        let mut gone = st.clone();
        gone.members.remove(&out.me);
        assert_eq!(gone.members.get(&out.me), None);
        assert_eq!(out.prune(&gone, &mut SigCache::default(), |_| None), vec![]);
        assert_eq!(out.pending().count(), 0);
    }
}
