//! Per-peer, per-protocol rate limits on inbound requests (`governor`'s keyed GCRA limiters):
//! each admitted peer may send `rpc` requests at a sustained rate with a burst, and admission
//! requests far more rarely. A request over its peer's quota is dropped before it reaches the
//! node (the remote's request fails), so one busy or hostile peer cannot take the node's
//! request capacity (`MAX_INBOUND` in all) from the others.
//!
//! Guarantees: a limiter's table holds only peers heard from recently ([`InboundRates::tidy`]
//! forgets the others), so peer ids minted by the thousand cannot grow it without bound.

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota};
use libp2p::PeerId;

/// A rate: `per_second` sustained, up to `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Requests per second, sustained.
    pub per_second: u32,
    /// Requests at once after a quiet spell.
    pub burst: u32,
}

impl Rate {
    fn quota(self) -> Quota {
        let one = NonZeroU32::MIN;
        Quota::per_second(NonZeroU32::new(self.per_second).unwrap_or(one))
            .allow_burst(NonZeroU32::new(self.burst).unwrap_or(one))
    }
}

/// The inbound protocols that are rate limited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// `/seedfed/rpc/2` (block sync, direct messages of the key protocols).
    Rpc,
    /// `/seedfed/admission/1`.
    Admission,
}

/// Admission: a peer presents its record once per connection; a few reconnections are fine.
const ADMISSION: Rate = Rate {
    per_second: 1,
    burst: 8,
};

/// One keyed limiter per protocol.
pub struct InboundRates {
    rpc: DefaultKeyedRateLimiter<PeerId>,
    admission: DefaultKeyedRateLimiter<PeerId>,
}

impl InboundRates {
    /// Limiters with the `rpc` rate given and the fixed admission rate.
    pub fn new(rpc: Rate) -> Self {
        Self {
            rpc: DefaultKeyedRateLimiter::hashmap(rpc.quota()),
            admission: DefaultKeyedRateLimiter::hashmap(ADMISSION.quota()),
        }
    }

    /// Whether `peer` may send one more request on `protocol` now (and counts it if so).
    pub fn allow(&self, protocol: Inbound, peer: &PeerId) -> bool {
        let limiter = match protocol {
            Inbound::Rpc => &self.rpc,
            Inbound::Admission => &self.admission,
        };
        limiter.check_key(peer).is_ok()
    }

    /// Forgets peers whose quota is full again (they have been quiet long enough).
    pub fn tidy(&self) {
        for l in [&self.rpc, &self.admission] {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// Peers remembered, all protocols.
    pub fn len(&self) -> usize {
        self.rpc.len() + self.admission.len()
    }

    /// Whether no peer is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_over_its_burst_is_refused_and_others_are_not() {
        let r = InboundRates::new(Rate {
            per_second: 1,
            burst: 3,
        });
        let a = PeerId::random();
        let b = PeerId::random();
        let allowed = (0..10).filter(|_| r.allow(Inbound::Rpc, &a)).count();
        assert_eq!(allowed, 3);
        // Another peer, and another protocol of the same peer, have their own quotas.
        assert!(r.allow(Inbound::Rpc, &b));
        assert!(r.allow(Inbound::Admission, &a));
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn quiet_peers_are_forgotten() {
        let r = InboundRates::new(Rate {
            per_second: 1000,
            burst: 1,
        });
        for _ in 0..50 {
            assert!(r.allow(Inbound::Rpc, &PeerId::random()));
        }
        assert_eq!(r.len(), 50);
        // A 1 ms replenishment: after a few ms every quota is full again.
        std::thread::sleep(std::time::Duration::from_millis(20));
        r.tidy();
        assert!(r.is_empty());
    }
}
