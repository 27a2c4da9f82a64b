//! Signing: one message signed with the next unused leaf, whose seed is rebuilt by masked MPC
//! reconstruction from k holders at the signing node.
//!
//! Guarantees: a wrong contribution is attributed to its sender and the quorum retried without
//! it; the rebuilt seed is checked against the public leaf before it signs; every holder erases
//! its share of a used leaf, so no leaf signs twice.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, ensure, Result};

use seedfed_protocol::hash::hash32;
use seedfed_protocol::member::MemberId;
use seedfed_protocol::reconstruct::{self, Participant, ReconstructError, Session};
use seedfed_protocol::shamir::{LeafSecret, Share};

use super::federation::{find, Node, Public, Sim};
use super::{CHAIN_ID, SESSION};

impl Sim {
    /// Signs `message` with the next leaf by masked MPC reconstruction at the signing node.
    /// With `byzantine`, one quorum member sends a contribution built from a wrong share; it
    /// must be caught and the quorum retried without it. With `must_use`, the quorum includes
    /// the holder that received the repaired share of the leaf (if that leaf had one).
    pub(super) fn sign(
        &mut self,
        public: &mut Public,
        message: &[u8],
        byzantine: bool,
        must_use: Option<&BTreeMap<u32, MemberId>>,
    ) -> Result<(u32, Vec<u8>, Option<MemberId>)> {
        let q = public.allocate()?;
        let holders: Vec<MemberId> = public
            .holders
            .get(&q)
            .cloned()
            .ok_or_else(|| anyhow!("leaf {q} has no holders"))?;
        let commitment = public
            .commitments
            .get(&q)
            .cloned()
            .ok_or_else(|| anyhow!("leaf {q} has no commitment"))?;
        // The signing service: the live node with the most stake.
        let signer = self
            .nodes
            .iter()
            .filter(|n| n.alive)
            .max_by_key(|n| (n.stake, n.id))
            .map(Node::participant)
            .ok_or_else(|| anyhow!("no live node"))?;
        let session_id = hash32(
            SESSION,
            &[],
            &[0; 16],
            &[CHAIN_ID.as_bytes(), &q.to_le_bytes(), message],
        );
        let k = self.args.threshold;
        let mut excluded: BTreeSet<MemberId> = self
            .nodes
            .iter()
            .filter(|n| !n.alive)
            .map(|n| n.id)
            .collect();
        let mut caught = None;
        let mut cheat = byzantine;
        let secret = loop {
            let mut quorum_ids = reconstruct::next_quorum(&holders, &excluded, k)?;
            if let Some(repaired_by) = must_use.and_then(|m| m.get(&q)) {
                if !quorum_ids.contains(repaired_by) {
                    quorum_ids.pop();
                    quorum_ids.push(*repaired_by);
                }
            }
            let quorum: Vec<Participant> = quorum_ids
                .iter()
                .map(|m| self.node(m).map(Node::participant))
                .collect::<Result<_>>()?;
            let session = Session::new(session_id, 0, u64::from(q), signer, quorum)?;
            let cheater = if cheat {
                quorum_ids.last().copied()
            } else {
                None
            };
            let mut opened = Vec::with_capacity(k);
            for m in &quorum_ids {
                let node = find(&self.nodes, m)?;
                let share = node
                    .shares
                    .get(&q)
                    .ok_or_else(|| anyhow!("{m:?} holds no share of leaf {q}"))?;
                let wrong;
                let share = if Some(*m) == cheater {
                    wrong = Share::new(*m, &LeafSecret::random(&mut self.rng).to_bytes())?;
                    &wrong
                } else {
                    share
                };
                let contribution = reconstruct::contribute(
                    &session,
                    &holders,
                    k,
                    node.holder_keys(),
                    share,
                    &mut self.rng,
                )?;
                let recipient = find(&self.nodes, &signer.member)?;
                opened.push(reconstruct::open_contribution(
                    &session,
                    &recipient.x25519,
                    &contribution,
                )?);
            }
            match reconstruct::combine(&session, &commitment, &opened) {
                Ok(secret) => break secret,
                Err(ReconstructError::Faulty(report)) => {
                    let blamed = report.excluded();
                    self.say(format!(
                        "leaf {q}: wrong contribution attributed to {:?}; retrying without it",
                        blamed
                    ));
                    ensure!(
                        cheater.is_some_and(|c| report.culprits == vec![c]),
                        "fault attributed to the wrong member: {report:?}"
                    );
                    caught = cheater;
                    excluded.extend(blamed);
                    cheat = false;
                }
                Err(e) => return Err(e.into()),
            }
        };
        // The signer regenerates the one-time key and checks it against the public tree.
        let seed = secret.lms_seed();
        let branch = public
            .layout
            .sector_of(q)
            .ok_or_else(|| anyhow!("leaf {q} outside the tree"))?;
        let sector = &public.sectors[branch as usize];
        ensure!(
            sector.check_leaf_seed(q, &seed)?,
            "reconstructed seed of leaf {q} does not match its public leaf"
        );
        let signature = public.master.sign(sector, q, &seed, message)?;
        drop(seed);
        drop(secret);
        public.master.public_key().verify(message, &signature)?;
        // Holders erase their shares of a used leaf: it can never be used again.
        for node in &mut self.nodes {
            node.shares.remove(&q);
        }
        self.say(format!(
            "signed message with leaf {q} by MPC reconstruction at {:?}; verified",
            signer.member
        ));
        Ok((q, signature.encode_hss(), caught))
    }
}
