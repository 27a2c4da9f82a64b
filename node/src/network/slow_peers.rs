//! Peers whose gossip does not drain. Gossipsub reports a peer as slow on a heartbeat when
//! messages to it were dropped since the last one (its send queue full, or messages that
//! waited too long in it). A burst makes an honest peer slow for a moment; but under a signing
//! burst one validator's send queue at every other node was seen full (5,000 messages) for
//! minutes while its connections stayed up: it heard nothing by gossip and followed the chain
//! by block sync alone (the cause, an IHAVE over the receiver's control size, is fixed in
//! [`super::behaviour::MAX_CONTROL_IDS`]; this is the net for any other wedged stream). A peer
//! reported slow on every heartbeat for [`STUCK_AFTER`] is disconnected and dialled again, so
//! that a new connection brings new gossip streams. [`SlowPeers`] keeps the streaks (a pure
//! function of the reports, [`SlowPeers::reported`]) and the peers to dial again; the event
//! loop hands it the swarm when gossipsub reports a slow peer and when a peer's last connection
//! closes.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use libp2p::gossipsub::FailedMessages;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{PeerId, Swarm};
use prometheus_client::metrics::counter::Counter;
use tracing::{debug, warn};

use super::behaviour::Behaviour;

/// How long a peer must stay slow, reported on heartbeat after heartbeat, to be reconnected.
pub const STUCK_AFTER: Duration = Duration::from_secs(10);

/// Reports further apart than this end a streak (gossipsub reports at most once per
/// heartbeat, every second here).
const STREAK_GAP: Duration = Duration::from_secs(3);

/// Streaks of slow reports, by peer, and the peers disconnected as stuck.
#[derive(Debug, Default)]
pub struct SlowPeers {
    /// First and latest report of the current streak.
    streaks: HashMap<PeerId, (Instant, Instant)>,
    /// Peers disconnected as stuck, to dial again once their last connection closed.
    reconnect: BTreeSet<PeerId>,
}

impl SlowPeers {
    /// Gossipsub dropped messages to `peer` on this heartbeat (`failed`); a peer slow for
    /// [`STUCK_AFTER`] is disconnected (counted in `stuck`), and dialled again once it is gone
    /// ([`SlowPeers::on_disconnected`]).
    pub fn on_slow_peer(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        stuck: &Counter,
        peer: PeerId,
        failed: &FailedMessages,
    ) {
        if !self.reported(peer, Instant::now()) {
            debug!(%peer, ?failed, "gossip to a peer is slow");
            return;
        }
        warn!(
            %peer,
            "gossip to this peer has not drained for {} s: reconnecting",
            STUCK_AFTER.as_secs()
        );
        stuck.inc();
        self.reconnect.insert(peer);
        let _ = swarm.disconnect_peer_id(peer);
    }

    /// `peer`'s last connection closed: its streak ends, and if it was disconnected as stuck,
    /// it is dialled again.
    pub fn on_disconnected(&mut self, swarm: &mut Swarm<Behaviour>, peer_id: PeerId) {
        self.forget(&peer_id);
        if self.reconnect.remove(&peer_id) {
            if let Err(e) = swarm.dial(DialOpts::peer_id(peer_id).build()) {
                debug!(%peer_id, "redial after a stuck connection: {e}");
            }
        }
    }

    /// Gossipsub reported `peer` slow at `now`: whether it has now been slow for
    /// [`STUCK_AFTER`] without a break (its streak then starts over).
    pub fn reported(&mut self, peer: PeerId, now: Instant) -> bool {
        let (first, last) = self.streaks.entry(peer).or_insert((now, now));
        if now.saturating_duration_since(*last) > STREAK_GAP {
            *first = now;
        }
        *last = now;
        if now.saturating_duration_since(*first) >= STUCK_AFTER {
            self.streaks.remove(&peer);
            return true;
        }
        false
    }

    /// `peer` disconnected: its streak ends.
    pub fn forget(&mut self, peer: &PeerId) {
        self.streaks.remove(peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_peer_slow_on_every_heartbeat_for_the_whole_bound_is_stuck() {
        let mut slow = SlowPeers::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // `a` is reported every second: stuck once the bound has passed, then it starts over.
        for i in 0..10 {
            assert!(!slow.reported(a, t0 + s(i)), "second {i}");
        }
        assert!(slow.reported(a, t0 + s(10)));
        assert!(!slow.reported(a, t0 + s(11)));
        // `b` has gaps longer than a few heartbeats: never stuck.
        for i in 0..6 {
            assert!(!slow.reported(b, t0 + s(4 * i)));
        }
        // A disconnect ends a streak.
        for i in 0..9 {
            slow.reported(a, t0 + s(20 + i));
        }
        slow.forget(&a);
        assert!(!slow.reported(a, t0 + s(30)));
    }
}
