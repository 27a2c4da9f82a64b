//! The chain driver's Prometheus metrics, registered in the node's one registry (beside
//! libp2p's and the network's) under the `seedfed_` prefix: the tip (height, round), commit
//! and sign latency histograms, the mempool, the DKG phase, leaves allocated and left per key,
//! reconstruction failures by cause, evidence by kind and peers by role. The full list with
//! types and labels is in `docs/operator-guide.md`; [`FAMILIES`] names every family.
//!
//! Guarantees: every label comes from a fixed, small set of names (reasons, causes, kinds,
//! roles, the phase) or is a key index the ledger still holds (bounded by the ledger's keys,
//! labels of keys it no longer holds are removed), never from a peer, an author or input, so
//! a hostile peer cannot grow the registry. Updating a metric never allocates per message.

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use seedfed_protocol::ledger::{Evidence, TxBody};
use seedfed_protocol::reconstruct::blame::BlameEvidence;
use serde::{Deserialize, Serialize};

use super::mempool::TxRejected;

/// Every metric family the chain registers, by its OpenMetrics family name (the `# TYPE`
/// line's): a counter's samples add `_total`, a histogram's `_bucket`, `_sum` and `_count`.
pub const FAMILIES: &[&str] = &[
    "seedfed_chain_height",
    "seedfed_consensus_round",
    "seedfed_commit_latency_seconds",
    "seedfed_mempool_refused",
    "seedfed_mempool_evicted",
    "seedfed_mempool_transactions",
    "seedfed_mempool_bytes",
    "seedfed_dkg_phase",
    "seedfed_key_leaves_allocated",
    "seedfed_key_leaves_left",
    "seedfed_sign_latency_seconds",
    "seedfed_reconstruction_failures",
    "seedfed_evidence",
    "seedfed_peers",
];

/// Labels of a refusal.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Refusal {
    /// [`TxRejected::label`].
    pub reason: &'static str,
}

/// Labels of a per-key gauge: the key's index on the ledger.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyLabel {
    /// The key's index.
    pub key: u32,
}

/// Labels of a reconstruction failure.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Cause {
    /// `bad_contribution`, `mask_dispute` (blame decided on the ledger) or
    /// `contribution_unavailable` (this node could not contribute its share).
    pub cause: &'static str,
}

/// Labels of evidence.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    /// See [`evidence_kind`].
    pub kind: &'static str,
}

/// Labels of connected peers.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Role {
    /// `validator`, `member` (on the ledger, not validating) or `other` (admitted on the
    /// network only, e.g. a bootstrap node).
    pub role: &'static str,
}

/// The values of [`Refusal::reason`] ([`TxRejected::label`]).
pub const REFUSALS: [&str; 11] = [
    "invalid",
    "too_large",
    "not_member",
    "stale_nonce",
    "nonce_too_far_ahead",
    "nonce_taken",
    "pool_txs",
    "pool_bytes",
    "author_txs",
    "author_bytes",
    "newcomer_quota",
];

/// The values of [`Cause::cause`].
pub const CAUSES: [&str; 4] = [
    "bad_contribution",
    "mask_dispute",
    "contribution_unavailable",
    "leaf_mismatch",
];

/// The values of [`Kind::kind`] ([`evidence_kind`]).
pub const EVIDENCE_KINDS: [&str; 6] = [
    "equivocation",
    "inactivity",
    "dkg_complaint",
    "deal_complaint",
    "sign_blame",
    "leaf_mismatch",
];

/// The values of [`Role::role`].
pub const ROLES: [&str; 3] = ["validator", "member", "other"];

/// Where the open DKG stands, from the ledger's windows (`seedfed_dkg_phase` is its number,
/// `/status` → `chain.dkg_in_progress.phase` its name).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DkgPhase {
    /// No DKG open (0).
    #[default]
    Idle = 0,
    /// Round-1 window: commitments (1).
    Round1 = 1,
    /// Complaint window: answers, complaints (2).
    Complaints = 2,
    /// Windows closed, waiting for the `DkgFinalize` (3).
    Finalizing = 3,
}

impl DkgPhase {
    /// The value of `seedfed_dkg_phase`.
    pub fn gauge(self) -> i64 {
        self as i64
    }
}

/// Commit latency buckets: 5 ms to ~41 s.
fn commit_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// Sign latency buckets: 50 ms to ~410 s.
fn sign_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.05, 2.0, 14))
}

/// The chain's metrics (cheap to clone; clones share the values).
#[derive(Clone, Debug)]
pub struct ChainMetrics {
    refused: Family<Refusal, Counter>,
    /// All refusals (for `/status`; not registered, the family has them by reason).
    refused_total: Counter,
    evicted: Counter,
    pool_txs: Gauge,
    pool_bytes: Gauge,
    height: Gauge,
    round: Gauge,
    commit_latency: Histogram,
    dkg_phase: Gauge,
    leaves_allocated: Family<KeyLabel, Gauge>,
    leaves_left: Family<KeyLabel, Gauge>,
    /// The key labels set now (to remove those of keys the ledger no longer holds).
    keys: Arc<Mutex<Vec<u32>>>,
    sign_latency: Histogram,
    reconstruction_failures: Family<Cause, Counter>,
    evidence: Family<Kind, Counter>,
    peers: Family<Role, Gauge>,
}

impl Default for ChainMetrics {
    fn default() -> Self {
        ChainMetrics {
            refused: Family::default(),
            refused_total: Counter::default(),
            evicted: Counter::default(),
            pool_txs: Gauge::default(),
            pool_bytes: Gauge::default(),
            height: Gauge::default(),
            round: Gauge::default(),
            commit_latency: commit_buckets(),
            dkg_phase: Gauge::default(),
            leaves_allocated: Family::default(),
            leaves_left: Family::default(),
            keys: Arc::default(),
            sign_latency: sign_buckets(),
            reconstruction_failures: Family::default(),
            evidence: Family::default(),
            peers: Family::default(),
        }
    }
}

fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl ChainMetrics {
    /// Adds the metrics to `registry`. Counters of the fixed label sets start at zero, so
    /// every series exists (and rates work) before the first event.
    pub fn register(&self, registry: &mut Registry) {
        for reason in REFUSALS {
            let _ = self.refused.get_or_create(&Refusal { reason });
        }
        for cause in CAUSES {
            let _ = self.reconstruction_failures.get_or_create(&Cause { cause });
        }
        for kind in EVIDENCE_KINDS {
            let _ = self.evidence.get_or_create(&Kind { kind });
        }
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
        r.register(
            "chain_height",
            "Height of the last decided block",
            self.height.clone(),
        );
        r.register(
            "consensus_round",
            "Consensus round of the height being decided",
            self.round.clone(),
        );
        r.register(
            "commit_latency_seconds",
            "From holding the decided round's proposal to deciding the height (consensus only)",
            self.commit_latency.clone(),
        );
        r.register(
            "dkg_phase",
            "The epoch DKG's phase: 0 idle, 1 round-1 window, 2 complaint window, 3 finalizing",
            self.dkg_phase.clone(),
        );
        r.register(
            "key_leaves_allocated",
            "One-time keys (leaves) of each ledger key allocated to sign requests",
            self.leaves_allocated.clone(),
        );
        r.register(
            "key_leaves_left",
            "One-time keys (leaves) of each ledger key neither allocated nor retired",
            self.leaves_left.clone(),
        );
        r.register(
            "sign_latency_seconds",
            "From a relayed sign request accepted by this node to its signature on the ledger",
            self.sign_latency.clone(),
        );
        r.register(
            "reconstruction_failures",
            "One-time key reconstructions that failed, by cause",
            self.reconstruction_failures.clone(),
        );
        r.register(
            "evidence",
            "Evidence of misbehaviour decided on the ledger, by kind",
            self.evidence.clone(),
        );
        r.register(
            "peers",
            "Connected admitted peers, by their role on the ledger",
            self.peers.clone(),
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

    /// Records the tip: the last decided height and the round being decided.
    pub fn tip(&self, height: u64, round: i64) {
        self.height.set(gauge_value(height));
        self.round.set(round);
    }

    /// Records one commit latency sample, in microseconds.
    pub fn commit_latency_us(&self, us: u64) {
        self.commit_latency.observe(us as f64 / 1e6);
    }

    /// Records one sign latency sample.
    pub fn sign_latency(&self, d: std::time::Duration) {
        self.sign_latency.observe(d.as_secs_f64());
    }

    /// Records the DKG phase.
    pub fn dkg_phase(&self, phase: DkgPhase) {
        self.dkg_phase.set(phase.gauge());
    }

    /// Records each ledger key's (index, leaves allocated, leaves left), and removes the labels
    /// of keys no longer listed.
    pub fn keys(&self, keys: impl Iterator<Item = (u32, u64, u64)>) {
        let Ok(mut set) = self.keys.lock() else {
            return;
        };
        let before = std::mem::take(&mut *set);
        for (key, allocated, left) in keys {
            let l = KeyLabel { key };
            self.leaves_allocated
                .get_or_create(&l)
                .set(gauge_value(allocated));
            self.leaves_left.get_or_create(&l).set(gauge_value(left));
            set.push(key);
        }
        for key in before.into_iter().filter(|k| !set.contains(k)) {
            self.leaves_allocated.remove(&KeyLabel { key });
            self.leaves_left.remove(&KeyLabel { key });
        }
    }

    /// Counts a reconstruction failure.
    pub fn reconstruction_failed(&self, cause: &'static str) {
        self.reconstruction_failures
            .get_or_create(&Cause { cause })
            .inc();
    }

    /// Counts the evidence (and the reconstruction failures it proves) in a decided
    /// transaction body; other bodies count nothing.
    pub fn decided_tx(&self, body: &TxBody) {
        if let Some(kind) = evidence_kind(body) {
            self.evidence.get_or_create(&Kind { kind }).inc();
        }
        match body {
            TxBody::SignBlame { evidence, .. } => self.reconstruction_failed(match **evidence {
                BlameEvidence::BadContribution { .. } => "bad_contribution",
                BlameEvidence::MaskDispute { .. } => "mask_dispute",
            }),
            TxBody::LeafMismatch { .. } => self.reconstruction_failed("leaf_mismatch"),
            _ => {}
        }
    }

    /// Records connected peers by role (`counts` in [`ROLES`] order).
    pub fn peers(&self, counts: [usize; 3]) {
        for (role, n) in ROLES.into_iter().zip(counts) {
            self.peers
                .get_or_create(&Role { role })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

/// The kind of evidence a transaction body carries, if any: `equivocation` and `inactivity`
/// (evictions), `dkg_complaint`, `deal_complaint` (a holder proves a bad dealt batch),
/// `sign_blame` (a quorum member's bad contribution or mask dispute), `leaf_mismatch` (a
/// sector owner's dealt seed that does not generate its tree's leaf, found at signing).
pub fn evidence_kind(body: &TxBody) -> Option<&'static str> {
    match body {
        TxBody::Evict { evidence, .. } => Some(match evidence {
            Evidence::Equivocation { .. } => "equivocation",
            Evidence::Inactivity { .. } => "inactivity",
        }),
        TxBody::DkgComplaint { .. } => Some("dkg_complaint"),
        TxBody::DealComplaint { .. } => Some("deal_complaint"),
        TxBody::SignBlame { .. } => Some("sign_blame"),
        TxBody::LeafMismatch { .. } => Some("leaf_mismatch"),
        _ => None,
    }
}

/// The DKG phase of `state` at its height `height`, from the open attempt's windows (not from
/// what is on the ledger: a dealer that withholds its commitment does not hold the phase back).
pub fn dkg_phase(state: &seedfed_protocol::ledger::LedgerState, height: u64) -> DkgPhase {
    let d = &state.dkg;
    if d.roster.is_empty() {
        DkgPhase::Idle
    } else if height <= d.round1_end(&state.epochs) {
        DkgPhase::Round1
    } else if height <= d.complaint_end(&state.epochs) {
        DkgPhase::Complaints
    } else {
        DkgPhase::Finalizing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::mempool::Full;

    fn encoded(registry: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        text
    }

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
        let text = encoded(&registry);
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

    #[test]
    fn every_family_is_registered_under_its_documented_name() {
        let m = ChainMetrics::default();
        let mut registry = Registry::default();
        m.register(&mut registry);
        // A labelled family shows once it has a label set.
        m.refused(&TxRejected::Full(Full::Bytes(10)));
        m.reconstruction_failed("contribution_unavailable");
        m.decided_tx(&TxBody::Evict {
            member: seedfed_protocol::member::MemberId([1; 32]),
            evidence: Evidence::Inactivity { missed_heights: 9 },
        });
        m.keys([(0, 1, 2)].into_iter());
        m.peers([0, 0, 0]);
        let text = encoded(&registry);
        for f in FAMILIES {
            assert!(
                text.contains(&format!("# TYPE {f} ")),
                "{f} missing: {text}"
            );
        }
    }

    #[test]
    fn every_refusal_label_is_listed() {
        use crate::chain::mempool::Full;
        let all = [
            TxRejected::Invalid(String::new()),
            TxRejected::TooLarge {
                kind: "",
                size: 0,
                cap: 0,
            },
            TxRejected::NotMember(seedfed_protocol::member::MemberId([0; 32])),
            TxRejected::StaleNonce { got: 0, next: 0 },
            TxRejected::NonceTooFarAhead { got: 0, next: 0 },
            TxRejected::NonceTaken { nonce: 0, next: 0 },
            TxRejected::Full(Full::Txs(0)),
            TxRejected::Full(Full::Bytes(0)),
            TxRejected::Full(Full::AuthorTxs(0)),
            TxRejected::Full(Full::AuthorBytes(0)),
            TxRejected::Full(Full::Newcomers { txs: 0, bytes: 0 }),
        ];
        let labels: Vec<&str> = all.iter().map(TxRejected::label).collect();
        assert_eq!(labels, REFUSALS);
    }

    #[test]
    fn key_labels_follow_the_ledger_keys() {
        let m = ChainMetrics::default();
        let mut registry = Registry::default();
        m.register(&mut registry);
        m.keys([(0, 10, 6), (1, 0, 16)].into_iter());
        let text = encoded(&registry);
        assert!(
            text.contains("seedfed_key_leaves_left{key=\"0\"} 6"),
            "{text}"
        );
        assert!(
            text.contains("seedfed_key_leaves_allocated{key=\"1\"} 0"),
            "{text}"
        );
        // Key 0 gone from the ledger: its labels go too.
        m.keys([(1, 3, 13)].into_iter());
        let text = encoded(&registry);
        assert!(!text.contains("key=\"0\""), "{text}");
        assert!(
            text.contains("seedfed_key_leaves_left{key=\"1\"} 13"),
            "{text}"
        );
    }

    #[test]
    fn histograms_and_peers_encode_with_units_and_fixed_roles() {
        let m = ChainMetrics::default();
        let mut registry = Registry::default();
        m.register(&mut registry);
        m.commit_latency_us(20_000);
        m.sign_latency(std::time::Duration::from_millis(1500));
        m.peers([2, 1, 0]);
        m.tip(7, 1);
        let text = encoded(&registry);
        assert!(
            text.contains("seedfed_commit_latency_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains("seedfed_commit_latency_seconds_sum 0.02"),
            "{text}"
        );
        assert!(
            text.contains("seedfed_sign_latency_seconds_sum 1.5"),
            "{text}"
        );
        assert!(
            text.contains("seedfed_peers{role=\"validator\"} 2"),
            "{text}"
        );
        assert!(text.contains("seedfed_peers{role=\"other\"} 0"), "{text}");
        assert!(text.contains("seedfed_chain_height 7"), "{text}");
        assert!(text.contains("seedfed_consensus_round 1"), "{text}");
    }

    #[test]
    fn evidence_kinds_come_from_the_body_variant() {
        assert_eq!(evidence_kind(&TxBody::Exit), None);
        assert_eq!(
            evidence_kind(&TxBody::Evict {
                member: seedfed_protocol::member::MemberId([1; 32]),
                evidence: Evidence::Inactivity { missed_heights: 9 },
            }),
            Some("inactivity")
        );
        let m = ChainMetrics::default();
        let mut registry = Registry::default();
        m.register(&mut registry);
        m.decided_tx(&TxBody::Evict {
            member: seedfed_protocol::member::MemberId([1; 32]),
            evidence: Evidence::Inactivity { missed_heights: 9 },
        });
        m.decided_tx(&TxBody::Exit);
        let text = encoded(&registry);
        assert!(
            text.contains("seedfed_evidence_total{kind=\"inactivity\"} 1"),
            "{text}"
        );
    }

    /// Every `expr` in a Grafana dashboard, at any depth.
    fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                        _ => exprs(x, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| exprs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn the_grafana_dashboard_names_only_metrics_the_registry_encodes() {
        let m = ChainMetrics::default();
        let mut registry = Registry::default();
        m.register(&mut registry);
        m.keys([(0, 1, 2)].into_iter());
        m.peers([1, 0, 0]);
        m.refused(&TxRejected::Full(Full::Bytes(10)));
        let text = encoded(&registry);
        let exported: std::collections::BTreeSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/grafana/seedfed.json");
        let dashboard: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut all = Vec::new();
        exprs(&dashboard, &mut all);
        assert!(all.len() >= 10, "{all:?}");
        for e in &all {
            let names: Vec<&str> = e
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .filter(|t| t.starts_with("seedfed_"))
                .collect();
            assert!(!names.is_empty(), "{e:?} names no seedfed metric");
            for n in names {
                assert!(
                    exported.contains(n),
                    "{n} in {e:?} is not exported: {exported:?}"
                );
            }
        }
    }
}
