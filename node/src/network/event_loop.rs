//! The task that owns the `Swarm`: applies commands, runs the admission handshake, feeds
//! Kademlia with admitted peers only, validates gossip, and drives discovery.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, TopicHash};
use libp2p::metrics::{Metrics, Recorder};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::SwarmEvent;
use libp2p::{
    connection_limits, identify, kad, memory_connection_limits, noise, ping, tcp, yamux, Multiaddr,
    PeerId, StreamProtocol, Swarm, SwarmBuilder,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::admission::{
    AdmissionRecord, AdmissionRejection, AdmissionRequest, AdmissionResponse,
    MAX_ADMISSION_MESSAGE_BYTES,
};
use super::behaviour::{Behaviour, BehaviourEvent, RpcCodec};
use super::{
    topic_name, AdmittedPeer, Command, GossipValidator, GossipVerdict, NetworkConfig, NetworkError,
    NetworkEvent, NetworkStatus, ResponseToken, Role,
};

/// How long a rejected peer stays banned.
const BAN: Duration = Duration::from_secs(600);
/// Bound on remembered rejected peers.
const MAX_BANNED: usize = 4096;
/// Bound on remembered admitted peers.
const MAX_ADMITTED: usize = 10_000;
/// Bound on unanswered inbound requests.
const MAX_INBOUND: usize = 1024;
/// Bound on dials started per discovery round or query result.
const MAX_DIALS_PER_ROUND: usize = 32;
/// Bound on peers written to the peers file.
const MAX_SAVED_PEERS: usize = 256;

struct OurMetrics {
    admitted: Gauge,
    accepted: Counter,
    rejected: Counter,
    routing_table: Gauge,
    gossip_rejected: Counter,
    events_dropped: Counter,
}

impl OurMetrics {
    fn new(registry: &mut Registry) -> Self {
        let r = registry.sub_registry_with_prefix("seedfed");
        let m = Self {
            admitted: Gauge::default(),
            accepted: Counter::default(),
            rejected: Counter::default(),
            routing_table: Gauge::default(),
            gossip_rejected: Counter::default(),
            events_dropped: Counter::default(),
        };
        r.register(
            "admitted_peers",
            "Peers whose admission record verified",
            m.admitted.clone(),
        );
        r.register(
            "admissions",
            "Admission records accepted",
            m.accepted.clone(),
        );
        r.register(
            "admission_rejections",
            "Peers rejected at admission",
            m.rejected.clone(),
        );
        r.register(
            "routing_table_peers",
            "Peers in the Kademlia routing table",
            m.routing_table.clone(),
        );
        r.register(
            "gossip_rejected",
            "Gossip messages rejected by validation",
            m.gossip_rejected.clone(),
        );
        r.register(
            "network_events_dropped",
            "Events dropped because the consumer was slow",
            m.events_dropped.clone(),
        );
        m
    }
}

#[derive(Default, Serialize, Deserialize)]
struct PeersFile {
    peers: Vec<SavedPeer>,
}

#[derive(Serialize, Deserialize)]
struct SavedPeer {
    peer_id: String,
    addrs: Vec<String>,
}

pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    peer_id: PeerId,
    record: AdmissionRecord,
    chain_id: String,
    difficulty: u8,
    stakes: BTreeMap<PeerId, u64>,
    bootstrap: Vec<Multiaddr>,
    admission_timeout: Duration,
    discovery_interval: Duration,
    validator: Option<GossipValidator>,
    peers_file: Option<PathBuf>,
    cmd_rx: mpsc::Receiver<Command>,
    ev_tx: mpsc::Sender<NetworkEvent>,
    pending: HashMap<PeerId, Instant>,
    disconnect_at: HashMap<PeerId, Instant>,
    admitted: HashMap<PeerId, [u8; 32]>,
    banned: HashMap<PeerId, Instant>,
    identify_addrs: HashMap<PeerId, Vec<Multiaddr>>,
    dialed_addr: HashMap<PeerId, Multiaddr>,
    known: BTreeMap<PeerId, Vec<Multiaddr>>,
    known_dirty: bool,
    requests: HashMap<OutboundRequestId, oneshot::Sender<Result<Vec<u8>, NetworkError>>>,
    inbound: HashMap<u64, ResponseChannel<Vec<u8>>>,
    next_token: u64,
    topics: HashMap<TopicHash, String>,
    last_walk: Option<Instant>,
    rejected_total: u64,
    libp2p_metrics: Metrics,
    metrics: OurMetrics,
}

fn setup_err(e: impl std::fmt::Display) -> NetworkError {
    NetworkError::Setup(e.to_string())
}

/// Splits a trailing `/p2p/<id>` off an address.
fn split_peer(addr: &Multiaddr) -> (Multiaddr, Option<PeerId>) {
    let mut a = addr.clone();
    match a.pop() {
        Some(Protocol::P2p(id)) => (a, Some(id)),
        Some(other) => {
            a.push(other);
            (a, None)
        }
        None => (a, None),
    }
}

impl EventLoop {
    pub(crate) fn new(
        config: NetworkConfig,
        registry: &mut Registry,
        cmd_rx: mpsc::Receiver<Command>,
        ev_tx: mpsc::Sender<NetworkEvent>,
    ) -> Result<Self, NetworkError> {
        let keypair = config.keypair;
        let peer_id = keypair.public().to_peer_id();
        let limits = config.limits;

        let gossip_config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Strict)
            .validate_messages()
            .max_transmit_size(limits.gossip_max_bytes)
            .heartbeat_interval(Duration::from_secs(1))
            .build()
            .map_err(setup_err)?;
        let mut gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(keypair.clone()),
            gossip_config,
        )
        .map_err(setup_err)?
        .with_metrics(registry, Default::default());
        gossipsub
            .with_peer_score(
                gossipsub::PeerScoreParams::default(),
                gossipsub::PeerScoreThresholds::default(),
            )
            .map_err(setup_err)?;

        let mut kad_config = kad::Config::new(StreamProtocol::new("/seedfed/kad/1.0.0"));
        kad_config
            .set_kbucket_inserts(kad::BucketInserts::Manual)
            .set_query_timeout(Duration::from_secs(30))
            .set_max_packet_size(64 * 1024)
            .set_periodic_bootstrap_interval(Some(
                config.discovery_interval.max(Duration::from_secs(1)) * 10,
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
            request_response::Config::default().with_request_timeout(config.admission_timeout),
        );
        let rpc = request_response::Behaviour::with_codec(
            RpcCodec::default()
                .set_request_size_maximum(limits.request_max_bytes)
                .set_response_size_maximum(limits.request_max_bytes),
            [(StreamProtocol::new("/seedfed/rpc/1"), ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
        );
        let conn_limits = connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                .with_max_established(Some(limits.max_connections))
                .with_max_established_per_peer(Some(limits.max_connections_per_peer))
                .with_max_pending_incoming(Some(limits.max_pending))
                .with_max_pending_outgoing(Some(limits.max_pending)),
        );
        let memory =
            memory_connection_limits::Behaviour::with_max_percentage(limits.max_memory_fraction);
        let identify = identify::Behaviour::new(
            identify::Config::new("/seedfed/id/1.0.0".into(), keypair.public())
                .with_agent_version(format!("seedfed/{}", env!("CARGO_PKG_VERSION"))),
        );
        let behaviour = Behaviour {
            limits: conn_limits,
            memory,
            identify,
            ping: ping::Behaviour::new(ping::Config::new()),
            admission,
            kad,
            gossipsub,
            rpc,
        };

        let idle = config.idle_timeout;
        let mut swarm = SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(setup_err)?
            .with_quic()
            .with_bandwidth_metrics(registry)
            .with_behaviour(move |_| behaviour)
            .map_err(setup_err)?
            .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
            .build();

        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| NetworkError::Listen {
                    addr: addr.to_string(),
                    reason: e.to_string(),
                })?;
        }

        let libp2p_metrics = Metrics::new(registry);
        let metrics = OurMetrics::new(registry);
        let known = config
            .peers_file
            .as_deref()
            .map(load_peers)
            .unwrap_or_default();
        if config.role == Role::Bootstrap {
            debug!("bootstrap role: no gossip topics");
        }
        Ok(Self {
            swarm,
            peer_id,
            record: config.record,
            chain_id: config.chain_id,
            difficulty: config.difficulty,
            stakes: config.stakes,
            bootstrap: config.bootstrap,
            admission_timeout: config.admission_timeout,
            discovery_interval: config.discovery_interval,
            validator: config.gossip_validator,
            peers_file: config.peers_file,
            cmd_rx,
            ev_tx,
            pending: HashMap::new(),
            disconnect_at: HashMap::new(),
            admitted: HashMap::new(),
            banned: HashMap::new(),
            identify_addrs: HashMap::new(),
            dialed_addr: HashMap::new(),
            known,
            known_dirty: false,
            requests: HashMap::new(),
            inbound: HashMap::new(),
            next_token: 0,
            topics: HashMap::new(),
            last_walk: None,
            rejected_total: 0,
            libp2p_metrics,
            metrics,
        })
    }

    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut discovery = tokio::time::interval(self.discovery_interval);
        discovery.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                cmd = self.cmd_rx.recv() => match cmd {
                    None => break,
                    Some(Command::Shutdown(done)) => {
                        self.save_peers();
                        let _ = done.send(());
                        break;
                    }
                    Some(cmd) => self.on_command(cmd),
                },
                _ = tick.tick() => self.expire_pending(),
                _ = discovery.tick() => self.discover(),
            }
        }
        info!("network task stopped");
    }

    fn emit(&mut self, ev: NetworkEvent) {
        if let Err(e) = self.ev_tx.try_send(ev) {
            if matches!(e, mpsc::error::TrySendError::Full(_)) {
                self.metrics.events_dropped.inc();
                warn!("network event dropped: consumer is slow");
            }
        }
    }

    fn is_banned(&mut self, peer: &PeerId) -> bool {
        match self.banned.get(peer) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                self.banned.remove(peer);
                false
            }
            None => false,
        }
    }

    fn dial_peer(&mut self, peer: PeerId, addrs: Vec<Multiaddr>) {
        if peer == self.peer_id || self.swarm.is_connected(&peer) || self.is_banned(&peer) {
            return;
        }
        let opts = DialOpts::peer_id(peer)
            .addresses(addrs)
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        if let Err(e) = self.swarm.dial(opts) {
            debug!(%peer, "dial not started: {e}");
        }
    }

    fn discover(&mut self) {
        let mut budget = MAX_DIALS_PER_ROUND;
        for addr in self.bootstrap.clone() {
            match split_peer(&addr) {
                (a, Some(peer)) => self.dial_peer(peer, vec![a]),
                (a, None) => {
                    let _ = self.swarm.dial(a);
                }
            }
        }
        let known: Vec<(PeerId, Vec<Multiaddr>)> = self
            .known
            .iter()
            .filter(|(p, _)| !self.swarm.is_connected(p))
            .map(|(p, a)| (*p, a.clone()))
            .take(budget)
            .collect();
        budget = budget.saturating_sub(known.len());
        for (p, a) in known {
            self.dial_peer(p, a);
        }
        let mut table = Vec::new();
        for bucket in self.swarm.behaviour_mut().kad.kbuckets() {
            for entry in bucket.iter() {
                let p = *entry.node.key.preimage();
                table.push((p, entry.node.value.iter().cloned().collect::<Vec<_>>()));
            }
        }
        self.metrics.routing_table.set(table.len() as i64);
        let table: Vec<_> = table
            .into_iter()
            .filter(|(p, _)| !self.swarm.is_connected(p))
            .take(budget)
            .collect();
        for (p, a) in table {
            self.dial_peer(p, a);
        }
        self.walk(true);
        if self.known_dirty {
            self.save_peers();
        }
    }

    /// Starts Kademlia lookups (our own id and a random one) to find more peers.
    fn walk(&mut self, force: bool) {
        let now = Instant::now();
        if !force
            && self
                .last_walk
                .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return;
        }
        if self.admitted.is_empty() {
            return;
        }
        self.last_walk = Some(now);
        let kad = &mut self.swarm.behaviour_mut().kad;
        kad.get_closest_peers(self.peer_id);
        kad.get_closest_peers(PeerId::random());
    }

    fn expire_pending(&mut self) {
        let now = Instant::now();
        let expired: Vec<PeerId> = self
            .pending
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in expired {
            self.reject(p, AdmissionRejection::Timeout);
        }
        let due: Vec<PeerId> = self
            .disconnect_at
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in due {
            self.disconnect_at.remove(&p);
            let _ = self.swarm.disconnect_peer_id(p);
        }
    }

    fn reject(&mut self, peer: PeerId, reason: AdmissionRejection) {
        self.pending.remove(&peer);
        if self.admitted.contains_key(&peer) {
            return;
        }
        warn!(%peer, %reason, "peer rejected at admission");
        if self.banned.len() >= MAX_BANNED {
            let now = Instant::now();
            self.banned.retain(|_, until| *until > now);
        }
        if self.banned.len() < MAX_BANNED {
            self.banned.insert(peer, Instant::now() + BAN);
        }
        // Banned from now on (its messages are refused, it is never inserted); the connection
        // closes shortly, so our refusal reaches the peer first.
        if self.disconnect_at.len() < MAX_BANNED {
            self.disconnect_at
                .insert(peer, Instant::now() + Duration::from_millis(500));
        } else {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        self.swarm.behaviour_mut().kad.remove_peer(&peer);
        self.known.remove(&peer);
        self.rejected_total += 1;
        self.metrics.rejected.inc();
        self.emit(NetworkEvent::PeerRejected { peer, reason });
    }

    fn admit(&mut self, peer: PeerId, record: &AdmissionRecord) {
        self.pending.remove(&peer);
        if self.admitted.contains_key(&peer) {
            return;
        }
        if self.admitted.len() >= MAX_ADMITTED {
            warn!(%peer, "admitted-peer table full; not admitting");
            let _ = self.swarm.disconnect_peer_id(peer);
            return;
        }
        self.admitted.insert(peer, record.x25519);
        let mut addrs: Vec<Multiaddr> = self.identify_addrs.get(&peer).cloned().unwrap_or_default();
        if let Some(a) = self.dialed_addr.get(&peer) {
            if !addrs.contains(a) {
                addrs.push(a.clone());
            }
        }
        self.add_to_routing(peer, addrs);
        let stake = self.stakes.get(&peer).copied().unwrap_or(0);
        info!(%peer, stake, "peer admitted");
        self.metrics.accepted.inc();
        self.metrics.admitted.set(self.admitted.len() as i64);
        self.emit(NetworkEvent::PeerAdmitted {
            peer,
            stake,
            x25519: record.x25519,
        });
        if self.admitted.len() == 1 {
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
        }
        self.walk(false);
    }

    fn add_to_routing(&mut self, peer: PeerId, addrs: Vec<Multiaddr>) {
        if addrs.is_empty() {
            return;
        }
        for a in &addrs {
            self.swarm.behaviour_mut().kad.add_address(&peer, a.clone());
        }
        let entry = self.known.entry(peer).or_default();
        for a in addrs {
            if !entry.contains(&a) {
                entry.push(a);
                self.known_dirty = true;
            }
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Status(tx) => {
                let _ = tx.send(self.status());
            }
            Command::Dial(addr, tx) => {
                let r = match split_peer(&addr) {
                    (a, Some(peer)) => self
                        .swarm
                        .dial(DialOpts::peer_id(peer).addresses(vec![a]).build()),
                    (a, None) => self.swarm.dial(a),
                };
                let _ = tx.send(r.map_err(|e| NetworkError::Dial(e.to_string())));
            }
            Command::Subscribe(topic, tx) => {
                let t = IdentTopic::new(topic_name(&self.chain_id, &topic));
                let gs = &mut self.swarm.behaviour_mut().gossipsub;
                let r = gs
                    .subscribe(&t)
                    .map(|_| ())
                    .map_err(|e| NetworkError::Publish(e.to_string()))
                    .and_then(|()| {
                        gs.set_topic_params(t.clone(), gossipsub::TopicScoreParams::default())
                            .map_err(|e| NetworkError::Publish(e.to_string()))
                    });
                if r.is_ok() {
                    self.topics.insert(t.hash(), topic);
                }
                let _ = tx.send(r);
            }
            Command::Publish(topic, data, tx) => {
                let t = IdentTopic::new(topic_name(&self.chain_id, &topic));
                let r = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(t, data)
                    .map(|_| ())
                    .map_err(|e| NetworkError::Publish(e.to_string()));
                let _ = tx.send(r);
            }
            Command::Request(peer, data, tx) => {
                if !self.admitted.contains_key(&peer) {
                    let _ = tx.send(Err(NetworkError::NotAdmitted(peer)));
                    return;
                }
                let id = self.swarm.behaviour_mut().rpc.send_request(&peer, data);
                self.requests.insert(id, tx);
            }
            Command::Respond(token, data) => {
                if let Some(ch) = self.inbound.remove(&token.0) {
                    let _ = self.swarm.behaviour_mut().rpc.send_response(ch, data);
                }
            }
            Command::Shutdown(_) => {}
        }
    }

    fn status(&mut self) -> NetworkStatus {
        let mut routing_table = Vec::new();
        for bucket in self.swarm.behaviour_mut().kad.kbuckets() {
            for entry in bucket.iter() {
                routing_table.push(entry.node.key.preimage().to_string());
            }
        }
        self.metrics.routing_table.set(routing_table.len() as i64);
        let mut admitted: Vec<AdmittedPeer> = self
            .admitted
            .iter()
            .map(|(p, x)| AdmittedPeer {
                peer_id: p.to_string(),
                connected: self.swarm.is_connected(p),
                stake: self.stakes.get(p).copied().unwrap_or(0),
                x25519: hex::encode(x),
                gossip_score: self.swarm.behaviour().gossipsub.peer_score(p),
            })
            .collect();
        admitted.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        let mut connected: Vec<String> = self
            .swarm
            .connected_peers()
            .map(|p| p.to_string())
            .collect();
        connected.sort();
        routing_table.sort();
        NetworkStatus {
            peer_id: self.peer_id.to_string(),
            chain_id: self.chain_id.clone(),
            listen_addrs: self.swarm.listeners().map(|a| a.to_string()).collect(),
            connected,
            admitted,
            routing_table,
            rejected_total: self.rejected_total,
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.libp2p_metrics.record(&event);
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                if self.is_banned(&peer_id) {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                if let ConnectedPoint::Dialer { address, .. } = &endpoint {
                    let (a, _) = split_peer(address);
                    self.dialed_addr.insert(peer_id, a);
                }
                if num_established.get() == 1 && !self.admitted.contains_key(&peer_id) {
                    debug!(%peer_id, "connected; starting admission");
                    self.pending
                        .insert(peer_id, Instant::now() + self.admission_timeout);
                    let req = AdmissionRequest(self.record.clone());
                    self.swarm
                        .behaviour_mut()
                        .admission
                        .send_request(&peer_id, req);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.pending.remove(&peer_id);
                self.identify_addrs.remove(&peer_id);
                self.dialed_addr.remove(&peer_id);
                if self.admitted.contains_key(&peer_id) {
                    self.emit(NetworkEvent::PeerDisconnected { peer: peer_id });
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!(?peer_id, "outgoing connection failed: {error}");
            }
            SwarmEvent::Behaviour(ev) => self.on_behaviour_event(ev),
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Admission(ev) => self.on_admission(ev),
            BehaviourEvent::Identify(ev) => {
                self.libp2p_metrics.record(&ev);
                if let identify::Event::Received { peer_id, info, .. } = ev {
                    let addrs: Vec<Multiaddr> = info
                        .listen_addrs
                        .into_iter()
                        .filter(|a| {
                            !a.iter().any(|p| {
                                matches!(p, Protocol::Ip4(ip) if ip.is_unspecified())
                                    || matches!(p, Protocol::Ip6(ip) if ip.is_unspecified())
                            })
                        })
                        .take(16)
                        .collect();
                    if self.admitted.contains_key(&peer_id) {
                        self.add_to_routing(peer_id, addrs.clone());
                    }
                    self.identify_addrs.insert(peer_id, addrs);
                }
            }
            BehaviourEvent::Kad(ev) => {
                self.libp2p_metrics.record(&ev);
                if let kad::Event::OutboundQueryProgressed {
                    result: kad::QueryResult::GetClosestPeers(r),
                    ..
                } = ev
                {
                    let peers = match r {
                        Ok(ok) => ok.peers,
                        Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
                    };
                    for info in peers.into_iter().take(MAX_DIALS_PER_ROUND) {
                        self.dial_peer(info.peer_id, info.addrs);
                    }
                }
            }
            BehaviourEvent::Gossipsub(ev) => {
                self.libp2p_metrics.record(&ev);
                if let gossipsub::Event::Message {
                    propagation_source,
                    message_id,
                    message,
                } = ev
                {
                    self.on_gossip(propagation_source, message_id, message);
                }
            }
            BehaviourEvent::Ping(ev) => self.libp2p_metrics.record(&ev),
            BehaviourEvent::Rpc(ev) => self.on_rpc(ev),
            _ => {}
        }
    }

    fn on_admission(&mut self, ev: request_response::Event<AdmissionRequest, AdmissionResponse>) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    if self.is_banned(&peer) {
                        let resp = AdmissionResponse::Refused("banned".into());
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .admission
                            .send_response(channel, resp);
                        return;
                    }
                    match request.0.verify(&peer, &self.chain_id, self.difficulty) {
                        Ok(()) => {
                            let resp = AdmissionResponse::Accepted(self.record.clone());
                            let _ = self
                                .swarm
                                .behaviour_mut()
                                .admission
                                .send_response(channel, resp);
                            self.admit(peer, &request.0);
                        }
                        Err(reason) => {
                            let resp = AdmissionResponse::Refused(reason.to_string());
                            let _ = self
                                .swarm
                                .behaviour_mut()
                                .admission
                                .send_response(channel, resp);
                            self.reject(peer, reason);
                        }
                    }
                }
                request_response::Message::Response { response, .. } => match response {
                    AdmissionResponse::Accepted(record) => {
                        match record.verify(&peer, &self.chain_id, self.difficulty) {
                            Ok(()) => self.admit(peer, &record),
                            Err(reason) => self.reject(peer, reason),
                        }
                    }
                    AdmissionResponse::Refused(reason) => {
                        // The peer will not talk to us: forget it even if its record was fine.
                        if self.admitted.remove(&peer).is_some() {
                            self.metrics.admitted.set(self.admitted.len() as i64);
                        }
                        self.reject(peer, AdmissionRejection::RefusedByRemote(reason));
                    }
                },
            },
            request_response::Event::OutboundFailure { peer, error, .. }
                if !self.admitted.contains_key(&peer) =>
            {
                if let request_response::OutboundFailure::UnsupportedProtocols = error {
                    self.reject(peer, AdmissionRejection::Exchange(error.to_string()));
                } else {
                    debug!(%peer, "admission request failed: {error}");
                }
            }
            _ => {}
        }
    }

    fn on_gossip(&mut self, source: PeerId, id: gossipsub::MessageId, message: gossipsub::Message) {
        let verdict = match (message.source, self.topics.get(&message.topic)) {
            _ if !self.admitted.contains_key(&source) => GossipVerdict::Reject,
            (None, _) => GossipVerdict::Reject,
            (Some(author), _) if self.banned.contains_key(&author) => GossipVerdict::Reject,
            (Some(_), None) => GossipVerdict::Ignore,
            (Some(author), Some(topic)) => match &self.validator {
                Some(v) => v(&author, topic, &message.data),
                None => GossipVerdict::Accept,
            },
        };
        let acceptance = match verdict {
            GossipVerdict::Accept => MessageAcceptance::Accept,
            GossipVerdict::Ignore => MessageAcceptance::Ignore,
            GossipVerdict::Reject => MessageAcceptance::Reject,
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&id, &source, acceptance);
        match verdict {
            GossipVerdict::Accept => {
                if let (Some(author), Some(topic)) =
                    (message.source, self.topics.get(&message.topic))
                {
                    let topic = topic.clone();
                    self.emit(NetworkEvent::Gossip {
                        author,
                        topic,
                        data: message.data,
                    });
                }
            }
            GossipVerdict::Reject => {
                self.metrics.gossip_rejected.inc();
                debug!(%source, "gossip message rejected");
            }
            GossipVerdict::Ignore => {}
        }
    }

    fn on_rpc(&mut self, ev: request_response::Event<Vec<u8>, Vec<u8>>) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    if !self.admitted.contains_key(&peer) || self.inbound.len() >= MAX_INBOUND {
                        return; // dropping the channel fails the remote's request
                    }
                    let token = self.next_token;
                    self.next_token += 1;
                    self.inbound.insert(token, channel);
                    self.emit(NetworkEvent::Request {
                        peer,
                        data: request,
                        token: ResponseToken(token),
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(tx) = self.requests.remove(&request_id) {
                        let _ = tx.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(tx) = self.requests.remove(&request_id) {
                    let _ = tx.send(Err(NetworkError::Request(error.to_string())));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, "inbound request failed: {error}");
            }
            _ => {}
        }
        // Drop answer channels whose connection is gone.
        self.inbound.retain(|_, ch| ch.is_open());
    }

    fn save_peers(&mut self) {
        let Some(path) = &self.peers_file else {
            return;
        };
        let file = PeersFile {
            peers: self
                .known
                .iter()
                .take(MAX_SAVED_PEERS)
                .map(|(p, a)| SavedPeer {
                    peer_id: p.to_string(),
                    addrs: a.iter().map(|a| a.to_string()).collect(),
                })
                .collect(),
        };
        match serde_json::to_vec_pretty(&file) {
            Ok(bytes) => match crate::fsutil::write_atomic(path, &bytes, 0o644) {
                Ok(()) => self.known_dirty = false,
                Err(e) => warn!("cannot save peers to {}: {e}", path.display()),
            },
            Err(e) => warn!("cannot encode peers: {e}"),
        }
    }
}

/// Reads the peers file; a missing or corrupt file yields no peers (it is only a hint).
fn load_peers(path: &std::path::Path) -> BTreeMap<PeerId, Vec<Multiaddr>> {
    let Ok(bytes) = std::fs::read(path) else {
        return BTreeMap::new();
    };
    let file: PeersFile = match serde_json::from_slice(&bytes) {
        Ok(f) => f,
        Err(e) => {
            warn!("ignoring corrupt peers file {}: {e}", path.display());
            return BTreeMap::new();
        }
    };
    let mut out = BTreeMap::new();
    for p in file.peers.into_iter().take(MAX_SAVED_PEERS) {
        if let Ok(id) = p.peer_id.parse::<PeerId>() {
            let addrs: Vec<Multiaddr> = p.addrs.iter().filter_map(|a| a.parse().ok()).collect();
            out.insert(id, addrs);
        }
    }
    out
}
