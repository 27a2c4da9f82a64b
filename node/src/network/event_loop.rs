//! The task that owns the `Swarm`: applies the handle's commands, runs the admission handshake
//! ([`handshake`]; bookkeeping in [`AdmissionTracker`]), hands admitted peers to [`Discovery`],
//! validates gossip, relays requests, reconnects peers whose gossip does not drain
//! ([`SlowPeers`]), and saves the peers file off the task.
//!
//! Guarantees: nothing here blocks (disk writes go to the blocking pool, events to a bounded
//! channel that drops and counts when full); an unadmitted peer's gossip is rejected and its
//! requests are never delivered; on `Shutdown` the peers file is written before the answer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, TopicHash};
use libp2p::metrics::Recorder;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{DialError, SwarmEvent};
use libp2p::{identify, Multiaddr, PeerId, Swarm};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::admission::{AdmissionRecord, AdmissionRejection};
use super::admission_tracker::AdmissionTracker;
use super::behaviour::{self, Behaviour, Event, RpcBytes, Settings};
use super::discovery::{self, split_peer, Discovery};
use super::metrics::Metrics;
use super::peers_file::{self, PeersFile};
use super::rate::{Inbound, InboundRates};
use super::slots::IsValidator;
use super::slow_peers::SlowPeers;
use super::{
    swarm, topic_name, AdmittedPeer, Command, GossipValidator, GossipVerdict, LedgerDifficulty,
    NetworkConfig, NetworkError, NetworkEvent, NetworkStatus, ResponseToken, Role,
};

mod handshake;

/// Bound on the distinct addresses peers observed us at that we keep (a hint in the status).
const MAX_OBSERVED: usize = 16;
/// Bound on unanswered inbound requests.
const MAX_INBOUND: usize = 1024;
/// Period of the admission timers (deadlines, delayed disconnections).
const TICK: Duration = Duration::from_millis(250);
/// Why gossip commands fail on a bootstrap node.
const NO_GOSSIP: &str = "this bootstrap node runs no gossipsub";
/// Why requests fail on a bootstrap node.
const NO_RPC: &str = "this bootstrap node runs no request-response";

pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    peer_id: PeerId,
    record: AdmissionRecord,
    chain_id: String,
    /// The genesis difficulty: the floor, and what a validator's record needs.
    difficulty: u8,
    ledger_difficulty: Option<LedgerDifficulty>,
    /// The bootstrap nodes the operator configured (by their `/p2p/` suffix): like validators,
    /// they need only the genesis difficulty (they follow no chain, so cannot solve again).
    bootstrap_peers: BTreeSet<PeerId>,
    stakes: BTreeMap<PeerId, u64>,
    discovery_interval: Duration,
    validator: Option<GossipValidator>,
    is_validator: IsValidator,
    rates: InboundRates,
    cmd_rx: mpsc::Receiver<Command>,
    ev_tx: mpsc::Sender<NetworkEvent>,
    admission: AdmissionTracker,
    discovery: Discovery,
    peers_file: Option<PeersFile>,
    requests: HashMap<OutboundRequestId, oneshot::Sender<Result<Vec<u8>, NetworkError>>>,
    inbound: HashMap<u64, ResponseChannel<RpcBytes>>,
    next_token: u64,
    topics: HashMap<TopicHash, String>,
    metrics: Metrics,
    /// Gossip to each peer that does not drain, and the peers to dial again (`slow_peers`).
    slow_peers: SlowPeers,
    /// Our addresses as peers observed them (identify), at most [`MAX_OBSERVED`].
    observed: BTreeSet<Multiaddr>,
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
        let is_validator: IsValidator = config.is_validator.clone().unwrap_or_else(|| {
            let stakes = config.stakes.clone();
            Arc::new(move |p: &PeerId| stakes.get(p).is_some_and(|s| *s > 0))
        });
        let swarm = swarm::build(
            keypair,
            Settings {
                role: config.role,
                limits: &config.limits,
                admission_timeout: config.admission_timeout,
                discovery_interval: config.discovery_interval,
                is_validator: is_validator.clone(),
                hide_listen_addrs: !config.announce.is_empty(),
            },
            config.idle_timeout,
            &config.listen,
            &config.announce,
            registry,
        )?;
        let metrics = Metrics::new(registry);
        let known = config
            .peers_file
            .as_deref()
            .map(peers_file::load)
            .unwrap_or_default();
        if config.role == Role::Bootstrap {
            debug!("bootstrap role: no gossipsub, no rpc");
        }
        Ok(Self {
            swarm,
            peer_id,
            record: config.record,
            chain_id: config.chain_id,
            difficulty: config.difficulty,
            ledger_difficulty: config.ledger_difficulty,
            bootstrap_peers: config
                .bootstrap
                .iter()
                .filter_map(|a| split_peer(a).1)
                .collect(),
            stakes: config.stakes,
            discovery_interval: config.discovery_interval,
            validator: config.gossip_validator,
            is_validator,
            rates: InboundRates::new(config.limits.rpc_rate),
            cmd_rx,
            ev_tx,
            admission: AdmissionTracker::new(config.admission_timeout),
            discovery: Discovery::new(peer_id, config.bootstrap, known),
            peers_file: config.peers_file.map(|p| PeersFile::new(p, 0)),
            requests: HashMap::new(),
            inbound: HashMap::new(),
            next_token: 0,
            topics: HashMap::new(),
            metrics,
            slow_peers: SlowPeers::default(),
            observed: BTreeSet::new(),
        })
    }

    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        let mut discovery = tokio::time::interval(self.discovery_interval);
        discovery.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                cmd = self.cmd_rx.recv() => match cmd {
                    None => break,
                    Some(Command::Shutdown(done)) => {
                        if let Some(file) = &mut self.peers_file {
                            let (generation, known) = self.discovery.known();
                            file.flush(generation, known).await;
                        }
                        let _ = done.send(());
                        break;
                    }
                    Some(cmd) => self.on_command(cmd),
                },
                _ = tick.tick() => self.on_tick(),
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

    fn discover(&mut self) {
        self.rates.tidy();
        let now = Instant::now();
        let size = self.discovery.round(&mut self.swarm, &self.admission, now);
        self.metrics.routing_table.set(size as i64);
        if let Some(file) = &mut self.peers_file {
            let (generation, known) = self.discovery.known();
            file.save(generation, known);
        }
    }

    fn on_tick(&mut self) {
        let due = self.admission.poll(Instant::now());
        for p in due.timed_out {
            self.reject(p, AdmissionRejection::Timeout);
        }
        for p in due.disconnect {
            let _ = self.swarm.disconnect_peer_id(p);
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
                let r = match r {
                    // Connected already, or being dialled (discovery got there first): what
                    // the caller asked for holds, or will.
                    Err(DialError::DialPeerConditionFalse(_)) => Ok(()),
                    other => other.map_err(|e| NetworkError::Dial(e.to_string())),
                };
                let _ = tx.send(r);
            }
            Command::Subscribe(topic, tx) => {
                let t = IdentTopic::new(topic_name(&self.chain_id, &topic));
                let r = match self.swarm.behaviour_mut().gossipsub.as_mut() {
                    None => Err(NetworkError::Publish(NO_GOSSIP.into())),
                    Some(gs) => gs
                        .subscribe(&t)
                        .map(|_| ())
                        .map_err(|e| NetworkError::Publish(e.to_string()))
                        .and_then(|()| {
                            gs.set_topic_params(t.clone(), behaviour::topic_score_params())
                                .map_err(|e| NetworkError::Publish(e.to_string()))
                        }),
                };
                if r.is_ok() {
                    self.topics.insert(t.hash(), topic);
                }
                let _ = tx.send(r);
            }
            Command::Publish(topic, data, tx) => {
                let t = IdentTopic::new(topic_name(&self.chain_id, &topic));
                let r = match self.swarm.behaviour_mut().gossipsub.as_mut() {
                    None => Err(NetworkError::Publish(NO_GOSSIP.into())),
                    Some(gs) => gs.publish(t, data).map(|_| ()).map_err(|e| {
                        self.metrics.publish_failures.record(&topic, &e);
                        NetworkError::Publish(e.to_string())
                    }),
                };
                let _ = tx.send(r);
            }
            Command::Request(peer, data, tx) => {
                if !self.admission.is_admitted(&peer) {
                    let _ = tx.send(Err(NetworkError::NotAdmitted(peer)));
                    return;
                }
                match self.swarm.behaviour_mut().rpc.as_mut() {
                    None => {
                        let _ = tx.send(Err(NetworkError::Request(NO_RPC.into())));
                    }
                    Some(rpc) => {
                        let id = rpc.send_request(&peer, RpcBytes::from(data));
                        self.requests.insert(id, tx);
                    }
                }
            }
            Command::Respond(token, data) => {
                if let (Some(ch), Some(rpc)) = (
                    self.inbound.remove(&token.0),
                    self.swarm.behaviour_mut().rpc.as_mut(),
                ) {
                    let _ = rpc.send_response(ch, RpcBytes::from(data));
                }
            }
            Command::SetRecord(record, tx) => {
                let r = record
                    .verify(&self.peer_id, &self.chain_id, self.difficulty)
                    .map_err(NetworkError::BadRecord);
                if r.is_ok() {
                    info!(nonce = record.nonce, "admission record replaced");
                    self.record = *record;
                }
                let _ = tx.send(r);
            }
            Command::Shutdown(_) => {}
        }
    }

    fn status(&mut self) -> NetworkStatus {
        let table = discovery::routing_table(&mut self.swarm);
        let peer_addrs: BTreeMap<String, Vec<String>> = table
            .iter()
            .map(|(p, a)| (p.to_string(), a.iter().map(|a| a.to_string()).collect()))
            .collect();
        let mut routing_table: Vec<String> =
            table.into_iter().map(|(p, _)| p.to_string()).collect();
        self.metrics.routing_table.set(routing_table.len() as i64);
        let gossipsub = self.swarm.behaviour().gossipsub.as_ref();
        let mut admitted: Vec<AdmittedPeer> = self
            .admission
            .admitted()
            .map(|(p, x)| AdmittedPeer {
                peer_id: p.to_string(),
                connected: self.swarm.is_connected(p),
                stake: self.stakes.get(p).copied().unwrap_or(0),
                x25519: hex::encode(x),
                gossip_score: gossipsub.and_then(|g| g.peer_score(p)),
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
            external_addrs: self
                .swarm
                .external_addresses()
                .map(|a| a.to_string())
                .collect(),
            observed_addrs: self.observed.iter().map(|a| a.to_string()).collect(),
            peer_addrs,
            connected,
            admitted,
            routing_table,
            rejected_total: self.admission.rejected_total(),
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<Event>) {
        self.metrics.libp2p.record(&event);
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
                let now = Instant::now();
                if self.admission.is_banned(&peer_id, now) {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                self.discovery.connected(peer_id, &endpoint);
                if num_established.get() == 1 && self.admission.connected(peer_id, now) {
                    debug!(%peer_id, "connected; starting admission");
                    self.ask_record(peer_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.admission.disconnected(&peer_id);
                self.discovery.disconnected(&peer_id);
                self.slow_peers.on_disconnected(&mut self.swarm, peer_id);
                if self.admission.is_admitted(&peer_id) {
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

    fn on_behaviour_event(&mut self, event: Event) {
        match event {
            Event::Admission(ev) => self.on_admission(ev),
            Event::Identify(ev) => {
                self.metrics.libp2p.record(&*ev);
                if let identify::Event::Received { peer_id, info, .. } = *ev {
                    if self.observed.len() < MAX_OBSERVED
                        && self.observed.insert(info.observed_addr.clone())
                    {
                        info!(address = %info.observed_addr, %peer_id, "a peer sees us at this address");
                    }
                    let admitted = self.admission.is_admitted(&peer_id);
                    self.discovery.identified(
                        &mut self.swarm,
                        peer_id,
                        info.listen_addrs,
                        admitted,
                    );
                }
            }
            Event::Kad(ev) => {
                self.metrics.libp2p.record(&ev);
                self.discovery
                    .on_kad_event(&mut self.swarm, &self.admission, Instant::now(), ev);
            }
            Event::Gossipsub(ev) => {
                self.metrics.libp2p.record(&ev);
                match ev {
                    gossipsub::Event::Message {
                        propagation_source,
                        message_id,
                        message,
                    } => self.on_gossip(propagation_source, message_id, message),
                    gossipsub::Event::SlowPeer {
                        peer_id,
                        failed_messages,
                    } => self.slow_peers.on_slow_peer(
                        &mut self.swarm,
                        &self.metrics.stuck_reconnects,
                        peer_id,
                        &failed_messages,
                    ),
                    _ => {}
                }
            }
            Event::Ping(ev) => self.metrics.libp2p.record(&ev),
            Event::Rpc(ev) => self.on_rpc(ev),
        }
    }

    /// A gossip message (anonymous: see `behaviour::gossipsub`) from `source`, the peer that
    /// forwarded it, which scoring and admission judge; what the message says is judged by
    /// the chain's validator, which checks the signatures it carries.
    fn on_gossip(&mut self, source: PeerId, id: gossipsub::MessageId, message: gossipsub::Message) {
        let now = Instant::now();
        let verdict = match self.topics.get(&message.topic) {
            _ if !self.admission.is_admitted(&source) => GossipVerdict::Reject,
            _ if self.admission.is_banned(&source, now) => GossipVerdict::Reject,
            None => GossipVerdict::Ignore,
            Some(topic) => match &self.validator {
                Some(v) => v(&source, topic, &message.data),
                None => GossipVerdict::Accept,
            },
        };
        let acceptance = match verdict {
            GossipVerdict::Accept => MessageAcceptance::Accept,
            GossipVerdict::Ignore => MessageAcceptance::Ignore,
            GossipVerdict::Reject => MessageAcceptance::Reject,
        };
        if let Some(gs) = self.swarm.behaviour_mut().gossipsub.as_mut() {
            gs.report_message_validation_result(&id, &source, acceptance);
        }
        match verdict {
            GossipVerdict::Accept => {
                if let Some(topic) = self.topics.get(&message.topic) {
                    let topic = topic.clone();
                    self.emit(NetworkEvent::Gossip {
                        source,
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

    fn on_rpc(&mut self, ev: request_response::Event<RpcBytes, RpcBytes>) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    if !self.admission.is_admitted(&peer) || self.inbound.len() >= MAX_INBOUND {
                        return; // dropping the channel fails the remote's request
                    }
                    if !self.rates.allow(Inbound::Rpc, &peer) {
                        debug!(%peer, "request over the peer's rate; dropped");
                        return;
                    }
                    let token = self.next_token;
                    self.next_token += 1;
                    self.inbound.insert(token, channel);
                    self.emit(NetworkEvent::Request {
                        peer,
                        data: request.into_vec(),
                        token: ResponseToken(token),
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(tx) = self.requests.remove(&request_id) {
                        let _ = tx.send(Ok(response.into_vec()));
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
}
