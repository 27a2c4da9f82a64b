//! What the chain driver sends over the network, and the checks gossip must pass before it is
//! forwarded: gossip topics [`CONSENSUS_TOPIC`] (`ledger::encode(ConsensusMessage)`) and
//! [`TX_TOPIC`] (`ledger::encode(Vec<SignedTx>)`: [`tx_messages`] packs transactions so that
//! a batch costs one gossip signature, not one per transaction), and point-to-point [`ChainRequest`] and
//! [`ChainResponse`], encoded the same way.
//!
//! Guarantees: [`check_gossip`] is a pure function of the message, its libp2p author and a
//! [`GossipView`] of the chain (validator set and height), so that a malformed message, a vote
//! or proposal from a non-validator, a message signed in someone else's name, a message far
//! from our height, an oversized block and a transaction over its kind's size cap
//! ([`mempool::size_cap`](super::mempool::size_cap())) are dropped with a reason before they
//! reach consensus or cost other peers bandwidth.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use libp2p::PeerId;
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
    /// An epoch-protocol payload (a DKG round-2 envelope) for the recipient's agent.
    Direct(Vec<u8>),
    /// The sender's own votes at `height`, the height it decides and has been stuck at; the
    /// answer is [`ChainResponse::Votes`] (`vote_exchange`).
    Votes {
        /// The height.
        height: u64,
        /// The sender's votes there.
        votes: Vec<seedfed_protocol::ledger::VoteRecord>,
    },
}

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
        Arc::new(move |author: &PeerId, topic: &str, data: &[u8]| {
            match check_gossip(&view, &chain_id, author, topic, data) {
                Ok(()) => GossipVerdict::Accept,
                Err(why) => {
                    view.dropped.fetch_add(1, Ordering::Relaxed);
                    debug!(%author, topic, reason = why.reason(), "gossip dropped");
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

/// Checks one gossip message on `topic` published by `author`.
pub fn check_gossip(
    view: &GossipView,
    chain_id: &str,
    author: &PeerId,
    topic: &str,
    data: &[u8],
) -> Result<(), DropReason> {
    let Some(author) = member_of(author) else {
        return Err(DropReason::Reject(
            "author is not an Ed25519 identity".into(),
        ));
    };
    match topic {
        CONSENSUS_TOPIC => {
            let msg: ConsensusMessage = ledger::decode(data)
                .map_err(|e| DropReason::Reject(format!("malformed consensus message: {e}")))?;
            check_consensus(view, &author, &msg)
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
    author: &MemberId,
    msg: &ConsensusMessage,
) -> Result<(), DropReason> {
    // The sender first: nothing a non-validator sends is looked at further.
    if !view.is_validator(author) {
        return Err(DropReason::Reject(format!("{author} is not a validator")));
    }
    let height = view.height();
    let h = msg.height();
    // Heights are attacker-chosen: saturating arithmetic, never an overflow.
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
    match msg {
        ConsensusMessage::Vote(v) if v.validator != *author => Err(DropReason::Reject(format!(
            "vote by {} published by {author}",
            v.validator
        ))),
        ConsensusMessage::Proposal(p) if p.proposer != *author => Err(DropReason::Reject(format!(
            "proposal by {} published by {author}",
            p.proposer
        ))),
        ConsensusMessage::Proposal(p)
            if p.block.txs.len() > seedfed_protocol::ledger::MAX_TXS_PER_BLOCK =>
        {
            Err(DropReason::Reject(format!(
                "proposed block has {} transactions",
                p.block.txs.len()
            )))
        }
        _ => Ok(()),
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

    fn vote(voter: MemberId, height: u64) -> Vec<u8> {
        ledger::encode(&ConsensusMessage::Vote(VoteRecord {
            height,
            round: 0,
            kind: VoteKind::Prevote,
            value: None,
            validator: voter,
            signature: Signature64([0; 64]),
        }))
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

    /// A libp2p identity and the same key as a transaction signer.
    fn signer() -> (PeerId, ed25519_dalek::SigningKey) {
        let kp = libp2p::identity::Keypair::generate_ed25519();
        let secret: [u8; 32] = kp
            .clone()
            .try_into_ed25519()
            .unwrap()
            .secret()
            .as_ref()
            .try_into()
            .unwrap();
        (
            kp.public().to_peer_id(),
            ed25519_dalek::SigningKey::from_bytes(&secret),
        )
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
        let (author, key) = signer();
        let tx = |len: usize| ledger::encode(&vec![publish_tx(&key, 0, len)]);
        let view = GossipView::default();
        assert_eq!(
            check_gossip(&view, "chain", &author, TX_TOPIC, &tx(1000)),
            Ok(())
        );
        let big = tx(mempool::PAYLOAD_TX_CAP);
        let e = check_gossip(&view, "chain", &author, TX_TOPIC, &big).unwrap_err();
        assert!(matches!(e, DropReason::Reject(_)), "{e:?}");
        assert!(e.reason().contains("SignaturePublish"), "{e:?}");
        assert!(e.reason().contains("cap"), "{e:?}");
    }

    #[test]
    fn transactions_travel_in_batches_and_one_bad_one_rejects_its_batch() {
        let (author, key) = signer();
        let view = GossipView::default();
        let txs: Vec<SignedTx> = (0..2500).map(|n| publish_tx(&key, n, 10)).collect();
        let messages = tx_messages(&txs);
        assert_eq!(messages.len(), 3, "1024 + 1024 + 452");
        let mut back = Vec::new();
        for m in &messages {
            assert_eq!(check_gossip(&view, "chain", &author, TX_TOPIC, m), Ok(()));
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
        let e =
            check_gossip(&view, "chain", &author, TX_TOPIC, &ledger::encode(&forged)).unwrap_err();
        assert!(matches!(e, DropReason::Reject(_)), "{e:?}");
        // Empty and overfull messages are rejected.
        let none: Vec<SignedTx> = Vec::new();
        let e =
            check_gossip(&view, "chain", &author, TX_TOPIC, &ledger::encode(&none)).unwrap_err();
        assert!(e.reason().contains("0 transactions"), "{e:?}");
        let e = check_gossip(
            &view,
            "chain",
            &author,
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
        let (author, key) = signer();
        let view = GossipView::default();
        let txs: Vec<SignedTx> = (0..5).map(|n| publish_tx(&key, n, 10)).collect();
        let check = |batch: &[SignedTx]| {
            check_gossip(
                &view,
                "chain",
                &author,
                TX_TOPIC,
                &ledger::encode(&batch.to_vec()),
            )
        };
        assert_eq!(check(&txs[..4]), Ok(()));
        assert_eq!(view.sig_checks(), 4);
        assert_eq!(check(&txs[1..]), Ok(()));
        assert_eq!(view.sig_checks(), 5, "only the new one");
        let mut forged = txs[2].clone();
        forged.signature.0[0] ^= 1;
        assert!(check(&[txs[0].clone(), forged]).is_err());
        let other_chain = ledger::encode(&vec![txs[0].clone()]);
        assert!(check_gossip(&view, "other", &author, TX_TOPIC, &other_chain).is_err());
    }

    #[test]
    fn gossip_checks_drop_bad_messages_with_a_reason() {
        let (a, ma) = peer();
        let (b, mb) = peer();
        let (outsider, mo) = peer();
        let view = GossipView::new(10, [(ma, 1), (mb, 1)].into_iter().collect());
        let c = "chain";
        assert_eq!(
            check_gossip(&view, c, &a, CONSENSUS_TOPIC, &vote(ma, 10)),
            Ok(())
        );
        // Malformed bytes.
        let e = check_gossip(&view, c, &a, CONSENSUS_TOPIC, &[0xff, 0x00, 0x13]).unwrap_err();
        assert!(matches!(e, DropReason::Reject(_)), "{e:?}");
        // A vote from a non-validator.
        let e = check_gossip(&view, c, &outsider, CONSENSUS_TOPIC, &vote(mo, 10)).unwrap_err();
        assert!(e.reason().contains("not a validator"), "{e:?}");
        // A vote in someone else's name.
        let e = check_gossip(&view, c, &b, CONSENSUS_TOPIC, &vote(ma, 10)).unwrap_err();
        assert!(matches!(e, DropReason::Reject(_)) && e.reason().contains("published by"));
        // Wrong heights: stale and far ahead are ignored, not penalised.
        let e = check_gossip(&view, c, &a, CONSENSUS_TOPIC, &vote(ma, 3)).unwrap_err();
        assert!(matches!(e, DropReason::Ignore(_)), "{e:?}");
        let e = check_gossip(
            &view,
            c,
            &a,
            CONSENSUS_TOPIC,
            &vote(ma, 10 + MAX_HEIGHTS_AHEAD + 1),
        )
        .unwrap_err();
        assert!(matches!(e, DropReason::Ignore(_)), "{e:?}");
        // The previous height is still accepted (late precommits help the last commit).
        assert_eq!(
            check_gossip(&view, c, &a, CONSENSUS_TOPIC, &vote(ma, 9)),
            Ok(())
        );
        // Transactions: malformed and unsigned are rejected.
        let e = check_gossip(&view, c, &a, TX_TOPIC, b"nope").unwrap_err();
        assert!(matches!(e, DropReason::Reject(_)));
        // Membership changes reach the view.
        view.update(11, [(mo, 1)].into_iter().collect());
        assert_eq!(
            check_gossip(&view, c, &outsider, CONSENSUS_TOPIC, &vote(mo, 11)),
            Ok(())
        );
    }

    #[test]
    fn hostile_heights_are_judged_after_the_sender_without_overflow() {
        // Before: `h + 1` ran first, so a height of u64::MAX from anyone overflowed (a panic
        // in debug builds, a wrap to 0 in release).
        let (a, ma) = peer();
        let (outsider, mo) = peer();
        let view = GossipView::new(10, [(ma, 1)].into_iter().collect());
        let e =
            check_gossip(&view, "c", &outsider, CONSENSUS_TOPIC, &vote(mo, u64::MAX)).unwrap_err();
        assert!(matches!(e, DropReason::Reject(_)), "{e:?}");
        assert!(e.reason().contains("not a validator"), "{e:?}");
        let e = check_gossip(&view, "c", &a, CONSENSUS_TOPIC, &vote(ma, u64::MAX)).unwrap_err();
        assert!(matches!(e, DropReason::Ignore(_)), "{e:?}");
        let far = GossipView::new(u64::MAX, [(ma, 1)].into_iter().collect());
        assert_eq!(
            check_gossip(&far, "c", &a, CONSENSUS_TOPIC, &vote(ma, u64::MAX)),
            Ok(())
        );
    }
}
