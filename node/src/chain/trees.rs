//! Replicas of the sector trees. A sector's tree (its leaf public keys `K`) is public state,
//! and every node keeps a copy of every published sector's tree (`DESIGN.md` §9). Every holder
//! that acknowledged a sector kept its tree before the sector could land (the acknowledgement
//! names its root; `agent::holder`); any other node fetches it here, from the sector's owner or
//! from any validator that has one, and checks it against the sector root on the ledger before
//! it is stored. A relay then takes a leaf's key and authentication path from its own copy
//! (`agent::sign`), so an owner that dies, even the moment its sector lands, stalls none of
//! its leaves.
//!
//! Guarantees: a stored replica builds exactly the sector root the ledger holds (anything else
//! is dropped and the next source is tried); fetching runs on its own task, one tree and one
//! request at a time, each answer at most [`MAX_TREE_KEYS`] keys, so it costs the chain task
//! nothing and a peer at most one request per pass. A source that fails is left for the next
//! one (the owner first, then every other validator in turn), and every wanted tree is tried
//! again every [`RETRY`] until one is stored.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use libp2p::PeerId;
use seedfed_protocol::ledger::{self, LedgerState};
use seedfed_protocol::member::MemberId;
use seedfed_protocol::sector::{Sector, TreeLayout};
use tokio::sync::watch;
use tracing::{debug, info};

use super::storage_thread::StorageCaller;
use super::wire::{ask, peer_of, ChainRequest, ChainResponse, MAX_TREE_KEYS};
use crate::network::NetworkHandle;

/// How often wanted trees that could not be fetched are tried again.
pub const RETRY: Duration = Duration::from_secs(2);

/// A published sector whose tree we want a replica of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// The key's layout (the tree's identifier and shape).
    pub layout: TreeLayout,
    /// The sector.
    pub sector: u32,
    /// Its root on the ledger.
    pub root: [u8; 32],
    /// Where to ask: the owner first, then the other validators.
    pub sources: Vec<PeerId>,
}

/// Every published sector of every key on `st` but the `spent` ones whose tree `me` does not
/// generate itself.
pub fn wanted(st: &LedgerState, me: &MemberId, spent: &BTreeSet<u32>) -> Vec<Wanted> {
    let validators: Vec<MemberId> = st
        .members
        .keys()
        .filter(|m| st.is_validator(m) && *m != me)
        .copied()
        .collect();
    let mut out = Vec::new();
    for key in st.keys().filter(|k| !spent.contains(&k.index)) {
        let Ok(layout) = st.key_layout(key.index) else {
            continue;
        };
        for (sector, record) in &key.sectors {
            if record.owner == *me {
                continue;
            }
            let owner = std::iter::once(record.owner);
            let others = validators.iter().copied().filter(|m| *m != record.owner);
            let sources = owner.chain(others).filter_map(|m| peer_of(&m)).collect();
            out.push(Wanted {
                layout,
                sector: *sector,
                root: record.root,
                sources,
            });
        }
    }
    out
}

/// The driver's end: the list of wanted trees, replaced whenever the ledger's sectors change.
/// Dropping it stops the fetching task (and so releases its [`StorageCaller`]).
pub struct TreeReplicas {
    wanted: watch::Sender<Vec<Wanted>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TreeReplicas {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TreeReplicas {
    /// Starts the fetching task.
    pub fn spawn(storage: StorageCaller, network: NetworkHandle) -> Self {
        let (tx, rx) = watch::channel(Vec::new());
        let task = tokio::spawn(run(storage, network, rx));
        TreeReplicas { wanted: tx, task }
    }

    /// Replaces the list of wanted trees.
    pub fn want(&self, wanted: Vec<Wanted>) {
        self.wanted.send_if_modified(|w| {
            let changed = *w != wanted;
            *w = wanted;
            changed
        });
    }
}

async fn run(storage: StorageCaller, network: NetworkHandle, mut rx: watch::Receiver<Vec<Wanted>>) {
    // Trees stored (or found stored), and how many sources each other tree has tried.
    let mut stored: BTreeSet<(u32, [u8; 32])> = BTreeSet::new();
    let mut tried: BTreeMap<(u32, [u8; 32]), usize> = BTreeMap::new();
    loop {
        let list = rx.borrow_and_update().clone();
        for w in list {
            let id = (w.sector, w.root);
            if stored.contains(&id) {
                continue;
            }
            match storage.call(move |s| s.has_tree(id.0, &id.1)).await {
                Ok(Ok(true)) => {
                    stored.insert(id);
                    continue;
                }
                Ok(Ok(false)) => {}
                Ok(Err(e)) | Err(e) => {
                    debug!(sector = w.sector, "cannot read a kept tree: {e}");
                    continue;
                }
            }
            let attempt = tried.entry(id).or_default();
            let Some(source) = w.sources.get(*attempt % w.sources.len().max(1)).copied() else {
                continue;
            };
            *attempt += 1;
            match fetch(&network, source, &w).await {
                Ok(keys) => {
                    let put = storage.call(move |s| s.put_tree(id.0, &id.1, &keys)).await;
                    match put {
                        Ok(Ok(())) => {
                            info!(sector = w.sector, %source, "kept a replica of a sector tree");
                            stored.insert(id);
                            tried.remove(&id);
                        }
                        Ok(Err(e)) | Err(e) => {
                            debug!(sector = w.sector, "cannot store a tree: {e}")
                        }
                    }
                }
                Err(e) => debug!(sector = w.sector, %source, "sector tree not fetched: {e}"),
            }
        }
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(RETRY) => {}
        }
    }
}

/// The leaf keys of `w`'s tree from `peer`, checked against its root.
async fn fetch(network: &NetworkHandle, peer: PeerId, w: &Wanted) -> Result<Vec<[u8; 32]>, String> {
    let leaves = w.layout.leaves_per_sector();
    let mut keys: Vec<[u8; 32]> = Vec::new();
    while keys.len() < leaves as usize {
        let from = u32::try_from(keys.len()).map_err(|_| "too many keys")?;
        let request = ChainRequest::SectorTree {
            sector: w.sector,
            root: w.root,
            from,
            max: MAX_TREE_KEYS.min(leaves - from),
        };
        match ask(network, peer, ledger::encode(&request)).await? {
            ChainResponse::SectorTree(more) if more.is_empty() => {
                return Err(format!("the tree ended after {from} of {leaves} keys"));
            }
            ChainResponse::SectorTree(more) if more.len() as u64 > u64::from(leaves - from) => {
                return Err("more keys than the sector has".into());
            }
            ChainResponse::SectorTree(more) => keys.extend(more),
            ChainResponse::Refused(why) => return Err(format!("refused: {why}")),
            other => return Err(format!("unexpected answer {other:?}")),
        }
    }
    let tree = Sector::from_leaf_keys(w.layout, w.sector, keys).map_err(|e| e.to_string())?;
    if tree.root() != w.root {
        return Err("the keys do not build the sector root".into());
    }
    Ok(tree.into_leaf_keys())
}
