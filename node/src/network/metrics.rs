//! The network's Prometheus metrics: libp2p's own (per protocol and per swarm event) and ours
//! (admissions, rejections, routing table, rejected gossip, dropped events, our own gossip
//! refused (`publish_failures`), stuck peers reconnected), all in the node's one registry
//! under the `seedfed` and `libp2p` prefixes.
//!
//! Guarantees: every metric is registered once, when the network starts; updating one never
//! blocks or allocates per peer (labels are fixed).

use libp2p::metrics::Metrics as Libp2pMetrics;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::publish_failures::PublishFailures;

/// The network task's metrics.
pub(crate) struct Metrics {
    /// libp2p's recorders (swarm events, identify, kad, gossipsub, ping).
    pub(crate) libp2p: Libp2pMetrics,
    /// Peers admitted now.
    pub(crate) admitted: Gauge,
    /// Admission records accepted since start.
    pub(crate) accepted: Counter,
    /// Peers rejected at admission since start.
    pub(crate) rejected: Counter,
    /// Peers in the Kademlia routing table.
    pub(crate) routing_table: Gauge,
    /// Gossip messages rejected by validation.
    pub(crate) gossip_rejected: Counter,
    /// Network events dropped because the consumer was slow.
    pub(crate) events_dropped: Counter,
    /// Our own gossip that gossipsub refused to publish, by topic and reason (with the
    /// warnings about it).
    pub(crate) publish_failures: PublishFailures,
    /// Peers disconnected (and dialled again) because their gossip did not drain.
    pub(crate) stuck_reconnects: Counter,
}

impl Metrics {
    /// Registers every metric in `registry`.
    pub(crate) fn new(registry: &mut Registry) -> Self {
        let libp2p = Libp2pMetrics::new(registry);
        let r = registry.sub_registry_with_prefix("seedfed");
        let m = Self {
            libp2p,
            admitted: Gauge::default(),
            accepted: Counter::default(),
            rejected: Counter::default(),
            routing_table: Gauge::default(),
            gossip_rejected: Counter::default(),
            events_dropped: Counter::default(),
            publish_failures: PublishFailures::default(),
            stuck_reconnects: Counter::default(),
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
        r.register(
            "gossip_publish_failures",
            "Our own gossip messages gossipsub refused to publish, by topic and reason",
            m.publish_failures.counter.clone(),
        );
        r.register(
            "gossip_stuck_reconnects",
            "Peers reconnected because gossip to them did not drain for 10 s",
            m.stuck_reconnects.clone(),
        );
        m
    }
}
