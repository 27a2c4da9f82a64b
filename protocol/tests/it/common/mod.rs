//! The in-memory federation the integration tests run: validators with a real `Ledger` and an
//! `agent::Agent` each, a trivial "consensus" that puts every submitted transaction into the
//! next block (built with `Ledger::build_block`, last commit signed by the validators), and
//! point-to-point messages delivered one step later. Every loop is bounded.
#![allow(clippy::unwrap_used, dead_code)] // test code: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::{Signer, SigningKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use x25519_dalek::{PublicKey, StaticSecret};

use seedfed_protocol::agent::{path_txs, reveal_txs, Agent, Duty, EpochError, Fault, Payload};
use seedfed_protocol::dealing::{HeldChunk, HeldIndex, HeldSector};
use seedfed_protocol::ledger::vote_digest;
use seedfed_protocol::ledger::{
    decode, ClientRequest, CommitInfo, EpochParams, Genesis, GenesisClient, GenesisValidator,
    KeyParams, Ledger, LedgerError, LedgerState, Signature64, SignedTx, Tx, TxBody, VoteKind,
};
use seedfed_protocol::member::MemberId;
use seedfed_protocol::sector::Sector;

pub const CHAIN: &str = "epoch-cycle-test";

pub struct Node {
    pub key: SigningKey,
    pub ledger: Ledger,
    pub agent: Option<Agent>,
    /// Held sectors (`encode(HeldSector)`), put together as the node's store does from the
    /// index the agent asked to keep and the chunks it names, by (sector, commitments root).
    pub kept: BTreeMap<(u32, [u8; 32]), Vec<u8>>,
    /// Held chunks the agent asked to keep, by (sector, chunk root).
    pub kept_chunks: BTreeMap<(u32, [u8; 32]), Vec<u8>>,
    /// Sector trees (leaf public keys) the agent asked to keep, by (sector, root).
    pub trees: BTreeMap<(u32, [u8; 32]), Vec<[u8; 32]>>,
}

pub struct Net {
    pub nodes: Vec<Node>,
    pub rng: ChaCha20Rng,
    /// (to, from, payload) delivered next step.
    pub inbox: Vec<(usize, MemberId, Vec<u8>)>,
    /// Node whose agent is rebuilt from its snapshot every step (persistence check).
    pub restore_each_step: Option<usize>,
    pub faults: BTreeMap<usize, Fault>,
    /// Direct messages (from, to) the network loses.
    pub drop_direct: BTreeSet<(usize, usize)>,
    /// Direct messages an agent refused: (to, from, why).
    pub refused: Vec<(usize, MemberId, EpochError)>,
    /// Transactions a test submits on a node's behalf, put in the next block.
    pub submit: Vec<(usize, TxBody)>,
    /// Nodes whose audit paths are withheld (their `ProvePath` duties are dropped).
    pub withhold_paths: BTreeSet<usize>,
    /// Nodes that commit to checkpoint attempts but never send their share.
    pub withhold_checkpoint_shares: BTreeSet<usize>,
    /// If set, every direct message sent, as the agent gave it: (from, to, payload).
    pub sent: Option<Vec<(usize, usize, Payload)>>,
    /// Whether every validator has a replica of every kept sector tree (as a node fetches one
    /// once the sector root is on the ledger: `node::chain::trees`); if not, only the owner
    /// has its trees.
    pub replicate_trees: bool,
}

pub fn seed(i: usize) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&(i as u64 + 11).to_le_bytes());
    s[31] = 0xe9;
    s
}

/// Validator `i`'s X25519 secret. Byte 1 differs per validator: X25519 clamps the low bits of
/// byte 0, where [`seed`] differs for the first validators, so keys made from `seed` alone
/// would all be equal.
pub fn xseed(i: usize) -> [u8; 32] {
    let mut s = seed(i);
    s[1] = 0x80 | i as u8;
    s[30] = 0x55;
    s
}

/// The genesis's authorized signing client.
pub fn client_key() -> SigningKey {
    SigningKey::from_bytes(&[0xc1; 32])
}

/// A `SignRequest` body: the genesis client asks for `digest` (nonce `nonce`, epoch `epoch`).
pub fn request(digest: [u8; 32], epoch: u64, nonce: u64) -> TxBody {
    TxBody::SignRequest {
        request: ClientRequest {
            client: id(&client_key()),
            digest,
            epoch,
            nonce,
            issue_to: None,
        }
        .sign(CHAIN, &client_key()),
    }
}

pub fn id(k: &SigningKey) -> MemberId {
    MemberId(k.verifying_key().to_bytes())
}

impl Net {
    /// `n` genesis validators; those in `absent` run no agent and sign no commits.
    pub fn new(n: usize, absent: &[usize], faults: &[(usize, Fault)], seed_rng: u64) -> Self {
        let key = KeyParams {
            tree_height: 5,
            sector_bits: 1,
            leaf_threshold: 2,
            leaf_holders: 3,
            ack_threshold: 3,
            audit_leaves: 2,
            sector_window: seedfed_protocol::ledger::DEFAULT_SECTOR_WINDOW,
            rotate_percent: 0,
        };
        Self::with_key(n, absent, faults, seed_rng, key)
    }

    /// As [`Net::new`], generating the key `key`.
    pub fn with_key(
        n: usize,
        absent: &[usize],
        faults: &[(usize, Fault)],
        seed_rng: u64,
        key: KeyParams,
    ) -> Self {
        let keys: Vec<SigningKey> = (0..n).map(|i| SigningKey::from_bytes(&seed(i))).collect();
        let genesis = Genesis {
            chain_id: CHAIN.into(),
            pow_difficulty: 0,
            validators: (0..n)
                .map(|i| GenesisValidator {
                    id: id(&keys[i]),
                    stake: 100,
                    x25519: PublicKey::from(&StaticSecret::from(xseed(i))).to_bytes(),
                })
                .collect(),
            key,
            eviction_missed_heights: 1_000_000,
            epochs: EpochParams::default(),
            clients: vec![GenesisClient {
                key: id(&client_key()),
                quota: 1_000_000,
            }],
        };
        let faults: BTreeMap<usize, Fault> = faults.iter().copied().collect();
        let nodes = keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| Node {
                key,
                ledger: Ledger::from_genesis(&genesis).unwrap(),
                kept: BTreeMap::new(),
                kept_chunks: BTreeMap::new(),
                trees: BTreeMap::new(),
                agent: (!absent.contains(&i)).then(|| {
                    Agent::new(
                        seed(i),
                        xseed(i),
                        faults.get(&i).copied().unwrap_or_default(),
                    )
                }),
            })
            .collect();
        Net {
            nodes,
            rng: ChaCha20Rng::seed_from_u64(seed_rng),
            inbox: Vec::new(),
            restore_each_step: None,
            faults,
            drop_direct: BTreeSet::new(),
            refused: Vec::new(),
            submit: Vec::new(),
            withhold_paths: BTreeSet::new(),
            withhold_checkpoint_shares: BTreeSet::new(),
            sent: None,
            replicate_trees: true,
        }
    }

    pub fn st(&self) -> &LedgerState {
        &self.nodes[0].ledger.state
    }

    pub fn index_of(&self, m: &MemberId) -> usize {
        self.nodes.iter().position(|n| id(&n.key) == *m).unwrap()
    }

    /// One step: deliver last step's messages, collect duties, build and apply one block.
    pub fn step(&mut self) {
        let mut submits: Vec<(usize, TxBody)> = std::mem::take(&mut self.submit);
        for (to, from, payload) in std::mem::take(&mut self.inbox) {
            let node = &mut self.nodes[to];
            if let Some(agent) = node.agent.as_mut() {
                match agent.on_direct(&node.ledger, from, &payload, &mut self.rng) {
                    Ok(duties) => self.route(to, duties, &mut submits),
                    Err(e) => self.refused.push((to, from, e)),
                }
            }
        }
        for i in 0..self.nodes.len() {
            if self.restore_each_step == Some(i) {
                if let Some(a) = self.nodes[i].agent.take() {
                    let snap = a.snapshot();
                    let fault = self.faults.get(&i).copied().unwrap_or_default();
                    self.nodes[i].agent =
                        Some(Agent::restore(&snap, seed(i), xseed(i), fault).unwrap());
                }
            }
            let node = &mut self.nodes[i];
            let Some(agent) = node.agent.as_mut() else {
                continue;
            };
            let duties = agent.on_block(&node.ledger, &mut self.rng);
            // Idempotent for the same ledger: a second call gives the same duties.
            assert_eq!(agent.on_block(&node.ledger, &mut self.rng), duties);
            self.route(i, duties, &mut submits);
        }
        // The mempool: de-duplicate per author, sign with consecutive nonces, keep what applies.
        let mut shadow = self.nodes[0].ledger.state.clone();
        shadow.height += 1;
        shadow.begin_block();
        let mut seen = BTreeSet::new();
        let mut txs: Vec<SignedTx> = Vec::new();
        for (i, body) in submits {
            let author = id(&self.nodes[i].key);
            if !seen.insert((author, format!("{body:?}"))) {
                continue;
            }
            let nonce = shadow.members.get(&author).map_or(0, |m| m.nonce);
            let tx = Tx {
                author,
                nonce,
                body,
            }
            .sign(CHAIN, &self.nodes[i].key);
            if shadow.apply_tx(&tx).is_ok() {
                txs.push(tx);
            }
        }
        let commit = self.commit();
        let proposer = id(&self.nodes[self.first_present()].key);
        let (block, rejected) = self.nodes[0]
            .ledger
            .build_block(proposer, commit, txs)
            .unwrap();
        assert!(rejected.is_empty(), "{rejected:?}");
        for node in &mut self.nodes {
            node.ledger.apply_block(&block).unwrap();
        }
    }

    /// Acts on node `i`'s duties: submissions for the next block, sends for the next step,
    /// records kept in its store.
    fn route(&mut self, i: usize, duties: Vec<Duty>, submits: &mut Vec<(usize, TxBody)>) {
        let me = id(&self.nodes[i].key);
        for d in duties {
            match d {
                Duty::Submit(TxBody::CheckpointShare { .. })
                    if self.withhold_checkpoint_shares.contains(&i) => {}
                Duty::Submit(b) => submits.push((i, b)),
                Duty::Send { to, payload } => {
                    let j = self.index_of(&to);
                    if let Some(sent) = self.sent.as_mut() {
                        sent.push((i, j, payload.clone()));
                    }
                    if !self.drop_direct.contains(&(i, j)) {
                        self.inbox.push((j, me, payload.to_vec()));
                    }
                }
                Duty::KeepChunk {
                    sector,
                    chunk_root,
                    record,
                } => {
                    self.nodes[i]
                        .kept_chunks
                        .insert((sector, chunk_root), record.0.to_vec());
                }
                Duty::Keep {
                    sector,
                    commitments_root,
                    index,
                } => {
                    // Every chunk the index names was kept before it (a `KeepChunk` of this or
                    // an earlier call), or this fails.
                    let node = &mut self.nodes[i];
                    let index: HeldIndex = decode(&index).unwrap();
                    let chunks = index.chunk_roots.iter().map(|r| {
                        let chunk = node.kept_chunks.get(&(sector, *r));
                        decode::<HeldChunk>(chunk.expect("a chunk kept before its index")).unwrap()
                    });
                    let held = HeldSector::assemble(&index, chunks).unwrap();
                    node.kept.insert(
                        (sector, commitments_root),
                        seedfed_protocol::ledger::encode_secret(&held).to_vec(),
                    );
                }
                Duty::KeepTree { sector, root, keys } => {
                    self.nodes[i].trees.insert((sector, root), keys);
                }
                Duty::Reveal {
                    sector,
                    commitments_root,
                    leaves,
                } => {
                    let node = &self.nodes[i];
                    let held: HeldSector = decode(&node.kept[&(sector, commitments_root)]).unwrap();
                    submits.extend(
                        reveal_txs(&held, &leaves)
                            .unwrap()
                            .into_iter()
                            .map(|b| (i, b)),
                    );
                }
                Duty::Contribute {
                    sector,
                    commitments_root,
                    leaf,
                } => {
                    let node = &mut self.nodes[i];
                    let held: HeldSector = decode(&node.kept[&(sector, commitments_root)]).unwrap();
                    let agent = node.agent.as_mut().unwrap();
                    let tree = seedfed_protocol::dealing::CommitmentTree::new(
                        held.first_leaf,
                        &held.commitments,
                    )
                    .unwrap();
                    let send = agent
                        .contribution(&node.ledger.state, &held, &tree, leaf, &mut self.rng)
                        .unwrap();
                    self.route(i, vec![send], submits);
                }
                Duty::SendPath {
                    key,
                    sector,
                    root,
                    leaf,
                    to,
                } => {
                    let Some(tree) = self.tree_copy(i, key, sector, root) else {
                        continue; // no replica: the node sends nothing
                    };
                    let node = &self.nodes[i];
                    let payload = node
                        .agent
                        .as_ref()
                        .unwrap()
                        .leaf_path_msg(&node.ledger.state, &tree, leaf)
                        .unwrap()
                        .into();
                    self.route(i, vec![Duty::Send { to, payload }], submits);
                }
                Duty::ProvePath { .. } if self.withhold_paths.contains(&i) => {}
                Duty::ProvePath {
                    sector,
                    root,
                    leaves,
                } => {
                    let key = self.nodes[i].ledger.state.newest.index;
                    let tree = self.kept_tree(i, key, sector, root);
                    submits.extend(
                        path_txs(&tree, &leaves)
                            .unwrap()
                            .into_iter()
                            .map(|b| (i, b)),
                    );
                }
            }
        }
    }

    /// `body` by validator `i` applied at block height `height` to a copy of `st`.
    pub fn try_tx(
        &self,
        st: &LedgerState,
        i: usize,
        height: u64,
        body: TxBody,
    ) -> Result<LedgerState, LedgerError> {
        let mut st = st.clone();
        st.height = height;
        let author = id(&self.nodes[i].key);
        let nonce = st.members[&author].nonce;
        st.apply_tx(
            &Tx {
                author,
                nonce,
                body,
            }
            .sign(CHAIN, &self.nodes[i].key),
        )?;
        Ok(st)
    }

    /// Node `i`'s copy of the sector tree under (sector, root): the one it kept, or with
    /// [`Net::replicate_trees`], a replica of the owner's.
    fn tree_copy(&self, i: usize, key: u32, sector: u32, root: [u8; 32]) -> Option<Sector> {
        let own = self.nodes[i].trees.get(&(sector, root));
        let keys = own.or_else(|| {
            self.replicate_trees
                .then(|| self.nodes.iter().find_map(|n| n.trees.get(&(sector, root))))
                .flatten()
        })?;
        let layout = self.nodes[i].ledger.state.key_layout(key).unwrap();
        Some(Sector::from_leaf_keys(layout, sector, keys.clone()).unwrap())
    }

    /// The sector tree node `i` kept under (sector, root).
    fn kept_tree(&self, i: usize, key: u32, sector: u32, root: [u8; 32]) -> Sector {
        let node = &self.nodes[i];
        let layout = node.ledger.state.key_layout(key).unwrap();
        Sector::from_leaf_keys(layout, sector, node.trees[&(sector, root)].clone()).unwrap()
    }

    pub fn first_present(&self) -> usize {
        self.nodes.iter().position(|n| n.agent.is_some()).unwrap()
    }

    pub fn commit(&self) -> CommitInfo {
        let st = self.st();
        if st.height == 0 {
            return CommitInfo::default();
        }
        let mut signatures: Vec<(MemberId, Signature64)> = self
            .nodes
            .iter()
            .filter(|n| n.agent.is_some() && st.last_validators.contains_key(&id(&n.key)))
            .map(|n| {
                let d = vote_digest(
                    CHAIN,
                    st.height,
                    0,
                    VoteKind::Precommit,
                    Some(&self.nodes[0].ledger.tip),
                    &id(&n.key),
                );
                (id(&n.key), Signature64(n.key.sign(&d).to_bytes()))
            })
            .collect();
        signatures.sort_by_key(|a| a.0);
        CommitInfo {
            round: 0,
            signatures,
        }
    }

    /// Steps until `done` holds, at most `max` steps.
    pub fn run_until(&mut self, max: usize, mut done: impl FnMut(&Net) -> bool) {
        for _ in 0..max {
            if done(self) {
                return;
            }
            self.step();
        }
        assert!(
            done(self),
            "not reached within {max} steps at height {}",
            self.st().height
        );
    }
}
