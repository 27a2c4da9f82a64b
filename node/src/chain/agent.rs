//! Agent dispatch: drives `seedfed_protocol::agent::Agent` (the epoch cycle's DKG, beacon and
//! checkpoint signing, and key generation) from the driver: after every decided block, and for
//! every direct message (DKG envelope, branch partial, dealt batch, acknowledgement) a peer
//! sends us.
//!
//! Guarantees: held shares ([`Duty::Keep`]) and then the agent's snapshot (its key shares and
//! nonces) are fsynced, sealed, on the storage thread, before any duty of the same step leaves
//! the node; an unchanged snapshot is not rewritten. Duties become our own transactions
//! ([`Duty::Submit`], through the outbox and mempool) or point-to-point requests
//! ([`Duty::Send`]). Held records of a dealing that lost to another on the ledger are deleted.

use libp2p::PeerId;
use seedfed_protocol::agent::{path_txs, reveal_txs, Duty, Payload};
use seedfed_protocol::dealing::{CommitmentTree, HeldSector};
use seedfed_protocol::hash::Domain;
use seedfed_protocol::ledger;
use seedfed_protocol::member::MemberId;
use seedfed_protocol::sector::Sector;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use tracing::{debug, info, warn};

use super::driver::{ChainError, Driver};
use super::wire::{member_of, peer_of, ChainRequest, ChainResponse};
use crate::network::NetworkHandle;

const AGENT_DIGEST: Domain = Domain::new("seedfed-agentsnp");

/// Direct requests in flight to one peer. A peer takes 100 inbound request streams at once
/// and drops the rest (libp2p's request-response default): with up to six other senders at 16
/// each, an honest burst (an owner dealing every chunk to every holder) stays under it.
pub(super) const DIRECT_IN_FLIGHT: usize = 16;
/// Direct requests queued for one peer beyond which new ones are dropped (the agent re-sends
/// what has not taken effect).
const DIRECT_QUEUED: usize = 4096;

/// The direct requests to one peer: a semaphore of [`DIRECT_IN_FLIGHT`] slots and the
/// payloads waiting or in flight (by [`Payload::key`]). A request's bytes are built only once
/// it has a slot, so a queued one costs a reference to its payload, whose bytes the agent
/// keeps anyway (an owner's batches, until acknowledged).
pub(super) struct PeerQueue {
    slots: tokio::sync::Semaphore,
    pending: std::sync::Mutex<HashSet<usize>>,
}

impl PeerQueue {
    pub(super) fn new() -> Arc<PeerQueue> {
        Arc::new(PeerQueue {
            slots: tokio::sync::Semaphore::new(DIRECT_IN_FLIGHT),
            pending: std::sync::Mutex::new(HashSet::new()),
        })
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashSet<usize>> {
        // The set stays consistent whatever panicked while holding it.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes `payload` into the queue, or `None` if the queue is full or the same payload (a
    /// re-send: a clone of it) is already waiting or in flight to this peer.
    fn admit(self: &Arc<Self>, payload: Payload) -> Option<Queued> {
        let mut pending = self.pending();
        if pending.len() >= DIRECT_QUEUED || !pending.insert(payload.key()) {
            return None;
        }
        Some(Queued {
            queue: self.clone(),
            payload,
        })
    }
}

/// A payload waiting for, or holding, a slot of its peer's queue; leaves the queue when dropped.
struct Queued {
    queue: Arc<PeerQueue>,
    payload: Payload,
}

impl Drop for Queued {
    fn drop(&mut self) {
        // `payload` is still alive here, so its key names nothing else yet.
        self.queue.pending().remove(&self.payload.key());
    }
}

/// Most direct payloads in one request ([`ChainRequest::Directs`]); a peer refuses more.
pub(super) const DIRECT_GROUP_MAX: usize = 512;
/// A request of several payloads stops growing at this many bytes (a payload larger than
/// this goes alone; the request-response cap, 4 MiB by default, is larger). With
/// [`DIRECT_IN_FLIGHT`] requests in flight to each peer, this bounds what an owner dealing to
/// every holder at once has in flight (16 × 256 KiB per holder); a block's contributions to a
/// relay (under 1 KB each, with their commitment paths) still travel in one or two requests. At 1 MiB, an owner of a 2^18-leaf
/// sector dealing to 15 holders was resident at 1.5–2 GiB (`seedfed-bench memory --height 20`).
const DIRECT_GROUP_BYTES: usize = 256 << 10;

/// Sends `payloads` to `peer` as direct requests once `queue` has a free slot for each: the
/// payloads travel together, in requests of up to `group_max` (at most [`DIRECT_GROUP_MAX`],
/// 1 if we are no validator: peers take groups from validators only) payloads and about
/// [`DIRECT_GROUP_BYTES`] bytes (one slot, one stream and one turn of the peer's chain task
/// each; a quorum member's contributions of a block to one relay are one request). A payload
/// already waiting or in flight to that peer is left out (the agent re-sends an owner's
/// batches every few blocks until the holder acknowledges: a slow holder would otherwise get a
/// copy queued per re-send), and so is one beyond a full queue. Returns how many were queued.
pub(super) fn send_direct(
    net: &NetworkHandle,
    peer: PeerId,
    queue: &Arc<PeerQueue>,
    payloads: Vec<Payload>,
    group_max: usize,
) -> usize {
    let offered = payloads.len();
    let admitted: Vec<Queued> = payloads
        .into_iter()
        .filter_map(|p| queue.admit(p))
        .collect();
    if admitted.len() < offered {
        debug!(
            %peer,
            dropped = offered - admitted.len(),
            "direct messages already queued, or the queue is full"
        );
    }
    let queued = admitted.len();
    let mut group: Vec<Queued> = Vec::new();
    let mut bytes = 0;
    for q in admitted {
        let len = q.payload.len();
        if !group.is_empty()
            && (group.len() >= group_max.min(DIRECT_GROUP_MAX) || bytes + len > DIRECT_GROUP_BYTES)
        {
            spawn_group(net, peer, std::mem::take(&mut group));
            bytes = 0;
        }
        bytes += len;
        group.push(q);
    }
    if !group.is_empty() {
        spawn_group(net, peer, group);
    }
    queued
}

/// Sends one request of `group` (one payload: [`ChainRequest::Direct`]; more:
/// [`ChainRequest::Directs`]) once its queue has a free slot; the payloads leave the queue
/// when the answer (or the failure) is in.
fn spawn_group(net: &NetworkHandle, peer: PeerId, group: Vec<Queued>) {
    let net = net.clone();
    tokio::spawn(async move {
        let Some(queue) = group.first().map(|q| q.queue.clone()) else {
            return;
        };
        // The semaphore is never closed: a permit always comes.
        let permit = queue.slots.acquire().await;
        let request = match group.as_slice() {
            [one] => ChainRequest::Direct(one.payload.to_vec()),
            many => ChainRequest::Directs(many.iter().map(|q| q.payload.to_vec()).collect()),
        };
        // Only the encoding stays in flight (the copies it was made from go now).
        let bytes = ledger::encode(&request);
        drop(request);
        let sent = net.request(peer, bytes).await;
        drop(permit);
        drop(group);
        match sent {
            Ok(bytes) => match ledger::decode::<ChainResponse>(&bytes) {
                Ok(ChainResponse::Ack) => {}
                other => debug!(%peer, "direct message not taken: {other:?}"),
            },
            Err(e) => debug!(%peer, "direct message failed: {e}"),
        }
    });
}

impl Driver {
    /// Runs the epoch agent on the current ledger: keeps what it asks to keep, persists its
    /// state, then acts on its duties.
    pub(super) async fn agent_step(&mut self) -> Result<(), ChainError> {
        let (agent, ledger) = (&mut self.agent, self.consensus.ledger());
        // Sector generation and dealing are CPU-bound: let the runtime move other tasks away.
        let duties = cpu_bound(|| agent.on_block(ledger, &mut rand_core::OsRng));
        if ledger.state.newest.master_root.is_some() {
            self.audit_txs.clear();
        }
        // Spent keys first: the tree replicas `prune_sectors` asks for leave them out.
        self.erase_spent_keys().await?;
        self.prune_sectors().await?;
        self.act_on(duties).await?;
        self.drain_loopback().await
    }

    /// Delivers the direct messages our agent sent to itself (an owner is often a holder of
    /// its own sector; a relay sends itself the paths from its tree replicas), until none is
    /// left: each round's messages are taken in one turn and their duties acted on together,
    /// as a group from a peer is.
    async fn drain_loopback(&mut self) -> Result<(), ChainError> {
        let mut rounds = 0;
        while !self.loopback.is_empty() {
            rounds += 1;
            if rounds > 16 {
                warn!(
                    left = self.loopback.len(),
                    "dropping self-addressed messages that keep producing more"
                );
                self.loopback.clear();
                break;
            }
            let payloads: Vec<Vec<u8>> = std::mem::take(&mut self.loopback)
                .iter()
                .map(|p| p.to_vec())
                .collect();
            let (duties, refused) = self.take_direct(self.me, &payloads);
            if let Some(e) = refused.first() {
                debug!(
                    refused = refused.len(),
                    "self-addressed message refused: {e}"
                );
            }
            self.act_on(duties).await?;
        }
        Ok(())
    }

    /// Runs `payloads` from `from` through the agent in order, in one CPU-bound turn: the
    /// duties of those it took, and why each other one was refused.
    fn take_direct(&mut self, from: MemberId, payloads: &[Vec<u8>]) -> (Vec<Duty>, Vec<String>) {
        let (agent, ledger) = (&mut self.agent, self.consensus.ledger());
        cpu_bound(|| {
            let mut duties = Vec::new();
            let mut refused = Vec::new();
            for payload in payloads {
                match agent.on_direct(ledger, from, payload, &mut rand_core::OsRng) {
                    Ok(d) => duties.extend(d),
                    Err(e) => refused.push(e.to_string()),
                }
            }
            (duties, refused)
        })
    }

    /// Direct messages from `peer` for our agent (one request's worth, taken in order in one
    /// turn): the duties of all of them are acted on together, so what they ask to keep is
    /// stored and the agent persisted once before anything they cause leaves. The answer is
    /// `Ack` if every one was taken, else why (not) the first refused one was.
    pub(super) async fn on_direct(
        &mut self,
        peer: PeerId,
        payloads: &[Vec<u8>],
    ) -> Result<ChainResponse, ChainError> {
        let from = match direct_sender(&self.consensus.ledger().state, &peer, payloads.len()) {
            Ok(from) => from,
            Err(why) => return Ok(ChainResponse::Refused(why.into())),
        };
        let (duties, refused) = self.take_direct(from, payloads);
        if refused.len() < payloads.len() {
            // Something was taken: the agent's state is on disk before the answer says so.
            self.act_on(duties).await?;
            self.drain_loopback().await?;
        }
        Ok(match refused.first() {
            None => ChainResponse::Ack,
            Some(why) => {
                debug!(%peer, refused = refused.len(), "direct message refused: {why}");
                if payloads.len() == 1 {
                    ChainResponse::Refused(why.clone())
                } else {
                    ChainResponse::Refused(format!(
                        "{} of {} direct messages refused, the first: {why}",
                        refused.len(),
                        payloads.len()
                    ))
                }
            }
        })
    }

    /// Stores the records the agent asked to keep, then persists its state, then sends and
    /// submits: nothing that depends on a share or a key leaves before it is on disk.
    async fn act_on(&mut self, duties: Vec<Duty>) -> Result<(), ChainError> {
        let mut rest = Vec::with_capacity(duties.len());
        for d in duties {
            match d {
                Duty::Keep {
                    sector,
                    commitments_root,
                    record,
                } => {
                    let key = self.at_rest.clone();
                    self.storage
                        .call(move |s| s.put_held(&key, sector, &commitments_root, &record.0))
                        .await??;
                    self.held.insert((sector, commitments_root));
                    debug!(sector, "kept our shares of a sector");
                }
                Duty::KeepTree { sector, root, keys } => {
                    self.storage
                        .call(move |s| s.put_tree(sector, &root, &keys))
                        .await??;
                    debug!(
                        sector,
                        "kept a sector tree (ours, or as a holder of its shares)"
                    );
                }
                Duty::Reveal {
                    sector,
                    commitments_root,
                    leaves,
                } => {
                    match self
                        .audit_bodies(sector, commitments_root, &leaves, false)
                        .await
                    {
                        Ok(bodies) => rest.extend(bodies.into_iter().map(Duty::Submit)),
                        Err(e) => warn!(sector, "cannot reveal audited shares: {e}"),
                    }
                }
                Duty::Contribute {
                    sector,
                    commitments_root,
                    leaf,
                } => {
                    let made = match self.held_for_signing(sector, commitments_root).await {
                        Ok(held) => self
                            .agent
                            .contribution(
                                &self.consensus.ledger().state,
                                &held.0,
                                &held.1,
                                leaf,
                                &mut rand_core::OsRng,
                            )
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e),
                    };
                    match made {
                        Ok(send) => rest.push(send),
                        Err(e) => {
                            self.metrics
                                .reconstruction_failed("contribution_unavailable");
                            warn!(sector, leaf, "cannot contribute to a signature: {e}");
                        }
                    }
                }
                Duty::SendPath {
                    key,
                    sector,
                    root,
                    leaf,
                    to,
                } => match self
                    .tree_for_signing(key, sector, root)
                    .await
                    .and_then(|tree| {
                        self.agent
                            .leaf_path_msg(&self.consensus.ledger().state, &tree, leaf)
                            .map_err(|e| e.to_string())
                    }) {
                    Ok(payload) => rest.push(Duty::Send {
                        to,
                        payload: payload.into(),
                    }),
                    // As the relay, from a replica not fetched yet: the owner's path will do.
                    Err(e) if to == self.me => debug!(sector, leaf, "no path of our own: {e}"),
                    Err(e) => warn!(sector, leaf, "cannot send a leaf's path: {e}"),
                },
                Duty::ProvePath {
                    sector,
                    root,
                    leaves,
                } => match self.audit_bodies(sector, root, &leaves, true).await {
                    Ok(bodies) => rest.extend(bodies.into_iter().map(Duty::Submit)),
                    Err(e) => warn!(sector, "cannot post audited paths: {e}"),
                },
                other => rest.push(other),
            }
        }
        self.persist_agent().await?;
        self.dispatch(rest);
        Ok(())
    }

    /// The `AuditReveal`s (or, with `path`, the owner's `AuditPath`s) of `leaves` of the
    /// dealing of `sector` with commitments root (or sector root) `root`, built from the store
    /// once and then re-used.
    async fn audit_bodies(
        &mut self,
        sector: u32,
        root: [u8; 32],
        leaves: &[u64],
        path: bool,
    ) -> Result<Vec<ledger::TxBody>, String> {
        let key = |l: u64| (sector, root, l, path);
        let missing: Vec<u64> = leaves
            .iter()
            .copied()
            .filter(|l| !self.audit_txs.contains_key(&key(*l)))
            .collect();
        if !missing.is_empty() {
            let bodies = if path {
                self.build_paths(sector, root, &missing).await?
            } else {
                self.build_reveals(sector, root, &missing).await?
            };
            for (l, b) in missing.iter().zip(bodies) {
                self.audit_txs.insert(key(*l), b);
            }
        }
        Ok(leaves
            .iter()
            .filter_map(|l| self.audit_txs.get(&key(*l)).cloned())
            .collect())
    }

    /// Our reveals of `leaves`, from the held record of (sector, commitments root).
    async fn build_reveals(
        &self,
        sector: u32,
        commitments_root: [u8; 32],
        leaves: &[u64],
    ) -> Result<Vec<ledger::TxBody>, String> {
        let held = self.load_held(sector, commitments_root).await?;
        reveal_txs(&held, leaves).map_err(|e| e.to_string())
    }

    /// The paths of `leaves`, from the tree kept under (sector, root).
    async fn build_paths(
        &self,
        sector: u32,
        root: [u8; 32],
        leaves: &[u64],
    ) -> Result<Vec<ledger::TxBody>, String> {
        // Audits are of the key being generated.
        let key = self.consensus.ledger().state.newest.index;
        let tree = self.load_tree(key, sector, root).await?;
        path_txs(&tree, leaves).map_err(|e| e.to_string())
    }

    /// Our held record of (sector, commitments root), opened and decoded.
    async fn load_held(
        &self,
        sector: u32,
        commitments_root: [u8; 32],
    ) -> Result<HeldSector, String> {
        let key = self.at_rest.clone();
        let record = self
            .storage
            .call(move |s| s.held(&key, sector, &commitments_root))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
            .ok_or("no held record of that dealing")?;
        ledger::decode(&record).map_err(|e| e.to_string())
    }

    /// Our held record of (sector, commitments root) with its commitments tree, for
    /// signing: read, opened and hashed once, then kept in [`SigningCache`] (a contribution
    /// per leaf would otherwise decode and hash the whole sector each time).
    async fn held_for_signing(
        &mut self,
        sector: u32,
        commitments_root: [u8; 32],
    ) -> Result<OpenHeld, String> {
        if let Some(h) = self.signing_cache.held(sector, commitments_root) {
            return Ok(h);
        }
        let held = self.load_held(sector, commitments_root).await?;
        let tree = cpu_bound(|| CommitmentTree::new(held.first_leaf, &held.commitments))
            .map_err(|e| e.to_string())?;
        let entry = Arc::new((held, tree));
        self.signing_cache
            .keep_held(sector, commitments_root, entry.clone());
        Ok(entry)
    }

    /// The tree we kept of (sector, root), for signing: rebuilt once, then kept in
    /// [`SigningCache`].
    async fn tree_for_signing(
        &mut self,
        key: u32,
        sector: u32,
        root: [u8; 32],
    ) -> Result<Arc<Sector>, String> {
        if let Some(t) = self.signing_cache.tree(sector, root) {
            return Ok(t);
        }
        let tree = Arc::new(self.load_tree(key, sector, root).await?);
        self.signing_cache.keep_tree(sector, root, tree.clone());
        Ok(tree)
    }

    /// The tree we kept of (sector, root), rebuilt with key `key`'s layout and checked against
    /// the root.
    async fn load_tree(&self, key: u32, sector: u32, root: [u8; 32]) -> Result<Sector, String> {
        let keys = self
            .storage
            .call(move |s| s.tree(sector, &root))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
            .ok_or("no kept tree of that sector")?;
        let st = &self.consensus.ledger().state;
        let layout = st.key_layout(key).map_err(|e| e.to_string())?;
        let tree = Sector::from_leaf_keys(layout, sector, keys).map_err(|e| e.to_string())?;
        if tree.root() != root {
            return Err("the kept tree does not build the sector root".into());
        }
        Ok(tree)
    }

    /// Once more sectors are on the ledger, deletes the held records and kept trees of
    /// dealings that lost: those of a sector of the key being generated that landed with
    /// another commitments root (sector root, for trees), unless an older key's sector has it.
    /// Reads only the stores' keys.
    async fn prune_sectors(&mut self) -> Result<(), ChainError> {
        let st = &self.consensus.ledger().state;
        let seen = (st.newest.index, st.newest.sectors.len());
        if seen == self.sectors_seen {
            return Ok(());
        }
        self.sectors_seen = seen;
        self.trees
            .want(super::trees::wanted(st, &self.me, &self.spent));
        if seen.1 > 0 {
            info!(
                key = seen.0,
                sectors_final = seen.1,
                sectors_total = st.key.sectors(),
                "key generation progress"
            );
        }
        // A record or tree is lost when its sector of the key being generated landed with
        // another root and no older key's sector has it (a dealing re-done after a conviction,
        // an eviction or a missed window, or a published sector withdrawn by its audit).
        let landed: BTreeMap<u32, ([u8; 32], [u8; 32])> = st
            .newest
            .sectors
            .iter()
            .map(|(s, r)| (*s, (r.commitments_root, r.root)))
            .collect();
        let older: BTreeSet<(u32, [u8; 32])> = st
            .older_keys
            .values()
            .flat_map(|k| {
                k.sectors
                    .iter()
                    .flat_map(|(s, r)| [(*s, r.commitments_root), (*s, r.root)])
            })
            .collect();
        // `tree`: `r` is a sector root (else a commitments root).
        let lost = move |s: &u32, r: &[u8; 32], tree: bool| {
            let other = |l: &([u8; 32], [u8; 32])| if tree { l.1 != *r } else { l.0 != *r };
            landed.get(s).is_some_and(other) && !older.contains(&(*s, *r))
        };
        self.held.retain(|(s, r)| !lost(s, r, false));
        let n = self
            .storage
            .call(move |store| store.prune_sectors(lost))
            .await??;
        if n != (0, 0) {
            info!(
                held_records = n.0,
                trees = n.1,
                "deleted held shares and trees of dealings that did not land"
            );
        }
        Ok(())
    }

    /// Erases what a spent key ([`ledger::LedgerState::key_spent`]: nothing left to allocate,
    /// every allocated leaf done) leaves here: our held shares of its sectors and the sector
    /// trees kept of it (ours or replicas). Nothing can use them again, and a share erased is
    /// one a later compromise of this node cannot give away. Checked at every block (an issued
    /// leaf is done when its window ends, with nothing landing); done again after a restart
    /// (deleting what is gone is a no-op).
    async fn erase_spent_keys(&mut self) -> Result<(), ChainError> {
        let st = &self.consensus.ledger().state;
        // Cheap at every block: a key still allocating fails at its next free leaf, and an
        // exhausted one at its last leaves still waiting (`key_spent` walks them newest first).
        let newly: BTreeSet<u32> = st
            .older_keys
            .keys()
            .filter(|k| !self.spent.contains(k) && st.key_spent(**k))
            .copied()
            .collect();
        if newly.is_empty() {
            return Ok(());
        }
        let (mut held, mut trees) = (Vec::new(), Vec::new());
        for key in st.keys().filter(|k| newly.contains(&k.index)) {
            for (sector, record) in &key.sectors {
                held.push((*sector, record.commitments_root));
                trees.push((*sector, record.root));
            }
        }
        let ours = held.iter().filter(|h| self.held.contains(h)).count();
        let sectors = trees.len();
        let h = held.clone();
        self.storage
            .call(move |store| store.erase_sectors(&h, &trees))
            .await??;
        for h in &held {
            self.held.remove(h);
        }
        self.signing_cache.clear();
        self.spent.extend(&newly);
        self.trees
            .want(super::trees::wanted(st, &self.me, &self.spent));
        info!(
            keys = ?newly,
            sectors,
            held_records = ours,
            "erased the shares and trees of spent keys"
        );
        Ok(())
    }

    /// Makes the agent's state (key shares, nonces, received envelopes) durable before anything
    /// that depends on it leaves the node.
    async fn persist_agent(&mut self) -> Result<(), ChainError> {
        let snapshot = self.agent.snapshot();
        let digest = seedfed_protocol::hash::hash32(AGENT_DIGEST, &[], &[0; 16], &[&snapshot]);
        if self.agent_saved != Some(digest) {
            let key = self.at_rest.clone();
            self.storage
                .call(move |s| s.put_agent(&key, &snapshot))
                .await??;
            self.agent_saved = Some(digest);
        }
        Ok(())
    }

    /// Submits our transactions and sends our direct messages, those to one peer together.
    fn dispatch(&mut self, duties: Vec<Duty>) {
        let mut sends: BTreeMap<PeerId, Vec<Payload>> = BTreeMap::new();
        for d in duties {
            match d {
                Duty::Submit(body) => self.sign_and_publish(body),
                Duty::Send { to, payload } if to == self.me => self.loopback.push(payload),
                Duty::Send { to, payload } => {
                    if let Some(peer) = peer_of(&to) {
                        sends.entry(peer).or_default().push(payload);
                    }
                }
                Duty::Keep { sector, .. }
                | Duty::KeepTree { sector, .. }
                | Duty::Reveal { sector, .. }
                | Duty::ProvePath { sector, .. }
                | Duty::Contribute { sector, .. }
                | Duty::SendPath { sector, .. } => {
                    warn!(sector, "a storage duty reached dispatch; dropped");
                }
            }
        }
        // Peers take groups from validators only (`direct_sender`).
        let group = if self.consensus.ledger().state.is_validator(&self.me) {
            DIRECT_GROUP_MAX
        } else {
            1
        };
        for (peer, payloads) in sends {
            let queue = self.in_flight.entry(peer).or_insert_with(PeerQueue::new);
            send_direct(&self.network, peer, queue, payloads, group);
        }
    }
}

/// The member a request of `count` direct messages from `peer` comes from, or why it is
/// refused before it reaches the agent: only ledger members deal, hold, contribute and send
/// paths (a network-admitted identity that is no member has nothing to send, and its messages
/// would cost the chain task a turn and a decode each); only validators send several in one
/// request (everyone who deals, holds or relays is one, and a member admitted by proof of work
/// alone would otherwise get [`DIRECT_GROUP_MAX`] messages of the chain task's time for each
/// request its rate allows); and no request carries more than [`DIRECT_GROUP_MAX`].
fn direct_sender(
    state: &ledger::LedgerState,
    peer: &PeerId,
    count: usize,
) -> Result<seedfed_protocol::member::MemberId, &'static str> {
    let from = member_of(peer).ok_or("sender is not an Ed25519 identity")?;
    if !state.members.contains_key(&from) {
        return Err("sender is not a ledger member");
    }
    if count > DIRECT_GROUP_MAX {
        return Err("more direct messages in one request than a group holds");
    }
    if count > 1 && !state.is_validator(&from) {
        return Err("only validators send direct messages in groups");
    }
    Ok(from)
}

/// Runs CPU-bound agent work: on a multi-threaded runtime the worker hands its other tasks
/// to the rest of the pool first (`block_in_place`); elsewhere it just runs.
fn cpu_bound<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Most held records (and trees) kept open for signing; the least recently used goes first.
pub(super) const SIGNING_CACHE_ENTRIES: usize = 8;

/// A held record opened for signing, with its commitments tree.
pub(super) type OpenHeld = Arc<(HeldSector, CommitmentTree)>;

/// Held records and sector trees the node opened for signing, kept across blocks while
/// signatures keep coming (bounded by [`SIGNING_CACHE_ENTRIES`] each), and dropped as soon as
/// no request is open. The held records hold shares, which zeroize when the last reference
/// drops (`shamir::Share`).
#[derive(Default)]
pub(super) struct SigningCache {
    clock: u64,
    held: BTreeMap<(u32, [u8; 32]), (u64, OpenHeld)>,
    trees: BTreeMap<(u32, [u8; 32]), (u64, Arc<Sector>)>,
}

impl SigningCache {
    fn touch<V: Clone>(
        clock: &mut u64,
        map: &mut BTreeMap<(u32, [u8; 32]), (u64, V)>,
        key: (u32, [u8; 32]),
    ) -> Option<V> {
        *clock += 1;
        let now = *clock;
        map.get_mut(&key).map(|(used, v)| {
            *used = now;
            v.clone()
        })
    }

    fn keep<V>(
        clock: &mut u64,
        map: &mut BTreeMap<(u32, [u8; 32]), (u64, V)>,
        key: (u32, [u8; 32]),
        v: V,
    ) {
        *clock += 1;
        if map.len() >= SIGNING_CACHE_ENTRIES {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        map.insert(key, (*clock, v));
    }

    fn held(&mut self, sector: u32, root: [u8; 32]) -> Option<OpenHeld> {
        Self::touch(&mut self.clock, &mut self.held, (sector, root))
    }

    fn keep_held(&mut self, sector: u32, root: [u8; 32], v: OpenHeld) {
        Self::keep(&mut self.clock, &mut self.held, (sector, root), v);
    }

    fn tree(&mut self, sector: u32, root: [u8; 32]) -> Option<Arc<Sector>> {
        Self::touch(&mut self.clock, &mut self.trees, (sector, root))
    }

    fn keep_tree(&mut self, sector: u32, root: [u8; 32], v: Arc<Sector>) {
        Self::keep(&mut self.clock, &mut self.trees, (sector, root), v);
    }

    /// Forgets everything (no signature is pending).
    pub(super) fn clear(&mut self) {
        self.held.clear();
        self.trees.clear();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;
    use crate::network::Command;

    type Answer = tokio::sync::oneshot::Sender<Result<Vec<u8>, crate::network::NetworkError>>;

    /// The next request the node sends: its payload and the way to answer it.
    async fn next_request(
        commands: &mut tokio::sync::mpsc::Receiver<Command>,
    ) -> (Vec<u8>, Answer) {
        match commands.recv().await {
            Some(Command::Request(_, req, answer)) => {
                match ledger::decode::<ChainRequest>(&req).unwrap() {
                    ChainRequest::Direct(payload) => (payload, answer),
                    other => panic!("not a direct message: {other:?}"),
                }
            }
            _ => panic!("no request"),
        }
    }

    /// Before, each re-send round of an owner (every `KEYGEN_RESEND_BLOCKS`) queued one more
    /// encoded copy of every batch a slow holder had not taken yet behind the peer's in-flight
    /// slots, up to `DIRECT_QUEUED` per peer: GiBs of copies at 2^20 leaves (issue 12).
    #[tokio::test]
    async fn a_resend_still_queued_or_in_flight_to_a_peer_is_not_queued_again() {
        let (net, mut commands) = NetworkHandle::detached();
        let peer = PeerId::random();
        let queue = PeerQueue::new();
        // Every slot taken by other messages, unanswered.
        let mut answers = Vec::new();
        for i in 0..DIRECT_IN_FLIGHT {
            assert_eq!(
                send_direct(
                    &net,
                    peer,
                    &queue,
                    vec![vec![i as u8].into()],
                    DIRECT_GROUP_MAX
                ),
                1
            );
            answers.push(next_request(&mut commands).await.1);
        }
        let batch = Payload::from(vec![0xba; 100]);
        assert_eq!(
            send_direct(&net, peer, &queue, vec![batch.clone()], DIRECT_GROUP_MAX),
            1
        );
        // Queued behind the slots: the re-send is not queued again.
        assert_eq!(
            send_direct(&net, peer, &queue, vec![batch.clone()], DIRECT_GROUP_MAX),
            0
        );
        // Another message with the same bytes is another message.
        let twin = Payload::from(vec![0xba; 100]);
        assert_eq!(
            send_direct(&net, peer, &queue, vec![twin.clone()], DIRECT_GROUP_MAX),
            1
        );
        // A slot frees: the batch goes out, once; in flight, its re-send is not queued.
        answers
            .pop()
            .unwrap()
            .send(Ok(ledger::encode(&ChainResponse::Ack)))
            .unwrap();
        let (sent, answer) = next_request(&mut commands).await;
        assert_eq!(sent, batch.to_vec());
        assert_eq!(
            send_direct(&net, peer, &queue, vec![batch.clone()], DIRECT_GROUP_MAX),
            0
        );
        // Delivered: it leaves the queue, and a later re-send goes out again (the holder may
        // have restarted and lost it).
        answer
            .send(Ok(ledger::encode(&ChainResponse::Ack)))
            .unwrap();
        for _ in 0..1000 {
            if !queue.pending().contains(&batch.key()) {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(
            send_direct(&net, peer, &queue, vec![batch.clone()], DIRECT_GROUP_MAX),
            1
        );
        // Waiting or in flight: the first messages, the twin and the batch.
        assert_eq!(queue.pending().len(), DIRECT_IN_FLIGHT - 1 + 2);
    }

    /// Before, every payload was a request of its own: a relay got one stream, one turn of its
    /// chain task and one slot of the sender's rate limit per contribution, and a signing
    /// burst's contributions to it exceeded its per-peer request rate (issue 10: contributions
    /// for a batch of requests travel together).
    #[tokio::test]
    async fn payloads_to_one_peer_travel_together_up_to_the_group_limit() {
        let (net, mut commands) = NetworkHandle::detached();
        let peer = PeerId::random();
        let queue = PeerQueue::new();
        let payloads: Vec<Payload> = (0..DIRECT_GROUP_MAX + 3)
            .map(|i| Payload::from(i.to_le_bytes().to_vec()))
            .collect();
        // A payload offered twice is queued once.
        let mut offered = payloads.clone();
        offered.push(payloads[0].clone());
        assert_eq!(
            send_direct(&net, peer, &queue, offered, DIRECT_GROUP_MAX),
            payloads.len()
        );
        let mut sent = Vec::new();
        for want in [DIRECT_GROUP_MAX, 3] {
            let Some(Command::Request(to, req, answer)) = commands.recv().await else {
                panic!("no request");
            };
            assert_eq!(to, peer);
            let ChainRequest::Directs(group) = ledger::decode::<ChainRequest>(&req).unwrap() else {
                panic!("not a group of direct messages");
            };
            assert_eq!(group.len(), want);
            sent.extend(group);
            answer
                .send(Ok(ledger::encode(&ChainResponse::Ack)))
                .unwrap();
        }
        let expected: Vec<Vec<u8>> = payloads.iter().map(Payload::to_vec).collect();
        assert_eq!(sent, expected);
        // A group's size is bounded in bytes too: large payloads go in several requests.
        let big: Vec<Payload> = (0..3u8)
            .map(|i| Payload::from(vec![i; DIRECT_GROUP_BYTES / 2 + 1]))
            .collect();
        assert_eq!(send_direct(&net, peer, &queue, big, DIRECT_GROUP_MAX), 3);
        for _ in 0..3 {
            let Some(Command::Request(_, req, answer)) = commands.recv().await else {
                panic!("no request");
            };
            assert!(matches!(
                ledger::decode::<ChainRequest>(&req).unwrap(),
                ChainRequest::Direct(_)
            ));
            answer
                .send(Ok(ledger::encode(&ChainResponse::Ack)))
                .unwrap();
        }
    }

    /// Before, a direct message from any admitted peer reached the agent on the chain task,
    /// decoded or not (the flood bench's garbage direct messages).
    #[test]
    fn direct_messages_from_peers_that_are_no_ledger_members_are_refused_first() {
        let key = libp2p::identity::Keypair::generate_ed25519();
        let id = member_of(&key.public().to_peer_id()).expect("an Ed25519 peer");
        let genesis = crate::chain::test_genesis::genesis("direct", &[(id, 100)], 1_000);
        let state = seedfed_protocol::ledger::LedgerState::from_genesis(&genesis).expect("genesis");
        let member = peer_of(&id).expect("peer id");
        assert!(direct_sender(&state, &member, 1).is_ok());
        let stranger = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        assert_eq!(
            direct_sender(&state, &stranger, 1),
            Err("sender is not a ledger member")
        );
        let not_ed25519 = PeerId::random();
        assert_eq!(
            direct_sender(&state, &not_ed25519, 1),
            Err("sender is not an Ed25519 identity")
        );
    }

    /// Before, any member (one admitted by proof of work alone, with no stake) could send
    /// requests of [`DIRECT_GROUP_MAX`] direct messages, each taking the chain task's time, at
    /// the rate allowed for single requests.
    #[test]
    fn only_validators_send_direct_messages_in_groups_and_no_group_is_too_large() {
        let validator = libp2p::identity::Keypair::generate_ed25519();
        let id = member_of(&validator.public().to_peer_id()).expect("an Ed25519 peer");
        let genesis = crate::chain::test_genesis::genesis("direct", &[(id, 100)], 1_000);
        let mut state =
            seedfed_protocol::ledger::LedgerState::from_genesis(&genesis).expect("genesis");
        let unstaked_key = libp2p::identity::Keypair::generate_ed25519();
        let unstaked = member_of(&unstaked_key.public().to_peer_id()).expect("an Ed25519 peer");
        let mut member = state.members.get(&id).expect("the validator").clone();
        member.stake = 0;
        state.members.insert(unstaked, member);
        state.members.settle();
        assert!(!state.is_validator(&unstaked));
        let (validator, unstaked) = (
            peer_of(&id).expect("peer id"),
            peer_of(&unstaked).expect("peer id"),
        );
        assert!(direct_sender(&state, &validator, DIRECT_GROUP_MAX).is_ok());
        assert_eq!(
            direct_sender(&state, &validator, DIRECT_GROUP_MAX + 1),
            Err("more direct messages in one request than a group holds")
        );
        assert!(direct_sender(&state, &unstaked, 1).is_ok());
        assert_eq!(
            direct_sender(&state, &unstaked, 2),
            Err("only validators send direct messages in groups")
        );
    }

    /// A node that is no validator sends one direct message per request (its peers refuse its
    /// groups).
    #[tokio::test]
    async fn a_group_limit_of_one_sends_each_payload_alone() {
        let (net, mut commands) = NetworkHandle::detached();
        let peer = PeerId::random();
        let queue = PeerQueue::new();
        let payloads: Vec<Payload> = (0..3u8).map(|i| Payload::from(vec![i])).collect();
        assert_eq!(send_direct(&net, peer, &queue, payloads.clone(), 1), 3);
        let mut sent = Vec::new();
        for _ in 0..3 {
            let (payload, answer) = next_request(&mut commands).await;
            sent.push(payload);
            answer
                .send(Ok(ledger::encode(&ChainResponse::Ack)))
                .unwrap();
        }
        sent.sort();
        assert_eq!(sent, vec![vec![0], vec![1], vec![2]]);
    }
}
