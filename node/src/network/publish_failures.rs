//! Our own gossip that gossipsub refused to publish. Every refusal is counted by topic and
//! reason (the `seedfed_gossip_publish_failures` metric, registered with the others in
//! `metrics`); the two that mean peers do not get what we send, every peer's send queue full
//! or a message over the size cap, also warn, at most once every [`PUBLISH_WARN_EVERY`], so
//! that a burst of refusals does not flood the log.

use std::time::{Duration, Instant};

use libp2p::gossipsub::PublishError;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tracing::warn;

/// Least time between two warnings that our gossip could not be published.
pub(crate) const PUBLISH_WARN_EVERY: Duration = Duration::from_secs(10);

/// Labels of a refused publish.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PublishFailure {
    /// The topic's short name (`consensus`, `tx`).
    pub(crate) topic: String,
    /// `queues_full` (every peer's send queue), `duplicate`, `no_peers`, `too_large`, `other`.
    pub(crate) reason: &'static str,
}

/// Refused publishes: their counter, and when one last warned.
#[derive(Default)]
pub(crate) struct PublishFailures {
    /// Refusals by topic and reason.
    pub(crate) counter: Family<PublishFailure, Counter>,
    /// When a refusal last warned.
    last_warning: Option<Instant>,
}

impl PublishFailures {
    /// Counts a refused publish on `topic`; warns (at most every [`PUBLISH_WARN_EVERY`]) when
    /// it means peers do not get what we send: every send queue full, or a message over the
    /// size cap.
    pub(crate) fn record(&mut self, topic: &str, e: &PublishError) {
        let reason = reason(e);
        self.counter
            .get_or_create(&PublishFailure {
                topic: topic.to_string(),
                reason,
            })
            .inc();
        if self.warns(reason, Instant::now()) {
            warn!(topic, reason, "gossip not published: {e}");
        }
    }

    /// Whether a refusal for `reason` at `now` warns; if so, remembers that it did.
    fn warns(&mut self, reason: &str, now: Instant) -> bool {
        let serious = matches!(reason, "queues_full" | "too_large");
        let warns = serious
            && self
                .last_warning
                .is_none_or(|t| now.duration_since(t) >= PUBLISH_WARN_EVERY);
        if warns {
            self.last_warning = Some(now);
        }
        warns
    }
}

/// The `reason` label of a refusal.
fn reason(e: &PublishError) -> &'static str {
    match e {
        PublishError::AllQueuesFull(_) => "queues_full",
        PublishError::Duplicate => "duplicate",
        PublishError::NoPeersSubscribedToTopic => "no_peers",
        PublishError::MessageTooLarge => "too_large",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_counts_and_only_serious_ones_warn_at_their_interval() {
        let mut f = PublishFailures::default();
        assert_eq!(reason(&PublishError::AllQueuesFull(3)), "queues_full");
        assert_eq!(reason(&PublishError::NoPeersSubscribedToTopic), "no_peers");
        f.record("tx", &PublishError::Duplicate);
        f.record("tx", &PublishError::Duplicate);
        let duplicates = PublishFailure {
            topic: "tx".into(),
            reason: "duplicate",
        };
        assert_eq!(f.counter.get_or_create(&duplicates).get(), 2);
        let t0 = Instant::now();
        assert!(!f.warns("duplicate", t0));
        assert!(!f.warns("no_peers", t0));
        assert!(f.warns("queues_full", t0));
        assert!(!f.warns("too_large", t0 + PUBLISH_WARN_EVERY / 2));
        assert!(f.warns("too_large", t0 + PUBLISH_WARN_EVERY));
    }
}
