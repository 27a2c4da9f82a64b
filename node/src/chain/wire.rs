//! What the chain driver sends over the network, and the checks gossip must pass before it is
//! forwarded: gossip topics [`CONSENSUS_TOPIC`] ([`consensus_gossip`]: the message and a
//! number drawn for each publication) and
//! [`TX_TOPIC`] (`ledger::encode(Vec<SignedTx>)`: [`tx_messages`] packs transactions so that
//! a batch travels as one message), and point-to-point [`ChainRequest`] and [`ChainResponse`],
//! encoded the same way.
//!
//! Guarantees: gossip is anonymous (`network::behaviour`), so [`check_gossip`] judges a
//! message by the signatures it carries: it is a function of the message and a
//! [`GossipView`] of the chain (validator set, height, and the messages it already passed),
//! so that a malformed message, a vote, proposal or certificate by a non-validator or with a
//! signature that does not verify, a consensus message passed before (a replay under a new
//! number), a message far from our height, an oversized block and a transaction over its
//! kind's size cap ([`mempool::size_cap`](super::mempool::size_cap())) are dropped with a
//! reason before they reach consensus or cost other peers bandwidth. Each signature is
//! checked once per node, however many peers forward the message.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use libp2p::PeerId;
use rand_core::RngCore;
use seedfed_protocol::consensus::{CommitCertificate, ConsensusMessage};
use seedfed_protocol::ledger::{self, Block, SigCache, SignedTx};
use seedfed_protocol::member::MemberId;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::debug;

use super::mempool;
use crate::network::{GossipValidator, GossipVerdict};

/// Gossip topic of consensus messages (proposals, votes, certificates).
pub const CONSENSUS_TOPIC: &str = "consensus";
/// Gossip topic of transactions waiting for a block.
pub const TX_TOPIC: &str = "tx";
/// Most transactions in one [`TX_TOPIC`] message.
pub const MAX_GOSSIP_TXS: usize = 1024;
/// A [`TX_TOPIC`] message stops growing at this many encoded bytes (the gossip cap is 1 MiB by
/// default); a single transaction larger than this travels alone.
pub const GOSSIP_TX_BYTES: usize = 512 * 1024;
/// Consensus messages more than this many heights ahead of ours are ignored (a lagging node
/// syncs blocks instead; buffering far-future votes would let anyone fill our memory).
pub const MAX_HEIGHTS_AHEAD: u64 = 64;
/// Consensus messages the gossip check remembers as passed (their bytes without the
/// publication number): a replay of one is dropped without forwarding it.
const CONSENSUS_SEEN: usize = 8_192;

/// Bytes of the number a [`CONSENSUS_TOPIC`] message ends with.
const PUBLICATION_BYTES: usize = 8;

/// A [`CONSENSUS_TOPIC`] payload: `ledger::encode(message)` followed by 8 random bytes drawn
/// for this publication, so that publishing the same message again (a re-broadcast vote)
/// makes a new gossip message (ids are content hashes) that reaches peers that missed it,
/// while a replay of a message a node already passed is dropped there.
pub fn consensus_gossip(message: &ConsensusMessage) -> Vec<u8> {
    let mut bytes = ledger::encode(message);
    let mut number = [0u8; PUBLICATION_BYTES];
    rand_core::OsRng.fill_bytes(&mut number);
    bytes.extend_from_slice(&number);
    bytes
}

/// The message of a [`consensus_gossip`] payload, and its encoding (the payload without the
/// publication number).
pub fn open_consensus_gossip(data: &[u8]) -> Result<(&[u8], ConsensusMessage), String> {
    let encoded = data
        .len()
        .checked_sub(PUBLICATION_BYTES)
        .and_then(|n| data.get(..n))
        .ok_or_else(|| "shorter than its publication number".to_string())?;
    let message = ledger::decode(encoded).map_err(|e| e.to_string())?;
    Ok((encoded, message))
}

/// Most blocks in one [`ChainResponse::Blocks`].
pub const MAX_SYNC_BLOCKS: u32 = 64;
/// A sync response stops growing once it holds this many encoded bytes (the request-response
/// cap is larger).
pub const MAX_SYNC_BYTES: usize = 2 << 20;

/// A point-to-point request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChainRequest {
    /// Decided blocks with their commit certificates, from height `from`, at most `max`.
    Blocks {
        /// First height wanted.
        from: u64,
        /// Most blocks wanted.
        max: u32,
    },
    /// One epoch-protocol payload (a DKG envelope, a branch partial, a dealt batch, a
    /// contribution, a path...) for the recipient's agent.
    Direct(Vec<u8>),
    /// The sender's own votes at `height`, the height it decides and has been stuck at; the
    /// answer is [`ChainResponse::Votes`] (`vote_exchange`).
    Votes {
        /// The height.
        height: u64,
        /// The sender's votes there.
        votes: Vec<seedfed_protocol::ledger::VoteRecord>,
    },
    /// Several epoch-protocol payloads for the recipient's agent, taken in order in one turn
    /// (at most `direct::DIRECT_GROUP_MAX`): a quorum member's contributions of a block to one
    /// relay travel together.
    Directs(Vec<Vec<u8>>),
    /// Leaf keys of a published sector's public tree, kept under (`sector`, `root`), from
    /// leaf `from` of the sector (0-based), at most `max` (at most [`MAX_TREE_KEYS`] are
    /// sent): what a validator fetches to keep its replica (`trees`).
    SectorTree {
        /// The sector.
        sector: u32,
        /// Its root on the ledger.
        root: [u8; 32],
        /// The first leaf wanted, counted within the sector.
        from: u32,
        /// Most keys wanted.
        max: u32,
    },
}

/// Most leaf keys in one [`ChainResponse::SectorTree`] (1 MiB of keys, under the
/// request-response cap).
pub const MAX_TREE_KEYS: u32 = 1 << 15;

/// The answer to a [`ChainRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChainResponse {
    /// Consecutive decided blocks from the requested height (empty: none stored there).
    Blocks(Vec<(Block, CommitCertificate)>),
    /// The direct payload was accepted.
    Ack,
    /// The request was refused; why.
    Refused(String),
    /// The answerer's own votes at the requested height (empty if it decides another one).
    Votes(Vec<seedfed_protocol::ledger::VoteRecord>),
    /// Leaf keys of the requested sector tree, from the requested leaf on (empty: past the
    /// sector's end); a [`ChainResponse::Refused`] if the answerer keeps no such tree.
    SectorTree(Vec<[u8; 32]>),
}

/// Sends `request` to `peer` and decodes the answer, or says why there is none.
pub async fn ask(
    net: &crate::network::NetworkHandle,
    peer: PeerId,
    request: Vec<u8>,
) -> Result<ChainResponse, String> {
    let bytes = net
        .request(peer, request)
        .await
        .map_err(|e| e.to_string())?;
    ledger::decode::<ChainResponse>(&bytes).map_err(|e| format!("malformed answer: {e}"))
}

/// Asks `peer` on a task of its own ([`ask`]) and sends `(peer, answer)` to `answers`: what
/// `pick` takes from the response, or why there is none (the request failed, the answer was
/// malformed, or `pick` gave the response back: not the kind asked for).
pub fn spawn_ask<T: Send + 'static>(
    net: &crate::network::NetworkHandle,
    peer: PeerId,
    request: Vec<u8>,
    pick: impl FnOnce(ChainResponse) -> Result<T, ChainResponse> + Send + 'static,
    answers: tokio::sync::mpsc::Sender<(PeerId, Result<T, String>)>,
) {
    let net = net.clone();
    tokio::spawn(async move {
        let answer = ask(&net, peer, request)
            .await
            .and_then(|r| pick(r).map_err(|other| format!("unexpected answer {other:?}")));
        let _ = answers.send((peer, answer)).await;
    });
}

/// What the network knows of the chain; updated by the driver after each decision: the
/// validator set and height (for the gossip checks and the validators' connection slots) and
/// the ledger's proof-of-work difficulty (for admission, and for our own proof).
#[derive(Debug, Default)]
pub struct GossipView {
    validators: RwLock<BTreeMap<MemberId, u64>>,
    height: AtomicU64,
    dropped: AtomicU64,
    /// The ledger's admission difficulty (0 until the driver first reports).
    pow_difficulty: watch::Sender<u8>,
    /// Transactions whose signatures the gossip check verified: a transaction that comes
    /// again in another message (a re-gossiped batch, a batch that overlaps an earlier one) is
    /// not verified again.
    sigs: Mutex<SigCache>,
    /// Consensus messages whose signatures the gossip check verified (their encoding on the
    /// chain): the same message again is a replay or a re-broadcast that this node has, and
    /// is not forwarded.
    consensus_seen: Mutex<SigCache>,
    /// Vote and proposal signatures the gossip check verified (signer, digest, signature): a
    /// vote that comes alone and again inside round and polka certificates (each up to `n`
    /// votes, re-sent while a round stalls) is verified once.
    votes: Mutex<SigCache>,
}

impl GossipView {
    /// A view at `height` (the height being decided) with `validators`.
    pub fn new(height: u64, validators: BTreeMap<MemberId, u64>) -> Self {
        GossipView {
            validators: RwLock::new(validators),
            height: AtomicU64::new(height),
            dropped: AtomicU64::new(0),
            pow_difficulty: watch::Sender::new(0),
            sigs: Mutex::new(SigCache::default()),
            consensus_seen: Mutex::new(SigCache::new(CONSENSUS_SEEN)),
            votes: Mutex::new(SigCache::default()),
        }
    }

    /// Gossip messages dropped by [`check_gossip`] through [`GossipView::validator`].
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The network's gossip validator for `chain_id`: [`check_gossip`] against this view, with
    /// every drop logged with its reason and counted.
    pub fn validator(self: &Arc<Self>, chain_id: String) -> GossipValidator {
        let view = self.clone();
        Arc::new(move |source: &PeerId, topic: &str, data: &[u8]| {
            match check_gossip(&view, &chain_id, topic, data) {
                Ok(()) => GossipVerdict::Accept,
                Err(why) => {
                    view.dropped.fetch_add(1, Ordering::Relaxed);
                    debug!(%source, topic, reason = why.reason(), "gossip dropped");
                    why.verdict()
                }
            }
        })
    }

    /// Strict signature checks the gossip check made (the transactions it had not verified
    /// before).
    pub fn sig_checks(&self) -> u64 {
        self.sigs.lock().unwrap_or_else(|e| e.into_inner()).checks()
    }

    /// Records a new height and validator set.
    pub fn update(&self, height: u64, validators: BTreeMap<MemberId, u64>) {
        if let Ok(mut v) = self.validators.write() {
            *v = validators;
        }
        self.height.store(height, Ordering::Relaxed);
    }

    /// Records the ledger's proof-of-work difficulty (watchers wake only when it changes).
    pub fn set_pow_difficulty(&self, difficulty: u8) {
        self.pow_difficulty.send_if_modified(|d| {
            let changed = *d != difficulty;
            *d = difficulty;
            changed
        });
    }

    /// The ledger's proof-of-work difficulty last recorded (0 before the first).
    pub fn pow_difficulty(&self) -> u8 {
        *self.pow_difficulty.borrow()
    }

    /// A receiver that wakes when the ledger's proof-of-work difficulty changes.
    pub fn watch_pow_difficulty(&self) -> watch::Receiver<u8> {
        self.pow_difficulty.subscribe()
    }

    /// The network's view of the ledger's difficulty ([`NetworkConfig::ledger_difficulty`](crate::network::NetworkConfig::ledger_difficulty)).
    pub fn ledger_difficulty(self: &Arc<Self>) -> crate::network::LedgerDifficulty {
        let view = self.clone();
        Arc::new(move || view.pow_difficulty())
    }

    /// Whether `peer` is the identity of a validator in the last recorded set.
    pub fn is_validator_peer(&self, peer: &PeerId) -> bool {
        member_of(peer).is_some_and(|m| self.is_validator(&m))
    }

    fn is_validator(&self, m: &MemberId) -> bool {
        self.validators
            .read()
            .map(|v| v.contains_key(m))
            .unwrap_or(false)
    }

    fn height(&self) -> u64 {
        self.height.load(Ordering::Relaxed)
    }
}

/// The Ed25519 identity behind a peer id, if it is an Ed25519 identity peer id: the identity
/// multihash (code 0) of a protobuf-encoded Ed25519 public key. A hashed peer id (SHA-256 of a
/// larger key) names no key we could check, so it is `None` whatever its digest holds.
pub fn member_of(peer: &PeerId) -> Option<MemberId> {
    const IDENTITY: u64 = 0;
    let multihash: &libp2p::multihash::Multihash<64> = peer.as_ref();
    if multihash.code() != IDENTITY {
        return None;
    }
    let key = libp2p::identity::PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    let ed = key.try_into_ed25519().ok()?;
    Some(MemberId(ed.to_bytes()))
}

/// The peer id of a member.
pub fn peer_of(member: &MemberId) -> Option<PeerId> {
    PeerId::from_bytes(&ledger::peer_id_bytes(member)).ok()
}

/// Why a gossip message was dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Penalise the forwarding peer: the message is malformed, forged or over a size cap.
    Reject(String),
    /// Drop without penalty (stale or too far ahead).
    Ignore(String),
}

impl DropReason {
    /// The gossipsub verdict for this drop.
    pub fn verdict(&self) -> GossipVerdict {
        match self {
            DropReason::Reject(_) => GossipVerdict::Reject,
            DropReason::Ignore(_) => GossipVerdict::Ignore,
        }
    }

    /// Why.
    pub fn reason(&self) -> &str {
        match self {
            DropReason::Reject(r) | DropReason::Ignore(r) => r,
        }
    }
}

/// Checks one gossip message on `topic`.
pub fn check_gossip(
    view: &GossipView,
    chain_id: &str,
    topic: &str,
    data: &[u8],
) -> Result<(), DropReason> {
    match topic {
        CONSENSUS_TOPIC => {
            let (encoded, msg) = open_consensus_gossip(data)
                .map_err(|e| DropReason::Reject(format!("malformed consensus message: {e}")))?;
            check_consensus(view, chain_id, encoded, &msg)
        }
        TX_TOPIC => {
            let txs: Vec<SignedTx> = ledger::decode(data)
                .map_err(|e| DropReason::Reject(format!("malformed transactions: {e}")))?;
            if txs.is_empty() || txs.len() > MAX_GOSSIP_TXS {
                return Err(DropReason::Reject(format!(
                    "{} transactions in one message (1 to {MAX_GOSSIP_TXS})",
                    txs.len()
                )));
            }
            // Every size first (cheap), then the signatures: one bad transaction rejects
            // the message, whose publisher vouched for all of it.
            for tx in &txs {
                mempool::check_size(&tx.tx.body, ledger::encode(tx).len())
                    .map_err(|e| DropReason::Reject(e.to_string()))?;
            }
            let mut sigs = view.sigs.lock().unwrap_or_else(|e| e.into_inner());
            for tx in &txs {
                sigs.verify(tx, chain_id)
                    .map_err(|e| DropReason::Reject(format!("transaction: {e}")))?;
            }
            Ok(())
        }
        other => Err(DropReason::Ignore(format!("unknown topic {other}"))),
    }
}

/// The [`TX_TOPIC`] messages that carry `txs`, in order: at most [`MAX_GOSSIP_TXS`]
/// transactions and about [`GOSSIP_TX_BYTES`] each.
pub fn tx_messages(txs: &[SignedTx]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk: Vec<&SignedTx> = Vec::new();
    let mut bytes = 0usize;
    for tx in txs {
        let size = ledger::encode(tx).len();
        if !chunk.is_empty()
            && (chunk.len() >= MAX_GOSSIP_TXS || bytes.saturating_add(size) > GOSSIP_TX_BYTES)
        {
            out.push(ledger::encode(&chunk));
            chunk.clear();
            bytes = 0;
        }
        chunk.push(tx);
        bytes = bytes.saturating_add(size);
    }
    if !chunk.is_empty() {
        out.push(ledger::encode(&chunk));
    }
    out
}

fn check_consensus(
    view: &GossipView,
    chain_id: &str,
    encoded: &[u8],
    msg: &ConsensusMessage,
) -> Result<(), DropReason> {
    // The cheap checks first: heights (attacker-chosen: saturating arithmetic), size, the
    // signers; the signatures last, once per message.
    let height = view.height();
    let h = msg.height();
    if h.saturating_add(1) < height {
        return Err(DropReason::Ignore(format!(
            "height {h} is behind ours ({height})"
        )));
    }
    if h > height.saturating_add(MAX_HEIGHTS_AHEAD) {
        return Err(DropReason::Ignore(format!(
            "height {h} is more than {MAX_HEIGHTS_AHEAD} ahead of ours ({height})"
        )));
    }
    if let ConsensusMessage::Proposal(p) = msg {
        if p.block.txs.len() > seedfed_protocol::ledger::MAX_TXS_PER_BLOCK {
            return Err(DropReason::Reject(format!(
                "proposed block has {} transactions",
                p.block.txs.len()
            )));
        }
    }
    let signers = msg.signers();
    if signers.is_empty() {
        return Err(DropReason::Reject("a certificate with no signature".into()));
    }
    // Not a validator in our view: a peer at another height may hold another validator
    // set and forward it in good faith, so no penalty; but it goes no further.
    if let Some(m) = signers.iter().find(|m| !view.is_validator(m)) {
        return Err(DropReason::Ignore(format!("{m} is not a validator")));
    }
    let mut seen = view
        .consensus_seen
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // Lock order: `consensus_seen`, then `votes` (taken nowhere else).
    let mut votes = view.votes.lock().unwrap_or_else(|e| e.into_inner());
    let mut verify =
        |m: &MemberId, digest: &[u8; 32], s: &ledger::Signature64| votes.verify_vote(m, digest, s);
    match seen.check_new("consensus gossip", &[chain_id.as_bytes(), encoded], || {
        msg.check_signatures_with(chain_id, &mut verify)
    }) {
        Ok(true) => Ok(()),
        Ok(false) => Err(DropReason::Ignore("passed before (a replay)".into())),
        Err(what) => Err(DropReason::Reject(format!("{what} does not verify"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seedfed_protocol::ledger::Signature64;
    use seedfed_protocol::ledger::{VoteKind, VoteRecord};

    fn peer() -> (PeerId, MemberId) {
        let kp = libp2p::identity::Keypair::generate_ed25519();
        let p = kp.public().to_peer_id();
        (p, member_of(&p).unwrap())
    }

    /// A validator's key and identity.
    fn validator(seed: u8) -> (ed25519_dalek::SigningKey, MemberId) {
        let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let id = MemberId(key.verifying_key().to_bytes());
        (key, id)
    }

    /// The vote of `key` at `height` on chain `"c"`, as gossiped.
    fn vote(key: &ed25519_dalek::SigningKey, height: u64) -> Vec<u8> {
        use ed25519_dalek::Signer;
        let mut v = VoteRecord {
            height,
            round: 0,
            kind: VoteKind::Prevote,
            value: None,
            validator: MemberId(key.verifying_key().to_bytes()),
            signature: Signature64([0; 64]),
        };
        v.signature = Signature64(key.sign(&v.digest("c")).to_bytes());
        consensus_gossip(&ConsensusMessage::Vote(v))
    }

    #[test]
    fn peer_ids_and_members_convert_both_ways() {
        let (p, m) = peer();
        assert_eq!(peer_of(&m), Some(p));
        let rsa_like = PeerId::random();
        assert_eq!(member_of(&rsa_like), None);
    }

    /// Only an identity multihash names a key. Before, the first two bytes were cut off
    /// whatever the code, so a SHA-256 peer id whose digest bytes held an encoded Ed25519 key
    /// passed for that key's member.
    #[test]
    fn member_of_decodes_the_multihash() {
        use libp2p::multihash::Multihash;
        let kp = libp2p::identity::Keypair::generate_ed25519();
        let protobuf = kp.public().encode_protobuf();
        let identity = PeerId::from_multihash(Multihash::wrap(0x00, &protobuf).unwrap()).unwrap();
        let m = member_of(&identity).unwrap();
        assert_eq!(
            m.0.to_vec(),
            kp.public().try_into_ed25519().unwrap().to_bytes()
        );
        assert_eq!(identity, kp.public().to_peer_id());
        let hashed = PeerId::from_multihash(Multihash::wrap(0x12, &protobuf).unwrap()).unwrap();
        assert_eq!(hashed.to_bytes()[2..], protobuf[..]);
        assert_eq!(member_of(&hashed), None);
        // An identity multihash of something that is not a protobuf Ed25519 key.
        let junk = PeerId::from_multihash(Multihash::wrap(0x00, &[8, 1, 18, 3, 1, 2, 3]).unwrap())
            .unwrap();
        assert_eq!(member_of(&junk), None);
    }

    /// A transaction signer.
    fn signer() -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng)
    }

    fn publish_tx(key: &ed25519_dalek::SigningKey, nonce: u64, len: usize) -> SignedTx {
        use seedfed_protocol::ledger::{Tx, TxBody};
        Tx {
            author: MemberId(key.verifying_key().to_bytes()),
            nonce,
            body: TxBody::SignaturePublish {
                leaf: 0,
                signature: vec![1; len],
            },
        }
        .sign("chain", key)
    }

    #[test]
    fn transactions_over_their_size_cap_are_rejected_before_the_signature_check() {
        // Before: any validly signed transaction up to the gossip cap was forwarded.
        let key = signer();
        let tx = |len: usize| ledger::encode(&vec![publish_tx(&key, 0, len)]);
        let view = GossipView::default();
        assert_eq!(check_gossip(&view, "chain", TX_TOPIC, &tx(1000)), Ok(()));
        let big = tx(mempool::PAYLOAD_TX_CAP);
        let e = check_gossip(&view, "chain", TX_TOPIC, &big).unwrap_err();
        assert!(matches!(e, DropReason::Reject(_)), "{e:?}");
        assert!(e.reason().contains("SignaturePublish"), "{e:?}");
        assert!(e.reason().contains("cap"), "{e:?}");
    }

    #[test]
    fn transactions_travel_in_batches_and_one_bad_one_rejects_its_batch() {
        let key = signer();
        let view = GossipView::default();
        let txs: Vec<SignedTx> = (0..2500).map(|n| publish_tx(&key, n, 10)).collect();
        let messages = tx_messages(&txs);
        assert_eq!(messages.len(), 3, "1024 + 1024 + 452");
        let mut back = Vec::new();
        for m in &messages {
            assert_eq!(check_gossip(&view, "chain", TX_TOPIC, m), Ok(()));
            back.extend(ledger::decode::<Vec<SignedTx>>(m).unwrap());
        }
        assert_eq!(back, txs, "every transaction, in order");
        // Large transactions split by bytes; one over the byte target travels alone.
        let large: Vec<SignedTx> = (0..4).map(|n| publish_tx(&key, n, 200_000)).collect();
        assert_eq!(tx_messages(&large).len(), 2);
        let huge = vec![publish_tx(&key, 0, GOSSIP_TX_BYTES)];
        assert_eq!(tx_messages(&huge).len(), 1);
        assert!(tx_messages(&[]).is_empty());

        // One forged signature rejects the whole message.
        let mut forged = txs[..5].to_vec();
        forged[3].signature.0[0] ^= 1;
        let e = check_gossip(&view, "chain", TX_TOPIC, &ledger::encode(&forged)).unwrap_err();
        assert!(matches!(e, DropReason::Reject(_)), "{e:?}");
        // Empty and overfull messages are rejected.
        let none: Vec<SignedTx> = Vec::new();
        let e = check_gossip(&view, "chain", TX_TOPIC, &ledger::encode(&none)).unwrap_err();
        assert!(e.reason().contains("0 transactions"), "{e:?}");
        let e = check_gossip(
            &view,
            "chain",
            TX_TOPIC,
            &ledger::encode(&txs[..MAX_GOSSIP_TXS + 1].to_vec()),
        )
        .unwrap_err();
        assert!(e.reason().contains("1025 transactions"), "{e:?}");
    }

    /// A node re-gossips its pending transactions in new batches; before, every peer verified
    /// every signature of every batch again (seen under a signing burst: most of a node's gossip
    /// time). Now a transaction verified once is not verified again, and a changed signature
    /// still is.
    #[test]
    fn a_transaction_verified_once_is_not_verified_again_in_another_batch() {
        let key = signer();
        let view = GossipView::default();
        let txs: Vec<SignedTx> = (0..5).map(|n| publish_tx(&key, n, 10)).collect();
        let check = |batch: &[SignedTx]| {
            check_gossip(&view, "chain", TX_TOPIC, &ledger::encode(&batch.to_vec()))
        };
        assert_eq!(check(&txs[..4]), Ok(()));
        assert_eq!(view.sig_checks(), 4);
        assert_eq!(check(&txs[1..]), Ok(()));
        assert_eq!(view.sig_checks(), 5, "only the new one");
        let mut forged = txs[2].clone();
        forged.signature.0[0] ^= 1;
        assert!(check(&[txs[0].clone(), forged]).is_err());
        let other_chain = ledger::encode(&vec![txs[0].clone()]);
        assert!(check_gossip(&view, "other", TX_TOPIC, &other_chain).is_err());
    }

    #[test]
    fn gossip_checks_drop_bad_messages_with_a_reason() {
        let (ka, ma) = validator(1);
        let (_, mb) = validator(2);
        let (ko, mo) = validator(3);
        let view = GossipView::new(10, [(ma, 1), (mb, 1)].into_iter().collect());
        let c = "c";
        assert_eq!(
            check_gossip(&view, c, CONSENSUS_TOPIC, &vote(&ka, 10)),
            Ok(())
        );
        // Malformed bytes, and a payload too short for its publication number.
        for bad in [&[0xff, 0x00, 0x13, 0, 0, 0, 0, 0, 0, 0, 0][..], &[1, 2][..]] {
            let e = check_gossip(&view, c, CONSENSUS_TOPIC, bad).unwrap_err();
            assert!(matches!(e, DropReason::Reject(_)), "{e:?}");
        }
        // A vote by a non-validator: dropped, without a penalty (a peer with another
        // validator set may forward it in good faith).
        let e = check_gossip(&view, c, CONSENSUS_TOPIC, &vote(&ko, 10)).unwrap_err();
        assert!(matches!(e, DropReason::Ignore(_)) && e.reason().contains("not a validator"));
        // A vote in a validator's name that it did not sign, or signed for another chain.
        let (forger, _) = validator(4);
        let mut forged: VoteRecord = match open_consensus_gossip(&vote(&forger, 10)).unwrap().1 {
            ConsensusMessage::Vote(v) => v,
            other => panic!("{other:?}"),
        };
        forged.validator = mb;
        let e = check_gossip(
            &view,
            c,
            CONSENSUS_TOPIC,
            &consensus_gossip(&ConsensusMessage::Vote(forged)),
        )
        .unwrap_err();
        assert!(matches!(e, DropReason::Reject(_)) && e.reason().contains("does not verify"));
        let e = check_gossip(&view, "other", CONSENSUS_TOPIC, &vote(&ka, 11)).unwrap_err();
        assert!(matches!(e, DropReason::Reject(_)), "{e:?}");
        // Wrong heights: stale and far ahead are ignored, not penalised.
        let e = check_gossip(&view, c, CONSENSUS_TOPIC, &vote(&ka, 3)).unwrap_err();
        assert!(matches!(e, DropReason::Ignore(_)), "{e:?}");
        let e = check_gossip(
            &view,
            c,
            CONSENSUS_TOPIC,
            &vote(&ka, 10 + MAX_HEIGHTS_AHEAD + 1),
        )
        .unwrap_err();
        assert!(matches!(e, DropReason::Ignore(_)), "{e:?}");
        // The previous height is still accepted (late precommits help the last commit).
        assert_eq!(
            check_gossip(&view, c, CONSENSUS_TOPIC, &vote(&ka, 9)),
            Ok(())
        );
        // Transactions: malformed and unsigned are rejected.
        let e = check_gossip(&view, c, TX_TOPIC, b"nope").unwrap_err();
        assert!(matches!(e, DropReason::Reject(_)));
        // Membership changes reach the view.
        view.update(11, [(mo, 1)].into_iter().collect());
        assert_eq!(
            check_gossip(&view, c, CONSENSUS_TOPIC, &vote(&ko, 11)),
            Ok(())
        );
    }

    /// Each publication of a message is a new gossip message (its number is drawn afresh, and
    /// ids hash the bytes), so a re-broadcast reaches peers that missed it; a node that passed
    /// the message before drops it unforwarded and does not check its signature again.
    #[test]
    fn a_message_passed_once_is_dropped_when_published_again() {
        let (ka, ma) = validator(1);
        let view = GossipView::new(10, [(ma, 1)].into_iter().collect());
        let first = vote(&ka, 10);
        let (encoded, message) = open_consensus_gossip(&first).unwrap();
        assert_eq!(encoded, ledger::encode(&message));
        let again = consensus_gossip(&message);
        assert_ne!(first, again);
        assert_eq!(check_gossip(&view, "c", CONSENSUS_TOPIC, &first), Ok(()));
        let checks = view.consensus_seen.lock().unwrap().checks();
        let e = check_gossip(&view, "c", CONSENSUS_TOPIC, &again).unwrap_err();
        assert!(matches!(e, DropReason::Ignore(_)) && e.reason().contains("passed before"));
        assert_eq!(view.consensus_seen.lock().unwrap().checks(), checks);
        // Another view (another node) passes the re-broadcast it missed.
        let other = GossipView::new(10, [(ma, 1)].into_iter().collect());
        assert_eq!(check_gossip(&other, "c", CONSENSUS_TOPIC, &again), Ok(()));
    }

    /// A round certificate of votes this node verified alone costs no signature check; one
    /// forged vote among remembered ones still rejects it. Before, every certificate (up to
    /// `n` votes, re-sent while a round stalls) was verified whole: at 64 validators the
    /// gossip check took a third of every node's CPU and the first height never decided.
    #[test]
    fn votes_verified_once_are_not_verified_again_inside_certificates() {
        use seedfed_protocol::consensus::RoundMessage;
        let keys: Vec<_> = (1..=4).map(validator).collect();
        let view = GossipView::new(10, keys.iter().map(|(_, m)| (*m, 1)).collect());
        let signed = |k: &ed25519_dalek::SigningKey| {
            let (_, m) = open_consensus_gossip(&vote(k, 10)).unwrap();
            match m {
                ConsensusMessage::Vote(v) => v,
                other => panic!("{other:?}"),
            }
        };
        let votes: Vec<VoteRecord> = keys.iter().map(|(k, _)| signed(k)).collect();
        for v in &votes {
            let alone = consensus_gossip(&ConsensusMessage::Vote(v.clone()));
            assert_eq!(check_gossip(&view, "c", CONSENSUS_TOPIC, &alone), Ok(()));
        }
        let checks = || view.votes.lock().unwrap().checks();
        assert_eq!(checks(), 4);
        let certificate = |votes: &[VoteRecord]| {
            consensus_gossip(&ConsensusMessage::Round(RoundMessage {
                height: 10,
                round: 0,
                precommit: false,
                votes: votes
                    .iter()
                    .map(|v| (v.validator, v.kind, v.value, v.signature))
                    .collect(),
            }))
        };
        assert_eq!(
            check_gossip(&view, "c", CONSENSUS_TOPIC, &certificate(&votes)),
            Ok(())
        );
        assert_eq!(checks(), 4, "the certificate's votes were verified again");
        // One forged signature among three remembered ones: rejected, and not remembered.
        let mut forged = votes.clone();
        forged[3].signature.0[5] ^= 1;
        let e = check_gossip(&view, "c", CONSENSUS_TOPIC, &certificate(&forged)).unwrap_err();
        assert!(matches!(e, DropReason::Reject(_)), "{e:?}");
        assert_eq!(checks(), 5);
        let e = check_gossip(&view, "c", CONSENSUS_TOPIC, &certificate(&forged)).unwrap_err();
        assert!(matches!(e, DropReason::Reject(_)), "{e:?}");
        // Another node (a cold cache) accepts the same certificate by checking every vote.
        let other = GossipView::new(10, keys.iter().map(|(_, m)| (*m, 1)).collect());
        assert_eq!(
            check_gossip(&other, "c", CONSENSUS_TOPIC, &certificate(&votes)),
            Ok(())
        );
        assert_eq!(other.votes.lock().unwrap().checks(), 4);
    }

    #[test]
    fn hostile_heights_are_judged_without_overflow() {
        // Before: `h + 1` ran first, so a height of u64::MAX from anyone overflowed (a panic
        // in debug builds, a wrap to 0 in release).
        let (ka, ma) = validator(1);
        let (ko, _) = validator(3);
        let view = GossipView::new(10, [(ma, 1)].into_iter().collect());
        for key in [&ko, &ka] {
            let e = check_gossip(&view, "c", CONSENSUS_TOPIC, &vote(key, u64::MAX)).unwrap_err();
            assert!(matches!(e, DropReason::Ignore(_)), "{e:?}");
        }
        let far = GossipView::new(u64::MAX, [(ma, 1)].into_iter().collect());
        assert_eq!(
            check_gossip(&far, "c", CONSENSUS_TOPIC, &vote(&ka, u64::MAX)),
            Ok(())
        );
    }
}
