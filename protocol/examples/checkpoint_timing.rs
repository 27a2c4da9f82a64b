//! Release-mode timing of the robust DKG, checkpoint signing and light-client verification
//! (not a test; prints numbers).
//!
//! `cargo run --release -p seedfed-protocol --example checkpoint_timing [members]`
//!
//! Runs the robust Ed25519 DKG among `members` (default 10, threshold ⌊2n/3⌋+1) with all
//! dealers honest, reporting per-member costs of each step (deal, open all envelopes, qualified
//! set, finish), then one complaint judged by everyone, a threshold signature on a checkpoint,
//! and the light client's checkpoint verification. Single-threaded.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use frost_ed25519::Ed25519Sha512;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use seedfed_protocol::checkpoint::{self, Checkpoint, MasterKey};
use seedfed_protocol::dkg::{self, Ceremony};
use seedfed_protocol::light_client;
use seedfed_protocol::member::MemberId;
use x25519_dalek::{PublicKey, StaticSecret};

fn per(total: Duration, n: usize) -> String {
    format!("{:.2} ms", total.as_secs_f64() * 1e3 / n as f64)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let t = dkg::default_threshold(n);
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    let parties: Vec<(MemberId, SigningKey, StaticSecret)> = (0..n)
        .map(|_| {
            let sk = SigningKey::generate(&mut rng);
            let x = StaticSecret::random_from_rng(&mut rng);
            (MemberId(sk.verifying_key().to_bytes()), sk, x)
        })
        .collect();
    let roster = parties
        .iter()
        .map(|(m, _, x)| (*m, PublicKey::from(x).to_bytes()))
        .collect();
    let s = Ceremony::<Ed25519Sha512>::new([1; 32], 1, t, roster).expect("session");

    let start = Instant::now();
    let mut secrets = BTreeMap::new();
    let mut published = BTreeMap::new();
    for (m, _, _) in &parties {
        let (sec, pkg) = s.round1(m, &mut rng).expect("round1");
        secrets.insert(*m, sec);
        published.insert(*m, pkg);
    }
    let r1 = start.elapsed();

    let start = Instant::now();
    let mut inbox: BTreeMap<MemberId, Vec<dkg::Envelope>> = BTreeMap::new();
    for (m, sk, _) in &parties {
        for e in s
            .deal(m, sk, &secrets[m], &published, &mut rng)
            .expect("deal")
        {
            inbox.entry(e.recipient).or_default().push(e);
        }
    }
    let deal = start.elapsed();

    let start = Instant::now();
    let mut received = BTreeMap::new();
    for (m, _, x) in &parties {
        let mut mine = BTreeMap::new();
        for e in &inbox[m] {
            mine.insert(e.sender, s.open(x, e, &published).expect("open"));
        }
        received.insert(*m, mine);
    }
    let open = start.elapsed();

    let start = Instant::now();
    let q = s.qualified_set(&published, &[], &[]);
    let qual = start.elapsed();

    let start = Instant::now();
    let mut keys = BTreeMap::new();
    let mut public = None;
    for (m, _, _) in &parties {
        let (kp, pkp) = s
            .finish(m, &secrets[m], &published, &q.qualified, &received[m])
            .expect("finish");
        keys.insert(*m, kp);
        public = Some(pkp);
    }
    let finish = start.elapsed();
    let public = public.expect("members");

    // One complaint (a genuine reveal of a valid share), judged as every validator would.
    let (m0, _, x0) = &parties[0];
    let e = &inbox[m0][0];
    let start = Instant::now();
    let complaint = s.complain(x0, e, &mut rng).expect("complain");
    let complain = start.elapsed();
    let start = Instant::now();
    let judged = s.qualified_set(&published, &[complaint], &[]);
    let judge = start.elapsed();
    assert_eq!(judged.qualified.len(), n);

    let cp = Checkpoint {
        chain_id: [1; 32],
        seq: 0,
        epoch: 1,
        height: 100,
        master_key: MasterKey {
            lms_type: 8,
            lmots_type: 3,
            id: [2; 16],
            root: [2; 32],
        },
        next_key: [4; 32],
        validator_set_hash: [3; 32],
        retired_digest: [5; 32],
    };
    let signers: Vec<MemberId> = keys.keys().take(usize::from(t)).copied().collect();
    let start = Instant::now();
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for m in &signers {
        let (nn, c) = checkpoint::commit(&keys[m], &mut rng);
        nonces.insert(*m, nn);
        commitments.insert(*m, c);
    }
    let package = checkpoint::signing_package(&cp, &commitments).expect("package");
    let shares = signers
        .iter()
        .map(|m| {
            let nn = nonces.remove(m).expect("nonces");
            let share = checkpoint::sign(&cp, &package, nn, m, &keys[m]).expect("sign");
            (*m, share)
        })
        .collect();
    let sign = start.elapsed();
    let start = Instant::now();
    let sig = checkpoint::aggregate(&package, &shares, &public).expect("aggregate");
    let aggregate = start.elapsed();
    let gk = checkpoint::group_key(&public).expect("group key");
    let start = Instant::now();
    for _ in 0..100 {
        light_client::verify_checkpoint(&gk, &cp.chain_id, &cp.to_bytes(), &sig).expect("verify");
    }
    let verify = start.elapsed();

    println!("robust Ed25519 DKG, n={n} t={t} (per member unless noted)");
    println!("  round1                 {}", per(r1, n));
    println!("  deal ({} envelopes)     {}", n - 1, per(deal, n));
    println!("  open ({} envelopes)     {}", n - 1, per(open, n));
    println!("  qualified_set (no complaints, once) {}", per(qual, 1));
    println!("  finish                 {}", per(finish, n));
    println!("  complain (reveal)      {}", per(complain, 1));
    println!("  judge one complaint    {}", per(judge, 1));
    println!("checkpoint: {t} signers commit+sign {}", per(sign, 1));
    println!("checkpoint: aggregate   {}", per(aggregate, 1));
    println!("light client verify_checkpoint {}", per(verify, 100));
}
