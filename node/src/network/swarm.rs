//! Swarm construction: the transport (TCP with Noise and Yamux), bandwidth metrics, the
//! [`Behaviour`] for our role, and the listeners.
//!
//! Guarantees: every connection is authenticated (Noise) with our Ed25519 identity, so a
//! connection's `PeerId` is proven; idle connections close after the configured timeout; a
//! listen address that cannot be bound, or is not TCP, fails start-up (it is not skipped).

use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{noise, tcp, yamux, Multiaddr, Swarm, SwarmBuilder};
use prometheus_client::registry::Registry;
use std::time::Duration;

use super::behaviour::{Behaviour, Settings};
use super::NetworkError;

/// Builds the swarm for `keypair` with `settings`, listens on every address of `listen` and
/// takes every address of `announce` as an external address (identify tells it to peers).
pub(crate) fn build(
    keypair: Keypair,
    settings: Settings<'_>,
    idle_timeout: Duration,
    listen: &[Multiaddr],
    announce: &[Multiaddr],
    registry: &mut Registry,
) -> Result<Swarm<Behaviour>, NetworkError> {
    let behaviour = Behaviour::new(&keypair, settings, registry)?;
    let mut swarm = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(NetworkError::setup)?
        .with_bandwidth_metrics(registry)
        .with_behaviour(move |_| behaviour)
        .map_err(NetworkError::setup)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle_timeout))
        .build();
    for addr in listen {
        if addr.iter().any(|p| matches!(p, Protocol::Udp(_))) {
            return Err(NetworkError::Listen {
                addr: addr.to_string(),
                reason: "seedfed speaks TCP only (Noise, Yamux); QUIC and other UDP transports \
                         are not supported: list a /tcp/ address instead"
                    .into(),
            });
        }
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NetworkError::Listen {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
    }
    for addr in announce {
        swarm.add_external_address(addr.clone());
    }
    Ok(swarm)
}
