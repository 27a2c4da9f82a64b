//! The node's one libp2p behaviour: a field per protocol, and [`Event`], one variant per
//! protocol that reports anything.
//!
//! Guarantees: connection caps run before any protocol; every protocol has an explicit message
//! size cap; Kademlia inserts nobody by itself (only admitted peers, by hand); a bootstrap node
//! runs no gossipsub and no `rpc` (their fields are switched off), only discovery, admission,
//! identify and ping.
//!
//! - `slots`: established-connection slots (total, reserved for validators, per IP and subnet;
//!   [`super::slots`]).
//! - `limits` / `memory`: connection caps (per peer, pending) and a memory guard.
//! - `identify`: learns peers' listen addresses (used for Kademlia only after admission) and
//!   tells ours, or only the announced ones when `network.announce` is set.
//! - `ping`: liveness.
//! - `admission`: request-response exchange of signed admission records, CBOR, 4 KiB cap.
//! - `kad`: Kademlia with *manual* routing-table inserts (only admitted peers enter it).
//! - `gossipsub`: strict signing, explicit validation, peer scoring, size cap (nodes only).
//! - `rpc`: request-response of opaque bytes for the node's protocols (block sync etc.),
//!   with an explicit size cap (nodes only).

use std::convert::Infallible;
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    connection_limits, gossipsub, identify, kad, memory_connection_limits, ping, StreamProtocol,
};
use prometheus_client::registry::Registry;

use super::admission::{AdmissionRequest, AdmissionResponse, MAX_ADMISSION_MESSAGE_BYTES};
use super::slots::{self, IsValidator, SlotLimits};
use super::{Limits, NetworkError, Role};

/// Opaque request and response bytes of the `rpc` protocol, as one CBOR byte string each (a
/// `Vec<u8>` would be an array of one integer per byte: about twice the bytes on the wire,
/// decoded a byte at a time).
pub type RpcBytes = serde_bytes::ByteBuf;

/// The `rpc` protocol's codec.
pub type RpcCodec = request_response::cbor::codec::Codec<RpcBytes, RpcBytes>;

/// The `rpc` protocol's name (`/2`: its messages are byte strings since 2026-12-02, `/1` sent
/// arrays of integers).
pub const RPC_PROTOCOL: &str = "/seedfed/rpc/2";

/// The admission exchange's behaviour.
pub type AdmissionBehaviour =
    request_response::cbor::Behaviour<AdmissionRequest, AdmissionResponse>;

/// The combined behaviour.
#[derive(NetworkBehaviour)]
#[behaviour(to_swarm = "Event")]
pub struct Behaviour {
    pub(crate) slots: slots::Behaviour,
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) memory: memory_connection_limits::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) admission: AdmissionBehaviour,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) gossipsub: Toggle<gossipsub::Behaviour>,
    pub(crate) rpc: Toggle<request_response::Behaviour<RpcCodec>>,
}

/// What the behaviour reports to the swarm task: one variant per protocol (the connection
/// caps report nothing).
#[derive(Debug)]
pub enum Event {
    /// Identify: a peer's listen addresses and protocols (boxed: it is by far the largest).
    Identify(Box<identify::Event>),
    /// Ping: a round-trip time or a failure.
    Ping(ping::Event),
    /// The admission exchange.
    Admission(request_response::Event<AdmissionRequest, AdmissionResponse>),
    /// Kademlia: query progress and routing updates.
    Kad(kad::Event),
    /// Gossipsub: messages to validate, subscriptions.
    Gossipsub(gossipsub::Event),
    /// The node's request-response protocol.
    Rpc(request_response::Event<RpcBytes, RpcBytes>),
}

impl From<Infallible> for Event {
    fn from(never: Infallible) -> Self {
        match never {}
    }
}

impl From<identify::Event> for Event {
    fn from(e: identify::Event) -> Self {
        Self::Identify(Box::new(e))
    }
}

impl From<ping::Event> for Event {
    fn from(e: ping::Event) -> Self {
        Self::Ping(e)
    }
}

impl From<request_response::Event<AdmissionRequest, AdmissionResponse>> for Event {
    fn from(e: request_response::Event<AdmissionRequest, AdmissionResponse>) -> Self {
        Self::Admission(e)
    }
}

impl From<kad::Event> for Event {
    fn from(e: kad::Event) -> Self {
        Self::Kad(e)
    }
}

impl From<gossipsub::Event> for Event {
    fn from(e: gossipsub::Event) -> Self {
        Self::Gossipsub(e)
    }
}

impl From<request_response::Event<RpcBytes, RpcBytes>> for Event {
    fn from(e: request_response::Event<RpcBytes, RpcBytes>) -> Self {
        Self::Rpc(e)
    }
}

/// What [`Behaviour::new`] needs besides the identity.
pub(crate) struct Settings<'a> {
    /// Node or bootstrap (a bootstrap node runs no gossipsub and no `rpc`).
    pub(crate) role: Role,
    /// Connection and message-size limits.
    pub(crate) limits: &'a Limits,
    /// Time a peer has to answer our admission request.
    pub(crate) admission_timeout: Duration,
    /// Period of discovery rounds (Kademlia's own bootstrap runs every ten).
    pub(crate) discovery_interval: Duration,
    /// Whether a peer is a ledger validator (its connections may take reserved slots).
    pub(crate) is_validator: IsValidator,
    /// Tell peers only our external (announced) addresses, not our listen addresses.
    pub(crate) hide_listen_addrs: bool,
}

impl Behaviour {
    /// Builds every protocol for `keypair`'s identity; gossipsub registers its metrics in
    /// `registry`.
    pub(crate) fn new(
        keypair: &Keypair,
        settings: Settings<'_>,
        registry: &mut Registry,
    ) -> Result<Self, NetworkError> {
        let peer_id = keypair.public().to_peer_id();
        let limits = settings.limits;
        let full = settings.role == Role::Node;

        let gossipsub = if full {
            Some(gossipsub(limits, registry)?)
        } else {
            None
        };

        let mut kad_config = kad::Config::new(StreamProtocol::new("/seedfed/kad/1.0.0"));
        kad_config
            .set_kbucket_inserts(kad::BucketInserts::Manual)
            .set_query_timeout(Duration::from_secs(30))
            .set_max_packet_size(64 * 1024)
            .set_periodic_bootstrap_interval(Some(
                settings.discovery_interval.max(Duration::from_secs(1)) * 10,
            ));
        let mut kad =
            kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
        kad.set_mode(Some(kad::Mode::Server));

        let admission = request_response::cbor::Behaviour::with_codec(
            request_response::cbor::codec::Codec::default()
                .set_request_size_maximum(MAX_ADMISSION_MESSAGE_BYTES)
                .set_response_size_maximum(MAX_ADMISSION_MESSAGE_BYTES),
            [(
                StreamProtocol::new("/seedfed/admission/1"),
                ProtocolSupport::Full,
            )],
            request_response::Config::default().with_request_timeout(settings.admission_timeout),
        );
        let rpc = full.then(|| {
            request_response::Behaviour::with_codec(
                RpcCodec::default()
                    .set_request_size_maximum(limits.request_max_bytes)
                    .set_response_size_maximum(limits.request_max_bytes),
                [(StreamProtocol::new(RPC_PROTOCOL), ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
            )
        });
        let slots = slots::Behaviour::new(
            SlotLimits {
                max_total: limits.max_connections,
                reserved_validator_slots: limits.reserved_validator_slots,
                max_per_ip: limits.max_connections_per_ip,
                max_per_subnet: limits.max_connections_per_subnet,
                exempt_loopback: limits.exempt_loopback,
            },
            settings.is_validator,
        );
        // The total is `slots`'s (with the validators' reserve); these are the per-peer and
        // handshake caps.
        let conn_limits = connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                .with_max_established_per_peer(Some(limits.max_connections_per_peer))
                .with_max_pending_incoming(Some(limits.max_pending))
                .with_max_pending_outgoing(Some(limits.max_pending)),
        );
        let memory =
            memory_connection_limits::Behaviour::with_max_percentage(limits.max_memory_fraction);
        let identify = identify::Behaviour::new(
            identify::Config::new("/seedfed/id/1.0.0".into(), keypair.public())
                .with_agent_version(format!("seedfed/{}", env!("CARGO_PKG_VERSION")))
                .with_hide_listen_addrs(settings.hide_listen_addrs),
        );
        Ok(Self {
            slots,
            limits: conn_limits,
            memory,
            identify,
            ping: ping::Behaviour::new(ping::Config::new()),
            admission,
            kad,
            gossipsub: Toggle::from(gossipsub),
            rpc: Toggle::from(rpc),
        })
    }
}

/// Every gossip message id is this long: [`message_id`] hashes what identifies a message.
pub(crate) const MESSAGE_ID_BYTES: usize = 32;

/// The control bytes (IHAVE, IWANT, IDONTWANT, GRAFT, PRUNE) one gossipsub RPC may carry, in
/// what we accept: the library's default, pinned because [`MAX_CONTROL_IDS`] is derived from it.
pub(crate) const MAX_CONTROL_BYTES: usize = 16 * 1024;

/// At most this many message ids in one IHAVE we send, and in the IWANTs we send a peer in one
/// heartbeat. libp2p-gossipsub 0.50 sends up to 5,000 by default, while its decoder refuses an
/// RPC with more than [`MAX_CONTROL_BYTES`] of control: the receiver then closes its inbound
/// gossip stream, and the sender, out of yamux credit on that stream, waits on it for good. The
/// receiver hears no gossip from that peer again while the connection lives (under a burst of
/// sign requests, a validator stopped hearing every peer and followed the chain by block sync
/// only). Each id costs 34 bytes (a tag, a length, [`MESSAGE_ID_BYTES`]); 400 of them leave
/// 2.7 KB for the topic (`/seedfed/<chain id>/<name>/1`) and the framing.
pub(crate) const MAX_CONTROL_IDS: usize = 400;

/// Gossip message ids, all [`MESSAGE_ID_BYTES`] long (they travel in IHAVE and IWANT lists,
/// see [`MAX_CONTROL_IDS`]): the hash of the topic and the message's bytes. Messages are
/// anonymous (no author, sequence number or gossipsub signature: see [`gossipsub`]), so the
/// content is all there is to name one, and no one can take the id of a message it has not
/// seen. A transaction's bytes identify it, so a node re-gossiping its pending transactions,
/// or the same transaction published by two nodes, is a duplicate within the duplicate
/// cache's time, not a new message that floods every peer (a burst of sign requests otherwise
/// filled every peer's send queue); a consensus message carries a number drawn afresh for
/// each publication (`chain::wire::consensus_gossip`), so a re-broadcast vote is a new
/// message, as it was when ids named the author and its sequence number.
fn message_id(m: &gossipsub::Message) -> gossipsub::MessageId {
    const ID: seedfed_protocol::hash::Domain =
        seedfed_protocol::hash::Domain::new("seedfed-gossipid");
    let topic = m.topic.as_str().as_bytes();
    let id: [u8; MESSAGE_ID_BYTES] =
        seedfed_protocol::hash::hash32(ID, &[], &[0; 16], &[topic, &m.data]);
    gossipsub::MessageId::from(id.to_vec())
}

/// Gossipsub's configuration: anonymous messages, explicit validation, the size caps, our message
/// ids and what bounds their lists ([`MAX_CONTROL_IDS`]).
fn gossipsub_config(limits: &Limits) -> Result<gossipsub::Config, NetworkError> {
    gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .max_transmit_size(limits.gossip_max_bytes)
        .heartbeat_interval(Duration::from_secs(1))
        .duplicate_cache_time(super::GOSSIP_DUPLICATE_CACHE)
        .message_id_fn(message_id)
        .max_control_message_size(MAX_CONTROL_BYTES)
        .max_control_messages_sent(MAX_CONTROL_IDS)
        .build()
        .map_err(NetworkError::setup)
}

/// Gossipsub with [`gossipsub_config`], peer scoring and metrics.
///
/// Messages are anonymous: gossipsub neither signs them nor checks a signature. Under
/// strict signing every copy of every message received was checked in the connection's
/// codec, before duplicates are dropped; with seven validators a message arrives up to six
/// times, and those checks were a sixth of a validator's CPU under a signing burst (and grow
/// with the mesh at every idle height). What gossip carries is signed where it matters, by
/// its author's ledger key, and checked once per message, after duplicates are dropped
/// (`chain::wire::check_gossip`: a transaction's signature, a vote's, a proposal's, each of a
/// certificate's). The forwarding peer is what scoring and admission judge, as before.
fn gossipsub(
    limits: &Limits,
    registry: &mut Registry,
) -> Result<gossipsub::Behaviour, NetworkError> {
    let config = gossipsub_config(limits)?;
    let mut gossipsub =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config)
            .map_err(NetworkError::setup)?
            .with_metrics(registry, Default::default());
    gossipsub
        .with_peer_score(
            peer_score_params(),
            gossipsub::PeerScoreThresholds::default(),
        )
        .map_err(NetworkError::setup)?;
    Ok(gossipsub)
}

/// Peer scoring for this chain's rates. The library's defaults are tuned for busy public
/// networks: a peer earns up to +1800 for sitting in a mesh and +1000 for first deliveries, so
/// it took tens of invalid messages a second to graylist it; and more than 10 peers behind one
/// address were penalised, which hits honest validators behind one NAT (or a local testnet).
/// Here (thresholds: the library's, gossip -10, publish -50, graylist -80):
/// - no IP-colocation penalty: admission costs a proof of work per identity and
///   [`super::slots`] caps non-validators' connections per address and subnet;
/// - the topic score is capped at +50, so no credit outweighs a few invalid messages;
/// - no penalty for a "slow" peer (the library's -0.2 per message that expired in our send
///   queue to it): when our own process is starved of CPU for a few seconds, every queue
///   expires at once and we graylisted every peer, dropping all they sent (6,000 expiries in
///   two seconds at one validator of a local testnet under a signing burst). A peer whose
///   queue stays full is disconnected and dialled again instead ([`super::slow_peers`]);
/// - the rest is per topic, [`topic_score_params`].
pub(crate) fn peer_score_params() -> gossipsub::PeerScoreParams {
    gossipsub::PeerScoreParams {
        topic_score_cap: 50.0,
        ip_colocation_factor_weight: 0.0,
        slow_peer_weight: 0.0,
        ..gossipsub::PeerScoreParams::default()
    }
}

/// Every topic's score parameters (consensus and transactions alike), per decay interval of
/// 1 s:
/// - time in mesh: +0.01 a second up to +10 (staying around proves nothing);
/// - first deliveries: +1 each, decaying by 0.9 a second, at most +20;
/// - no mesh-delivery quota (P3, P3b): our topics are bursty and can be idle for long (no
///   transactions), so any delivery threshold would penalise honest quiet peers;
/// - invalid messages: -20 × count², the count decaying by 0.9 a second. One invalid message
///   takes a peer below the gossip threshold; three graylist even a peer with the most credit
///   it can hold (+30), for about two seconds; one every four seconds keeps it graylisted.
///   The validator only rejects what is wrong whoever forwards it (malformed, bad signature,
///   not from a validator in our view); stale heights and unknown topics are ignored,
///   unpenalised.
pub(crate) fn topic_score_params() -> gossipsub::TopicScoreParams {
    gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 1000.0,
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: 0.9,
        first_message_deliveries_cap: 20.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -20.0,
        invalid_message_deliveries_decay: 0.9,
        ..gossipsub::TopicScoreParams::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The arithmetic the docs above promise, from the parameters themselves.
    #[test]
    fn three_invalid_messages_graylist_a_peer_with_the_most_credit() {
        let peer = peer_score_params();
        let topic = topic_score_params();
        peer.validate().unwrap();
        topic.validate().unwrap();
        let t = gossipsub::PeerScoreThresholds::default();
        let credit = (topic.time_in_mesh_weight * topic.time_in_mesh_cap
            + topic.first_message_deliveries_weight * topic.first_message_deliveries_cap)
            * topic.topic_weight;
        assert_eq!(credit, 30.0);
        assert!(credit <= peer.topic_score_cap);
        let score = |invalid: f64| {
            (credit + topic.invalid_message_deliveries_weight * invalid * invalid)
                .min(peer.topic_score_cap)
        };
        assert!(score(1.0) < 30.0 - 10.0);
        assert!(score(3.0) < t.graylist_threshold);
        // A peer with no credit: one invalid message already stops gossip to it.
        assert!(topic.invalid_message_deliveries_weight < t.gossip_threshold);
        // No penalty for sharing an address, nor for our own send queues expiring.
        assert_eq!(peer.ip_colocation_factor_weight, 0.0);
        assert_eq!(peer.slow_peer_weight, 0.0);
    }

    /// A request's bytes cross the wire as one CBOR byte string: a few bytes of header, not a
    /// CBOR array of one integer per byte (about twice the bytes, decoded a byte at a time,
    /// and half of `request_max_bytes` usable).
    #[test]
    fn rpc_bytes_travel_as_one_byte_string() {
        use futures::executor::block_on;
        use futures::io::Cursor;
        use request_response::Codec;
        let bytes: Vec<u8> = (0..65_536u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let protocol = StreamProtocol::new(RPC_PROTOCOL);
        let mut codec = RpcCodec::default();
        let mut wire = Cursor::new(Vec::new());
        block_on(codec.write_request(&protocol, &mut wire, bytes.clone().into())).unwrap();
        let len = wire.get_ref().len();
        assert!(
            len <= bytes.len() + 9,
            "{len} bytes on the wire for {}",
            bytes.len()
        );
        wire.set_position(0);
        let back = block_on(codec.read_request(&protocol, &mut wire)).unwrap();
        assert_eq!(back.into_vec(), bytes);
    }

    fn message(topic: &str, data: &[u8]) -> gossipsub::Message {
        gossipsub::Message {
            source: None,
            data: data.to_vec(),
            sequence_number: None,
            topic: gossipsub::TopicHash::from_raw(topic),
        }
    }

    /// Ids name the topic and the bytes, nothing else: messages are anonymous, so an id that
    /// named a claimed author and sequence number could be taken by anyone.
    #[test]
    fn message_ids_are_fixed_length_hashes_of_topic_and_content() {
        let config = gossipsub_config(&Limits::default()).unwrap();
        let consensus = "/seedfed/c/consensus/1";
        let tx = "/seedfed/c/tx/1";
        let id = |m: &gossipsub::Message| config.message_id(m).0;
        let ids = [
            id(&message(consensus, b"x")),
            id(&message(consensus, b"y")),
            id(&message(tx, b"x")),
            id(&message(tx, b"y")),
        ];
        for (i, x) in ids.iter().enumerate() {
            assert_eq!(x.len(), MESSAGE_ID_BYTES);
            for y in &ids[i + 1..] {
                assert_ne!(x, y);
            }
        }
        let mut claimed = message(consensus, b"x");
        claimed.source = Some(libp2p::PeerId::random());
        claimed.sequence_number = Some(7);
        assert_eq!(ids[0], id(&claimed));
    }

    /// An IHAVE we send fits the control size its receiver accepts, with a topic of a 2 KiB
    /// chain id (the library's default, 5,000 ids of 70 bytes, did not: a validator's peers
    /// closed their gossip stream from it and it went deaf).
    #[test]
    fn an_ihave_we_send_fits_the_control_size_we_accept() {
        let config = gossipsub_config(&Limits::default()).unwrap();
        let topic = crate::network::topic_name(&"c".repeat(2048), "consensus");
        // Protobuf: the control field (tag, 2-byte length), one IHAVE (tag, 2-byte length), its
        // topic (tag, 2-byte length, bytes), every id (tag, 1-byte length, bytes).
        let ids = config.max_control_messages_sent();
        let ihave = 3 + 3 + (3 + topic.len()) + ids * (2 + MESSAGE_ID_BYTES);
        let accepted = config.max_control_message_size();
        assert!(ihave <= accepted, "{ihave} > {accepted}");
    }
}
