//! The node as a signing service: a client's signed request from the local API (`POST /sign`)
//! is checked against the tip, relayed in a `SignRequest` transaction of ours, and answered
//! once the ledger has published the signature of the leaf it allocated (the agent's
//! `sign` duties rebuild the one-time key, sign and publish). In key issuance mode the answer
//! is the client's bundle (`issue::IssueBundle`: the contributions sealed to the client, the
//! commitment and the path) once the quorum's contributions are in; the client signs itself
//! and may publish its signature through `POST /sign/publish`; a bundle that does not combine
//! it blames through `POST /sign/blame` (this node submits the evidence after judging it as the
//! ledger will) and takes the next attempt's from `GET /sign/bundle/{leaf}`. Guarantees: a request the ledger
//! would refuse is answered with the ledger's reason before anything is relayed; a relayed
//! request is answered exactly once: with the published signature, with the reason the ledger
//! stopped accepting it before allocating a leaf, or not at all if the caller gave up (the
//! API's timeout); a leaf is allocated only by the ledger, once.

use std::collections::BTreeMap;
use std::time::Instant;

use seedfed_protocol::issue::IssueBundle;
use seedfed_protocol::ledger::{Block, LedgerState, SignRequestRecord, SignedRequest, TxBody};
use seedfed_protocol::member::MemberId;
use seedfed_protocol::reconstruct::blame::BlameEvidence;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tracing::{debug, info};

use super::driver::Driver;

/// Most relayed requests waiting for their signature at once; more are refused (retry later).
pub const MAX_SIGN_WAITERS: usize = 8192;

/// A client's request handed to the driver by the local API, with where the answer goes.
#[derive(Debug)]
pub struct SignSubmission {
    /// The client-signed request.
    pub request: SignedRequest,
    /// The published signature, or why there is none.
    pub reply: oneshot::Sender<Result<SignOutcome, SignRefused>>,
}

/// A published signature, as `POST /sign` returns it (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignOutcome {
    /// The leaf (one-time key) the ledger allocated.
    pub leaf: u64,
    /// The signed digest (hex).
    pub digest: String,
    /// The RFC 8554 HSS (L=1) signature (hex); empty in key issuance mode, where the client
    /// signs itself with `bundle`.
    pub signature: String,
    /// Key issuance mode: the `issue::IssueBundle` (canonical encoding, hex) the client opens
    /// with its X25519 secret to rebuild the one-time key and sign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    /// Height of the block that allocated the leaf.
    pub allocated_at: u64,
    /// Height of the block that published the signature.
    pub signed_at: u64,
    /// From the request reaching this node to the signature decided, in milliseconds.
    pub latency_ms: u64,
}

/// Why a request got no signature.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignRefused {
    /// The ledger refuses the request (unauthorized, stale, replayed, over quota).
    #[error("the ledger refuses the request: {0}")]
    Ledger(String),
    /// No key has a leaf to allocate now (none generated or endorsed yet, or every endorsed
    /// key spent while the next one is generated).
    #[error("no key can sign now: {0}")]
    NoKey(String),
    /// Too many requests wait on this node.
    #[error("{0} requests are waiting on this node; try again later")]
    Busy(usize),
    /// The same request is already waiting on this node.
    #[error("this request is already waiting on this node")]
    Duplicate,
}

impl SignRefused {
    /// Whether sending the same request again later can succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, SignRefused::Busy(_) | SignRefused::NoKey(_))
    }
}

/// A relayed request waiting for its leaf and signature.
#[derive(Debug)]
pub(super) struct Waiter {
    reply: oneshot::Sender<Result<SignOutcome, SignRefused>>,
    since: Instant,
    request: SignedRequest,
    /// The leaf and the height that allocated it, once on the ledger.
    leaf: Option<(u64, u64)>,
}

/// Requests by (client, epoch, nonce): what names a request on the ledger.
pub(super) type Waiters = BTreeMap<(MemberId, u64, u64), Waiter>;

fn key_of(r: &SignedRequest) -> (MemberId, u64, u64) {
    (r.request.client, r.request.epoch, r.request.nonce)
}

/// `POST /sign/publish`: a signature a client made with an issued leaf, to publish on the
/// ledger through this node.
#[derive(Debug)]
pub struct PublishSubmission {
    /// The leaf.
    pub leaf: u64,
    /// Its one-level HSS signature.
    pub signature: Vec<u8>,
    /// Relayed, or why not.
    pub reply: oneshot::Sender<Result<(), SignRefused>>,
}

/// `POST /sign/blame`: a key issuance client's evidence against a contribution in its bundle
/// (`issue::blame_issued`), for this node (the leaf's relay) to put on the ledger.
#[derive(Debug)]
pub struct BlameSubmission {
    /// The leaf.
    pub leaf: u64,
    /// The evidence (boxed: it is much larger than the other submissions).
    pub evidence: Box<BlameEvidence>,
    /// The members it convicts (hex), once submitted in a `SignBlame` of ours, or why not.
    pub reply: oneshot::Sender<Result<Vec<String>, SignRefused>>,
}

/// `GET /sign/bundle/{leaf}`: the current attempt's bundle of an issued leaf this node relays.
#[derive(Debug)]
pub struct BundleQuery {
    /// The leaf.
    pub leaf: u64,
    /// The bundle (`None`: not ready: contributions missing, or an attempt whose members
    /// dispute their masks), or why there is none to wait for.
    pub reply: oneshot::Sender<Result<Option<IssueBundle>, SignRefused>>,
}

/// The request of allocated, unsigned `leaf`, or why there is none.
fn unsigned_request(st: &LedgerState, leaf: u64) -> Result<&SignRequestRecord, String> {
    let request = st
        .sign_requests
        .get(&leaf)
        .ok_or_else(|| format!("leaf {leaf} is not allocated"))?;
    if st.signatures.contains_key(&leaf) {
        return Err(format!("leaf {leaf} is already signed"));
    }
    Ok(request)
}

impl Driver {
    /// The relay of an issued, unsigned `leaf` is us, or why not.
    fn our_issued_leaf(&self, leaf: u64) -> Result<(), SignRefused> {
        let request =
            unsigned_request(&self.consensus.ledger().state, leaf).map_err(SignRefused::Ledger)?;
        if request.issue_to.is_none() || request.requester != self.me {
            return Err(SignRefused::Ledger(format!(
                "leaf {leaf} is not issued to a client through this node"
            )));
        }
        Ok(())
    }

    /// A client's blame of a contribution to its issued leaf: judged as the ledger will
    /// (`LedgerState::judge_sign_blame`), then submitted in a `SignBlame` of ours.
    pub(super) fn on_blame_submission(&mut self, sub: BlameSubmission) {
        let judged = self.our_issued_leaf(sub.leaf).and_then(|()| {
            self.consensus
                .ledger()
                .state
                .judge_sign_blame(sub.leaf, &sub.evidence)
                .map_err(|e| SignRefused::Ledger(e.to_string()))
        });
        let answer = judged.map(|(convicted, reason, _)| {
            info!(leaf = sub.leaf, reason, "a client's blame, submitted");
            self.sign_and_publish(TxBody::SignBlame {
                leaf: sub.leaf,
                evidence: sub.evidence,
            });
            convicted
                .iter()
                .map(|m| hex::encode(m.as_bytes()))
                .collect()
        });
        let _ = sub.reply.send(answer);
    }

    /// The current attempt's bundle of an issued leaf we relay.
    pub(super) fn on_bundle_query(&self, q: BundleQuery) {
        let answer = self.our_issued_leaf(q.leaf).map(|()| {
            self.agent
                .issue_bundle(&self.consensus.ledger().state, q.leaf)
        });
        let _ = q.reply.send(answer);
    }

    /// A client's signature with an issued leaf: checked as the ledger will (the leaf is
    /// allocated and unsigned, the signature is for it and verifies on the request's digest
    /// under the master key), then published in a `SignaturePublish` of ours.
    pub(super) fn on_publish_submission(&mut self, sub: PublishSubmission) {
        let st = &self.consensus.ledger().state;
        let checked = (|| {
            let request = unsigned_request(st, sub.leaf)?;
            let sig = seedfed_protocol::lms::LmsSignature::decode_hss(&sub.signature)
                .map_err(|e| format!("malformed signature: {e}"))?;
            if u64::from(sig.q) != sub.leaf {
                return Err(format!("a signature of leaf {}, not {}", sig.q, sub.leaf));
            }
            let public = st
                .master_public_key()
                .ok_or_else(|| "the master root is not final".to_string())?;
            public
                .verify(&request.digest, &sig)
                .map_err(|e| format!("the signature does not verify: {e}"))
        })();
        match checked {
            Ok(()) => {
                self.sign_and_publish(TxBody::SignaturePublish {
                    leaf: sub.leaf,
                    signature: sub.signature,
                });
                let _ = sub.reply.send(Ok(()));
            }
            Err(e) => {
                let _ = sub.reply.send(Err(SignRefused::Ledger(e)));
            }
        }
    }

    /// A request from the local API: checked against the tip, relayed, remembered.
    pub(super) fn on_sign_submission(&mut self, sub: SignSubmission) {
        let st = &self.consensus.ledger().state;
        let checked = if let Err(e) = st.next_allocation() {
            Err(SignRefused::NoKey(e.to_string()))
        } else if self.sign_waiters.len() >= MAX_SIGN_WAITERS {
            Err(SignRefused::Busy(self.sign_waiters.len()))
        } else if self.sign_waiters.contains_key(&key_of(&sub.request)) {
            Err(SignRefused::Duplicate)
        } else {
            st.check_client_request(&self.me, &sub.request)
                .map_err(|e| SignRefused::Ledger(e.to_string()))
        };
        if let Err(e) = checked {
            let _ = sub.reply.send(Err(e));
            return;
        }
        debug!(client = %sub.request.request.client, "relaying a sign request");
        self.sign_and_publish(TxBody::SignRequest {
            request: sub.request.clone(),
        });
        self.sign_waiters.insert(
            key_of(&sub.request),
            Waiter {
                reply: sub.reply,
                since: Instant::now(),
                request: sub.request,
                leaf: None,
            },
        );
    }

    /// After a decided block: requests it allocated learn their leaf (a request whose leaf a
    /// `LeafMismatch` retired learns its new one, allocated at this height), requests whose
    /// leaf it signed are answered, requests the ledger no longer accepts are refused, and
    /// requests whose caller gave up are forgotten.
    pub(super) fn settle_sign_waiters(&mut self, block: &Block) {
        if self.sign_waiters.is_empty() {
            return;
        }
        let st = &self.consensus.ledger().state;
        // Leaves this block allocated to our relayed requests (the newest records).
        for (leaf, r) in st
            .sign_requests
            .iter()
            .rev()
            .take_while(|(_, r)| r.height == block.height)
        {
            if r.requester != self.me {
                continue;
            }
            if let Some(w) = self
                .sign_waiters
                .get_mut(&(r.client, r.request.0, r.request.1))
            {
                w.leaf = Some((*leaf, r.height));
            }
        }
        let mut done = Vec::new();
        let mut late = Vec::new();
        for (key, w) in &self.sign_waiters {
            if w.reply.is_closed() {
                done.push((*key, None));
                continue;
            }
            match w.leaf {
                Some((leaf, _)) if !st.sign_requests.contains_key(&leaf) => {
                    // A `LeafMismatch` retired its leaf and found no other to move it to.
                    done.push((
                        *key,
                        Some(Err(SignRefused::NoKey(format!(
                            "leaf {leaf} was retired and no leaf was left for the request"
                        )))),
                    ));
                }
                Some((leaf, allocated_at)) if w.request.request.issue_to.is_some() => {
                    if let Some(bundle) = self.agent.issue_bundle(st, leaf) {
                        info!(leaf, "issued leaf: bundle ready for the client");
                        done.push((
                            *key,
                            Some(Ok(SignOutcome {
                                leaf,
                                digest: hex::encode(w.request.request.digest),
                                signature: String::new(),
                                bundle: Some(hex::encode(seedfed_protocol::ledger::encode(
                                    &bundle,
                                ))),
                                allocated_at,
                                signed_at: block.height,
                                latency_ms: u64::try_from(w.since.elapsed().as_millis())
                                    .unwrap_or(u64::MAX),
                            })),
                        ));
                    }
                }
                Some((leaf, allocated_at)) => {
                    if let Some(sig) = st.signatures.get(&leaf) {
                        let elapsed = w.since.elapsed();
                        self.metrics.sign_latency(elapsed);
                        let latency_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
                        info!(leaf, latency_ms, "signature published");
                        done.push((
                            *key,
                            Some(Ok(SignOutcome {
                                leaf,
                                digest: hex::encode(w.request.request.digest),
                                signature: hex::encode(sig),
                                bundle: None,
                                allocated_at,
                                signed_at: block.height,
                                latency_ms,
                            })),
                        ));
                    }
                }
                None => {
                    if let Err(e) = st.check_client_request(&self.me, &w.request) {
                        // Refused now: because a block we did not see allocate it did (the
                        // nonce is used), or for good.
                        let allocated = st.sign_requests.iter().rev().find(|(_, r)| {
                            r.requester == self.me && (r.client, r.request.0, r.request.1) == *key
                        });
                        if let Some((leaf, r)) = allocated {
                            late.push((*key, (*leaf, r.height)));
                        } else {
                            done.push((*key, Some(Err(SignRefused::Ledger(e.to_string())))));
                        }
                    }
                }
            }
        }
        for (key, leaf) in late {
            if let Some(w) = self.sign_waiters.get_mut(&key) {
                w.leaf = Some(leaf);
            }
        }
        for (key, answer) in done {
            if let Some(w) = self.sign_waiters.remove(&key) {
                if let Some(a) = answer {
                    let _ = w.reply.send(a);
                }
            }
        }
    }
}
