//! The admission handshake on the swarm: a newly connected peer is sent our record and asked
//! for its own ([`EventLoop::ask_record`]); its request is answered with our record or a
//! refusal; a record verifies at the difficulty that peer must meet
//! ([`EventLoop::required_difficulty`]), and the peer is then admitted or rejected. The
//! bookkeeping (deadlines, bans, the admitted-peer table) is `AdmissionTracker`'s; this module
//! does what its verdicts mean for the swarm, discovery, the metrics and the node's events.

use std::time::Instant;

use libp2p::request_response;
use libp2p::PeerId;
use tracing::{debug, info, warn};

use super::EventLoop;
use crate::network::admission::{
    AdmissionRecord, AdmissionRejection, AdmissionRequest, AdmissionResponse,
};
use crate::network::admission_tracker::{Admission, Rejection};
use crate::network::rate::Inbound;
use crate::network::NetworkEvent;

impl EventLoop {
    /// The difficulty `peer`'s record must meet: the ledger's now, never below genesis; a
    /// ledger validator only the genesis one (its stake, not its proof, is what it paid, and
    /// the validators must stay connected while each solves its proof again after a raise),
    /// and so does a bootstrap node the operator configured.
    fn required_difficulty(&self, peer: &PeerId) -> u8 {
        match &self.ledger_difficulty {
            Some(ledger) if !(self.is_validator)(peer) && !self.bootstrap_peers.contains(peer) => {
                ledger().max(self.difficulty)
            }
            _ => self.difficulty,
        }
    }

    /// Sends `peer` our record, asking for its own.
    pub(super) fn ask_record(&mut self, peer: PeerId) {
        let req = AdmissionRequest(self.record.clone());
        self.swarm
            .behaviour_mut()
            .admission
            .send_request(&peer, req);
    }

    /// A message of the admission protocol: a peer's request (answered with our record or a
    /// refusal), its answer to ours, or our request lost.
    pub(super) fn on_admission(
        &mut self,
        ev: request_response::Event<AdmissionRequest, AdmissionResponse>,
    ) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    if !self.rates.allow(Inbound::Admission, &peer) {
                        debug!(%peer, "admission request over the peer's rate; dropped");
                        return; // dropping the channel fails the remote's request
                    }
                    let (resp, verdict) = if self.admission.is_banned(&peer, Instant::now()) {
                        (AdmissionResponse::Refused("banned".into()), None)
                    } else {
                        let need = self.required_difficulty(&peer);
                        match request.0.verify(&peer, &self.chain_id, need) {
                            Ok(()) => (
                                AdmissionResponse::Accepted(self.record.clone()),
                                Some(Ok(())),
                            ),
                            Err(reason) => (
                                AdmissionResponse::Refused(reason.to_string()),
                                Some(Err(reason)),
                            ),
                        }
                    };
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .admission
                        .send_response(channel, resp);
                    match verdict {
                        Some(Ok(())) => self.admit(peer, &request.0),
                        Some(Err(reason)) => self.reject(peer, reason),
                        None => {}
                    }
                }
                request_response::Message::Response { response, .. } => match response {
                    AdmissionResponse::Accepted(record) => {
                        let need = self.required_difficulty(&peer);
                        match record.verify(&peer, &self.chain_id, need) {
                            Ok(()) => self.admit(peer, &record),
                            Err(reason) => self.reject(peer, reason),
                        }
                    }
                    AdmissionResponse::Refused(reason) => {
                        // The peer will not talk to us: forget it even if its record was fine.
                        if self.admission.revoke(&peer) {
                            self.metrics
                                .admitted
                                .set(self.admission.admitted_len() as i64);
                        }
                        self.reject(peer, AdmissionRejection::RefusedByRemote(reason));
                    }
                },
            },
            request_response::Event::OutboundFailure { peer, error, .. }
                if !self.admission.is_admitted(&peer) =>
            {
                if let request_response::OutboundFailure::UnsupportedProtocols = error {
                    self.reject(peer, AdmissionRejection::Exchange(error.to_string()));
                } else if self.swarm.is_connected(&peer) && self.admission.retry(&peer) {
                    // Lost on the way (the connection it went on closed while another stays
                    // open, the remote dropped it): ask again before the deadline.
                    debug!(%peer, "admission request failed: {error}; asking again");
                    self.ask_record(peer);
                } else {
                    debug!(%peer, "admission request failed: {error}");
                }
            }
            _ => {}
        }
    }

    /// `peer` failed admission (`reason`): banned, forgotten by discovery and announced, unless
    /// it was admitted already.
    pub(super) fn reject(&mut self, peer: PeerId, reason: AdmissionRejection) {
        match self.admission.reject(peer, Instant::now()) {
            Rejection::AlreadyAdmitted => return,
            // Banned from now on (its messages are refused, it is never inserted); the
            // connection closes shortly, so our refusal reaches the peer first.
            Rejection::Rejected { disconnect_now } => {
                if disconnect_now {
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
            }
        }
        warn!(%peer, %reason, "peer rejected at admission");
        self.discovery.forget(&mut self.swarm, &peer);
        self.metrics.rejected.inc();
        self.emit(NetworkEvent::PeerRejected { peer, reason });
    }

    /// `peer`'s record verified: admitted (unless the table is full of peers it may not
    /// evict), handed to discovery and announced.
    fn admit(&mut self, peer: PeerId, record: &AdmissionRecord) {
        let swarm = &self.swarm;
        let is_validator = &self.is_validator;
        let evictable = |p: &PeerId| !swarm.is_connected(p) && !is_validator(p);
        let first = match self.admission.admit(peer, record.x25519, evictable) {
            Admission::AlreadyAdmitted => return,
            Admission::TableFull => {
                warn!(%peer, "admitted-peer table full of connected or staked peers; not admitting");
                let _ = self.swarm.disconnect_peer_id(peer);
                return;
            }
            Admission::Admitted { first, evicted } => {
                if let Some(old) = evicted {
                    debug!(peer = %old, "admitted-peer table full: forgot a disconnected unstaked peer");
                    self.discovery.forget(&mut self.swarm, &old);
                }
                first
            }
        };
        self.discovery
            .admitted(&mut self.swarm, peer, first, Instant::now());
        let stake = self.stakes.get(&peer).copied().unwrap_or(0);
        info!(%peer, stake, "peer admitted");
        self.metrics.accepted.inc();
        self.metrics
            .admitted
            .set(self.admission.admitted_len() as i64);
        self.emit(NetworkEvent::PeerAdmitted {
            peer,
            stake,
            x25519: record.x25519,
        });
    }
}
