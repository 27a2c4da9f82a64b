//! What the chain driver reports on `/status`: the ledger's public state (validators, epoch,
//! DKG results with their exclusions, checkpoints, the federation's key and its sectors), this
//! node's agent, held sectors and mempool, and recent commit latencies.
//!
//! Guarantees: only public values (hex identities, group keys, signed checkpoints, the leaves
//! the audit retired, counts); nothing secret from the agent or the keystore is ever part of a
//! status. [`light_walk`] is the light client over a status's checkpoints: it trusts nothing
//! the node says that the checkpoints do not sign.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use seedfed_protocol::agent::AgentStatus;
use seedfed_protocol::checkpoint::MasterKey;
use seedfed_protocol::ledger::{Change, Ledger, LedgerState, SignedCheckpoint};
use seedfed_protocol::light_client::{LightClientError, Trusted, WalkError};
use seedfed_protocol::member::MemberId;
use seedfed_protocol::retired::RetiredLeaves;
use serde::{Deserialize, Serialize};

use super::activity::{EvidenceRecord, KeyUsage, SignRecord};
use super::driver::ChainConfig;
use super::latency::CommitSample;
use super::metrics::{dkg_phase, DkgPhase};
use super::wire::peer_of;

mod key;
pub use key::{key_info, ConvictionInfo, KeyInfo, KeySummary, SectorInfo};

/// A validator and its stake, for status output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorInfo {
    /// Identity (hex Ed25519 key).
    pub id: String,
    /// Peer id.
    pub peer_id: String,
    /// Stake (voting power).
    pub stake: u64,
    /// Consecutive commits it missed (evicted at the chain's `eviction_missed_heights`).
    #[serde(default)]
    pub missed: u64,
    /// Height of its last precommit that a block this node applied recorded (`None`: none
    /// seen since this node started).
    #[serde(default)]
    pub last_vote: Option<u64>,
}

/// A member evicted from the validator set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvictionInfo {
    /// Identity (hex).
    pub member: String,
    /// Height of the eviction.
    pub height: u64,
}

/// Evictions `/status` lists (the most recent ones).
pub const STATUS_EVICTIONS: usize = 16;

/// A DKG in progress.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkgProgress {
    /// Epoch.
    pub epoch: u64,
    /// Attempt (0 first).
    pub attempt: u32,
    /// Height it opened at.
    pub opened_at: u64,
    /// Participants.
    pub participants: usize,
    /// Threshold.
    pub threshold: u16,
    /// Round-1 packages on the ledger.
    pub commitments: usize,
    /// Complaints on the ledger.
    pub complaints: usize,
    /// Failed earlier attempts.
    pub failed_attempts: usize,
    /// Its phase at the tip, from the ledger's windows ([`super::metrics::dkg_phase`], the
    /// same as `seedfed_dkg_phase`).
    #[serde(default)]
    pub phase: DkgPhase,
}

/// A completed DKG as recorded on the ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkgStatus {
    /// Epoch it ran in.
    pub epoch: u64,
    /// Attempt that completed.
    pub attempt: u32,
    /// Height of its finalisation.
    pub height: u64,
    /// Threshold.
    pub threshold: u16,
    /// Key holders (hex identities).
    pub qualified: Vec<String>,
    /// Excluded participants with the reason (the evidence is on the ledger).
    pub excluded: Vec<Exclusion>,
    /// The ristretto255 (seed-tree root / beacon) group key, hex.
    pub ristretto255_group_key: String,
    /// The Ed25519 (checkpoint) group key, hex.
    pub ed25519_group_key: String,
}

/// An excluded DKG participant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusion {
    /// Identity (hex).
    pub member: String,
    /// Why (`Absent`, `BadShare { .. }`, ...).
    pub reason: String,
}

/// A recorded checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// Sequence number.
    pub seq: u64,
    /// Epoch.
    pub epoch: u64,
    /// Height it covers.
    pub height: u64,
    /// The signed 232-byte checkpoint encoding (hex): chain, seq, epoch, height, the master LMS
    /// public key (type codes, `I`, root; zeros before it is final), the key that signs the
    /// next checkpoint, validator-set hash, retired-leaves digest.
    pub bytes: String,
    /// The aggregate Ed25519 signature (hex).
    pub signature: String,
    /// The group key that signed it (hex) and the epoch of its DKG.
    pub group_key: String,
    /// Epoch of the signing key's DKG.
    pub key_epoch: u64,
    /// For a checkpoint that carries the master key: the leaves the audit retired, increasing,
    /// whose digest it commits to (a light client checks them against it and then refuses
    /// signatures at these leaves). Absent before the master key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_leaves: Option<Vec<u64>>,
}

impl CheckpointInfo {
    /// The checkpoint bytes and signature, decoded from hex.
    pub fn link(&self) -> Result<(Vec<u8>, Vec<u8>), LightWalkError> {
        let bad = |what| LightWalkError::Hex {
            seq: self.seq,
            what,
        };
        Ok((
            hex::decode(&self.bytes).map_err(|_| bad("checkpoint"))?,
            hex::decode(&self.signature).map_err(|_| bad("signature"))?,
        ))
    }
}

/// Why [`light_walk`] refused what a node served.
#[derive(Debug, thiserror::Error)]
pub enum LightWalkError {
    /// A checkpoint or signature is not hex.
    #[error("the node sent checkpoint {seq}'s {what} as malformed hex")]
    Hex {
        /// The checkpoint's sequence number as the node reported it.
        seq: u64,
        /// `checkpoint` or `signature`.
        what: &'static str,
    },
    /// The chain of checkpoints does not verify.
    #[error("checkpoint chain rejected: {0}")]
    Walk(#[from] WalkError),
    /// The retired leaves served with checkpoint `seq` are not the set it commits to.
    #[error("retired leaves served with checkpoint {seq} rejected: {error}")]
    Retired {
        /// The checkpoint they came with.
        seq: u64,
        /// Why.
        error: LightClientError,
    },
}

/// The light client over a node's checkpoints: walks those numbered from `trusted.next_seq` on
/// ([`Trusted::walk`]), then, while a trusted master key has no checked list of retired leaves
/// yet, accepts the lists served with the checkpoints, newest first
/// ([`Trusted::accept_retired`]: each must hash to the digest a checkpoint signs). All or
/// nothing: on error `trusted` is unchanged. Returns the sequence numbers verified. If no
/// checkpoint comes with a list, `trusted` holds none and verifies no signature
/// (`RetiredUnknown`).
pub fn light_walk(
    trusted: &mut Trusted,
    checkpoints: &[CheckpointInfo],
) -> Result<std::ops::Range<u64>, LightWalkError> {
    let mut next = trusted.clone();
    let from = next.next_seq;
    let links = checkpoints
        .iter()
        .filter(|c| c.seq >= from)
        .map(CheckpointInfo::link)
        .collect::<Result<Vec<_>, _>>()?;
    next.walk(links.iter().map(|(b, s)| (b.as_slice(), s.as_slice())))?;
    // Newest first, until every trusted master key (the one in force and those a rotation
    // replaced) has its list.
    for (seq, list) in checkpoints
        .iter()
        .rev()
        .filter_map(|c| c.retired_leaves.as_ref().map(|l| (c.seq, l)))
    {
        if !next.needs_retired() {
            break;
        }
        next.accept_retired(list)
            .map_err(|error| LightWalkError::Retired { seq, error })?;
    }
    let verified = from..next.next_seq;
    *trusted = next;
    Ok(verified)
}

/// The epoch agent's public state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Epochs whose DKG this node holds key shares of.
    pub key_epochs: Vec<u64>,
    /// DKG attempts (epoch, attempt) with local state.
    pub dkgs: Vec<(u64, u32)>,
    /// Checkpoint attempts (checkpoint, attempt) this node committed to.
    pub signing: Vec<(u64, u32)>,
    /// Whether fault injection is on.
    pub faulty: bool,
    /// Sectors this node owns and is generating or dealing (in memory, not yet on the ledger).
    pub keygen_owned: Vec<u32>,
    /// Sectors this node is receiving shares of, not yet on the ledger (in memory).
    pub keygen_holding: Vec<u32>,
}

/// The public part of the agent's status.
pub fn agent_info(a: AgentStatus) -> AgentInfo {
    AgentInfo {
        key_epochs: a.key_epochs,
        dkgs: a.dkgs,
        signing: a.signing,
        faulty: a.faulty,
        keygen_owned: a.keygen_owned,
        keygen_holding: a.keygen_holding,
    }
}

/// The chain as `/status` reports it (no secrets).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainStatus {
    /// Our identity (hex).
    pub member: String,
    /// Whether we are in the current validator set.
    pub validator: bool,
    /// Height of the last decided block (0: genesis).
    pub height: u64,
    /// Round of the height being decided.
    pub round: i64,
    /// What consensus waits for in that round: step, votes held, deadlines pending.
    #[serde(default)]
    pub consensus: super::round_report::ConsensusInfo,
    /// Hash of the last decided block (hex).
    pub tip: String,
    /// Ledger state hash after it (hex).
    pub state_hash: String,
    /// Current epoch.
    pub epoch: u64,
    /// The epoch beacon (hex; zeros before the first epoch start).
    pub beacon: String,
    /// The next epoch's beacon (hex) once `t` partials for it are on the ledger (anyone can
    /// combine them); it fixes the next epoch's branch and leaf assignment.
    #[serde(default)]
    pub next_beacon: Option<String>,
    /// Validators with stake.
    pub validators: Vec<ValidatorInfo>,
    /// Epoch of the current branch assignment, if any.
    pub assignment_epoch: Option<u64>,
    /// Owner of each sector (hex identities), in sector order.
    pub assignment: Vec<String>,
    /// Master root (hex), once final.
    pub master_root: Option<String>,
    /// The federation's key: parameters, sectors, master root and public key, allocation.
    pub key: KeyInfo,
    /// The DKG of the current epoch in progress.
    pub dkg_in_progress: Option<DkgProgress>,
    /// Completed DKGs (group keys, qualified set, exclusions with their reasons), latest last.
    pub dkgs: Vec<DkgStatus>,
    /// Epoch of the DKG whose Ed25519 key signs checkpoints now (the first one is the light
    /// clients' genesis group key).
    pub checkpoint_key_epoch: Option<u64>,
    /// Recorded checkpoints (the most recent ones the ledger keeps).
    pub checkpoints: Vec<CheckpointInfo>,
    /// This node's epoch agent: epochs it holds key shares of, pending DKG and signing work.
    pub agent: AgentInfo,
    /// Transactions waiting in our mempool.
    pub mempool: usize,
    /// Encoded bytes waiting in our mempool.
    #[serde(default)]
    pub mempool_bytes: usize,
    /// Transactions our mempool refused since start (by reason in the `/metrics` family
    /// `seedfed_mempool_refused_total`).
    #[serde(default)]
    pub mempool_refused: u64,
    /// Blocks applied through block sync since start.
    pub synced_blocks: u64,
    /// Gossip messages dropped by the chain checks since start.
    pub gossip_dropped: u64,
    /// Next nonce of our identity on the ledger.
    #[serde(default)]
    pub nonce: u64,
    /// Commit latency of the most recent heights decided by consensus here, oldest first
    /// (see [`super::latency`]).
    #[serde(default)]
    pub recent_commits: Vec<CommitSample>,
    /// When this node last decided or applied a block (Unix time in ms; the driver's start
    /// before its first block). `/health` compares it with [`liveness_bound_ms`](Self::liveness_bound_ms).
    #[serde(default)]
    pub last_block_unix_ms: u64,
    /// How long without a block before the node reports itself not live (ms): ten rounds'
    /// worth of block interval and round-0 timeouts, at least 10 s.
    #[serde(default)]
    pub liveness_bound_ms: u64,
    /// A peer showed a height past ours: block sync is under way (the node is not ready).
    #[serde(default)]
    pub syncing: bool,
    /// The chain driver has loaded this node's keys at start-up: the epoch agent's state (its
    /// DKG key shares) and the index of the leaf shares it holds. False until then (the status
    /// the API serves before the driver's first one): the node is not ready.
    #[serde(default)]
    pub keys_loaded: bool,
    /// Consecutive missed commits that evict a validator.
    #[serde(default)]
    pub eviction_missed_heights: u64,
    /// The most recent evictions (at most `STATUS_EVICTIONS`, 16), oldest first.
    #[serde(default)]
    pub evictions: Vec<EvictionInfo>,
    /// Leaves allocated over time for the newest keys, with the projected exhaustion (see
    /// [`super::activity`]).
    #[serde(default)]
    pub key_usage: Vec<KeyUsage>,
    /// The most recent sign requests with their latency as this node saw them, oldest first.
    #[serde(default)]
    pub recent_signs: Vec<SignRecord>,
    /// The highest height a peer showed past ours while syncing (what sync works toward).
    #[serde(default)]
    pub best_seen_height: Option<u64>,
    /// The admission proof-of-work difficulty the ledger holds now (leading zero bits).
    #[serde(default)]
    pub pow_difficulty: u8,
    /// Open difficulty changes: the value, and the stake of the validators approving it now
    /// (it applies above 2/3 of the total stake).
    #[serde(default)]
    pub pow_difficulty_approvals: BTreeMap<u8, u64>,
    /// The evidence decided in the blocks this node applied since it started (at most
    /// [`super::activity::EVIDENCE_LOG`], 32), oldest first: evictions (equivocation,
    /// inactivity), DKG complaints, deal complaints, sign blame.
    #[serde(default)]
    pub recent_evidence: Vec<EvidenceRecord>,
}

/// `checkpoints` as served to light clients, each with the retired leaves of the master key it
/// names (from `s`: every key stays on the ledger).
pub fn checkpoint_infos(s: &LedgerState, checkpoints: &[SignedCheckpoint]) -> Vec<CheckpointInfo> {
    // Each final key's master key and retired leaves.
    let retired: Vec<(MasterKey, RetiredLeaves)> = s
        .keys()
        .filter_map(|k| {
            let pk = s.key_public(k.index)?;
            Some((MasterKey::from(&pk), RetiredLeaves::new(k.retired_leaves())))
        })
        .collect();
    checkpoints
        .iter()
        .map(|c| CheckpointInfo {
            seq: c.seq,
            epoch: c.body.epoch,
            height: c.body.height,
            bytes: hex::encode(c.body.checkpoint().to_bytes()),
            signature: hex::encode(c.signature.0),
            group_key: hex::encode(c.group_key),
            key_epoch: c.key_epoch,
            // The set is fixed once the master key is (`MasterRoot` waits for every audit):
            // every checkpoint with the key commits to the key's set.
            retired_leaves: retired
                .iter()
                .find(|(mk, r)| *mk == c.body.master_key && r.digest() == c.body.retired_digest)
                .map(|(_, r)| r.as_slice().to_vec()),
        })
        .collect()
}

const NEXT_BEACON_INPUTS: seedfed_protocol::hash::Domain =
    seedfed_protocol::hash::Domain::new("seedfed-nbeacon");

/// The next epoch's beacon as the recorded partials give it (`LedgerState::recorded_beacon`),
/// worked out again only when what it depends on changed: combining the partials decodes the
/// epoch's public key package and interpolates in the exponent, which at 16 validators was 7%
/// of an idle validator's CPU when the status did it at every block.
#[derive(Debug, Default)]
pub(super) struct NextBeacon {
    memo: Option<([u8; 32], Option<String>)>,
}

impl NextBeacon {
    /// The beacon, hex-encoded, if `t` partials are recorded.
    pub(super) fn of(&mut self, st: &seedfed_protocol::ledger::LedgerState) -> Option<String> {
        // Everything `recorded_beacon` reads: the chain, the epoch, its DKG result, the partials.
        let inputs = seedfed_protocol::ledger::encode(&(
            &st.chain_id,
            st.epoch,
            st.dkg_results.get(&st.epoch),
            &st.beacon_partials,
        ));
        let key = seedfed_protocol::hash::hash32(NEXT_BEACON_INPUTS, &[], &[0; 16], &[&inputs]);
        match &self.memo {
            Some((k, beacon)) if *k == key => beacon.clone(),
            _ => {
                let beacon = st.recorded_beacon().ok().map(hex::encode);
                self.memo = Some((key, beacon.clone()));
                beacon
            }
        }
    }
}

/// The ledger-derived part of [`ChainStatus`] for member `me` (the driver fills in the rest,
/// `next_beacon` included).
pub fn from_ledger(ledger: &Ledger, me: &MemberId, state_hash: [u8; 32]) -> ChainStatus {
    let s = &ledger.state;
    // Each final key's master key and retired leaves: a checkpoint is served with the list of
    // the key it names.
    let validators = s
        .validators()
        .into_iter()
        .map(|(m, stake)| ValidatorInfo {
            id: hex::encode(m.as_bytes()),
            peer_id: peer_of(&m).map(|p| p.to_string()).unwrap_or_default(),
            stake,
            missed: s.missed.get(&m).copied().unwrap_or(0),
            last_vote: None,
        })
        .collect();
    let mut evictions: Vec<EvictionInfo> = s
        .evictions
        .iter()
        .map(|(m, h)| EvictionInfo {
            member: hex::encode(m.as_bytes()),
            height: *h,
        })
        .collect();
    evictions.sort_by_key(|e| e.height);
    let evictions = evictions.split_off(evictions.len().saturating_sub(STATUS_EVICTIONS));
    let stakes = s.validators();
    let pow_difficulty_approvals = s
        .changes
        .iter()
        .filter_map(|(c, approvers)| match c {
            Change::PowDifficulty(d) => Some((
                *d,
                approvers
                    .iter()
                    .filter_map(|m| stakes.get(m))
                    .fold(0u64, |a, b| a.saturating_add(*b)),
            )),
            Change::Client(_) => None,
        })
        .collect();
    ChainStatus {
        pow_difficulty: s.pow_difficulty,
        pow_difficulty_approvals,
        member: hex::encode(me.as_bytes()),
        validator: s.is_validator(me),
        height: ledger.height(),
        round: 0,
        tip: hex::encode(ledger.tip),
        state_hash: hex::encode(state_hash),
        epoch: s.epoch,
        beacon: hex::encode(s.beacon),
        next_beacon: None, // `Driver::publish_status` fills it in, remembered (`NextBeacon`)
        validators,
        assignment_epoch: s.newest.assignment_epoch,
        assignment: s
            .newest
            .branch_owners
            .values()
            .map(|m| hex::encode(m.as_bytes()))
            .collect(),
        master_root: s.newest.master_root.map(hex::encode),
        key: key_info(s),
        dkg_in_progress: (!s.dkg.roster.is_empty()).then_some(DkgProgress {
            epoch: s.dkg.epoch,
            attempt: s.dkg.attempt,
            opened_at: s.dkg.opened_at,
            participants: s.dkg.roster.len(),
            threshold: s.dkg.threshold,
            commitments: s.dkg.commitments.len(),
            complaints: s.dkg.complaints.len(),
            failed_attempts: s.dkg.failures.len(),
            phase: dkg_phase(s, ledger.height()),
        }),
        dkgs: s
            .dkg_results
            .values()
            .map(|r| DkgStatus {
                epoch: r.epoch,
                attempt: r.attempt,
                height: r.height,
                threshold: r.threshold,
                qualified: r
                    .qualified
                    .iter()
                    .map(|m| hex::encode(m.as_bytes()))
                    .collect(),
                excluded: r
                    .excluded
                    .iter()
                    .map(|(m, why)| Exclusion {
                        member: hex::encode(m.as_bytes()),
                        reason: format!("{why:?}"),
                    })
                    .collect(),
                ristretto255_group_key: hex::encode(r.ristretto255_group_key),
                ed25519_group_key: hex::encode(r.ed25519_group_key),
            })
            .collect(),
        checkpoint_key_epoch: s.checkpoint_key,
        checkpoints: checkpoint_infos(s, &s.checkpoints),
        nonce: s.members.get(me).map_or(0, |m| m.nonce),
        eviction_missed_heights: s.eviction_missed_heights,
        evictions,
        ..ChainStatus::default()
    }
}

impl super::driver::Driver {
    /// Answers `GET /checkpoints` from the store, each checkpoint with its key's retired
    /// leaves.
    pub(super) async fn on_checkpoints_query(&mut self, q: super::driver::CheckpointsQuery) {
        let from = q.from;
        let read = self
            .storage
            .call(move |s| s.checkpoints_from(from, super::storage::MAX_CHECKPOINTS_PER_READ))
            .await;
        let answer = match read {
            Ok(Ok(cps)) => Ok(checkpoint_infos(&self.consensus.ledger().state, &cps)),
            Ok(Err(e)) | Err(e) => Err(e.to_string()),
        };
        let _ = q.reply.send(answer);
    }

    /// Publishes the current status on the watch channel (and the mempool's size as metrics).
    pub(super) fn publish_status(&mut self) {
        let ledger = self.consensus.ledger();
        self.metrics.pool(self.mempool.len(), self.mempool.bytes());
        let now = unix_ms(SystemTime::now());
        let mut status = ChainStatus {
            recent_signs: self.activity.recent_signs(),
            recent_evidence: self.activity.recent_evidence(),
            round: self.consensus.round(),
            consensus: self.consensus_info(),
            agent: agent_info(self.agent.status()),
            mempool: self.mempool.len(),
            mempool_bytes: self.mempool.bytes(),
            mempool_refused: self.metrics.refused_total(),
            synced_blocks: self.sync.applied,
            gossip_dropped: self.view.dropped(),
            recent_commits: self.commits.recent(),
            last_block_unix_ms: unix_ms(SystemTime::now())
                .saturating_sub(self.last_decided.elapsed().as_millis() as u64),
            liveness_bound_ms: liveness_bound(&self.config).as_millis() as u64,
            syncing: self.sync.behind(self.consensus.height()),
            // A driver exists only once `spawn` restored the agent and read the held-share
            // index from the store.
            keys_loaded: true,
            best_seen_height: self.sync.best_seen(),
            ..from_ledger(ledger, &self.me, self.state_hash)
        };
        status.next_beacon = self.next_beacon.of(&ledger.state);
        status.key.held_sectors = self.held.len();
        self.activity
            .sample(&ledger.state, &status.key.keys, ledger.height(), now);
        status.key_usage = self.activity.key_usage(&status.key.keys, now);
        // `from_ledger` lists the validators in the ledger's order.
        for (v, (m, _)) in status.validators.iter_mut().zip(ledger.state.validators()) {
            v.last_vote = self.activity.last_vote(&m);
        }
        self.update_metrics(&status);
        self.status.send_replace(status);
    }
}

impl super::driver::Driver {
    /// The gauges that follow the tip: height, round, DKG phase, leaves per key, peers by role.
    fn update_metrics(&self, status: &ChainStatus) {
        let st = &self.consensus.ledger().state;
        self.metrics.tip(status.height, status.round);
        self.metrics.dkg_phase(dkg_phase(st, status.height));
        self.metrics.keys(
            status
                .key
                .keys
                .iter()
                .map(|k| (k.index, k.leaves_allocated, k.leaves_left)),
        );
        let mut roles = [0usize; 3];
        for p in self.sync.peers() {
            let i = match super::wire::member_of(p) {
                Some(m) if st.is_validator(&m) => 0,
                Some(m) if st.members.contains_key(&m) => 1,
                _ => 2,
            };
            roles[i] += 1;
        }
        self.metrics.peers(roles);
    }
}

/// Milliseconds since the Unix epoch (0 for a clock before it).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().try_into().unwrap_or(u64::MAX))
}

/// Ten rounds' worth of block interval and round-0 timeouts, at least 10 s: a live chain
/// decides well within it, so a node past it is stalled or cut off.
pub(super) fn liveness_bound(config: &ChainConfig) -> Duration {
    let t = &config.consensus.timeouts;
    let round = config.block_interval + t.propose + t.prevote + t.precommit;
    (round * 10).max(Duration::from_secs(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_part_names_validators_and_our_nonce() {
        let kp = libp2p::identity::Keypair::generate_ed25519();
        let me = super::super::wire::member_of(&kp.public().to_peer_id()).unwrap();
        let g = crate::chain::test_genesis::genesis("status", &[(me, 7)], 10);
        let ledger = Ledger::from_genesis(&g).unwrap();
        let s = from_ledger(&ledger, &me, [3; 32]);
        assert_eq!(s.member, hex::encode(me.as_bytes()));
        assert!(s.validator);
        assert_eq!(s.height, 0);
        assert_eq!(s.state_hash, hex::encode([3u8; 32]));
        assert_eq!(
            s.validators,
            vec![ValidatorInfo {
                id: hex::encode(me.as_bytes()),
                peer_id: kp.public().to_peer_id().to_string(),
                stake: 7,
                missed: 0,
                last_vote: None,
            }]
        );
        assert_eq!(s.nonce, 0);
        assert!(s.dkg_in_progress.is_some());
        assert_eq!(s.eviction_missed_heights, 10);
        // Evictions: the most recent STATUS_EVICTIONS, oldest first.
        let mut ledger = ledger;
        for h in 0..40u64 {
            let kp = libp2p::identity::Keypair::generate_ed25519();
            let m = super::super::wire::member_of(&kp.public().to_peer_id()).unwrap();
            ledger.state.evictions.insert(m, 100 + h);
        }
        let s = from_ledger(&ledger, &me, [3; 32]);
        let heights: Vec<u64> = s.evictions.iter().map(|e| e.height).collect();
        assert_eq!(heights, (124..140).collect::<Vec<_>>());
    }

    #[test]
    fn the_dkg_phase_follows_the_windows_not_the_commitments() {
        let members: Vec<MemberId> = (0..4)
            .map(|_| {
                let kp = libp2p::identity::Keypair::generate_ed25519();
                super::super::wire::member_of(&kp.public().to_peer_id()).unwrap()
            })
            .collect();
        let stakes: Vec<_> = members.iter().map(|m| (*m, 1)).collect();
        let g = crate::chain::test_genesis::genesis("phase", &stakes, 10);
        let mut ledger = Ledger::from_genesis(&g).unwrap();
        let phase_at = |ledger: &mut Ledger, height| {
            ledger.state.height = height;
            let s = from_ledger(ledger, &members[0], [0; 32]);
            let d = s.dkg_in_progress.unwrap();
            // One source: the metric's phase.
            assert_eq!(d.phase, dkg_phase(&ledger.state, height));
            (d.phase, d.commitments, d.participants)
        };
        let round1_end = ledger.state.dkg.round1_end(&ledger.state.epochs);
        let complaint_end = ledger.state.dkg.complaint_end(&ledger.state.epochs);
        assert_eq!(phase_at(&mut ledger, round1_end), (DkgPhase::Round1, 0, 4));
        // Past the round-1 window with commitments withheld: the complaint window, then
        // finalising, although fewer than all dealers committed.
        assert_eq!(
            phase_at(&mut ledger, round1_end + 1),
            (DkgPhase::Complaints, 0, 4)
        );
        assert_eq!(
            phase_at(&mut ledger, complaint_end + 1),
            (DkgPhase::Finalizing, 0, 4)
        );
        let json = serde_json::to_value(from_ledger(&ledger, &members[0], [0; 32])).unwrap();
        assert_eq!(json["dkg_in_progress"]["phase"], "finalizing");
    }
}
