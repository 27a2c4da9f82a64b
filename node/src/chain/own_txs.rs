//! The transactions of the node's own key, between its outbox and the network: signed and
//! gossiped at once, re-gossiped while they wait, a filler in place of one that can no longer
//! apply (before the mempool is pruned, so nothing behind it is stranded), and put back into
//! the mempool if pruning took them out.

use std::collections::BTreeMap;
use std::time::Duration;

use seedfed_protocol::ledger::{self, SignedTx, TxBody};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::driver::Driver;
use super::wire::{tx_messages, TX_TOPIC};

impl Driver {
    /// Signs `body` as our next transaction, puts it in the mempool and gossips it at once
    /// (and again on every tick until it is decided). An equal body already pending is left
    /// alone.
    pub(super) fn sign_and_publish(&mut self, body: TxBody) {
        let state = &self.consensus.ledger().state;
        let pooled = self.mempool.next_nonce(&self.me);
        let Some(tx) = self.outbox.sign(body, state, pooled) else {
            return;
        };
        self.consensus.remember_verified(&tx);
        self.insert_own(tx.clone());
        let net = self.network.clone();
        let bytes = ledger::encode(&vec![tx]);
        tokio::spawn(async move {
            if let Err(e) = net.publish(TX_TOPIC, bytes).await {
                debug!("tx publish: {e}");
            }
        });
    }

    /// Before the mempool is pruned: a filler takes the nonce of each transaction of our key
    /// that can no longer apply, up to our last pending one ([`Outbox::prune`]), so the
    /// mempools do not drop what is behind it. The fillers go into our mempool and onto the
    /// `tx` topic together with every transaction of our key pooled behind the first (a peer
    /// that pruned before the filler reached it dropped those).
    pub(super) fn fill_own(&mut self) {
        let me = self.me;
        let pool = &self.mempool;
        let (ledger, checks) = self.consensus.ledger_and_checks();
        let filled = self
            .outbox
            .prune(&ledger.state, checks, |n| pool.get(&me, n).cloned());
        let Some(first) = filled.first().map(|f| f.filler.tx.nonce) else {
            return;
        };
        for f in filled {
            debug!(nonce = f.filler.tx.nonce, reason = %f.reason, "a filler takes the nonce of our transaction that cannot apply");
            self.tx_watch.dropped(&me, f.filler.tx.nonce, &f.reason);
            self.consensus.remember_verified(&f.filler);
            self.insert_own(f.filler);
        }
        let behind: Vec<SignedTx> = self
            .mempool
            .of_author(&me)
            .filter(|t| t.tx.nonce >= first)
            .cloned()
            .collect();
        let net = self.network.clone();
        tokio::spawn(async move {
            for message in tx_messages(&behind) {
                if let Err(e) = net.publish(TX_TOPIC, message).await {
                    debug!("tx publish: {e}");
                }
            }
        });
    }

    /// Puts every pending transaction of ours back into the mempool if pruning took it out.
    pub(super) fn restore_own(&mut self) {
        let missing: Vec<SignedTx> = self
            .outbox
            .pending()
            .filter(|t| !self.mempool.contains(&t.tx.author, t.tx.nonce))
            .cloned()
            .collect();
        for tx in missing {
            self.insert_own(tx);
        }
    }

    /// Our own transaction into our mempool (the outbox keeps it and gossip carries it even
    /// if our pool refuses it, which only a pool full of validators' transactions does).
    fn insert_own(&mut self, tx: SignedTx) {
        if let Err(e) = self.insert(tx, "ours") {
            warn!(reason = %e, "our mempool refused our own transaction");
        }
    }

    /// Re-gossips the transactions of our key that are still waiting, ours and the
    /// operator's, each at most every [`REGOSSIP_AFTER`] (gossip is best effort; an unchanged
    /// batch is a duplicate to gossipsub until its cache forgets it).
    pub(super) async fn regossip_own(&mut self) {
        let mut own: BTreeMap<u64, SignedTx> = self
            .mempool
            .of_author(&self.me)
            .map(|t| (t.tx.nonce, t.clone()))
            .collect();
        own.extend(self.outbox.pending().map(|t| (t.tx.nonce, t.clone())));
        let now = Instant::now();
        let chain_id = &self.consensus.ledger().state.chain_id;
        let ids: Vec<[u8; 32]> = own.values().map(|t| t.tx.digest(chain_id)).collect();
        let own: Vec<SignedTx> = own
            .into_values()
            .zip(&ids)
            .filter(|(_, id)| self.regossiped.tx_due(**id, now))
            .map(|(t, _)| t)
            .collect();
        self.regossiped.forget_except(&ids);
        for message in tx_messages(&own) {
            if self.regossiped.due(&message, now) {
                let _ = self.network.publish(TX_TOPIC, message).await;
            }
        }
    }
}

/// Messages of the `tx` topic we re-gossiped, by content hash, and when: the same content is
/// published again only once gossipsub's duplicate cache has forgotten it
/// ([`crate::network::GOSSIP_DUPLICATE_CACHE`]), instead of being refused with a warning on
/// every tick.
#[derive(Default)]
pub(super) struct Regossiped(
    std::collections::HashMap<[u8; 32], Instant>,
    /// Each pending transaction of our key (by digest), and when it was last (re-)gossiped
    /// or first seen waiting.
    std::collections::HashMap<[u8; 32], Instant>,
);

/// How long a transaction of our key waits before it is gossiped again. Before, every
/// pending transaction went out again on every tick (1 s) in new batches, which under a
/// signing burst (hundreds of `SignaturePublish`es waiting per node) made every peer decode
/// and check all of them again each second.
pub(super) const REGOSSIP_AFTER: Duration = Duration::from_secs(5);

impl Regossiped {
    /// Whether the pending transaction `id` is due to be re-gossiped at `now` (it waited
    /// [`REGOSSIP_AFTER`] since it was last gossiped, or since first seen waiting here; its
    /// first gossip is the signer's). If so, remembers that it is.
    fn tx_due(&mut self, id: [u8; 32], now: Instant) -> bool {
        match self.1.get_mut(&id) {
            Some(at) if now.saturating_duration_since(*at) >= REGOSSIP_AFTER => {
                *at = now;
                true
            }
            Some(_) => false,
            None => {
                self.1.insert(id, now);
                false
            }
        }
    }

    /// Forgets the transactions not in `pending`.
    fn forget_except(&mut self, pending: &[[u8; 32]]) {
        let keep: std::collections::HashSet<&[u8; 32]> = pending.iter().collect();
        self.1.retain(|id, _| keep.contains(id));
    }

    /// Whether `message` may be published at `now` (and if so, remembers that it is).
    fn due(&mut self, message: &[u8], now: Instant) -> bool {
        let after = crate::network::GOSSIP_DUPLICATE_CACHE + Duration::from_secs(1);
        self.0
            .retain(|_, at| now.saturating_duration_since(*at) < after);
        let id = seedfed_protocol::hash::hash32(REGOSSIP_ID, &[], &[0; 16], &[message]);
        if self.0.contains_key(&id) {
            return false;
        }
        self.0.insert(id, now);
        true
    }
}

const REGOSSIP_ID: seedfed_protocol::hash::Domain =
    seedfed_protocol::hash::Domain::new("seedfed-regossip");

#[cfg(test)]
mod tests {
    use super::*;

    /// Before, every tick re-published unchanged content, which gossipsub refused with a
    /// warning at every node with a pending transaction, once a second.
    #[test]
    fn unchanged_content_is_regossiped_only_once_the_duplicate_cache_forgot_it() {
        let mut r = Regossiped::default();
        let t0 = Instant::now();
        assert!(r.due(b"batch a", t0));
        assert!(!r.due(b"batch a", t0 + Duration::from_secs(1)));
        assert!(
            r.due(b"batch b", t0 + Duration::from_secs(1)),
            "new content"
        );
        let later = t0 + crate::network::GOSSIP_DUPLICATE_CACHE + Duration::from_secs(2);
        assert!(r.due(b"batch a", later));
        assert_eq!(r.0.len(), 1, "forgotten entries are dropped");
    }

    /// Before, every pending transaction went out again on every tick, in batches whose
    /// content changed whenever one of them was decided.
    #[test]
    fn a_waiting_transaction_is_regossiped_only_every_few_seconds() {
        let mut r = Regossiped::default();
        let t0 = Instant::now();
        let (a, b) = ([1; 32], [2; 32]);
        assert!(!r.tx_due(a, t0), "its signer just gossiped it");
        assert!(!r.tx_due(a, t0 + Duration::from_secs(1)));
        assert!(!r.tx_due(b, t0 + Duration::from_secs(2)));
        assert!(r.tx_due(a, t0 + REGOSSIP_AFTER));
        assert!(!r.tx_due(a, t0 + REGOSSIP_AFTER + Duration::from_secs(1)));
        assert!(r.tx_due(b, t0 + Duration::from_secs(2) + REGOSSIP_AFTER));
        r.forget_except(&[b]);
        assert_eq!(r.1.len(), 1, "decided ones are forgotten");
    }
}
