//! The driver loop: one task owns the consensus state machine, the ledger, the mempool, our
//! outbox and the epoch agent, and feeds consensus the gossip of [`CONSENSUS_TOPIC`] (already
//! checked by [`super::wire::check_gossip`] in the network task), timer expiries and
//! block-sync responses.
//!
//! Guarantees: consensus outputs are acted on in order, WAL entries and decided blocks made
//! durable before any later output leaves the node (`outputs`). Every store call runs on the
//! storage thread ([`StorageThread`]) and is awaited before the driver goes on.

use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use seedfed_protocol::agent::{Agent, Fault};
use seedfed_protocol::consensus::{
    Consensus, ConsensusKey, ConsensusMessage, ConsensusParams, Input,
};
use seedfed_protocol::ledger::{self, Evidence, SignedTx, MAX_TXS_PER_BLOCK};
use seedfed_protocol::member::MemberId;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::block_server::{BlockServer, Read};
use super::latency::CommitClock;
use super::mempool::{Mempool, MempoolLimits, TxRejected, BLOCK_TX_BYTES};
use super::metrics::ChainMetrics;
use super::outbox::Outbox;
use super::own_txs::Regossiped;
use super::status::ChainStatus;
use super::storage::{ChainStore, StorageError};
use super::storage_thread::StorageThread;
use super::sync::{BlockSync, SyncResult};
use super::timers::{Deadline, Timers};
use super::wire::{
    open_consensus_gossip, tx_messages, ChainRequest, ChainResponse, GossipView, CONSENSUS_TOPIC,
    TX_TOPIC,
};
use crate::at_rest::AtRestKey;
use crate::network::{NetworkEvent, NetworkHandle, ResponseToken};

/// Capacity of the channel from the local API to the driver.
pub const SUBMIT_QUEUE: usize = 1024;

/// Tunables of the driver.
#[derive(Clone, Debug)]
pub struct ChainConfig {
    /// Consensus timeouts and buffers.
    pub consensus: ConsensusParams,
    /// Least time between two decisions when we propose (an empty chain would otherwise spin).
    pub block_interval: Duration,
    /// How often a node that has not decided for a while asks a peer for blocks.
    pub sync_interval: Duration,
    /// The mempool's bounds.
    pub mempool: MempoolLimits,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            consensus: ConsensusParams::default(),
            block_interval: Duration::from_millis(200),
            sync_interval: Duration::from_secs(1),
            mempool: MempoolLimits::default(),
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

/// Transactions handed to the driver by the local API (`POST /tx`: one, `POST /txs`: a
/// batch), with where the verdicts go.
#[derive(Debug)]
pub struct TxSubmission {
    /// The transactions.
    pub txs: Vec<SignedTx>,
    /// For each, in order: accepted into the mempool (and gossiped), or why not.
    pub reply: oneshot::Sender<Vec<Result<(), TxRejected>>>,
}

/// `GET /checkpoints`: the stored checkpoints from `from`, and where they go.
#[derive(Debug)]
pub struct CheckpointsQuery {
    /// The first sequence number wanted.
    pub from: u64,
    /// Up to `storage::MAX_CHECKPOINTS_PER_READ` checkpoints, or why not.
    pub reply: oneshot::Sender<Result<Vec<super::status::CheckpointInfo>, String>>,
}

/// What the local API hands the driver.
#[derive(Debug)]
pub enum Submission {
    /// `POST /tx`, `POST /txs`: signed transactions.
    Tx(TxSubmission),
    /// `POST /sign`: a client's sign request to relay and answer.
    Sign(super::signing::SignSubmission),
    /// `POST /sign/publish`: a client's signature with an issued leaf.
    Publish(super::signing::PublishSubmission),
    /// `POST /sign/blame`: a key issuance client's blame of a contribution.
    Blame(super::signing::BlameSubmission),
    /// `GET /sign/bundle/{leaf}`: the current bundle of an issued leaf.
    Bundle(super::signing::BundleQuery),
    /// `GET /checkpoints`: the checkpoint history.
    Checkpoints(CheckpointsQuery),
    /// `GET /account/{id}`: an account's stake and nonces.
    Account(super::accounts::AccountQuery),
    /// `GET /tx/{id}`: where a transaction submitted here stands.
    TxState(super::accounts::TxQuery),
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
    /// Transactions and sign requests submitted through the local API.
    pub submissions: mpsc::Receiver<Submission>,
    /// Metrics (registered by the caller in the node's registry).
    pub metrics: ChainMetrics,
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
        store,
        identity_seed,
        x25519_secret,
        fault,
        network,
        events,
        config,
        view,
        status,
        submissions,
        metrics,
    } = parts;
    let storage = StorageThread::spawn(store)?;
    let loaded = storage.call(move |s| s.load(&genesis)).await??;
    let at_rest = Arc::new(AtRestKey::derive(&identity_seed, &x25519_secret));
    let reader = at_rest.clone();
    let agent = match storage.call(move |s| s.agent(&reader)).await?? {
        Some(bytes) => {
            Agent::restore(&bytes, *identity_seed, *x25519_secret, fault).map_err(|e| {
                StorageError::Corrupt {
                    what: "epoch agent snapshot".into(),
                    reason: e.to_string(),
                }
            })?
        }
        None => Agent::new(*identity_seed, *x25519_secret, fault),
    }
    .with_threads(std::thread::available_parallelism().map_or(1, |n| n.get()));
    let held = storage
        .call(|s| s.held_index())
        .await??
        .into_iter()
        .collect();
    if fault != Fault::None {
        warn!(
            ?fault,
            "FAULT INJECTION is on: this node misbehaves on purpose (tests only)"
        );
    }
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
    let (votes_tx, votes_rx) = mpsc::channel(64);
    let state_hash = consensus.ledger().state.hash();
    let facts = super::milestones::facts(&consensus.ledger().state);
    let block_server = BlockServer::spawn(storage.caller()?, network.clone());
    let trees = super::trees::TreeReplicas::spawn(storage.caller()?, network.clone());
    let mut driver = Driver {
        consensus,
        storage,
        block_server,
        trees,
        network,
        me,
        mempool: Mempool::new(config.mempool.clone()),
        outbox: Outbox::new(ed25519_dalek::SigningKey::from_bytes(&identity_seed)),
        config,
        view,
        timers: Timers::default(),
        last_decided: Instant::now(),
        stall_reported: None,
        regossiped: Regossiped::default(),
        evidence: Vec::new(),
        sync: BlockSync::new(sync_tx),
        own_votes: super::vote_exchange::OwnVotes::new(votes_tx),
        status,
        agent,
        agent_saved: None,
        wal: super::outputs::WalBuffer::default(),
        next_beacon: super::status::NextBeacon::default(),
        sectors_seen: (0, 0),
        held,
        spent: std::collections::BTreeSet::new(),
        loopback: Vec::new(),
        audit_txs: std::collections::BTreeMap::new(),
        in_flight: std::collections::BTreeMap::new(),
        at_rest,
        commits: CommitClock::default(),
        activity: super::activity::Activity::default(),
        sign_waiters: super::signing::Waiters::new(),
        signing_cache: super::agent::SigningCache::default(),
        state_hash,
        metrics,
        tx_watch: super::accounts::TxWatch::default(),
        facts,
    };
    driver.refresh_view();
    driver.act(first).await?;
    driver.agent_step().await?;
    driver.publish_status();
    Ok(tokio::spawn(driver.run(
        events,
        sync_rx,
        votes_rx,
        submissions,
        stop,
    )))
}

/// The driver's state (its methods live in this module and in its siblings: `outputs`, `sync`,
/// `agent`, `status` and more).
pub(super) struct Driver {
    pub(super) consensus: Consensus,
    pub(super) storage: StorageThread,
    /// Answers peers' block requests off this task (`block_server`).
    pub(super) block_server: BlockServer,
    /// Fetches replicas of the published sector trees (`trees`).
    pub(super) trees: super::trees::TreeReplicas,
    pub(super) network: NetworkHandle,
    pub(super) me: MemberId,
    pub(super) config: ChainConfig,
    pub(super) view: Arc<GossipView>,
    pub(super) timers: Timers,
    pub(super) last_decided: Instant,
    /// The height for which a stall was last reported (`round_report`), so it is reported
    /// once.
    pub(super) stall_reported: Option<u64>,
    /// When each message re-gossiping our key's transactions was last published, by content:
    /// the `tx` topic's message id is its content, and gossipsub refuses the same message
    /// again (with a warning) until its duplicate cache forgets it.
    pub(super) regossiped: Regossiped,
    /// Everyone's transactions waiting for a block (ours too).
    pub(super) mempool: Mempool,
    /// Our own transactions not yet on the ledger.
    pub(super) outbox: Outbox,
    pub(super) evidence: Vec<(MemberId, Evidence)>,
    pub(super) sync: BlockSync,
    /// Our votes at the height being decided, for the exchange while it stalls.
    pub(super) own_votes: super::vote_exchange::OwnVotes,
    pub(super) status: watch::Sender<ChainStatus>,
    pub(super) agent: Agent,
    /// Hash of the agent snapshot last written (skip identical rewrites).
    pub(super) agent_saved: Option<[u8; 32]>,
    /// Consensus WAL entries not yet on disk (made durable before anything leaves).
    pub(super) wal: super::outputs::WalBuffer,
    /// The next epoch's beacon for the status, remembered.
    pub(super) next_beacon: super::status::NextBeacon,
    /// The key being generated and how many of its sectors were on the ledger when held
    /// records were last pruned.
    pub(super) sectors_seen: (u32, usize),
    /// The (sector, commitments root) records of leaf shares in our store.
    pub(super) held: std::collections::BTreeSet<(u32, [u8; 32])>,
    /// Keys found spent (`LedgerState::key_spent`) and erased here.
    pub(super) spent: std::collections::BTreeSet<u32>,
    /// Direct messages our agent addressed to itself, delivered after the current step.
    pub(super) loopback: Vec<seedfed_protocol::agent::Payload>,
    /// Audit reveals and paths built from the store, by (sector, root, leaf, is a path):
    /// re-submitted until they land without reading the store again.
    pub(super) audit_txs: std::collections::BTreeMap<(u32, [u8; 32], u64, bool), ledger::TxBody>,
    /// Direct requests in flight to each peer, at most [`super::direct::DIRECT_IN_FLIGHT`]:
    /// an owner's thousands of batches queue here instead of overflowing the peer's inbound
    /// stream limit (which drops them).
    pub(super) in_flight: std::collections::BTreeMap<PeerId, Arc<super::direct::PeerQueue>>,
    /// The key the agent's snapshot and held shares are sealed with on disk.
    pub(super) at_rest: Arc<AtRestKey>,
    pub(super) commits: CommitClock,
    /// Recent key usage, sign requests and votes for `/status`.
    pub(super) activity: super::activity::Activity,
    /// Held records and trees opened for signing (see `agent::SigningCache`).
    pub(super) signing_cache: super::agent::SigningCache,
    /// Sign requests we relayed for the local API, until answered.
    pub(super) sign_waiters: super::signing::Waiters,
    /// State hash at the tip (the tip block's, or genesis's), so status need not rehash.
    pub(super) state_hash: [u8; 32],
    pub(super) metrics: ChainMetrics,
    /// Transactions submitted through the local API, until decided, dropped or forgotten.
    pub(super) tx_watch: super::accounts::TxWatch,
    /// The ledger's milestone facts after the last block applied (`milestones`).
    pub(super) facts: super::milestones::Facts,
}

impl Driver {
    async fn run(
        mut self,
        mut events: mpsc::Receiver<NetworkEvent>,
        mut sync_rx: mpsc::Receiver<SyncResult>,
        mut votes_rx: mpsc::Receiver<super::vote_exchange::VoteAnswer>,
        mut submissions: mpsc::Receiver<Submission>,
        mut stop: oneshot::Receiver<()>,
    ) -> Result<Box<dyn crate::store::Store>, ChainError> {
        let mut tick = tokio::time::interval(self.config.sync_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next = self.timers.next();
            let wake = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = &mut stop => break,
                ev = events.recv() => match ev {
                    None => break,
                    Some(ev) => self.on_network(ev).await?,
                },
                Some((peer, r)) = sync_rx.recv() => self.on_synced(peer, r).await?,
                Some(answer) = votes_rx.recv() => self.on_vote_answer(answer).await?,
                Some(sub) = submissions.recv() => match sub {
                    Submission::Tx(sub) => self.on_submission(sub).await,
                    Submission::Sign(sub) => self.on_sign_submission(sub),
                    Submission::Publish(sub) => self.on_publish_submission(sub),
                    Submission::Blame(sub) => self.on_blame_submission(sub),
                    Submission::Bundle(q) => self.on_bundle_query(q),
                    Submission::Checkpoints(q) => self.on_checkpoints_query(q).await,
                    Submission::Account(q) => self.on_account_query(q),
                    Submission::TxState(q) => self.on_tx_query(q),
                },
                () = tokio::time::sleep_until(wake), if next.is_some() => self.fire_due().await?,
                _ = tick.tick() => self.on_tick().await?,
            }
        }
        info!(
            height = self.consensus.ledger().height(),
            "chain driver stopped"
        );
        // The block server and the tree fetcher hold handles on the storage thread: let them
        // go first.
        drop(self.block_server);
        drop(self.trees);
        Ok(self.storage.close().await?.into_inner())
    }

    async fn fire_due(&mut self) -> Result<(), ChainError> {
        let now = Instant::now();
        while let Some(d) = self.timers.pop_due(now) {
            let out = match d {
                Deadline::Build { height, round } => {
                    let txs = self.mempool.candidates(
                        &self.consensus.ledger().state,
                        MAX_TXS_PER_BLOCK,
                        BLOCK_TX_BYTES,
                    );
                    self.consensus
                        .handle(Input::ProposeTxs { height, round, txs })
                }
                Deadline::Consensus(t) => self.consensus.handle(Input::TimerFired(t)),
            };
            self.act(out).await?;
        }
        Ok(())
    }

    async fn on_network(&mut self, ev: NetworkEvent) -> Result<(), ChainError> {
        match ev {
            NetworkEvent::Gossip { topic, data, .. } => match topic.as_str() {
                CONSENSUS_TOPIC => self.on_consensus_gossip(&data).await?,
                TX_TOPIC => self.on_gossip_tx(&data),
                _ => {}
            },
            NetworkEvent::Request { peer, data, token } => {
                self.on_request(peer, &data, token).await?
            }
            NetworkEvent::PeerAdmitted { peer, .. } => self.sync.peer_admitted(peer),
            NetworkEvent::PeerDisconnected { peer } => self.sync.peer_gone(&peer),
            NetworkEvent::PeerRejected { .. } => {}
        }
        Ok(())
    }

    async fn on_consensus_gossip(&mut self, data: &[u8]) -> Result<(), ChainError> {
        let Ok((_, msg)) = open_consensus_gossip(data) else {
            return Ok(()); // checked by the gossip validator already
        };
        if let ConsensusMessage::Proposal(p) = &msg {
            self.commits
                .proposal_seen(p.height, p.round, Instant::now());
        }
        let ours = self.consensus.height();
        let state = &self.consensus.ledger().state;
        if let Some((h, peer)) =
            super::sync::sync_target(&state.chain_id, |m| state.is_validator(m), ours, &msg)
        {
            self.sync.heard(h, peer, ours);
        }
        let out = self.consensus.handle(Input::Message(msg));
        self.act(out).await?;
        if self.sync.behind(self.consensus.height()) {
            self.request_sync(None);
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
            Ok(ChainRequest::Blocks { from, max }) => {
                let read = Read::Blocks { from, max };
                self.block_server.serve(&self.network, read, token).await;
                return Ok(());
            }
            Ok(ChainRequest::SectorTree {
                sector,
                root,
                from,
                max,
            }) => {
                let read = Read::Tree {
                    sector,
                    root,
                    from,
                    max,
                };
                self.block_server.serve(&self.network, read, token).await;
                return Ok(());
            }
            Ok(ChainRequest::Direct(payload)) => {
                self.on_direct(peer, std::slice::from_ref(&payload)).await?
            }
            Ok(ChainRequest::Directs(payloads)) => self.on_direct(peer, &payloads).await?,
            Ok(ChainRequest::Votes { height, votes }) => {
                self.on_exchanged_votes(peer, votes).await?;
                self.votes_answer(height)
            }
        };
        debug!(%peer, "answered a chain request");
        let _ = self.network.respond(token, ledger::encode(&response)).await;
        Ok(())
    }

    async fn on_tick(&mut self) -> Result<(), ChainError> {
        // A node that has not decided for a while may be behind peers it cannot hear (far
        // ahead messages are not forwarded to it): ask someone.
        if self.last_decided.elapsed() >= self.config.sync_interval * 2 {
            self.request_sync(None);
        }
        self.regossip_own().await;
        self.rearm_consensus().await?;
        self.exchange_votes();
        self.report_stall(super::status::liveness_bound(&self.config));
        self.publish_status();
        Ok(())
    }

    /// Transactions from the `tx` topic. The chain runs only behind its gossip validator
    /// (`node::run` installs [`GossipView::validator`](super::GossipView::validator)), which
    /// checked every signature and size, so their signatures are remembered as checked.
    fn on_gossip_tx(&mut self, data: &[u8]) {
        if let Ok(txs) = ledger::decode::<Vec<SignedTx>>(data) {
            for tx in txs {
                self.consensus.remember_verified(&tx);
                let _ = self.insert(tx, "gossip");
            }
        }
    }

    /// Transactions from the local API: each one's signature checked, into the mempool and,
    /// once, onto the `tx` topic (the accepted ones together).
    async fn on_submission(&mut self, sub: TxSubmission) {
        let mut verdicts = Vec::with_capacity(sub.txs.len());
        let mut accepted = Vec::new();
        for tx in sub.txs {
            let verdict = self.submit_one(&tx);
            if verdict.is_ok() {
                accepted.push(tx);
            }
            verdicts.push(verdict);
        }
        let _ = sub.reply.send(verdicts);
        for message in tx_messages(&accepted) {
            if let Err(e) = self.network.publish(TX_TOPIC, message).await {
                debug!("tx publish: {e}");
            }
        }
    }

    /// One API transaction: checked, refused if it would take a nonce our own pending
    /// transaction holds, else into the mempool and watched.
    fn submit_one(&mut self, tx: &SignedTx) -> Result<(), TxRejected> {
        if let Err(e) = self.consensus.check_signature(tx) {
            let e = TxRejected::Invalid(e.to_string());
            self.metrics.refused(&e);
            return Err(e);
        }
        let id = tx.tx.digest(&self.consensus.ledger().state.chain_id);
        self.insert(tx.clone(), "api")?;
        self.tx_watch.watch(tx, id);
        Ok(())
    }

    /// [`Mempool::insert`] under the tip state, with refusals and evictions counted. A
    /// transaction signed with our key that did not come from our outbox (the operator's
    /// `seedfed tx`, here or at another node) never replaces a pending one of ours
    /// ([`Outbox::refuse_foreign`]).
    pub(super) fn insert(&mut self, tx: SignedTx, from: &'static str) -> Result<(), TxRejected> {
        let refusal = (from != "ours")
            .then(|| self.outbox.refuse_foreign(&tx))
            .flatten();
        if let Some(e) = refusal {
            self.metrics.refused(&e);
            debug!(from, reason = %e, "transaction refused");
            return Err(e);
        }
        match self.mempool.insert(tx, &self.consensus.ledger().state) {
            Ok(r) => {
                if r.evicted > 0 {
                    self.metrics.evicted(r.evicted);
                }
                Ok(())
            }
            Err(e) => {
                self.metrics.refused(&e);
                debug!(from, reason = %e, "transaction refused");
                Err(e)
            }
        }
    }

    pub(super) fn refresh_view(&self) {
        let state = &self.consensus.ledger().state;
        self.view
            .update(self.consensus.height(), state.validators());
        self.view.set_pow_difficulty(state.pow_difficulty);
    }
}
