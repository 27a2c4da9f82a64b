//! Tests of `reconstruct`: masked reconstruction equals plain interpolation, replayed,
//! tampered and unsigned contributions are rejected, unsafe quorums are refused, a culprit or a
//! lying pair is attributed, and blame evidence convicts exactly the faulty member (forged
//! evidence, evidence about another session and evidence against an honest holder are refused).

use super::blame::{
    answer_dispute, blame_contribution, judge_contribution, judge_dispute, BlameError,
    BlameEvidence,
};
use super::*;
use crate::seal::RevealedSecret;
use crate::shamir::tests::roundtrip;
use crate::shamir::{deal, reconstruct, Dealing, EncodedCommitment};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

struct World {
    holders: Vec<MemberId>,
    keys: BTreeMap<MemberId, StaticSecret>,
    ids: BTreeMap<MemberId, SigningKey>,
    recipient: MemberId,
    recipient_key: StaticSecret,
    secret: LeafSecret,
    dealing: Dealing,
}

fn world(r: usize, k: usize, rng: &mut ChaCha20Rng) -> World {
    let ids: BTreeMap<MemberId, SigningKey> = (0..r)
        .map(|_| {
            let key = SigningKey::generate(&mut *rng);
            (MemberId(key.verifying_key().to_bytes()), key)
        })
        .collect();
    let holders: Vec<MemberId> = ids.keys().copied().collect();
    let keys = holders
        .iter()
        .map(|m| (*m, StaticSecret::random_from_rng(&mut *rng)))
        .collect();
    let secret = LeafSecret::random(rng);
    let dealing = deal(&secret, &holders, k, rng).unwrap();
    World {
        holders,
        keys,
        ids,
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
    fn hk(&self, m: &MemberId) -> HolderKeys<'_> {
        HolderKeys::new(*m, &self.keys[m], &self.ids[m])
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
        contribute(s, &self.holders, self.k(), self.hk(m), self.share(m), rng)
    }
    fn faulty(
        &self,
        s: &Session,
        m: &MemberId,
        fault: ContributionFault,
        rng: &mut ChaCha20Rng,
    ) -> Contribution {
        contribute_cached(
            s,
            &self.holders,
            self.k(),
            self.hk(m),
            self.share(m),
            fault,
            None,
            rng,
        )
        .unwrap()
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
    fn encoded(&self) -> EncodedCommitment {
        self.dealing.commitment.encoded().clone()
    }
}

/// Seals and signs a hand-made body and mask list as `sender` would (to forge
/// well-authenticated bad contributions).
fn forge(
    w: &World,
    s: &Session,
    sender: &MemberId,
    body: &[u8],
    masks: Vec<[u8; 32]>,
    rng: &mut ChaCha20Rng,
) -> Contribution {
    let ad = associated_data(&s.context(), sender, &w.recipient);
    let mut c = Contribution {
        context: s.context(),
        sender: *sender,
        recipient: w.recipient,
        masks,
        sealed: seal::seal_ephemeral(&PublicKey::from(&w.recipient_key), &ad, body, rng).unwrap(),
        signature: Vec::new(),
    };
    resign(w, &mut c);
    c
}

fn resign(w: &World, c: &mut Contribution) {
    c.signature = w.ids[&c.sender]
        .sign(&c.signed_message())
        .to_bytes()
        .to_vec();
}

fn value_of(w: &World, s: &Session, c: &Contribution) -> Scalar {
    let ad = associated_data(&s.context(), &c.sender, &w.recipient);
    let body = seal::open_ephemeral(&w.recipient_key, &ad, &c.sealed).unwrap();
    parse_value(&body).unwrap()
}

fn culprit(m: MemberId) -> ReconstructError {
    ReconstructError::Faulty(FaultReport {
        culprits: vec![m],
        disputes: vec![],
    })
}

#[test]
fn replayed_tampered_or_unsigned_contributions_are_rejected() {
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
        assert_eq!(
            open_contribution(other, &w.recipient_key, &cs[1]).unwrap_err(),
            ReconstructError::WrongSession(w.holders[1])
        );
    }
    // Opened with a key other than the one the session names for the recipient: our key is
    // wrong, the honest sender is not blamed (the box is opened as sealed to the session's
    // key, and only if it does not open is our own key checked).
    let wrong_key = StaticSecret::random_from_rng(&mut rng);
    assert_eq!(
        open_contribution(&s, &wrong_key, &cs[1]).unwrap_err(),
        ReconstructError::KeyMismatch(s.recipient.member)
    );
    assert!(open_contribution(&s, &w.recipient_key, &cs[1]).is_ok());
    // A replayed header rewritten to the new context is no longer signed.
    let mut rewritten = cs[1].clone();
    rewritten.context = other_leaf.context();
    assert_eq!(
        open_contribution(&other_leaf, &w.recipient_key, &rewritten).unwrap_err(),
        ReconstructError::BadSignature(w.holders[1])
    );
    // Tampered ciphertext, mask commitment or signature; claimed sender swapped.
    let mut t = cs[2].clone();
    t.sealed.ciphertext[5] ^= 0x40;
    let mut m = cs[2].clone();
    m.masks[0][0] ^= 1;
    let mut g = cs[2].clone();
    g.signature[3] ^= 1;
    let mut swapped = cs[2].clone();
    swapped.sender = w.holders[0];
    for (bad, who) in [(t, 2), (m, 2), (g, 2), (swapped, 0)] {
        assert_eq!(
            open_contribution(&s, &w.recipient_key, &bad).unwrap_err(),
            ReconstructError::BadSignature(w.holders[who])
        );
    }
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
        contribute(&s, &w.holders, 2, w.hk(&a), w.share(&b), &mut rng),
        Err(ReconstructError::WrongShare { .. })
    ));
    assert_eq!(
        w.contribute(&s, &c, &mut rng).unwrap_err(),
        ReconstructError::NotInQuorum(c)
    );
    let wrong_x = HolderKeys::new(a, &w.keys[&b], &w.ids[&a]);
    assert_eq!(
        contribute(&s, &w.holders, 2, wrong_x, w.share(&a), &mut rng).unwrap_err(),
        ReconstructError::KeyMismatch(a)
    );
    let mut wrong_id = w.hk(&a);
    wrong_id.identity = &w.ids[&b];
    assert_eq!(
        contribute(&s, &w.holders, 2, wrong_id, w.share(&a), &mut rng).unwrap_err(),
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
    // Keys print redacted.
    assert!(!format!("{:?}", w.hk(&a)).contains(&format!("{:?}", w.ids[&a].to_bytes())));
}

#[test]
fn culprit_is_excluded_and_retry_succeeds() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let w = world(5, 3, &mut rng);
    let q = next_quorum(&w.holders, &BTreeSet::new(), 3).unwrap();
    let s = w.session(&q, 1);
    let mut cs = w.contributions(&s, &mut rng);
    // q[1] adds 1 to its value.
    cs[1] = w.faulty(&s, &q[1], ContributionFault::WrongValue, &mut rng);
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
    // Signed but malformed contributions are culprits: a short body, a non-canonical value,
    // a wrong number of mask commitments, a mask commitment that is no point, a box that
    // does not open.
    let v = value_of(&w, &s, &cs[2]).to_bytes();
    let masks = cs[2].masks.clone();
    let mut not_a_point = masks.clone();
    not_a_point[0] = [0xff; 32];
    let mut no_open = w.contribute(&s, &q[2], &mut rng).unwrap();
    no_open.sealed.ciphertext[0] ^= 1;
    resign(&w, &mut no_open);
    for bad in [
        forge(&w, &s, &q[2], &v[..31], masks.clone(), &mut rng),
        forge(&w, &s, &q[2], &[0xff; 32], masks.clone(), &mut rng),
        forge(&w, &s, &q[2], &v, masks[..1].to_vec(), &mut rng),
        forge(&w, &s, &q[2], &v, not_a_point, &mut rng),
        no_open,
    ] {
        assert_eq!(
            open_contribution(&s, &w.recipient_key, &bad).unwrap_err(),
            culprit(q[2])
        );
    }
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
    // q[2] lies about every mask and adjusts its value so its own equation holds: only the
    // cross-check can catch it.
    cs[2] = w.faulty(&s, &q[2], ContributionFault::DisputeEveryone, &mut rng);
    let err = combine(&s, &w.dealing.commitment, &w.open_all(&s, &cs)).unwrap_err();
    let ReconstructError::Faulty(report) = err else {
        panic!("{err:?}")
    };
    assert!(report.culprits.is_empty());
    assert_eq!(report.disputes, vec![(q[0], q[2]), (q[1], q[2])]);
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
        let v = value_of(&w, &s, &cs[b]) + Scalar::from(1 + seed % 1000);
        let masks = cs[b].masks.clone();
        cs[b] = forge(&w, &s, &q[b], &v.to_bytes(), masks, &mut rng);
        let evidence = blame_contribution(
            &s, &w.recipient_key, &cs[b], w.encoded(), vec![], &mut rng
        ).unwrap();
        let BlameEvidence::BadContribution { contribution, reveal, .. } = &evidence else {
            panic!()
        };
        prop_assert!(judge_contribution(&s, &w.dealing.commitment, contribution, reveal.as_ref()).is_ok());
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
        contribute(&s1, &w.holders, 1, w.hk(&a), w.share(&a), &mut rng).unwrap_err(),
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
        contribute(&padded, &listed, 2, w.hk(&a), w.share(&a), &mut rng).unwrap_err(),
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
    // The recipient in its own quorum under another key than the one it receives with.
    let own_other_key = Session::new(
        [7; 32],
        3,
        0,
        participant(&b, PublicKey::from(&w.recipient_key).to_bytes()),
        vec![participant(&a, key_of(&a)), participant(&b, key_of(&b))],
    )
    .unwrap();
    assert_eq!(
        w.contribute(&own_other_key, &a, &mut rng).unwrap_err(),
        ReconstructError::KeyMismatch(b)
    );
    // A recipient that holds the leaf may be in the quorum under its own key.
    let own = Session::new(
        [7; 32],
        3,
        0,
        participant(&b, key_of(&b)),
        vec![participant(&a, key_of(&a)), participant(&b, key_of(&b))],
    )
    .unwrap();
    assert!(w.contribute(&own, &a, &mut rng).is_ok());
    // The honest shape still works.
    let ok = w.session(&[a, b], 0);
    assert!(w.contribute(&ok, &a, &mut rng).is_ok());
}

fn rejected(r: Result<impl std::fmt::Debug, BlameError>) -> &'static str {
    match r {
        Err(BlameError::Rejected(why)) => why,
        Ok(v) => panic!("accepted: {v:?}"),
    }
}

/// A recipient's evidence of a bad contribution convicts its sender; forged evidence, evidence
/// about another session and evidence against an honest holder are refused.
#[test]
fn bad_contribution_evidence_is_judged() {
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    let w = world(5, 3, &mut rng);
    let q = w.holders[..3].to_vec();
    let s = w.session(&q, 4);
    let bad = w.faulty(&s, &q[1], ContributionFault::WrongValue, &mut rng);
    assert_eq!(
        open_contribution(&s, &w.recipient_key, &bad)
            .map(|_| ())
            .and_then(|_| combine(
                &s,
                &w.dealing.commitment,
                &w.open_all(
                    &s,
                    &[
                        w.contribute(&s, &q[0], &mut rng).unwrap(),
                        bad.clone(),
                        w.contribute(&s, &q[2], &mut rng).unwrap()
                    ]
                )
            )
            .map(|_| ())),
        Err(culprit(q[1]))
    );
    let evidence =
        blame_contribution(&s, &w.recipient_key, &bad, w.encoded(), vec![], &mut rng).unwrap();
    let evidence: BlameEvidence = roundtrip(&evidence);
    let BlameEvidence::BadContribution {
        quorum,
        contribution,
        reveal,
        ..
    } = &evidence
    else {
        panic!()
    };
    assert_eq!(*quorum, q);
    let reveal = reveal.unwrap();
    let c = &w.dealing.commitment;
    assert_eq!(
        judge_contribution(&s, c, contribution, Some(&reveal)),
        Ok("contribution contradicts the leaf's commitment")
    );
    // No reveal, or a reveal by someone else (a forgery): refused.
    assert_eq!(
        rejected(judge_contribution(&s, c, contribution, None)),
        "no reveal of the box"
    );
    let forged = seal::reveal_ephemeral(&w.keys[&q[0]], &contribution.sealed, &mut rng).unwrap();
    assert_eq!(
        rejected(judge_contribution(&s, c, contribution, Some(&forged))),
        "reveal does not verify"
    );
    let mut flipped = reveal.to_bytes();
    flipped[40] ^= 1;
    assert!(judge_contribution(
        &s,
        c,
        contribution,
        Some(&RevealedSecret::from_bytes(&flipped))
    )
    .is_err());
    // Altered evidence: no longer the sender's signature.
    let mut altered = contribution.clone();
    altered.masks[0][1] ^= 1;
    assert_eq!(
        rejected(judge_contribution(&s, c, &altered, Some(&reveal))),
        "contribution not signed by its sender"
    );
    // The same contribution judged as another session's (other leaf, other quorum).
    let other_leaf = w.session(&q, 5);
    assert_eq!(
        rejected(judge_contribution(
            &other_leaf,
            c,
            contribution,
            Some(&reveal)
        )),
        "contribution for another session"
    );
    let other_quorum = w.session(&[q[0], q[1], w.holders[3]], 4);
    assert_eq!(
        rejected(judge_contribution(
            &other_quorum,
            c,
            contribution,
            Some(&reveal)
        )),
        "contribution for another session"
    );
    // Against an honest holder: its contribution is correct, whatever the recipient reveals.
    for honest in [&q[0], &q[2]] {
        let good = w.contribute(&s, honest, &mut rng).unwrap();
        let BlameEvidence::BadContribution { reveal, .. } =
            blame_contribution(&s, &w.recipient_key, &good, w.encoded(), vec![], &mut rng).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            rejected(judge_contribution(&s, c, &good, reveal.as_ref())),
            "contribution is correct"
        );
    }
    // Another dealing's commitment of the same threshold does not convict an honest holder
    // either... it would: the ledger only takes the commitment under the sector's root.
    // A commitment of another threshold is refused.
    let (_, other) = {
        let secret = LeafSecret::random(&mut rng);
        (0, deal(&secret, &w.holders, 2, &mut rng).unwrap())
    };
    assert_eq!(
        rejected(judge_contribution(
            &s,
            &other.commitment,
            contribution,
            Some(&reveal)
        )),
        "commitment of another threshold"
    );
    // Malformed signed contributions convict without opening anything.
    let v = value_of(&w, &s, &bad).to_bytes();
    let short = forge(&w, &s, &q[1], &v, bad.masks[..1].to_vec(), &mut rng);
    assert_eq!(
        judge_contribution(&s, c, &short, None),
        Ok("malformed mask commitments")
    );
    let mut bad_eph = forge(&w, &s, &q[1], &v, bad.masks.clone(), &mut rng);
    bad_eph.sealed.ephemeral = [0; 32];
    resign(&w, &mut bad_eph);
    assert_eq!(
        judge_contribution(&s, c, &bad_eph, None),
        Ok("invalid ephemeral key")
    );
    // A signed box that does not open, and a body that is no scalar.
    let mut no_open = w.contribute(&s, &q[1], &mut rng).unwrap();
    no_open.sealed.ciphertext[0] ^= 1;
    resign(&w, &mut no_open);
    let r = seal::reveal_ephemeral(&w.recipient_key, &no_open.sealed, &mut rng).unwrap();
    assert_eq!(
        judge_contribution(&s, c, &no_open, Some(&r)),
        Ok("box does not open")
    );
    let garbage = forge(&w, &s, &q[1], &[0xff; 32], bad.masks.clone(), &mut rng);
    let r = seal::reveal_ephemeral(&w.recipient_key, &garbage.sealed, &mut rng).unwrap();
    assert_eq!(
        judge_contribution(&s, c, &garbage, Some(&r)),
        Ok("malformed body")
    );
}

/// A dispute-everyone liar: each honest member's answer convicts it alone; the liar cannot
/// answer, a false reveal and a non-dispute are refused, and honest pairs never dispute.
#[test]
fn mask_disputes_convict_only_the_liar() {
    let mut rng = ChaCha20Rng::seed_from_u64(22);
    let w = world(5, 3, &mut rng);
    let q = w.holders[..3].to_vec();
    let s = w.session(&q, 6);
    let liar = q[1];
    let cs: Vec<Contribution> = q
        .iter()
        .map(|m| {
            if *m == liar {
                w.faulty(&s, m, ContributionFault::DisputeEveryone, &mut rng)
            } else {
                w.contribute(&s, m, &mut rng).unwrap()
            }
        })
        .collect();
    let ReconstructError::Faulty(report) =
        combine(&s, &w.dealing.commitment, &w.open_all(&s, &cs)).unwrap_err()
    else {
        panic!()
    };
    assert_eq!(report.disputes, vec![(q[0], liar), (liar, q[2])]);
    for honest in [0usize, 2] {
        let evidence = answer_dispute(&s, w.hk(&q[honest]), &cs[honest], &cs[1], &mut rng).unwrap();
        let evidence: BlameEvidence = roundtrip(&evidence);
        let BlameEvidence::MaskDispute {
            mine,
            theirs,
            reveal,
            ..
        } = &evidence
        else {
            panic!()
        };
        assert_eq!(judge_dispute(&s, mine, theirs, reveal), Ok(vec![liar]));
        // Judged as another session's: refused.
        let other = w.session(&q, 7);
        assert_eq!(
            rejected(judge_dispute(&other, mine, theirs, reveal)),
            "contribution for another session"
        );
        // The reveal claimed by the liar's side (swapped roles), or a reveal of another pair.
        assert_eq!(
            rejected(judge_dispute(&s, theirs, mine, reveal)),
            "pair reveal does not verify"
        );
        let other_pair = seal::reveal_pairwise(
            &w.keys[&q[honest]],
            &PublicKey::from(&w.keys[&w.holders[4]]).to_bytes(),
            &mut rng,
        )
        .unwrap();
        assert_eq!(
            rejected(judge_dispute(&s, mine, theirs, &other_pair)),
            "pair reveal does not verify"
        );
        // A forged "theirs": not signed by the liar.
        let mut forged = theirs.clone();
        forged.masks[0] = mine.masks[0];
        assert_eq!(
            rejected(judge_dispute(&s, mine, &forged, reveal)),
            "contribution not signed by its sender"
        );
    }
    // The liar cannot answer: its own claim is wrong.
    assert_eq!(
        answer_dispute(&s, w.hk(&liar), &cs[1], &cs[0], &mut rng).unwrap_err(),
        ReconstructError::NoDispute(q[0])
    );
    // Even if it reveals, its reveal convicts itself only.
    let r = seal::reveal_pairwise(
        &w.keys[&liar],
        &PublicKey::from(&w.keys[&q[0]]).to_bytes(),
        &mut rng,
    )
    .unwrap();
    assert_eq!(judge_dispute(&s, &cs[1], &cs[0], &r), Ok(vec![liar]));
    // Honest members do not dispute, so neither answers nor a judgement convicts.
    assert_eq!(
        answer_dispute(&s, w.hk(&q[0]), &cs[0], &cs[2], &mut rng).unwrap_err(),
        ReconstructError::NoDispute(q[2])
    );
    let r = seal::reveal_pairwise(
        &w.keys[&q[0]],
        &PublicKey::from(&w.keys[&q[2]]).to_bytes(),
        &mut rng,
    )
    .unwrap();
    assert_eq!(
        rejected(judge_dispute(&s, &cs[0], &cs[2], &r)),
        "the two claims agree: no dispute"
    );
    // One's own contribution twice.
    assert_eq!(
        rejected(judge_dispute(&s, &cs[0], &cs[0], &r)),
        "both contributions are from one member"
    );
    // The answer is for our own contribution only.
    assert_eq!(
        answer_dispute(&s, w.hk(&q[2]), &cs[0], &cs[1], &mut rng).unwrap_err(),
        ReconstructError::NoDispute(liar)
    );
}

/// Contributions made with each holder's cached pair points are the contributions made
/// without: they combine to the secret, and a cache holding a wrong point makes a mask that
/// no peer agrees with (a dispute), never a wrong secret.
#[test]
fn cached_pair_points_give_the_same_masks_and_a_wrong_one_is_caught() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let w = world(5, 3, &mut rng);
    let q = next_quorum(&w.holders, &BTreeSet::new(), 3).unwrap();
    let s = w.session(&q, 2);
    let cached = |m: &MemberId, wrong: bool, rng: &mut ChaCha20Rng| {
        let mut pairs = PairPoints::new();
        for p in &s.quorum {
            if p.member != *m {
                let mut point = crate::seal::pairwise_point(&w.keys[m], &p.x25519).unwrap();
                if wrong {
                    point[0] ^= 1;
                }
                pairs.insert(p.x25519, point);
            }
        }
        let c = contribute_cached(
            &s,
            &w.holders,
            w.k(),
            w.hk(m),
            w.share(m),
            ContributionFault::None,
            Some(&pairs),
            rng,
        )
        .unwrap();
        let plain = w.contribute(&s, m, rng).unwrap();
        assert_eq!(
            c.masks == plain.masks,
            !wrong,
            "the masks are the pairs' own"
        );
        c
    };
    let cs: Vec<Contribution> = q.iter().map(|m| cached(m, false, &mut rng)).collect();
    assert!(combine(&s, &w.dealing.commitment, &w.open_all(&s, &cs))
        .unwrap()
        .ct_eq(&w.secret));
    let mut bad = cs.clone();
    bad[0] = cached(&q[0], true, &mut rng);
    let ReconstructError::Faulty(report) =
        combine(&s, &w.dealing.commitment, &w.open_all(&s, &bad)).unwrap_err()
    else {
        panic!("a wrong cached point went unnoticed")
    };
    assert!(report
        .disputes
        .iter()
        .any(|(a, b)| *a == q[0] || *b == q[0]));
}
