//! The chain's storage thread: every read and write of the chain's records runs on one
//! dedicated OS thread, in the order the driver asked for them, so no async worker thread ever
//! waits for an fsync (docs/storage.md, "Using it from async code").
//!
//! Guarantee: [`StorageThread::call`] resolves only after the call returned on the storage
//! thread (for a write: after the data is durable), so the driver keeps its rule that nothing
//! depending on a write leaves the node before the write is fsynced, by awaiting the call before
//! it acts on anything that follows. Calls are bounded (a queue of [`JOBS`]) and never reorder.

use tokio::sync::{mpsc, oneshot};

use super::storage::{ChainStore, StorageError};

/// Calls that may wait for the storage thread (the driver awaits each one, so one at a time is
/// the usual depth).
pub const JOBS: usize = 16;

type Job = Box<dyn FnOnce(&mut ChainStore) + Send>;

/// A second handle on the storage thread's queue, for a task other than the driver (the block
/// server): its calls run in the same order as the driver's. Drop it before
/// [`StorageThread::close`], which waits for every handle to go.
#[derive(Clone)]
pub struct StorageCaller {
    jobs: mpsc::Sender<Job>,
}

impl StorageCaller {
    /// Runs `f` on the storage thread after every earlier call and returns its result.
    pub async fn call<R, F>(&self, f: F) -> Result<R, StorageError>
    where
        F: FnOnce(&mut ChainStore) -> R + Send + 'static,
        R: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |store| {
            let _ = reply.send(f(store));
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| StorageError::Stopped)?;
        answer.await.map_err(|_| StorageError::Stopped)
    }
}

/// The handle of the storage thread, which owns the [`ChainStore`].
pub struct StorageThread {
    jobs: Option<StorageCaller>,
    thread: Option<std::thread::JoinHandle<ChainStore>>,
}

impl StorageThread {
    /// Moves `store` onto a new thread named `chain-storage`.
    pub fn spawn(store: ChainStore) -> Result<Self, StorageError> {
        let (jobs, mut rx) = mpsc::channel::<Job>(JOBS);
        let thread = std::thread::Builder::new()
            .name("chain-storage".into())
            .spawn(move || {
                let mut store = store;
                while let Some(job) = rx.blocking_recv() {
                    job(&mut store);
                }
                store
            })
            .map_err(|e| StorageError::Thread(e.to_string()))?;
        Ok(StorageThread {
            jobs: Some(StorageCaller { jobs }),
            thread: Some(thread),
        })
    }

    /// Runs `f` on the storage thread after every earlier call and returns its result.
    pub async fn call<R, F>(&self, f: F) -> Result<R, StorageError>
    where
        F: FnOnce(&mut ChainStore) -> R + Send + 'static,
        R: Send + 'static,
    {
        let jobs = self.jobs.as_ref().ok_or(StorageError::Stopped)?;
        jobs.call(f).await
    }

    /// Another handle on the same queue ([`StorageCaller`]).
    pub fn caller(&self) -> Result<StorageCaller, StorageError> {
        self.jobs.clone().ok_or(StorageError::Stopped)
    }

    /// Lets the queued calls finish, stops the thread and gives the store back.
    pub async fn close(mut self) -> Result<ChainStore, StorageError> {
        self.jobs = None;
        let thread = self.thread.take().ok_or(StorageError::Stopped)?;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|_| StorageError::Stopped)?
            .map_err(|_| StorageError::Stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{self, Backend};
    use seedfed_protocol::consensus::{TimerId, TimerKind, WalEntry};

    #[tokio::test(flavor = "current_thread")]
    async fn calls_run_in_order_off_the_runtime_and_the_store_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChainStore::new(store::open(dir.path(), Backend::Memory).unwrap());
        let t = StorageThread::spawn(store).unwrap();
        let runtime_thread = std::thread::current().id();
        let on = t.call(|_| std::thread::current().id()).await.unwrap();
        assert_ne!(on, runtime_thread);
        let entry = |round| {
            WalEntry::Timeout(TimerId {
                height: 1,
                round,
                kind: TimerKind::Propose,
            })
        };
        for r in 0..3 {
            t.call(move |s| s.append_wal(&[entry(r)]))
                .await
                .unwrap()
                .unwrap();
        }
        let mut back = t.close().await.unwrap();
        let peer = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        let genesis = crate::chain::test_genesis::genesis(
            "c",
            &[(crate::chain::member_of(&peer).unwrap(), 1)],
            10,
        );
        let loaded = back.load(&genesis).unwrap();
        assert_eq!(loaded.wal, vec![entry(0), entry(1), entry(2)]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panicking_call_stops_the_thread_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChainStore::new(store::open(dir.path(), Backend::Memory).unwrap());
        let t = StorageThread::spawn(store).unwrap();
        let r = t.call(|_| -> u8 { panic!("boom") }).await;
        assert!(matches!(r, Err(StorageError::Stopped)));
        assert!(matches!(t.call(|_| 1).await, Err(StorageError::Stopped)));
        assert!(matches!(t.close().await, Err(StorageError::Stopped)));
    }
}
