//! Tests of the DKG: the frost wrappers, the robust ceremony with absent, bad and withheld
//! dealers and false complaints, and the complaint codec.

use std::collections::BTreeMap;

use ed25519_dalek::{Signer, SigningKey};
use frost_core::keys::dkg as fdkg;
use frost_core::keys::SigningShare;
use frost_core::Ciphersuite;
use frost_ed25519::Ed25519Sha512;
use frost_ristretto255::Ristretto255Sha512;
use proptest::prelude::{any, prop_assert, prop_assert_eq, proptest, ProptestConfig};
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use x25519_dalek::{PublicKey, StaticSecret};

use super::ceremony::Round1Map;
use super::frost::agree;
use super::*;
use crate::member::MemberId;
use crate::seal;
use crate::shamir;
use crate::shamir::tests::members;

#[test]
fn default_thresholds() {
    assert_eq!(default_threshold(4), 3);
    assert_eq!(default_threshold(7), 5);
    assert_eq!(default_threshold(10), 7);
}

#[test]
fn in_memory_dkg_gives_consistent_keys() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let ms = members(5, 0x33);
    let (keys, public) = run_in_memory(&ms, 3, &mut rng).unwrap();
    assert_eq!(keys.len(), 5);
    assert_eq!(public.min_signers(), Some(3));
    for (m, kp) in &keys {
        assert_eq!(*kp.identifier(), shamir::identifier(m).unwrap());
        assert_eq!(
            public.verifying_shares()[kp.identifier()],
            *kp.verifying_share()
        );
        assert_eq!(public.verifying_key(), kp.verifying_key());
    }
    // Any 3 key packages reconstruct the same group secret, whose public key is the group's.
    let all: Vec<KeyPackage> = keys.values().cloned().collect();
    let a = frost_ristretto255::keys::reconstruct(&all[..3]).unwrap();
    let b = frost_ristretto255::keys::reconstruct(&all[2..]).unwrap();
    assert_eq!(a.serialize(), b.serialize());
    assert_eq!(
        frost_ristretto255::VerifyingKey::from(a),
        *public.verifying_key()
    );
    // A second run gives a different key (fresh entropy).
    let (_, public2) = run_in_memory(&ms, 3, &mut rng).unwrap();
    assert_ne!(public.verifying_key(), public2.verifying_key());
}

#[test]
fn bad_parameters_are_errors() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let ms = members(3, 0x34);
    assert!(matches!(
        run_in_memory(&ms, 4, &mut rng),
        Err(DkgError::Parameters { .. })
    ));
    assert!(matches!(
        run_in_memory(&ms, 1, &mut rng),
        Err(DkgError::Parameters { .. })
    ));
    let dup = vec![ms[0], ms[1], ms[0]];
    assert_eq!(
        run_in_memory(&dup, 2, &mut rng).unwrap_err(),
        DkgError::DuplicateMember(ms[0])
    );
}

#[test]
fn tampered_round1_package_is_blamed_on_its_sender() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let ms = members(3, 0x35);
    let mut s1 = BTreeMap::new();
    let mut p1 = BTreeMap::new();
    for m in &ms {
        let (s, p) = part1::<Ristretto255Sha512, _>(m, 3, 2, &mut rng).unwrap();
        s1.insert(*m, s);
        p1.insert(*m, p);
    }
    // ms[2] sends ms[1]'s package as its own: its proof of knowledge fails for its identifier.
    let mut received = p1.clone();
    received.remove(&ms[0]);
    received.insert(ms[2], p1[&ms[1]].clone());
    let err = part2(s1.remove(&ms[0]).unwrap(), &received).unwrap_err();
    let DkgError::Frost { culprits, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(culprits, vec![ms[2]]);
}

// ---- robust DKG ----------------------------------------------------------------------

pub(crate) struct Party {
    pub id: MemberId,
    pub sk: SigningKey,
    pub x: StaticSecret,
}

pub(crate) fn parties(n: usize, seed: u64) -> Vec<Party> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let sk = SigningKey::generate(&mut rng);
            let x = StaticSecret::random_from_rng(&mut rng);
            Party {
                id: MemberId(sk.verifying_key().to_bytes()),
                sk,
                x,
            }
        })
        .collect()
}

pub(crate) fn session<C: Ciphersuite>(ps: &[Party], t: u16) -> Ceremony<C> {
    session_with_bad_keys(ps, t, &[])
}

/// A ceremony in which the parties at `bad_keys` are listed with a low-order X25519 key.
fn session_with_bad_keys<C: Ciphersuite>(ps: &[Party], t: u16, bad_keys: &[usize]) -> Ceremony<C> {
    let roster = ps
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let x = if bad_keys.contains(&i) {
                [0; 32]
            } else {
                PublicKey::from(&p.x).to_bytes()
            };
            (p.id, x)
        })
        .collect();
    Ceremony::new([7; 32], 3, t, roster).unwrap()
}

/// Misbehaviour injected into one robust run.
#[derive(Default)]
struct Faults {
    /// Dealers that publish no round-1 package.
    absent: Vec<usize>,
    /// (dealer, recipient): the dealer sends a wrong (but well-formed, signed) share.
    bad_share: Vec<(usize, usize)>,
    /// (dealer, recipient): the dealer sends nothing, and answers the Missing complaint
    /// only if the flag is set.
    withheld: Vec<(usize, usize, bool)>,
    /// (complainer, dealer): a false complaint with a genuine reveal of an honest envelope.
    false_complaint: Vec<(usize, usize)>,
    /// Members listed with a low-order X25519 key (they publish a valid round-1 package).
    bad_key: Vec<usize>,
}

struct Outcome<C: Ciphersuite> {
    q: Qualification,
    keys: BTreeMap<MemberId, frost_core::keys::KeyPackage<C>>,
    public: frost_core::keys::PublicKeyPackage<C>,
}

fn bad_envelope<C: Ciphersuite, R: RngCore + CryptoRng>(
    s: &Ceremony<C>,
    dealer: &Party,
    to: &Party,
    rng: &mut R,
) -> Envelope {
    // A valid scalar that is not the dealer's share for `to`.
    let wrong = SigningShare::<C>::new(
        <<C::Group as frost_core::Group>::Field as frost_core::Field>::one(),
    );
    let sealed = seal::seal_ephemeral(
        &PublicKey::from(&to.x),
        &s.envelope_ad(&dealer.id, &to.id),
        &wrong.serialize(),
        rng,
    )
    .unwrap();
    let signature = dealer
        .sk
        .sign(&s.envelope_message(&dealer.id, &to.id, &sealed))
        .to_bytes();
    Envelope {
        sender: dealer.id,
        recipient: to.id,
        sealed,
        signature,
    }
}

fn run_robust<C: Ciphersuite>(ps: &[Party], t: u16, faults: &Faults, seed: u64) -> Outcome<C> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let s = session_with_bad_keys::<C>(ps, t, &faults.bad_key);
    let mut secrets = BTreeMap::new();
    let mut published = BTreeMap::new();
    for (i, p) in ps.iter().enumerate() {
        let (sec, pkg) = s.round1(&p.id, &mut rng).unwrap();
        secrets.insert(p.id, sec);
        if !faults.absent.contains(&i) {
            published.insert(p.id, pkg);
        }
    }
    let index: BTreeMap<MemberId, usize> = ps.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
    let mut inbox: BTreeMap<MemberId, Vec<Envelope>> = BTreeMap::new();
    let mut answers = Vec::new();
    let (valid, _) = s.valid_round1(&published);
    for (i, p) in ps.iter().enumerate() {
        if !valid.contains_key(&p.id) {
            continue;
        }
        let envs = s
            .deal(&p.id, &p.sk, &secrets[&p.id], &published, &mut rng)
            .unwrap();
        assert_eq!(envs.len(), valid.len() - 1);
        for e in envs {
            let j = index[&e.recipient];
            if faults.bad_share.contains(&(i, j)) {
                let bad = bad_envelope(&s, p, &ps[j], &mut rng);
                inbox.entry(e.recipient).or_default().push(bad);
            } else if let Some(&(_, _, answer)) =
                faults.withheld.iter().find(|w| (w.0, w.1) == (i, j))
            {
                if answer {
                    answers.push(e);
                }
            } else {
                inbox.entry(e.recipient).or_default().push(e);
            }
        }
    }
    // Recipients open what they got, complain about bad or missing envelopes.
    let mut complaints = Vec::new();
    let mut received: BTreeMap<MemberId, BTreeMap<MemberId, fdkg::round2::Package<C>>> =
        BTreeMap::new();
    for p in ps {
        if !published.contains_key(&p.id) {
            continue;
        }
        let mine = inbox.remove(&p.id).unwrap_or_default();
        for e in &mine {
            match s.open(&p.x, e, &published) {
                Ok(share) => {
                    received.entry(p.id).or_default().insert(e.sender, share);
                }
                Err(DkgError::BadEnvelope { .. }) => {
                    complaints.push(s.complain(&p.x, e, &mut rng).unwrap());
                }
                Err(other) => panic!("{other:?}"),
            }
        }
        for d in published.keys().filter(|d| **d != p.id) {
            if !mine.iter().any(|e| e.sender == *d) {
                complaints.push(Complaint::Missing {
                    complainer: p.id,
                    dealer: *d,
                });
            }
        }
    }
    // Answered envelopes are opened by their recipients.
    for a in &answers {
        let p = &ps[index[&a.recipient]];
        let share = s.open(&p.x, a, &published).unwrap();
        received.entry(p.id).or_default().insert(a.sender, share);
    }
    for &(c, d) in &faults.false_complaint {
        let e = s
            .deal(
                &ps[d].id,
                &ps[d].sk,
                &secrets[&ps[d].id],
                &published,
                &mut rng,
            )
            .unwrap()
            .into_iter()
            .find(|e| e.recipient == ps[c].id)
            .unwrap();
        complaints.push(s.complain(&ps[c].x, &e, &mut rng).unwrap());
    }
    // Everyone computes the qualified set from the same ledger data, in any order.
    let q = s.qualified_set(&published, &complaints, &answers);
    let mut reversed = complaints.clone();
    reversed.reverse();
    assert_eq!(
        s.qualified_set(&published, &reversed, &answers).qualified,
        q.qualified
    );
    let mut keys = BTreeMap::new();
    let mut public = None;
    for m in &q.qualified {
        let (kp, pkp) = s
            .finish(m, &secrets[m], &published, &q.qualified, &received[m])
            .unwrap();
        keys.insert(*m, kp);
        agree(&mut public, pkp).unwrap();
    }
    Outcome {
        q,
        keys,
        public: public.unwrap(),
    }
}

/// Every qualified member's key agrees with the group key, and t of them reconstruct it.
fn check_group<C: Ciphersuite>(o: &Outcome<C>, t: u16) {
    assert_eq!(o.public.verifying_shares().len(), o.q.qualified.len());
    for (m, kp) in &o.keys {
        assert_eq!(*kp.identifier(), identifier_for::<C>(m).unwrap());
        assert_eq!(kp.verifying_key(), o.public.verifying_key());
        assert_eq!(
            o.public.verifying_shares()[kp.identifier()],
            *kp.verifying_share()
        );
    }
    let all: Vec<_> = o.keys.values().cloned().collect();
    let t = usize::from(t);
    let a = frost_core::keys::reconstruct(&all[..t]).unwrap();
    let b = frost_core::keys::reconstruct(&all[all.len() - t..]).unwrap();
    assert_eq!(a.serialize(), b.serialize());
    assert_eq!(
        frost_core::VerifyingKey::<C>::from(a),
        *o.public.verifying_key()
    );
}

#[test]
fn robust_all_honest() {
    let ps = parties(4, 10);
    let o = run_robust::<Ristretto255Sha512>(&ps, 3, &Faults::default(), 1);
    assert_eq!(o.q.qualified.len(), 4);
    assert!(o.q.excluded.is_empty() && o.q.rejected.is_empty());
    check_group(&o, 3);
}

#[test]
fn robust_one_absent_dealer() {
    for (n, t) in [(4usize, 3u16), (7, 5)] {
        let ps = parties(n, 11 + n as u64);
        let faults = Faults {
            absent: vec![1],
            ..Faults::default()
        };
        let o = run_robust::<Ristretto255Sha512>(&ps, t, &faults, 2);
        assert_eq!(o.q.qualified.len(), n - 1);
        assert_eq!(o.q.excluded[&ps[1].id], ExclusionCause::Absent);
        assert!(!o.q.qualified.contains(&ps[1].id));
        check_group(&o, t);
    }
}

#[test]
fn robust_member_with_a_low_order_key_is_excluded_and_nobody_aborts() {
    let ps = parties(5, 16);
    let faults = Faults {
        bad_key: vec![2],
        ..Faults::default()
    };
    let o = run_robust::<Ristretto255Sha512>(&ps, 3, &faults, 6);
    assert_eq!(o.q.qualified.len(), 4);
    assert_eq!(o.q.excluded[&ps[2].id], ExclusionCause::BadX25519Key);
    // Its Missing complaints (it got no envelope) are owed nothing and exclude nobody.
    assert!(o
        .q
        .rejected
        .iter()
        .all(|r| r.complainer == ps[2].id && r.reason == Rejection::NotOwed));
    check_group(&o, 3);
}

#[test]
fn robust_bad_share_is_proven_and_excluded() {
    let ps = parties(4, 12);
    let faults = Faults {
        bad_share: vec![(2, 0)],
        ..Faults::default()
    };
    let o = run_robust::<Ristretto255Sha512>(&ps, 3, &faults, 3);
    assert_eq!(
        o.q.excluded[&ps[2].id],
        ExclusionCause::BadShare {
            complainer: ps[0].id
        }
    );
    assert_eq!(o.q.qualified.len(), 3);
    assert!(o.q.rejected.is_empty());
    check_group(&o, 3);
}

#[test]
fn robust_false_complaints_are_rejected() {
    let ps = parties(4, 13);
    let faults = Faults {
        false_complaint: vec![(0, 1)],
        ..Faults::default()
    };
    let o = run_robust::<Ristretto255Sha512>(&ps, 3, &faults, 4);
    assert_eq!(o.q.qualified.len(), 4);
    assert_eq!(
        o.q.rejected,
        vec![RejectedComplaint {
            complainer: ps[0].id,
            dealer: ps[1].id,
            reason: Rejection::ShareValid
        }]
    );
    check_group(&o, 3);

    // A lying reveal (computed with someone else's key) is a bad proof.
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let s = session::<Ristretto255Sha512>(&ps, 3);
    let mut published = BTreeMap::new();
    let mut secrets = BTreeMap::new();
    for p in &ps {
        let (sec, pkg) = s.round1(&p.id, &mut rng).unwrap();
        published.insert(p.id, pkg);
        secrets.insert(p.id, sec);
    }
    let e = s
        .deal(
            &ps[1].id,
            &ps[1].sk,
            &secrets[&ps[1].id],
            &published,
            &mut rng,
        )
        .unwrap()
        .into_iter()
        .find(|e| e.recipient == ps[0].id)
        .unwrap();
    let lie = s.complain(&ps[3].x, &e, &mut rng).unwrap();
    // An envelope re-signed by the complainer proves nothing about the dealer.
    let mut forged = e.clone();
    forged.signature = ps[0]
        .sk
        .sign(&s.envelope_message(&e.sender, &e.recipient, &e.sealed))
        .to_bytes();
    let forged = s.complain(&ps[0].x, &forged, &mut rng).unwrap();
    let q = s.qualified_set(&published, &[lie, forged], &[]);
    assert_eq!(q.qualified.len(), 4);
    let reasons: Vec<Rejection> = q.rejected.iter().map(|r| r.reason).collect();
    assert_eq!(reasons, vec![Rejection::BadProof, Rejection::Unsigned]);
}

#[test]
fn robust_tolerates_f_bad_dealers_at_n7() {
    let ps = parties(7, 14);
    let faults = Faults {
        absent: vec![6],
        bad_share: vec![(3, 0), (3, 5)],
        ..Faults::default()
    };
    let o = run_robust::<Ristretto255Sha512>(&ps, 5, &faults, 6);
    assert_eq!(o.q.qualified.len(), 5);
    assert_eq!(o.q.excluded[&ps[6].id], ExclusionCause::Absent);
    assert!(matches!(
        o.q.excluded[&ps[3].id],
        ExclusionCause::BadShare { .. }
    ));
    check_group(&o, 5);
    // Two bad-share dealers and Ed25519 as the ciphersuite.
    let faults = Faults {
        bad_share: vec![(1, 2), (4, 0)],
        ..Faults::default()
    };
    let o = run_robust::<Ed25519Sha512>(&ps, 5, &faults, 7);
    assert_eq!(o.q.qualified.len(), 5);
    check_group(&o, 5);
    // The robust Ed25519 key signs a checkpoint that a light client accepts.
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let cp = crate::checkpoint::tests::sample_checkpoint();
    let signers: Vec<MemberId> = o.q.qualified.iter().copied().collect();
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for m in &signers {
        let (n, c) = crate::checkpoint::commit(&o.keys[m], &mut rng);
        nonces.insert(*m, n);
        commitments.insert(*m, c);
    }
    let package = crate::checkpoint::signing_package(&cp, &commitments).unwrap();
    let shares = signers
        .iter()
        .map(|m| {
            let share =
                crate::checkpoint::sign(&cp, &package, nonces.remove(m).unwrap(), m, &o.keys[m])
                    .unwrap();
            (*m, share)
        })
        .collect();
    let sig = crate::checkpoint::aggregate(&package, &shares, &o.public).unwrap();
    let gk = crate::checkpoint::group_key(&o.public).unwrap();
    let got =
        crate::light_client::verify_checkpoint(&gk, &cp.chain_id, &cp.to_bytes(), &sig).unwrap();
    assert_eq!(got, cp);
}

#[test]
fn robust_missing_envelopes() {
    let ps = parties(5, 15);
    let faults = Faults {
        withheld: vec![(1, 0, false), (2, 3, true)],
        ..Faults::default()
    };
    let o = run_robust::<Ristretto255Sha512>(&ps, 3, &faults, 8);
    assert_eq!(
        o.q.excluded[&ps[1].id],
        ExclusionCause::NoShare {
            complainer: ps[0].id
        }
    );
    assert!(o.q.qualified.contains(&ps[2].id));
    assert_eq!(
        o.q.rejected,
        vec![RejectedComplaint {
            complainer: ps[3].id,
            dealer: ps[2].id,
            reason: Rejection::Answered
        }]
    );
    check_group(&o, 3);

    // A member absent in round 1 is owed no share: its Missing complaint is rejected.
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let s = session::<Ristretto255Sha512>(&ps, 3);
    let mut published = BTreeMap::new();
    for p in &ps[..4] {
        published.insert(p.id, s.round1(&p.id, &mut rng).unwrap().1);
    }
    let c = Complaint::Missing {
        complainer: ps[4].id,
        dealer: ps[0].id,
    };
    let q = s.qualified_set(&published, &[c], &[]);
    assert_eq!(q.qualified.len(), 4);
    assert_eq!(q.rejected[0].reason, Rejection::NotOwed);
}

#[test]
fn too_few_qualified_is_an_error() {
    let ps = parties(4, 16);
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let s = session::<Ristretto255Sha512>(&ps, 3);
    let mut published = BTreeMap::new();
    let (sec, pkg) = s.round1(&ps[0].id, &mut rng).unwrap();
    published.insert(ps[0].id, pkg);
    let (_, pkg) = s.round1(&ps[1].id, &mut rng).unwrap();
    published.insert(ps[1].id, pkg);
    assert!(matches!(
        s.deal(&ps[0].id, &ps[0].sk, &sec, &published, &mut rng),
        Err(DkgError::TooFewQualified { .. })
    ));
    let q = s.qualified_set(&published, &[], &[]);
    assert_eq!(q.qualified.len(), 2);
    assert!(matches!(
        s.finish(&ps[0].id, &sec, &published, &q.qualified, &BTreeMap::new()),
        Err(DkgError::TooFewQualified { .. })
    ));
}

#[test]
fn ristretto_identifiers_match_shamir() {
    for m in members(4, 0x40) {
        assert_eq!(
            identifier_for::<Ristretto255Sha512>(&m).unwrap(),
            shamir::identifier(&m).unwrap()
        );
    }
}

/// A session with published round 1, one honest envelope 1 → 0 and a (false) complaint
/// about it, for the decoder properties.
fn complaint_fixture() -> (
    Ceremony<Ristretto255Sha512>,
    Round1Map<Ristretto255Sha512>,
    Complaint,
    Vec<Party>,
) {
    let ps = parties(4, 17);
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    let s = session::<Ristretto255Sha512>(&ps, 3);
    let mut published = BTreeMap::new();
    let mut secrets = BTreeMap::new();
    for p in &ps {
        let (sec, pkg) = s.round1(&p.id, &mut rng).unwrap();
        published.insert(p.id, pkg);
        secrets.insert(p.id, sec);
    }
    let e = s
        .deal(
            &ps[1].id,
            &ps[1].sk,
            &secrets[&ps[1].id],
            &published,
            &mut rng,
        )
        .unwrap()
        .into_iter()
        .find(|e| e.recipient == ps[0].id)
        .unwrap();
    let c = s.complain(&ps[0].x, &e, &mut rng).unwrap();
    (s, published, c, ps)
}

#[test]
fn complaint_encoding_round_trips_and_rejects_truncation() {
    let (_, _, c, ps) = complaint_fixture();
    let bytes = c.encode();
    assert_eq!(Complaint::decode(&bytes).unwrap(), c);
    for len in 0..bytes.len() {
        assert!(Complaint::decode(&bytes[..len]).is_err(), "prefix {len}");
    }
    let mut long = bytes.clone();
    long.push(0);
    assert!(Complaint::decode(&long).is_err());
    let missing = Complaint::Missing {
        complainer: ps[0].id,
        dealer: ps[1].id,
    };
    assert_eq!(Complaint::decode(&missing.encode()).unwrap(), missing);
    let mut bad_tag = bytes.clone();
    bad_tag[0] = 2;
    assert!(Complaint::decode(&bad_tag).is_err());
    let Complaint::Bad { envelope, .. } = &c else {
        unreachable!()
    };
    assert_eq!(Envelope::decode(&envelope.encode()).unwrap(), *envelope);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn complaint_decoder_never_panics_and_is_canonical(
        bytes in proptest::collection::vec(any::<u8>(), 0..400)
    ) {
        if let Ok(c) = Complaint::decode(&bytes) {
            prop_assert_eq!(c.encode(), bytes);
        }
    }

    /// No bit flip turns a false complaint against an honest dealer into a conviction.
    #[test]
    fn flipped_complaints_never_convict_an_honest_dealer(bit in 0usize..(8 * 400)) {
        let (s, published, c, ps) = complaint_fixture();
        let mut bytes = c.encode();
        let bit = bit % (8 * bytes.len());
        bytes[bit / 8] ^= 1 << (bit % 8);
        if let Ok(flipped) = Complaint::decode(&bytes) {
            let q = s.qualified_set(&published, &[flipped], &[]);
            prop_assert!(q.qualified.contains(&ps[1].id));
            prop_assert_eq!(q.qualified.len(), 4);
        }
    }
}
