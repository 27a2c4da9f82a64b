//! Serving peers' reads of our store off the chain task: block requests, and sector-tree
//! requests (`trees`). The driver hands each request to a bounded queue and goes on deciding;
//! one task reads through the storage thread (queued behind the driver's earlier writes, so it
//! never sees a half-written tip) and answers. When the queue is full the request is refused
//! at once, so a peer flooding requests costs the chain task one channel send each, never a
//! storage read.
//!
//! Guarantees: at most [`QUEUE`] requests wait; a blocks answer holds at most
//! [`MAX_SYNC_BLOCKS`] blocks and [`MAX_SYNC_BYTES`] of encoding (the first block always,
//! whatever its size), a tree answer at most [`MAX_TREE_KEYS`] keys; every request gets an
//! answer (what was asked, or the refusal with its reason) unless the network task is gone. The per-peer request rate is the network's
//! (`network::rate`); this bounds what all peers together can queue.

use tokio::sync::mpsc;
use tracing::debug;

use seedfed_protocol::ledger;

use super::storage_thread::StorageCaller;
use super::wire::{ChainResponse, MAX_SYNC_BLOCKS, MAX_SYNC_BYTES, MAX_TREE_KEYS};
use crate::network::{NetworkHandle, ResponseToken};

/// Requests that may wait for the storage thread at once.
pub const QUEUE: usize = 16;

/// What a queued request reads.
#[derive(Debug)]
pub enum Read {
    /// Blocks from `from`, at most `max`.
    Blocks {
        /// The first height.
        from: u64,
        /// Most blocks.
        max: u32,
    },
    /// Leaf keys of the tree kept under (`sector`, `root`), from leaf `from` of the sector, at
    /// most `max`.
    Tree {
        /// The sector.
        sector: u32,
        /// Its root.
        root: [u8; 32],
        /// The first leaf, within the sector.
        from: u32,
        /// Most keys.
        max: u32,
    },
}

/// One queued request, answered on `token`.
struct Job {
    read: Read,
    token: ResponseToken,
}

/// Reads what `read` asks for from the store, as the answer to send.
async fn answer(storage: &StorageCaller, read: Read) -> ChainResponse {
    match read {
        Read::Blocks { from, max } => {
            let max = max.min(MAX_SYNC_BLOCKS);
            match storage
                .call(move |s| s.blocks_from(from, max, MAX_SYNC_BYTES))
                .await
            {
                Ok(Ok(blocks)) => ChainResponse::Blocks(blocks),
                Ok(Err(e)) | Err(e) => ChainResponse::Refused(format!("cannot read blocks: {e}")),
            }
        }
        Read::Tree {
            sector,
            root,
            from,
            max,
        } => {
            let from = usize::try_from(from).unwrap_or(usize::MAX);
            let max = usize::try_from(max.min(MAX_TREE_KEYS)).unwrap_or(0);
            match storage
                .call(move |s| s.tree_keys(sector, &root, from, max))
                .await
            {
                Ok(Ok(Some(keys))) => ChainResponse::SectorTree(keys),
                Ok(Ok(None)) => {
                    ChainResponse::Refused(format!("no tree of sector {sector} kept here"))
                }
                Ok(Err(e)) | Err(e) => ChainResponse::Refused(format!("cannot read the tree: {e}")),
            }
        }
    }
}

/// The driver's end of the queue. Dropping it ends the serving task once the queued
/// requests are answered (and so releases its [`StorageCaller`]).
pub struct BlockServer {
    jobs: mpsc::Sender<Job>,
}

impl BlockServer {
    /// Starts the serving task.
    pub fn spawn(storage: StorageCaller, network: NetworkHandle) -> Self {
        let (jobs, mut rx) = mpsc::channel::<Job>(QUEUE);
        tokio::spawn(async move {
            while let Some(Job { read, token }) = rx.recv().await {
                let response = answer(&storage, read).await;
                if network
                    .respond(token, ledger::encode(&response))
                    .await
                    .is_err()
                {
                    break; // the network task is gone
                }
            }
        });
        BlockServer { jobs }
    }

    /// Queues a request. When [`QUEUE`] requests already wait, answers it at once with a
    /// refusal (the requester tries another peer or later).
    pub async fn serve(&self, network: &NetworkHandle, read: Read, token: ResponseToken) {
        match self.jobs.try_send(Job { read, token }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job)) => {
                debug!(read = ?job.read, "request refused: {QUEUE} already queued");
                let busy = ChainResponse::Refused(format!("busy: {QUEUE} requests queued"));
                let _ = network.respond(job.token, ledger::encode(&busy)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::storage::ChainStore;
    use crate::chain::storage_thread::StorageThread;
    use crate::network::Command;
    use crate::store::{self, Backend};
    use std::time::Duration;

    /// While the storage thread is busy, the driver's `serve` returns at once: QUEUE requests
    /// wait, the next is refused "busy" right away, and once the storage thread is free every
    /// queued request is answered (here with no blocks: the store holds none).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once_and_the_queued_requests_are_answered() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChainStore::new(store::open(dir.path(), Backend::Memory).unwrap());
        let storage = StorageThread::spawn(store).unwrap();
        let (network, mut commands) = NetworkHandle::detached();
        let server = BlockServer::spawn(storage.caller().unwrap(), network.clone());
        // Hold the storage thread.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let blocker = storage.caller().unwrap();
        let hold = tokio::spawn(async move { blocker.call(move |_| held.recv()).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        // One request is taken by the serving task (it waits on the storage thread), QUEUE
        // more fill the queue, and the one after is refused.
        let n = QUEUE as u64 + 2;
        for t in 0..n {
            tokio::time::timeout(
                Duration::from_secs(1),
                server.serve(&network, Read::Blocks { from: 1, max: 8 }, ResponseToken(t)),
            )
            .await
            .expect("serve waited on the storage thread");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let answer = |c: Command| match c {
            Command::Respond(ResponseToken(t), data) => {
                (t, ledger::decode::<ChainResponse>(&data).unwrap())
            }
            _ => panic!("not a response"),
        };
        let (t, busy) = answer(commands.recv().await.unwrap());
        assert_eq!(t, n - 1);
        assert!(matches!(busy, ChainResponse::Refused(r) if r.starts_with("busy")));
        release.send(()).unwrap();
        hold.await.unwrap().unwrap().unwrap();
        let mut answered = Vec::new();
        for _ in 0..n - 1 {
            let (t, r) = answer(commands.recv().await.unwrap());
            assert!(matches!(r, ChainResponse::Blocks(b) if b.is_empty()));
            answered.push(t);
        }
        assert_eq!(answered, (0..n - 1).collect::<Vec<_>>());
        drop(server);
        drop(storage);
    }

    /// A tree request gets the kept keys from the leaf asked, at most what was asked and at
    /// most [`MAX_TREE_KEYS`]; past the end nothing; a tree not kept here, a refusal.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tree_requests_get_the_kept_keys_in_bounded_slices() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ChainStore::new(store::open(dir.path(), Backend::Redb).unwrap());
        let keys: Vec<[u8; 32]> = (0..MAX_TREE_KEYS + 5)
            .map(|i| {
                let mut k = [0u8; 32];
                k[..4].copy_from_slice(&i.to_le_bytes());
                k
            })
            .collect();
        store.put_tree(3, &[7; 32], &keys).unwrap();
        let storage = StorageThread::spawn(store).unwrap();
        let caller = storage.caller().unwrap();
        let tree = |from, max, root| Read::Tree {
            sector: 3,
            root,
            from,
            max,
        };
        let n = keys.len();
        for (read, want) in [
            (tree(10, 20, [7; 32]), Some(&keys[10..30])),
            (tree(MAX_TREE_KEYS, 100, [7; 32]), Some(&keys[n - 5..])),
            (
                tree(0, u32::MAX, [7; 32]),
                Some(&keys[..MAX_TREE_KEYS as usize]),
            ),
            (tree(MAX_TREE_KEYS + 5, 8, [7; 32]), Some(&keys[..0])),
            (tree(u32::MAX, 8, [7; 32]), Some(&keys[..0])),
            (tree(0, 8, [8; 32]), None),
        ] {
            match (answer(&caller, read).await, want) {
                (ChainResponse::SectorTree(got), Some(want)) => assert_eq!(got, want),
                (ChainResponse::Refused(why), None) => assert!(why.contains("no tree"), "{why}"),
                (other, want) => panic!(
                    "{other:?} where {:?} keys were wanted",
                    want.map(<[_]>::len)
                ),
            }
        }
        drop(caller);
        drop(storage);
    }
}
