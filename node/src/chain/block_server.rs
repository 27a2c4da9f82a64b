//! Serving peers' block requests off the chain task. The driver hands each request to a
//! bounded queue and goes on deciding; one task reads the blocks through the storage thread
//! (queued behind the driver's earlier writes, so it never sees a half-written tip) and
//! answers. When the queue is full the request is refused at once, so a peer flooding block
//! requests costs the chain task one channel send each, never a storage read.
//!
//! Guarantees: at most [`QUEUE`] requests wait; each answer holds at most
//! [`MAX_SYNC_BLOCKS`] blocks and [`MAX_SYNC_BYTES`] of encoding (the first block always,
//! whatever its size); every request gets an answer (blocks, or the refusal with its reason)
//! unless the network task is gone. The per-peer request rate is the network's
//! (`network::rate`); this bounds what all peers together can queue.

use tokio::sync::mpsc;
use tracing::debug;

use seedfed_protocol::ledger;

use super::storage_thread::StorageCaller;
use super::wire::{ChainResponse, MAX_SYNC_BLOCKS, MAX_SYNC_BYTES};
use crate::network::{NetworkHandle, ResponseToken};

/// Block requests that may wait for the storage thread at once.
pub const QUEUE: usize = 16;

/// One queued request: blocks from `from`, at most `max`, answered on `token`.
struct Job {
    from: u64,
    max: u32,
    token: ResponseToken,
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
            while let Some(Job { from, max, token }) = rx.recv().await {
                let max = max.min(MAX_SYNC_BLOCKS);
                let read = storage
                    .call(move |s| s.blocks_from(from, max, MAX_SYNC_BYTES))
                    .await;
                let response = match read {
                    Ok(Ok(blocks)) => ChainResponse::Blocks(blocks),
                    Ok(Err(e)) | Err(e) => {
                        ChainResponse::Refused(format!("cannot read blocks: {e}"))
                    }
                };
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

    /// Queues a request for blocks from `from`. When [`QUEUE`] requests already wait, answers
    /// it at once with a refusal (the requester tries another peer or later).
    pub async fn serve(&self, network: &NetworkHandle, from: u64, max: u32, token: ResponseToken) {
        match self.jobs.try_send(Job { from, max, token }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job)) => {
                debug!(from, "block request refused: {QUEUE} already queued");
                let busy = ChainResponse::Refused(format!("busy: {QUEUE} block requests queued"));
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
                server.serve(&network, 1, 8, ResponseToken(t)),
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
}
