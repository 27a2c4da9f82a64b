//! The root key: the simulation's identities and stakes, the root-key DKG among them (every
//! node contributes entropy), and threshold-PRF evaluations with the resulting key shares.
//!
//! Guarantees: every identity and key share comes from the run's one seeded ChaCha20 stream;
//! a threshold-PRF output is combined only from DLEQ-proved partials of live nodes.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use x25519_dalek::{PublicKey, StaticSecret};

use seedfed_protocol::member::MemberId;
use seedfed_protocol::{dkg, tprf};

use super::federation::{Node, Sim};
use super::SimArgs;

impl Sim {
    /// Identities, stakes and the root-key DKG.
    pub(super) fn setup(args: SimArgs) -> Result<Self> {
        let started = Instant::now();
        let mut rng = ChaCha20Rng::seed_from_u64(args.seed);
        let mut idents = Vec::with_capacity(args.nodes);
        for i in 0..args.nodes {
            let signing = ed25519_dalek::SigningKey::generate(&mut rng);
            let x25519 = StaticSecret::random_from_rng(&mut rng);
            let x25519_pub = PublicKey::from(&x25519).to_bytes();
            // Unequal stakes, so the weighting is exercised: 100, 110, 120, ...
            let stake = 100 + 10 * i as u64;
            idents.push((
                MemberId(signing.verifying_key().to_bytes()),
                stake,
                x25519,
                x25519_pub,
                signing,
            ));
        }
        let ids: Vec<MemberId> = idents.iter().map(|i| i.0).collect();
        let t = dkg::default_threshold(args.nodes);
        let (mut keys, root_public) =
            dkg::run_in_memory(&ids, t, &mut rng).context("root-key DKG failed")?;
        let mut nodes = Vec::with_capacity(args.nodes);
        for (id, stake, x25519, x25519_pub, identity) in idents {
            let root_key = keys
                .remove(&id)
                .ok_or_else(|| anyhow!("DKG produced no key for {id:?}"))?;
            nodes.push(Node {
                id,
                stake,
                x25519,
                x25519_pub,
                identity,
                root_key,
                shares: BTreeMap::new(),
                alive: true,
            });
        }
        let sim = Sim {
            args,
            rng,
            nodes,
            root_public,
            started,
        };
        sim.say(format!(
            "{} nodes, DKG done: every node contributed entropy; root key {}-of-{}",
            sim.nodes.len(),
            t,
            sim.nodes.len()
        ));
        Ok(sim)
    }

    /// Threshold-PRF evaluation: every live node computes a DLEQ-proved partial; `skip` leaves
    /// out the first nodes so different runs of this use different subsets.
    pub(super) fn tprf(&mut self, input: &[u8], skip: usize) -> Result<[u8; 32]> {
        let t = usize::from(dkg::default_threshold(self.nodes.len()));
        let mut partials = Vec::with_capacity(t);
        for node in self.nodes.iter().filter(|n| n.alive).skip(skip).take(t) {
            partials.push(tprf::partial(
                &node.root_key,
                &node.id,
                input,
                &mut self.rng,
            )?);
        }
        Ok(tprf::combine(&self.root_public, input, &partials)?)
    }
}
