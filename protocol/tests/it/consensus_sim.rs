//! Seeded in-memory simulation of N nodes running the real ledger and the real consensus
//! state machine over a simulated network (delay, loss, reordering, partitions) with an
//! injected clock. Byzantine nodes are test inputs: equivocating voters, vote withholders,
//! invalid block proposers, replayers of old messages.
//!
//! Invariants: no two honest nodes decide different blocks at one height; honest ledger
//! state hashes agree at every height; every honest node reaches the target height (so
//! progress resumes after a partition heals); the same seed gives the same run.
//!
//! `SEEDFED_SIM_SEEDS=N` runs N seeds per configuration instead of the CI default.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::time::Duration;

use ed25519_dalek::{Signer, SigningKey};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use seedfed_protocol::agent::{Agent, Duty, Fault};
use seedfed_protocol::consensus::{
    CommitCertificate, Consensus, ConsensusKey, ConsensusMessage, ConsensusParams, Input, Output,
    TimerId,
};
use seedfed_protocol::ledger::vote_digest;
use seedfed_protocol::ledger::{decode, encode};
use seedfed_protocol::ledger::{
    Block, EpochParams, Evidence, Genesis, GenesisValidator, KeyParams, Ledger, Signature64,
    SignedTx, Tx, TxBody, VoteRecord,
};
use seedfed_protocol::member::MemberId;
use x25519_dalek::{PublicKey, StaticSecret};

const CHAIN: &str = "sim-chain";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    Honest,
    /// Sends a conflicting vote (nil or a random hash) to half of the peers.
    Equivocate,
    /// Never sends votes.
    WithholdVotes,
    /// Proposes blocks that do not validate.
    InvalidProposals,
    /// Replays old messages it has seen to random peers.
    Replay,
}

#[derive(Clone, Debug)]
struct NetConfig {
    min_delay_ms: u64,
    max_delay_ms: u64,
    /// Loss probability in parts per thousand, applied before `lossy_until_ms` (the global
    /// stabilisation time of the partial-synchrony model: Tendermint is live only once
    /// messages between correct nodes are eventually delivered).
    loss_permille: u64,
    lossy_until_ms: u64,
    /// (start, end, group): during [start, end) messages between the group and the rest drop.
    partition: Option<(u64, u64, BTreeSet<usize>)>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Deliver {
        to: usize,
        from: usize,
        msg: u64,
    },
    Timer {
        node: usize,
        timer: TimerId,
        generation: u64,
    },
    SyncRequest {
        from: usize,
        to: usize,
        height: u64,
    },
    SyncResponse {
        to: usize,
        height: u64,
        source: usize,
    },
    /// A point-to-point epoch-agent payload (`directs[payload]`).
    Direct {
        to: usize,
        from: usize,
        payload: u64,
    },
}

struct Node {
    consensus: Consensus,
    behaviour: Behaviour,
    timers: BTreeMap<TimerId, u64>,
    wal: Vec<seedfed_protocol::consensus::WalEntry>,
    /// WAL entries not durable yet (lost by a crash), as a node keeps them: written before
    /// the next output that needs them (`Output::needs_durable_wal`).
    wal_pending: Vec<seedfed_protocol::consensus::WalEntry>,
    decided: BTreeMap<u64, (Block, CommitCertificate)>,
    seen: Vec<ConsensusMessage>,
    /// Equivocation evidence reported by consensus, turned into `Evict` transactions.
    evidence: Vec<(VoteRecord, VoteRecord)>,
    /// The epoch duty machine, when the epoch cycle is simulated.
    agent: Option<Agent>,
    /// This node's own transactions from its agent, signed with consecutive nonces from the
    /// ledger's (re-signed after every decided block); every proposer offers them.
    pending: Vec<SignedTx>,
}

struct Sim {
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, Event)>>,
    /// Every message sent, as wire bytes (`ledger::encode`).
    messages: Vec<Vec<u8>>,
    nodes: Vec<Node>,
    keys: Vec<SigningKey>,
    net: NetConfig,
    generation: u64,
    /// height -> (block hash, state hash) decided by honest nodes.
    honest_decisions: BTreeMap<u64, ([u8; 32], [u8; 32])>,
    events: u64,
    invalid_proposals: u64,
    /// What each honest node signed: (node, height, round, step) -> value. Step 0 is the
    /// proposal, 1 prevote, 2 precommit. A second, different value is an equivocation.
    signed: BTreeMap<(usize, u64, u32, u8), Option<[u8; 32]>>,
    genesis: Genesis,
    /// Transactions every proposer offers (those that do not apply yet are left out of the
    /// block and stay here until a block includes them).
    mempool: Vec<SignedTx>,
    /// Whether proposers add their own stake transfer to each block.
    own_transfers: bool,
    /// Epoch-agent point-to-point payloads.
    directs: Vec<Vec<u8>>,
}

fn key(i: usize) -> SigningKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    seed[31] = 0x5e;
    SigningKey::from_bytes(&seed)
}

fn x25519_secret(i: usize) -> [u8; 32] {
    let mut s = [0x77u8; 32];
    s[..8].copy_from_slice(&(i as u64).to_le_bytes());
    s
}

fn genesis(n: usize) -> Genesis {
    Genesis {
        chain_id: CHAIN.into(),
        pow_difficulty: 8,
        validators: (0..n)
            .map(|i| GenesisValidator {
                id: MemberId(key(i).verifying_key().to_bytes()),
                // Equal stake keeps "f Byzantine nodes" = "less than a third of the stake".
                stake: 1000,
                x25519: PublicKey::from(&StaticSecret::from(x25519_secret(i))).to_bytes(),
            })
            .collect(),
        key: KeyParams {
            tree_height: 5,
            sector_bits: 1,
            leaf_threshold: 2,
            leaf_holders: 3,
            ack_threshold: 3,
            audit_leaves: 0,
            sector_window: seedfed_protocol::ledger::DEFAULT_SECTOR_WINDOW,
            rotate_percent: 0,
        },
        eviction_missed_heights: 1000,
        epochs: EpochParams::default(),
        clients: Vec::new(),
    }
}

fn params() -> ConsensusParams {
    let mut p = ConsensusParams::default();
    p.timeouts.propose = Duration::from_millis(1000);
    p.timeouts.propose_delta = Duration::from_millis(250);
    p.timeouts.prevote = Duration::from_millis(400);
    p.timeouts.prevote_delta = Duration::from_millis(200);
    p.timeouts.precommit = Duration::from_millis(400);
    p.timeouts.precommit_delta = Duration::from_millis(200);
    p.timeouts.rebroadcast = Duration::from_millis(2000);
    p.timeouts.max_timeout = Duration::from_secs(10);
    p
}

impl Sim {
    fn new(seed: u64, n: usize, byzantine: &[Behaviour], net: NetConfig) -> Self {
        Self::with_members(seed, n, n, byzantine, net)
    }

    /// `n` nodes of which the first `n_genesis` are genesis validators; the others run the
    /// same code from genesis and can join through transactions.
    fn with_members(
        seed: u64,
        n: usize,
        n_genesis: usize,
        byzantine: &[Behaviour],
        net: NetConfig,
    ) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(seed);
        let g = genesis(n_genesis);
        let keys: Vec<SigningKey> = (0..n).map(key).collect();
        let nodes: Vec<Node> = (0..n)
            .map(|i| {
                let ledger = Ledger::from_genesis(&g).expect("genesis");
                let c = Consensus::new(
                    ledger,
                    None,
                    ConsensusKey::from_seed(keys[i].to_bytes()),
                    params(),
                )
                .expect("consensus");
                Node {
                    consensus: c,
                    behaviour: byzantine.get(i).copied().unwrap_or(Behaviour::Honest),
                    timers: BTreeMap::new(),
                    wal: Vec::new(),
                    wal_pending: Vec::new(),
                    decided: BTreeMap::new(),
                    seen: Vec::new(),
                    evidence: Vec::new(),
                    agent: None,
                    pending: Vec::new(),
                }
            })
            .collect();
        let mut sim = Sim {
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            messages: Vec::new(),
            nodes,
            keys,
            net,
            generation: 0,
            honest_decisions: BTreeMap::new(),
            events: 0,
            invalid_proposals: 0,
            signed: BTreeMap::new(),
            genesis: g,
            mempool: Vec::new(),
            own_transfers: true,
            directs: Vec::new(),
        };
        for i in 0..n {
            let out = sim.nodes[i].consensus.start();
            sim.outputs(i, out);
        }
        sim
    }

    /// Gives every node an epoch agent and runs it on the genesis ledger.
    fn enable_agents(&mut self) {
        for i in 0..self.nodes.len() {
            self.nodes[i].agent = Some(Agent::new(
                self.keys[i].to_bytes(),
                x25519_secret(i),
                Fault::None,
            ));
            self.run_agent(i);
        }
    }

    /// Signs `bodies` (de-duplicated) by node `i` with consecutive nonces from `ledger`'s.
    fn sign_own(&self, i: usize, ledger: &Ledger, bodies: Vec<TxBody>) -> Vec<SignedTx> {
        let me = self.nodes[i].consensus.id();
        let mut nonce = ledger.state.members.get(&me).map_or(0, |m| m.nonce);
        let mut out: Vec<SignedTx> = Vec::new();
        for body in bodies {
            if out.iter().any(|t| t.tx.body == body) {
                continue;
            }
            out.push(
                Tx {
                    author: me,
                    nonce,
                    body,
                }
                .sign(CHAIN, &self.keys[i]),
            );
            nonce += 1;
        }
        out
    }

    /// Runs node `i`'s agent on its ledger: its transactions replace its pending ones, its
    /// envelopes go out over the network (no loss).
    fn run_agent(&mut self, i: usize) {
        let Some(mut agent) = self.nodes[i].agent.take() else {
            return;
        };
        let ledger = self.nodes[i].consensus.ledger().clone();
        let duties = agent.on_block(&ledger, &mut self.rng);
        self.nodes[i].agent = Some(agent);
        let bodies = self.dispatch(i, duties);
        self.nodes[i].pending = self.sign_own(i, &ledger, bodies);
    }

    /// Node `i`'s duties: its transaction bodies are returned, its envelopes go out over the
    /// network (no loss), its holder records and trees are dropped (nothing here reads them;
    /// its genesis has no audit, so nothing asks for reveals or paths).
    fn dispatch(&mut self, i: usize, duties: Vec<Duty>) -> Vec<TxBody> {
        let mut bodies = Vec::new();
        for d in duties {
            match d {
                Duty::Submit(b) => bodies.push(b),
                Duty::Keep { .. }
                | Duty::KeepChunk { .. }
                | Duty::KeepTree { .. }
                | Duty::Reveal { .. }
                | Duty::ProvePath { .. }
                | Duty::Contribute { .. }
                | Duty::SendPath { .. } => {}
                Duty::Send { to, payload } => {
                    let Some(j) = self.nodes.iter().position(|n| n.consensus.id() == to) else {
                        continue;
                    };
                    let delay = self.net.min_delay_ms
                        + self.rand(self.net.max_delay_ms - self.net.min_delay_ms + 1);
                    self.directs.push(payload.to_vec());
                    let id = self.directs.len() as u64 - 1;
                    self.push(
                        self.now + delay,
                        Event::Direct {
                            to: j,
                            from: i,
                            payload: id,
                        },
                    );
                }
            }
        }
        bodies
    }

    fn rand(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.rng.next_u64() % n
        }
    }

    fn push(&mut self, at: u64, e: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, e)));
    }

    fn cut(&self, a: usize, b: usize) -> bool {
        match &self.net.partition {
            Some((start, end, group)) if self.now >= *start && self.now < *end => {
                group.contains(&a) != group.contains(&b)
            }
            _ => false,
        }
    }

    /// Sends over the lossy network (partition checked at send time).
    fn send(&mut self, from: usize, to: usize, msg: ConsensusMessage) {
        let lossy = self.now < self.net.lossy_until_ms;
        if self.cut(from, to) || (lossy && self.rand(1000) < self.net.loss_permille) {
            return;
        }
        let delay =
            self.net.min_delay_ms + self.rand(self.net.max_delay_ms - self.net.min_delay_ms + 1);
        self.messages.push(encode(&msg));
        let id = self.messages.len() as u64 - 1;
        self.push(self.now + delay, Event::Deliver { to, from, msg: id });
    }

    /// Records what an honest node signs and fails on any conflict (a node must never
    /// equivocate, not even across a crash and WAL recovery).
    fn check_own_signature(&mut self, from: usize, msg: &ConsensusMessage) {
        if self.nodes[from].behaviour != Behaviour::Honest {
            return;
        }
        let me = self.nodes[from].consensus.id();
        let (key, value) = match msg {
            ConsensusMessage::Vote(v) if v.validator == me => {
                let step = match v.kind {
                    seedfed_protocol::ledger::VoteKind::Prevote => 1,
                    seedfed_protocol::ledger::VoteKind::Precommit => 2,
                };
                ((from, v.height, v.round, step), v.value)
            }
            ConsensusMessage::Proposal(p) if p.proposer == me => {
                ((from, p.height, p.round, 0), Some(p.block.hash()))
            }
            _ => return,
        };
        if let Some(prev) = self.signed.insert(key, value) {
            assert_eq!(prev, value, "honest node {from} equivocated at {key:?}");
        }
    }

    fn broadcast(&mut self, from: usize, msg: ConsensusMessage) {
        self.check_own_signature(from, &msg);
        let n = self.nodes.len();
        let behaviour = self.nodes[from].behaviour;
        for to in 0..n {
            if to == from {
                continue;
            }
            match (&msg, behaviour) {
                (ConsensusMessage::Vote(_), Behaviour::WithholdVotes) => {}
                (ConsensusMessage::Vote(v), Behaviour::Equivocate) if to % 2 == 0 => {
                    let mut other = v.clone();
                    other.value = match v.value {
                        Some(_) => None,
                        None => {
                            let mut h = [0u8; 32];
                            self.rng.fill_bytes(&mut h);
                            Some(h)
                        }
                    };
                    let d = vote_digest(
                        CHAIN,
                        other.height,
                        other.round,
                        other.kind,
                        other.value.as_ref(),
                        &other.validator,
                    );
                    other.signature = Signature64(self.keys[from].sign(&d).to_bytes());
                    // Half of the time the peer gets both votes, in random order.
                    let both = self.rand(2) == 0;
                    if both && self.rand(2) == 0 {
                        self.send(from, to, msg.clone());
                    }
                    self.send(from, to, ConsensusMessage::Vote(other));
                    if both {
                        self.send(from, to, msg.clone());
                    }
                }
                _ => self.send(from, to, msg.clone()),
            }
        }
    }

    fn outputs(&mut self, i: usize, outs: Vec<Output>) {
        for o in outs {
            if o.needs_durable_wal() {
                let node = &mut self.nodes[i];
                node.wal.append(&mut node.wal_pending);
            }
            match o {
                Output::PersistWal(e) => self.nodes[i].wal_pending.push(e),
                Output::Broadcast(m) => self.broadcast(i, m),
                Output::ScheduleTimer { timer, after } => {
                    self.generation += 1;
                    let g = self.generation;
                    self.nodes[i].timers.insert(timer, g);
                    let at = self.now + after.as_millis() as u64;
                    self.push(
                        at,
                        Event::Timer {
                            node: i,
                            timer,
                            generation: g,
                        },
                    );
                }
                Output::CancelTimer(t) => {
                    self.nodes[i].timers.remove(&t);
                }
                Output::CancelAllTimers => self.nodes[i].timers.clear(),
                Output::BuildBlock { height, round } => {
                    let input = self.build(i, height, round);
                    let out = self.nodes[i].consensus.handle(input);
                    self.outputs(i, out);
                }
                Output::Decided { block, certificate } => self.decided(i, block, certificate),
                Output::InvalidProposal { .. } => self.invalid_proposals += 1,
                Output::Equivocation { a, b } => {
                    let list = &mut self.nodes[i].evidence;
                    if list.len() < 16 {
                        list.push((a, b));
                    }
                }
            }
        }
    }

    /// The proposer's answer: honest nodes move one unit of stake to the next validator;
    /// an invalid proposer breaks its block.
    fn build(&mut self, i: usize, height: u64, round: u32) -> Input {
        let ledger = self.nodes[i].consensus.ledger();
        let me = self.nodes[i].consensus.id();
        let nonce = ledger.state.members.get(&me).map_or(0, |m| m.nonce);
        let to = MemberId(
            self.keys[(i + 1) % self.keys.len()]
                .verifying_key()
                .to_bytes(),
        );
        let tx = Tx {
            author: me,
            nonce,
            body: TxBody::Transfer { to, amount: 1 },
        }
        .sign(CHAIN, &self.keys[i]);
        // Honest proposers also submit equivocation evidence they hold (one per block).
        let mut txs = if self.own_transfers {
            vec![tx.clone()]
        } else {
            Vec::new()
        };
        txs.extend(self.mempool.iter().cloned());
        for n in self
            .nodes
            .iter()
            .filter(|n| n.behaviour == Behaviour::Honest)
        {
            txs.extend(n.pending.iter().cloned());
        }
        if self.nodes[i].behaviour == Behaviour::Honest {
            let state = &ledger.state;
            let pending = self.nodes[i]
                .evidence
                .iter()
                .find(|(a, _)| state.is_validator(&a.validator))
                .cloned();
            if let Some((a, b)) = pending {
                txs.push(
                    Tx {
                        author: me,
                        nonce: nonce + 1,
                        body: TxBody::Evict {
                            member: a.validator,
                            evidence: Evidence::Equivocation {
                                a: Box::new(a),
                                b: Box::new(b),
                            },
                        },
                    }
                    .sign(CHAIN, &self.keys[i]),
                );
            }
        }
        if self.nodes[i].behaviour == Behaviour::InvalidProposals {
            let commit = self.nodes[i]
                .consensus
                .last_certificate()
                .map(|c| c.commit_info())
                .unwrap_or_default();
            let (mut block, _) = ledger.build_block(me, commit, vec![tx]).expect("build");
            // (The transfer is dropped when its recipient was evicted: then only the state
            // hash can be broken.)
            let choice = if block.txs.is_empty() {
                0
            } else {
                self.rand(3)
            };
            match choice {
                0 => block.state_hash[0] ^= 1,
                1 => block.txs[0].signature.0[0] ^= 1,
                _ => block.txs.push(block.txs[0].clone()),
            }
            return Input::ProposeBlock { round, block };
        }
        Input::ProposeTxs { height, round, txs }
    }

    fn decided(&mut self, i: usize, block: Block, cert: CommitCertificate) {
        let h = block.height;
        let node = &mut self.nodes[i];
        let state_hash = node.consensus.ledger().state.hash();
        assert_eq!(state_hash, block.state_hash, "ledger state after decide");
        // A certificate is verifiable by anyone with the validator set of its height.
        node.decided.insert(h, (block.clone(), cert));
        node.wal.clear();
        if node.behaviour != Behaviour::Honest {
            return;
        }
        self.mempool.retain(|t| !block.txs.contains(t));
        self.run_agent(i);
        let entry = (block.hash(), state_hash);
        match self.honest_decisions.get(&h) {
            Some(prev) => assert_eq!(
                *prev, entry,
                "honest nodes decided different blocks or states at height {h}"
            ),
            None => {
                self.honest_decisions.insert(h, entry);
            }
        }
    }

    fn step(&mut self) -> bool {
        let Some(Reverse((at, _, e))) = self.queue.pop() else {
            return false;
        };
        self.now = at;
        self.events += 1;
        match e {
            Event::Deliver { to, from, msg } => {
                let m: ConsensusMessage =
                    decode(&self.messages[msg as usize]).expect("wire message decodes");
                let my_height = self.nodes[to].consensus.height();
                if m.height() > my_height {
                    // Ask the sender for the blocks we miss (request-response over the net).
                    if !self.cut(to, from) {
                        let d = self.net.min_delay_ms;
                        self.push(
                            self.now + d,
                            Event::SyncRequest {
                                from: to,
                                to: from,
                                height: my_height,
                            },
                        );
                    }
                }
                if self.nodes[to].behaviour == Behaviour::Replay && self.nodes[to].seen.len() < 512
                {
                    self.nodes[to].seen.push(m.clone());
                }
                let out = self.nodes[to].consensus.handle(Input::Message(m));
                self.outputs(to, out);
                if self.nodes[to].behaviour == Behaviour::Replay && self.rand(4) == 0 {
                    let k = self.nodes[to].seen.len() as u64;
                    if k > 0 {
                        let pick = self.rand(k) as usize;
                        let old = self.nodes[to].seen[pick].clone();
                        let target = self.rand(self.nodes.len() as u64) as usize;
                        if target != to {
                            self.send(to, target, old);
                        }
                    }
                }
            }
            Event::Timer {
                node,
                timer,
                generation,
            } => {
                if self.nodes[node].timers.get(&timer) == Some(&generation) {
                    self.nodes[node].timers.remove(&timer);
                    let out = self.nodes[node].consensus.handle(Input::TimerFired(timer));
                    self.outputs(node, out);
                }
            }
            Event::SyncRequest { from, to, height } => {
                if self.nodes[to].decided.contains_key(&height) && !self.cut(from, to) {
                    let d = self.net.min_delay_ms;
                    self.push(
                        self.now + d,
                        Event::SyncResponse {
                            to: from,
                            height,
                            source: to,
                        },
                    );
                }
            }
            Event::Direct { to, from, payload } => {
                let from_id = self.nodes[from].consensus.id();
                let bytes = self.directs[payload as usize].clone();
                if let Some(mut agent) = self.nodes[to].agent.take() {
                    let ledger = self.nodes[to].consensus.ledger().clone();
                    if let Ok(duties) = agent.on_direct(&ledger, from_id, &bytes, &mut self.rng) {
                        let mut bodies: Vec<TxBody> = self.nodes[to]
                            .pending
                            .iter()
                            .map(|t| t.tx.body.clone())
                            .collect();
                        bodies.extend(self.dispatch(to, duties));
                        self.nodes[to].pending = self.sign_own(to, &ledger, bodies);
                    }
                    self.nodes[to].agent = Some(agent);
                }
            }
            Event::SyncResponse { to, height, source } => {
                let (block, certificate) = self.nodes[source].decided[&height].clone();
                let out = self.nodes[to]
                    .consensus
                    .handle(Input::Synced { block, certificate });
                self.outputs(to, out);
            }
        }
        self.check_timers();
        true
    }

    /// Liveness guard: every honest validator always holds a timer of the height it decides
    /// (Malachite keeps a rebroadcast timer per round). A node with none waits on messages
    /// alone, and if the others wait on it, the chain stops for good.
    fn check_timers(&self) {
        for (i, n) in self.nodes.iter().enumerate() {
            let h = n.consensus.height();
            if n.behaviour != Behaviour::Honest
                || !n.consensus.ledger().state.is_validator(&n.consensus.id())
            {
                continue;
            }
            assert!(
                n.timers.keys().any(|t| t.height == h),
                "node {i} at height {h} round {} holds no timer of its height ({:?}) at {} ms",
                n.consensus.round(),
                n.timers.keys().collect::<Vec<_>>(),
                self.now
            );
        }
    }

    /// Runs until every honest node has decided `heights` blocks or a bound is hit.
    fn run(&mut self, heights: u64, max_time_ms: u64, max_events: u64) -> bool {
        while self.now <= max_time_ms && self.events < max_events {
            let done = self
                .nodes
                .iter()
                .filter(|n| n.behaviour == Behaviour::Honest)
                .all(|n| n.consensus.height() > heights);
            if done {
                return true;
            }
            if !self.step() {
                return false;
            }
        }
        false
    }

    /// Crashes node `i` and restarts it from what it persisted: its decided blocks (the
    /// ledger is rebuilt from genesis), the last commit certificate, and the durable WAL of the
    /// current height. Pending timers and WAL entries not written yet are lost with the
    /// process.
    fn crash_and_recover(&mut self, i: usize) {
        let mut ledger = Ledger::from_genesis(&self.genesis).expect("genesis");
        let mut last = None;
        for (block, cert) in self.nodes[i].decided.values() {
            ledger.apply_block(block).expect("persisted block applies");
            last = Some(cert.clone());
        }
        let wal = std::mem::take(&mut self.nodes[i].wal);
        self.nodes[i].wal_pending.clear();
        let mut c = Consensus::new(
            ledger,
            last,
            ConsensusKey::from_seed(self.keys[i].to_bytes()),
            params(),
        )
        .expect("consensus");
        let out = c.recover(wal.clone()).expect("wal replays");
        self.nodes[i].consensus = c;
        self.nodes[i].timers.clear();
        // The recovered WAL stays: the replay appends nothing new for it.
        self.nodes[i].wal = wal;
        self.outputs(i, out);
    }

    fn decided_hashes(&self) -> Vec<(u64, [u8; 32])> {
        self.honest_decisions
            .iter()
            .map(|(h, (b, _))| (*h, *b))
            .collect()
    }
}

struct Scenario {
    n: usize,
    byzantine: Vec<Behaviour>,
    net: NetConfig,
    heights: u64,
}

fn scenario(seed: u64, n: usize) -> Scenario {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_fed0);
    let f = (n - 1) / 3;
    let kinds = [
        Behaviour::Equivocate,
        Behaviour::WithholdVotes,
        Behaviour::InvalidProposals,
        Behaviour::Replay,
    ];
    let byz_count = (rng.next_u64() % (f as u64 + 1)) as usize;
    let mut byzantine = vec![Behaviour::Honest; n];
    // Byzantine nodes at random positions.
    let mut placed = 0;
    while placed < byz_count {
        let i = (rng.next_u64() % n as u64) as usize;
        if byzantine[i] == Behaviour::Honest {
            byzantine[i] = kinds[(rng.next_u64() % kinds.len() as u64) as usize];
            placed += 1;
        }
    }
    let partition = if rng.next_u64() % 3 == 0 {
        let size = 1 + (rng.next_u64() % (n as u64 / 2)) as usize;
        let group: BTreeSet<usize> = (0..size).map(|k| (k * 3 + seed as usize) % n).collect();
        let start = rng.next_u64() % 3000;
        Some((start, start + 2000 + rng.next_u64() % 6000, group))
    } else {
        None
    };
    let max_delay = 20 + rng.next_u64() % 300;
    Scenario {
        n,
        byzantine,
        net: NetConfig {
            min_delay_ms: 5,
            max_delay_ms: max_delay,
            loss_permille: rng.next_u64() % 100,
            lossy_until_ms: 1000 + rng.next_u64() % 8000,
            partition,
        },
        heights: 3,
    }
}

fn run_seed(seed: u64, n: usize) -> (Vec<(u64, [u8; 32])>, u64) {
    let s = scenario(seed, n);
    let mut sim = Sim::new(seed, s.n, &s.byzantine, s.net.clone());
    let ok = sim.run(s.heights, 600_000, 400_000);
    assert!(
        ok,
        "seed {seed} n {n}: no progress to height {} (byzantine {:?}, net {:?}); heights {:?}, time {} ms, events {}",
        s.heights,
        s.byzantine,
        s.net,
        sim.nodes.iter().map(|x| x.consensus.height()).collect::<Vec<_>>(),
        sim.now,
        sim.events
    );
    // Honest ledgers agree at the common height.
    let honest: Vec<&Node> = sim
        .nodes
        .iter()
        .filter(|x| x.behaviour == Behaviour::Honest)
        .collect();
    for h in 1..=s.heights {
        let hashes: BTreeSet<[u8; 32]> = honest.iter().map(|x| x.decided[&h].0.hash()).collect();
        assert_eq!(hashes.len(), 1, "seed {seed}: disagreement at height {h}");
        // Every certificate verifies against the validator set that decided the height.
        for x in &honest {
            let (block, cert) = &x.decided[&h];
            let mut ledger = Ledger::from_genesis(&genesis(n)).expect("genesis");
            for hh in 1..h {
                ledger.apply_block(&x.decided[&hh].0).expect("replay");
            }
            cert.verify(CHAIN, &ledger.state.validators())
                .expect("certificate verifies");
            assert_eq!(cert.block_hash, block.hash());
        }
    }
    (sim.decided_hashes(), sim.events)
}

fn seeds_per_config() -> u64 {
    std::env::var("SEEDFED_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn sweep(n: usize, default_seeds: u64) {
    let seeds = match seeds_per_config() {
        0 => default_seeds,
        k => k,
    };
    for seed in 0..seeds {
        run_seed(seed * 1000 + n as u64, n);
    }
}

#[test]
fn sim_n4() {
    sweep(4, 80);
}

#[test]
fn sim_n7() {
    sweep(7, 70);
}

#[test]
fn sim_n10() {
    sweep(10, 50);
}

#[test]
fn same_seed_same_run() {
    for (seed, n) in [(7, 4), (11, 7), (13, 10)] {
        let a = run_seed(seed, n);
        let b = run_seed(seed, n);
        assert_eq!(a, b, "seed {seed} n {n} is not deterministic");
        assert!(a.0.len() >= 3);
    }
}

#[test]
fn progress_resumes_after_partition_heals() {
    // 7 nodes split 3/4 for 10 s: no side has a quorum, so nothing is decided during the
    // split; after it heals every node reaches height 4.
    let group: BTreeSet<usize> = [0, 1, 2].into_iter().collect();
    let net = NetConfig {
        min_delay_ms: 5,
        max_delay_ms: 50,
        loss_permille: 0,
        lossy_until_ms: 0,
        partition: Some((0, 10_000, group)),
    };
    let mut sim = Sim::new(42, 7, &[], net);
    assert!(!sim.run(1, 9_000, 1_000_000), "decided during a partition");
    assert!(sim.nodes.iter().all(|x| x.consensus.height() == 1));
    assert!(sim.run(4, 120_000, 1_000_000), "no progress after heal");
    assert!(sim.now > 10_000);
}

#[test]
fn each_byzantine_behaviour_alone() {
    let kinds = [
        Behaviour::Equivocate,
        Behaviour::WithholdVotes,
        Behaviour::InvalidProposals,
        Behaviour::Replay,
    ];
    for (k, kind) in kinds.into_iter().enumerate() {
        for n in [4usize, 7] {
            let f = (n - 1) / 3;
            let byz: Vec<Behaviour> = (0..n)
                .map(|i| if i < f { kind } else { Behaviour::Honest })
                .collect();
            let net = NetConfig {
                min_delay_ms: 5,
                max_delay_ms: 80,
                loss_permille: 0,
                lossy_until_ms: 0,
                partition: None,
            };
            let mut sim = Sim::new(900 + k as u64, n, &byz, net);
            // Equivocators are evicted one per block by whichever honest proposer holds the
            // evidence: give that a few more heights.
            let heights = if kind == Behaviour::Equivocate { 20 } else { 8 };
            assert!(
                sim.run(heights, 600_000, 1_000_000),
                "{kind:?} n={n}: no progress"
            );
            if kind == Behaviour::Equivocate {
                // Honest nodes caught the double votes and the ledger evicted the culprit.
                for x in sim
                    .nodes
                    .iter()
                    .filter(|x| x.behaviour == Behaviour::Honest)
                {
                    let st = &x.consensus.ledger().state;
                    for (j, b) in byz.iter().enumerate() {
                        if *b == Behaviour::Equivocate {
                            let id = MemberId(sim.keys[j].verifying_key().to_bytes());
                            assert!(
                                st.evictions.contains_key(&id),
                                "equivocator {j} not evicted"
                            );
                        }
                    }
                }
            }
            if kind == Behaviour::InvalidProposals {
                assert!(
                    sim.invalid_proposals > 0,
                    "invalid proposals were not detected"
                );
                // No honest node ever decided a block proposed by the invalid proposer that
                // failed validation: every decided block applied (checked in `decided`).
            }
        }
    }
}

#[test]
fn crashed_nodes_recover_from_wal_without_equivocating() {
    for seed in 0..6u64 {
        let n = 4;
        let net = NetConfig {
            min_delay_ms: 5,
            max_delay_ms: 60,
            loss_permille: 0,
            lossy_until_ms: 0,
            partition: None,
        };
        let mut sim = Sim::new(700 + seed, n, &[], net);
        let mut next_crash = 30;
        let mut crashes = 0;
        while sim.now < 300_000 && sim.events < 500_000 {
            if sim.nodes.iter().all(|x| x.consensus.height() > 25) {
                break;
            }
            if sim.now >= next_crash {
                let victim = sim.rand(n as u64) as usize;
                sim.crash_and_recover(victim);
                crashes += 1;
                next_crash = sim.now + 20 + sim.rand(200);
            }
            assert!(sim.step(), "event queue ran dry");
        }
        assert!(crashes > 10, "the test crashed too few nodes: {crashes}");
        assert!(
            sim.nodes.iter().all(|x| x.consensus.height() > 25),
            "seed {seed}: no progress with crashes: {:?}",
            sim.nodes
                .iter()
                .map(|x| x.consensus.height())
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn membership_changes_through_the_ledger() {
    // Nodes 0..4 are genesis validators; node 5 starts as an outsider. It is admitted (PoW),
    // receives stake and becomes a validator that signs commits; node 4 exits.
    let net = NetConfig {
        min_delay_ms: 5,
        max_delay_ms: 40,
        loss_permille: 0,
        lossy_until_ms: 0,
        partition: None,
    };
    let mut sim = Sim::with_members(5, 6, 5, &[], net);
    sim.own_transfers = false;
    let newcomer = MemberId(sim.keys[5].verifying_key().to_bytes());
    let peer_id = seedfed_protocol::ledger::peer_id_bytes(&newcomer);
    let x_secret = StaticSecret::from([5; 32]);
    let x25519 = PublicKey::from(&x_secret).to_bytes();
    let x25519_proof = seedfed_protocol::seal::prove_possession(
        &x_secret,
        &seedfed_protocol::admission::possession_context(CHAIN, &peer_id),
        &mut rand_chacha::ChaCha20Rng::seed_from_u64(5),
    )
    .expect("proof of possession");
    let pow = seedfed_protocol::admission::Puzzle {
        chain_id: CHAIN.into(),
        peer_id: peer_id.clone(),
        x25519,
    }
    .solve(8, 0, 1 << 20, |_| {})
    .expect("pow");
    let admit = Tx {
        author: newcomer,
        nonce: 0,
        body: TxBody::Admit {
            peer_id,
            x25519,
            pow,
            x25519_proof,
        },
    }
    .sign(CHAIN, &sim.keys[5]);
    let stake = Tx {
        author: MemberId(sim.keys[0].verifying_key().to_bytes()),
        nonce: 0,
        body: TxBody::Transfer {
            to: newcomer,
            amount: 900,
        },
    }
    .sign(CHAIN, &sim.keys[0]);
    let leaving = MemberId(sim.keys[4].verifying_key().to_bytes());
    let exit = Tx {
        author: leaving,
        nonce: 0,
        body: TxBody::Exit,
    }
    .sign(CHAIN, &sim.keys[4]);
    // The transfer is offered before the admission: it is left out until the newcomer is
    // a member.
    sim.mempool = vec![stake, admit, exit];
    assert!(sim.run(12, 300_000, 1_000_000), "no progress");
    assert!(sim.mempool.is_empty(), "transactions never included");
    for x in &sim.nodes {
        let st = &x.consensus.ledger().state;
        assert!(st.is_validator(&newcomer));
        assert!(!st.is_validator(&leaving));
        assert_eq!(st.validators().len(), 5);
    }
    // The newcomer votes: some later block records its precommit in the last commit.
    let blocks = &sim.nodes[0].decided;
    assert!(
        blocks
            .values()
            .any(|(b, _)| b.last_commit.signatures.iter().any(|(m, _)| *m == newcomer)),
        "the new validator never signed a commit"
    );
}

#[test]
fn epoch_cycle_through_real_consensus() {
    // Four validators run consensus and their epoch agents: the DKGs complete, the beacon
    // starts epoch 1, and the first checkpoint verifies under the first DKG's Ed25519 key.
    let net = NetConfig {
        min_delay_ms: 5,
        max_delay_ms: 40,
        loss_permille: 0,
        lossy_until_ms: 0,
        partition: None,
    };
    let mut sim = Sim::new(21, 4, &[], net);
    sim.own_transfers = false;
    sim.enable_agents();
    let done = |sim: &Sim| {
        sim.nodes.iter().all(|n| {
            let st = &n.consensus.ledger().state;
            st.epoch >= 1
                && !st.checkpoints.is_empty()
                && st.newest.assignment_epoch == Some(st.epoch)
        })
    };
    while !done(&sim) && sim.events < 2_000_000 && sim.now < 600_000 {
        assert!(sim.step(), "event queue ran dry");
    }
    assert!(done(&sim), "epoch 1 not reached at time {} ms", sim.now);
    let st = &sim.nodes[0].consensus.ledger().state;
    let result0 = &st.dkg_results[&0];
    assert_eq!(result0.qualified.len(), 4);
    let first = &st.checkpoints[0];
    assert_eq!(first.key_epoch, 0);
    seedfed_protocol::light_client::verify_checkpoint(
        &result0.ed25519_group_key,
        &seedfed_protocol::ledger::chain_digest(CHAIN),
        &first.body.checkpoint().to_bytes(),
        &first.signature.0,
    )
    .expect("checkpoint verifies under the genesis group key");
    for n in &sim.nodes {
        let kp = n
            .agent
            .as_ref()
            .and_then(|a| a.checkpoint_key(0))
            .expect("key share");
        assert_eq!(
            kp.verifying_key().serialize().expect("key"),
            result0.ed25519_group_key.to_vec()
        );
    }
}
