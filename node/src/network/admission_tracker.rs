//! Per-peer admission state, sans-IO: which connected peers still owe us a record (and until
//! when), which are admitted (with their X25519 key), and which are banned (until when).
//!
//! Guarantees: every method takes the current time as an argument (there is no clock inside);
//! the admitted and banned tables are bounded; a peer is never both admitted and banned by one
//! call; a ban lasts exactly [`BAN`] from the rejection, then lapses.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// How long a rejected peer stays banned.
pub const BAN: Duration = Duration::from_secs(600);
/// How long a rejected peer stays connected, so that our refusal reaches it first.
pub const DISCONNECT_GRACE: Duration = Duration::from_millis(500);
/// Bound on remembered rejected peers.
pub const MAX_BANNED: usize = 4096;
/// Bound on remembered admitted peers.
pub const MAX_ADMITTED: usize = 10_000;
/// Requests for a connected peer's record before its deadline: the first and two more after
/// an exchange that failed on the way (its connection closed, the remote dropped it).
pub const MAX_ATTEMPTS: u8 = 3;

/// A connected peer that owes us its record.
#[derive(Clone, Copy, Debug)]
struct Pending {
    deadline: Instant,
    attempts: u8,
}

/// What [`AdmissionTracker::admit`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Newly admitted; `first` when it is the only admitted peer.
    Admitted {
        /// No other peer was admitted before.
        first: bool,
        /// The table was full: this disconnected non-validator was forgotten to make room.
        evicted: Option<PeerId>,
    },
    /// It was admitted already: nothing changes.
    AlreadyAdmitted,
    /// The admitted table is full of peers that may not be evicted: the peer is not admitted
    /// (disconnect it).
    TableFull,
}

/// What [`AdmissionTracker::reject`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The peer is admitted: a late failure does not undo that (nothing changes).
    AlreadyAdmitted,
    /// Rejected and counted. With `disconnect_now` the grace table is full and the caller must
    /// disconnect at once; otherwise [`AdmissionTracker::poll`] reports it after the grace.
    Rejected {
        /// Disconnect now (no room to schedule the disconnection).
        disconnect_now: bool,
    },
}

/// Timers that fired in [`AdmissionTracker::poll`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Due {
    /// Peers that presented no record before their deadline: reject them
    /// ([`crate::network::AdmissionRejection::Timeout`]).
    pub timed_out: Vec<PeerId>,
    /// Rejected peers whose grace ended: disconnect them.
    pub disconnect: Vec<PeerId>,
}

/// Admission bookkeeping for every peer the swarm has seen.
#[derive(Debug)]
pub struct AdmissionTracker {
    timeout: Duration,
    max_admitted: usize,
    max_banned: usize,
    pending: HashMap<PeerId, Pending>,
    disconnect_at: HashMap<PeerId, Instant>,
    admitted: HashMap<PeerId, [u8; 32]>,
    banned: HashMap<PeerId, Instant>,
    rejected_total: u64,
}

impl AdmissionTracker {
    /// A tracker giving each new peer `timeout` to present its record, with the default bounds.
    pub fn new(timeout: Duration) -> Self {
        Self::with_capacity(timeout, MAX_ADMITTED, MAX_BANNED)
    }

    /// A tracker with explicit bounds on the admitted and banned tables.
    pub fn with_capacity(timeout: Duration, max_admitted: usize, max_banned: usize) -> Self {
        Self {
            timeout,
            max_admitted,
            max_banned,
            pending: HashMap::new(),
            disconnect_at: HashMap::new(),
            admitted: HashMap::new(),
            banned: HashMap::new(),
            rejected_total: 0,
        }
    }

    /// A first connection to `peer` opened at `now`. Returns true when the peer must now be
    /// asked for its record (it is not admitted); its deadline is `now + timeout`.
    pub fn connected(&mut self, peer: PeerId, now: Instant) -> bool {
        if self.admitted.contains_key(&peer) {
            return false;
        }
        self.pending.insert(
            peer,
            Pending {
                deadline: now + self.timeout,
                attempts: 1,
            },
        );
        true
    }

    /// Our request for `peer`'s record failed on the way. Returns true when the caller
    /// should ask again (the peer still owes its record and has attempts left, out of
    /// [`MAX_ATTEMPTS`]); the deadline stays where it was.
    pub fn retry(&mut self, peer: &PeerId) -> bool {
        match self.pending.get_mut(peer) {
            Some(p) if p.attempts < MAX_ATTEMPTS => {
                p.attempts += 1;
                true
            }
            _ => false,
        }
    }

    /// The last connection to `peer` closed: it no longer owes us a record.
    pub fn disconnected(&mut self, peer: &PeerId) {
        self.pending.remove(peer);
    }

    /// Whether `peer` is banned at `now`.
    pub fn is_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.banned.get(peer).is_some_and(|until| *until > now)
    }

    /// Whether `peer` is admitted.
    pub fn is_admitted(&self, peer: &PeerId) -> bool {
        self.admitted.contains_key(peer)
    }

    /// Admitted peers and their X25519 keys.
    pub fn admitted(&self) -> impl Iterator<Item = (&PeerId, &[u8; 32])> {
        self.admitted.iter()
    }

    /// Number of admitted peers.
    pub fn admitted_len(&self) -> usize {
        self.admitted.len()
    }

    /// Rejections since start.
    pub fn rejected_total(&self) -> u64 {
        self.rejected_total
    }

    /// `peer`'s record verified: admit it with its X25519 key. When the table is full, an
    /// entry that is `evictable` (the caller's rule: disconnected and not a validator) makes
    /// room; such a peer, if it comes back, presents its record again.
    pub fn admit(
        &mut self,
        peer: PeerId,
        x25519: [u8; 32],
        evictable: impl Fn(&PeerId) -> bool,
    ) -> Admission {
        self.pending.remove(&peer);
        if self.admitted.contains_key(&peer) {
            return Admission::AlreadyAdmitted;
        }
        let mut evicted = None;
        if self.admitted.len() >= self.max_admitted {
            let Some(old) = self.admitted.keys().find(|p| evictable(p)).copied() else {
                return Admission::TableFull;
            };
            self.admitted.remove(&old);
            evicted = Some(old);
        }
        self.admitted.insert(peer, x25519);
        Admission::Admitted {
            first: self.admitted.len() == 1,
            evicted,
        }
    }

    /// Forgets an admission (the peer refused ours, so it will not talk to us). Returns
    /// whether it was admitted.
    pub fn revoke(&mut self, peer: &PeerId) -> bool {
        self.admitted.remove(peer).is_some()
    }

    /// `peer` failed admission at `now`: ban it until `now + BAN` and schedule its
    /// disconnection after [`DISCONNECT_GRACE`]. An admitted peer is left alone.
    pub fn reject(&mut self, peer: PeerId, now: Instant) -> Rejection {
        self.pending.remove(&peer);
        if self.admitted.contains_key(&peer) {
            return Rejection::AlreadyAdmitted;
        }
        if self.banned.len() >= self.max_banned {
            self.banned.retain(|_, until| *until > now);
        }
        if self.banned.len() < self.max_banned {
            self.banned.insert(peer, now + BAN);
        }
        let disconnect_now = self.disconnect_at.len() >= self.max_banned;
        if !disconnect_now {
            self.disconnect_at.insert(peer, now + DISCONNECT_GRACE);
        }
        self.rejected_total += 1;
        Rejection::Rejected { disconnect_now }
    }

    /// Fires the timers due at `now`: admission deadlines that passed (the caller rejects
    /// those peers) and disconnections whose grace ended (removed here). Lapsed bans are
    /// forgotten.
    pub fn poll(&mut self, now: Instant) -> Due {
        let mut timed_out: Vec<PeerId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(p, _)| *p)
            .collect();
        timed_out.sort();
        let mut disconnect: Vec<PeerId> = self
            .disconnect_at
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(p, _)| *p)
            .collect();
        disconnect.sort();
        for p in &disconnect {
            self.disconnect_at.remove(p);
        }
        self.banned.retain(|_, until| *until > now);
        Due {
            timed_out,
            disconnect,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(2);

    fn peers(n: usize) -> Vec<PeerId> {
        let mut v: Vec<PeerId> = (0..n).map(|_| PeerId::random()).collect();
        v.sort();
        v
    }

    #[test]
    fn a_verified_peer_is_admitted_once_and_no_longer_times_out() {
        let t0 = Instant::now();
        let mut t = AdmissionTracker::new(TIMEOUT);
        let [a, b] = peers(2)[..] else { panic!() };
        assert!(t.connected(a, t0));
        assert!(t.connected(b, t0));
        let none = |_: &PeerId| false;
        assert_eq!(
            t.admit(a, [1; 32], none),
            Admission::Admitted {
                first: true,
                evicted: None
            }
        );
        assert_eq!(t.admit(a, [9; 32], none), Admission::AlreadyAdmitted);
        assert_eq!(
            t.admit(b, [2; 32], none),
            Admission::Admitted {
                first: false,
                evicted: None
            }
        );
        assert!(t.is_admitted(&a) && t.is_admitted(&b));
        let keys: Vec<_> = {
            let mut k: Vec<_> = t.admitted().map(|(p, x)| (*p, *x)).collect();
            k.sort();
            k
        };
        assert_eq!(keys, vec![(a, [1; 32]), (b, [2; 32])]);
        // A new connection of an admitted peer asks nothing; nobody times out.
        assert!(!t.connected(a, t0));
        assert_eq!(t.poll(t0 + TIMEOUT * 10), Due::default());
        // A late failure does not undo an admission.
        assert_eq!(t.reject(a, t0), Rejection::AlreadyAdmitted);
        assert!(!t.is_banned(&a, t0));
        assert_eq!(t.rejected_total(), 0);
    }

    #[test]
    fn a_failed_request_is_retried_twice_within_the_same_deadline() {
        let t0 = Instant::now();
        let mut t = AdmissionTracker::new(TIMEOUT);
        let [a, b, c] = peers(3)[..] else { panic!() };
        assert!(!t.retry(&a), "a peer we never asked");
        t.connected(a, t0);
        assert!(t.retry(&a) && t.retry(&a));
        assert!(!t.retry(&a), "three requests in all");
        // The retries keep the first deadline.
        assert_eq!(
            t.poll(t0 + TIMEOUT - Duration::from_millis(1)),
            Due::default()
        );
        assert_eq!(t.poll(t0 + TIMEOUT).timed_out, vec![a]);
        // Nothing to retry once admitted, rejected or gone.
        for p in [b, c] {
            t.connected(p, t0);
        }
        t.admit(b, [2; 32], |_| false);
        assert!(!t.retry(&b));
        t.disconnected(&c);
        assert!(!t.retry(&c));
        // A new first connection starts the count again.
        t.connected(c, t0);
        assert!(t.retry(&c));
    }

    #[test]
    fn a_silent_peer_times_out_exactly_at_its_deadline() {
        let t0 = Instant::now();
        let mut t = AdmissionTracker::new(TIMEOUT);
        let [a, b] = peers(2)[..] else { panic!() };
        t.connected(a, t0);
        t.connected(b, t0 + Duration::from_secs(1));
        assert_eq!(
            t.poll(t0 + TIMEOUT - Duration::from_millis(1)),
            Due::default()
        );
        assert_eq!(t.poll(t0 + TIMEOUT).timed_out, vec![a]);
        // Until the caller rejects it, it is reported again.
        assert_eq!(t.poll(t0 + TIMEOUT).timed_out, vec![a]);
        t.reject(a, t0 + TIMEOUT);
        assert_eq!(t.poll(t0 + TIMEOUT).timed_out, Vec::<PeerId>::new());
        // A peer that leaves owes nothing.
        t.disconnected(&b);
        assert!(t.poll(t0 + TIMEOUT * 10).timed_out.is_empty());
    }

    #[test]
    fn a_rejected_peer_is_disconnected_after_the_grace_and_banned_for_the_ban() {
        let t0 = Instant::now();
        let mut t = AdmissionTracker::new(TIMEOUT);
        let [a] = peers(1)[..] else { panic!() };
        t.connected(a, t0);
        assert_eq!(
            t.reject(a, t0),
            Rejection::Rejected {
                disconnect_now: false
            }
        );
        assert_eq!(t.rejected_total(), 1);
        assert!(t.is_banned(&a, t0));
        let before = t0 + DISCONNECT_GRACE - Duration::from_millis(1);
        assert!(t.poll(before).disconnect.is_empty());
        assert_eq!(t.poll(t0 + DISCONNECT_GRACE).disconnect, vec![a]);
        // Reported once.
        assert!(t.poll(t0 + DISCONNECT_GRACE).disconnect.is_empty());
        assert!(t.is_banned(&a, t0 + BAN - Duration::from_millis(1)));
        assert!(!t.is_banned(&a, t0 + BAN));
        // A poll forgets lapsed bans (the entry is gone, whatever time is asked about).
        t.poll(t0 + BAN);
        assert!(!t.is_banned(&a, t0));
    }

    #[test]
    fn a_peer_refusing_us_loses_its_admission_and_is_banned() {
        let t0 = Instant::now();
        let mut t = AdmissionTracker::new(TIMEOUT);
        let [a] = peers(1)[..] else { panic!() };
        t.connected(a, t0);
        t.admit(a, [1; 32], |_| false);
        assert!(t.revoke(&a));
        assert!(!t.revoke(&a));
        assert!(matches!(t.reject(a, t0), Rejection::Rejected { .. }));
        assert!(!t.is_admitted(&a));
        assert!(t.is_banned(&a, t0));
        assert_eq!(t.admitted_len(), 0);
    }

    #[test]
    fn the_admitted_table_is_bounded() {
        let t0 = Instant::now();
        let mut t = AdmissionTracker::with_capacity(TIMEOUT, 2, 8);
        let ps = peers(3);
        for p in &ps {
            t.connected(*p, t0);
        }
        let none = |_: &PeerId| false;
        assert!(matches!(
            t.admit(ps[0], [0; 32], none),
            Admission::Admitted { .. }
        ));
        assert!(matches!(
            t.admit(ps[1], [0; 32], none),
            Admission::Admitted { .. }
        ));
        assert_eq!(t.admit(ps[2], [0; 32], none), Admission::TableFull);
        assert!(!t.is_admitted(&ps[2]));
        assert_eq!(t.admitted_len(), 2);
        // Refused for room, not banned, and no longer waited for.
        assert!(!t.is_banned(&ps[2], t0));
        assert!(t.poll(t0 + TIMEOUT).timed_out.is_empty());
    }

    /// Before, a full table refused every newcomer forever, whoever filled it: now an entry the
    /// caller may evict (disconnected, not a validator) makes room, and only such an entry.
    #[test]
    fn a_full_table_evicts_a_disconnected_non_validator_to_admit_a_newcomer() {
        let t0 = Instant::now();
        let mut t = AdmissionTracker::with_capacity(TIMEOUT, 2, 8);
        let ps = peers(4);
        for p in &ps {
            t.connected(*p, t0);
        }
        t.admit(ps[0], [0; 32], |_| false);
        t.admit(ps[1], [0; 32], |_| false);
        // ps[0] went away and holds no stake: it may go.
        let gone = ps[0];
        assert_eq!(
            t.admit(ps[2], [2; 32], |p| *p == gone),
            Admission::Admitted {
                first: false,
                evicted: Some(gone)
            }
        );
        assert!(!t.is_admitted(&gone));
        assert!(t.is_admitted(&ps[2]) && t.is_admitted(&ps[1]));
        assert_eq!(t.admitted_len(), 2);
        // Nobody evictable: the newcomer is refused, the table unchanged.
        assert_eq!(
            t.admit(ps[3], [3; 32], |p| *p == gone),
            Admission::TableFull
        );
        assert!(t.is_admitted(&ps[1]) && t.is_admitted(&ps[2]));
    }

    #[test]
    fn the_ban_table_is_bounded_and_lapsed_bans_make_room() {
        let t0 = Instant::now();
        let mut t = AdmissionTracker::with_capacity(TIMEOUT, 8, 2);
        let ps = peers(4);
        t.reject(ps[0], t0);
        t.reject(ps[1], t0);
        // Full: the third is counted and disconnected at once, but not remembered.
        assert_eq!(
            t.reject(ps[2], t0),
            Rejection::Rejected {
                disconnect_now: true
            }
        );
        assert_eq!(t.rejected_total(), 3);
        assert!(!t.is_banned(&ps[2], t0));
        // Once the first bans lapse, a new rejection takes their room (without a poll).
        let later = t0 + BAN;
        assert_eq!(t.poll(t0 + DISCONNECT_GRACE).disconnect, vec![ps[0], ps[1]]);
        assert_eq!(
            t.reject(ps[3], later),
            Rejection::Rejected {
                disconnect_now: false
            }
        );
        assert!(t.is_banned(&ps[3], later));
        assert!(!t.is_banned(&ps[0], later));
    }
}
