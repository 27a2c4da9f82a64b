use std::collections::BTreeMap;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::dkg::run_in_memory;
use crate::seed_tree::Branch;
use crate::shamir::LeafSecret;

/// A seed's first leaf secret, to compare seeds without exposing them.
fn leaf0(seed: BranchSeed) -> LeafSecret {
    Branch::new(seed, 3, 2)
        .expect("branch")
        .leaf_seed(0)
        .expect("leaf")
}

struct Validator {
    sk: SigningKey,
    x: StaticSecret,
}

impl Validator {
    fn id(&self) -> MemberId {
        MemberId(self.sk.verifying_key().to_bytes())
    }
    fn recipient(&self) -> Recipient {
        Recipient {
            id: self.id(),
            x25519: PublicKey::from(&self.x).to_bytes(),
        }
    }
}

fn setup() -> (
    ChaCha20Rng,
    Vec<Validator>,
    BTreeMap<MemberId, KeyPackage>,
    PublicKeyPackage,
) {
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    let vs: Vec<Validator> = (0..5)
        .map(|_| Validator {
            sk: SigningKey::generate(&mut rng),
            x: StaticSecret::random_from_rng(&mut rng),
        })
        .collect();
    let ids: Vec<MemberId> = vs.iter().map(Validator::id).collect();
    let (keys, public) = run_in_memory(&ids, 4, &mut rng).expect("dkg");
    (rng, vs, keys, public)
}

/// Branch 3 of key `[2; 16]` on chain `[1; 32]`, owned by `owner`.
fn branch_of(owner: &Validator) -> BranchId {
    BranchId {
        chain: [1; 32],
        key_id: [2; 16],
        branch: 3,
        owner: owner.id(),
    }
}

#[test]
fn any_t_partials_give_the_same_seed_only_the_owner_reads_them() {
    let (mut rng, vs, keys, public) = setup();
    let owner = &vs[0];
    let id = branch_of(owner);
    let envelopes: Vec<PartialEnvelope> = vs
        .iter()
        .map(|v| {
            seal_partial(id, &v.sk, &keys[&v.id()], owner.recipient(), &mut rng).expect("seal")
        })
        .collect();
    let partials: Vec<Partial> = envelopes
        .iter()
        .map(|e| open_partial(e, &id, &owner.id(), &owner.x, &public).expect("open"))
        .collect();
    let a = combine(&id, &public, &partials[..4]).expect("combine");
    let b = combine(&id, &public, &partials[1..]).expect("combine");
    assert!(leaf0(a.clone()).ct_eq(&leaf0(b)));
    // The seed is the threshold PRF of the branch input, as the simulation computes it.
    let direct = tprf::combine(&public, &id.prf_input(), &partials[..4]).expect("tprf");
    assert!(leaf0(a.clone()).ct_eq(&leaf0(BranchSeed::from_bytes(direct))));
    // Fewer than t partials are not enough.
    assert!(matches!(
        combine(&id, &public, &partials[..3]),
        Err(BranchSeedError::Tprf(TprfError::NotEnough { .. }))
    ));
    // Another validator cannot open the owner's envelopes.
    assert!(matches!(
        open_partial(&envelopes[1], &id, &vs[2].id(), &vs[2].x, &public),
        Err(BranchSeedError::WrongContext("owner"))
    ));
    let mut misaddressed = envelopes[1].clone();
    misaddressed.id.owner = vs[2].id();
    assert!(open_partial(&misaddressed, &id, &vs[2].id(), &vs[2].x, &public).is_err());
    // Another branch's seed differs.
    let other = BranchId { branch: 4, ..id };
    let others: Vec<Partial> = vs
        .iter()
        .take(4)
        .map(|v| {
            let e = seal_partial(other, &v.sk, &keys[&v.id()], owner.recipient(), &mut rng)
                .expect("seal");
            open_partial(&e, &other, &owner.id(), &owner.x, &public).expect("open")
        })
        .collect();
    let c = combine(&other, &public, &others).expect("combine");
    assert!(!leaf0(a.clone()).ct_eq(&leaf0(c)));
    // The same branch for another owner (after a conviction) has another seed: the first
    // owner's partials tell it nothing about the new one.
    let next = &vs[1];
    let reassigned = branch_of(next);
    let theirs: Vec<Partial> = vs
        .iter()
        .take(4)
        .map(|v| {
            let e = seal_partial(
                reassigned,
                &v.sk,
                &keys[&v.id()],
                next.recipient(),
                &mut rng,
            )
            .expect("seal");
            open_partial(&e, &reassigned, &next.id(), &next.x, &public).expect("open")
        })
        .collect();
    let d = combine(&reassigned, &public, &theirs).expect("combine");
    assert!(!leaf0(a).ct_eq(&leaf0(d)));
    // A partial is sealed only to the owner its branch names.
    assert!(matches!(
        seal_partial(
            id,
            &vs[1].sk,
            &keys[&vs[1].id()],
            next.recipient(),
            &mut rng
        ),
        Err(BranchSeedError::WrongContext("owner"))
    ));
}

#[test]
fn forged_or_misdirected_envelopes_are_refused() {
    let (mut rng, vs, keys, public) = setup();
    let owner = &vs[0];
    let id = branch_of(owner);
    let env = seal_partial(
        id,
        &vs[1].sk,
        &keys[&vs[1].id()],
        owner.recipient(),
        &mut rng,
    )
    .expect("seal");
    let mut forged = env.clone();
    forged.signature[5] ^= 1;
    assert_eq!(
        open_partial(&forged, &id, &owner.id(), &owner.x, &public),
        Err(BranchSeedError::BadSignature)
    );
    // Claiming another sender breaks the signature and the box's binding.
    let mut impersonated = env.clone();
    impersonated.sender = vs[2].id();
    assert!(open_partial(&impersonated, &id, &owner.id(), &owner.x, &public).is_err());
    let other = BranchId { branch: 9, ..id };
    assert_eq!(
        open_partial(&env, &other, &owner.id(), &owner.x, &public),
        Err(BranchSeedError::WrongContext("branch"))
    );
    // A validator that evaluates with a key share that is not its own is caught by the proof:
    // validator 1 signs, but evaluates with validator 2's share.
    let wrong = seal_partial(
        id,
        &vs[1].sk,
        &keys[&vs[2].id()],
        owner.recipient(),
        &mut rng,
    );
    assert!(matches!(
        wrong,
        Err(BranchSeedError::Tprf(TprfError::WrongKey(_)))
    ));
}
