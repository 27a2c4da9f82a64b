//! The chain's durable records in the node's store: decided blocks with their commit
//! certificates, the ledger state at the tip (its members, sign requests and published
//! signatures kept one entry per key beside it, so a block writes the entries it changed and
//! not the whole ledger), the consensus write-ahead log, the epoch
//! agent's snapshot, the leaf shares this node holds (both sealed at rest) and the sector trees
//! it keeps (`sectors`), and every signed checkpoint (the ledger keeps only the last few;
//! light clients walk the whole chain).
//!
//! Guarantees: a decided block, its certificate and the state it leads to are written in one
//! atomic, fsynced batch that also drops the WAL of that height, so after a crash the store
//! holds a consistent tip and exactly the WAL of the height after it. WAL entries are fsynced
//! before the driver releases anything that follows them. A WAL entry that does not decode
//! (a torn or damaged tail) is reported, and it and every later entry are truncated: replay
//! then stops at the last good entry, which is safe because nothing after it can have left
//! the node (durability precedes release). A block or state that does not decode is an error:
//! the node refuses to run on a chain it cannot trust.
//!
//! [`ChainStore`] blocks on fsyncs; the driver calls it only through the storage thread
//! (`storage_thread`), never from an async worker thread.

use seedfed_protocol::consensus::{CommitCertificate, WalEntry};
use seedfed_protocol::ledger::{
    self, Block, Genesis, HashedMap, Ledger, Members, SignRequestRecord, Signatures,
    SignedCheckpoint, TxBody,
};
use seedfed_protocol::member::MemberId;
use thiserror::Error;
use tracing::warn;

use crate::at_rest::AtRestKey;
use crate::store::{Batch, Store, StoreError};

mod sectors;
#[cfg(test)]
use sectors::held_key;

/// Keyspace of decided blocks: `u64be(height)` → `encode((Block, CommitCertificate))`.
pub const BLOCKS: &str = "blocks";
/// Keyspace of the WAL: `u64be(height) ‖ u64be(seq)` → `encode(WalEntry)`.
pub const WAL: &str = "wal";
/// Keyspace of chain metadata ([`TIP_KEY`], [`AGENT_KEY`]).
pub const CHAIN: &str = "chain";
/// The ledger at the tip: `encode(Ledger)` with its members and sign requests left out (kept
/// in [`MEMBERS`] and [`SIGN_REQUESTS`]) and its published signatures left out
/// (`Signatures::without_bytes`: the digest alone; kept in [`SIGNATURES`]).
pub const TIP_KEY: &[u8] = b"tip";
/// Keyspace of the tip's members: member id → `encode(Member)`. A block writes the members
/// it changed and deletes those it removed.
pub const MEMBERS: &str = "members";
/// Keyspace of the tip's sign requests: `u64be(leaf)` → `encode(SignRequestRecord)`, written
/// like [`MEMBERS`].
pub const SIGN_REQUESTS: &str = "sign_requests";
/// Keyspace of the published signatures, in publication order: `u64be(n)` (the n-th published,
/// from 0) → `encode((leaf, signature))`. Written with the block that publishes them.
pub const SIGNATURES: &str = "signatures";
/// The epoch agent's snapshot (contains key shares), sealed (`at_rest`).
pub const AGENT_KEY: &[u8] = b"agent";
/// Every signed checkpoint this node recorded: `u64be(seq)` → `encode(SignedCheckpoint)`.
pub const CHECKPOINTS: &str = "checkpoints";
/// In [`CHAIN`]: `u64be` of the next checkpoint sequence number to store.
pub const CHECKPOINT_NEXT_KEY: &[u8] = b"checkpoint_next";
/// Most checkpoints [`ChainStore::checkpoints_from`] returns at once.
pub const MAX_CHECKPOINTS_PER_READ: u32 = 256;
/// Keyspace of held sectors: `u32be(sector) ‖ commitments_root` → `encode(dealing::HeldIndex)`
/// (public: which chunks, in [`HELD_CHUNKS`], make the dealing this node acknowledged; the
/// commitments root is unique per key, so the key's index is not in the key).
pub const HELD: &str = "held";
/// Keyspace of held chunks: `u32be(sector) ‖ chunk_root` → sealed `encode(dealing::HeldChunk)`
/// (a chunk's commitments and the leaf shares this node holds of it), written as each chunk is
/// checked.
pub const HELD_CHUNKS: &str = "held_chunks";
/// Keyspace of sector trees, those this node generated as an owner and the replicas it fetched
/// (`trees`): (sector, root) → the leaf public keys, concatenated. Public (no secret), kept to
/// serve authentication paths.
pub const TREES: &str = "trees";

/// Why the chain's records could not be read or written.
#[derive(Debug, Error)]
pub enum StorageError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record is damaged.
    #[error("stored {what} is corrupt: {reason}")]
    Corrupt {
        /// Which record.
        what: String,
        /// Why.
        reason: String,
    },
    /// The storage thread could not start.
    #[error("cannot start the chain's storage thread: {0}")]
    Thread(String),
    /// The storage thread is gone (it stopped or panicked).
    #[error("the chain's storage thread stopped")]
    Stopped,
}

/// What [`ChainStore::load`] recovers.
pub struct Loaded {
    /// The ledger at the tip.
    pub ledger: Ledger,
    /// The tip block's commit certificate (`None` at genesis).
    pub certificate: Option<CommitCertificate>,
    /// WAL entries of the height after the tip, in order.
    pub wal: Vec<WalEntry>,
    /// WAL entries dropped as a damaged tail.
    pub truncated: usize,
}

/// A decided block, its certificate and the ledger after it, encoded for
/// [`ChainStore::commit`] (the encoding can run on the caller's thread, the write on the
/// storage thread).
pub struct DecidedRecord {
    height: u64,
    block: Vec<u8>,
    tip: Vec<u8>,
    /// The signatures the block publishes: (their place in publication order, encoding).
    signatures: Vec<(u64, Vec<u8>)>,
    /// The tip's members and sign requests (shared with the ledger, not copied): the store
    /// writes those that differ from what it wrote last.
    sections: Sections,
    /// The checkpoints the ledger keeps after the block (those not stored yet are).
    checkpoints: Vec<SignedCheckpoint>,
}

impl DecidedRecord {
    /// Encodes the record of `block`: the tip without its members, sign requests and
    /// signatures, and the signatures the block publishes (every one in a decided block is
    /// new: the ledger refuses a second signature for a leaf), placed after those published
    /// before it.
    pub fn new(block: &Block, certificate: &CommitCertificate, ledger_after: &Ledger) -> Self {
        let published: Vec<(u64, &[u8])> = block
            .txs
            .iter()
            .filter_map(|t| match &t.tx.body {
                TxBody::SignaturePublish { leaf, signature } => Some((*leaf, signature.as_slice())),
                _ => None,
            })
            .collect();
        let first = ledger_after
            .state
            .signatures
            .len()
            .saturating_sub(published.len()) as u64;
        let signatures = (first..)
            .zip(&published)
            .map(|(n, entry)| (n, ledger::encode(entry)))
            .collect();
        let mut tip = ledger_after.clone();
        tip.state.signatures = ledger_after.state.signatures.without_bytes();
        let sections = Sections {
            members: std::mem::take(&mut tip.state.members),
            sign_requests: std::mem::take(&mut tip.state.sign_requests),
        };
        DecidedRecord {
            height: block.height,
            block: ledger::encode(&(block, certificate)),
            tip: ledger::encode(&tip),
            signatures,
            sections,
            checkpoints: ledger_after.state.checkpoints.clone(),
        }
    }
}

/// The ledger's sections kept one entry per key in their own keyspaces.
#[derive(Clone, Default)]
struct Sections {
    members: Members,
    sign_requests: HashedMap<u64, SignRequestRecord>,
}

impl Sections {
    /// Puts into `batch` the entries of `self` that differ from `written`, and deletes those
    /// it no longer holds.
    fn write_changes(&self, written: &Sections, batch: &mut Batch) {
        for (id, member) in self.members.changes_since(&written.members) {
            match member {
                Some(m) => batch.put(MEMBERS, &id.0, &ledger::encode(m)),
                None => batch.delete(MEMBERS, &id.0),
            };
        }
        for (leaf, request) in self.sign_requests.changes_since(&written.sign_requests) {
            match request {
                Some(r) => batch.put(SIGN_REQUESTS, &leaf.to_be_bytes(), &ledger::encode(r)),
                None => batch.delete(SIGN_REQUESTS, &leaf.to_be_bytes()),
            };
        }
    }
}

/// The chain's view of the store.
pub struct ChainStore {
    store: Box<dyn Store>,
    next_seq: u64,
    /// The next checkpoint sequence number to store.
    next_checkpoint: u64,
    /// What [`MEMBERS`] and [`SIGN_REQUESTS`] hold (as of the last load or commit).
    written: Sections,
}

/// The height a WAL entry belongs to.
pub fn wal_height(e: &WalEntry) -> u64 {
    match e {
        WalEntry::Proposal(p) => p.height,
        WalEntry::Vote(v) => v.height,
        WalEntry::ProposedValue { height, .. } => *height,
        WalEntry::Timeout(t) => t.height,
        WalEntry::Polka(p) => p.height,
    }
}

fn wal_key(height: u64, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&height.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// The height prefix of a WAL key.
fn key_height(key: &[u8]) -> Option<u64> {
    key.get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
}

fn corrupt(what: impl Into<String>, reason: impl ToString) -> StorageError {
    StorageError::Corrupt {
        what: what.into(),
        reason: reason.to_string(),
    }
}

impl ChainStore {
    /// Wraps the node's store.
    pub fn new(store: Box<dyn Store>) -> Self {
        ChainStore {
            store,
            next_seq: 0,
            next_checkpoint: 0,
            written: Sections::default(),
        }
    }

    /// Gives the store back (to close it).
    pub fn into_inner(self) -> Box<dyn Store> {
        self.store
    }

    /// The proof-of-work difficulty of the stored tip state (`None` before the first block):
    /// what the node's own admission proof must meet at start-up.
    pub fn tip_pow_difficulty(&self) -> Result<Option<u8>, StorageError> {
        match self.store.get(CHAIN, TIP_KEY)? {
            None => Ok(None),
            Some(bytes) => {
                let ledger: Ledger = ledger::decode(&bytes).map_err(|e| corrupt("tip state", e))?;
                Ok(Some(ledger.state.pow_difficulty))
            }
        }
    }

    /// Recovers the tip (or genesis) and the WAL of the next height, truncating a damaged WAL
    /// tail and dropping stale entries.
    pub fn load(&mut self, genesis: &Genesis) -> Result<Loaded, StorageError> {
        let written = self.read_sections()?;
        let (ledger, certificate) = match self.store.get(CHAIN, TIP_KEY)? {
            None => {
                if !written.members.is_empty() || !written.sign_requests.is_empty() {
                    return Err(corrupt("tip state", "members are stored without a tip"));
                }
                (
                    Ledger::from_genesis(genesis).map_err(|e| corrupt("genesis", e))?,
                    None,
                )
            }
            Some(bytes) => {
                let mut ledger: Ledger =
                    ledger::decode(&bytes).map_err(|e| corrupt("tip state", e))?;
                if ledger.state.members.is_empty() {
                    ledger.state.members = written.members.clone();
                    ledger.state.sign_requests = written.sign_requests.clone();
                } else if !written.members.is_empty() {
                    return Err(corrupt(
                        "tip state",
                        "it holds its members inline and beside it too",
                    ));
                }
                // Else a tip written before members were kept beside it: read as it is, and
                // the next commit writes every entry (nothing is written beside it yet).
                if ledger.state.chain_id != genesis.chain_id {
                    return Err(corrupt(
                        "tip state",
                        format!("it belongs to chain {:?}", ledger.state.chain_id),
                    ));
                }
                let (block, cert) = self.block(ledger.height())?.ok_or_else(|| {
                    corrupt("tip state", format!("block {} is missing", ledger.height()))
                })?;
                if block.hash() != ledger.tip || block.state_hash != ledger.state.hash() {
                    return Err(corrupt(
                        "tip state",
                        "it (with its members and sign requests) does not match the tip block",
                    ));
                }
                (self.with_signatures(ledger)?, Some(cert))
            }
        };
        let next = ledger.height() + 1;
        let mut wal = Vec::new();
        let mut stale = Batch::new();
        let mut truncated = 0usize;
        let mut max_seq = 0u64;
        let mut damaged = false;
        for item in self.store.scan_prefix(WAL, &[])? {
            let (key, value) = item?;
            let height = key_height(&key);
            if let Some(seq) = key.get(8..16).and_then(|b| b.try_into().ok()) {
                max_seq = max_seq.max(u64::from_be_bytes(seq));
            }
            let entry = ledger::decode::<WalEntry>(&value).ok();
            let fits = matches!((height, &entry), (Some(h), Some(e)) if h == next && wal_height(e) == next && key.len() == 16);
            if damaged || !fits {
                if height == Some(next) || damaged {
                    damaged = true;
                    truncated += 1;
                }
                stale.delete(WAL, &key);
                continue;
            }
            if let Some(e) = entry {
                wal.push(e);
            }
        }
        if truncated > 0 {
            warn!(
                height = next,
                kept = wal.len(),
                truncated,
                "the WAL has a damaged tail; truncating it and replaying the entries before it"
            );
        }
        if !stale.is_empty() {
            self.store.write(&stale)?;
        }
        self.next_seq = max_seq + 1;
        self.written = written;
        self.next_checkpoint = match self.store.get(CHAIN, CHECKPOINT_NEXT_KEY)? {
            None => 0,
            Some(b) => u64::from_be_bytes(
                b.as_slice()
                    .try_into()
                    .map_err(|_| corrupt("checkpoint counter", "not 8 bytes"))?,
            ),
        };
        Ok(Loaded {
            ledger,
            certificate,
            wal,
            truncated,
        })
    }

    /// The members and sign requests stored beside the tip.
    fn read_sections(&self) -> Result<Sections, StorageError> {
        let members = self.read_keyspace(MEMBERS, "members", |k: [u8; 32]| MemberId(k))?;
        let sign_requests =
            self.read_keyspace(SIGN_REQUESTS, "sign requests", u64::from_be_bytes)?;
        Ok(Sections {
            members: Members::from(members),
            sign_requests: HashedMap::from(sign_requests),
        })
    }

    /// Every entry of `keyspace`: its key (`N` bytes, parsed by `key`) and its decoded value;
    /// a key of another length or a value that does not decode is a corrupt `what`.
    fn read_keyspace<K: Ord, V: serde::Serialize + serde::de::DeserializeOwned, const N: usize>(
        &self,
        keyspace: &str,
        what: &'static str,
        key: impl Fn([u8; N]) -> K,
    ) -> Result<std::collections::BTreeMap<K, V>, StorageError> {
        let mut out = std::collections::BTreeMap::new();
        for item in self.store.scan_prefix(keyspace, &[])? {
            let (k, value) = item?;
            let k: [u8; N] = k
                .as_slice()
                .try_into()
                .map_err(|_| corrupt(what, format!("a key is not {N} bytes")))?;
            out.insert(
                key(k),
                ledger::decode(&value).map_err(|e| corrupt(what, e))?,
            );
        }
        Ok(out)
    }

    /// `ledger` (the stored tip) with its published signatures put back from [`SIGNATURES`],
    /// checked against the digest the tip kept.
    fn with_signatures(&self, mut ledger: Ledger) -> Result<Ledger, StorageError> {
        const WHAT: &str = "published signatures";
        if !ledger.state.signatures.is_empty() {
            return Err(corrupt(
                "tip state",
                "it holds its published signatures inline, a format this version no longer reads",
            ));
        }
        let mut published = Vec::new();
        for item in self.store.scan_prefix(SIGNATURES, &[])? {
            let (key, value) = item?;
            if key.as_slice() != (published.len() as u64).to_be_bytes() {
                return Err(corrupt(
                    WHAT,
                    format!("number {} is missing", published.len()),
                ));
            }
            published.push(ledger::decode::<(u64, Vec<u8>)>(&value).map_err(|e| corrupt(WHAT, e))?);
        }
        let count = published.len();
        ledger.state.signatures = Signatures::rebuilt(published, ledger.state.signatures.digest())
            .ok_or_else(|| {
                corrupt(
                    WHAT,
                    format!("the {count} stored do not match the tip's digest"),
                )
            })?;
        Ok(ledger)
    }

    /// Durably appends WAL entries (one fsynced batch).
    pub fn append_wal(&mut self, entries: &[WalEntry]) -> Result<(), StorageError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::new();
        for e in entries {
            batch.put(
                WAL,
                &wal_key(wal_height(e), self.next_seq),
                &ledger::encode(e),
            );
            self.next_seq += 1;
        }
        self.store.write(&batch)?;
        Ok(())
    }

    /// Durably records a decided block, its certificate and the resulting ledger, and drops
    /// the WAL up to and including its height (one atomic batch).
    pub fn commit_block(
        &mut self,
        block: &Block,
        certificate: &CommitCertificate,
        ledger_after: &Ledger,
    ) -> Result<(), StorageError> {
        self.commit(&DecidedRecord::new(block, certificate, ledger_after))
    }

    /// [`ChainStore::commit_block`] of an encoded record.
    pub fn commit(&mut self, record: &DecidedRecord) -> Result<(), StorageError> {
        let (batch, next_checkpoint) = self.commit_batch(record)?;
        self.store.write(&batch)?;
        self.next_checkpoint = next_checkpoint;
        self.written = record.sections.clone();
        Ok(())
    }

    /// The batch that commits `record`, and the checkpoint counter after it.
    fn commit_batch(&self, record: &DecidedRecord) -> Result<(Batch, u64), StorageError> {
        let mut batch = Batch::new();
        batch.put(BLOCKS, &record.height.to_be_bytes(), &record.block);
        batch.put(CHAIN, TIP_KEY, &record.tip);
        record.sections.write_changes(&self.written, &mut batch);
        for (n, entry) in &record.signatures {
            batch.put(SIGNATURES, &n.to_be_bytes(), entry);
        }
        let mut next_checkpoint = self.next_checkpoint;
        for c in record
            .checkpoints
            .iter()
            .filter(|c| c.seq >= self.next_checkpoint)
        {
            batch.put(CHECKPOINTS, &c.seq.to_be_bytes(), &ledger::encode(c));
            next_checkpoint = next_checkpoint.max(c.seq + 1);
        }
        if next_checkpoint != self.next_checkpoint {
            batch.put(CHAIN, CHECKPOINT_NEXT_KEY, &next_checkpoint.to_be_bytes());
        }
        for item in self.store.scan_prefix(WAL, &[])? {
            let (key, _) = item?;
            let h = key_height(&key);
            if h.is_none_or(|h| h <= record.height) {
                batch.delete(WAL, &key);
            } else {
                break;
            }
        }
        Ok((batch, next_checkpoint))
    }

    /// Up to `max` (at most [`MAX_CHECKPOINTS_PER_READ`]) consecutive stored checkpoints from
    /// sequence number `from`. A node stores the checkpoints it saw recorded from the time it
    /// ran this code: one that joined (or upgraded) late starts with the ledger's last few.
    pub fn checkpoints_from(
        &self,
        from: u64,
        max: u32,
    ) -> Result<Vec<SignedCheckpoint>, StorageError> {
        let mut out = Vec::new();
        for seq in from..from.saturating_add(u64::from(max.min(MAX_CHECKPOINTS_PER_READ))) {
            let Some(raw) = self.store.get(CHECKPOINTS, &seq.to_be_bytes())? else {
                break;
            };
            out.push(ledger::decode(&raw).map_err(|e| corrupt(format!("checkpoint {seq}"), e))?);
        }
        Ok(out)
    }

    /// The decided block at `height` with its certificate.
    pub fn block(&self, height: u64) -> Result<Option<(Block, CommitCertificate)>, StorageError> {
        match self.store.get(BLOCKS, &height.to_be_bytes())? {
            None => Ok(None),
            Some(bytes) => ledger::decode(&bytes)
                .map(Some)
                .map_err(|e| corrupt(format!("block {height}"), e)),
        }
    }

    /// Up to `max` consecutive blocks from `from`, stopping before `max_bytes` of encoding.
    pub fn blocks_from(
        &self,
        from: u64,
        max: u32,
        max_bytes: usize,
    ) -> Result<Vec<(Block, CommitCertificate)>, StorageError> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for h in from..from.saturating_add(u64::from(max)) {
            let Some(raw) = self.store.get(BLOCKS, &h.to_be_bytes())? else {
                break;
            };
            bytes += raw.len();
            if bytes > max_bytes && !out.is_empty() {
                break;
            }
            out.push(ledger::decode(&raw).map_err(|e| corrupt(format!("block {h}"), e))?);
        }
        Ok(out)
    }

    /// The epoch agent's stored snapshot, opened with the node's at-rest key.
    pub fn agent(
        &self,
        key: &AtRestKey,
    ) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, StorageError> {
        let Some(sealed) = self.store.get(CHAIN, AGENT_KEY)? else {
            return Ok(None);
        };
        key.open(AGENT_KEY, &sealed)
            .map(Some)
            .map_err(|e| StorageError::Corrupt {
                what: "epoch agent snapshot".into(),
                reason: e.to_string(),
            })
    }

    /// Durably stores the epoch agent's snapshot, sealed with the node's at-rest key (it holds
    /// key shares and signing nonces).
    pub fn put_agent(&mut self, key: &AtRestKey, snapshot: &[u8]) -> Result<(), StorageError> {
        self.store
            .put(CHAIN, AGENT_KEY, &key.seal(AGENT_KEY, snapshot))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{self, Backend};
    use seedfed_protocol::consensus::{TimerId, TimerKind};
    use seedfed_protocol::ledger::Member;

    fn genesis() -> Genesis {
        let peer = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        crate::chain::test_genesis::genesis(
            "c",
            &[(super::super::member_of(&peer).unwrap(), 1)],
            10,
        )
    }

    fn timeout(height: u64, round: u32) -> WalEntry {
        WalEntry::Timeout(TimerId {
            height,
            round,
            kind: TimerKind::Propose,
        })
    }

    #[test]
    fn wal_survives_reopen_and_a_damaged_tail_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let g = genesis();
        {
            let mut cs = ChainStore::new(store::open(dir.path(), Backend::Redb).unwrap());
            let l = cs.load(&g).unwrap();
            assert_eq!(l.ledger.height(), 0);
            assert!(l.wal.is_empty());
            cs.append_wal(&[timeout(1, 0), timeout(1, 1)]).unwrap();
            cs.append_wal(&[timeout(1, 2)]).unwrap();
            cs.into_inner().close().unwrap();
        }
        {
            let s = store::open(dir.path(), Backend::Redb).unwrap();
            // Damage the middle entry: it and everything after it go.
            s.put(WAL, &wal_key(1, 2), b"\xff\xff garbage").unwrap();
            let mut cs = ChainStore::new(s);
            let l = cs.load(&g).unwrap();
            assert_eq!(l.wal, vec![timeout(1, 0)]);
            assert_eq!(l.truncated, 2);
            // New entries continue after the highest sequence number ever used.
            cs.append_wal(&[timeout(1, 5)]).unwrap();
            let l = cs.load(&g).unwrap();
            assert_eq!(l.wal, vec![timeout(1, 0), timeout(1, 5)]);
            assert_eq!(l.truncated, 0);
        }
    }

    /// A store in a new directory, loaded at the genesis: (its directory, the genesis, the
    /// store, the genesis ledger).
    fn fresh() -> (tempfile::TempDir, Genesis, ChainStore, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let g = genesis();
        let mut cs = ChainStore::new(store::open(dir.path(), Backend::Redb).unwrap());
        let l0 = cs.load(&g).unwrap().ledger;
        (dir, g, cs, l0)
    }

    /// The next block after `before`, publishing `sigs`, and the ledger it leads to.
    fn publishing(before: &Ledger, sigs: &[(u64, Vec<u8>)]) -> (Block, CommitCertificate, Ledger) {
        next_block(before, sigs, |_| {})
    }

    /// The next block after `before`, publishing `sigs` and making `change`s to the state
    /// (as the block's transactions would), and the ledger it leads to.
    fn next_block(
        before: &Ledger,
        sigs: &[(u64, Vec<u8>)],
        change: impl FnOnce(&mut ledger::LedgerState),
    ) -> (Block, CommitCertificate, Ledger) {
        use seedfed_protocol::ledger::{CommitInfo, Signature64, SignedTx, Tx};
        let mut after = before.clone();
        after.state.height += 1;
        change(&mut after.state);
        let txs = sigs
            .iter()
            .map(|(leaf, signature)| {
                after.state.signatures.insert(*leaf, signature.clone());
                SignedTx {
                    tx: Tx {
                        author: MemberId([1; 32]),
                        nonce: 0,
                        body: TxBody::SignaturePublish {
                            leaf: *leaf,
                            signature: signature.clone(),
                        },
                    },
                    signature: Signature64([0; 64]),
                }
            })
            .collect();
        let block = Block {
            height: after.state.height,
            prev_hash: before.tip,
            proposer: MemberId([1; 32]),
            last_commit: CommitInfo::default(),
            txs,
            state_hash: after.state.hash(),
        };
        after.tip = block.hash();
        let cert = CommitCertificate {
            height: block.height,
            round: 0,
            block_hash: block.hash(),
            signatures: Vec::new(),
        };
        (block, cert, after)
    }

    #[test]
    fn each_signature_is_written_once_beside_the_tip_and_comes_back_in_order() {
        let (dir, g, mut cs, l0) = fresh();
        let (b1, c1, l1) = publishing(&l0, &[(4, vec![4; 300]), (2, vec![2; 300])]);
        let record = DecidedRecord::new(&b1, &c1, &l1);
        // The tip does not carry the signatures; they are written once each.
        assert!(ledger::encode(&l1).len() >= record.tip.len() + 600);
        assert_eq!(record.signatures.len(), 2);
        cs.commit(&record).unwrap();
        assert_eq!(cs.load(&g).unwrap().ledger, l1);
        let (b2, c2, l2) = publishing(&l1, &[(3, vec![3; 300])]);
        let record = DecidedRecord::new(&b2, &c2, &l2);
        assert_eq!(
            record
                .signatures
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>(),
            [2]
        );
        cs.commit(&record).unwrap();
        let s = cs.into_inner();
        s.close().unwrap();

        let s = store::open(dir.path(), Backend::Redb).unwrap();
        let mut cs = ChainStore::new(s);
        let loaded = cs.load(&g).unwrap().ledger;
        assert_eq!(loaded, l2);
        assert_eq!(loaded.state.signatures.get(&3), Some(&[3u8; 300][..]));

        // A damaged, missing or extra signature is an error, not a silent loss.
        let s = cs.into_inner();
        s.put(
            SIGNATURES,
            &1u64.to_be_bytes(),
            &ledger::encode(&(2u64, vec![9u8; 300])),
        )
        .unwrap();
        let mut cs = ChainStore::new(s);
        let err = cs.load(&g).err().unwrap().to_string();
        assert!(err.contains("published signatures"), "{err}");
        let s = cs.into_inner();
        s.delete(SIGNATURES, &1u64.to_be_bytes()).unwrap();
        let mut cs = ChainStore::new(s);
        let err = cs.load(&g).err().unwrap().to_string();
        assert!(err.contains("number 1 is missing"), "{err}");
    }

    fn member(i: u32) -> (MemberId, Member) {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&i.to_be_bytes());
        let m = Member {
            peer_id: vec![7; 38],
            x25519: [i as u8; 32],
            stake: 0,
            nonce: 0,
            status: ledger::MemberStatus::Active,
            admitted_epoch: 1,
        };
        (MemberId(id), m)
    }

    fn request(leaf: u64) -> SignRequestRecord {
        SignRequestRecord {
            requester: MemberId([1; 32]),
            client: MemberId([2; 32]),
            request: (0, leaf),
            digest: [leaf as u8; 32],
            height: 1,
            issue_to: None,
        }
    }

    /// The `(puts, deletes)` of `batch` in `keyspace`.
    fn writes(batch: &Batch, keyspace: &str) -> (usize, usize) {
        batch
            .ops()
            .iter()
            .filter(|op| op.keyspace() == keyspace)
            .fold((0, 0), |(p, d), op| match op {
                crate::store::Op::Put { .. } => (p + 1, d),
                crate::store::Op::Delete { .. } => (p, d + 1),
            })
    }

    #[test]
    fn a_block_writes_the_members_and_requests_it_changed_and_the_tip_does_not_hold_them() {
        let (dir, g, mut cs, l0) = fresh();
        let (b1, c1, l1) = next_block(&l0, &[], |st| {
            for i in 0..1000 {
                let (id, m) = member(i);
                st.members.insert(id, m);
            }
            for leaf in 0..50 {
                st.sign_requests.insert(leaf, request(leaf));
            }
        });
        let r1 = DecidedRecord::new(&b1, &c1, &l1);
        // The first block writes every member (the genesis one too) and request, once each;
        // the tip holds none of them.
        let (batch, _) = cs.commit_batch(&r1).unwrap();
        assert_eq!(writes(&batch, MEMBERS), (1001, 0));
        assert_eq!(writes(&batch, SIGN_REQUESTS), (50, 0));
        assert!(r1.tip.len() * 10 < ledger::encode(&l1).len());
        drop(batch);
        cs.commit(&r1).unwrap();

        let (b2, c2, l2) = next_block(&l1, &[], |st| {
            st.members.get_mut(&member(5).0).unwrap().nonce += 1;
            st.members.remove(&member(6).0);
            st.sign_requests.remove(&3);
            st.sign_requests.insert(50, request(50));
        });
        let r2 = DecidedRecord::new(&b2, &c2, &l2);
        let (batch, _) = cs.commit_batch(&r2).unwrap();
        assert_eq!(writes(&batch, MEMBERS), (1, 1));
        assert_eq!(writes(&batch, SIGN_REQUESTS), (1, 1));
        assert!(r2.tip.len() <= r1.tip.len() + 16);
        drop(batch);
        cs.commit(&r2).unwrap();
        cs.into_inner().close().unwrap();

        let mut cs = ChainStore::new(store::open(dir.path(), Backend::Redb).unwrap());
        let loaded = cs.load(&g).unwrap().ledger;
        assert_eq!(loaded, l2);
        assert_eq!(loaded.state.hash(), l2.state.hash());
        assert_eq!(loaded.state.validators(), l2.state.validators());
        // After a load the store diffs against what it read: a block changing nothing in
        // those sections writes nothing there.
        let (b3, c3, l3) = next_block(&loaded, &[], |_| {});
        let (batch, _) = cs.commit_batch(&DecidedRecord::new(&b3, &c3, &l3)).unwrap();
        assert_eq!(writes(&batch, MEMBERS), (0, 0));
        assert_eq!(writes(&batch, SIGN_REQUESTS), (0, 0));
        drop(batch);

        // A member changed, added, lost or damaged on disk is an error, not a silent change.
        let s = cs.into_inner();
        let (id, mut m) = member(7);
        m.stake = 5;
        s.put(MEMBERS, &id.0, &ledger::encode(&m)).unwrap();
        let mut cs = ChainStore::new(s);
        let err = cs.load(&g).err().unwrap().to_string();
        assert!(err.contains("does not match the tip block"), "{err}");
        let s = cs.into_inner();
        s.put(MEMBERS, &id.0, b"\xff\xff").unwrap();
        let mut cs = ChainStore::new(s);
        let err = cs.load(&g).err().unwrap().to_string();
        assert!(err.contains("stored members is corrupt"), "{err}");
        let s = cs.into_inner();
        s.delete(MEMBERS, &id.0).unwrap();
        let mut cs = ChainStore::new(s);
        let err = cs.load(&g).err().unwrap().to_string();
        assert!(err.contains("does not match the tip block"), "{err}");
        let s = cs.into_inner();
        s.put(
            SIGN_REQUESTS,
            &3u64.to_be_bytes(),
            &ledger::encode(&request(3)),
        )
        .unwrap();
        s.put(MEMBERS, &id.0, &ledger::encode(&member(7).1))
            .unwrap();
        let mut cs = ChainStore::new(s);
        let err = cs.load(&g).err().unwrap().to_string();
        assert!(err.contains("does not match the tip block"), "{err}");
    }

    #[test]
    fn a_tip_written_with_its_members_inline_is_read_and_the_next_block_writes_them_beside_it() {
        let (_dir, g, mut cs, l0) = fresh();
        let (b1, c1, l1) = next_block(&l0, &[], |st| {
            let (id, m) = member(1);
            st.members.insert(id, m);
            st.sign_requests.insert(0, request(0));
        });
        cs.commit(&DecidedRecord::new(&b1, &c1, &l1)).unwrap();
        // As the previous version wrote it: the members and requests in the tip, none beside.
        let s = cs.into_inner();
        let mut old = l1.clone();
        old.state.signatures = l1.state.signatures.without_bytes();
        s.put(CHAIN, TIP_KEY, &ledger::encode(&old)).unwrap();
        s.delete(MEMBERS, &member(1).0 .0).unwrap();
        s.delete(MEMBERS, &l0.state.members.keys().next().unwrap().0)
            .unwrap();
        s.delete(SIGN_REQUESTS, &0u64.to_be_bytes()).unwrap();
        let mut cs = ChainStore::new(s);
        let loaded = cs.load(&g).unwrap().ledger;
        assert_eq!(loaded, l1);
        let (b2, c2, l2) = next_block(&loaded, &[], |_| {});
        let r2 = DecidedRecord::new(&b2, &c2, &l2);
        let (batch, _) = cs.commit_batch(&r2).unwrap();
        assert_eq!(writes(&batch, MEMBERS), (2, 0));
        assert_eq!(writes(&batch, SIGN_REQUESTS), (1, 0));
        drop(batch);
        cs.commit(&r2).unwrap();
        assert_eq!(cs.load(&g).unwrap().ledger, l2);

        // Inline and beside at once is not a tip this version wrote.
        let s = cs.into_inner();
        let mut both = l2.clone();
        both.state.signatures = l2.state.signatures.without_bytes();
        s.put(CHAIN, TIP_KEY, &ledger::encode(&both)).unwrap();
        let mut cs = ChainStore::new(s);
        let err = cs.load(&g).err().unwrap().to_string();
        assert!(err.contains("inline and beside"), "{err}");
    }

    #[test]
    fn a_tip_with_its_signatures_inline_is_refused() {
        let (_dir, g, mut cs, l0) = fresh();
        let (b1, c1, l1) = publishing(&l0, &[(4, vec![4; 30])]);
        cs.commit(&DecidedRecord::new(&b1, &c1, &l1)).unwrap();
        let s = cs.into_inner();
        let mut inline = l1.clone();
        inline.state.members = Members::default();
        inline.state.sign_requests = HashedMap::default();
        s.put(CHAIN, TIP_KEY, &ledger::encode(&inline)).unwrap();
        let mut cs = ChainStore::new(s);
        let err = cs.load(&g).err().unwrap().to_string();
        assert!(err.contains("published signatures inline"), "{err}");
    }

    #[test]
    fn a_corrupt_tip_is_an_error_not_a_silent_reset() {
        let dir = tempfile::tempdir().unwrap();
        let s = store::open(dir.path(), Backend::Redb).unwrap();
        s.put(CHAIN, TIP_KEY, b"not a ledger").unwrap();
        let mut cs = ChainStore::new(s);
        let err = cs.load(&genesis()).err().unwrap().to_string();
        assert!(err.contains("tip state"), "{err}");
    }

    /// A kept tree is read whole or a piece at a time; one whose stored length is no whole
    /// number of keys is reported corrupt by every reader, not taken as absent or cut short.
    #[test]
    fn a_tree_is_read_in_pieces_and_a_damaged_one_is_an_error() {
        let (_dir, _g, mut cs, _l0) = fresh();
        let keys: Vec<[u8; 32]> = (0..100u8).map(|i| [i; 32]).collect();
        cs.put_tree(2, &[9; 32], &keys).unwrap();
        assert_eq!(cs.tree(2, &[9; 32]).unwrap(), Some(keys.clone()));
        assert_eq!(
            cs.tree_keys(2, &[9; 32], 10, 5).unwrap(),
            Some(keys[10..15].to_vec())
        );
        assert_eq!(
            cs.tree_keys(2, &[9; 32], 98, 5).unwrap(),
            Some(keys[98..].to_vec())
        );
        assert_eq!(cs.tree_keys(2, &[9; 32], 100, 5).unwrap(), Some(Vec::new()));
        assert!(cs.has_tree(2, &[9; 32]).unwrap());
        assert!(!cs.has_tree(2, &[8; 32]).unwrap());
        assert_eq!(cs.tree_keys(3, &[9; 32], 0, 5).unwrap(), None);

        cs.store
            .put(TREES, &held_key(4, &[9; 32]), &[1u8; 33])
            .unwrap();
        for e in [
            cs.tree(4, &[9; 32]).unwrap_err(),
            cs.tree_keys(4, &[9; 32], 0, 1).unwrap_err(),
            cs.has_tree(4, &[9; 32]).unwrap_err(),
        ] {
            assert!(
                e.to_string()
                    .contains("33 bytes is not a list of 32-byte keys"),
                "{e}"
            );
        }
    }
}
