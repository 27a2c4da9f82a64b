//! End-to-end flow of the threshold-secret layer through the public API only, as the simulation
//! and the node drive it: DKG → TPRF → deal leaves → holders verify → masked reconstruction with a
//! cheating holder and a retry → repair onto a newcomer → reconstruction with the repaired share.
//! Messages go through postcard as they would on the wire. Run twice with one seed: same result.

#![allow(clippy::unwrap_used)] // a test: a failed step should abort it

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::SigningKey;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use seedfed_protocol::member::MemberId;
use seedfed_protocol::reconstruct::HolderKeys;
use seedfed_protocol::reconstruct::{self, Contribution, Participant, ReconstructError, Session};
use seedfed_protocol::repair::{self, DeltaMessage, RepairSession, SigmaMessage};
use seedfed_protocol::shamir::{self, Commitment, LeafSecret, Share};
use seedfed_protocol::{dkg, tprf};
use x25519_dalek::{PublicKey, StaticSecret};

fn wire<T: serde::Serialize + for<'de> serde::Deserialize<'de>>(v: &T) -> T {
    postcard::from_bytes(&postcard::to_allocvec(v).unwrap()).unwrap()
}

/// Returns (beacon, the reconstructed leaf-0 secret bytes) so two runs can be compared.
fn run(seed: u64) -> ([u8; 32], [u8; 32]) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let n = 7;
    // Identities are Ed25519 keys: contributions are signed.
    let ids: BTreeMap<MemberId, SigningKey> = (1..=n as u8 + 1)
        .map(|i| {
            let key = SigningKey::from_bytes(&[i; 32]);
            (MemberId(key.verifying_key().to_bytes()), key)
        })
        .collect();
    let all: Vec<MemberId> = ids.keys().copied().collect();
    let (members, newcomer) = (&all[..n], all[n]);
    let keys: BTreeMap<MemberId, StaticSecret> = all
        .iter()
        .map(|m| (*m, StaticSecret::random_from_rng(&mut rng)))
        .collect();
    let part = |m: &MemberId| Participant {
        member: *m,
        x25519: PublicKey::from(&keys[m]).to_bytes(),
    };

    // Root key and the epoch beacon.
    let t = dkg::default_threshold(n);
    let (kps, public) = dkg::run_in_memory(members, t, &mut rng).unwrap();
    let partials: Vec<tprf::Partial> = members
        .iter()
        .map(|m| wire(&tprf::partial(&kps[m], m, b"beacon/0", &mut rng).unwrap()))
        .collect();
    let beacon = tprf::combine(&public, b"beacon/0", &partials[n - t as usize..]).unwrap();
    assert_eq!(
        beacon,
        tprf::combine(&public, b"beacon/0", &partials[..t as usize]).unwrap()
    );

    // A branch owner deals 20 leaves 3-of-5, each to its own holder set.
    let k = 3;
    let secrets: Vec<LeafSecret> = (0..20u8)
        .map(|i| LeafSecret::from_wide_bytes(&[i; 64]))
        .collect();
    let holder_sets: Vec<Vec<MemberId>> = (0..20)
        .map(|l| (0..5).map(|j| members[(l + 2 * j) % n]).collect())
        .collect();
    let dealt = shamir::deal_batch(
        secrets.iter().zip(&holder_sets).map(|(s, h)| (s, &h[..])),
        k,
        &mut rng,
    )
    .unwrap();
    let commitments: Vec<Commitment> = dealt.iter().map(|d| wire(&d.commitment)).collect();
    // Each holder stores and verifies its shares in one batch.
    let mut store: BTreeMap<(MemberId, usize), Share> = BTreeMap::new();
    for (l, d) in dealt.iter().enumerate() {
        for s in &d.shares {
            store.insert(
                (s.holder, l),
                Share::new(s.holder, &s.value_bytes()).unwrap(),
            );
        }
    }
    for m in members {
        let items: Vec<(&Share, &Commitment)> = store
            .iter()
            .filter(|((h, _), _)| h == m)
            .map(|((_, l), s)| (s, &commitments[*l]))
            .collect();
        shamir::verify_batch(&items, k, &mut rng).unwrap();
    }

    // Reconstruct leaf 0 to the newcomer; the first quorum's second member cheats.
    let leaf = 0usize;
    let recipient = newcomer;
    let mut excluded = BTreeSet::new();
    let mut cheater = None;
    let secret = loop {
        let quorum = reconstruct::next_quorum(&holder_sets[leaf], &excluded, k).unwrap();
        let session = Session::new(
            [9; 32],
            0,
            leaf as u64,
            part(&recipient),
            quorum.iter().map(&part).collect(),
        )
        .unwrap();
        let cheat = *cheater.get_or_insert(quorum[1]);
        let opened: Vec<_> = quorum
            .iter()
            .map(|m| {
                let share = if *m == cheat {
                    // The cheater uses a share of the wrong leaf.
                    store[&(*m, (1..20).find(|l| store.contains_key(&(*m, *l))).unwrap())].clone()
                } else {
                    store[&(*m, leaf)].clone()
                };
                let c: Contribution = wire(
                    &reconstruct::contribute(
                        &session,
                        &holder_sets[leaf],
                        k,
                        HolderKeys::new(*m, &keys[m], &ids[m]),
                        &share,
                        &mut rng,
                    )
                    .unwrap(),
                );
                reconstruct::open_contribution(&session, &keys[&recipient], &c).unwrap()
            })
            .collect();
        match reconstruct::combine(&session, &commitments[leaf], &opened) {
            Ok(s) => break s,
            Err(ReconstructError::Faulty(report)) => {
                assert_eq!(report.culprits, vec![cheat]);
                excluded.extend(report.excluded());
                assert!(excluded.len() <= 2, "retry loop is bounded");
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(
        excluded,
        BTreeSet::from([cheater.unwrap()]),
        "the cheat was caught"
    );
    assert!(secret.ct_eq(&secrets[leaf]));

    // Holder h0 of leaf 0 fails; repair its shares of the leaves 0 and (another leaf it
    // shares the same helpers with) onto the newcomer.
    let lost = holder_sets[leaf][0];
    let helpers: Vec<MemberId> = holder_sets[leaf][1..=k].to_vec();
    let leaves: Vec<usize> = (0..20)
        .filter(|l| {
            holder_sets[*l].contains(&lost) && helpers.iter().all(|h| holder_sets[*l].contains(h))
        })
        .collect();
    let session = RepairSession::new(
        [10; 32],
        0,
        lost,
        part(&newcomer),
        helpers.iter().map(&part).collect(),
        leaves.iter().map(|l| *l as u64).collect(),
    )
    .unwrap();
    let mut inbox: BTreeMap<MemberId, Vec<DeltaMessage>> = BTreeMap::new();
    for h in &helpers {
        let shares: Vec<Share> = leaves.iter().map(|l| store[&(*h, *l)].clone()).collect();
        let deltas = repair::helper_deltas(&session, &helpers, k, h, &keys[h], &shares, &mut rng);
        for msg in deltas.unwrap() {
            inbox.entry(msg.to).or_default().push(wire(&msg));
        }
    }
    let sigmas: Vec<SigmaMessage> = helpers
        .iter()
        .map(|h| wire(&repair::helper_sigma(&session, h, &keys[h], &inbox[h], &mut rng).unwrap()))
        .collect();
    let leaf_commitments: Vec<Commitment> =
        leaves.iter().map(|l| commitments[*l].clone()).collect();
    let repaired = repair::target_finish(
        &session,
        &keys[&newcomer],
        &sigmas,
        &leaf_commitments,
        k,
        &mut rng,
    )
    .unwrap();
    // The newcomer's share plus two old ones (not the lost holder's) rebuild each secret.
    for (i, l) in leaves.iter().enumerate() {
        let others: Vec<Share> = holder_sets[*l]
            .iter()
            .filter(|m| **m != lost)
            .take(k - 1)
            .map(|m| store[&(*m, *l)].clone())
            .collect();
        let mut set = vec![repaired[i].clone()];
        set.extend(others);
        assert!(shamir::reconstruct(&set, k).unwrap().ct_eq(&secrets[*l]));
    }
    (beacon, *secret.to_bytes())
}

#[test]
fn whole_flow_is_correct_and_deterministic() {
    let a = run(5);
    let b = run(5);
    assert_eq!(a, b);
    let c = run(6);
    assert_ne!(
        a.0, c.0,
        "a different seed gives a different root key and beacon"
    );
}

mod hostile_input {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Random bytes never panic a decoder, and a random sealed body never opens.
        #[test]
        fn random_bytes_are_errors_not_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = postcard::from_bytes::<Commitment>(&bytes);
            let _ = seedfed_protocol::ledger::decode::<seedfed_protocol::dealing::HeldSector>(&bytes);
            let _ = postcard::from_bytes::<Contribution>(&bytes);
            let _ = postcard::from_bytes::<DeltaMessage>(&bytes);
            let _ = postcard::from_bytes::<SigmaMessage>(&bytes);
            let _ = postcard::from_bytes::<tprf::Partial>(&bytes);
            let _ = postcard::from_bytes::<Session>(&bytes);
            let _ = seedfed_protocol::dkg::Complaint::decode(&bytes);
            let _ = seedfed_protocol::dkg::Envelope::decode(&bytes);
            let _ = seedfed_protocol::checkpoint::Checkpoint::from_bytes(&bytes);
            prop_assert!(seedfed_protocol::light_client::verify_checkpoint(
                &[9; 32], &[0; 32], &bytes, &bytes
            ).is_err());
            let cp = seedfed_protocol::checkpoint::Checkpoint {
                chain_id: [0; 32], seq: 0, epoch: 0, height: 0, master_key: seedfed_protocol::checkpoint::MasterKey::NONE, next_key: [0; 32], validator_set_hash: [0; 32], retired_digest: [0; 32],
            };
            let retired = seedfed_protocol::retired::RetiredLeaves::default();
            prop_assert!(seedfed_protocol::light_client::verify_signature(&cp, &retired, &bytes, b"m", &bytes).is_err());
            prop_assert!(seedfed_protocol::light_client::verify_unretired(&bytes, &retired, b"m", &bytes).is_err());
            let _ = seedfed_protocol::retired::RetiredLeaves::from_text(&String::from_utf8_lossy(&bytes));

            let mut rng = ChaCha20Rng::seed_from_u64(1);
            let a = StaticSecret::random_from_rng(&mut rng);
            let r = StaticSecret::random_from_rng(&mut rng);
            let member = MemberId([1; 32]);
            let session = Session::new(
                [0; 32], 0, 0,
                Participant { member: MemberId([2; 32]), x25519: PublicKey::from(&r).to_bytes() },
                vec![Participant { member, x25519: PublicKey::from(&a).to_bytes() }],
            ).unwrap();
            let mut eph = [0u8; 32];
            eph.copy_from_slice(&[bytes.as_slice(), &[7u8; 32]].concat()[..32]);
            let c = Contribution {
                context: session.context(),
                sender: member,
                recipient: MemberId([2; 32]),
                masks: vec![],
                sealed: seedfed_protocol::seal::Sealed { ephemeral: eph, ciphertext: bytes.clone() },
                signature: bytes.clone(),
            };
            prop_assert!(reconstruct::open_contribution(&session, &r, &c).is_err());
        }
    }
}
