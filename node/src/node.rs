//! Node runtime: from a home directory it assembles the network, the local API, the durable store
//! and (when the genesis names validators) the chain driver, runs until a shutdown signal, and
//! stops in order: the chain driver (it hands back the store), the network (known peers are
//! saved), the API, then the store is closed. The bootstrap node uses the same runtime with
//! [`Role::Bootstrap`]: network and API only, no store.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use libp2p::Multiaddr;
use prometheus_client::registry::Registry;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::api::{self, Access, AccessError, ApiState, API_ADDR_FILE};
use seedfed_protocol::agent::Fault;

use crate::chain::{self, ChainConfig, ChainParts, ChainStatus, GossipView};
use crate::config::Config;
use crate::genesis::Genesis;
use crate::keystore::{Identity, StoredAdmission};
use crate::network::{
    self, AdmissionRecord, GossipValidator, Limits, NetworkConfig, NetworkEvent, NetworkHandle,
    Role,
};
use crate::own_proof::{self, OwnProofError};
use crate::store::{self, Store};

/// File (in the home directory) remembering admitted peers across restarts.
pub const PEERS_FILE: &str = "peers.json";

/// Why the node could not start or run.
#[derive(Debug, Error)]
pub enum NodeError {
    /// Bad configuration value.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The keystore's admission proof does not fit the genesis.
    #[error("admission proof does not fit the genesis: {0} (re-run `seedfed init`)")]
    Admission(String),
    /// Network failure.
    #[error(transparent)]
    Network(#[from] network::NetworkError),
    /// The API's access settings are refused (e.g. a non-loopback address without a token).
    #[error(transparent)]
    ApiAccess(#[from] AccessError),
    /// API server failure.
    #[error("cannot serve the local API on {addr}: {reason}")]
    Api {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// No bootstrap node answered on a first start.
    #[error("no bootstrap node reachable within {secs}s (tried {addrs})")]
    BootstrapUnreachable {
        /// Seconds waited.
        secs: u64,
        /// Addresses tried.
        addrs: String,
    },
    /// Our admission proof could not be brought to the ledger's difficulty.
    #[error(transparent)]
    OwnProof(#[from] OwnProofError),
    /// The chain driver failed (store, consensus start-up).
    #[error("chain: {0}")]
    Chain(String),
    /// Filesystem failure.
    #[error("{path}: {reason}")]
    Io {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
}

fn parse_addrs(list: &[String], what: &str) -> Result<Vec<Multiaddr>, NodeError> {
    list.iter()
        .map(|s| {
            s.parse()
                .map_err(|e| NodeError::Config(format!("{what} address {s:?}: {e}")))
        })
        .collect()
}

/// Parses `network.announce`: addresses another host can dial, so neither an unspecified IP
/// (`0.0.0.0`, `::`) nor a `/p2p/` suffix (peers add our id themselves).
pub fn announce_addrs(list: &[String]) -> Result<Vec<Multiaddr>, NodeError> {
    let addrs = parse_addrs(list, "announce")?;
    for a in &addrs {
        let bad = a.iter().any(|p| match p {
            libp2p::multiaddr::Protocol::Ip4(ip) => ip.is_unspecified(),
            libp2p::multiaddr::Protocol::Ip6(ip) => ip.is_unspecified(),
            libp2p::multiaddr::Protocol::P2p(_) => true,
            _ => false,
        });
        if bad {
            return Err(NodeError::Config(format!(
                "announce address {a}: must be an address other hosts can dial (no 0.0.0.0 or \
                 ::, no /p2p/ suffix)"
            )));
        }
    }
    Ok(addrs)
}

/// The per-peer request rate `[network]` sets; zero is refused (it would shut every peer out).
fn rpc_rate(n: &crate::config::NetworkSection) -> Result<network::rate::Rate, NodeError> {
    if n.rpc_requests_per_sec == 0 || n.rpc_request_burst == 0 {
        return Err(NodeError::Config(
            "network.rpc_requests_per_sec and network.rpc_request_burst must be at least 1 \
             (0 would refuse every peer's requests)"
                .into(),
        ));
    }
    Ok(network::rate::Rate {
        per_second: n.rpc_requests_per_sec,
        burst: n.rpc_request_burst,
    })
}

/// Builds the network configuration from the node's pieces.
pub fn network_config(
    home: &Path,
    config: &Config,
    genesis: &Genesis,
    identity: &Identity,
    admission: &StoredAdmission,
    role: Role,
    gossip_validator: Option<GossipValidator>,
) -> Result<NetworkConfig, NodeError> {
    if admission.chain_id != genesis.chain_id {
        return Err(NodeError::Admission(format!(
            "proof is for chain {:?}, genesis is {:?}",
            admission.chain_id, genesis.chain_id
        )));
    }
    identity
        .puzzle(&genesis.chain_id)
        .verify(&admission.proof(), genesis.pow_difficulty)
        .map_err(|e| NodeError::Admission(e.to_string()))?;
    let record = AdmissionRecord::sign(
        &identity.keypair,
        &genesis.chain_id,
        &identity.x25519,
        admission.proof(),
    )
    .map_err(|e| NodeError::Admission(e.to_string()))?;
    let n = &config.network;
    if !(0.0..=1.0).contains(&n.max_memory_fraction) {
        return Err(NodeError::Config(
            "network.max_memory_fraction must be between 0 and 1".into(),
        ));
    }
    Ok(NetworkConfig {
        keypair: identity.keypair.clone(),
        record,
        chain_id: genesis.chain_id.clone(),
        difficulty: genesis.pow_difficulty,
        ledger_difficulty: None,
        stakes: genesis
            .stakes()
            .map_err(|e| NodeError::Config(e.to_string()))?,
        role,
        listen: parse_addrs(&n.listen, "listen")?,
        announce: announce_addrs(&n.announce)?,
        bootstrap: parse_addrs(&n.bootstrap, "bootstrap")?,
        limits: Limits {
            max_connections: n.max_connections,
            reserved_validator_slots: n.reserved_validator_slots.min(n.max_connections),
            max_connections_per_ip: n.max_connections_per_ip,
            max_connections_per_subnet: n.max_connections_per_subnet,
            exempt_loopback: n.exempt_loopback,
            max_connections_per_peer: n.max_connections_per_peer,
            max_pending: n.max_pending,
            max_memory_fraction: n.max_memory_fraction,
            gossip_max_bytes: n.gossip_max_bytes,
            request_max_bytes: n.request_max_bytes,
            rpc_rate: rpc_rate(n)?,
        },
        admission_timeout: Duration::from_secs(n.admission_timeout_secs.max(1)),
        discovery_interval: Duration::from_secs(n.discovery_interval_secs.max(1)),
        idle_timeout: Duration::from_secs(n.idle_timeout_secs.max(1)),
        gossip_validator,
        is_validator: None,
        peers_file: Some(home.join(PEERS_FILE)),
    })
}

/// Keyspace of the node's own bookkeeping records in the store.
pub const NODE_KEYSPACE: &str = "node";
/// Key of the durable start counter (u64 little-endian) in [`NODE_KEYSPACE`].
pub const STARTS_KEY: &[u8] = b"starts";

/// Opens (creating on first use) the node's durable store: redb, the default backend, in
/// `data_dir` (created with mode 0700). A corrupt or locked store is an error: the node does
/// not run on a store it cannot trust. The backend is always redb here (no configuration key
/// selects another); the chain driver keeps its blocks, WAL, tip state and agent state in it.
pub fn open_store(data_dir: &Path) -> Result<Box<dyn Store>, NodeError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(|e| store_error(data_dir, e.to_string()))?;
    store::open(data_dir, store::Backend::Redb).map_err(|e| store_error(data_dir, e.to_string()))
}

/// Durably counts one start of the node; returns this start's number (1 on a fresh home).
pub fn record_start(store: &dyn Store, data_dir: &Path) -> Result<u64, NodeError> {
    let err = |reason: String| store_error(data_dir, reason);
    let previous = match store
        .get(NODE_KEYSPACE, STARTS_KEY)
        .map_err(|e| err(e.to_string()))?
    {
        None => 0,
        Some(bytes) => {
            let raw: [u8; 8] = bytes.as_slice().try_into().map_err(|_| {
                err(format!(
                    "start counter has {} bytes, expected 8",
                    bytes.len()
                ))
            })?;
            u64::from_le_bytes(raw)
        }
    };
    let starts = previous.saturating_add(1);
    store
        .put(NODE_KEYSPACE, STARTS_KEY, &starts.to_le_bytes())
        .map_err(|e| err(e.to_string()))?;
    Ok(starts)
}

fn store_error(data_dir: &Path, reason: String) -> NodeError {
    NodeError::Io {
        path: data_dir.display().to_string(),
        reason,
    }
}

/// A started node (or bootstrap node).
pub struct RunningNode {
    /// Handle to the network task.
    pub network: NetworkHandle,
    /// Where local clients reach the API: the bound address, or loopback on its port if it is
    /// bound to every interface (also written to `api.addr` in the home).
    pub api_addr: SocketAddr,
    home: PathBuf,
    api_stop: Option<oneshot::Sender<()>>,
    api_task: tokio::task::JoinHandle<()>,
    net_task: tokio::task::JoinHandle<()>,
    events_task: tokio::task::JoinHandle<()>,
}

/// Starts the network and the local API (on `api_listen`, answering as `access` allows: build
/// it with [`Access::from_config`], which refuses unsafe settings). Network events go to
/// `on_event` (the chain driver); `None` logs them. `chain` is the chain driver's status for
/// `/status`; `submit` is where `POST /tx` hands transactions to it (`None`: the endpoint
/// answers 503); `chain_metrics` join the node's registry.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    home: &Path,
    net: NetworkConfig,
    api_listen: &str,
    access: Access,
    role: Role,
    on_event: Option<mpsc::Sender<NetworkEvent>>,
    chain: Option<watch::Receiver<ChainStatus>>,
    submit: Option<mpsc::Sender<chain::Submission>>,
    chain_metrics: Option<&chain::ChainMetrics>,
) -> Result<RunningNode, NodeError> {
    let mut registry = Registry::default();
    let (handle, mut events, net_task) = network::spawn(net, &mut registry)?;
    if let Some(m) = chain_metrics {
        m.register(&mut registry);
    }
    let registry = Arc::new(registry);

    let listener = tokio::net::TcpListener::bind(api_listen)
        .await
        .map_err(|e| NodeError::Api {
            addr: api_listen.to_string(),
            reason: e.to_string(),
        })?;
    let bound = listener.local_addr().map_err(|e| NodeError::Api {
        addr: api_listen.to_string(),
        reason: e.to_string(),
    })?;
    let api_addr = local_client_addr(bound);
    let role_name = match role {
        Role::Node => "node",
        Role::Bootstrap => "bootstrap",
    };
    let state = ApiState {
        network: handle.clone(),
        registry,
        role: role_name,
        chain,
        submit,
    };
    let app = api::router(state, access);
    let (api_stop, stop_rx) = oneshot::channel::<()>();
    let api_task = tokio::spawn(async move {
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await;
        if let Err(e) = r {
            warn!("local API stopped: {e}");
        }
    });
    crate::fsutil::write_atomic(
        &home.join(API_ADDR_FILE),
        api_addr.to_string().as_bytes(),
        0o644,
    )
    .map_err(|e| NodeError::Io {
        path: home.join(API_ADDR_FILE).display().to_string(),
        reason: e.to_string(),
    })?;
    info!(%bound, "local API listening (/status, /metrics, /health, POST /tx)");

    let events_task = tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match &on_event {
                Some(tx) => {
                    if tx.send(ev).await.is_err() {
                        break;
                    }
                }
                None => log_event(&ev),
            }
        }
    });
    Ok(RunningNode {
        network: handle,
        api_addr,
        home: home.to_path_buf(),
        api_stop: Some(api_stop),
        api_task,
        net_task,
        events_task,
    })
}

/// Where local clients reach an API bound to `bound`: loopback of the same family on its port if
/// it is bound to every interface, else `bound` itself.
fn local_client_addr(bound: SocketAddr) -> SocketAddr {
    match bound.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, bound.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, bound.port()))
        }
        _ => bound,
    }
}

fn log_event(ev: &NetworkEvent) {
    match ev {
        NetworkEvent::PeerAdmitted { peer, stake, .. } => info!(%peer, stake, "admitted"),
        NetworkEvent::PeerRejected { peer, reason } => info!(%peer, %reason, "rejected"),
        NetworkEvent::PeerDisconnected { peer } => info!(%peer, "disconnected"),
        NetworkEvent::Gossip {
            source,
            topic,
            data,
        } => {
            debug!(%source, topic, bytes = data.len(), "gossip")
        }
        NetworkEvent::Request { peer, data, .. } => {
            debug!(%peer, bytes = data.len(), "request (no handler yet)")
        }
    }
}

impl RunningNode {
    /// Stops the network (saving known peers), then the API; removes the API address file.
    pub async fn stop(mut self) {
        let _ = self.network.shutdown().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.net_task).await;
        if let Some(tx) = self.api_stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.api_task).await;
        self.events_task.abort();
        let _ = std::fs::remove_file(self.home.join(API_ADDR_FILE));
        info!("stopped");
    }

    /// Waits until at least one peer is admitted, or `timeout` passes.
    pub async fn wait_for_first_peer(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if let Ok(s) = self.network.status().await {
                if !s.admitted.is_empty() {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    }
}

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => info!("SIGINT received; shutting down"),
        _ = term => info!("SIGTERM received; shutting down"),
    }
}

/// Runs a federation node from its home directory until `shutdown` resolves: the network, the
/// local API and, when the genesis names validators, the chain driver (consensus, ledger,
/// block sync) on the durable store.
pub async fn run_node(
    home: &Path,
    config: &Config,
    identity: &Identity,
    admission: &StoredAdmission,
    fault: Fault,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    // Before anything else: an API that would be exposed without a token stops the start.
    let access = Access::from_config(home, &config.api)?;
    let genesis = Genesis::load(&Config::resolve(home, &config.node.genesis))
        .map_err(|e| NodeError::Config(e.to_string()))?;
    let first_start = !home.join(PEERS_FILE).exists();
    let data_dir = Config::resolve(home, &config.node.data_dir);
    let store = open_store(&data_dir)?;
    let starts = record_start(store.as_ref(), &data_dir)?;
    info!(starts, backend = %store.backend(), "store open");
    let ledger_genesis = if genesis.has_validators() {
        Some(
            genesis
                .to_ledger()
                .map_err(|e| NodeError::Config(e.to_string()))?,
        )
    } else {
        info!("the genesis names no validator: running without consensus");
        None
    };
    let view = Arc::new(GossipView::default());
    let validator = ledger_genesis
        .as_ref()
        .map(|_| view.validator(genesis.chain_id.clone()));
    // Our own proof must meet the difficulty the stored ledger holds (raised while we were
    // down): the best proof we have, solved again before the network starts if it falls short.
    let chain_store = chain::storage::ChainStore::new(store);
    let stored_difficulty = chain_store.tip_pow_difficulty();
    let store = chain_store.into_inner();
    let stored_difficulty = stored_difficulty.map_err(|e| NodeError::Chain(e.to_string()))?;
    let ledger_difficulty = stored_difficulty
        .unwrap_or(genesis.pow_difficulty)
        .max(genesis.pow_difficulty);
    view.set_pow_difficulty(ledger_difficulty);
    let stop_solving = Arc::new(AtomicBool::new(false));
    tokio::pin!(shutdown);
    let best = own_proof::best_proof(home, identity, &genesis.chain_id, admission);
    let admission = tokio::select! {
        r = own_proof::ensure(
            home,
            identity,
            &genesis.chain_id,
            best,
            ledger_difficulty,
            stop_solving.clone(),
        ) => r?,
        () = &mut shutdown => {
            stop_solving.store(true, Ordering::Relaxed);
            close_store(store);
            return Ok(());
        }
    };
    let mut net = network_config(
        home,
        config,
        &genesis,
        identity,
        &admission,
        Role::Node,
        validator,
    )?;
    // The ledger's validators as the chain sees them, and the genesis validators until the
    // chain has started.
    if ledger_genesis.is_some() {
        net.ledger_difficulty = Some(view.ledger_difficulty());
        let stakes = net.stakes.clone();
        let view = view.clone();
        net.is_validator = Some(Arc::new(move |p: &libp2p::PeerId| {
            view.is_validator_peer(p) || stakes.get(p).is_some_and(|s| *s > 0)
        }));
    }
    info!(peer_id = %identity.peer_id(), chain = %genesis.chain_id, "starting node");
    let (events_tx, events_rx) = mpsc::channel(network::CHANNEL_CAPACITY);
    let (status_tx, status_rx) = watch::channel(ChainStatus::default());
    let (submit_tx, submit_rx) = mpsc::channel(chain::SUBMIT_QUEUE);
    let with_chain = ledger_genesis.is_some();
    let metrics = chain::ChainMetrics::default();
    let node = start(
        home,
        net,
        &config.api.listen,
        access,
        Role::Node,
        with_chain.then_some(events_tx),
        with_chain.then_some(status_rx),
        with_chain.then_some(submit_tx),
        with_chain.then_some(&metrics),
    )
    .await?;
    // While running: a raise past our proof is solved again and the network gets the record.
    let follow_task = with_chain.then(|| {
        tokio::spawn(own_proof::follow(
            home.to_path_buf(),
            own_proof::clone_identity(identity),
            genesis.chain_id.clone(),
            admission.clone(),
            view.watch_pow_difficulty(),
            node.network.clone(),
            stop_solving.clone(),
        ))
    });
    let stop_follow = move || {
        stop_solving.store(true, Ordering::Relaxed);
        if let Some(t) = &follow_task {
            t.abort();
        }
    };
    let mut store = Some(store);
    let mut chain_task = None;
    if let (Some(lg), Some(s)) = (ledger_genesis, store.take()) {
        let seed = identity_seed(identity)?;
        let c = &config.consensus;
        let mut params = seedfed_protocol::consensus::ConsensusParams::default();
        params.timeouts.propose = c.propose_timeout();
        params.timeouts.propose_delta = Duration::from_millis(c.propose_timeout_ms / 2);
        params.timeouts.prevote = Duration::from_millis(c.vote_timeout_ms);
        params.timeouts.precommit = Duration::from_millis(c.vote_timeout_ms);
        let (stop_tx, stop_rx) = oneshot::channel();
        let parts = ChainParts {
            genesis: lg,
            store: chain::storage::ChainStore::new(s),
            identity_seed: seed,
            x25519_secret: zeroize::Zeroizing::new(identity.x25519.to_bytes()),
            fault,
            network: node.network.clone(),
            events: events_rx,
            config: ChainConfig {
                consensus: params,
                block_interval: Duration::from_millis(c.block_interval_ms),
                sync_interval: Duration::from_millis(c.sync_interval_ms.max(50)),
                ..ChainConfig::default()
            },
            view,
            status: status_tx,
            submissions: submit_rx,
            metrics,
        };
        match chain::spawn(parts, stop_rx).await {
            Ok(task) => chain_task = Some((stop_tx, task)),
            Err(e) => {
                stop_follow();
                node.stop().await;
                return Err(NodeError::Chain(e.to_string()));
            }
        }
    }
    let mut chain_failed = None;
    if first_start && !config.network.bootstrap.is_empty() {
        let secs = config.network.bootstrap_timeout_secs;
        let reached = tokio::select! {
            r = node.wait_for_first_peer(Duration::from_secs(secs)) => r,
            () = &mut shutdown => true,
        };
        if !reached {
            stop_follow();
            stop_all(node, chain_task, store).await;
            return Err(NodeError::BootstrapUnreachable {
                secs,
                addrs: config.network.bootstrap.join(", "),
            });
        }
    }
    match &mut chain_task {
        Some((_, task)) => {
            tokio::select! {
                () = &mut shutdown => {}
                r = task => {
                    // The driver stopped by itself: a storage failure. Report it.
                    let reason = match r {
                        Ok(Ok(s)) => { store = Some(s); "the chain driver stopped".to_string() }
                        Ok(Err(e)) => e.to_string(),
                        Err(e) => e.to_string(),
                    };
                    chain_failed = Some(reason);
                    chain_task = None;
                }
            }
        }
        None => shutdown.await,
    }
    stop_follow();
    stop_all(node, chain_task, store).await;
    match chain_failed {
        Some(reason) => Err(NodeError::Chain(reason)),
        None => Ok(()),
    }
}

/// Stops the chain driver (which hands back the store), then the network and the API, then
/// closes the store.
async fn stop_all(
    node: RunningNode,
    chain_task: Option<(oneshot::Sender<()>, chain::ChainTask)>,
    mut store: Option<Box<dyn Store>>,
) {
    if let Some((stop, task)) = chain_task {
        let _ = stop.send(());
        match task.await {
            Ok(Ok(s)) => store = Some(s),
            Ok(Err(e)) => warn!("chain driver: {e}"),
            Err(e) => warn!("chain driver task: {e}"),
        }
    }
    node.stop().await;
    if let Some(s) = store {
        close_store(s);
    }
}

/// The node identity's Ed25519 seed (consensus and transaction signing use the same key).
pub fn identity_seed(identity: &Identity) -> Result<zeroize::Zeroizing<[u8; 32]>, NodeError> {
    let kp = identity
        .keypair
        .clone()
        .try_into_ed25519()
        .map_err(|_| NodeError::Config("the identity is not an Ed25519 key".into()))?;
    let secret = kp.secret();
    let bytes: [u8; 32] = secret
        .as_ref()
        .try_into()
        .map_err(|_| NodeError::Config("the identity secret is not 32 bytes".into()))?;
    Ok(zeroize::Zeroizing::new(bytes))
}

/// Flushes and closes the store at shutdown (a failure is logged: every acknowledged write is
/// already durable, so nothing is lost by it).
fn close_store(store: Box<dyn Store>) {
    if let Err(e) = store.close() {
        warn!("closing the store: {e}");
    }
}

/// File (in the bootstrap node's home) holding its unencrypted identity.
pub const BOOTSTRAP_KEY_FILE: &str = "bootstrap-key.json";

/// Starts a bootstrap node: loads or creates its identity in `home`, solves its admission
/// proof if needed, and starts the network (discovery and admission only) and its API.
pub async fn start_bootstrap(
    home: &Path,
    genesis: &Genesis,
    config: &Config,
) -> Result<RunningNode, NodeError> {
    let access = Access::from_config(home, &config.api)?;
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(home)
            .map_err(|e| NodeError::Io {
                path: home.display().to_string(),
                reason: e.to_string(),
            })?;
    }
    genesis
        .check()
        .map_err(|e| NodeError::Config(e.to_string()))?;
    let key_path = home.join(BOOTSTRAP_KEY_FILE);
    let (identity, admission) = {
        let chain = genesis.chain_id.clone();
        let d = genesis.pow_difficulty;
        let p = key_path.clone();
        tokio::task::spawn_blocking(move || {
            let progress = crate::progress::PowProgress::new(d);
            crate::keystore::open_plain(&p, &chain, d, |n| progress.update(n))
        })
        .await
        .map_err(|e| NodeError::Config(e.to_string()))?
        .map_err(|e| NodeError::Config(e.to_string()))?
    };
    let net = network_config(
        home,
        config,
        genesis,
        &identity,
        &admission,
        Role::Bootstrap,
        None,
    )?;
    info!(peer_id = %identity.peer_id(), chain = %genesis.chain_id, "starting bootstrap node");
    start(
        home,
        net,
        &config.api.listen,
        access,
        Role::Bootstrap,
        None,
        None,
        None,
        None,
    )
    .await
}

/// Runs a bootstrap node until `shutdown` resolves.
pub async fn run_bootstrap(
    home: &Path,
    genesis: &Genesis,
    config: &Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    let node = start_bootstrap(home, genesis, config).await?;
    shutdown.await;
    node.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_counts_starts_durably_and_refuses_a_corrupt_store() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store = open_store(&data).unwrap();
        assert_eq!(record_start(store.as_ref(), &data).unwrap(), 1);
        store.close().unwrap();
        let store = open_store(&data).unwrap();
        assert_eq!(record_start(store.as_ref(), &data).unwrap(), 2);
        store.close().unwrap();
        // A damaged database file stops the node with an error naming the data directory.
        let file = std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.is_file())
            .unwrap();
        std::fs::write(&file, vec![0xa5u8; 4096]).unwrap();
        let err = open_store(&data).err().unwrap().to_string();
        assert!(err.contains(&data.display().to_string()), "{err}");
    }

    #[test]
    fn the_request_rate_is_the_operators_and_never_zero() {
        let mut n = crate::config::NetworkSection::default();
        assert_eq!(rpc_rate(&n).unwrap(), network::DEFAULT_RPC_RATE);
        n.rpc_requests_per_sec = 50;
        n.rpc_request_burst = 80;
        let r = rpc_rate(&n).unwrap();
        assert_eq!((r.per_second, r.burst), (50, 80));
        n.rpc_request_burst = 0;
        let e = rpc_rate(&n).unwrap_err().to_string();
        assert!(e.contains("rpc_request_burst"), "{e}");
    }

    #[test]
    fn announce_addresses_must_be_dialable_from_another_host() {
        let ok = announce_addrs(&[
            "/ip4/10.1.2.3/tcp/4001".into(),
            "/dns4/node.example/tcp/4001".into(),
        ])
        .unwrap();
        assert_eq!(ok.len(), 2);
        for bad in [
            "/ip4/0.0.0.0/tcp/4001",
            "/ip6/::/tcp/4001",
            "/ip4/10.1.2.3/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
            "not an address",
        ] {
            let e = announce_addrs(&[bad.into()]).unwrap_err().to_string();
            assert!(e.contains("announce address"), "{bad}: {e}");
        }
    }
}
