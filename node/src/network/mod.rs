//! The peer-to-peer network: one task owns the libp2p `Swarm`; everything else talks to it
//! through a cloneable [`NetworkHandle`] (commands on a bounded channel, answers on oneshots)
//! and receives [`NetworkEvent`]s on a bounded channel.
//!
//! Guarantees: a peer enters the Kademlia routing table, is reported as admitted, and has its
//! gossip accepted only after its signed admission record verifies (right peer, our chain,
//! proof-of-work at the difficulty the ledger holds now, [`NetworkConfig::ledger_difficulty`];
//! a ledger validator needs only the genesis difficulty, so raising it cannot cut consensus
//! apart while validators solve again; a peer admitted before a raise stays admitted). A peer that fails, or presents nothing within the
//! admission timeout, is disconnected and remembered as rejected (never redialled or
//! inserted). Every protocol has an explicit message-size cap.
//!
//! Layout: [`admission`] (signed records), `admission_tracker` (sans-IO admission state),
//! [`behaviour`] (the protocols and their event enum), `swarm` (transports and listeners),
//! `discovery` (Kademlia), `peers_file` (remembered peers), `metrics` (with
//! `publish_failures`, our own gossip gossipsub refused), `slow_peers` (gossip that does not
//! drain), and `event_loop` (the task that owns the swarm and ties them together; the admission
//! handshake in its `handshake`).

pub mod admission;
mod admission_tracker;
pub mod behaviour;
mod discovery;
mod event_loop;
mod metrics;
pub mod peers_file;
mod publish_failures;
pub mod rate;
pub mod slots;
mod slow_peers;
mod swarm;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

pub use admission::{AdmissionRecord, AdmissionRejection};

/// What kind of node runs the swarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A federation node: all protocols.
    Node,
    /// A light bootstrap node: Kademlia discovery, admission, identify and ping only; it runs
    /// no gossipsub and no request-response (subscribe, publish and request fail).
    Bootstrap,
}

/// Verdict of an application gossip validator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GossipVerdict {
    /// Deliver and forward.
    Accept,
    /// Drop silently (no penalty).
    Ignore,
    /// Drop and penalise the sender.
    Reject,
}

/// Application-level gossip validation: `(forwarding peer, topic, payload) -> verdict`.
pub type GossipValidator = Arc<dyn Fn(&PeerId, &str, &[u8]) -> GossipVerdict + Send + Sync>;

/// The proof-of-work difficulty the ledger holds now (the chain's view).
pub type LedgerDifficulty = Arc<dyn Fn() -> u8 + Send + Sync>;

/// Resource limits of the swarm.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Maximum established connections.
    pub max_connections: u32,
    /// Of those, slots only ledger validators may take ([`slots`]).
    pub reserved_validator_slots: u32,
    /// Inbound connections of non-validators from one IP address.
    pub max_connections_per_ip: u32,
    /// Inbound connections of non-validators from one /24 (IPv4) or /48 (IPv6).
    pub max_connections_per_subnet: u32,
    /// Loopback peers skip the per-IP and per-subnet caps (a local testnet).
    pub exempt_loopback: bool,
    /// Maximum established connections per peer.
    pub max_connections_per_peer: u32,
    /// Maximum pending connections each way.
    pub max_pending: u32,
    /// Refuse connections above this fraction of system memory in use.
    pub max_memory_fraction: f64,
    /// Largest gossip message (bytes).
    pub gossip_max_bytes: usize,
    /// Largest request or response (bytes).
    pub request_max_bytes: u64,
    /// Inbound `rpc` requests one peer may send ([`rate`]).
    pub rpc_rate: rate::Rate,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 128,
            reserved_validator_slots: 32,
            max_connections_per_ip: 8,
            max_connections_per_subnet: 32,
            exempt_loopback: true,
            max_connections_per_peer: 2,
            max_pending: 32,
            max_memory_fraction: 0.9,
            gossip_max_bytes: 1 << 20,
            request_max_bytes: 4 << 20,
            rpc_rate: DEFAULT_RPC_RATE,
        }
    }
}

/// Inbound `rpc` requests per peer: enough for block sync and a validator's share of a burst
/// of signing (direct messages of the key protocols travel as requests), well under the
/// node's `MAX_INBOUND` unanswered requests.
pub const DEFAULT_RPC_RATE: rate::Rate = rate::Rate {
    per_second: 200,
    burst: 500,
};

/// Everything the network task needs.
pub struct NetworkConfig {
    /// Identity (Ed25519); its public key is the `PeerId`.
    pub keypair: Keypair,
    /// Our signed admission record.
    pub record: AdmissionRecord,
    /// Chain id from genesis.
    pub chain_id: String,
    /// Proof-of-work difficulty from genesis: the floor, and what a validator's record needs.
    pub difficulty: u8,
    /// The difficulty the ledger holds now, which every other peer's record must meet (never
    /// less than [`difficulty`](Self::difficulty)); without it (a bootstrap node, which
    /// follows no chain), the genesis difficulty.
    pub ledger_difficulty: Option<LedgerDifficulty>,
    /// Validators' stake from genesis.
    pub stakes: BTreeMap<PeerId, u64>,
    /// Node or bootstrap.
    pub role: Role,
    /// Listen addresses.
    pub listen: Vec<Multiaddr>,
    /// Addresses other peers should dial to reach us (another host's view: a public or LAN
    /// address, a forwarded port). Non-empty: identify tells peers only these, not our listen
    /// addresses; empty: identify tells our listen addresses (each interface's).
    pub announce: Vec<Multiaddr>,
    /// Bootstrap addresses (with `/p2p/<id>`).
    pub bootstrap: Vec<Multiaddr>,
    /// Limits.
    pub limits: Limits,
    /// Time a new peer has to present a valid record.
    pub admission_timeout: Duration,
    /// Period of discovery rounds.
    pub discovery_interval: Duration,
    /// Idle connection timeout.
    pub idle_timeout: Duration,
    /// Optional application validator for gossip.
    pub gossip_validator: Option<GossipValidator>,
    /// Whether a peer is a ledger validator now (reserved connection slots, no per-IP cap);
    /// without it, the genesis stakes decide.
    pub is_validator: Option<slots::IsValidator>,
    /// File remembering admitted peers' addresses across restarts.
    pub peers_file: Option<PathBuf>,
}

/// An admitted peer as seen by this node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdmittedPeer {
    /// Peer id.
    pub peer_id: String,
    /// Whether it is connected now.
    pub connected: bool,
    /// Genesis stake (0: not a validator).
    pub stake: u64,
    /// X25519 share-encryption key (hex), from its admission record.
    pub x25519: String,
    /// Gossipsub score, when known.
    pub gossip_score: Option<f64>,
}

/// A snapshot of the network's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkStatus {
    /// Our peer id.
    pub peer_id: String,
    /// Chain id.
    pub chain_id: String,
    /// Addresses we listen on.
    pub listen_addrs: Vec<String>,
    /// Addresses we announce to peers (`network.announce`).
    #[serde(default)]
    pub external_addrs: Vec<String>,
    /// Our addresses as peers observed them (identify), at most 16: what another host sees
    /// of us, a hint for `network.announce` (never announced by itself).
    #[serde(default)]
    pub observed_addrs: Vec<String>,
    /// The addresses the routing table holds for each of its peers.
    #[serde(default)]
    pub peer_addrs: BTreeMap<String, Vec<String>>,
    /// Connected peers (admitted or not yet).
    pub connected: Vec<String>,
    /// Admitted peers.
    pub admitted: Vec<AdmittedPeer>,
    /// Peers in the Kademlia routing table.
    pub routing_table: Vec<String>,
    /// Admission rejections since start.
    pub rejected_total: u64,
}

/// Token to answer an inbound request with [`NetworkHandle::respond`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponseToken(pub(crate) u64);

/// What the network reports to the rest of the node.
#[derive(Debug)]
pub enum NetworkEvent {
    /// A peer's admission record verified.
    PeerAdmitted {
        /// The peer.
        peer: PeerId,
        /// Its genesis stake (0: not a validator).
        stake: u64,
        /// Its X25519 share-encryption key.
        x25519: [u8; 32],
    },
    /// A peer failed admission and was disconnected.
    PeerRejected {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: AdmissionRejection,
    },
    /// An admitted peer's last connection closed.
    PeerDisconnected {
        /// The peer.
        peer: PeerId,
    },
    /// A validated gossip message.
    Gossip {
        /// The peer that forwarded it to us (messages are anonymous: who wrote it is what
        /// its own signatures say).
        source: PeerId,
        /// Topic name.
        topic: String,
        /// Payload.
        data: Vec<u8>,
    },
    /// A request from an admitted peer; answer with [`NetworkHandle::respond`].
    Request {
        /// The peer.
        peer: PeerId,
        /// Payload.
        data: Vec<u8>,
        /// Answer token.
        token: ResponseToken,
    },
}

/// Why a network operation failed.
#[derive(Debug, Error)]
pub enum NetworkError {
    /// The network task is gone.
    #[error("the network task has stopped")]
    Stopped,
    /// Building the swarm failed.
    #[error("cannot start the network: {0}")]
    Setup(String),
    /// Listening failed.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// Dial failed.
    #[error("dial failed: {0}")]
    Dial(String),
    /// Gossip publish failed (e.g. too large, no peers).
    #[error("publish failed: {0}")]
    Publish(String),
    /// Request failed (e.g. too large, timeout, peer unknown).
    #[error("request failed: {0}")]
    Request(String),
    /// Peer is not admitted.
    #[error("peer {0} is not admitted")]
    NotAdmitted(PeerId),
    /// An admission record of ours that does not verify.
    #[error("our admission record does not verify: {0}")]
    BadRecord(AdmissionRejection),
}

impl NetworkError {
    /// A start-up failure.
    pub(crate) fn setup(e: impl std::fmt::Display) -> Self {
        Self::Setup(e.to_string())
    }
}

pub(crate) enum Command {
    Status(oneshot::Sender<NetworkStatus>),
    Dial(Multiaddr, oneshot::Sender<Result<(), NetworkError>>),
    Subscribe(String, oneshot::Sender<Result<(), NetworkError>>),
    Publish(String, Vec<u8>, oneshot::Sender<Result<(), NetworkError>>),
    Request(
        PeerId,
        Vec<u8>,
        oneshot::Sender<Result<Vec<u8>, NetworkError>>,
    ),
    Respond(ResponseToken, Vec<u8>),
    SetRecord(
        Box<AdmissionRecord>,
        oneshot::Sender<Result<(), NetworkError>>,
    ),
    Shutdown(oneshot::Sender<()>),
}

/// Cloneable handle to the network task.
#[derive(Clone)]
pub struct NetworkHandle {
    tx: mpsc::Sender<Command>,
    peer_id: PeerId,
}

impl NetworkHandle {
    /// A handle with no swarm behind it: its commands arrive on the receiver (tests).
    #[cfg(test)]
    pub(crate) fn detached() -> (Self, mpsc::Receiver<Command>) {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let peer_id = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        (NetworkHandle { tx, peer_id }, rx)
    }

    /// Our peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.peer_id
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetworkError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| NetworkError::Stopped)?;
        rx.await.map_err(|_| NetworkError::Stopped)
    }

    /// A snapshot of the network's state.
    pub async fn status(&self) -> Result<NetworkStatus, NetworkError> {
        self.call(Command::Status).await
    }

    /// Dials an address (admission follows automatically).
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NetworkError> {
        self.call(|tx| Command::Dial(addr, tx)).await?
    }

    /// Subscribes to a gossip topic (named within our chain).
    pub async fn subscribe(&self, topic: &str) -> Result<(), NetworkError> {
        self.call(|tx| Command::Subscribe(topic.to_string(), tx))
            .await?
    }

    /// Publishes on a gossip topic.
    pub async fn publish(&self, topic: &str, data: Vec<u8>) -> Result<(), NetworkError> {
        self.call(|tx| Command::Publish(topic.to_string(), data, tx))
            .await?
    }

    /// Sends a request to an admitted peer and waits for its response.
    pub async fn request(&self, peer: PeerId, data: Vec<u8>) -> Result<Vec<u8>, NetworkError> {
        self.call(|tx| Command::Request(peer, data, tx)).await?
    }

    /// Answers an inbound request.
    pub async fn respond(&self, token: ResponseToken, data: Vec<u8>) -> Result<(), NetworkError> {
        self.tx
            .send(Command::Respond(token, data))
            .await
            .map_err(|_| NetworkError::Stopped)
    }

    /// Replaces our admission record (a proof solved again at a raised difficulty): peers that
    /// admit us from now on receive it; peers that already admitted us keep us. Refused unless
    /// it is ours, for our chain, and meets the genesis difficulty.
    pub async fn set_admission_record(&self, record: AdmissionRecord) -> Result<(), NetworkError> {
        self.call(|tx| Command::SetRecord(Box::new(record), tx))
            .await?
    }

    /// Stops the network task (writes the peers file first and waits for it).
    pub async fn shutdown(&self) -> Result<(), NetworkError> {
        self.call(Command::Shutdown).await
    }
}

/// Capacity of the command and event channels.
pub const CHANNEL_CAPACITY: usize = 1024;

/// How long gossipsub remembers a message id (the library's default, set explicitly): the same
/// message published again within it is refused as a duplicate. The `tx` topic's id is the
/// content, so the chain driver re-gossips unchanged content only after this
/// (`chain::driver::Regossiped`).
pub const GOSSIP_DUPLICATE_CACHE: std::time::Duration = std::time::Duration::from_secs(60);

/// What [`spawn`] returns: the handle, the event stream and the task.
pub type Spawned = (
    NetworkHandle,
    mpsc::Receiver<NetworkEvent>,
    tokio::task::JoinHandle<()>,
);

/// Builds the swarm, starts listening and spawns the network task on the current tokio
/// runtime. `registry` receives libp2p's and our own metrics.
pub fn spawn(config: NetworkConfig, registry: &mut Registry) -> Result<Spawned, NetworkError> {
    let peer_id = config.keypair.public().to_peer_id();
    let (cmd_tx, cmd_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let (ev_tx, ev_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let task = event_loop::EventLoop::new(config, registry, cmd_rx, ev_tx)?;
    let join = tokio::spawn(task.run());
    Ok((
        NetworkHandle {
            tx: cmd_tx,
            peer_id,
        },
        ev_rx,
        join,
    ))
}

/// The full gossipsub topic name for `topic` on `chain_id`.
pub fn topic_name(chain_id: &str, topic: &str) -> String {
    format!("/seedfed/{chain_id}/{topic}/1")
}
