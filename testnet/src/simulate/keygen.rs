//! Key generation: the epoch beacon (checked from two threshold subsets), the stake-weighted
//! branch assignment, each owner's branch seeds and sector, the dealing of every leaf seed to
//! its holders and its erasure, and the master root (the system public key).
//!
//! Guarantees: every sector checks against the master tree before the key is published.

use std::collections::BTreeMap;

use anyhow::{anyhow, ensure, Result};

use seedfed_protocol::assignment;
use seedfed_protocol::dkg;
use seedfed_protocol::hash::hash32;
use seedfed_protocol::lmots::{self, LmotsType};
use seedfed_protocol::lms::LmsType;
use seedfed_protocol::master::Master;
use seedfed_protocol::member::MemberId;
use seedfed_protocol::sector::{Sector, TreeLayout};
use seedfed_protocol::seed_tree::{branch_prf_input, Branch, BranchSeed};
use seedfed_protocol::shamir::{self, LeafSecret};

use super::federation::{Public, Sim};
use super::{CHAIN_ID, KEY_ID};

impl Sim {
    /// Beacon, assignment, sectors, dealing, master tree.
    pub(super) fn keygen(&mut self) -> Result<Public> {
        let beacon_input = [CHAIN_ID.as_bytes(), b"/beacon/epoch/0"].concat();
        let beacon = self.tprf(&beacon_input, 0)?;
        // Any t partials give the same beacon: check with a different subset.
        let again = self.tprf(
            &beacon_input,
            self.nodes.len() - usize::from(dkg::default_threshold(self.nodes.len())),
        )?;
        ensure!(
            again == beacon,
            "two threshold subsets disagree on the beacon"
        );
        self.say(format!(
            "epoch 0 beacon {} (same from two different t-subsets)",
            hex::encode(&beacon[..8])
        ));

        let group_key = self
            .root_public
            .verifying_key()
            .serialize()
            .map_err(|e| anyhow!("serialising the group key: {e}"))?;
        let mut id = [0u8; 16];
        id.copy_from_slice(
            &hash32(
                KEY_ID,
                &[],
                &[0; 16],
                &[CHAIN_ID.as_bytes(), &0u64.to_le_bytes(), &group_key],
            )[..16],
        );
        let lms_type = LmsType::from_height(self.args.height)
            .ok_or_else(|| anyhow!("unsupported height {}", self.args.height))?;
        let layout = TreeLayout::new(lms_type, LmotsType::W4, id, self.args.sector_levels)?;
        let weighted = self.weighted();
        let owners = assignment::branch_owners(&beacon, layout.sectors(), &weighted)?;
        let mut per_owner: BTreeMap<MemberId, usize> = BTreeMap::new();
        for o in &owners {
            *per_owner.entry(*o).or_default() += 1;
        }
        self.say(format!(
            "branch assignment: {} sectors of {} leaves over {} owners (stake-weighted rendezvous hashing)",
            layout.sectors(),
            layout.leaves_per_sector(),
            per_owner.len()
        ));

        let mut sectors = Vec::with_capacity(owners.len());
        let mut holders = BTreeMap::new();
        let mut commitments = BTreeMap::new();
        let k = self.args.threshold;
        let depth = self.args.height - self.args.sector_levels;
        for (b, owner) in owners.iter().enumerate() {
            let b = b as u32;
            // The owner learns its branch seed from t partials (sealed to it on a real network).
            let seed = BranchSeed::from_bytes(self.tprf(&branch_prf_input(&id, b, owner), 0)?);
            let branch = Branch::new(seed, b, depth)?;
            let seeds = branch.leaf_seeds(0, branch.size())?;
            let lms_seeds: Vec<lmots::LeafSeed> = seeds.iter().map(LeafSecret::lms_seed).collect();
            let sector = Sector::generate_from_seeds(layout, b, self.args.threads, &lms_seeds)?;
            drop(lms_seeds);

            let leaves = layout.sector_leaves(b)?;
            let mut leaf_holders = Vec::with_capacity(seeds.len());
            for q in leaves.clone() {
                leaf_holders.push(assignment::leaf_holders(
                    &beacon,
                    u64::from(q),
                    &weighted,
                    self.args.holders,
                )?);
            }
            let dealings = shamir::deal_batch(
                seeds.iter().zip(leaf_holders.iter().map(Vec::as_slice)),
                k,
                &mut self.rng,
            )?;
            // The owner erases every seed of its branch once dealt (zeroized on drop).
            drop(seeds);
            drop(branch);
            self.deliver_dealings(owner, leaves.clone(), &leaf_holders, &dealings)?;
            for ((q, hs), d) in leaves.zip(leaf_holders).zip(dealings) {
                holders.insert(q, hs);
                commitments.insert(q, d.commitment);
            }
            sectors.push(sector);
            if (b + 1).is_multiple_of(4) || b + 1 == layout.sectors() {
                self.say(format!(
                    "sectors generated, dealt {k}-of-{} and erased: {}/{}",
                    self.args.holders,
                    b + 1,
                    layout.sectors()
                ));
            }
        }
        let roots: Vec<_> = sectors.iter().map(Sector::root).collect();
        let master = Master::from_sector_roots(layout, &roots)?;
        for s in &sectors {
            master.check_sector(s)?;
        }
        self.say(format!(
            "master root {} (the system public key)",
            hex::encode(master.root())
        ));
        Ok(Public {
            layout,
            beacon,
            sectors,
            master,
            holders,
            commitments,
            next_leaf: 0,
        })
    }
}
