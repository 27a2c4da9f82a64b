//! Agent dispatch: drives `seedfed_protocol::agent::Agent` (the epoch cycle's DKG, beacon and
//! checkpoint signing, and key generation) from the driver: after every decided block, and for
//! every direct message (DKG envelope, branch partial, dealt batch, acknowledgement) a peer
//! sends us.
//!
//! Guarantees: held shares ([`Duty::KeepChunk`], sealed), held indexes ([`Duty::Keep`]) and
//! then the agent's snapshot (its key shares and nonces, sealed) are fsynced, on the storage
//! thread, before any duty of the same step leaves
//! the node; an unchanged snapshot is not rewritten. Duties become our own transactions
//! ([`Duty::Submit`], through the outbox and mempool) or point-to-point requests
//! ([`Duty::Send`], sent by [`super::direct`]). Held records and trees of a dealing that lost
//! to another on the ledger are deleted.

use libp2p::PeerId;
use seedfed_protocol::agent::{path_txs, reveal_txs, Duty, Payload};
use seedfed_protocol::dealing::{CommitmentTree, HeldSector};
use seedfed_protocol::hash::Domain;
use seedfed_protocol::ledger;
use seedfed_protocol::member::MemberId;
use seedfed_protocol::sector::Sector;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tracing::{debug, info, warn};

use super::direct::{direct_sender, groups, send_direct, PeerQueue, DIRECT_GROUP_MAX};
use super::driver::{ChainError, Driver};
use super::wire::{peer_of, ChainResponse};

const AGENT_DIGEST: Domain = Domain::new("seedfed-agentsnp");

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
    /// left: each round's messages are taken a group at a time, as a peer's requests carry
    /// them (`direct::groups`), and each group's duties acted on before the next is copied
    /// out. An owner sends itself a batch of every chunk of its sector at once: taken in one
    /// turn, 2^8 batches of a 2^18-leaf sector were ~35 MiB copied out and ~28 MiB of held
    /// chunks waiting to be stored, on top of the dealing.
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
            let round = std::mem::take(&mut self.loopback);
            for group in groups(round, Payload::len, DIRECT_GROUP_MAX) {
                let payloads: Vec<Vec<u8>> = group.iter().map(Payload::to_vec).collect();
                drop(group);
                let (duties, refused) = self.take_direct(self.me, &payloads);
                drop(payloads);
                if let Some(e) = refused.first() {
                    debug!(
                        refused = refused.len(),
                        "self-addressed message refused: {e}"
                    );
                }
                self.act_on(duties).await?;
            }
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
                Duty::KeepChunk {
                    sector,
                    chunk_root,
                    record,
                } => {
                    let key = self.at_rest.clone();
                    self.storage
                        .call(move |s| s.put_held_chunk(&key, sector, &chunk_root, &record.0))
                        .await??;
                }
                Duty::Keep {
                    sector,
                    commitments_root,
                    index,
                } => {
                    self.storage
                        .call(move |s| s.put_held(sector, &commitments_root, &index))
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

    /// Our held record of (sector, commitments root): its index and chunks, opened and put
    /// together.
    async fn load_held(
        &self,
        sector: u32,
        commitments_root: [u8; 32],
    ) -> Result<HeldSector, String> {
        let key = self.at_rest.clone();
        self.storage
            .call(move |s| s.held(&key, sector, &commitments_root))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "no held record of that dealing".to_string())
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
        let landed_roots: BTreeMap<u32, [u8; 32]> =
            landed.iter().map(|(s, (c, _))| (*s, *c)).collect();
        let settled = move |s: &u32, r: &[u8; 32]| landed_roots.get(s) == Some(r);
        // `tree`: `r` is a sector root (else a commitments root).
        let lost = move |s: &u32, r: &[u8; 32], tree: bool| {
            let other = |l: &([u8; 32], [u8; 32])| if tree { l.1 != *r } else { l.0 != *r };
            landed.get(s).is_some_and(other) && !older.contains(&(*s, *r))
        };
        self.held.retain(|(s, r)| !lost(s, r, false));
        let n = self
            .storage
            .call(move |store| store.prune_sectors(lost, settled))
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
                | Duty::KeepChunk { sector, .. }
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
