//! What the status page plots and lists beyond the ledger's current state, as this node saw it
//! happen: a history of leaves allocated per key over time (with the exhaustion date that the
//! recent rate projects), the recent sign requests with their latency, the height of each
//! validator's last precommit that a block recorded, and the evidence decided in blocks
//! (evictions, DKG and deal complaints, sign blame) by kind, subject and height.
//!
//! Guarantees: bounded memory whatever the chain does: at most [`USAGE_SAMPLES`] samples for
//! each of the last [`USAGE_KEYS`] keys (when full, every other sample goes and the sampling
//! interval doubles, so the history always spans this node's uptime), the last [`SIGN_LOG`]
//! sign requests, the last [`EVIDENCE_LOG`] evidence transactions, and one height per current
//! validator. Times are when this node applied the
//! block (a block applied through sync carries the sync's time, not the chain's).

use std::collections::{BTreeMap, VecDeque};

use seedfed_protocol::ledger::{
    split_leaf, Block, ConvictionEvidence, Evidence, LedgerState, TxBody,
};
use seedfed_protocol::member::MemberId;
use seedfed_protocol::reconstruct::blame::BlameEvidence;
use serde::{Deserialize, Serialize};

use super::metrics::evidence_kind;
use super::status::KeySummary;

/// Samples kept per key.
pub const USAGE_SAMPLES: usize = 120;
/// Keys whose usage is kept (the newest ones).
pub const USAGE_KEYS: usize = 4;
/// Sign requests kept.
pub const SIGN_LOG: usize = 32;
/// Evidence transactions kept.
pub const EVIDENCE_LOG: usize = 32;
/// Least time between two usage samples at first (it doubles each time the ring fills).
pub const FIRST_SAMPLE_GAP_MS: u64 = 1_000;
/// Samples the projected rate is taken over (the most recent ones).
pub const RATE_WINDOW: usize = 30;

/// One point of a key's usage history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageSample {
    /// When (Unix ms).
    pub unix_ms: u64,
    /// Height then.
    pub height: u64,
    /// Leaves of the key allocated then.
    pub allocated: u64,
}

/// A key's usage over time and where it leads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUsage {
    /// The key's index.
    pub index: u32,
    /// Leaves it can ever allocate (allocated + left: the audit's retired leaves excluded).
    pub capacity: u64,
    /// Leaves allocated now.
    pub allocated: u64,
    /// Samples, oldest first.
    pub samples: Vec<UsageSample>,
    /// Leaves allocated per hour over the recent samples (rounded down; 0: none recently).
    pub per_hour: u64,
    /// When the key runs out at the recent rate (Unix ms); `None` without recent use.
    pub exhausts_unix_ms: Option<u64>,
}

/// A recent sign request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignRecord {
    /// The allocated leaf (leaf id: key index in the high 32 bits).
    pub leaf: u64,
    /// Its key.
    pub key: u32,
    /// The client that signed the request (hex identity).
    pub client: String,
    /// The validator that relayed it (hex identity).
    pub requester: String,
    /// Height the leaf was allocated at.
    pub height: u64,
    /// When this node applied that block (Unix ms); `None` for requests from before it started.
    pub requested_unix_ms: Option<u64>,
    /// Height of the block that carried the signature, once published.
    pub signed_height: Option<u64>,
    /// Time from allocation to the signature as this node saw both (ms).
    pub latency_ms: Option<u64>,
}

/// An evidence transaction decided in a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRecord {
    /// [`evidence_kind`]: `equivocation`, `inactivity`, `dkg_complaint`, `deal_complaint`,
    /// `sign_blame` (the labels of `seedfed_evidence_total`).
    pub kind: String,
    /// Whom it accuses (hex identity; empty when the ledger recorded no conviction for it).
    pub member: String,
    /// Who submitted it (hex identity).
    pub by: String,
    /// Height of the block that decided it.
    pub height: u64,
    /// What it says, in short.
    pub reason: String,
}

/// The record of `body`, submitted by `by` and decided at `height` with `state` the ledger
/// after the block, if it carries evidence.
pub fn evidence_record(
    body: &TxBody,
    by: &MemberId,
    height: u64,
    state: &LedgerState,
) -> Option<EvidenceRecord> {
    let kind = evidence_kind(body)?;
    let hexid = |m: &MemberId| hex::encode(m.as_bytes());
    let (member, reason) = match body {
        TxBody::Evict { member, evidence } => (
            hexid(member),
            match evidence {
                Evidence::Equivocation { a, .. } => {
                    format!("two votes at height {} round {}", a.height, a.round)
                }
                Evidence::Inactivity { missed_heights } => {
                    format!("missed {missed_heights} commits in a row")
                }
            },
        ),
        TxBody::DkgComplaint { epoch, accused, .. } => {
            (hexid(accused), format!("DKG of epoch {epoch}"))
        }
        TxBody::DealComplaint { sector, .. } => (
            state
                .newest
                .keygen_convictions
                .iter()
                .find(|(_, c)| c.sector == *sector && c.height == height)
                .map(|(m, _)| hexid(m))
                .unwrap_or_default(),
            format!("bad dealing of sector {sector}"),
        ),
        TxBody::SignBlame { leaf, evidence } => {
            let (key, index) = split_leaf(*leaf);
            match &**evidence {
                BlameEvidence::BadContribution { contribution, .. } => (
                    hexid(&contribution.sender),
                    format!("bad contribution to leaf {key}:{index}"),
                ),
                BlameEvidence::MaskDispute { mine, theirs, .. } => (
                    hexid(&theirs.sender),
                    format!(
                        "mask dispute on leaf {key}:{index} raised by {}",
                        hexid(&mine.sender)
                    ),
                ),
            }
        }
        TxBody::LeafMismatch { evidence } => {
            let (key, index) = split_leaf(evidence.leaf);
            (
                state
                    .sign_convictions
                    .iter()
                    .find(|(_, c)| {
                        c.height == height
                            && matches!(&c.evidence, ConvictionEvidence::Mismatch { evidence: e } if e.leaf == evidence.leaf)
                    })
                    .map(|(m, _)| hexid(m))
                    .unwrap_or_default(),
                format!("leaf {key}:{index}'s seed does not generate its sector's leaf"),
            )
        }
        _ => return None,
    };
    Some(EvidenceRecord {
        kind: kind.into(),
        member,
        by: hexid(by),
        height,
        reason,
    })
}

#[derive(Debug)]
struct UsageRing {
    gap_ms: u64,
    samples: VecDeque<UsageSample>,
}

/// The driver's record of recent activity.
#[derive(Debug, Default)]
pub struct Activity {
    usage: BTreeMap<u32, UsageRing>,
    signs: VecDeque<SignRecord>,
    /// Sign requests below this leaf id are known.
    next_leaf: Option<u64>,
    last_vote: BTreeMap<MemberId, u64>,
    evidence: VecDeque<EvidenceRecord>,
}

impl Activity {
    /// Takes in a block just applied (decided here or synced) with the state after it; returns
    /// the evidence it decided (for the log).
    pub fn block_applied(
        &mut self,
        block: &Block,
        state: &LedgerState,
        now_ms: u64,
    ) -> Vec<EvidenceRecord> {
        let decided: Vec<EvidenceRecord> = block
            .txs
            .iter()
            .filter_map(|t| evidence_record(&t.tx.body, &t.tx.author, block.height, state))
            .collect();
        for e in &decided {
            self.evidence.push_back(e.clone());
            if self.evidence.len() > EVIDENCE_LOG {
                self.evidence.pop_front();
            }
        }
        let voted = block.height.saturating_sub(1);
        for (m, _) in &block.last_commit.signatures {
            self.last_vote.insert(*m, voted);
        }
        let validators = state.validators();
        self.last_vote
            .retain(|m, _| validators.iter().any(|(v, _)| v == m));
        self.note_sign_requests(state, Some(now_ms), block.height, now_ms);
        decided
    }

    /// The evidence decided in the blocks this node applied, oldest first.
    pub fn recent_evidence(&self) -> Vec<EvidenceRecord> {
        self.evidence.iter().cloned().collect()
    }

    fn note_sign_requests(
        &mut self,
        state: &LedgerState,
        seen_at: Option<u64>,
        height: u64,
        now_ms: u64,
    ) {
        let from = self.next_leaf.unwrap_or(0);
        // The newest SIGN_LOG from the watermark on (all of them on the first call: the ones
        // from before this node started carry no time).
        let fresh: Vec<_> = state
            .sign_requests
            .range(from..)
            .rev()
            .take(SIGN_LOG)
            .collect();
        let first = self.next_leaf.is_none();
        for (leaf, r) in fresh.into_iter().rev() {
            self.signs.push_back(SignRecord {
                leaf: *leaf,
                key: split_leaf(*leaf).0,
                client: hex::encode(r.client.as_bytes()),
                requester: hex::encode(r.requester.as_bytes()),
                height: r.height,
                requested_unix_ms: if first { None } else { seen_at },
                signed_height: None,
                latency_ms: None,
            });
            if self.signs.len() > SIGN_LOG {
                self.signs.pop_front();
            }
        }
        if let Some((last, _)) = state.sign_requests.last_key_value() {
            self.next_leaf = Some(self.next_leaf.unwrap_or(0).max(last + 1));
        } else if first {
            self.next_leaf = Some(0);
        }
        for s in self.signs.iter_mut().filter(|s| s.signed_height.is_none()) {
            if state.signatures.contains_key(&s.leaf) {
                s.signed_height = Some(height);
                s.latency_ms = s.requested_unix_ms.map(|t| now_ms.saturating_sub(t));
            }
        }
    }

    /// Samples the allocation of `keys` (the status's key summaries, oldest first) at `now_ms`
    /// (at most once per ring's interval) and learns the sign requests already on the ledger
    /// the first time.
    pub fn sample(&mut self, state: &LedgerState, keys: &[KeySummary], height: u64, now_ms: u64) {
        if self.next_leaf.is_none() {
            self.note_sign_requests(state, None, height, now_ms);
        }
        let keep: Vec<u32> = keys
            .iter()
            .rev()
            .take(USAGE_KEYS)
            .map(|k| k.index)
            .collect();
        self.usage.retain(|i, _| keep.contains(i));
        for k in keys.iter().filter(|k| keep.contains(&k.index)) {
            let ring = self.usage.entry(k.index).or_insert(UsageRing {
                gap_ms: FIRST_SAMPLE_GAP_MS,
                samples: VecDeque::new(),
            });
            let due = ring
                .samples
                .back()
                .is_none_or(|last| now_ms.saturating_sub(last.unix_ms) >= ring.gap_ms);
            if !due {
                continue;
            }
            ring.samples.push_back(UsageSample {
                unix_ms: now_ms,
                height,
                allocated: k.leaves_allocated,
            });
            if ring.samples.len() > USAGE_SAMPLES {
                // Keep every other sample, and the newest.
                let last = ring.samples.back().copied();
                let thinned: VecDeque<_> = ring.samples.iter().copied().step_by(2).collect();
                ring.samples = thinned;
                if let Some(last) = last {
                    if ring.samples.back() != Some(&last) {
                        ring.samples.push_back(last);
                    }
                }
                ring.gap_ms = ring.gap_ms.saturating_mul(2);
            }
        }
    }

    /// Each kept key's usage up to `keys` (the status's key summaries) at `now_ms`.
    pub fn key_usage(&self, keys: &[KeySummary], now_ms: u64) -> Vec<KeyUsage> {
        keys.iter()
            .filter_map(|k| {
                let ring = self.usage.get(&k.index)?;
                let (allocated, left) = (k.leaves_allocated, k.leaves_left);
                let samples: Vec<UsageSample> = ring.samples.iter().copied().collect();
                let (per_hour, exhausts_unix_ms) = project(&samples, allocated, left, now_ms);
                Some(KeyUsage {
                    index: k.index,
                    capacity: allocated.saturating_add(left),
                    allocated,
                    samples,
                    per_hour,
                    exhausts_unix_ms,
                })
            })
            .collect()
    }

    /// The recent sign requests, oldest first.
    pub fn recent_signs(&self) -> Vec<SignRecord> {
        self.signs.iter().cloned().collect()
    }

    /// Height of `member`'s last precommit recorded in a block this node applied.
    pub fn last_vote(&self, member: &MemberId) -> Option<u64> {
        self.last_vote.get(member).copied()
    }
}

/// The rate over the last [`RATE_WINDOW`] samples up to `allocated` at `now_ms` (leaves per
/// hour), and when `left` leaves run out at it.
pub fn project(
    samples: &[UsageSample],
    allocated: u64,
    left: u64,
    now_ms: u64,
) -> (u64, Option<u64>) {
    let Some(from) = samples.get(samples.len().saturating_sub(RATE_WINDOW)) else {
        return (0, None);
    };
    let used = allocated.saturating_sub(from.allocated);
    let span = now_ms.saturating_sub(from.unix_ms);
    if used == 0 || span == 0 {
        return (0, None);
    }
    let per_hour = u128::from(used) * 3_600_000 / u128::from(span);
    let ms_left = u128::from(left) * u128::from(span) / u128::from(used);
    (
        u64::try_from(per_hour).unwrap_or(u64::MAX),
        Some(now_ms.saturating_add(u64::try_from(ms_left).unwrap_or(u64::MAX))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(unix_ms: u64, allocated: u64) -> UsageSample {
        UsageSample {
            unix_ms,
            height: 0,
            allocated,
        }
    }

    #[test]
    fn the_projection_follows_the_recent_rate() {
        // 10 leaves in 10 s, 100 left: 100 s more.
        let (per_hour, at) = project(&[s(1_000, 0), s(6_000, 5)], 10, 100, 11_000);
        assert_eq!(per_hour, 3_600);
        assert_eq!(at, Some(111_000));
        // No use: no date.
        assert_eq!(project(&[s(1_000, 4)], 4, 100, 11_000), (0, None));
        assert_eq!(project(&[], 4, 100, 11_000), (0, None));
        // Only the last RATE_WINDOW samples count: an old burst is forgotten.
        let mut old: Vec<_> = vec![s(0, 0)];
        old.extend((1..=RATE_WINDOW as u64).map(|i| s(i * 1000, 50)));
        assert_eq!(project(&old, 50, 10, 100_000), (0, None));
    }

    #[test]
    fn the_usage_ring_stays_bounded_and_spans_the_uptime() {
        let kp = libp2p::identity::Keypair::generate_ed25519();
        let me = crate::chain::wire::member_of(&kp.public().to_peer_id()).unwrap();
        let g = crate::chain::test_genesis::genesis("activity", &[(me, 1)], 10);
        let ledger = seedfed_protocol::ledger::Ledger::from_genesis(&g).unwrap();
        let keys = crate::chain::status::key_info(&ledger.state).keys;
        let mut a = Activity::default();
        for i in 0..10_000u64 {
            a.sample(&ledger.state, &keys, i, 1_000 + i * 1_000);
        }
        let u = a.key_usage(&keys, 10_001_000);
        assert_eq!(u.len(), 1);
        let samples = &u[0].samples;
        assert!(samples.len() <= USAGE_SAMPLES, "{}", samples.len());
        assert!(samples.len() >= USAGE_SAMPLES / 2, "{}", samples.len());
        assert_eq!(samples[0].unix_ms, 1_000, "the first sample stays");
        assert!(
            samples.last().unwrap().unix_ms > 9_000_000,
            "{:?}",
            samples.last()
        );
        assert!(samples.windows(2).all(|w| w[0].unix_ms < w[1].unix_ms));
    }

    #[test]
    fn sign_requests_get_their_latency_and_validators_their_last_vote() {
        use seedfed_protocol::ledger::{
            leaf_id, Block, CommitInfo, Ledger, SignRequestRecord, Signature64,
        };
        let kp = libp2p::identity::Keypair::generate_ed25519();
        let me = crate::chain::wire::member_of(&kp.public().to_peer_id()).unwrap();
        let g = crate::chain::test_genesis::genesis("activity", &[(me, 1)], 10);
        let mut ledger = Ledger::from_genesis(&g).unwrap();
        let record = |height| SignRequestRecord {
            requester: me,
            client: me,
            request: (0, height),
            digest: [0; 32],
            height,
            issue_to: None,
        };
        // One request from before this node started: no time, no latency.
        ledger.state.sign_requests.insert(leaf_id(0, 0), record(1));
        ledger.state.signatures.insert(leaf_id(0, 0), vec![1]);
        let mut a = Activity::default();
        a.sample(&ledger.state, &[], 1, 1_000);
        let block = |height, signers: Vec<_>| Block {
            height,
            prev_hash: [0; 32],
            proposer: me,
            last_commit: CommitInfo {
                round: 0,
                signatures: signers,
            },
            txs: vec![],
            state_hash: [0; 32],
        };
        // Allocated at height 5 (t = 5 s), signed at height 7 (t = 7.5 s).
        ledger.state.sign_requests.insert(leaf_id(0, 1), record(5));
        a.block_applied(
            &block(5, vec![(me, Signature64([0; 64]))]),
            &ledger.state,
            5_000,
        );
        ledger.state.signatures.insert(leaf_id(0, 1), vec![1]);
        a.block_applied(&block(7, vec![]), &ledger.state, 7_500);
        let signs = a.recent_signs();
        assert_eq!(signs.len(), 2);
        assert_eq!(
            (signs[0].requested_unix_ms, signs[0].latency_ms),
            (None, None)
        );
        assert_eq!(signs[1].leaf, leaf_id(0, 1));
        assert_eq!(signs[1].signed_height, Some(7));
        assert_eq!(signs[1].latency_ms, Some(2_500));
        // The block at height 5 carried our precommit for height 4.
        assert_eq!(a.last_vote(&me), Some(4));
        // The log stays bounded.
        for q in 2..100u64 {
            ledger
                .state
                .sign_requests
                .insert(leaf_id(0, q), record(10 + q));
            a.block_applied(&block(10 + q, vec![]), &ledger.state, 10_000 + q);
        }
        let signs = a.recent_signs();
        assert_eq!(signs.len(), SIGN_LOG);
        assert_eq!(signs.last().unwrap().leaf, leaf_id(0, 99));
    }

    #[test]
    fn decided_evidence_is_kept_by_kind_subject_and_height_and_bounded() {
        use seedfed_protocol::ledger::{Block, CommitInfo, Ledger, SignedTx, Tx};
        let kp = libp2p::identity::Keypair::generate_ed25519();
        let me = crate::chain::wire::member_of(&kp.public().to_peer_id()).unwrap();
        let g = crate::chain::test_genesis::genesis("evidence", &[(me, 1)], 10);
        let ledger = Ledger::from_genesis(&g).unwrap();
        let accused = MemberId([7; 32]);
        let tx = |body| SignedTx {
            tx: Tx {
                author: me,
                nonce: 0,
                body,
            },
            signature: seedfed_protocol::ledger::Signature64([0; 64]),
        };
        let block = |height, txs| Block {
            height,
            prev_hash: [0; 32],
            proposer: me,
            last_commit: CommitInfo {
                round: 0,
                signatures: vec![],
            },
            txs,
            state_hash: [0; 32],
        };
        let mut a = Activity::default();
        let evict = TxBody::Evict {
            member: accused,
            evidence: Evidence::Inactivity { missed_heights: 9 },
        };
        let decided = a.block_applied(
            &block(12, vec![tx(evict.clone()), tx(TxBody::Exit)]),
            &ledger.state,
            1_000,
        );
        assert_eq!(
            decided,
            [EvidenceRecord {
                kind: "inactivity".into(),
                member: hex::encode(accused.as_bytes()),
                by: hex::encode(me.as_bytes()),
                height: 12,
                reason: "missed 9 commits in a row".into(),
            }]
        );
        assert_eq!(a.recent_evidence(), decided);
        for h in 13..100u64 {
            a.block_applied(&block(h, vec![tx(evict.clone())]), &ledger.state, 1_000);
        }
        let kept = a.recent_evidence();
        assert_eq!(kept.len(), EVIDENCE_LOG);
        assert_eq!(kept.last().unwrap().height, 99);
    }
}
