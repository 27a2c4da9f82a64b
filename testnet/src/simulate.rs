//! In-process simulation of the whole federation: the project's main job until the networked
//! testnet does the same flow.
//!
//! N simulated nodes run every step of the key's life with the real protocol code and pass
//! their messages through memory: a frost DKG (every node contributes entropy), the threshold-PRF
//! beacon, stake-weighted branch assignment, per-branch seeds by the threshold PRF, sector
//! generation, verifiable dealing of every leaf seed to its `r` holders (sealed to each holder)
//! and erasure, the master root, MPC signing of fresh leaves (one of them with a Byzantine
//! holder that is caught and excluded), the loss of one holder and the batched repair of its
//! shares onto replacement holders, and a signature that uses a repaired share. What is *not*
//! simulated: consensus (leaves are allocated by one in-process counter standing in for the
//! ledger) and the network (messages are handed over directly, but every secret still travels
//! sealed to its recipient's X25519 key).
//!
//! Everything random comes from one seeded ChaCha20 stream, so the same `--seed` gives the same
//! bytes out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, ensure, Context, Result};
use frost_ristretto255::keys::{KeyPackage, PublicKeyPackage};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use x25519_dalek::{PublicKey, StaticSecret};

use seedfed_protocol::assignment::{self, Weighted};
use seedfed_protocol::hash::{hash32, Domain};
use seedfed_protocol::lmots::{self, LmotsType};
use seedfed_protocol::lms::{LmsPublicKey, LmsType};
use seedfed_protocol::master::Master;
use seedfed_protocol::member::MemberId;
use seedfed_protocol::reconstruct::{self, Participant, ReconstructError, Session};
use seedfed_protocol::repair::{self, RepairSession};
use seedfed_protocol::sector::{Sector, TreeLayout};
use seedfed_protocol::seed_tree::{branch_prf_input, Branch, BranchSeed};
use seedfed_protocol::shamir::{self, Commitment, LeafSecret, Share};
use seedfed_protocol::{dkg, seal, tprf};

const KEY_ID: Domain = Domain::new("seedfed-key-id");
const SESSION: Domain = Domain::new("seedfed-sim-sess");
const DEAL_AD: &[u8] = b"seedfed-sim-deal/v1";
const CHAIN_ID: &str = "seedfed-sim";

/// Parameters of one simulation run.
#[derive(Clone, Debug, clap::Args)]
pub struct SimArgs {
    /// Number of simulated nodes (validators).
    #[arg(long, default_value_t = 7)]
    pub nodes: usize,
    /// LMS tree height h (5, 10, 15, 20 or 25): 2^h one-time keys.
    #[arg(long, default_value_t = 15)]
    pub height: u32,
    /// log2 of the number of sectors (branches): 2^P sectors.
    #[arg(long = "sectors", default_value_t = 4)]
    pub sector_levels: u32,
    /// Shares needed to reconstruct a leaf seed (k).
    #[arg(long, default_value_t = 3)]
    pub threshold: usize,
    /// Holders of each leaf seed (r).
    #[arg(long, default_value_t = 5)]
    pub holders: usize,
    /// Seed of the run's randomness; the same seed gives the same output bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of messages to sign before the repair (at least 2: one shows a Byzantine holder).
    #[arg(long, default_value_t = 3)]
    pub messages: usize,
    /// Worker threads for sector generation (the result does not depend on it).
    #[arg(long, default_value_t = default_threads())]
    pub threads: usize,
    /// Output directory for `seedfed.pub` and the signed messages.
    #[arg(long, default_value = "sim-out")]
    pub out: PathBuf,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Default for SimArgs {
    fn default() -> Self {
        SimArgs {
            nodes: 7,
            height: 15,
            sector_levels: 4,
            threshold: 3,
            holders: 5,
            seed: 1,
            messages: 3,
            threads: default_threads(),
            out: PathBuf::from("sim-out"),
            quiet: false,
        }
    }
}

/// What a run produced (also written to `--out`).
#[derive(Debug)]
pub struct SimReport {
    /// The system public key.
    pub public_key: LmsPublicKey,
    /// `(message, HSS L=1 signature)` pairs, in signing order (the last one after the repair).
    pub signatures: Vec<(Vec<u8>, Vec<u8>)>,
    /// The epoch beacon.
    pub beacon: [u8; 32],
    /// The member a Byzantine contribution was attributed to.
    pub caught: Option<MemberId>,
    /// The member whose loss was repaired, and how many leaf shares were re-created.
    pub repaired: (MemberId, usize),
    /// Leaves allocated (each exactly once).
    pub leaves_used: Vec<u32>,
}

/// One simulated node's state.
struct Node {
    id: MemberId,
    stake: u64,
    x25519: StaticSecret,
    x25519_pub: [u8; 32],
    root_key: KeyPackage,
    /// Leaf shares this node holds, by leaf.
    shares: BTreeMap<u32, Share>,
    alive: bool,
}

impl Node {
    fn participant(&self) -> Participant {
        Participant {
            member: self.id,
            x25519: self.x25519_pub,
        }
    }
}

/// Public state every node agrees on (what the ledger will hold).
struct Public {
    layout: TreeLayout,
    beacon: [u8; 32],
    sectors: Vec<Sector>,
    master: Master,
    holders: BTreeMap<u32, Vec<MemberId>>,
    commitments: BTreeMap<u32, Commitment>,
    /// Next unallocated leaf (stand-in for the ledger's monotone counter).
    next_leaf: u32,
}

impl Public {
    /// Allocates the next leaf; a leaf is never handed out twice.
    fn allocate(&mut self) -> Result<u32> {
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

struct Sim {
    args: SimArgs,
    rng: ChaCha20Rng,
    nodes: Vec<Node>,
    root_public: PublicKeyPackage,
    started: Instant,
}

/// Runs the whole simulation and writes its files.
pub fn run(args: SimArgs) -> Result<SimReport> {
    check_args(&args)?;
    let mut sim = Sim::setup(args)?;
    let mut public = sim.keygen()?;
    let mut report = SimReport {
        public_key: public.master.public_key(),
        signatures: Vec::new(),
        beacon: public.beacon,
        caught: None,
        repaired: (MemberId([0; 32]), 0),
        leaves_used: Vec::new(),
    };

    for i in 0..sim.args.messages {
        let message =
            format!("seedfed simulation message {i} (seed {})", sim.args.seed).into_bytes();
        // The second message meets a Byzantine holder that sends a wrong contribution.
        let byzantine = i == 1;
        let (q, sig, caught) = sim.sign(&mut public, &message, byzantine, None)?;
        if byzantine {
            report.caught =
                Some(caught.ok_or_else(|| anyhow!("the wrong contribution went unnoticed"))?);
        }
        report.leaves_used.push(q);
        report.signatures.push((message, sig));
    }

    let (lost, replaced) = sim.fail_and_repair(&mut public)?;
    report.repaired = (lost, replaced.len());
    // Sign once more with a leaf whose quorum must use a repaired share.
    let message = format!(
        "seedfed simulation message after repair (seed {})",
        sim.args.seed
    )
    .into_bytes();
    let (q, sig, _) = sim.sign(&mut public, &message, false, Some(&replaced))?;
    report.leaves_used.push(q);
    report.signatures.push((message, sig));

    sim.write(&report)?;
    sim.say(format!(
        "done in {:.1}s: public key {}, {} signatures in {}",
        sim.started.elapsed().as_secs_f64(),
        hex::encode(&report.public_key.encode()[24..]),
        report.signatures.len(),
        sim.args.out.display()
    ));
    Ok(report)
}

fn check_args(args: &SimArgs) -> Result<()> {
    ensure!(
        args.nodes >= 4,
        "--nodes must be at least 4 (got {})",
        args.nodes
    );
    ensure!(
        args.nodes <= 64,
        "--nodes must be at most 64 (got {})",
        args.nodes
    );
    LmsType::from_height(args.height).ok_or_else(|| {
        anyhow!(
            "--height must be one of 5, 10, 15, 20, 25 (got {})",
            args.height
        )
    })?;
    ensure!(
        args.sector_levels >= 1 && args.sector_levels < args.height,
        "--sectors P needs 1 <= P < height (got P = {})",
        args.sector_levels
    );
    ensure!(
        args.threshold >= 2 && args.threshold <= args.holders,
        "--threshold k needs 2 <= k <= holders (got k = {}, r = {})",
        args.threshold,
        args.holders
    );
    ensure!(
        args.holders < args.nodes,
        "--holders r must be below --nodes so a lost holder can be replaced (got r = {}, n = {})",
        args.holders,
        args.nodes
    );
    ensure!(args.messages >= 2, "--messages must be at least 2");
    ensure!(args.threads >= 1, "--threads must be at least 1");
    Ok(())
}

impl Sim {
    fn say(&self, line: String) {
        if !self.args.quiet {
            println!("[{:6.2}s] {line}", self.started.elapsed().as_secs_f64());
        }
    }

    /// Identities, stakes and the root-key DKG.
    fn setup(args: SimArgs) -> Result<Self> {
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
            ));
        }
        let ids: Vec<MemberId> = idents.iter().map(|i| i.0).collect();
        let t = dkg::default_threshold(args.nodes);
        let (mut keys, root_public) =
            dkg::run_in_memory(&ids, t, &mut rng).context("root-key DKG failed")?;
        let mut nodes = Vec::with_capacity(args.nodes);
        for (id, stake, x25519, x25519_pub) in idents {
            let root_key = keys
                .remove(&id)
                .ok_or_else(|| anyhow!("DKG produced no key for {id:?}"))?;
            nodes.push(Node {
                id,
                stake,
                x25519,
                x25519_pub,
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

    fn weighted(&self) -> Vec<Weighted> {
        self.nodes
            .iter()
            .filter(|n| n.alive)
            .map(|n| Weighted {
                member: n.id,
                stake: n.stake,
            })
            .collect()
    }

    fn node(&self, id: &MemberId) -> Result<&Node> {
        find(&self.nodes, id)
    }

    fn node_mut(&mut self, id: &MemberId) -> Result<&mut Node> {
        self.nodes
            .iter_mut()
            .find(|n| n.id == *id)
            .ok_or_else(|| anyhow!("unknown member {id:?}"))
    }

    /// Threshold-PRF evaluation: every live node computes a DLEQ-proved partial; `skip` leaves
    /// out the first nodes so different runs of this use different subsets.
    fn tprf(&mut self, input: &[u8], skip: usize) -> Result<[u8; 32]> {
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

    /// Beacon, assignment, sectors, dealing, master tree.
    fn keygen(&mut self) -> Result<Public> {
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
            let seed = BranchSeed::from_bytes(self.tprf(&branch_prf_input(&id, b), 0)?);
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

    /// The owner seals each holder's shares of this sector in one box; each holder opens its
    /// box, checks every share against the public commitments in one batch, and stores them.
    fn deliver_dealings(
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

    /// Signs `message` with the next leaf by masked MPC reconstruction at the signing node.
    /// With `byzantine`, one quorum member sends a contribution built from a wrong share; it
    /// must be caught and the quorum retried without it. With `must_use`, the quorum includes
    /// the holder that received the repaired share of the leaf (if that leaf had one).
    fn sign(
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
                let contribution =
                    reconstruct::contribute(&session, m, &node.x25519, share, &mut self.rng)?;
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

    /// A holder fails; every unused leaf it held gets a new holder (the next one by rendezvous
    /// hashing without it) whose share is repaired from k other holders, in batched sessions.
    /// Returns the lost member and, per repaired leaf, its new holder.
    fn fail_and_repair(
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
                for msg in
                    repair::helper_deltas(&session, &h, &node.x25519, &shares, &mut self.rng)?
                {
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

    fn write(&self, report: &SimReport) -> Result<()> {
        let dir = &self.args.out;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("seedfed.pub");
        std::fs::write(&path, report.public_key.encode_hss())
            .with_context(|| format!("writing {}", path.display()))?;
        for (i, (message, sig)) in report.signatures.iter().enumerate() {
            let m = dir.join(format!("msg-{i}"));
            std::fs::write(&m, message).with_context(|| format!("writing {}", m.display()))?;
            let s = dir.join(format!("msg-{i}.sig"));
            std::fs::write(&s, sig).with_context(|| format!("writing {}", s.display()))?;
        }
        Ok(())
    }
}

fn find<'a>(nodes: &'a [Node], id: &MemberId) -> Result<&'a Node> {
    nodes
        .iter()
        .find(|n| n.id == *id)
        .ok_or_else(|| anyhow!("unknown member {id:?}"))
}
