//! The peers file: admitted peers' addresses, kept across restarts so a node can rejoin without
//! a bootstrap node. JSON, at most [`MAX_SAVED_PEERS`] peers, written atomically.
//!
//! Guarantees: writes run on tokio's blocking pool, never on the swarm task, so an `fsync`
//! cannot stall the event loop; at most one write is in flight, so an older snapshot never
//! lands after a newer one; a missing or corrupt file loads as no peers (it is only a hint).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use futures::FutureExt;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tracing::warn;

/// Bound on peers written to (and read from) the peers file.
pub const MAX_SAVED_PEERS: usize = 256;

/// Known peers and their addresses.
pub type KnownPeers = BTreeMap<PeerId, Vec<Multiaddr>>;

#[derive(Default, Serialize, Deserialize)]
struct Contents {
    peers: Vec<SavedPeer>,
}

#[derive(Serialize, Deserialize)]
struct SavedPeer {
    peer_id: String,
    addrs: Vec<String>,
}

/// One write on the blocking pool: the generation it saves and its outcome.
type Write = JoinHandle<(u64, io::Result<()>)>;

/// The peers file and its writer.
pub struct PeersFile {
    path: PathBuf,
    /// Generation of the last snapshot known to be on disk.
    saved: u64,
    writing: Option<Write>,
}

impl PeersFile {
    /// The peers file at `path`; `loaded` is the generation of what [`load`] returned.
    pub fn new(path: PathBuf, loaded: u64) -> Self {
        Self {
            path,
            saved: loaded,
            writing: None,
        }
    }

    /// Starts writing `peers` (generation `generation`) on the blocking pool, unless that
    /// generation is already saved or a previous write is still running (then the next call
    /// tries again). A failed write is logged and retried on the next call.
    pub fn save(&mut self, generation: u64, peers: &KnownPeers) {
        if let Some(write) = &mut self.writing {
            if !write.is_finished() {
                return;
            }
            if let Some(result) = write.now_or_never() {
                self.reaped(result);
            }
            self.writing = None;
        }
        if generation != self.saved {
            self.writing = Some(self.spawn_write(generation, peers));
        }
    }

    /// Waits for a running write, then writes `peers` and waits for it (at shutdown).
    pub async fn flush(&mut self, generation: u64, peers: &KnownPeers) {
        if let Some(write) = self.writing.take() {
            let result = write.await;
            self.reaped(result);
        }
        let result = self.spawn_write(generation, peers).await;
        self.reaped(result);
    }

    fn reaped(&mut self, result: Result<(u64, io::Result<()>), tokio::task::JoinError>) {
        match result {
            Ok((generation, Ok(()))) => self.saved = generation,
            Ok((_, Err(e))) => warn!("cannot save peers to {}: {e}", self.path.display()),
            Err(e) => warn!("peers file writer failed: {e}"),
        }
    }

    fn spawn_write(&self, generation: u64, peers: &KnownPeers) -> Write {
        let path = self.path.clone();
        let bytes = encode(peers);
        tokio::task::spawn_blocking(move || {
            let result = bytes.and_then(|b| crate::fsutil::write_atomic(&path, &b, 0o644));
            (generation, result)
        })
    }
}

/// The file's bytes for `peers` (the first [`MAX_SAVED_PEERS`]).
fn encode(peers: &KnownPeers) -> io::Result<Vec<u8>> {
    let contents = Contents {
        peers: peers
            .iter()
            .take(MAX_SAVED_PEERS)
            .map(|(p, a)| SavedPeer {
                peer_id: p.to_string(),
                addrs: a.iter().map(|a| a.to_string()).collect(),
            })
            .collect(),
    };
    serde_json::to_vec_pretty(&contents).map_err(io::Error::other)
}

/// Reads the peers file; a missing or corrupt file yields no peers (it is only a hint).
/// Unparsable entries are skipped.
pub fn load(path: &Path) -> KnownPeers {
    let Ok(bytes) = std::fs::read(path) else {
        return BTreeMap::new();
    };
    let contents: Contents = match serde_json::from_slice(&bytes) {
        Ok(f) => f,
        Err(e) => {
            warn!("ignoring corrupt peers file {}: {e}", path.display());
            return BTreeMap::new();
        }
    };
    let mut out = BTreeMap::new();
    for p in contents.peers.into_iter().take(MAX_SAVED_PEERS) {
        if let Ok(id) = p.peer_id.parse::<PeerId>() {
            let addrs: Vec<Multiaddr> = p.addrs.iter().filter_map(|a| a.parse().ok()).collect();
            out.insert(id, addrs);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some_peers(n: usize) -> KnownPeers {
        (0..n)
            .map(|i| {
                let a: Multiaddr = format!("/ip4/127.0.0.1/tcp/{}", 1000 + i).parse().unwrap();
                (PeerId::random(), vec![a])
            })
            .collect()
    }

    #[tokio::test]
    async fn saved_peers_load_back_and_only_new_generations_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.json");
        let mut file = PeersFile::new(path.clone(), 0);
        let peers = some_peers(3);
        // Generation 0 is what was loaded: nothing to write.
        file.save(0, &peers);
        assert!(file.writing.is_none());
        file.save(1, &peers);
        let write = file.writing.take().unwrap();
        let result = write.await;
        file.reaped(result);
        assert_eq!(file.saved, 1);
        assert_eq!(load(&path), peers);
        // Saved already: no new write.
        file.save(1, &peers);
        assert!(file.writing.is_none());
    }

    #[tokio::test]
    async fn flush_waits_for_the_write_and_caps_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.json");
        let mut file = PeersFile::new(path.clone(), 0);
        let first = some_peers(2);
        file.save(1, &first);
        let many = some_peers(MAX_SAVED_PEERS + 10);
        file.flush(2, &many).await;
        assert!(file.writing.is_none());
        assert_eq!(file.saved, 2);
        let loaded = load(&path);
        assert_eq!(loaded.len(), MAX_SAVED_PEERS);
        assert!(loaded.iter().all(|(p, a)| many.get(p) == Some(a)));
    }

    #[tokio::test]
    async fn a_failed_write_is_retried() {
        let dir = tempfile::tempdir().unwrap();
        // The parent directory does not exist: the write fails.
        let path = dir.path().join("missing").join("peers.json");
        let mut file = PeersFile::new(path.clone(), 0);
        let peers = some_peers(1);
        file.flush(1, &peers).await;
        assert_eq!(file.saved, 0);
        std::fs::create_dir(dir.path().join("missing")).unwrap();
        file.save(1, &peers);
        let result = file.writing.take().unwrap().await;
        file.reaped(result);
        assert_eq!(file.saved, 1);
        assert_eq!(load(&path), peers);
    }

    #[test]
    fn a_missing_or_corrupt_file_is_no_peers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.json");
        assert!(load(&path).is_empty());
        std::fs::write(&path, b"{not json").unwrap();
        assert!(load(&path).is_empty());
        let good = PeerId::random();
        let text = format!(
            r#"{{"peers":[{{"peer_id":"nonsense","addrs":[]}},{{"peer_id":"{good}","addrs":["/ip4/1.2.3.4/tcp/1","bad"]}}]}}"#
        );
        std::fs::write(&path, text).unwrap();
        let loaded = load(&path);
        let addr: Multiaddr = "/ip4/1.2.3.4/tcp/1".parse().unwrap();
        assert_eq!(loaded, BTreeMap::from([(good, vec![addr])]));
    }
}
