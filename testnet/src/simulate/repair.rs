//! Repair: a holder is lost, and every unused leaf it held gets a replacement holder (the next
//! one by rendezvous hashing without it) whose share is rebuilt from k surviving holders in
//! batched sessions (one per replacement and helper set).
//!
//! Guarantees: the replacement checks every repaired share against the leaf's commitment;
//! rendezvous hashing moves exactly one holder per affected leaf.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, ensure, Result};

use seedfed_protocol::assignment;
use seedfed_protocol::hash::hash32;
use seedfed_protocol::member::MemberId;
use seedfed_protocol::reconstruct::{self, Participant};
use seedfed_protocol::repair::{self, RepairSession};
use seedfed_protocol::shamir::{Commitment, Share};

use super::federation::{find, Node, Public, Sim};
use super::{CHAIN_ID, SESSION};

impl Sim {
    /// A holder fails; every unused leaf it held gets a new holder (the next one by rendezvous
    /// hashing without it) whose share is repaired from k other holders, in batched sessions.
    /// Returns the lost member and, per repaired leaf, its new holder.
    pub(super) fn fail_and_repair(
        &mut self,
        public: &mut Public,
    ) -> Result<(MemberId, BTreeMap<u32, MemberId>)> {
        // Lose the holder of the next leaf that is not the signer (so the next signature
        // depends on the repair), falling back to the first node.
        let next = public.next_leaf;
        let signer = self
            .nodes
            .iter()
            .max_by_key(|n| (n.stake, n.id))
            .map(|n| n.id);
        let lost = public
            .holders
            .get(&next)
            .and_then(|hs| hs.iter().find(|h| Some(**h) != signer).copied())
            .unwrap_or(self.nodes[0].id);
        self.node_mut(&lost)?.alive = false;
        self.node_mut(&lost)?.shares.clear();
        let weighted = self.weighted();
        let k = self.args.threshold;

        // Group the lost holder's unused leaves by (replacement, helper set).
        let mut groups: BTreeMap<(MemberId, Vec<MemberId>), Vec<u32>> = BTreeMap::new();
        let mut new_holders = BTreeMap::new();
        for (q, hs) in public.holders.range(next..) {
            if !hs.contains(&lost) {
                continue;
            }
            let fresh = assignment::leaf_holders(
                &public.beacon,
                u64::from(*q),
                &weighted,
                self.args.holders,
            )?;
            let added: Vec<MemberId> = fresh.iter().filter(|m| !hs.contains(m)).copied().collect();
            ensure!(
                added.len() == 1,
                "rendezvous hashing moved {} holders of leaf {q}, expected 1",
                added.len()
            );
            let survivors: Vec<MemberId> = hs.iter().filter(|m| **m != lost).copied().collect();
            let helpers = reconstruct::next_quorum(&survivors, &BTreeSet::new(), k)?;
            groups.entry((added[0], helpers)).or_default().push(*q);
            new_holders.insert(*q, fresh);
        }
        let total: usize = groups.values().map(Vec::len).sum();
        self.say(format!(
            "node {lost:?} lost with {total} unused leaf shares; repairing in {} batched sessions",
            groups.len()
        ));

        let mut replaced = BTreeMap::new();
        for (n, ((target, helpers), leaves)) in groups.into_iter().enumerate() {
            let session_id = hash32(
                SESSION,
                &[],
                &[0; 16],
                &[CHAIN_ID.as_bytes(), b"repair", &(n as u64).to_le_bytes()],
            );
            let helper_parts: Vec<Participant> = helpers
                .iter()
                .map(|m| self.node(m).map(Node::participant))
                .collect::<Result<_>>()?;
            let target_part = self.node(&target)?.participant();
            let session = RepairSession::new(
                session_id,
                0,
                lost,
                target_part,
                helper_parts,
                leaves.iter().map(|q| u64::from(*q)).collect(),
            )?;
            // Step 1: every helper splits its weighted shares among the helpers.
            let mut inbox: BTreeMap<MemberId, Vec<repair::DeltaMessage>> = BTreeMap::new();
            for h in session.helper_ids() {
                let node = find(&self.nodes, &h)?;
                let shares: Vec<Share> = leaves
                    .iter()
                    .map(|q| {
                        node.shares
                            .get(q)
                            .cloned()
                            .ok_or_else(|| anyhow!("{h:?} lacks leaf {q}"))
                    })
                    .collect::<Result<_>>()?;
                // Grouped by helper set: every helper holds every leaf of the group.
                for msg in repair::helper_deltas(
                    &session,
                    &helpers,
                    k,
                    &h,
                    &node.x25519,
                    &shares,
                    &mut self.rng,
                )? {
                    inbox.entry(msg.to).or_default().push(msg);
                }
            }
            // Step 2: every helper sums what it received and sends it to the target.
            let mut sigmas = Vec::with_capacity(helpers.len());
            for h in session.helper_ids() {
                let node = find(&self.nodes, &h)?;
                let deltas = inbox.remove(&h).unwrap_or_default();
                sigmas.push(repair::helper_sigma(
                    &session,
                    &h,
                    &node.x25519,
                    &deltas,
                    &mut self.rng,
                )?);
            }
            // Step 3: the target sums and checks every new share against the commitments.
            let commitments: Vec<Commitment> = leaves
                .iter()
                .map(|q| {
                    public
                        .commitments
                        .get(q)
                        .cloned()
                        .ok_or_else(|| anyhow!("no commitment for leaf {q}"))
                })
                .collect::<Result<_>>()?;
            let target_key = self.node(&target)?.x25519.clone();
            let repaired = repair::target_finish(
                &session,
                &target_key,
                &sigmas,
                &commitments,
                k,
                &mut self.rng,
            )?;
            let node = self.node_mut(&target)?;
            for (q, share) in leaves.iter().zip(repaired) {
                node.shares.insert(*q, share);
                replaced.insert(*q, target);
            }
        }
        for (q, hs) in new_holders {
            public.holders.insert(q, hs);
        }
        self.say(format!("repaired {} shares onto replacement holders; every one verified against its commitment", replaced.len()));
        Ok((lost, replaced))
    }
}
