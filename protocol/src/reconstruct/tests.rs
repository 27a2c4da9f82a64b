//! Tests of `reconstruct`: masked reconstruction equals plain interpolation, replayed and
//! tampered contributions are rejected, and a culprit or a lying pair is attributed and
//! excluded so that the retry succeeds.

use super::*;
use crate::shamir::tests::{members, roundtrip};
use crate::shamir::{deal, reconstruct, Dealing};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

struct World {
    holders: Vec<MemberId>,
    keys: BTreeMap<MemberId, StaticSecret>,
    recipient: MemberId,
    recipient_key: StaticSecret,
    secret: LeafSecret,
    dealing: Dealing,
}

fn world(r: usize, k: usize, rng: &mut ChaCha20Rng) -> World {
    let holders = members(r, 0x11);
    let keys = holders
        .iter()
        .map(|m| (*m, StaticSecret::random_from_rng(&mut *rng)))
        .collect();
    let secret = LeafSecret::random(rng);
    let dealing = deal(&secret, &holders, k, rng).unwrap();
    World {
        holders,
        keys,
        recipient: MemberId([0xee; 32]),
        recipient_key: StaticSecret::random_from_rng(&mut *rng),
        secret,
        dealing,
    }
}

impl World {
    fn session(&self, quorum: &[MemberId], leaf: u64) -> Session {
        Session::new(
            [7; 32],
            3,
            leaf,
            Participant {
                member: self.recipient,
                x25519: PublicKey::from(&self.recipient_key).to_bytes(),
            },
            quorum
                .iter()
                .map(|m| Participant {
                    member: *m,
                    x25519: PublicKey::from(&self.keys[m]).to_bytes(),
                })
                .collect(),
        )
        .unwrap()
    }
    fn share(&self, m: &MemberId) -> &Share {
        let i = self.holders.iter().position(|h| h == m).unwrap();
        &self.dealing.shares[i]
    }
    fn k(&self) -> usize {
        self.dealing.commitment.threshold()
    }
    fn contribute(
        &self,
        s: &Session,
        m: &MemberId,
        rng: &mut ChaCha20Rng,
    ) -> Result<Contribution, ReconstructError> {
        contribute(
            s,
            &self.holders,
            self.k(),
            m,
            &self.keys[m],
            self.share(m),
            rng,
        )
    }
    fn contributions(&self, s: &Session, rng: &mut ChaCha20Rng) -> Vec<Contribution> {
        s.members()
            .iter()
            .map(|m| self.contribute(s, m, rng).unwrap())
            .collect()
    }
    fn open_all(&self, s: &Session, cs: &[Contribution]) -> Vec<Opened> {
        cs.iter()
            .map(|c| open_contribution(s, &self.recipient_key, c).unwrap())
            .collect()
    }
}

/// Seals a hand-made body as `sender` would (to forge well-authenticated bad contributions).
fn forge(
    w: &World,
    s: &Session,
    sender: &MemberId,
    body: &[u8],
    rng: &mut ChaCha20Rng,
) -> Contribution {
    let ad = associated_data(&s.context(), sender, &w.recipient);
    Contribution {
        context: s.context(),
        sender: *sender,
        recipient: w.recipient,
        sealed: seal::seal(
            &w.keys[sender],
            &PublicKey::from(&w.recipient_key),
            &ad,
            body,
            rng,
        )
        .unwrap(),
    }
}

fn body_of(w: &World, s: &Session, c: &Contribution) -> Vec<u8> {
    let pk = PublicKey::from(&w.keys[&c.sender]);
    let ad = associated_data(&s.context(), &c.sender, &w.recipient);
    seal::open(&w.recipient_key, &pk, &ad, &c.sealed)
        .unwrap()
        .to_vec()
}

#[test]
fn replayed_or_tampered_contributions_are_rejected() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let w = world(5, 3, &mut rng);
    let s = w.session(&w.holders[..3], 10);
    let cs = w.contributions(&s, &mut rng);
    // Another leaf / epoch / session id / quorum: rejected.
    let mut other_leaf = s.clone();
    other_leaf.leaf = 11;
    let mut other_epoch = s.clone();
    other_epoch.epoch = 4;
    let mut other_id = s.clone();
    other_id.session_id = [8; 32];
    let other_quorum = w.session(&w.holders[1..4], 10);
    for other in [&other_leaf, &other_epoch, &other_id, &other_quorum] {
        let err = open_contribution(other, &w.recipient_key, &cs[1]).unwrap_err();
        assert!(
            matches!(err, ReconstructError::WrongSession(m) if m == w.holders[1])
                || matches!(err, ReconstructError::NotInQuorum(_)),
            "{err:?}"
        );
    }
    // A replayed header rewritten to the new context still fails to authenticate.
    let mut rewritten = cs[1].clone();
    rewritten.context = other_leaf.context();
    assert!(matches!(
        open_contribution(&other_leaf, &w.recipient_key, &rewritten).unwrap_err(),
        ReconstructError::Seal {
            error: SealError::Authentication,
            ..
        }
    ));
    // Tampered ciphertext.
    let mut t = cs[2].clone();
    t.sealed.ciphertext[5] ^= 0x40;
    assert!(matches!(
        open_contribution(&s, &w.recipient_key, &t).unwrap_err(),
        ReconstructError::Seal {
            error: SealError::Authentication,
            ..
        }
    ));
    // Claimed sender swapped: does not authenticate under the other sender's key.
    let mut t = cs[2].clone();
    t.sender = w.holders[0];
    assert!(matches!(
        open_contribution(&s, &w.recipient_key, &t).unwrap_err(),
        ReconstructError::Seal { .. }
    ));
    // Unknown sender.
    let mut t = cs[2].clone();
    t.sender = MemberId([0x99; 32]);
    assert_eq!(
        open_contribution(&s, &w.recipient_key, &t).unwrap_err(),
        ReconstructError::NotInQuorum(MemberId([0x99; 32]))
    );
    // Wire round trip keeps it valid; the untouched set still combines.
    let cs: Vec<Contribution> = cs.iter().map(roundtrip).collect();
    let opened = w.open_all(&s, &cs);
    assert!(combine(&s, &w.dealing.commitment, &opened)
        .unwrap()
        .ct_eq(&w.secret));
    // Duplicate and missing contributions.
    let dup = vec![opened[0].clone(), opened[0].clone(), opened[1].clone()];
    assert_eq!(
        combine(&s, &w.dealing.commitment, &dup).unwrap_err(),
        ReconstructError::Duplicate(w.holders[0])
    );
    assert_eq!(
        combine(&s, &w.dealing.commitment, &opened[..2]).unwrap_err(),
        ReconstructError::Missing(vec![w.holders[2]])
    );
}

#[test]
fn holder_side_input_errors() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let w = world(4, 2, &mut rng);
    let s = w.session(&w.holders[..2], 0);
    let (a, b, c) = (w.holders[0], w.holders[1], w.holders[2]);
    assert!(matches!(
        contribute(&s, &w.holders, 2, &a, &w.keys[&a], w.share(&b), &mut rng),
        Err(ReconstructError::WrongShare { .. })
    ));
    assert_eq!(
        w.contribute(&s, &c, &mut rng).unwrap_err(),
        ReconstructError::NotInQuorum(c)
    );
    assert_eq!(
        contribute(&s, &w.holders, 2, &a, &w.keys[&b], w.share(&a), &mut rng).unwrap_err(),
        ReconstructError::KeyMismatch(a)
    );
    let mut bad = s.clone();
    bad.quorum.swap(0, 1);
    assert!(matches!(
        w.contribute(&bad, &a, &mut rng),
        Err(ReconstructError::InvalidQuorum(_))
    ));
    // Commitment threshold must match the quorum size.
    let s3 = w.session(&w.holders[..3], 0);
    assert_eq!(
        combine(&s3, &w.dealing.commitment, &[]).unwrap_err(),
        ReconstructError::QuorumSize { quorum: 3, k: 2 }
    );
}

#[test]
fn culprit_is_excluded_and_retry_succeeds() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let w = world(5, 3, &mut rng);
    let q = next_quorum(&w.holders, &BTreeSet::new(), 3).unwrap();
    let s = w.session(&q, 1);
    let mut cs = w.contributions(&s, &mut rng);
    // q[1] adds 1 to its value.
    let mut body = body_of(&w, &s, &cs[1]);
    let mut v = [0u8; 32];
    v.copy_from_slice(&body[..32]);
    let v = Scalar::from_canonical_bytes(v).unwrap() + Scalar::ONE;
    body[..32].copy_from_slice(&v.to_bytes());
    cs[1] = forge(&w, &s, &q[1], &body, &mut rng);
    let err = combine(&s, &w.dealing.commitment, &w.open_all(&s, &cs)).unwrap_err();
    let ReconstructError::Faulty(report) = err else {
        panic!("{err:?}")
    };
    assert_eq!(report.culprits, vec![q[1]]);
    assert!(report.disputes.is_empty());
    let q2 = next_quorum(&w.holders, &report.excluded(), 3).unwrap();
    assert!(!q2.contains(&q[1]));
    let s2 = w.session(&q2, 1);
    let cs2 = w.contributions(&s2, &mut rng);
    assert!(combine(&s2, &w.dealing.commitment, &w.open_all(&s2, &cs2))
        .unwrap()
        .ct_eq(&w.secret));
    // Malformed bodies are culprits too.
    let short = forge(&w, &s, &q[2], &body[..40], &mut rng);
    assert_eq!(
        open_contribution(&s, &w.recipient_key, &short).unwrap_err(),
        ReconstructError::Faulty(FaultReport {
            culprits: vec![q[2]],
            disputes: vec![]
        })
    );
    let mut noncanon = body.clone();
    noncanon[..32].copy_from_slice(&[0xff; 32]);
    let nc = forge(&w, &s, &q[2], &noncanon, &mut rng);
    assert!(matches!(
        open_contribution(&s, &w.recipient_key, &nc).unwrap_err(),
        ReconstructError::Faulty(_)
    ));
    // Too few holders left.
    let all: BTreeSet<MemberId> = w.holders[..3].iter().copied().collect();
    assert!(next_quorum(&w.holders, &all, 3).is_err());
}

#[test]
fn consistent_lie_about_a_mask_is_a_dispute_containing_the_liar() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let w = world(5, 3, &mut rng);
    let q = w.holders[..3].to_vec();
    let s = w.session(&q, 2);
    let mut cs = w.contributions(&s, &mut rng);
    // q[2] replaces its mask with q[0] by m' (and adjusts its value consistently), so its own
    // equation still holds: only the cross-check can catch it.
    let mut body = body_of(&w, &s, &cs[2]);
    let mut v = [0u8; 32];
    v.copy_from_slice(&body[..32]);
    let delta = Scalar::from(5u64);
    // q[2] > q[0], so its sign for that pair is −1: c' = c − δ pairs with M' = M + δ·G.
    let v = Scalar::from_canonical_bytes(v).unwrap() - delta;
    body[..32].copy_from_slice(&v.to_bytes());
    let mut m = [0u8; 32];
    m.copy_from_slice(&body[32..64]);
    let m = CompressedRistretto(m).decompress().unwrap() + &delta * RISTRETTO_BASEPOINT_TABLE;
    body[32..64].copy_from_slice(&m.compress().to_bytes());
    cs[2] = forge(&w, &s, &q[2], &body, &mut rng);
    let err = combine(&s, &w.dealing.commitment, &w.open_all(&s, &cs)).unwrap_err();
    let ReconstructError::Faulty(report) = err else {
        panic!("{err:?}")
    };
    assert!(report.culprits.is_empty());
    assert_eq!(report.disputes, vec![(q[0], q[2])]);
    assert!(report.excluded().contains(&q[2]));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn masked_equals_plain_and_corruption_is_attributed(
        seed in any::<u64>(), r in 2usize..6, k_off in 0usize..4, bad in any::<usize>()
    ) {
        let k = 2 + k_off % (r - 1);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let w = world(r, k, &mut rng);
        // Quorum: the last k holders.
        let q: Vec<MemberId> = w.holders[r - k..].to_vec();
        let s = w.session(&q, seed);
        let cs = w.contributions(&s, &mut rng);
        let masked = combine(&s, &w.dealing.commitment, &w.open_all(&s, &cs)).unwrap();
        let plain_shares: Vec<Share> = q.iter().map(|m| w.share(m).clone()).collect();
        let plain = reconstruct(&plain_shares, k).unwrap();
        prop_assert!(masked.ct_eq(&plain));
        prop_assert!(masked.ct_eq(&w.secret));

        // Corrupt one sender's value by a random nonzero amount.
        let b = bad % k;
        let mut cs = cs;
        let mut body = body_of(&w, &s, &cs[b]);
        let mut v = [0u8; 32];
        v.copy_from_slice(&body[..32]);
        let v = Scalar::from_canonical_bytes(v).unwrap() + Scalar::from(1 + seed % 1000);
        body[..32].copy_from_slice(&v.to_bytes());
        cs[b] = forge(&w, &s, &q[b], &body, &mut rng);
        let err = combine(&s, &w.dealing.commitment, &w.open_all(&s, &cs)).unwrap_err();
        prop_assert_eq!(
            err,
            ReconstructError::Faulty(FaultReport { culprits: vec![q[b]], disputes: vec![] })
        );
    }
}

/// A holder refuses every quorum that would let the recipient (or whoever holds a repeated
/// key) strip its masks: these all passed before the checks existed.
#[test]
fn unsafe_quorums_are_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let w = world(5, 2, &mut rng);
    let (a, b) = (w.holders[0], w.holders[1]);
    let participant = |m: &MemberId, key: [u8; 32]| Participant {
        member: *m,
        x25519: key,
    };
    let key_of = |m: &MemberId| PublicKey::from(&w.keys[m]).to_bytes();
    // A one-member quorum: λ = 1 and no mask, the raw share would leave.
    let s1 = w.session(&w.holders[..1], 0);
    assert_eq!(
        w.contribute(&s1, &a, &mut rng).unwrap_err(),
        ReconstructError::QuorumSize { quorum: 1, k: 2 }
    );
    // A 1-threshold leaf is never reconstructed by MPC.
    assert_eq!(
        contribute(&s1, &w.holders, 1, &a, &w.keys[&a], w.share(&a), &mut rng).unwrap_err(),
        ReconstructError::ThresholdTooLow(1)
    );
    // A quorum larger than the threshold.
    let s3 = w.session(&w.holders[..3], 0);
    assert_eq!(
        w.contribute(&s3, &a, &mut rng).unwrap_err(),
        ReconstructError::QuorumSize { quorum: 3, k: 2 }
    );
    // Padded with an identity that is no holder of the leaf (here: carrying the recipient's
    // key, so the recipient would strip a's mask).
    let sybil = MemberId([0xff; 32]);
    let padded = Session::new(
        [7; 32],
        3,
        0,
        participant(&w.recipient, PublicKey::from(&w.recipient_key).to_bytes()),
        vec![
            participant(&a, key_of(&a)),
            participant(&sybil, PublicKey::from(&w.recipient_key).to_bytes()),
        ],
    )
    .unwrap();
    assert_eq!(
        w.contribute(&padded, &a, &mut rng).unwrap_err(),
        ReconstructError::NotAHolder(sybil)
    );
    // Even if that identity were listed as a holder, its key is the recipient's.
    let mut listed = w.holders.clone();
    listed.push(sybil);
    assert_eq!(
        contribute(&padded, &listed, 2, &a, &w.keys[&a], w.share(&a), &mut rng).unwrap_err(),
        ReconstructError::SharedKey(w.recipient, sybil)
    );
    // A holder carrying the recipient's key.
    let same_as_recipient = Session::new(
        [7; 32],
        3,
        0,
        participant(&w.recipient, key_of(&b)),
        vec![participant(&a, key_of(&a)), participant(&b, key_of(&b))],
    )
    .unwrap();
    assert_eq!(
        w.contribute(&same_as_recipient, &a, &mut rng).unwrap_err(),
        ReconstructError::SharedKey(w.recipient, b)
    );
    // Two quorum members with one key (b registered a's key).
    let twins = Session::new(
        [7; 32],
        3,
        0,
        participant(&w.recipient, PublicKey::from(&w.recipient_key).to_bytes()),
        vec![participant(&a, key_of(&a)), participant(&b, key_of(&a))],
    )
    .unwrap();
    assert_eq!(
        w.contribute(&twins, &a, &mut rng).unwrap_err(),
        ReconstructError::SharedKey(a, b)
    );
    // The recipient in its own quorum.
    let own = Session::new(
        [7; 32],
        3,
        0,
        participant(&b, key_of(&b)),
        vec![participant(&a, key_of(&a)), participant(&b, key_of(&b))],
    )
    .unwrap();
    assert_eq!(
        w.contribute(&own, &a, &mut rng).unwrap_err(),
        ReconstructError::RecipientInQuorum(b)
    );
    // The honest shape still works.
    let ok = w.session(&[a, b], 0);
    assert!(w.contribute(&ok, &a, &mut rng).is_ok());
}
