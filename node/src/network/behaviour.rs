//! The node's one libp2p behaviour: a field per protocol.
//!
//! - `limits` / `memory`: connection caps (total, per peer, pending) and a memory guard,
//!   checked before any protocol runs.
//! - `identify`: learns peers' listen addresses (used for Kademlia only after admission).
//! - `ping`: liveness.
//! - `admission`: request-response exchange of signed admission records, CBOR, 4 KiB cap.
//! - `kad`: Kademlia with *manual* routing-table inserts (only admitted peers enter it).
//! - `gossipsub`: strict signing, explicit validation, peer scoring, size cap.
//! - `rpc`: request-response of opaque bytes for the node's protocols (block sync etc.),
//!   with an explicit size cap.

use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    connection_limits, gossipsub, identify, kad, memory_connection_limits, ping, request_response,
};

use super::admission::{AdmissionRequest, AdmissionResponse};

/// Opaque request bytes for the `rpc` protocol.
pub type RpcCodec = request_response::cbor::codec::Codec<Vec<u8>, Vec<u8>>;

/// The combined behaviour.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) memory: memory_connection_limits::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) admission: request_response::cbor::Behaviour<AdmissionRequest, AdmissionResponse>,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) rpc: request_response::Behaviour<RpcCodec>,
}
