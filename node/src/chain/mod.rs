//! The chain driver: runs the sans-IO [`Consensus`] state machine of `seedfed-protocol` on the
//! real network, the node's store and tokio timers.
//!
//! One task owns the consensus state, the ledger, the mempool and the store. It feeds
//! consensus the gossip of [`wire::CONSENSUS_TOPIC`] (already checked by
//! [`wire::check_gossip`] in the network task), timer expiries and block-sync responses, and
//! acts on the outputs in order: WAL entries are written and fsynced (one batch for each run
//! of consecutive entries) before any later output leaves the node; a decided block, its
//! certificate and the new tip state are committed atomically before the next height's
//! messages go out. Lagging or restarted nodes fetch decided blocks over request-response
//! ([`wire::ChainRequest::Blocks`]) and apply them after their certificates verify.

pub mod latency;
pub mod storage;
pub mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use seedfed_protocol::consensus::{
    CommitCertificate, Consensus, ConsensusKey, ConsensusMessage, ConsensusParams, Input, Output,
    TimerId,
};
use seedfed_protocol::ledger::{self, Block, Evidence, Ledger, SignedTx, Tx, TxBody};
use seedfed_protocol::member::MemberId;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use seedfed_protocol::agent::{Agent, AgentStatus, Duty, Fault};
use seedfed_protocol::hash::Domain;

use crate::network::{NetworkEvent, NetworkHandle, ResponseToken};

const AGENT_DIGEST: Domain = Domain::new("seedfed-agentsnp");
use latency::CommitClock;
pub use latency::CommitSample;
use storage::{ChainStore, StorageError};
pub use wire::{member_of, peer_of, GossipView};
use wire::{
    ChainRequest, ChainResponse, CONSENSUS_TOPIC, MAX_SYNC_BLOCKS, MAX_SYNC_BYTES, TX_TOPIC,
};

/// A transaction whose nonce is this far past its author's next nonce is refused: one author
/// cannot fill the mempool with transactions that cannot apply for a long time.
pub const MAX_NONCE_AHEAD: u64 = 4096;
/// Most transactions waiting in the mempool.
pub const MEMPOOL_MAX: usize = 20_000;
/// A proposed block's transactions stop at this many encoded bytes (gossip messages are
/// capped at 1 MiB by default).
pub const BLOCK_TX_BYTES: usize = 768 * 1024;

/// Tunables of the driver.
#[derive(Clone, Debug)]
pub struct ChainConfig {
    /// Consensus timeouts and buffers.
    pub consensus: ConsensusParams,
    /// Least time between two decisions when we propose (an empty chain would otherwise spin).
    pub block_interval: Duration,
    /// How often a node that has not decided for a while asks a peer for blocks.
    pub sync_interval: Duration,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            consensus: ConsensusParams::default(),
            block_interval: Duration::from_millis(200),
            sync_interval: Duration::from_secs(1),
        }
    }
}

/// Why the chain driver stopped.
#[derive(Debug, Error)]
pub enum ChainError {
    /// The store failed: the node must not continue (durability comes first).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Consensus could not start.
    #[error("consensus cannot start: {0}")]
    Consensus(#[from] seedfed_protocol::consensus::ConsensusError),
    /// The identity key is not Ed25519.
    #[error("the node identity is not an Ed25519 key")]
    Identity,
}

/// A validator and its stake, for status output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorInfo {
    /// Identity (hex Ed25519 key).
    pub id: String,
    /// Peer id.
    pub peer_id: String,
    /// Stake (voting power).
    pub stake: u64,
}

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
    /// The signed 136-byte checkpoint encoding (hex).
    pub bytes: String,
    /// The aggregate Ed25519 signature (hex).
    pub signature: String,
    /// The group key that signed it (hex) and the epoch of its DKG.
    pub group_key: String,
    /// Epoch of the signing key's DKG.
    pub key_epoch: u64,
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
}

fn agent_info(a: AgentStatus) -> AgentInfo {
    AgentInfo {
        key_epochs: a.key_epochs,
        dkgs: a.dkgs,
        signing: a.signing,
        faulty: a.faulty,
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
    /// Hash of the last decided block (hex).
    pub tip: String,
    /// Ledger state hash after it (hex).
    pub state_hash: String,
    /// Current epoch.
    pub epoch: u64,
    /// The epoch beacon (hex; zeros before the first epoch start).
    pub beacon: String,
    /// Validators with stake.
    pub validators: Vec<ValidatorInfo>,
    /// Epoch of the current branch assignment, if any.
    pub assignment_epoch: Option<u64>,
    /// Owner of each sector (hex identities), in sector order.
    pub assignment: Vec<String>,
    /// Master root (hex), once final.
    pub master_root: Option<String>,
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
    /// Blocks applied through block sync since start.
    pub synced_blocks: u64,
    /// Gossip messages dropped by the chain checks since start.
    pub gossip_dropped: u64,
    /// Next nonce of our identity on the ledger.
    #[serde(default)]
    pub nonce: u64,
    /// Commit latency of the most recent heights decided by consensus here, oldest first
    /// (see [`latency`]).
    #[serde(default)]
    pub recent_commits: Vec<CommitSample>,
}

/// Capacity of the channel from the local API to the driver.
pub const SUBMIT_QUEUE: usize = 1024;

/// A transaction handed to the driver by the local API, with where the verdict goes.
#[derive(Debug)]
pub struct TxSubmission {
    /// The transaction.
    pub tx: SignedTx,
    /// Accepted into the mempool (and gossiped), or why not.
    pub reply: oneshot::Sender<Result<(), TxRejected>>,
}

/// Why a submitted transaction was not taken into the mempool.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum TxRejected {
    /// The signature or author key does not verify.
    #[error("invalid transaction: {0}")]
    Invalid(String),
    /// The author's ledger nonce is already past this one.
    #[error("stale nonce {got}: the author's next nonce is {next}")]
    StaleNonce {
        /// The transaction's nonce.
        got: u64,
        /// The ledger's next nonce for the author.
        next: u64,
    },
    /// The nonce is [`MAX_NONCE_AHEAD`] or more past the author's next one.
    #[error("nonce {got} is too far ahead of the author's next nonce {next}")]
    NonceTooFarAhead {
        /// The transaction's nonce.
        got: u64,
        /// The ledger's next nonce for the author.
        next: u64,
    },
    /// The mempool holds [`MEMPOOL_MAX`] transactions.
    #[error("mempool full")]
    MempoolFull,
}

/// Everything [`spawn`] needs.
pub struct ChainParts {
    /// The ledger's genesis.
    pub genesis: ledger::Genesis,
    /// The node's store (taken over; closed when the driver stops).
    pub store: ChainStore,
    /// Our identity's Ed25519 seed.
    pub identity_seed: zeroize::Zeroizing<[u8; 32]>,
    /// Our X25519 share-encryption secret.
    pub x25519_secret: zeroize::Zeroizing<[u8; 32]>,
    /// Fault injection for tests ([`Fault::None`] in real use).
    pub fault: Fault,
    /// Network handle.
    pub network: NetworkHandle,
    /// Network events (gossip, requests, admissions).
    pub events: mpsc::Receiver<NetworkEvent>,
    /// Tunables.
    pub config: ChainConfig,
    /// The gossip view shared with the network's validator.
    pub view: Arc<GossipView>,
    /// Where the driver publishes its status.
    pub status: watch::Sender<ChainStatus>,
    /// Transactions submitted through the local API.
    pub submissions: mpsc::Receiver<TxSubmission>,
}

/// The running driver: resolves to the store (to be closed) when it stops.
pub type ChainTask = tokio::task::JoinHandle<Result<Box<dyn crate::store::Store>, ChainError>>;

/// Loads the chain from the store (tip, WAL), subscribes to the topics and spawns the driver.
/// The task stops when `stop` fires and returns the store so the caller can close it.
pub async fn spawn(
    parts: ChainParts,
    stop: oneshot::Receiver<()>,
) -> Result<ChainTask, ChainError> {
    let ChainParts {
        genesis,
        mut store,
        identity_seed,
        x25519_secret,
        fault,
        network,
        events,
        config,
        view,
        status,
        submissions,
    } = parts;
    let loaded = store.load(&genesis)?;
    let agent = match store.agent()? {
        Some(bytes) => {
            Agent::restore(&bytes, *identity_seed, *x25519_secret, fault).map_err(|e| {
                StorageError::Corrupt {
                    what: "epoch agent snapshot".into(),
                    reason: e.to_string(),
                }
            })?
        }
        None => Agent::new(*identity_seed, *x25519_secret, fault),
    };
    if fault != Fault::None {
        warn!(
            ?fault,
            "FAULT INJECTION is on: this node misbehaves on purpose (tests only)"
        );
    }
    let signing = ed25519_dalek::SigningKey::from_bytes(&identity_seed);
    let key = ConsensusKey::from_seed(*identity_seed);
    let me = key.member_id();
    let mut consensus = Consensus::new(loaded.ledger, loaded.certificate, key, config.consensus)?;
    info!(
        height = consensus.ledger().height(),
        wal = loaded.wal.len(),
        "chain loaded"
    );
    let first = if loaded.wal.is_empty() {
        consensus.start()
    } else {
        consensus.recover(loaded.wal)?
    };
    for t in [CONSENSUS_TOPIC, TX_TOPIC] {
        if let Err(e) = network.subscribe(t).await {
            warn!(topic = t, "cannot subscribe: {e}");
        }
    }
    let (sync_tx, sync_rx) = mpsc::channel(16);
    let mut driver = Driver {
        consensus,
        store,
        network,
        me,
        signing,
        config,
        view,
        timers: BTreeMap::new(),
        build_at: None,
        last_decided: Instant::now(),
        mempool: BTreeMap::new(),
        own: BTreeMap::new(),
        evidence: Vec::new(),
        peers: BTreeSet::new(),
        best_seen: None,
        sync_in_flight: false,
        sync_tx,
        synced_blocks: 0,
        status,
        rr: 0,
        agent,
        agent_saved: None,
        commits: CommitClock::default(),
        state_hash: [0; 32],
    };
    driver.state_hash = driver.consensus.ledger().state.hash();
    driver.refresh_view();
    driver.act(first).await?;
    driver.agent_step()?;
    driver.publish_status();
    Ok(tokio::spawn(driver.run(events, sync_rx, submissions, stop)))
}

type SyncResult = (PeerId, Result<Vec<(Block, CommitCertificate)>, String>);

struct Driver {
    consensus: Consensus,
    store: ChainStore,
    network: NetworkHandle,
    me: MemberId,
    signing: ed25519_dalek::SigningKey,
    config: ChainConfig,
    view: Arc<GossipView>,
    timers: BTreeMap<TimerId, Instant>,
    build_at: Option<(u64, u32, Instant)>,
    last_decided: Instant,
    /// Others' and our transactions by (author, nonce): proposals take them in nonce order.
    mempool: BTreeMap<(MemberId, u64), SignedTx>,
    /// Our own transactions not yet on the ledger, by nonce.
    own: BTreeMap<u64, SignedTx>,
    evidence: Vec<(MemberId, Evidence)>,
    peers: BTreeSet<PeerId>,
    best_seen: Option<(u64, PeerId)>,
    sync_in_flight: bool,
    sync_tx: mpsc::Sender<SyncResult>,
    synced_blocks: u64,
    status: watch::Sender<ChainStatus>,
    rr: usize,
    agent: Agent,
    /// Hash of the agent snapshot last written (skip identical rewrites).
    agent_saved: Option<[u8; 32]>,
    commits: CommitClock,
    /// State hash at the tip (the tip block's, or genesis's), so status need not rehash.
    state_hash: [u8; 32],
}

impl Driver {
    async fn run(
        mut self,
        mut events: mpsc::Receiver<NetworkEvent>,
        mut sync_rx: mpsc::Receiver<SyncResult>,
        mut submissions: mpsc::Receiver<TxSubmission>,
        mut stop: oneshot::Receiver<()>,
    ) -> Result<Box<dyn crate::store::Store>, ChainError> {
        let mut tick = tokio::time::interval(self.config.sync_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next = self
                .timers
                .values()
                .copied()
                .chain(self.build_at.map(|b| b.2))
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = &mut stop => break,
                ev = events.recv() => match ev {
                    None => break,
                    Some(ev) => self.on_network(ev).await?,
                },
                Some((peer, r)) = sync_rx.recv() => self.on_synced(peer, r).await?,
                Some(sub) = submissions.recv() => self.on_submitted(sub).await,
                () = tokio::time::sleep_until(next) => self.fire_due().await?,
                _ = tick.tick() => self.on_tick().await?,
            }
        }
        info!(
            height = self.consensus.ledger().height(),
            "chain driver stopped"
        );
        Ok(self.store.into_inner())
    }

    async fn fire_due(&mut self) -> Result<(), ChainError> {
        let now = Instant::now();
        if let Some((height, round, at)) = self.build_at {
            if at <= now {
                self.build_at = None;
                let txs = self.block_candidates();
                let out = self
                    .consensus
                    .handle(Input::ProposeTxs { height, round, txs });
                self.act(out).await?;
            }
        }
        let due: Vec<TimerId> = self
            .timers
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(t, _)| *t)
            .collect();
        for t in due {
            self.timers.remove(&t);
            let out = self.consensus.handle(Input::TimerFired(t));
            self.act(out).await?;
        }
        Ok(())
    }

    async fn on_network(&mut self, ev: NetworkEvent) -> Result<(), ChainError> {
        match ev {
            NetworkEvent::Gossip {
                author,
                topic,
                data,
            } => match topic.as_str() {
                CONSENSUS_TOPIC => {
                    let Ok(msg) = ledger::decode::<ConsensusMessage>(&data) else {
                        return Ok(()); // checked by the gossip validator already
                    };
                    let h = msg.height();
                    if let ConsensusMessage::Proposal(p) = &msg {
                        self.commits
                            .proposal_seen(p.height, p.round, Instant::now());
                    }
                    if h > self.consensus.height() && self.best_seen.is_none_or(|(b, _)| h > b) {
                        self.best_seen = Some((h, author));
                    }
                    let out = self.consensus.handle(Input::Message(msg));
                    self.act(out).await?;
                    if self
                        .best_seen
                        .is_some_and(|(b, _)| b > self.consensus.height())
                    {
                        self.request_sync(None);
                    }
                }
                TX_TOPIC => {
                    if let Ok(tx) = ledger::decode::<SignedTx>(&data) {
                        // The gossip validator verified the signature already.
                        let _ = self.admit(tx, false);
                    }
                }
                _ => {}
            },
            NetworkEvent::Request { peer, data, token } => {
                self.on_request(peer, &data, token).await?
            }
            NetworkEvent::PeerAdmitted { peer, .. } => {
                self.peers.insert(peer);
            }
            NetworkEvent::PeerDisconnected { peer } => {
                self.peers.remove(&peer);
            }
            NetworkEvent::PeerRejected { .. } => {}
        }
        Ok(())
    }

    async fn on_request(
        &mut self,
        peer: PeerId,
        data: &[u8],
        token: ResponseToken,
    ) -> Result<(), ChainError> {
        let response = match ledger::decode::<ChainRequest>(data) {
            Err(e) => ChainResponse::Refused(format!("malformed request: {e}")),
            Ok(ChainRequest::Blocks { from, max }) => ChainResponse::Blocks(
                self.store
                    .blocks_from(from, max.min(MAX_SYNC_BLOCKS), MAX_SYNC_BYTES)?,
            ),
            Ok(ChainRequest::Direct(payload)) => match member_of(&peer) {
                None => ChainResponse::Refused("sender is not an Ed25519 identity".into()),
                Some(from) => {
                    match self.agent.on_direct(
                        self.consensus.ledger(),
                        from,
                        &payload,
                        &mut rand_core::OsRng,
                    ) {
                        Ok(duties) => {
                            self.persist_agent()?;
                            self.dispatch(duties);
                            ChainResponse::Ack
                        }
                        Err(e) => {
                            debug!(%peer, "direct message refused: {e}");
                            ChainResponse::Refused(e.to_string())
                        }
                    }
                }
            },
        };
        debug!(%peer, "answered a chain request");
        let _ = self.network.respond(token, ledger::encode(&response)).await;
        Ok(())
    }

    /// Asks `peer` (or the best-known peer ahead of us, or the next admitted peer in turn) for
    /// the blocks after our tip.
    fn request_sync(&mut self, peer: Option<PeerId>) {
        if self.sync_in_flight {
            return;
        }
        // Round robin over admitted validators only: a bootstrap node or a plain member may not
        // serve blocks, and an unanswered request would hold up sync for its whole timeout.
        let validators = self.consensus.ledger().state.validators();
        let servers: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|p| member_of(p).is_some_and(|m| validators.contains_key(&m)))
            .copied()
            .collect();
        let target = peer.or(self.best_seen.map(|(_, p)| p)).or_else(|| {
            if servers.is_empty() {
                return None;
            }
            self.rr = self.rr.wrapping_add(1);
            servers.get(self.rr % servers.len()).copied()
        });
        let Some(target) = target else {
            return;
        };
        self.sync_in_flight = true;
        let from = self.consensus.ledger().height() + 1;
        let req = ledger::encode(&ChainRequest::Blocks {
            from,
            max: MAX_SYNC_BLOCKS,
        });
        let net = self.network.clone();
        let tx = self.sync_tx.clone();
        tokio::spawn(async move {
            let r = match net.request(target, req).await {
                Ok(bytes) => match ledger::decode::<ChainResponse>(&bytes) {
                    Ok(ChainResponse::Blocks(b)) => Ok(b),
                    Ok(other) => Err(format!("unexpected answer {other:?}")),
                    Err(e) => Err(format!("malformed answer: {e}")),
                },
                Err(e) => Err(e.to_string()),
            };
            let _ = tx.send((target, r)).await;
        });
    }

    async fn on_synced(
        &mut self,
        peer: PeerId,
        r: Result<Vec<(Block, CommitCertificate)>, String>,
    ) -> Result<(), ChainError> {
        self.sync_in_flight = false;
        let blocks = match r {
            Ok(b) => b,
            Err(e) => {
                debug!(%peer, "block sync failed: {e}");
                if self.best_seen.is_some_and(|(_, p)| p == peer) {
                    self.best_seen = None;
                }
                return Ok(());
            }
        };
        let full = blocks.len() == MAX_SYNC_BLOCKS as usize;
        let mut applied = 0u64;
        for (block, certificate) in blocks {
            let before = self.consensus.ledger().height();
            self.commits.forget(block.height); // a synced block is no latency sample
            let out = self.consensus.handle(Input::Synced { block, certificate });
            self.act(out).await?;
            if self.consensus.ledger().height() == before {
                debug!(%peer, "a synced block did not apply; stopping this batch");
                break;
            }
            applied += 1;
        }
        if applied > 0 {
            self.synced_blocks += applied;
            info!(%peer, applied, height = self.consensus.ledger().height(), "synced blocks");
            self.publish_status();
        }
        if self
            .best_seen
            .is_some_and(|(b, _)| b <= self.consensus.height())
        {
            self.best_seen = None;
        }
        if full && applied > 0 {
            self.request_sync(Some(peer));
        }
        Ok(())
    }

    async fn on_tick(&mut self) -> Result<(), ChainError> {
        // A node that has not decided for a while may be behind peers it cannot hear (far
        // ahead messages are not forwarded to it): ask someone.
        if self.last_decided.elapsed() >= self.config.sync_interval * 2 {
            self.request_sync(None);
        }
        // Re-gossip our own transactions that are still waiting (gossip is best effort).
        let own: Vec<SignedTx> = self.own.values().cloned().collect();
        for tx in own {
            let _ = self.network.publish(TX_TOPIC, ledger::encode(&tx)).await;
        }
        self.publish_status();
        Ok(())
    }

    /// Acts on consensus outputs in order; consecutive WAL entries are made durable together,
    /// before the first output that follows them.
    async fn act(&mut self, outputs: Vec<Output>) -> Result<(), ChainError> {
        let mut wal = Vec::new();
        for o in outputs {
            if let Output::PersistWal(e) = o {
                wal.push(e);
                continue;
            }
            self.store.append_wal(&wal)?;
            wal.clear();
            match o {
                Output::PersistWal(_) => {}
                Output::Broadcast(m) => {
                    if let ConsensusMessage::Proposal(p) = &m {
                        self.commits
                            .proposal_seen(p.height, p.round, Instant::now());
                    }
                    if let Err(e) = self
                        .network
                        .publish(CONSENSUS_TOPIC, ledger::encode(&m))
                        .await
                    {
                        debug!("consensus publish: {e}");
                    }
                }
                Output::ScheduleTimer { timer, after } => {
                    self.timers.insert(timer, Instant::now() + after);
                }
                Output::CancelTimer(t) => {
                    self.timers.remove(&t);
                }
                Output::CancelAllTimers => self.timers.clear(),
                Output::BuildBlock { height, round } => {
                    let at = (self.last_decided + self.config.block_interval).max(Instant::now());
                    self.build_at = Some((height, round, at));
                }
                Output::Decided { block, certificate } => {
                    self.on_decided(&block, &certificate)?;
                }
                Output::Equivocation { a, b } => {
                    warn!(validator = %a.validator, height = a.height, "equivocation seen");
                    self.evidence.push((
                        a.validator,
                        Evidence::Equivocation {
                            a: Box::new(a),
                            b: Box::new(b),
                        },
                    ));
                }
                Output::InvalidProposal { proposer, reason } => {
                    warn!(%proposer, %reason, "invalid block proposed");
                }
            }
        }
        self.store.append_wal(&wal)?;
        Ok(())
    }

    fn on_decided(
        &mut self,
        block: &Block,
        certificate: &CommitCertificate,
    ) -> Result<(), ChainError> {
        self.store
            .commit_block(block, certificate, self.consensus.ledger())?;
        self.state_hash = block.state_hash;
        self.last_decided = Instant::now();
        self.commits.decided(
            block.height,
            certificate.round,
            block.txs.len(),
            self.last_decided,
        );
        self.build_at = None;
        let state = &self.consensus.ledger().state;
        self.mempool.retain(|(author, nonce), _| {
            *nonce >= state.members.get(author).map_or(0, |m| m.nonce)
        });
        let my_nonce = state.members.get(&self.me).map_or(0, |m| m.nonce);
        self.own.retain(|n, _| *n >= my_nonce);
        if !block.txs.is_empty() {
            info!(height = block.height, txs = block.txs.len(), "decided");
        } else {
            debug!(height = block.height, "decided");
        }
        let evidence = std::mem::take(&mut self.evidence);
        for (member, ev) in evidence {
            if self.consensus.ledger().state.is_validator(&member) {
                self.submit(TxBody::Evict {
                    member,
                    evidence: ev,
                });
            }
        }
        self.prune_own();
        self.refresh_view();
        self.agent_step()?;
        self.publish_status();
        Ok(())
    }

    /// Runs the epoch agent on the current ledger: persists its state, then acts on its duties.
    fn agent_step(&mut self) -> Result<(), ChainError> {
        let duties = self
            .agent
            .on_block(self.consensus.ledger(), &mut rand_core::OsRng);
        self.persist_agent()?;
        self.dispatch(duties);
        Ok(())
    }

    /// Makes the agent's state (key shares, nonces, received envelopes) durable before anything
    /// that depends on it leaves the node.
    fn persist_agent(&mut self) -> Result<(), ChainError> {
        let snapshot = self.agent.snapshot();
        let digest = seedfed_protocol::hash::hash32(AGENT_DIGEST, &[], &[0; 16], &[&snapshot]);
        if self.agent_saved != Some(digest) {
            self.store.put_agent(&snapshot)?;
            self.agent_saved = Some(digest);
        }
        Ok(())
    }

    fn dispatch(&mut self, duties: Vec<Duty>) {
        for d in duties {
            match d {
                Duty::Submit(body) => self.submit(body),
                Duty::Send { to, payload } => {
                    let Some(peer) = peer_of(&to) else {
                        continue;
                    };
                    let net = self.network.clone();
                    let req = ledger::encode(&ChainRequest::Direct(payload));
                    tokio::spawn(async move {
                        match net.request(peer, req).await {
                            Ok(bytes) => match ledger::decode::<ChainResponse>(&bytes) {
                                Ok(ChainResponse::Ack) => {}
                                other => debug!(%peer, "direct message not taken: {other:?}"),
                            },
                            Err(e) => debug!(%peer, "direct message failed: {e}"),
                        }
                    });
                }
            }
        }
    }

    /// Drops our pending transactions that can no longer apply in the next block (a window
    /// passed, another validator's equal transaction landed first) and renumbers the ones
    /// behind them, so a stale transaction cannot hold back every later one behind its nonce.
    /// The check replays our queue, in nonce order, on a copy of the state at the next height.
    fn prune_own(&mut self) {
        if self.own.is_empty() {
            return;
        }
        let state = &self.consensus.ledger().state;
        let mut probe = state.clone();
        probe.height += 1;
        let mut keep = Vec::new();
        let mut dropped = 0usize;
        for t in self.own.values() {
            let next = probe.members.get(&self.me).map_or(0, |m| m.nonce);
            let tx = if t.tx.nonce == next {
                t.clone()
            } else {
                Tx {
                    author: self.me,
                    nonce: next,
                    body: t.tx.body.clone(),
                }
                .sign(&state.chain_id, &self.signing)
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
            return;
        }
        for (_, t) in std::mem::take(&mut self.own) {
            self.mempool.remove(&(t.tx.author, t.tx.nonce));
        }
        for body in keep {
            self.submit(body);
        }
    }

    /// Signs `body` with our next nonce, puts it in the mempool and gossips it at once (and
    /// again on every tick until it is decided).
    fn submit(&mut self, body: TxBody) {
        if self.own.values().any(|t| t.tx.body == body) {
            return;
        }
        let state = &self.consensus.ledger().state;
        let base = state.members.get(&self.me).map_or(0, |m| m.nonce);
        // Past our own queue and past transactions signed with our key that came in through
        // the API or gossip.
        let pooled = self
            .mempool
            .range((self.me, 0)..=(self.me, u64::MAX))
            .next_back()
            .map_or(base, |((_, n), _)| n + 1);
        let nonce = self
            .own
            .keys()
            .next_back()
            .map_or(base, |n| n + 1)
            .max(base)
            .max(pooled);
        let tx = Tx {
            author: self.me,
            nonce,
            body,
        }
        .sign(&state.chain_id, &self.signing);
        self.own.insert(nonce, tx.clone());
        let net = self.network.clone();
        let bytes = ledger::encode(&tx);
        tokio::spawn(async move {
            if let Err(e) = net.publish(TX_TOPIC, bytes).await {
                debug!("tx publish: {e}");
            }
        });
        self.offer(tx);
    }

    fn offer(&mut self, tx: SignedTx) {
        let _ = self.admit(tx, true);
    }

    /// Takes `tx` into the mempool if its nonce is not stale, there is room and (unless the
    /// caller already did) its signature verifies.
    fn admit(&mut self, tx: SignedTx, verify: bool) -> Result<(), TxRejected> {
        let state = &self.consensus.ledger().state;
        let next = state.members.get(&tx.tx.author).map_or(0, |m| m.nonce);
        let key = (tx.tx.author, tx.tx.nonce);
        if tx.tx.nonce < next {
            return Err(TxRejected::StaleNonce {
                got: tx.tx.nonce,
                next,
            });
        }
        if tx.tx.nonce - next >= MAX_NONCE_AHEAD {
            return Err(TxRejected::NonceTooFarAhead {
                got: tx.tx.nonce,
                next,
            });
        }
        if self.mempool.len() >= MEMPOOL_MAX && !self.mempool.contains_key(&key) {
            return Err(TxRejected::MempoolFull);
        }
        if verify {
            tx.verify(&state.chain_id)
                .map_err(|e| TxRejected::Invalid(e.to_string()))?;
        }
        self.mempool.insert(key, tx);
        Ok(())
    }

    /// A transaction from the local API: into the mempool and, once, onto the `tx` topic.
    async fn on_submitted(&mut self, sub: TxSubmission) {
        let bytes = ledger::encode(&sub.tx);
        let verdict = self.admit(sub.tx, true);
        if verdict.is_ok() {
            if let Err(e) = self.network.publish(TX_TOPIC, bytes).await {
                debug!("tx publish: {e}");
            }
        }
        let _ = sub.reply.send(verdict);
    }

    fn block_candidates(&self) -> Vec<SignedTx> {
        let mut bytes = 0usize;
        let mut out = Vec::new();
        for tx in self.mempool.values() {
            bytes += ledger::encode(tx).len();
            if bytes > BLOCK_TX_BYTES || out.len() >= ledger::MAX_TXS_PER_BLOCK {
                break;
            }
            out.push(tx.clone());
        }
        out
    }

    fn refresh_view(&self) {
        self.view.update(
            self.consensus.height(),
            self.consensus.ledger().state.validators(),
        );
    }

    fn publish_status(&self) {
        let ledger: &Ledger = self.consensus.ledger();
        let s = &ledger.state;
        let validators = s
            .validators()
            .into_iter()
            .map(|(m, stake)| ValidatorInfo {
                id: hex::encode(m.as_bytes()),
                peer_id: peer_of(&m).map(|p| p.to_string()).unwrap_or_default(),
                stake,
            })
            .collect();
        let status = ChainStatus {
            member: hex::encode(self.me.as_bytes()),
            validator: s.is_validator(&self.me),
            height: ledger.height(),
            round: self.consensus.round(),
            tip: hex::encode(ledger.tip),
            state_hash: hex::encode(self.state_hash),
            epoch: s.epoch,
            beacon: hex::encode(s.beacon),
            validators,
            assignment_epoch: s.assignment_epoch,
            assignment: s
                .branch_owners
                .values()
                .map(|m| hex::encode(m.as_bytes()))
                .collect(),
            master_root: s.master_root.map(hex::encode),
            dkg_in_progress: (!s.dkg.roster.is_empty()).then_some(DkgProgress {
                epoch: s.dkg.epoch,
                attempt: s.dkg.attempt,
                opened_at: s.dkg.opened_at,
                participants: s.dkg.roster.len(),
                threshold: s.dkg.threshold,
                commitments: s.dkg.commitments.len(),
                complaints: s.dkg.complaints.len(),
                failed_attempts: s.dkg.failures.len(),
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
            checkpoints: s
                .checkpoints
                .iter()
                .map(|c| CheckpointInfo {
                    seq: c.seq,
                    epoch: c.body.epoch,
                    height: c.body.height,
                    bytes: hex::encode(c.body.checkpoint().to_bytes()),
                    signature: hex::encode(c.signature.0),
                    group_key: hex::encode(c.group_key),
                    key_epoch: c.key_epoch,
                })
                .collect(),
            agent: agent_info(self.agent.status()),
            mempool: self.mempool.len(),
            synced_blocks: self.synced_blocks,
            gossip_dropped: self.view.dropped(),
            nonce: s.members.get(&self.me).map_or(0, |m| m.nonce),
            recent_commits: self.commits.recent(),
        };
        self.status.send_replace(status);
    }
}
