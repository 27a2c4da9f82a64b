//! The chain driver's Prometheus metrics, registered in the node's one registry (beside
//! libp2p's and the network's) under the `seedfed_` prefix: transactions the mempool refused,
//! by reason, transactions it pushed out, and its size.
//!
//! Guarantees: labels are a fixed, small set of reason names (never peer-, author- or
//! input-derived), so a hostile peer cannot grow the registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::mempool::TxRejected;

/// Labels of a refusal.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Refusal {
    /// [`TxRejected::label`].
    pub reason: &'static str,
}

/// The chain's metrics (cheap to clone; clones share the values).
#[derive(Clone, Debug, Default)]
pub struct ChainMetrics {
    refused: Family<Refusal, Counter>,
    /// All refusals (for `/status`; not registered, the family has them by reason).
    refused_total: Counter,
    evicted: Counter,
    pool_txs: Gauge,
    pool_bytes: Gauge,
}

impl ChainMetrics {
    /// Adds the metrics to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("seedfed");
        r.register(
            "mempool_refused",
            "Transactions the mempool refused, by reason (gossip, local API, our own)",
            self.refused.clone(),
        );
        r.register(
            "mempool_evicted",
            "Non-validators' transactions pushed out of a full mempool by a validator's",
            self.evicted.clone(),
        );
        r.register(
            "mempool_transactions",
            "Transactions waiting in the mempool",
            self.pool_txs.clone(),
        );
        r.register(
            "mempool_bytes",
            "Encoded bytes waiting in the mempool",
            self.pool_bytes.clone(),
        );
    }

    /// Counts a refusal.
    pub fn refused(&self, why: &TxRejected) {
        self.refused
            .get_or_create(&Refusal {
                reason: why.label(),
            })
            .inc();
        self.refused_total.inc();
    }

    /// Refusals so far, all reasons.
    pub fn refused_total(&self) -> u64 {
        self.refused_total.get()
    }

    /// Counts evictions.
    pub fn evicted(&self, n: usize) {
        self.evicted.inc_by(n as u64);
    }

    /// Records the pool's size.
    pub fn pool(&self, txs: usize, bytes: usize) {
        self.pool_txs.set(i64::try_from(txs).unwrap_or(i64::MAX));
        self.pool_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::mempool::Full;

    #[test]
    fn refusals_are_counted_by_reason_in_the_registry() {
        let m = ChainMetrics::default();
        let mut registry = Registry::default();
        m.register(&mut registry);
        m.refused(&TxRejected::Full(Full::Bytes(10)));
        m.refused(&TxRejected::Full(Full::Bytes(10)));
        m.refused(&TxRejected::Full(Full::AuthorTxs(3)));
        m.evicted(2);
        m.pool(5, 700);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("seedfed_mempool_refused_total{reason=\"pool_bytes\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("seedfed_mempool_refused_total{reason=\"author_txs\"} 1"),
            "{text}"
        );
        assert!(text.contains("seedfed_mempool_evicted_total 2"), "{text}");
        assert!(text.contains("seedfed_mempool_bytes 700"), "{text}");
        assert_eq!(m.refused_total(), 3);
    }
}
