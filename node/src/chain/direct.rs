//! Direct messages between the nodes' agents (DKG envelopes, branch partials, dealt batches,
//! acknowledgements, contributions, paths): how one node sends them to a peer, and whom it
//! takes them from.
//!
//! Guarantees: at most [`DIRECT_IN_FLIGHT`] requests and about [`DIRECT_IN_FLIGHT_BYTES`] in
//! flight to a peer (one request larger than that goes alone) and [`DIRECT_QUEUED`] payloads
//! queued for it; a payload already queued or in flight to a peer is
//! not queued again; a request's bytes are built only once it has a slot, and only its encoding
//! stays in flight; a request carries at most [`DIRECT_GROUP_MAX`] payloads and, past one,
//! about [`DIRECT_GROUP_BYTES`]. Only ledger members are heard, and only validators in groups.

use std::collections::HashSet;
use std::sync::Arc;

use libp2p::PeerId;
use seedfed_protocol::agent::Payload;
use seedfed_protocol::ledger;
use tracing::debug;

use super::wire::{member_of, ChainRequest, ChainResponse};
use crate::network::NetworkHandle;

/// Direct requests in flight to one peer. A peer takes 100 inbound request streams at once
/// and drops the rest (libp2p's request-response default): with up to six other senders at 16
/// each, an honest burst (an owner dealing every chunk to every holder) stays under it.
pub(super) const DIRECT_IN_FLIGHT: usize = 16;
/// Payload bytes in flight to one peer. Every request in flight is held encoded, and again by
/// the codec while it is written: an owner dealing a 2^18-leaf sector had 16 groups of 256 KiB
/// in flight to each of 15 holders (60 MiB, twice over) when holders take batches a few at a
/// time anyway (checking shares is their bound). Four groups keep a holder busy.
pub(super) const DIRECT_IN_FLIGHT_BYTES: usize = 4 * DIRECT_GROUP_BYTES;
/// The unit of [`PeerQueue`]'s byte budget.
const BUDGET_UNIT: usize = 1 << 10;
/// Direct requests queued for one peer beyond which new ones are dropped (the agent re-sends
/// what has not taken effect).
const DIRECT_QUEUED: usize = 4096;

/// The direct requests to one peer: a semaphore of [`DIRECT_IN_FLIGHT`] slots, one of its
/// [`DIRECT_IN_FLIGHT_BYTES`] (in KiB) and the payloads waiting or in flight (by
/// [`Payload::key`]). A request's bytes are built only once
/// it has a slot, so a queued one costs a reference to its payload, whose bytes the agent
/// keeps anyway (an owner's batches, until acknowledged).
pub(super) struct PeerQueue {
    slots: tokio::sync::Semaphore,
    bytes: tokio::sync::Semaphore,
    pending: std::sync::Mutex<HashSet<usize>>,
}

impl PeerQueue {
    pub(super) fn new() -> Arc<PeerQueue> {
        Arc::new(PeerQueue {
            slots: tokio::sync::Semaphore::new(DIRECT_IN_FLIGHT),
            bytes: tokio::sync::Semaphore::new(DIRECT_IN_FLIGHT_BYTES / BUDGET_UNIT),
            pending: std::sync::Mutex::new(HashSet::new()),
        })
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashSet<usize>> {
        // The set stays consistent whatever panicked while holding it.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes `payload` into the queue, or `None` if the queue is full or the same payload (a
    /// re-send: a clone of it) is already waiting or in flight to this peer.
    fn admit(self: &Arc<Self>, payload: Payload) -> Option<Queued> {
        let mut pending = self.pending();
        if pending.len() >= DIRECT_QUEUED || !pending.insert(payload.key()) {
            return None;
        }
        Some(Queued {
            queue: self.clone(),
            payload,
        })
    }
}

/// A payload waiting for, or holding, a slot of its peer's queue; leaves the queue when dropped.
struct Queued {
    queue: Arc<PeerQueue>,
    payload: Payload,
}

impl Drop for Queued {
    fn drop(&mut self) {
        // `payload` is still alive here, so its key names nothing else yet.
        self.queue.pending().remove(&self.payload.key());
    }
}

/// Most direct payloads in one request ([`ChainRequest::Directs`]); a peer refuses more.
pub(super) const DIRECT_GROUP_MAX: usize = 512;
/// A request of several payloads stops growing at this many bytes (a payload larger than
/// this goes alone; the request-response cap, 4 MiB by default, is larger). A block's
/// contributions to a relay (under 1 KB each, with their commitment paths) still travel in one
/// or two requests. At 1 MiB, with 16 requests in flight per peer and no byte budget, an owner
/// of a 2^18-leaf sector dealing to 15 holders was resident at 1.5–2 GiB (`seedfed-bench
/// memory --height 20`).
const DIRECT_GROUP_BYTES: usize = 256 << 10;

/// Sends `payloads` to `peer` as direct requests once `queue` has a free slot for each: the
/// payloads travel together, in requests of up to `group_max` (at most [`DIRECT_GROUP_MAX`],
/// 1 if we are no validator: peers take groups from validators only) payloads and about
/// [`DIRECT_GROUP_BYTES`] bytes (one slot, one stream and one turn of the peer's chain task
/// each; a quorum member's contributions of a block to one relay are one request). A payload
/// already waiting or in flight to that peer is left out (the agent re-sends an owner's
/// batches every few blocks until the holder acknowledges: a slow holder would otherwise get a
/// copy queued per re-send), and so is one beyond a full queue. Returns how many were queued.
pub(super) fn send_direct(
    net: &NetworkHandle,
    peer: PeerId,
    queue: &Arc<PeerQueue>,
    payloads: Vec<Payload>,
    group_max: usize,
) -> usize {
    let offered = payloads.len();
    let admitted: Vec<Queued> = payloads
        .into_iter()
        .filter_map(|p| queue.admit(p))
        .collect();
    if admitted.len() < offered {
        debug!(
            %peer,
            dropped = offered - admitted.len(),
            "direct messages already queued, or the queue is full"
        );
    }
    let queued = admitted.len();
    for group in groups(admitted, |q| q.payload.len(), group_max) {
        spawn_group(net, peer, group);
    }
    queued
}

/// `items` cut, in order, into groups as one request carries them: at most `group_max` (and
/// [`DIRECT_GROUP_MAX`]) items, and past the first, at most [`DIRECT_GROUP_BYTES`] by `len`.
pub(super) fn groups<T>(items: Vec<T>, len: impl Fn(&T) -> usize, group_max: usize) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut group: Vec<T> = Vec::new();
    let mut bytes = 0;
    for item in items {
        let n = len(&item);
        if !group.is_empty()
            && (group.len() >= group_max.min(DIRECT_GROUP_MAX) || bytes + n > DIRECT_GROUP_BYTES)
        {
            out.push(std::mem::take(&mut group));
            bytes = 0;
        }
        bytes += n;
        group.push(item);
    }
    if !group.is_empty() {
        out.push(group);
    }
    out
}

/// Sends one request of `group` (one payload: [`ChainRequest::Direct`]; more:
/// [`ChainRequest::Directs`]) once its queue has a free slot; the payloads leave the queue
/// when the answer (or the failure) is in.
fn spawn_group(net: &NetworkHandle, peer: PeerId, group: Vec<Queued>) {
    let net = net.clone();
    tokio::spawn(async move {
        let Some(queue) = group.first().map(|q| q.queue.clone()) else {
            return;
        };
        // The semaphores are never closed: permits always come. Slot first, then bytes (every
        // request in this order: none waits for bytes another holds while it waits for a slot).
        let len: usize = group.iter().map(|q| q.payload.len()).sum();
        let units = len
            .div_ceil(BUDGET_UNIT)
            .clamp(1, DIRECT_IN_FLIGHT_BYTES / BUDGET_UNIT);
        let permit = queue.slots.acquire().await;
        let budget = queue.bytes.acquire_many(units as u32).await;
        let request = match group.as_slice() {
            [one] => ChainRequest::Direct(one.payload.to_vec()),
            many => ChainRequest::Directs(many.iter().map(|q| q.payload.to_vec()).collect()),
        };
        // Only the encoding stays in flight (the copies it was made from go now).
        let bytes = ledger::encode(&request);
        drop(request);
        let sent = net.request(peer, bytes).await;
        drop((permit, budget));
        drop(group);
        match sent {
            Ok(bytes) => match ledger::decode::<ChainResponse>(&bytes) {
                Ok(ChainResponse::Ack) => {}
                other => debug!(%peer, "direct message not taken: {other:?}"),
            },
            Err(e) => debug!(%peer, "direct message failed: {e}"),
        }
    });
}

/// The member a request of `count` direct messages from `peer` comes from, or why it is
/// refused before it reaches the agent: only ledger members deal, hold, contribute and send
/// paths (a network-admitted identity that is no member has nothing to send, and its messages
/// would cost the chain task a turn and a decode each); only validators send several in one
/// request (everyone who deals, holds or relays is one, and a member admitted by proof of work
/// alone would otherwise get [`DIRECT_GROUP_MAX`] messages of the chain task's time for each
/// request its rate allows); and no request carries more than [`DIRECT_GROUP_MAX`].
pub(super) fn direct_sender(
    state: &ledger::LedgerState,
    peer: &PeerId,
    count: usize,
) -> Result<seedfed_protocol::member::MemberId, &'static str> {
    let from = member_of(peer).ok_or("sender is not an Ed25519 identity")?;
    if !state.members.contains_key(&from) {
        return Err("sender is not a ledger member");
    }
    if count > DIRECT_GROUP_MAX {
        return Err("more direct messages in one request than a group holds");
    }
    if count > 1 && !state.is_validator(&from) {
        return Err("only validators send direct messages in groups");
    }
    Ok(from)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;
    use crate::chain::wire::peer_of;
    use crate::network::Command;

    type Answer = tokio::sync::oneshot::Sender<Result<Vec<u8>, crate::network::NetworkError>>;

    /// The next request the node sends: its payload and the way to answer it.
    async fn next_request(
        commands: &mut tokio::sync::mpsc::Receiver<Command>,
    ) -> (Vec<u8>, Answer) {
        match commands.recv().await {
            Some(Command::Request(_, req, answer)) => {
                match ledger::decode::<ChainRequest>(&req).unwrap() {
                    ChainRequest::Direct(payload) => (payload, answer),
                    other => panic!("not a direct message: {other:?}"),
                }
            }
            _ => panic!("no request"),
        }
    }

    /// Before, each re-send round of an owner (every `KEYGEN_RESEND_BLOCKS`) queued one more
    /// encoded copy of every batch a slow holder had not taken yet behind the peer's in-flight
    /// slots, up to `DIRECT_QUEUED` per peer: GiBs of copies at 2^20 leaves (issue 12).
    #[tokio::test]
    async fn a_resend_still_queued_or_in_flight_to_a_peer_is_not_queued_again() {
        let (net, mut commands) = NetworkHandle::detached();
        let peer = PeerId::random();
        let queue = PeerQueue::new();
        // Every slot taken by other messages, unanswered.
        let mut answers = Vec::new();
        for i in 0..DIRECT_IN_FLIGHT {
            assert_eq!(
                send_direct(
                    &net,
                    peer,
                    &queue,
                    vec![vec![i as u8].into()],
                    DIRECT_GROUP_MAX
                ),
                1
            );
            answers.push(next_request(&mut commands).await.1);
        }
        let batch = Payload::from(vec![0xba; 100]);
        assert_eq!(
            send_direct(&net, peer, &queue, vec![batch.clone()], DIRECT_GROUP_MAX),
            1
        );
        // Queued behind the slots: the re-send is not queued again.
        assert_eq!(
            send_direct(&net, peer, &queue, vec![batch.clone()], DIRECT_GROUP_MAX),
            0
        );
        // Another message with the same bytes is another message.
        let twin = Payload::from(vec![0xba; 100]);
        assert_eq!(
            send_direct(&net, peer, &queue, vec![twin.clone()], DIRECT_GROUP_MAX),
            1
        );
        // A slot frees: the batch goes out, once; in flight, its re-send is not queued.
        answers
            .pop()
            .unwrap()
            .send(Ok(ledger::encode(&ChainResponse::Ack)))
            .unwrap();
        let (sent, answer) = next_request(&mut commands).await;
        assert_eq!(sent, batch.to_vec());
        assert_eq!(
            send_direct(&net, peer, &queue, vec![batch.clone()], DIRECT_GROUP_MAX),
            0
        );
        // Delivered: it leaves the queue, and a later re-send goes out again (the holder may
        // have restarted and lost it).
        answer
            .send(Ok(ledger::encode(&ChainResponse::Ack)))
            .unwrap();
        for _ in 0..1000 {
            if !queue.pending().contains(&batch.key()) {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(
            send_direct(&net, peer, &queue, vec![batch.clone()], DIRECT_GROUP_MAX),
            1
        );
        // Waiting or in flight: the first messages, the twin and the batch.
        assert_eq!(queue.pending().len(), DIRECT_IN_FLIGHT - 1 + 2);
    }

    /// Groups keep the order and stop at the count and, past the first item, at the bytes:
    /// what a request carries and what the node takes from itself in one turn.
    #[test]
    fn groups_stop_at_the_count_and_the_bytes_and_keep_the_order() {
        let half = DIRECT_GROUP_BYTES / 2;
        let sizes = [half, half, 1, 2 * DIRECT_GROUP_BYTES, 1, 1, 1];
        let got = groups(sizes.to_vec(), |n| *n, DIRECT_GROUP_MAX);
        assert_eq!(
            got,
            vec![
                vec![half, half],
                vec![1],
                vec![2 * DIRECT_GROUP_BYTES],
                vec![1, 1, 1]
            ]
        );
        assert_eq!(
            groups(vec![1; 5], |n| *n, 2),
            vec![vec![1, 1], vec![1, 1], vec![1]]
        );
        assert!(groups(Vec::<usize>::new(), |n| *n, 2).is_empty());
    }

    /// Before, 16 requests of up to 256 KiB could be in flight to each peer, each held encoded
    /// (and again by the codec while written): 60 MiB and more for an owner dealing to 15
    /// holders. Now the bytes in flight to a peer stay within its budget, and a payload larger
    /// than the whole budget still goes, alone.
    #[tokio::test]
    async fn requests_in_flight_to_a_peer_stay_within_its_byte_budget() {
        let (net, mut commands) = NetworkHandle::detached();
        let peer = PeerId::random();
        let queue = PeerQueue::new();
        let fit = DIRECT_IN_FLIGHT_BYTES / DIRECT_GROUP_BYTES;
        assert!(fit < DIRECT_IN_FLIGHT);
        let big: Vec<Payload> = (0..fit + 2)
            .map(|i| Payload::from(vec![i as u8; DIRECT_GROUP_BYTES]))
            .collect();
        assert_eq!(
            send_direct(&net, peer, &queue, big.clone(), DIRECT_GROUP_MAX),
            fit + 2
        );
        let mut answers = Vec::new();
        for _ in 0..fit {
            answers.push(next_request(&mut commands).await.1);
        }
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert!(
            commands.try_recv().is_err(),
            "more than the budget in flight"
        );
        // One answered: one more goes, not two.
        answers
            .pop()
            .unwrap()
            .send(Ok(ledger::encode(&ChainResponse::Ack)))
            .unwrap();
        answers.push(next_request(&mut commands).await.1);
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert!(
            commands.try_recv().is_err(),
            "more than the budget in flight"
        );
        for a in answers.drain(..) {
            a.send(Ok(ledger::encode(&ChainResponse::Ack))).unwrap();
        }
        let (last, answer) = next_request(&mut commands).await;
        assert_eq!(last, big[fit + 1].to_vec());
        answer
            .send(Ok(ledger::encode(&ChainResponse::Ack)))
            .unwrap();
        // Larger than the whole budget: it waits for all of it, then goes alone.
        let huge = Payload::from(vec![7u8; 2 * DIRECT_IN_FLIGHT_BYTES]);
        assert_eq!(
            send_direct(&net, peer, &queue, vec![huge.clone()], DIRECT_GROUP_MAX),
            1
        );
        assert_eq!(next_request(&mut commands).await.0, huge.to_vec());
    }

    /// Before, every payload was a request of its own: a relay got one stream, one turn of its
    /// chain task and one slot of the sender's rate limit per contribution, and a signing
    /// burst's contributions to it exceeded its per-peer request rate (issue 10: contributions
    /// for a batch of requests travel together).
    #[tokio::test]
    async fn payloads_to_one_peer_travel_together_up_to_the_group_limit() {
        let (net, mut commands) = NetworkHandle::detached();
        let peer = PeerId::random();
        let queue = PeerQueue::new();
        let payloads: Vec<Payload> = (0..DIRECT_GROUP_MAX + 3)
            .map(|i| Payload::from(i.to_le_bytes().to_vec()))
            .collect();
        // A payload offered twice is queued once.
        let mut offered = payloads.clone();
        offered.push(payloads[0].clone());
        assert_eq!(
            send_direct(&net, peer, &queue, offered, DIRECT_GROUP_MAX),
            payloads.len()
        );
        let mut sent = Vec::new();
        for want in [DIRECT_GROUP_MAX, 3] {
            let Some(Command::Request(to, req, answer)) = commands.recv().await else {
                panic!("no request");
            };
            assert_eq!(to, peer);
            let ChainRequest::Directs(group) = ledger::decode::<ChainRequest>(&req).unwrap() else {
                panic!("not a group of direct messages");
            };
            assert_eq!(group.len(), want);
            sent.extend(group);
            answer
                .send(Ok(ledger::encode(&ChainResponse::Ack)))
                .unwrap();
        }
        let expected: Vec<Vec<u8>> = payloads.iter().map(Payload::to_vec).collect();
        assert_eq!(sent, expected);
        // A group's size is bounded in bytes too: large payloads go in several requests.
        let big: Vec<Payload> = (0..3u8)
            .map(|i| Payload::from(vec![i; DIRECT_GROUP_BYTES / 2 + 1]))
            .collect();
        assert_eq!(send_direct(&net, peer, &queue, big, DIRECT_GROUP_MAX), 3);
        for _ in 0..3 {
            let Some(Command::Request(_, req, answer)) = commands.recv().await else {
                panic!("no request");
            };
            assert!(matches!(
                ledger::decode::<ChainRequest>(&req).unwrap(),
                ChainRequest::Direct(_)
            ));
            answer
                .send(Ok(ledger::encode(&ChainResponse::Ack)))
                .unwrap();
        }
    }

    /// Before, a direct message from any admitted peer reached the agent on the chain task,
    /// decoded or not (the flood bench's garbage direct messages).
    #[test]
    fn direct_messages_from_peers_that_are_no_ledger_members_are_refused_first() {
        let key = libp2p::identity::Keypair::generate_ed25519();
        let id = member_of(&key.public().to_peer_id()).expect("an Ed25519 peer");
        let genesis = crate::chain::test_genesis::genesis("direct", &[(id, 100)], 1_000);
        let state = seedfed_protocol::ledger::LedgerState::from_genesis(&genesis).expect("genesis");
        let member = peer_of(&id).expect("peer id");
        assert!(direct_sender(&state, &member, 1).is_ok());
        let stranger = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        assert_eq!(
            direct_sender(&state, &stranger, 1),
            Err("sender is not a ledger member")
        );
        let not_ed25519 = PeerId::random();
        assert_eq!(
            direct_sender(&state, &not_ed25519, 1),
            Err("sender is not an Ed25519 identity")
        );
    }

    /// Before, any member (one admitted by proof of work alone, with no stake) could send
    /// requests of [`DIRECT_GROUP_MAX`] direct messages, each taking the chain task's time, at
    /// the rate allowed for single requests.
    #[test]
    fn only_validators_send_direct_messages_in_groups_and_no_group_is_too_large() {
        let validator = libp2p::identity::Keypair::generate_ed25519();
        let id = member_of(&validator.public().to_peer_id()).expect("an Ed25519 peer");
        let genesis = crate::chain::test_genesis::genesis("direct", &[(id, 100)], 1_000);
        let mut state =
            seedfed_protocol::ledger::LedgerState::from_genesis(&genesis).expect("genesis");
        let unstaked_key = libp2p::identity::Keypair::generate_ed25519();
        let unstaked = member_of(&unstaked_key.public().to_peer_id()).expect("an Ed25519 peer");
        let mut member = state.members.get(&id).expect("the validator").clone();
        member.stake = 0;
        state.members.insert(unstaked, member);
        state.members.settle();
        assert!(!state.is_validator(&unstaked));
        let (validator, unstaked) = (
            peer_of(&id).expect("peer id"),
            peer_of(&unstaked).expect("peer id"),
        );
        assert!(direct_sender(&state, &validator, DIRECT_GROUP_MAX).is_ok());
        assert_eq!(
            direct_sender(&state, &validator, DIRECT_GROUP_MAX + 1),
            Err("more direct messages in one request than a group holds")
        );
        assert!(direct_sender(&state, &unstaked, 1).is_ok());
        assert_eq!(
            direct_sender(&state, &unstaked, 2),
            Err("only validators send direct messages in groups")
        );
    }

    /// A node that is no validator sends one direct message per request (its peers refuse its
    /// groups).
    #[tokio::test]
    async fn a_group_limit_of_one_sends_each_payload_alone() {
        let (net, mut commands) = NetworkHandle::detached();
        let peer = PeerId::random();
        let queue = PeerQueue::new();
        let payloads: Vec<Payload> = (0..3u8).map(|i| Payload::from(vec![i])).collect();
        assert_eq!(send_direct(&net, peer, &queue, payloads.clone(), 1), 3);
        let mut sent = Vec::new();
        for _ in 0..3 {
            let (payload, answer) = next_request(&mut commands).await;
            sent.push(payload);
            answer
                .send(Ok(ledger::encode(&ChainResponse::Ack)))
                .unwrap();
        }
        sent.sort();
        assert_eq!(sent, vec![vec![0], vec![1], vec![2]]);
    }
}
