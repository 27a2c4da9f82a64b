//! The simulated federation's state: each node's keys and held shares, and the public state
//! every node agrees on (what the ledger will hold), with the one leaf counter that stands in
//! for consensus.
//!
//! Guarantees: a leaf is allocated at most once ([`Public::allocate`]); looking up an unknown
//! member is an error, never a panic.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{anyhow, ensure, Result};
use frost_ristretto255::keys::{KeyPackage, PublicKeyPackage};
use rand_chacha::ChaCha20Rng;
use x25519_dalek::StaticSecret;

use seedfed_protocol::assignment::Weighted;
use seedfed_protocol::master::Master;
use seedfed_protocol::member::MemberId;
use seedfed_protocol::reconstruct::Participant;
use seedfed_protocol::sector::{Sector, TreeLayout};
use seedfed_protocol::shamir::{Commitment, Share};

use super::SimArgs;

/// One simulated node's state.
pub(super) struct Node {
    pub(super) id: MemberId,
    pub(super) stake: u64,
    pub(super) x25519: StaticSecret,
    pub(super) x25519_pub: [u8; 32],
    /// Ed25519 identity key (signs reconstruction contributions).
    pub(super) identity: ed25519_dalek::SigningKey,
    pub(super) root_key: KeyPackage,
    /// Leaf shares this node holds, by leaf.
    pub(super) shares: BTreeMap<u32, Share>,
    pub(super) alive: bool,
}

impl Node {
    /// This node's keys as a leaf holder.
    pub(super) fn holder_keys(&self) -> seedfed_protocol::reconstruct::HolderKeys<'_> {
        seedfed_protocol::reconstruct::HolderKeys::new(self.id, &self.x25519, &self.identity)
    }

    pub(super) fn participant(&self) -> Participant {
        Participant {
            member: self.id,
            x25519: self.x25519_pub,
        }
    }
}

/// Public state every node agrees on (what the ledger will hold).
pub(super) struct Public {
    pub(super) layout: TreeLayout,
    pub(super) beacon: [u8; 32],
    pub(super) sectors: Vec<Sector>,
    pub(super) master: Master,
    pub(super) holders: BTreeMap<u32, Vec<MemberId>>,
    pub(super) commitments: BTreeMap<u32, Commitment>,
    /// Next unallocated leaf (stand-in for the ledger's monotone counter).
    pub(super) next_leaf: u32,
}

impl Public {
    /// Allocates the next leaf; a leaf is never handed out twice.
    pub(super) fn allocate(&mut self) -> Result<u32> {
        let q = self.next_leaf;
        ensure!(
            u64::from(q) < self.layout.lms_type.leaves(),
            "the key is exhausted: all {} leaves are used",
            self.layout.lms_type.leaves()
        );
        self.next_leaf += 1;
        Ok(q)
    }
}

/// The whole simulated federation: its nodes, the root key's public package and the run's one
/// seeded RNG (every random byte of a run comes from it).
pub(super) struct Sim {
    pub(super) args: SimArgs,
    pub(super) rng: ChaCha20Rng,
    pub(super) nodes: Vec<Node>,
    pub(super) root_public: PublicKeyPackage,
    pub(super) started: Instant,
}

impl Sim {
    pub(super) fn say(&self, line: String) {
        if !self.args.quiet {
            println!("[{:6.2}s] {line}", self.started.elapsed().as_secs_f64());
        }
    }

    pub(super) fn weighted(&self) -> Vec<Weighted> {
        self.nodes
            .iter()
            .filter(|n| n.alive)
            .map(|n| Weighted {
                member: n.id,
                stake: n.stake,
            })
            .collect()
    }

    pub(super) fn node(&self, id: &MemberId) -> Result<&Node> {
        find(&self.nodes, id)
    }

    pub(super) fn node_mut(&mut self, id: &MemberId) -> Result<&mut Node> {
        self.nodes
            .iter_mut()
            .find(|n| n.id == *id)
            .ok_or_else(|| anyhow!("unknown member {id:?}"))
    }
}

pub(super) fn find<'a>(nodes: &'a [Node], id: &MemberId) -> Result<&'a Node> {
    nodes
        .iter()
        .find(|n| n.id == *id)
        .ok_or_else(|| anyhow!("unknown member {id:?}"))
}
