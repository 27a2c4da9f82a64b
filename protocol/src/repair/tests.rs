//! Tests of `repair`: repaired shares verify against the commitment and reconstruct the
//! secret, bad inputs are errors, a corrupted helper is caught per leaf, and the result
//! equals frost-core's repairable sharing on the same inputs.

use super::*;
use crate::shamir::tests::{members, roundtrip};
use crate::shamir::{deal_batch, reconstruct, verify_share, Dealing, LeafSecret};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::collections::BTreeMap;

struct World {
    holders: Vec<MemberId>,
    keys: BTreeMap<MemberId, StaticSecret>,
    secrets: Vec<LeafSecret>,
    dealt: Vec<Dealing>,
}

fn world(r: usize, k: usize, leaves: usize, rng: &mut ChaCha20Rng) -> World {
    let mut all = members(r + 1, 0x22);
    let newcomer = all.pop().unwrap();
    let holders = all;
    let keys = holders
        .iter()
        .chain([&newcomer])
        .map(|m| (*m, StaticSecret::random_from_rng(&mut *rng)))
        .collect();
    let secrets: Vec<LeafSecret> = (0..leaves).map(|_| LeafSecret::random(rng)).collect();
    let dealt = deal_batch(secrets.iter().map(|s| (s, &holders[..])), k, rng).unwrap();
    World {
        holders,
        keys,
        secrets,
        dealt,
    }
}

impl World {
    fn participant(&self, m: &MemberId) -> Participant {
        Participant {
            member: *m,
            x25519: PublicKey::from(&self.keys[m]).to_bytes(),
        }
    }
    fn shares_of(&self, m: &MemberId) -> Vec<Share> {
        let i = self.holders.iter().position(|h| h == m).unwrap();
        self.dealt.iter().map(|d| d.shares[i].clone()).collect()
    }
    fn run(
        &self,
        session: &RepairSession,
        k: usize,
        rng: &mut ChaCha20Rng,
    ) -> Result<Vec<Share>, RepairError> {
        let helpers = session.helper_ids();
        let mut inbox: BTreeMap<MemberId, Vec<DeltaMessage>> = BTreeMap::new();
        for h in &helpers {
            let shares = self.shares_of(h);
            for msg in helper_deltas(session, &self.holders, k, h, &self.keys[h], &shares, rng)? {
                inbox.entry(msg.to).or_default().push(roundtrip(&msg));
            }
        }
        let sigmas = helpers
            .iter()
            .map(|h| helper_sigma(session, h, &self.keys[h], &inbox[h], rng))
            .collect::<Result<Vec<_>, _>>()?;
        let commitments: Vec<Commitment> =
            self.dealt.iter().map(|d| d.commitment.clone()).collect();
        let target = &self.keys[&session.target.member];
        target_finish(session, target, &sigmas, &commitments, k, rng)
    }
}

#[test]
fn repaired_share_at_new_point_verifies_and_reconstructs() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let (r, k) = (5, 3);
    let w = world(r, k, 50, &mut rng);
    let newcomer = *w.keys.keys().find(|m| !w.holders.contains(m)).unwrap();
    let lost = w.holders[0];
    let helpers: Vec<Participant> = w.holders[2..5].iter().map(|m| w.participant(m)).collect();
    let session = RepairSession::new(
        [1; 32],
        9,
        lost,
        w.participant(&newcomer),
        helpers,
        (0..50).collect(),
    )
    .unwrap();
    let repaired = w.run(&session, k, &mut rng).unwrap();
    for (l, share) in repaired.iter().enumerate() {
        verify_share(share, &w.dealt[l].commitment, k).unwrap();
        // New share + k−1 old ones (including one from a helper and one from a non-helper).
        let set = vec![
            share.clone(),
            w.dealt[l].shares[1].clone(),
            w.dealt[l].shares[3].clone(),
        ];
        assert!(reconstruct(&set, k).unwrap().ct_eq(&w.secrets[l]));
    }
}

#[test]
fn repair_in_place_recreates_the_lost_share() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let w = world(4, 2, 5, &mut rng);
    let lost = w.holders[1];
    let helpers = vec![w.participant(&w.holders[0]), w.participant(&w.holders[3])];
    let session = RepairSession::new(
        [2; 32],
        1,
        lost,
        w.participant(&lost),
        helpers,
        (0..5).collect(),
    )
    .unwrap();
    let repaired = w.run(&session, 2, &mut rng).unwrap();
    for (l, share) in repaired.iter().enumerate() {
        assert_eq!(share.value_bytes(), w.dealt[l].shares[1].value_bytes());
    }
}

#[test]
fn bad_inputs_are_errors() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let w = world(4, 2, 3, &mut rng);
    let (a, b, c) = (w.holders[0], w.holders[1], w.holders[2]);
    let target = w.participant(&w.holders[3]);
    let session = RepairSession::new(
        [3; 32],
        1,
        w.holders[3],
        target,
        vec![w.participant(&a), w.participant(&b)],
        (0..3).collect(),
    )
    .unwrap();
    assert!(matches!(
        RepairSession::new(
            [3; 32],
            1,
            a,
            w.participant(&a),
            vec![w.participant(&a)],
            vec![0]
        ),
        Err(RepairError::InvalidSession(_))
    ));
    assert_eq!(
        helper_deltas(
            &session,
            &w.holders,
            2,
            &c,
            &w.keys[&c],
            &w.shares_of(&c),
            &mut rng
        )
        .unwrap_err(),
        RepairError::NotAHelper(c)
    );
    assert!(matches!(
        helper_deltas(
            &session,
            &w.holders,
            2,
            &a,
            &w.keys[&a],
            &w.shares_of(&b),
            &mut rng
        ),
        Err(RepairError::WrongShare { .. })
    ));
    assert_eq!(
        helper_deltas(
            &session,
            &w.holders,
            2,
            &a,
            &w.keys[&a],
            &w.shares_of(&a)[..2],
            &mut rng
        )
        .unwrap_err(),
        RepairError::WrongCount {
            expected: 3,
            got: 2
        }
    );
    let da = helper_deltas(
        &session,
        &w.holders,
        2,
        &a,
        &w.keys[&a],
        &w.shares_of(&a),
        &mut rng,
    )
    .unwrap();
    let db = helper_deltas(
        &session,
        &w.holders,
        2,
        &b,
        &w.keys[&b],
        &w.shares_of(&b),
        &mut rng,
    )
    .unwrap();
    // a's inbox: da[0] (from a), db[0] (from b). Missing, duplicated, misrouted, tampered.
    assert_eq!(
        helper_sigma(&session, &a, &w.keys[&a], &[da[0].clone()], &mut rng).unwrap_err(),
        RepairError::Messages(b)
    );
    assert_eq!(
        helper_sigma(
            &session,
            &a,
            &w.keys[&a],
            &[da[0].clone(), da[0].clone()],
            &mut rng
        )
        .unwrap_err(),
        RepairError::Messages(a)
    );
    assert_eq!(
        helper_sigma(
            &session,
            &a,
            &w.keys[&a],
            &[da[0].clone(), db[1].clone()],
            &mut rng
        )
        .unwrap_err(),
        RepairError::WrongSession(b)
    );
    let mut t = db[0].clone();
    t.sealed.ciphertext[0] ^= 1;
    assert!(matches!(
        helper_sigma(&session, &a, &w.keys[&a], &[da[0].clone(), t], &mut rng).unwrap_err(),
        RepairError::Seal { .. }
    ));
    let mut other = session.clone();
    other.epoch = 2;
    assert_eq!(
        helper_sigma(
            &other,
            &a,
            &w.keys[&a],
            &[da[0].clone(), db[0].clone()],
            &mut rng
        )
        .unwrap_err(),
        RepairError::WrongSession(a)
    );
}

#[test]
fn corrupted_helper_is_detected_by_the_commitment() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let w = world(4, 2, 6, &mut rng);
    let (a, b) = (w.holders[0], w.holders[1]);
    let target = w.holders[3];
    let session = RepairSession::new(
        [4; 32],
        1,
        target,
        w.participant(&target),
        vec![w.participant(&a), w.participant(&b)],
        (0..6).collect(),
    )
    .unwrap();
    // Helper b uses a wrong share for leaf 4.
    let mut bad = w.shares_of(&b);
    bad[4] = Share::new(b, &[1; 32]).unwrap();
    let mut inbox: BTreeMap<MemberId, Vec<DeltaMessage>> = BTreeMap::new();
    for (h, shares) in [(a, w.shares_of(&a)), (b, bad)] {
        for msg in
            helper_deltas(&session, &w.holders, 2, &h, &w.keys[&h], &shares, &mut rng).unwrap()
        {
            inbox.entry(msg.to).or_default().push(msg);
        }
    }
    let sigmas: Vec<SigmaMessage> = [a, b]
        .iter()
        .map(|h| helper_sigma(&session, h, &w.keys[h], &inbox[h], &mut rng).unwrap())
        .collect();
    let commitments: Vec<Commitment> = w.dealt.iter().map(|d| d.commitment.clone()).collect();
    assert_eq!(
        target_finish(
            &session,
            &w.keys[&target],
            &sigmas,
            &commitments,
            2,
            &mut rng
        )
        .unwrap_err(),
        RepairError::BadLeaves(vec![4])
    );
    assert_eq!(
        target_finish(
            &session,
            &w.keys[&target],
            &sigmas,
            &commitments,
            3,
            &mut rng
        )
        .unwrap_err(),
        RepairError::TooFewHelpers { helpers: 2, k: 3 }
    );
}

#[test]
fn agrees_with_frost_repairable_for_one_secret() {
    // frost-core's RTS on the same shares must give the same repaired share.
    use frost_ristretto255::keys::{repairable, KeyPackage, SigningShare, VerifyingShare};
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let w = world(3, 2, 1, &mut rng);
    let target = MemberId([0x77; 32]);
    let target_id = shamir::identifier(&target).unwrap();
    let helper_ids: Vec<_> = w.holders[..2]
        .iter()
        .map(|m| shamir::identifier(m).unwrap())
        .collect();
    let frost_commitment = w.dealt[0].commitment.to_frost().unwrap();
    let packages: Vec<KeyPackage> = w.holders[..2]
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let signing =
                SigningShare::deserialize(&w.dealt[0].shares[i].value_bytes()[..]).unwrap();
            let id = shamir::identifier(m).unwrap();
            let vs = VerifyingShare::from_commitment(id, &frost_commitment);
            let vk = frost_core::VerifyingKey::new(w.dealt[0].commitment.secret_point());
            KeyPackage::new(id, signing, vs, vk, 2)
        })
        .collect();
    let d0 = repairable::repair_share_part1::<frost_ristretto255::Ristretto255Sha512, _>(
        &helper_ids,
        &packages[0],
        &mut rng,
        target_id,
    )
    .unwrap();
    let d1 = repairable::repair_share_part1::<frost_ristretto255::Ristretto255Sha512, _>(
        &helper_ids,
        &packages[1],
        &mut rng,
        target_id,
    )
    .unwrap();
    let sigmas: Vec<_> = helper_ids
        .iter()
        .map(|h| repairable::repair_share_part2(&[d0[h], d1[h]]))
        .collect();
    let total = sigmas
        .iter()
        .map(|s| Scalar::from_canonical_bytes(s.serialize().try_into().unwrap()).unwrap())
        .fold(Scalar::ZERO, |a, b| a + b);
    // Ours:
    let mut keys = w.keys.clone();
    keys.insert(target, StaticSecret::random_from_rng(&mut rng));
    let w2 = World { keys, ..w };
    let session = RepairSession::new(
        [5; 32],
        0,
        target,
        w2.participant(&target),
        w2.holders[..2].iter().map(|m| w2.participant(m)).collect(),
        vec![0],
    )
    .unwrap();
    let ours = w2.run(&session, 2, &mut rng).unwrap();
    assert_eq!(*ours[0].value_bytes(), total.to_bytes());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn repair_yields_verifying_reconstructing_shares(
        seed in any::<u64>(), r in 2usize..6, k_off in 0usize..4, leaves in 1usize..6
    ) {
        let k = 1 + k_off % r;
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let w = world(r, k, leaves, &mut rng);
        let newcomer = *w.keys.keys().find(|m| !w.holders.contains(m)).unwrap();
        // Helpers: the last k holders; the lost one: holder 0.
        let helpers: Vec<Participant> =
            w.holders[r - k..].iter().map(|m| w.participant(m)).collect();
        let session = RepairSession::new(
            [6; 32], seed, w.holders[0], w.participant(&newcomer), helpers,
            (0..leaves as u64).collect(),
        ).unwrap();
        let repaired = w.run(&session, k, &mut rng).unwrap();
        for (l, share) in repaired.iter().enumerate() {
            verify_share(share, &w.dealt[l].commitment, k).unwrap();
            let mut set = vec![share.clone()];
            set.extend(w.dealt[l].shares[1..k].iter().cloned());
            prop_assert!(reconstruct(&set, k).unwrap().ct_eq(&w.secrets[l]));
        }
    }
}

/// A helper refuses a helper set the target could strip: too few helpers, helpers that hold
/// nothing, helpers or a target sharing a key. These all passed before the checks existed.
#[test]
fn unsafe_helper_sets_are_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let w = world(4, 3, 2, &mut rng);
    let (a, b) = (w.holders[0], w.holders[1]);
    let target = w.participant(&w.holders[3]);
    let session = |helpers: Vec<Participant>| {
        RepairSession::new([1; 32], 1, w.holders[3], target, helpers, vec![0, 1]).unwrap()
    };
    let deltas = |s: &RepairSession, holders: &[MemberId], rng: &mut ChaCha20Rng| {
        helper_deltas(s, holders, 3, &a, &w.keys[&a], &w.shares_of(&a), rng).unwrap_err()
    };
    // One helper for a 3-threshold: λ_a(x_t) = 1 would hand the target a's share.
    let short = session(vec![w.participant(&a)]);
    assert_eq!(
        deltas(&short, &w.holders, &mut rng),
        RepairError::TooFewHelpers { helpers: 1, k: 3 }
    );
    // Padded with identities that carry the target's key: the target opens their deltas.
    let sybils = [MemberId([0xf0; 32]), MemberId([0xf1; 32])];
    let mut padded = vec![w.participant(&a)];
    for m in sybils {
        padded.push(Participant {
            member: m,
            x25519: target.x25519,
        });
    }
    let padded = session(padded);
    assert_eq!(
        deltas(&padded, &w.holders, &mut rng),
        RepairError::NotAHolder(sybils[0])
    );
    let mut listed = w.holders.clone();
    listed.extend(sybils);
    assert_eq!(
        deltas(&padded, &listed, &mut rng),
        RepairError::SharedKey(w.holders[3], sybils[0])
    );
    // Two helpers with one key.
    let c = w.holders[2];
    let twins = session(vec![
        w.participant(&a),
        w.participant(&b),
        Participant {
            member: c,
            x25519: w.participant(&b).x25519,
        },
    ]);
    assert_eq!(
        deltas(&twins, &w.holders, &mut rng),
        RepairError::SharedKey(b, c)
    );
}
