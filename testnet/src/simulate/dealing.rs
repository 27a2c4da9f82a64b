//! Dealing: an owner's Shamir shares of one sector's leaf seeds travel to their holders, one
//! sealed box per holder (X25519, as on a real network), and each holder stores them.
//!
//! Guarantees: a holder stores shares only after it opened its box and checked every share
//! against the public commitments (one batch check); the plaintext box is zeroized once sealed.

use std::collections::BTreeMap;

use anyhow::{ensure, Context, Result};
use x25519_dalek::PublicKey;

use seedfed_protocol::member::MemberId;
use seedfed_protocol::seal;
use seedfed_protocol::shamir::{self, Commitment, Share};

use super::federation::Sim;
use super::DEAL_AD;

impl Sim {
    /// The owner seals each holder's shares of this sector in one box; each holder opens its
    /// box, checks every share against the public commitments in one batch, and stores them.
    pub(super) fn deliver_dealings(
        &mut self,
        owner: &MemberId,
        leaves: std::ops::Range<u32>,
        leaf_holders: &[Vec<MemberId>],
        dealings: &[shamir::Dealing],
    ) -> Result<()> {
        let base = leaves.start;
        let mut per_holder: BTreeMap<MemberId, (Vec<u32>, Vec<u8>)> = BTreeMap::new();
        for ((q, hs), d) in leaves.zip(leaf_holders).zip(dealings) {
            for (h, share) in hs.iter().zip(&d.shares) {
                let entry = per_holder.entry(*h).or_default();
                entry.0.push(q);
                entry.1.extend_from_slice(&*share.value_bytes());
            }
        }
        let owner_key = self.node(owner)?.x25519.clone();
        let owner_pub = PublicKey::from(&owner_key);
        for (holder, (qs, mut plain)) in per_holder {
            let to = PublicKey::from(self.node(&holder)?.x25519_pub);
            let sealed = seal::seal(&owner_key, &to, DEAL_AD, &plain, &mut self.rng)?;
            zeroize::Zeroize::zeroize(&mut plain);
            let node = self.node(&holder)?;
            let opened = seal::open(&node.x25519, &owner_pub, DEAL_AD, &sealed)?;
            ensure!(
                opened.len() == 32 * qs.len(),
                "dealing box for {holder:?} has the wrong length"
            );
            let mut shares = Vec::with_capacity(qs.len());
            for chunk in opened.chunks_exact(32) {
                let mut b = [0u8; 32];
                b.copy_from_slice(chunk);
                shares.push(Share::new(holder, &b)?);
                zeroize::Zeroize::zeroize(&mut b);
            }
            let items: Vec<(&Share, &Commitment)> = shares
                .iter()
                .zip(&qs)
                .map(|(s, q)| (s, &dealings[(q - base) as usize].commitment))
                .collect();
            shamir::verify_batch(&items, self.args.threshold, &mut self.rng)
                .with_context(|| format!("holder {holder:?} rejected shares from {owner:?}"))?;
            let node = self.node_mut(&holder)?;
            for (q, s) in qs.into_iter().zip(shares) {
                node.shares.insert(q, s);
            }
        }
        Ok(())
    }
}
