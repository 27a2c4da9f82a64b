//! Connection slots: who may hold one of the node's established connections. Ledger
//! validators may use every slot; everyone else (proof-of-work peers, light clients) shares
//! the slots left after `reserved_validator_slots`, and at most `max_per_ip` of their inbound
//! connections come from one IP address and `max_per_subnet` from one /24 (IPv4) or /48
//! (IPv6). Peer ids cost nothing to make, addresses do: a Sybil swarm behind one host cannot
//! fill the table, and validators always find a free slot.
//!
//! Guarantees: [`SlotTable`] is sans-IO (counts in, verdicts out) and exhaustively tested;
//! [`Behaviour`] only feeds it from the swarm. Outbound connections are ours (we chose to
//! dial), so only the total caps apply to them. Loopback addresses are exempt from the per-IP
//! and per-subnet caps when `exempt_loopback` is set (the default: they are the operator's own
//! processes, e.g. a local testnet), never from the totals.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::{ConnectedPoint, Endpoint};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::{ConnectionClosed, ConnectionEstablished};
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

/// Whether a peer is a ledger validator now (the chain's view; genesis stakes on a bootstrap).
pub type IsValidator = Arc<dyn Fn(&PeerId) -> bool + Send + Sync>;

/// The caps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotLimits {
    /// Established connections in all.
    pub max_total: u32,
    /// Of those, slots only validators may take.
    pub reserved_validator_slots: u32,
    /// Inbound connections of non-validators from one IP address.
    pub max_per_ip: u32,
    /// Inbound connections of non-validators from one /24 (IPv4) or /48 (IPv6).
    pub max_per_subnet: u32,
    /// Loopback addresses skip the per-IP and per-subnet caps.
    pub exempt_loopback: bool,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SlotDenied {
    /// Every slot is taken.
    #[error("all {0} connection slots are taken")]
    Full(u32),
    /// Only reserved (validator) slots are left.
    #[error("only the {0} slots reserved for validators are left")]
    ReservedForValidators(u32),
    /// Too many connections from this address.
    #[error("{0} connections from this IP address already")]
    PerIp(u32),
    /// Too many connections from this subnet.
    #[error("{0} connections from this subnet already")]
    PerSubnet(u32),
}

/// A /24 (IPv4) or /48 (IPv6) prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Subnet {
    V4([u8; 3]),
    V6([u8; 6]),
}

fn subnet(ip: IpAddr) -> Subnet {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            Subnet::V4([o[0], o[1], o[2]])
        }
        IpAddr::V6(v6) => {
            let o = v6.octets();
            Subnet::V6([o[0], o[1], o[2], o[3], o[4], o[5]])
        }
    }
}

/// The IP address a multiaddress starts with, if any.
pub fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    match addr.iter().next()? {
        Protocol::Ip4(a) => Some(IpAddr::V4(a)),
        Protocol::Ip6(a) => Some(IpAddr::V6(a)),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    validator: bool,
    /// The remote IP of a capped inbound connection (none for outbound, exempt or unknown).
    capped_ip: Option<IpAddr>,
}

/// The established connections, counted.
#[derive(Debug)]
pub struct SlotTable {
    limits: SlotLimits,
    slots: HashMap<ConnectionId, Slot>,
    others: u32,
    by_ip: HashMap<IpAddr, u32>,
    by_subnet: HashMap<Subnet, u32>,
}

impl SlotTable {
    /// An empty table.
    pub fn new(limits: SlotLimits) -> Self {
        Self {
            limits,
            slots: HashMap::new(),
            others: 0,
            by_ip: HashMap::new(),
            by_subnet: HashMap::new(),
        }
    }

    /// Established connections now.
    pub fn total(&self) -> u32 {
        self.slots.len() as u32
    }

    fn capped(&self, inbound: bool, ip: Option<IpAddr>) -> Option<IpAddr> {
        let ip = ip.filter(|_| inbound)?;
        (!(self.limits.exempt_loopback && ip.is_loopback())).then_some(ip)
    }

    /// Whether a new connection may take a slot: `inbound` from `ip`, by a validator or not.
    pub fn check(
        &self,
        validator: bool,
        inbound: bool,
        ip: Option<IpAddr>,
    ) -> Result<(), SlotDenied> {
        let l = &self.limits;
        if self.total() >= l.max_total {
            return Err(SlotDenied::Full(l.max_total));
        }
        if validator {
            return Ok(());
        }
        if self.others >= l.max_total.saturating_sub(l.reserved_validator_slots) {
            return Err(SlotDenied::ReservedForValidators(
                l.reserved_validator_slots,
            ));
        }
        if let Some(ip) = self.capped(inbound, ip) {
            let n = self.by_ip.get(&ip).copied().unwrap_or(0);
            if n >= l.max_per_ip {
                return Err(SlotDenied::PerIp(n));
            }
            let n = self.by_subnet.get(&subnet(ip)).copied().unwrap_or(0);
            if n >= l.max_per_subnet {
                return Err(SlotDenied::PerSubnet(n));
            }
        }
        Ok(())
    }

    /// A connection was established (it passed [`SlotTable::check`], or it bypassed it).
    pub fn opened(&mut self, id: ConnectionId, validator: bool, inbound: bool, ip: Option<IpAddr>) {
        let capped_ip = if validator {
            None
        } else {
            self.capped(inbound, ip)
        };
        if self
            .slots
            .insert(
                id,
                Slot {
                    validator,
                    capped_ip,
                },
            )
            .is_some()
        {
            return;
        }
        if !validator {
            self.others += 1;
        }
        if let Some(ip) = capped_ip {
            *self.by_ip.entry(ip).or_default() += 1;
            *self.by_subnet.entry(subnet(ip)).or_default() += 1;
        }
    }

    /// A connection closed.
    pub fn closed(&mut self, id: ConnectionId) {
        let Some(slot) = self.slots.remove(&id) else {
            return;
        };
        if !slot.validator {
            self.others = self.others.saturating_sub(1);
        }
        if let Some(ip) = slot.capped_ip {
            decrement(&mut self.by_ip, ip);
            decrement(&mut self.by_subnet, subnet(ip));
        }
    }
}

fn decrement<K: std::hash::Hash + Eq>(m: &mut HashMap<K, u32>, k: K) {
    if let Some(n) = m.get_mut(&k) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            m.remove(&k);
        }
    }
}

/// The swarm side: checks each established connection against the table.
pub struct Behaviour {
    table: SlotTable,
    is_validator: IsValidator,
}

impl Behaviour {
    /// A behaviour with `limits`, asking `is_validator` about each new connection's peer.
    pub fn new(limits: SlotLimits, is_validator: IsValidator) -> Self {
        Self {
            table: SlotTable::new(limits),
            is_validator,
        }
    }

    fn deny(
        &self,
        peer: &PeerId,
        inbound: bool,
        ip: Option<IpAddr>,
    ) -> Result<(), ConnectionDenied> {
        self.table
            .check((self.is_validator)(peer), inbound, ip)
            .map_err(ConnectionDenied::new)
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.deny(&peer, true, ip_of(remote))?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.deny(&peer, false, ip_of(addr))?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            }) => {
                let (inbound, remote) = match endpoint {
                    ConnectedPoint::Listener { send_back_addr, .. } => (true, send_back_addr),
                    ConnectedPoint::Dialer { address, .. } => (false, address),
                };
                let validator = (self.is_validator)(&peer_id);
                self.table
                    .opened(connection_id, validator, inbound, ip_of(remote));
            }
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) => {
                self.table.closed(connection_id);
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> SlotLimits {
        SlotLimits {
            max_total: 10,
            reserved_validator_slots: 4,
            max_per_ip: 2,
            max_per_subnet: 3,
            exempt_loopback: true,
        }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn others_stop_at_the_reserved_slots_and_validators_fill_the_rest() {
        let mut t = SlotTable::new(limits());
        for i in 0..6 {
            let a = ip(&format!("10.0.{i}.1"));
            t.check(false, true, a).unwrap();
            t.opened(ConnectionId::new_unchecked(i), false, true, a);
        }
        assert_eq!(
            t.check(false, true, ip("10.9.9.9")),
            Err(SlotDenied::ReservedForValidators(4))
        );
        // Outbound is ours, but still not a validator's slot.
        assert_eq!(
            t.check(false, false, ip("10.9.9.9")),
            Err(SlotDenied::ReservedForValidators(4))
        );
        for i in 6..10 {
            t.check(true, true, ip("10.0.0.1")).unwrap();
            t.opened(ConnectionId::new_unchecked(i), true, true, ip("10.0.0.1"));
        }
        assert_eq!(
            t.check(true, true, ip("10.7.7.7")),
            Err(SlotDenied::Full(10))
        );
        // A closed slot is free again, for a validator and then for anyone.
        t.closed(ConnectionId::new_unchecked(9));
        t.check(true, true, ip("10.7.7.7")).unwrap();
        t.closed(ConnectionId::new_unchecked(0));
        t.check(false, true, ip("10.7.7.7")).unwrap();
    }

    #[test]
    fn one_address_and_one_subnet_are_capped_but_not_loopback_or_validators() {
        let mut t = SlotTable::new(limits());
        let a = ip("203.0.113.5");
        for i in 0..2 {
            t.check(false, true, a).unwrap();
            t.opened(ConnectionId::new_unchecked(i), false, true, a);
        }
        assert_eq!(t.check(false, true, a), Err(SlotDenied::PerIp(2)));
        // Another address of the same /24: one more, then the subnet is full.
        t.check(false, true, ip("203.0.113.6")).unwrap();
        t.opened(
            ConnectionId::new_unchecked(2),
            false,
            true,
            ip("203.0.113.6"),
        );
        assert_eq!(
            t.check(false, true, ip("203.0.113.7")),
            Err(SlotDenied::PerSubnet(3))
        );
        // Another /24 is fine; a validator from the full address is fine; so is our dial.
        t.check(false, true, ip("203.0.114.7")).unwrap();
        t.check(true, true, a).unwrap();
        t.check(false, false, a).unwrap();
        // Loopback is exempt (the operator's own processes) unless configured otherwise: a
        // third connection from 127.0.0.1 is fine.
        for i in 3..5 {
            t.opened(ConnectionId::new_unchecked(i), false, true, ip("127.0.0.1"));
        }
        t.check(false, true, ip("127.0.0.1")).unwrap();
        let mut strict = SlotTable::new(SlotLimits {
            exempt_loopback: false,
            ..limits()
        });
        for i in 0..2 {
            strict.opened(ConnectionId::new_unchecked(i), false, true, ip("127.0.0.1"));
        }
        assert_eq!(
            strict.check(false, true, ip("127.0.0.1")),
            Err(SlotDenied::PerIp(2))
        );
        // IPv6 subnets are /48.
        for i in 2..5 {
            let a = ip(&format!("2001:db8:1:{i}::1"));
            strict.check(false, true, a).unwrap();
            strict.opened(ConnectionId::new_unchecked(i), false, true, a);
        }
        assert_eq!(
            strict.check(false, true, ip("2001:db8:1:ff::1")),
            Err(SlotDenied::PerSubnet(3))
        );
        strict.check(false, true, ip("2001:db8:2::1")).unwrap();
        // Closing releases the address's count.
        t.closed(ConnectionId::new_unchecked(0));
        t.check(false, true, a).unwrap();
    }

    #[test]
    fn the_ip_of_a_multiaddress() {
        let a: Multiaddr = "/ip4/192.0.2.1/tcp/4001".parse().unwrap();
        assert_eq!(ip_of(&a), ip("192.0.2.1"));
        let q: Multiaddr = "/ip6/::1/udp/4001/quic-v1".parse().unwrap();
        assert_eq!(ip_of(&q), ip("::1"));
        let d: Multiaddr = "/dns4/example.org/tcp/1".parse().unwrap();
        assert_eq!(ip_of(&d), None);
    }
}
