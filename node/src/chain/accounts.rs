//! What a wallet-like client needs from the node: an account's stake, status and next nonce
//! (`GET /account/{id}`, the ledger's nonce advanced past this node's mempool), and the fate of
//! transactions submitted through the local API (`GET /tx/{id}`: pending, decided at a height,
//! dropped with the ledger's reason, or replaced by another with the same nonce).
//!
//! Guarantees: only public ledger values; the watch list is bounded ([`MAX_WATCHED`], oldest
//! forgotten first) and keyed by (author, nonce), so a decided block costs one map lookup per
//! transaction and a hash only for a watched one.

use std::collections::{BTreeMap, VecDeque};

use seedfed_protocol::ledger::{Block, MemberStatus, SignedTx};
use seedfed_protocol::member::MemberId;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::driver::Driver;

/// Transactions submitted through the local API whose fate the node remembers.
pub const MAX_WATCHED: usize = 4096;

/// An account as `GET /account/{id}` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    /// Identity (hex Ed25519 key).
    pub member: String,
    /// `active`, `exited` or `evicted`.
    pub status: String,
    /// Stake held.
    pub stake: u64,
    /// Whether it validates now (active with stake).
    pub validator: bool,
    /// The ledger's next nonce for it.
    pub nonce: u64,
    /// The nonce its next transaction should carry: past the ledger's and past every one of
    /// its transactions waiting in this node's mempool.
    pub next_nonce: u64,
    /// Height of the ledger this answer is from.
    pub height: u64,
}

/// Where a transaction submitted through this node stands (`GET /tx/{id}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TxState {
    /// Waiting for a block.
    Pending,
    /// Applied in the block at `height`.
    Decided {
        /// The block's height.
        height: u64,
    },
    /// The ledger would not apply it (the mempool dropped it); `reason` is the ledger's.
    Dropped {
        /// Why.
        reason: String,
    },
    /// Another transaction of the author with the same nonce was decided at `height`.
    Replaced {
        /// The block's height.
        height: u64,
    },
    /// This node does not know it (never submitted here, or forgotten).
    Unknown,
}

/// `GET /account/{id}`: the account of `member`, and where the answer goes (`None`: no such
/// member on the ledger).
#[derive(Debug)]
pub struct AccountQuery {
    /// Whose.
    pub member: MemberId,
    /// The answer.
    pub reply: oneshot::Sender<Option<AccountInfo>>,
}

/// `GET /tx/{id}`: the state of the transaction with id (digest) `id`.
#[derive(Debug)]
pub struct TxQuery {
    /// `Tx::digest`.
    pub id: [u8; 32],
    /// The answer.
    pub reply: oneshot::Sender<TxState>,
}

/// The transactions watched at one (author, nonce): their ids and states.
type Slot = Vec<([u8; 32], TxState)>;

/// The watched transactions, by (author, nonce), with their ids and states.
#[derive(Debug, Default)]
pub(super) struct TxWatch {
    by_slot: BTreeMap<(MemberId, u64), Slot>,
    order: VecDeque<((MemberId, u64), [u8; 32])>,
}

impl TxWatch {
    /// Starts watching `tx` (id `id`), forgetting the oldest past [`MAX_WATCHED`].
    pub(super) fn watch(&mut self, tx: &SignedTx, id: [u8; 32]) {
        let slot = (tx.tx.author, tx.tx.nonce);
        let entries = self.by_slot.entry(slot).or_default();
        if entries.iter().any(|(i, _)| *i == id) {
            return;
        }
        entries.push((id, TxState::Pending));
        self.order.push_back((slot, id));
        while self.order.len() > MAX_WATCHED {
            let Some((slot, id)) = self.order.pop_front() else {
                break;
            };
            if let Some(v) = self.by_slot.get_mut(&slot) {
                v.retain(|(i, _)| *i != id);
                if v.is_empty() {
                    self.by_slot.remove(&slot);
                }
            }
        }
    }

    /// The state of transaction `id`.
    pub(super) fn state(&self, id: &[u8; 32]) -> TxState {
        self.by_slot
            .values()
            .flatten()
            .find(|(i, _)| i == id)
            .map_or(TxState::Unknown, |(_, s)| s.clone())
    }

    /// Records the watched transactions `block` decided, or replaced; `digest` computes a
    /// transaction's id (called only for watched slots).
    pub(super) fn decided(&mut self, block: &Block, digest: impl Fn(&SignedTx) -> [u8; 32]) {
        if self.by_slot.is_empty() {
            return;
        }
        for tx in &block.txs {
            let Some(entries) = self.by_slot.get_mut(&(tx.tx.author, tx.tx.nonce)) else {
                continue;
            };
            let id = digest(tx);
            for (i, s) in entries.iter_mut() {
                if *s == TxState::Pending || matches!(s, TxState::Dropped { .. }) {
                    *s = if *i == id {
                        TxState::Decided {
                            height: block.height,
                        }
                    } else {
                        TxState::Replaced {
                            height: block.height,
                        }
                    };
                }
            }
        }
    }

    /// Records that the mempool dropped the transaction at (author, nonce) because the ledger
    /// refuses it.
    pub(super) fn dropped(&mut self, author: &MemberId, nonce: u64, reason: &str) {
        if let Some(entries) = self.by_slot.get_mut(&(*author, nonce)) {
            for (_, s) in entries.iter_mut() {
                if *s == TxState::Pending {
                    *s = TxState::Dropped {
                        reason: reason.to_string(),
                    };
                }
            }
        }
    }
}

impl Driver {
    /// Answers `GET /account/{id}` from the tip and the mempool.
    pub(super) fn on_account_query(&self, q: AccountQuery) {
        let st = &self.consensus.ledger().state;
        let info = st.members.get(&q.member).map(|m| AccountInfo {
            member: hex::encode(q.member.as_bytes()),
            status: match m.status {
                MemberStatus::Active => "active",
                MemberStatus::Exited => "exited",
                MemberStatus::Evicted => "evicted",
            }
            .into(),
            stake: m.stake,
            validator: st.is_validator(&q.member),
            nonce: m.nonce,
            next_nonce: self
                .mempool
                .next_nonce(&q.member)
                .map_or(m.nonce, |n| n.max(m.nonce)),
            height: self.consensus.ledger().height(),
        });
        let _ = q.reply.send(info);
    }

    /// Answers `GET /tx/{id}`.
    pub(super) fn on_tx_query(&self, q: TxQuery) {
        let _ = q.reply.send(self.tx_watch.state(&q.id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seedfed_protocol::ledger::{Tx, TxBody};

    fn tx(seed: u8, nonce: u64, amount: u64) -> SignedTx {
        let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        Tx {
            author: MemberId(key.verifying_key().to_bytes()),
            nonce,
            body: TxBody::Transfer {
                to: MemberId([9; 32]),
                amount,
            },
        }
        .sign("watch", &key)
    }

    fn block(height: u64, txs: Vec<SignedTx>) -> Block {
        Block {
            height,
            prev_hash: [0; 32],
            proposer: MemberId([0; 32]),
            last_commit: Default::default(),
            txs,
            state_hash: [0; 32],
        }
    }

    #[test]
    fn a_watched_transaction_is_decided_replaced_or_dropped() {
        let id = |t: &SignedTx| t.tx.digest("watch");
        let (a, b, c) = (tx(1, 0, 5), tx(1, 0, 6), tx(2, 3, 1));
        let mut w = TxWatch::default();
        w.watch(&a, id(&a));
        w.watch(&c, id(&c));
        assert_eq!(w.state(&id(&a)), TxState::Pending);
        assert_eq!(w.state(&id(&b)), TxState::Unknown);
        w.dropped(&c.tx.author, 3, "insufficient stake");
        assert_eq!(
            w.state(&id(&c)),
            TxState::Dropped {
                reason: "insufficient stake".into()
            }
        );
        // Another transaction with a's author and nonce lands: a was replaced.
        w.decided(&block(4, vec![b.clone()]), id);
        assert_eq!(w.state(&id(&a)), TxState::Replaced { height: 4 });
        let mut w = TxWatch::default();
        w.watch(&a, id(&a));
        w.decided(&block(5, vec![a.clone()]), id);
        assert_eq!(w.state(&id(&a)), TxState::Decided { height: 5 });
    }

    #[test]
    fn the_watch_list_is_bounded() {
        let mut w = TxWatch::default();
        let first = tx(1, 0, 1);
        w.watch(&first, [0; 32]);
        for n in 1..=MAX_WATCHED as u64 {
            let t = tx(1, n, 1);
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&n.to_le_bytes());
            w.watch(&t, id);
        }
        assert_eq!(w.order.len(), MAX_WATCHED);
        assert_eq!(w.state(&[0; 32]), TxState::Unknown);
    }
}
