//! The mempool: signed transactions waiting for a block, under rules that stop one author, or
//! a crowd of proof-of-work-only peers, from delaying everyone else's transactions: per-kind
//! size caps, membership, nonce window, and count and byte bounds per author and in all.
//!
//! Guarantees: every pooled transaction is within its kind's size cap ([`size_cap`]), comes
//! from an active ledger member (or is a non-member's `Admit`, in a small quota of its own),
//! has a nonce in `[next, next + MAX_NONCE_AHEAD)`, and fits the bounds of [`MempoolLimits`].
//! [`Mempool::candidates`] offers the authors' runs of consecutive nonces in turn and skips,
//! never stops at, one that does not fit the block; [`Mempool::prune`] drops what the ledger
//! applied and every author's next transaction that no longer applies, with the ones behind it.
//!
//! The pool does not verify signatures: callers insert only transactions whose signature was
//! checked (the gossip validator, the API handler) or that we signed ourselves.

use std::collections::BTreeMap;

use seedfed_protocol::admission::{possession_context, Puzzle};
use seedfed_protocol::ledger::{
    self, LedgerState, MemberStatus, SigCache, SignedTx, TxBody, MAX_PAYLOAD_BYTES,
};
use seedfed_protocol::member::MemberId;
use seedfed_protocol::seal;
use thiserror::Error;

/// A transaction whose nonce is this far past its author's next nonce is refused: one author
/// cannot fill the mempool with transactions that cannot apply for a long time.
pub const MAX_NONCE_AHEAD: u64 = 4096;
/// A proposed block's transactions stop at this many encoded bytes (gossip messages are
/// capped at 1 MiB by default).
pub const BLOCK_TX_BYTES: usize = 768 * 1024;
/// Size cap of the kinds whose legitimate encodings are a few hundred bytes at most (an
/// `Evict` with two equivocating votes is the largest, about 450 bytes).
pub const SMALL_TX_CAP: usize = 1024;
/// Size cap of the kinds that carry one opaque payload the ledger bounds by
/// [`MAX_PAYLOAD_BYTES`] (DKG round-1 packages, complaints and answers, deal complaints, LMS
/// signatures), plus room for the rest of the transaction.
pub const PAYLOAD_TX_CAP: usize = MAX_PAYLOAD_BYTES + 1024;
/// Size cap of the kinds that carry a list of members (`BranchAssignment`: `2^p` owners,
/// `SectorRoot`: the leaf holders): the most a block can carry, so nothing that could ever be
/// in a block is refused.
pub const LIST_TX_CAP: usize = BLOCK_TX_BYTES;
/// Most transactions waiting in the pool.
pub const MAX_POOL_TXS: usize = 20_000;
/// Most encoded bytes waiting in the pool.
pub const MAX_POOL_BYTES: usize = 64 << 20;

/// The pool's bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MempoolLimits {
    /// Most transactions in the pool.
    pub max_txs: usize,
    /// Most encoded bytes in the pool.
    pub max_bytes: usize,
    /// Most transactions of one author.
    pub max_author_txs: usize,
    /// Most encoded bytes of one author.
    pub max_author_bytes: usize,
    /// Most `Admit` transactions from non-members, together.
    pub max_newcomer_txs: usize,
    /// Most encoded bytes of `Admit` transactions from non-members, together.
    pub max_newcomer_bytes: usize,
}

impl Default for MempoolLimits {
    fn default() -> Self {
        MempoolLimits {
            max_txs: MAX_POOL_TXS,
            max_bytes: MAX_POOL_BYTES,
            max_author_txs: 2048,
            max_author_bytes: 4 << 20,
            max_newcomer_txs: 256,
            max_newcomer_bytes: 64 << 10,
        }
    }
}

/// Why a transaction was not taken into the mempool.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum TxRejected {
    /// The signature, author key or admission proof does not verify.
    #[error("invalid transaction: {0}")]
    Invalid(String),
    /// Larger than the cap of its kind.
    #[error("{kind} transaction of {size} bytes is over the {cap}-byte cap for its kind")]
    TooLarge {
        /// The `TxBody` variant.
        kind: &'static str,
        /// Its encoded size.
        size: usize,
        /// The cap ([`size_cap`]).
        cap: usize,
    },
    /// The author is not an active ledger member and the transaction is not an `Admit`.
    #[error(
        "author {0} is not an active ledger member (only an Admit may come from a non-member)"
    )]
    NotMember(MemberId),
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
    /// The nonce is held by a pending transaction this node signed itself (its duties sign
    /// with the same key); a client using the node's key signs for `next` instead.
    #[error(
        "nonce {nonce} is taken by this node's own pending transaction; sign for nonce {next}"
    )]
    NonceTaken {
        /// The transaction's nonce.
        nonce: u64,
        /// The first nonce past this node's pending transactions.
        next: u64,
    },
    /// A bound of the pool is reached.
    #[error("mempool full: {0}")]
    Full(Full),
}

impl TxRejected {
    /// A short name for metrics labels.
    pub fn label(&self) -> &'static str {
        match self {
            TxRejected::Invalid(_) => "invalid",
            TxRejected::TooLarge { .. } => "too_large",
            TxRejected::NotMember(_) => "not_member",
            TxRejected::StaleNonce { .. } => "stale_nonce",
            TxRejected::NonceTooFarAhead { .. } => "nonce_too_far_ahead",
            TxRejected::NonceTaken { .. } => "nonce_taken",
            TxRejected::Full(f) => f.label(),
        }
    }
}

/// Which bound of the pool a refused transaction hit.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum Full {
    /// The pool holds its most transactions.
    #[error("the pool holds its limit of {0} transactions")]
    Txs(usize),
    /// The pool holds its most bytes.
    #[error("the pool holds its limit of {0} bytes")]
    Bytes(usize),
    /// The author has its most transactions waiting.
    #[error("the author has its limit of {0} transactions waiting")]
    AuthorTxs(usize),
    /// The author has its most bytes waiting.
    #[error("the author has its limit of {0} bytes waiting")]
    AuthorBytes(usize),
    /// The quota of admissions from non-members is used up.
    #[error(
        "the quota of admissions from non-members ({txs} transactions, {bytes} bytes) is used up"
    )]
    Newcomers {
        /// Most admissions.
        txs: usize,
        /// Most bytes of admissions.
        bytes: usize,
    },
}

impl Full {
    /// A short name for metrics labels.
    pub fn label(&self) -> &'static str {
        match self {
            Full::Txs(_) => "pool_txs",
            Full::Bytes(_) => "pool_bytes",
            Full::AuthorTxs(_) => "author_txs",
            Full::AuthorBytes(_) => "author_bytes",
            Full::Newcomers { .. } => "newcomer_quota",
        }
    }
}

/// The name of a transaction's kind (its `TxBody` variant).
pub fn kind(body: &TxBody) -> &'static str {
    match body {
        TxBody::Admit { .. } => "Admit",
        TxBody::Transfer { .. } => "Transfer",
        TxBody::Exit => "Exit",
        TxBody::Evict { .. } => "Evict",
        TxBody::DkgCommitment { .. } => "DkgCommitment",
        TxBody::DkgComplaint { .. } => "DkgComplaint",
        TxBody::DkgAnswer { .. } => "DkgAnswer",
        TxBody::DkgFinalize { .. } => "DkgFinalize",
        TxBody::DkgAck { .. } => "DkgAck",
        TxBody::BeaconPartial { .. } => "BeaconPartial",
        TxBody::EpochStart { .. } => "EpochStart",
        TxBody::CheckpointCommit { .. } => "CheckpointCommit",
        TxBody::CheckpointShare { .. } => "CheckpointShare",
        TxBody::BranchAssignment { .. } => "BranchAssignment",
        TxBody::SectorRoot { .. } => "SectorRoot",
        TxBody::DealComplaint { .. } => "DealComplaint",
        TxBody::AuditPartial { .. } => "AuditPartial",
        TxBody::AuditReveal { .. } => "AuditReveal",
        TxBody::AuditPath { .. } => "AuditPath",
        TxBody::MasterRoot { .. } => "MasterRoot",
        TxBody::SignRequest { .. } => "SignRequest",
        TxBody::ClientChange { .. } => "ClientChange",
        TxBody::PowDifficulty { .. } => "PowDifficulty",
        TxBody::SignaturePublish { .. } => "SignaturePublish",
        TxBody::SignBlame { .. } => "SignBlame",
        TxBody::Repair { .. } => "Repair",
        TxBody::Filler => "Filler",
        TxBody::LeafMismatch { .. } => "LeafMismatch",
    }
}

/// The largest encoded `SignedTx` of this kind the node takes (a node policy, not a ledger
/// rule). Every cap is above the largest legitimate transaction of its kind.
pub fn size_cap(body: &TxBody) -> usize {
    match body {
        TxBody::Admit { .. }
        | TxBody::Transfer { .. }
        | TxBody::Exit
        | TxBody::Evict { .. }
        | TxBody::DkgFinalize { .. }
        | TxBody::DkgAck { .. }
        | TxBody::BeaconPartial { .. }
        | TxBody::EpochStart { .. }
        | TxBody::CheckpointCommit { .. }
        | TxBody::CheckpointShare { .. }
        | TxBody::MasterRoot { .. }
        | TxBody::AuditPartial { .. }
        | TxBody::SignRequest { .. }
        | TxBody::ClientChange { .. }
        | TxBody::PowDifficulty { .. }
        | TxBody::Repair { .. }
        | TxBody::Filler => SMALL_TX_CAP,
        TxBody::DkgCommitment { .. }
        | TxBody::DkgComplaint { .. }
        | TxBody::DkgAnswer { .. }
        | TxBody::DealComplaint { .. }
        | TxBody::AuditReveal { .. }
        | TxBody::AuditPath { .. }
        | TxBody::SignaturePublish { .. }
        | TxBody::SignBlame { .. }
        | TxBody::LeafMismatch { .. } => PAYLOAD_TX_CAP,
        TxBody::BranchAssignment { .. } | TxBody::SectorRoot { .. } => LIST_TX_CAP,
    }
}

/// Refuses a transaction of `size` encoded bytes over its kind's cap.
pub fn check_size(body: &TxBody, size: usize) -> Result<(), TxRejected> {
    let cap = size_cap(body);
    if size > cap {
        return Err(TxRejected::TooLarge {
            kind: kind(body),
            size,
            cap,
        });
    }
    Ok(())
}

/// What [`Mempool::insert`] did besides inserting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inserted {
    /// Transactions of non-validators pushed out to make room for a validator's.
    pub evicted: usize,
}

/// What [`Mempool::prune`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Applied by the ledger, stale, or from an author who is no longer an active member.
    pub done: usize,
    /// Authors' next transactions that no longer apply: (author, nonce, why).
    pub failed: Vec<(MemberId, u64, String)>,
    /// Transactions dropped behind a failed one (a nonce gap: they cannot apply any more).
    pub behind: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Usage {
    txs: usize,
    bytes: usize,
}

impl Usage {
    fn add(&mut self, size: usize) {
        self.txs += 1;
        self.bytes += size;
    }

    fn sub(&mut self, size: usize) {
        self.txs = self.txs.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(size);
    }
}

#[derive(Debug)]
struct Entry {
    tx: SignedTx,
    /// Encoded size.
    size: usize,
    /// A non-member's `Admit` (counted in the newcomer quota).
    newcomer: bool,
}

/// Transactions waiting for a block, by (author, nonce).
#[derive(Debug, Default)]
pub struct Mempool {
    limits: MempoolLimits,
    txs: BTreeMap<(MemberId, u64), Entry>,
    authors: BTreeMap<MemberId, Usage>,
    total: Usage,
    newcomers: Usage,
}

impl Mempool {
    /// An empty pool with these bounds.
    pub fn new(limits: MempoolLimits) -> Self {
        Mempool {
            limits,
            ..Mempool::default()
        }
    }

    /// Transactions waiting.
    pub fn len(&self) -> usize {
        self.total.txs
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.total.txs == 0
    }

    /// Encoded bytes waiting.
    pub fn bytes(&self) -> usize {
        self.total.bytes
    }

    /// Whether the transaction of `author` with `nonce` waits.
    pub fn contains(&self, author: &MemberId, nonce: u64) -> bool {
        self.txs.contains_key(&(*author, nonce))
    }

    /// The transaction of `author` with `nonce`, if it waits.
    pub fn get(&self, author: &MemberId, nonce: u64) -> Option<&SignedTx> {
        self.txs.get(&(*author, nonce)).map(|e| &e.tx)
    }

    /// The transactions of `author` waiting, in nonce order.
    pub fn of_author(&self, author: &MemberId) -> impl Iterator<Item = &SignedTx> {
        self.txs
            .range((*author, 0)..=(*author, u64::MAX))
            .map(|(_, e)| &e.tx)
    }

    /// One past the highest nonce of `author` waiting, if any.
    pub fn next_nonce(&self, author: &MemberId) -> Option<u64> {
        self.txs
            .range((*author, 0)..=(*author, u64::MAX))
            .next_back()
            .map(|((_, n), _)| n.saturating_add(1))
    }

    /// Takes `tx` (its signature already checked) into the pool, under the ledger `state` at
    /// the tip, or says why not. An equal transaction already waiting is a no-op; a different
    /// one with the same author and nonce is replaced. When the pool is full, a validator's
    /// transaction pushes out waiting transactions of non-validators (the heaviest author's
    /// highest nonces first): the epoch cycle runs on validators' transactions.
    pub fn insert(&mut self, tx: SignedTx, state: &LedgerState) -> Result<Inserted, TxRejected> {
        let size = ledger::encode(&tx).len();
        check_size(&tx.tx.body, size)?;
        let author = tx.tx.author;
        let nonce = tx.tx.nonce;
        let member = state.members.get(&author);
        let newcomer = match member {
            Some(m) if m.status == MemberStatus::Active => false,
            Some(_) => return Err(TxRejected::NotMember(author)),
            None => {
                check_admission(&tx, state)?;
                true
            }
        };
        let next = member.map_or(0, |m| m.nonce);
        if nonce < next {
            return Err(TxRejected::StaleNonce { got: nonce, next });
        }
        if nonce - next >= MAX_NONCE_AHEAD {
            return Err(TxRejected::NonceTooFarAhead { got: nonce, next });
        }
        let key = (author, nonce);
        let (added, replaced) = match self.txs.get(&key) {
            Some(e) if e.tx == tx => return Ok(Inserted::default()),
            Some(e) => (0, e.size),
            None => (1, 0),
        };
        let l = &self.limits;
        if newcomer {
            let u = self.newcomers;
            if u.txs + added > l.max_newcomer_txs
                || u.bytes - replaced + size > l.max_newcomer_bytes
            {
                return Err(TxRejected::Full(Full::Newcomers {
                    txs: l.max_newcomer_txs,
                    bytes: l.max_newcomer_bytes,
                }));
            }
        }
        let u = self.authors.get(&author).copied().unwrap_or_default();
        if u.txs + added > l.max_author_txs {
            return Err(TxRejected::Full(Full::AuthorTxs(l.max_author_txs)));
        }
        if u.bytes - replaced + size > l.max_author_bytes {
            return Err(TxRejected::Full(Full::AuthorBytes(l.max_author_bytes)));
        }
        let mut evicted = 0;
        if state.is_validator(&author) {
            evicted = self.evict_for(added, size.saturating_sub(replaced), state);
        }
        let l = &self.limits;
        if self.total.txs + added > l.max_txs {
            return Err(TxRejected::Full(Full::Txs(l.max_txs)));
        }
        if self.total.bytes - replaced + size > l.max_bytes {
            return Err(TxRejected::Full(Full::Bytes(l.max_bytes)));
        }
        self.take(&key);
        self.total.add(size);
        self.authors.entry(author).or_default().add(size);
        if newcomer {
            self.newcomers.add(size);
        }
        self.txs.insert(key, Entry { tx, size, newcomer });
        Ok(Inserted { evicted })
    }

    /// Removes the transaction of `author` with `nonce`.
    pub fn remove(&mut self, author: &MemberId, nonce: u64) -> Option<SignedTx> {
        self.take(&(*author, nonce)).map(|e| e.tx)
    }

    /// The transactions to propose on top of `state`: for each author the run of consecutive
    /// nonces from its ledger nonce, authors in turn (depth by depth, the first author rotating
    /// with the height), at most `max_txs` transactions and `max_bytes` encoded bytes. A
    /// transaction that does not fit is skipped with the rest of its author's run (they would
    /// leave a nonce gap); smaller ones of other authors still go in.
    pub fn candidates(
        &self,
        state: &LedgerState,
        max_txs: usize,
        max_bytes: usize,
    ) -> Vec<SignedTx> {
        let mut runs: Vec<Vec<&Entry>> = Vec::new();
        for author in self.authors.keys() {
            let next = state.members.get(author).map_or(0, |m| m.nonce);
            let run: Vec<&Entry> = self
                .txs
                .range((*author, next)..=(*author, u64::MAX))
                .zip(next..)
                .take_while(|(((_, n), _), want)| n == want)
                .map(|((_, e), _)| e)
                .collect();
            if !run.is_empty() {
                runs.push(run);
            }
        }
        if runs.is_empty() {
            return Vec::new();
        }
        let first = usize::try_from(state.height % runs.len() as u64).unwrap_or(0);
        runs.rotate_left(first);
        let mut open = vec![true; runs.len()];
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for depth in 0.. {
            let mut any = false;
            for (run, open) in runs.iter().zip(open.iter_mut()) {
                if !*open {
                    continue;
                }
                let Some(e) = run.get(depth) else {
                    *open = false;
                    continue;
                };
                any = true;
                if out.len() >= max_txs {
                    return out;
                }
                if bytes + e.size > max_bytes {
                    *open = false;
                    continue;
                }
                bytes += e.size;
                out.push(e.tx.clone());
            }
            if !any {
                break;
            }
        }
        out
    }

    /// After a block: drops transactions the ledger applied (or whose nonce passed) and those
    /// of authors who are no longer active members; then checks each author's next
    /// transaction on a copy of `state` at the next height, in author order, and drops one
    /// that does not apply together with every later transaction of its author (with the gap
    /// they cannot apply). Signatures that passed before are answered from `checks`.
    pub fn prune(&mut self, state: &LedgerState, checks: &mut SigCache) -> Pruned {
        let mut pruned = Pruned::default();
        let gone: Vec<(MemberId, u64)> = self
            .txs
            .iter()
            .filter(|((author, nonce), e)| match state.members.get(author) {
                Some(m) => *nonce < m.nonce || m.status != MemberStatus::Active,
                None => !e.newcomer,
            })
            .map(|(k, _)| *k)
            .collect();
        for k in &gone {
            self.take(k);
        }
        pruned.done = gone.len();
        let heads: Vec<(MemberId, u64)> = self
            .authors
            .keys()
            .map(|a| (*a, state.members.get(a).map_or(0, |m| m.nonce)))
            .filter(|k| self.txs.contains_key(k))
            .collect();
        if heads.is_empty() {
            return pruned;
        }
        let mut probe = state.clone();
        probe.height += 1;
        for (author, nonce) in heads {
            let Some(e) = self.txs.get(&(author, nonce)) else {
                continue;
            };
            if let Err(why) = probe.apply_tx_with(&e.tx, Some(checks)) {
                let run: Vec<(MemberId, u64)> = self
                    .txs
                    .range((author, nonce)..=(author, u64::MAX))
                    .map(|(k, _)| *k)
                    .collect();
                for k in &run {
                    self.take(k);
                }
                pruned.behind += run.len() - 1;
                pruned.failed.push((author, nonce, why.to_string()));
            }
        }
        pruned
    }

    fn take(&mut self, key: &(MemberId, u64)) -> Option<Entry> {
        let e = self.txs.remove(key)?;
        self.total.sub(e.size);
        if let Some(u) = self.authors.get_mut(&key.0) {
            u.sub(e.size);
            if u.txs == 0 {
                self.authors.remove(&key.0);
            }
        }
        if e.newcomer {
            self.newcomers.sub(e.size);
        }
        Some(e)
    }

    /// Pushes out non-validators' transactions until `txs` more transactions and `bytes` more
    /// bytes fit the pool's bounds (or no non-validator's transaction is left); returns how many
    /// went.
    fn evict_for(&mut self, txs: usize, bytes: usize, state: &LedgerState) -> usize {
        let mut evicted = 0;
        while self.total.txs + txs > self.limits.max_txs
            || self.total.bytes + bytes > self.limits.max_bytes
        {
            let victim = self
                .authors
                .iter()
                .filter(|(a, _)| !state.is_validator(a))
                .max_by_key(|(_, u)| u.bytes)
                .map(|(a, _)| *a);
            let Some(victim) = victim else {
                break;
            };
            let last = self
                .txs
                .range((victim, 0)..=(victim, u64::MAX))
                .next_back()
                .map(|(k, _)| *k);
            match last {
                Some(k) => {
                    self.take(&k);
                    evicted += 1;
                }
                None => break,
            }
        }
        evicted
    }
}

/// A non-member may only send its own admission: nonce 0, its own peer id, a usable X25519
/// key with its proof of possession, and a proof of work that verifies (each cheap to check;
/// the work is what the quota of newcomers costs).
fn check_admission(tx: &SignedTx, state: &LedgerState) -> Result<(), TxRejected> {
    let author = tx.tx.author;
    let TxBody::Admit {
        peer_id,
        x25519,
        pow,
        x25519_proof,
    } = &tx.tx.body
    else {
        return Err(TxRejected::NotMember(author));
    };
    if tx.tx.nonce != 0 {
        return Err(TxRejected::Invalid(format!(
            "an admission carries nonce 0, not {}",
            tx.tx.nonce
        )));
    }
    if *peer_id != ledger::peer_id_bytes(&author) {
        return Err(TxRejected::Invalid(
            "the admission's peer id is not its author's".into(),
        ));
    }
    if !seal::x25519_key_is_valid(x25519) {
        return Err(TxRejected::Invalid(
            "the admission's X25519 key is low-order, off the curve or non-canonical".into(),
        ));
    }
    let context = possession_context(&state.chain_id, peer_id);
    if !seal::verify_possession(x25519, &context, x25519_proof) {
        return Err(TxRejected::Invalid(
            "the admission's X25519 proof of possession does not verify".into(),
        ));
    }
    Puzzle {
        chain_id: state.chain_id.clone(),
        peer_id: peer_id.clone(),
        x25519: *x25519,
    }
    .verify(pow, state.pow_difficulty)
    .map_err(|e| TxRejected::Invalid(format!("admission proof of work: {e}")))
}

#[cfg(test)]
mod tests;
