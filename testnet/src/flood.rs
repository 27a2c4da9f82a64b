//! A bounded flood of hostile traffic against a running local testnet: several fresh
//! identities, each admitted like any newcomer (a valid proof of work), connect to every node
//! over libp2p and, until a deadline, publish malformed and valid-looking-but-invalid gossip on
//! the chain's topics ([`gossip`]), send request-response requests ([`requests`]) and post
//! invalid transactions and sign requests to the nodes' HTTP APIs ([`api`]). Used by
//! `seedfed-bench flood` and by the flood test (`testnet/tests/flood.rs`).
//!
//! Guarantees: loopback only (a target must be a `127.0.0.1` address, checked before anything
//! is sent); bounded in time (every loop stops at the plan's deadline) and in count (at most
//! [`FloodPlan::max_per_kind`] messages of each channel per identity, at most
//! [`MAX_IN_FLIGHT`] unanswered requests per identity); [`Flooders::run`] returns once every
//! flooder's network task is shut down, so nothing keeps flooding after it.
//!
//! Modules: `identity` (fresh keys with an admission proof), `gossip`, `requests` and `api`
//! (what is sent on each channel), `observe` (what the nodes report they did with it).

pub mod api;
pub mod gossip;
pub mod identity;
pub mod observe;
pub mod requests;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use seedfed_node::api::ApiClient;
use seedfed_node::chain::wire::{CONSENSUS_TOPIC, TX_TOPIC};
use seedfed_node::network::{self, GossipVerdict, Limits, NetworkConfig, NetworkHandle, Role};
use seedfed_protocol::member::MemberId;
use serde::Serialize;
use thiserror::Error;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Transactions per flooded batch (gossip and API alike).
const BATCH: u64 = 16;

/// A batch of transfers in `author`'s name (a validator's) to `to`, each carrying `signature`,
/// which is not the author's: refused by the gossip check and by the API.
fn forged_transfers(
    author: MemberId,
    to: MemberId,
    seq: u64,
    signature: seedfed_protocol::ledger::Signature64,
) -> Vec<seedfed_protocol::ledger::SignedTx> {
    (0..BATCH)
        .map(|i| seedfed_protocol::ledger::SignedTx {
            tx: seedfed_protocol::ledger::Tx {
                author,
                nonce: seq.wrapping_mul(BATCH).wrapping_add(i),
                body: seedfed_protocol::ledger::TxBody::Transfer { to, amount: 1 },
            },
            signature,
        })
        .collect()
}

/// A batch of properly signed transfers by `key`, a non-member, to `to`: valid-looking, and
/// refused by every mempool (not a member). Nonces follow `seq`, so no two batches are equal.
fn non_member_transfers(
    key: &ed25519_dalek::SigningKey,
    chain_id: &str,
    to: MemberId,
    seq: u64,
) -> Vec<seedfed_protocol::ledger::SignedTx> {
    let me = MemberId(key.verifying_key().to_bytes());
    (0..BATCH)
        .map(|i| {
            seedfed_protocol::ledger::Tx {
                author: me,
                nonce: seq.wrapping_mul(BATCH).wrapping_add(i),
                body: seedfed_protocol::ledger::TxBody::Transfer { to, amount: 1 },
            }
            .sign(chain_id, key)
        })
        .collect()
}
use tokio::time::Instant;

use self::api::{ApiContext, ApiKind, ApiOutcome};
use self::gossip::GossipKind;
use self::identity::Identity;
use self::requests::RequestKind;

/// Unanswered requests one flooder keeps open at most.
pub const MAX_IN_FLIGHT: usize = 32;

/// Why a flood could not start.
#[derive(Debug, Error)]
pub enum FloodError {
    /// A target is not on loopback.
    #[error("flood target {0} is not on 127.0.0.1: the flood runs on loopback only")]
    NotLoopback(String),
    /// A target's libp2p address names no peer.
    #[error("flood target {0} has no /p2p/ peer id")]
    NoPeerId(String),
    /// The admission difficulty is above what a flooder solves.
    #[error("difficulty {0} is above the {max} bits a flooder solves", max = identity::MAX_DIFFICULTY)]
    Difficulty(u8),
    /// An identity could not be made.
    #[error("cannot make a flooder identity: {0}")]
    Identity(String),
    /// A flooder's network did not start.
    #[error("a flooder's network did not start: {0}")]
    Network(String),
    /// A flooder was not admitted by every node in time.
    #[error("flooder {peer} was not admitted by {missing} in {secs} s")]
    NotAdmitted {
        /// The flooder.
        peer: String,
        /// The nodes that had not admitted it.
        missing: String,
        /// The wait.
        secs: u64,
    },
    /// The plan is empty or has no validators.
    #[error("bad flood plan: {0}")]
    Plan(String),
}

/// One node to flood.
#[derive(Clone, Debug)]
pub struct Target {
    /// Its name (`node0`, ...).
    pub name: String,
    /// Its local API.
    pub api: SocketAddr,
    /// Its libp2p address, with its `/p2p/` peer id.
    pub p2p: Multiaddr,
}

impl Target {
    fn peer_id(&self) -> Result<PeerId, FloodError> {
        self.p2p
            .iter()
            .find_map(|p| match p {
                Protocol::P2p(id) => Some(id),
                _ => None,
            })
            .ok_or_else(|| FloodError::NoPeerId(self.p2p.to_string()))
    }

    /// Whether both addresses are on 127.0.0.1 (no other address, no name to resolve).
    fn on_loopback(&self) -> bool {
        let mut loopback = false;
        for p in self.p2p.iter() {
            match p {
                Protocol::Ip4(ip) if ip == Ipv4Addr::LOCALHOST => loopback = true,
                Protocol::Ip4(_)
                | Protocol::Ip6(_)
                | Protocol::Dns(_)
                | Protocol::Dns4(_)
                | Protocol::Dns6(_)
                | Protocol::Dnsaddr(_) => return false,
                _ => {}
            }
        }
        loopback && self.api.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST)
    }
}

/// How hard and how long to flood.
#[derive(Clone, Debug)]
pub struct FloodPlan {
    /// The chain id.
    pub chain_id: String,
    /// The admission proof-of-work difficulty the nodes require.
    pub difficulty: u8,
    /// Flooding identities.
    pub identities: usize,
    /// How long the flood lasts (each loop stops at this deadline).
    pub duration: Duration,
    /// Gossip messages per second per identity.
    pub gossip_per_s: u32,
    /// Requests per second per identity.
    pub requests_per_s: u32,
    /// API calls per second per identity.
    pub api_per_s: u32,
    /// At most this many messages per channel (gossip, requests, API) per identity.
    pub max_per_kind: u64,
    /// Validators' keys, for stale-nonce transactions (empty: none are sent).
    pub stale_keys: Vec<ed25519_dalek::SigningKey>,
    /// Seconds each flooder has to be admitted by every target.
    pub admission_secs: u64,
}

/// Counts of one channel.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChannelCounts {
    /// Sent (published, requested, posted).
    pub sent: u64,
    /// Of those, answered with a refusal (requests: a `Refused` response; API: an error
    /// status).
    pub refused: u64,
    /// Of those, taken (API: a node accepted a flooded transaction or request; requests: a
    /// response that is not a refusal, e.g. blocks).
    pub accepted: u64,
    /// Failed locally or got no answer (publish refused by our own gossipsub, a dropped
    /// request, an API timeout).
    pub failed: u64,
    /// Not sent: no request slot free, or nothing to send (no stale nonce yet).
    pub skipped: u64,
}

/// What a flood did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FloodReport {
    /// The flooders' peer ids.
    pub flooders: Vec<String>,
    /// Gossip publishes.
    pub gossip: ChannelCounts,
    /// Request-response requests.
    pub requests: ChannelCounts,
    /// HTTP API calls.
    pub api: ChannelCounts,
    /// The kinds of API calls some node accepted (each should have been refused).
    pub api_accepted_kinds: BTreeSet<String>,
    /// From the start of [`Flooders::run`] to the last flooder stopped, seconds.
    pub seconds: f64,
}

/// Counts one more.
fn bump(which: &AtomicU64) {
    which.fetch_add(1, Ordering::Relaxed);
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    refused: AtomicU64,
    accepted: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ChannelCounts {
        ChannelCounts {
            sent: self.sent.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
        }
    }
}

/// One admitted flooder.
struct Flooder {
    identity: Identity,
    handle: NetworkHandle,
    task: tokio::task::JoinHandle<()>,
    drain: tokio::task::JoinHandle<()>,
}

/// Flooders admitted by every target, ready to [`run`](Flooders::run).
pub struct Flooders {
    plan: FloodPlan,
    targets: Vec<Target>,
    peers: Vec<PeerId>,
    validators: Vec<MemberId>,
    flooders: Vec<Flooder>,
}

/// A flooder's network: loopback, no bootstrap (it dials the targets), its own gossip
/// ignored (it forwards nothing it hears).
fn network_config(id: &Identity, plan: &FloodPlan) -> NetworkConfig {
    NetworkConfig {
        keypair: id.keypair.clone(),
        record: id.record.clone(),
        chain_id: plan.chain_id.clone(),
        difficulty: plan.difficulty,
        ledger_difficulty: None,
        stakes: BTreeMap::new(),
        role: Role::Node,
        listen: vec![Multiaddr::empty()
            .with(Protocol::Ip4(Ipv4Addr::LOCALHOST))
            .with(Protocol::Tcp(0))],
        announce: vec![],
        bootstrap: vec![],
        limits: Limits::default(),
        admission_timeout: Duration::from_secs(10),
        discovery_interval: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        gossip_validator: Some(Arc::new(|_: &PeerId, _: &str, _: &[u8]| {
            GossipVerdict::Ignore
        })),
        is_validator: None,
        peers_file: None,
    }
}

/// The validators every target agrees on, read from the first target that answers.
async fn validators(client: &ApiClient, targets: &[Target]) -> Result<Vec<MemberId>, FloodError> {
    for t in targets {
        if let Some(c) = client.status(t.api).await.ok().and_then(|s| s.chain) {
            let v: Vec<MemberId> = c
                .validators
                .iter()
                .filter_map(|v| seedfed_node::api::parse_member(&v.id).ok())
                .collect();
            if !v.is_empty() {
                return Ok(v);
            }
        }
    }
    Err(FloodError::Plan("no target reports validators".into()))
}

impl Flooders {
    /// Makes `plan.identities` fresh identities, connects each to every target and waits until
    /// every target admitted every flooder (at most `plan.admission_secs`). Nothing is flooded
    /// yet. Everything started is stopped again if this fails.
    pub async fn prepare(plan: FloodPlan, targets: Vec<Target>) -> Result<Self, FloodError> {
        if plan.identities == 0 || targets.is_empty() {
            return Err(FloodError::Plan("no identities or no targets".into()));
        }
        for t in &targets {
            if !t.on_loopback() {
                return Err(FloodError::NotLoopback(format!("{} {}", t.api, t.p2p)));
            }
        }
        let peers = targets
            .iter()
            .map(Target::peer_id)
            .collect::<Result<Vec<_>, _>>()?;
        let client = ApiClient::new();
        let validators = validators(&client, &targets).await?;
        let mut flooders = Flooders {
            plan,
            targets,
            peers,
            validators,
            flooders: vec![],
        };
        for _ in 0..flooders.plan.identities {
            let identity = Identity::fresh(&flooders.plan.chain_id, flooders.plan.difficulty)?;
            let mut registry = prometheus_client::registry::Registry::default();
            let (handle, mut events, task) =
                network::spawn(network_config(&identity, &flooders.plan), &mut registry)
                    .map_err(|e| FloodError::Network(e.to_string()))?;
            // Whatever the nodes tell a flooder is dropped (requests go unanswered).
            let drain = tokio::spawn(async move { while events.recv().await.is_some() {} });
            for t in &flooders.targets {
                handle
                    .dial(t.p2p.clone())
                    .await
                    .map_err(|e| FloodError::Network(e.to_string()))?;
            }
            for topic in [CONSENSUS_TOPIC, TX_TOPIC] {
                handle
                    .subscribe(topic)
                    .await
                    .map_err(|e| FloodError::Network(e.to_string()))?;
            }
            flooders.flooders.push(Flooder {
                identity,
                handle,
                task,
                drain,
            });
        }
        flooders.wait_admitted(&client).await?;
        Ok(flooders)
    }

    /// The flooders' peer ids.
    pub fn peer_ids(&self) -> Vec<PeerId> {
        self.flooders.iter().map(|f| f.identity.peer_id()).collect()
    }

    /// Waits until every target lists every flooder as admitted.
    async fn wait_admitted(&self, client: &ApiClient) -> Result<(), FloodError> {
        let secs = self.plan.admission_secs;
        let deadline = Instant::now() + Duration::from_secs(secs);
        let want: BTreeSet<String> = self.peer_ids().iter().map(|p| p.to_string()).collect();
        loop {
            let mut missing = BTreeMap::<String, Vec<String>>::new();
            for t in &self.targets {
                let have: BTreeSet<String> = match client.status(t.api).await {
                    Ok(s) => s.network.admitted.into_iter().map(|p| p.peer_id).collect(),
                    Err(_) => BTreeSet::new(),
                };
                for p in want.difference(&have) {
                    missing.entry(p.clone()).or_default().push(t.name.clone());
                }
            }
            let Some((peer, nodes)) = missing.into_iter().next() else {
                return Ok(());
            };
            if Instant::now() > deadline {
                return Err(FloodError::NotAdmitted {
                    peer,
                    missing: nodes.join(", "),
                    secs,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Floods until the plan's duration has passed (or every channel sent its maximum), then
    /// shuts every flooder's network down and reports what was sent.
    pub async fn run(self) -> FloodReport {
        let started = Instant::now();
        let deadline = started + self.plan.duration;
        let plan = Arc::new(self.plan);
        let targets = Arc::new(self.targets);
        let peers = Arc::new(self.peers);
        let validators = Arc::new(self.validators);
        let height = Arc::new(AtomicU64::new(0));
        let counts = Arc::new([
            Counters::default(),
            Counters::default(),
            Counters::default(),
        ]);
        let accepted_kinds = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
        let mut tasks = JoinSet::new();
        tasks.spawn(follow_height(targets.clone(), height.clone(), deadline));
        let mut handles = Vec::new();
        let mut report = FloodReport::default();
        for (i, f) in self.flooders.into_iter().enumerate() {
            report.flooders.push(f.identity.peer_id().to_string());
            let key = Arc::new(f.identity.signing.clone());
            let shared = Shared {
                plan: plan.clone(),
                targets: targets.clone(),
                peers: peers.clone(),
                validators: validators.clone(),
                height: height.clone(),
                counts: counts.clone(),
                accepted_kinds: accepted_kinds.clone(),
                key,
                handle: f.handle.clone(),
                index: i,
                deadline,
            };
            tasks.spawn(flood_gossip(shared.clone()));
            tasks.spawn(flood_requests(shared.clone()));
            tasks.spawn(flood_api(shared));
            handles.push((f.handle, f.task, f.drain));
        }
        // Every loop ends at the deadline; a stuck one is aborted a little after it.
        let grace = deadline + Duration::from_secs(10);
        while tokio::time::timeout_at(grace, tasks.join_next())
            .await
            .ok()
            .flatten()
            .is_some()
        {}
        tasks.abort_all();
        for (handle, task, drain) in handles {
            let _ = tokio::time::timeout(Duration::from_secs(5), handle.shutdown()).await;
            task.abort();
            drain.abort();
        }
        report.gossip = counts[0].snapshot();
        report.requests = counts[1].snapshot();
        report.api = counts[2].snapshot();
        report.api_accepted_kinds = accepted_kinds.lock().map(|k| k.clone()).unwrap_or_default();
        report.seconds = started.elapsed().as_secs_f64();
        report
    }
}

/// What every flooding loop shares.
#[derive(Clone)]
struct Shared {
    plan: Arc<FloodPlan>,
    targets: Arc<Vec<Target>>,
    peers: Arc<Vec<PeerId>>,
    validators: Arc<Vec<MemberId>>,
    height: Arc<AtomicU64>,
    /// Gossip, requests, API.
    counts: Arc<[Counters; 3]>,
    /// API kinds some node accepted.
    accepted_kinds: Arc<std::sync::Mutex<BTreeSet<String>>>,
    key: Arc<ed25519_dalek::SigningKey>,
    handle: NetworkHandle,
    /// This flooder's index (spreads the loops' first targets).
    index: usize,
    deadline: Instant,
}

/// A ticker at `per_s` a second (at least one a second).
fn ticker(per_s: u32) -> tokio::time::Interval {
    let mut t = tokio::time::interval(Duration::from_secs(1) / per_s.max(1));
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

/// Keeps `height` at the lowest height the targets are deciding, until the deadline.
async fn follow_height(targets: Arc<Vec<Target>>, height: Arc<AtomicU64>, deadline: Instant) {
    let client = ApiClient::new();
    while Instant::now() < deadline {
        let mut low = None::<u64>;
        for t in targets.iter() {
            if let Some(c) = client.status(t.api).await.ok().and_then(|s| s.chain) {
                low = Some(low.map_or(c.height, |l| l.min(c.height)));
            }
        }
        if let Some(h) = low {
            height.store(h, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn flood_gossip(s: Shared) {
    let c = &s.counts[0];
    let mut tick = ticker(s.plan.gossip_per_s);
    for seq in 0..s.plan.max_per_kind {
        tick.tick().await;
        if Instant::now() >= s.deadline {
            break;
        }
        let kind = GossipKind::ALL[(seq as usize + s.index) % GossipKind::ALL.len()];
        let cx = gossip::Context {
            chain_id: &s.plan.chain_id,
            height: s.height.load(Ordering::Relaxed),
            validators: &s.validators,
            key: &s.key,
        };
        let (topic, data) = gossip::payload(kind, seq, &cx);
        bump(&c.sent);
        if s.handle.publish(topic, data).await.is_err() {
            bump(&c.failed);
        }
    }
}

async fn flood_requests(s: Shared) {
    let counts = s.counts.clone();
    let c = &counts[1];
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut inflight = JoinSet::new();
    let mut tick = ticker(s.plan.requests_per_s);
    for seq in 0..s.plan.max_per_kind {
        tick.tick().await;
        if Instant::now() >= s.deadline {
            break;
        }
        while inflight.try_join_next().is_some() {}
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            bump(&c.skipped);
            continue;
        };
        let kind = RequestKind::ALL[(seq as usize + s.index) % RequestKind::ALL.len()];
        let peer = s.peers[(seq as usize + s.index) % s.peers.len()];
        let data = requests::payload(kind, seq);
        let (handle, answers) = (s.handle.clone(), s.counts.clone());
        bump(&c.sent);
        inflight.spawn(async move {
            let c = &answers[1];
            match handle.request(peer, data).await {
                Ok(answer) => match seedfed_protocol::ledger::decode::<
                    seedfed_node::chain::wire::ChainResponse,
                >(&answer)
                {
                    Ok(seedfed_node::chain::wire::ChainResponse::Refused(_)) => bump(&c.refused),
                    _ => bump(&c.accepted),
                },
                Err(_) => bump(&c.failed),
            }
            drop(permit);
        });
    }
    // Outstanding requests end with the flood (the network's own timeout is longer).
    let _ = tokio::time::timeout_at(s.deadline, async {
        while inflight.join_next().await.is_some() {}
    })
    .await;
    inflight.abort_all();
}

async fn flood_api(s: Shared) {
    let c = &s.counts[2];
    let client = ApiClient::new();
    let mut tick = ticker(s.plan.api_per_s);
    for seq in 0..s.plan.max_per_kind {
        tick.tick().await;
        if Instant::now() >= s.deadline {
            break;
        }
        let kind = ApiKind::ALL[(seq as usize + s.index) % ApiKind::ALL.len()];
        let target = &s.targets[(seq as usize + s.index) % s.targets.len()];
        let cx = ApiContext {
            chain_id: &s.plan.chain_id,
            validators: &s.validators,
            stale_keys: &s.plan.stale_keys,
            key: &s.key,
        };
        let outcome =
            tokio::time::timeout_at(s.deadline, api::call(&client, target.api, kind, seq, &cx))
                .await
                .unwrap_or(ApiOutcome::Failed);
        match outcome {
            ApiOutcome::Skipped => bump(&c.skipped),
            other => {
                if other == ApiOutcome::Accepted {
                    if let Ok(mut k) = s.accepted_kinds.lock() {
                        k.insert(format!("{kind:?}"));
                    }
                }
                bump(&c.sent);
                bump(match other {
                    ApiOutcome::Accepted => &c.accepted,
                    ApiOutcome::Refused => &c.refused,
                    _ => &c.failed,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(api: &str, p2p: &str) -> Target {
        let id = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        Target {
            name: "node0".into(),
            api: api.parse().unwrap(),
            p2p: format!("{p2p}/p2p/{id}").parse().unwrap(),
        }
    }

    #[test]
    fn only_loopback_targets_are_flooded() {
        assert!(target("127.0.0.1:5000", "/ip4/127.0.0.1/tcp/4000").on_loopback());
        assert!(!target("10.0.0.1:5000", "/ip4/127.0.0.1/tcp/4000").on_loopback());
        assert!(!target("127.0.0.1:5000", "/ip4/10.0.0.1/tcp/4000").on_loopback());
        assert!(!target("127.0.0.1:5000", "/dns4/localhost/tcp/4000").on_loopback());
        assert!(!target("127.0.0.1:5000", "/ip6/::1/tcp/4000").on_loopback());
    }
}
