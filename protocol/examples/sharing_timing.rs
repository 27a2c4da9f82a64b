//! Release-mode timing of the sharing layer at simulation scale (not a test; prints numbers).
//!
//! `cargo run --release -p seedfed-protocol --example sharing_timing [leaves]`
//!
//! Deals `leaves` (default 32768) secrets 3-of-5 over 10 members, verifies every holder's batch
//! (in memory, and again after decoding the commitments from bytes as a networked holder would),
//! reconstructs one leaf by MPC, repairs one holder's shares onto a newcomer, and runs a 10-member
//! DKG with one threshold-PRF evaluation. Single-threaded.

use std::collections::BTreeMap;
use std::time::Instant;

use ed25519_dalek::SigningKey;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use seedfed_protocol::member::MemberId;
use seedfed_protocol::reconstruct::HolderKeys;
use seedfed_protocol::reconstruct::{self, Participant, Session};
use seedfed_protocol::repair::{self, RepairSession};
use seedfed_protocol::shamir::{self, Commitment, LeafSecret, Share};
use seedfed_protocol::{dkg, tprf};
use x25519_dalek::{PublicKey, StaticSecret};

fn main() {
    let leaves: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(32768);
    let (n, r, k) = (10usize, 5usize, 3usize);
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    // Identities are Ed25519 keys: contributions are signed.
    let ids: BTreeMap<MemberId, SigningKey> = (0..=n as u8)
        .map(|i| {
            let key = SigningKey::from_bytes(&[i; 32]);
            (MemberId(key.verifying_key().to_bytes()), key)
        })
        .collect();
    let members: Vec<MemberId> = ids.keys().copied().collect();
    let newcomer = members[n];
    let members = &members[..n];
    let keys: BTreeMap<MemberId, StaticSecret> = members
        .iter()
        .chain([&newcomer])
        .map(|m| (*m, StaticSecret::random_from_rng(&mut rng)))
        .collect();
    let part = |m: &MemberId| Participant {
        member: *m,
        x25519: PublicKey::from(&keys[m]).to_bytes(),
    };

    let secrets: Vec<LeafSecret> = (0..leaves).map(|_| LeafSecret::random(&mut rng)).collect();
    let holder_sets: Vec<Vec<MemberId>> = (0..leaves)
        .map(|l| (0..r).map(|j| members[(l * 7 + j * 3) % n]).collect())
        .collect();

    let t = Instant::now();
    let dealt = shamir::deal_batch(
        secrets.iter().zip(&holder_sets).map(|(s, h)| (s, &h[..])),
        k,
        &mut rng,
    )
    .expect("deal");
    let deal_time = t.elapsed();

    // Each holder's view.
    let mut views: BTreeMap<MemberId, Vec<(usize, Share)>> = BTreeMap::new();
    for (l, d) in dealt.iter().enumerate() {
        for s in &d.shares {
            views.entry(s.holder).or_default().push((l, s.clone()));
        }
    }
    let t = Instant::now();
    for view in views.values() {
        let items: Vec<(&Share, &Commitment)> = view
            .iter()
            .map(|(l, s)| (s, &dealt[*l].commitment))
            .collect();
        shamir::verify_batch(&items, k, &mut rng).expect("verify");
    }
    let verify_time = t.elapsed();

    // As a networked holder: decode commitments from bytes first.
    let encoded: Vec<Vec<u8>> = dealt
        .iter()
        .map(|d| postcard::to_allocvec(&d.commitment).expect("encode"))
        .collect();
    let t = Instant::now();
    for view in views.values() {
        let decoded: Vec<Commitment> = view
            .iter()
            .map(|(l, _)| postcard::from_bytes(&encoded[*l]).expect("decode"))
            .collect();
        let items: Vec<(&Share, &Commitment)> = view.iter().map(|(_, s)| s).zip(&decoded).collect();
        shamir::verify_batch(&items, k, &mut rng).expect("verify");
    }
    let verify_wire_time = t.elapsed();

    // One MPC reconstruction.
    let recipient = newcomer;
    let t = Instant::now();
    let quorum = reconstruct::next_quorum(&holder_sets[0], &Default::default(), k).expect("q");
    let session = Session::new(
        [1; 32],
        1,
        0,
        part(&recipient),
        quorum.iter().map(&part).collect(),
    )
    .expect("session");
    let opened: Vec<_> = quorum
        .iter()
        .map(|m| {
            let share = dealt[0]
                .shares
                .iter()
                .find(|s| s.holder == *m)
                .expect("share");
            let c = reconstruct::contribute(
                &session,
                &holder_sets[0],
                k,
                HolderKeys::new(*m, &keys[m], &ids[m]),
                share,
                &mut rng,
            )
            .expect("c");
            reconstruct::open_contribution(&session, &keys[&recipient], &c).expect("open")
        })
        .collect();
    let got = reconstruct::combine(&session, &dealt[0].commitment, &opened).expect("combine");
    let recon_time = t.elapsed();
    assert!(got.ct_eq(&secrets[0]));

    // Repair: member 0 is lost; repair its leaves whose holder set contains helpers h.
    let lost = members[0];
    let lost_leaves: Vec<usize> = views[&lost].iter().map(|(l, _)| *l).collect();
    let mut groups: BTreeMap<Vec<MemberId>, Vec<usize>> = BTreeMap::new();
    for l in &lost_leaves {
        let mut helpers: Vec<MemberId> = holder_sets[*l]
            .iter()
            .filter(|m| **m != lost)
            .copied()
            .collect();
        helpers.sort();
        helpers.truncate(k);
        groups.entry(helpers).or_default().push(*l);
    }
    let t = Instant::now();
    let mut repaired = 0usize;
    for (gi, (helpers, ls)) in groups.iter().enumerate() {
        let session = RepairSession::new(
            [gi as u8; 32],
            1,
            lost,
            part(&newcomer),
            helpers.iter().map(&part).collect(),
            ls.iter().map(|l| *l as u64).collect(),
        )
        .expect("repair session");
        let mut inbox: BTreeMap<MemberId, Vec<repair::DeltaMessage>> = BTreeMap::new();
        for h in helpers {
            let shares: Vec<Share> = ls
                .iter()
                .map(|l| {
                    dealt[*l]
                        .shares
                        .iter()
                        .find(|s| s.holder == *h)
                        .expect("s")
                        .clone()
                })
                .collect();
            // Grouped by helper set: every helper holds every leaf of the group.
            let deltas =
                repair::helper_deltas(&session, helpers, k, h, &keys[h], &shares, &mut rng);
            for msg in deltas.expect("d") {
                inbox.entry(msg.to).or_default().push(msg);
            }
        }
        let sigmas: Vec<_> = helpers
            .iter()
            .map(|h| repair::helper_sigma(&session, h, &keys[h], &inbox[h], &mut rng).expect("s"))
            .collect();
        let commitments: Vec<Commitment> =
            ls.iter().map(|l| dealt[*l].commitment.clone()).collect();
        let new = repair::target_finish(
            &session,
            &keys[&newcomer],
            &sigmas,
            &commitments,
            k,
            &mut rng,
        )
        .expect("finish");
        repaired += new.len();
    }
    let repair_time = t.elapsed();

    // DKG + one TPRF evaluation.
    let t = Instant::now();
    let threshold = dkg::default_threshold(n);
    let (kps, public) = dkg::run_in_memory(members, threshold, &mut rng).expect("dkg");
    let dkg_time = t.elapsed();
    let t = Instant::now();
    let partials: Vec<_> = members
        .iter()
        .map(|m| tprf::partial(&kps[m], m, b"beacon/1", &mut rng).expect("partial"))
        .collect();
    let partial_time = t.elapsed();
    let t = Instant::now();
    let _ = tprf::combine(&public, b"beacon/1", &partials[..threshold as usize]).expect("combine");
    let combine_time = t.elapsed();

    // Calibration: one fixed-base scalar multiplication, to scale the numbers to other machines.
    let t = Instant::now();
    let mut acc = curve25519_dalek::RistrettoPoint::default();
    let x = curve25519_dalek::Scalar::from(123456789u64);
    for _ in 0..2000 {
        acc += &x * curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
    }
    let base_mul = t.elapsed();
    assert_ne!(acc, curve25519_dalek::RistrettoPoint::default());

    let per = |d: std::time::Duration, count: usize| d.as_secs_f64() * 1e6 / count as f64;
    println!("leaves {leaves}, {k}-of-{r} over {n} members");
    println!(
        "calibration: fixed-base scalar mult {:.1} us",
        per(base_mul, 2000)
    );
    println!(
        "deal_batch:            {:8.3} s  ({:.1} us/leaf)",
        deal_time.as_secs_f64(),
        per(deal_time, leaves)
    );
    println!(
        "verify_batch (memory): {:8.3} s  ({:.1} us/leaf, all {r} holders)",
        verify_time.as_secs_f64(),
        per(verify_time, leaves)
    );
    println!(
        "verify_batch (decode): {:8.3} s  ({:.1} us/leaf, all {r} holders)",
        verify_wire_time.as_secs_f64(),
        per(verify_wire_time, leaves)
    );
    println!(
        "masked reconstruction of one leaf: {:.3} ms",
        recon_time.as_secs_f64() * 1e3
    );
    println!(
        "repair of {repaired} shares in {} sessions: {:.3} s ({:.1} us/share)",
        groups.len(),
        repair_time.as_secs_f64(),
        per(repair_time, repaired)
    );
    println!("dkg n={n} t={threshold}: {:.3} ms; {n} tprf partials {:.3} ms; combine {threshold}: {:.3} ms",
        dkg_time.as_secs_f64() * 1e3, partial_time.as_secs_f64() * 1e3, combine_time.as_secs_f64() * 1e3);
}
