//! Peer discovery over Kademlia: which addresses we know for whom, what enters the routing
//! table, and the periodic round that dials bootstrap nodes, remembered peers and routing-table
//! peers, then walks the DHT for more.
//!
//! Guarantees: only admitted peers enter the routing table or the remembered peers (the caller
//! says when a peer is admitted); banned peers and ourselves are never dialled; dials per round
//! or per query result are bounded by [`MAX_DIALS_PER_ROUND`]; lookups start only once a peer
//! is admitted, at most once a second unless a round forces one. A peer's loopback addresses
//! are kept only when it reached us over loopback: on another host they name ourselves.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{kad, Multiaddr, PeerId, Swarm};
use tracing::debug;

use super::admission_tracker::AdmissionTracker;
use super::behaviour::Behaviour;
use super::peers_file::KnownPeers;

/// Bound on dials started per discovery round or query result.
pub const MAX_DIALS_PER_ROUND: usize = 32;
/// Bound on listen addresses kept per peer from identify.
const MAX_IDENTIFY_ADDRS: usize = 16;
/// Minimum time between two unforced walks.
const WALK_SPACING: Duration = Duration::from_secs(1);

/// Splits a trailing `/p2p/<id>` off an address.
pub(crate) fn split_peer(addr: &Multiaddr) -> (Multiaddr, Option<PeerId>) {
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

/// Discovery state: addresses learned per peer and the peers worth remembering.
pub(crate) struct Discovery {
    local: PeerId,
    bootstrap: Vec<Multiaddr>,
    /// Admitted peers' addresses (saved in the peers file).
    known: KnownPeers,
    /// Bumped whenever `known` changes.
    generation: u64,
    identify_addrs: HashMap<PeerId, Vec<Multiaddr>>,
    dialed_addr: HashMap<PeerId, Multiaddr>,
    /// Peers with a connection whose remote address is loopback (same host).
    on_loopback: HashSet<PeerId>,
    last_walk: Option<Instant>,
}

/// Whether `addr` is a loopback IP address (`127.0.0.0/8` or `::1`).
pub(crate) fn is_loopback(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}

/// The addresses worth dialling among those a peer listed in identify: no unspecified
/// addresses, no loopback addresses unless the peer is on our host (`same_host`), at most
/// [`MAX_IDENTIFY_ADDRS`].
pub(crate) fn usable_addrs(listen_addrs: Vec<Multiaddr>, same_host: bool) -> Vec<Multiaddr> {
    listen_addrs
        .into_iter()
        .filter(|a| {
            !a.iter().any(|p| {
                matches!(p, Protocol::Ip4(ip) if ip.is_unspecified())
                    || matches!(p, Protocol::Ip6(ip) if ip.is_unspecified())
            })
        })
        .filter(|a| same_host || !is_loopback(a))
        .take(MAX_IDENTIFY_ADDRS)
        .collect()
}

impl Discovery {
    /// Discovery for `local`, seeded with bootstrap addresses and remembered peers.
    pub(crate) fn new(local: PeerId, bootstrap: Vec<Multiaddr>, known: KnownPeers) -> Self {
        Self {
            local,
            bootstrap,
            known,
            generation: 0,
            identify_addrs: HashMap::new(),
            dialed_addr: HashMap::new(),
            on_loopback: HashSet::new(),
            last_walk: None,
        }
    }

    /// Remembered peers and the generation of that set (it changes with every change).
    pub(crate) fn known(&self) -> (u64, &KnownPeers) {
        (self.generation, &self.known)
    }

    /// A connection to `peer` opened: remember the address we dialled, if we did.
    pub(crate) fn connected(&mut self, peer: PeerId, endpoint: &ConnectedPoint) {
        if is_loopback(endpoint.get_remote_address()) {
            self.on_loopback.insert(peer);
        }
        if let ConnectedPoint::Dialer { address, .. } = endpoint {
            let (a, _) = split_peer(address);
            self.dialed_addr.insert(peer, a);
        }
    }

    /// The last connection to `peer` closed: forget its connection addresses.
    pub(crate) fn disconnected(&mut self, peer: &PeerId) {
        self.identify_addrs.remove(peer);
        self.dialed_addr.remove(peer);
        self.on_loopback.remove(peer);
    }

    /// Identify told us `peer`'s listen addresses. Unspecified addresses (and loopback ones of
    /// a peer on another host) are dropped and at most [`MAX_IDENTIFY_ADDRS`] kept; an admitted
    /// peer's go into the routing table.
    pub(crate) fn identified(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        listen_addrs: Vec<Multiaddr>,
        admitted: bool,
    ) {
        let addrs = usable_addrs(listen_addrs, self.on_loopback.contains(&peer));
        if admitted {
            self.add_to_routing(swarm, peer, addrs.clone());
        }
        self.identify_addrs.insert(peer, addrs);
    }

    /// `peer` was just admitted: put what we know of its addresses into the routing table;
    /// the first admission bootstraps Kademlia. Then walk (unless one ran within a second).
    pub(crate) fn admitted(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        first: bool,
        now: Instant,
    ) {
        let mut addrs: Vec<Multiaddr> = self.identify_addrs.get(&peer).cloned().unwrap_or_default();
        if let Some(a) = self.dialed_addr.get(&peer) {
            if !addrs.contains(a) {
                addrs.push(a.clone());
            }
        }
        self.add_to_routing(swarm, peer, addrs);
        if first {
            let _ = swarm.behaviour_mut().kad.bootstrap();
        }
        self.walk(swarm, false, now);
    }

    /// `peer` was rejected: out of the routing table and the remembered peers.
    pub(crate) fn forget(&mut self, swarm: &mut Swarm<Behaviour>, peer: &PeerId) {
        swarm.behaviour_mut().kad.remove_peer(peer);
        if self.known.remove(peer).is_some() {
            self.generation += 1;
        }
    }

    fn add_to_routing(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
    ) {
        if addrs.is_empty() {
            return;
        }
        for a in &addrs {
            swarm.behaviour_mut().kad.add_address(&peer, a.clone());
        }
        let entry = self.known.entry(peer).or_default();
        for a in addrs {
            if !entry.contains(&a) {
                entry.push(a);
                self.generation += 1;
            }
        }
    }

    /// Dials `peer` at `addrs` unless it is us, connected, being dialled or banned at `now`.
    pub(crate) fn dial(
        &self,
        swarm: &mut Swarm<Behaviour>,
        admission: &AdmissionTracker,
        now: Instant,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
    ) {
        if peer == self.local || swarm.is_connected(&peer) || admission.is_banned(&peer, now) {
            return;
        }
        let opts = DialOpts::peer_id(peer)
            .addresses(addrs)
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        if let Err(e) = swarm.dial(opts) {
            debug!(%peer, "dial not started: {e}");
        }
    }

    /// One discovery round: dial the bootstrap nodes, then (within [`MAX_DIALS_PER_ROUND`])
    /// unconnected remembered peers and routing-table peers, then walk. Returns the number of
    /// peers in the routing table.
    pub(crate) fn round(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        admission: &AdmissionTracker,
        now: Instant,
    ) -> usize {
        let mut budget = MAX_DIALS_PER_ROUND;
        for addr in &self.bootstrap {
            match split_peer(addr) {
                (a, Some(peer)) => self.dial(swarm, admission, now, peer, vec![a]),
                (a, None) => {
                    let _ = swarm.dial(a);
                }
            }
        }
        let known: Vec<(PeerId, Vec<Multiaddr>)> = self
            .known
            .iter()
            .filter(|(p, _)| !swarm.is_connected(p))
            .map(|(p, a)| (*p, a.clone()))
            .take(budget)
            .collect();
        budget = budget.saturating_sub(known.len());
        for (p, a) in known {
            self.dial(swarm, admission, now, p, a);
        }
        let table = routing_table(swarm);
        let size = table.len();
        let unconnected: Vec<_> = table
            .into_iter()
            .filter(|(p, _)| !swarm.is_connected(p))
            .take(budget)
            .collect();
        for (p, a) in unconnected {
            self.dial(swarm, admission, now, p, a);
        }
        if admission.admitted_len() > 0 {
            self.walk(swarm, true, now);
        }
        size
    }

    /// Kademlia reported progress: dial the peers a closest-peers lookup found (bounded).
    pub(crate) fn on_kad_event(
        &self,
        swarm: &mut Swarm<Behaviour>,
        admission: &AdmissionTracker,
        now: Instant,
        event: kad::Event,
    ) {
        if let kad::Event::OutboundQueryProgressed {
            result: kad::QueryResult::GetClosestPeers(r),
            ..
        } = event
        {
            let peers = match r {
                Ok(ok) => ok.peers,
                Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
            };
            for info in peers.into_iter().take(MAX_DIALS_PER_ROUND) {
                self.dial(swarm, admission, now, info.peer_id, info.addrs);
            }
        }
    }

    /// Starts Kademlia lookups (our own id and a random one) to find more peers; unless
    /// `force`, not within [`WALK_SPACING`] of the last one.
    fn walk(&mut self, swarm: &mut Swarm<Behaviour>, force: bool, now: Instant) {
        if !force
            && self
                .last_walk
                .is_some_and(|t| now.duration_since(t) < WALK_SPACING)
        {
            return;
        }
        self.last_walk = Some(now);
        let kad = &mut swarm.behaviour_mut().kad;
        kad.get_closest_peers(self.local);
        kad.get_closest_peers(PeerId::random());
    }
}

/// The peers in the Kademlia routing table with their addresses.
pub(crate) fn routing_table(swarm: &mut Swarm<Behaviour>) -> Vec<(PeerId, Vec<Multiaddr>)> {
    let mut table = Vec::new();
    for bucket in swarm.behaviour_mut().kad.kbuckets() {
        for entry in bucket.iter() {
            let p = *entry.node.key.preimage();
            table.push((p, entry.node.value.iter().cloned().collect()));
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(v: &[&str]) -> Vec<Multiaddr> {
        v.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn a_remote_peers_loopback_addresses_are_not_dialled() {
        let listed = addrs(&[
            "/ip4/127.0.0.1/tcp/4001",
            "/ip4/10.0.0.2/tcp/4001",
            "/ip6/::1/tcp/4001",
            "/ip4/0.0.0.0/tcp/4001",
            "/ip4/10.0.0.2/udp/4001/quic-v1",
        ]);
        // From another host, 127.0.0.1 is ourselves: only the routable addresses remain.
        assert_eq!(
            usable_addrs(listed.clone(), false),
            addrs(&["/ip4/10.0.0.2/tcp/4001", "/ip4/10.0.0.2/udp/4001/quic-v1"])
        );
        // A peer on our own host (it reached us over loopback) keeps them.
        assert_eq!(
            usable_addrs(listed, true),
            addrs(&[
                "/ip4/127.0.0.1/tcp/4001",
                "/ip4/10.0.0.2/tcp/4001",
                "/ip6/::1/tcp/4001",
                "/ip4/10.0.0.2/udp/4001/quic-v1",
            ])
        );
        assert!(is_loopback(&addrs(&["/ip4/127.8.0.1/udp/1/quic-v1"])[0]));
        assert!(!is_loopback(&addrs(&["/dns4/localhost/tcp/1"])[0]));
    }
}
