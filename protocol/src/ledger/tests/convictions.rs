//! Deal complaints on the ledger: a proven bad dealing convicts, evicts and replaces the
//! sector's owner; a complaint that proves nothing is rejected and changes nothing.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::fixtures::{acks, start_epoch_1, xpub, xsecret, Fx, COMMITMENTS_ROOT};
use crate::dealing::{
    self, chunk_bits, seal_batch, ChunkCommitments, DealBatch, DealComplaint, Recipient,
};
use crate::ledger::{
    chain_digest, decode, encode, ConvictionEvidence, LedgerError, MemberStatus, TxBody,
};
use crate::member::MemberId;
use crate::shamir::{self, LeafSecret, Share};

/// Epoch 1 with its branch assignment on a ledger of 4 validators (key H5, 2 sectors of 16
/// leaves, one chunk each, 2-of-3).
fn assigned() -> Fx {
    let mut fx = Fx::new(4);
    start_epoch_1(&mut fx);
    let owners = fx.st().compute_branch_owners().unwrap();
    fx.apply(0, TxBody::BranchAssignment { epoch: 1, owners })
        .unwrap();
    fx
}

fn index(fx: &Fx, m: &MemberId) -> usize {
    (0..fx.keys.len()).find(|&i| fx.id(i) == *m).unwrap()
}

/// A validator other than `not` that holds leaves of `sector`'s (only) chunk.
fn holder_of(fx: &Fx, sector: u32, not: MemberId) -> usize {
    let (first, len) = chunk(fx, sector);
    let holders = fx
        .st()
        .holder_basis()
        .holders_of(first..first + len, fx.st().key.leaf_holders)
        .unwrap();
    let h = holders.iter().flatten().find(|h| **h != not).unwrap();
    index(fx, h)
}

/// The first leaf and length of `sector`'s chunk.
fn chunk(fx: &Fx, sector: u32) -> (u64, u64) {
    let layout = fx
        .st()
        .key
        .layout(&chain_digest(&fx.st().chain_id), 0)
        .unwrap();
    let leaves = layout.sector_leaves(sector).unwrap();
    assert_eq!(chunk_bits(layout.sector_height()), 4);
    (
        u64::from(leaves.start),
        u64::from(leaves.end - leaves.start),
    )
}

/// The current owner's signed batch of `sector` for validator `h`, with `h`'s share of its
/// first leaf corrupted if `corrupt`; returns the batch and that first leaf.
fn batch(fx: &Fx, sector: u32, h: usize, corrupt: bool, rng: &mut ChaCha20Rng) -> (DealBatch, u64) {
    let st = fx.st();
    let owner = st.newest.branch_owners[&sector];
    let holder = fx.id(h);
    let (first, len) = chunk(fx, sector);
    let basis = st.holder_basis();
    let holders = basis
        .holders_of(first..first + len, st.key.leaf_holders)
        .unwrap();
    let secrets: Vec<LeafSecret> = (0..len).map(|_| LeafSecret::random(rng)).collect();
    let k = usize::from(st.key.leaf_threshold);
    let dealings = shamir::deal_batch(
        secrets.iter().zip(holders.iter().map(Vec::as_slice)),
        k,
        rng,
    )
    .unwrap();
    let mut shares: Vec<(u64, Share)> = Vec::new();
    for ((leaf, hs), d) in (first..).zip(&holders).zip(&dealings) {
        if let Some(pos) = hs.iter().position(|m| *m == holder) {
            shares.push((leaf, d.shares[pos].clone()));
        }
    }
    let bad_leaf = shares[0].0;
    if corrupt {
        let mut bytes = *shares[0].1.value_bytes();
        bytes[0] ^= 1;
        shares[0].1 = Share::new(holder, &bytes).unwrap();
    }
    let refs: Vec<(u64, &Share)> = shares.iter().map(|(l, s)| (*l, s)).collect();
    let id = dealing::SectorId {
        chain: chain_digest(&st.chain_id),
        key: 0,
        sector,
        owner,
        basis: basis.digest(),
    };
    let chunk = ChunkCommitments::new(
        first,
        dealings
            .iter()
            .map(|d| d.commitment.encoded().clone())
            .collect(),
    )
    .unwrap();
    let to = Recipient {
        id: holder,
        x25519: xpub(h as u8),
    };
    let owner_key = &fx.keys[index(fx, &owner)];
    let keys = vec![[0; 32]; chunk.commitments().len()];
    let b = seal_batch(id, owner_key, to, &chunk, &keys, &refs, rng).unwrap();
    (b, bad_leaf)
}

fn complaint_of(h: usize, b: &DealBatch, leaf: u64, rng: &mut ChaCha20Rng) -> DealComplaint {
    dealing::complain(b, &xsecret(h as u8), Some(leaf), rng).unwrap()
}

fn body(sector: u32, c: &DealComplaint) -> TxBody {
    TxBody::DealComplaint {
        sector,
        complaint: encode(c),
    }
}

#[test]
fn a_proven_bad_dealing_convicts_evicts_and_replaces_the_owner() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut fx = assigned();
    let owner = fx.st().newest.branch_owners[&0];
    let h = holder_of(&fx, 0, owner);
    let (bad, leaf) = batch(&fx, 0, h, true, &mut rng);
    let c = complaint_of(h, &bad, leaf, &mut rng);
    let before = fx.st().newest.branch_owners.clone();
    fx.apply(h, body(0, &c)).unwrap();

    let st = fx.st();
    let conviction = &st.newest.keygen_convictions[&owner];
    assert_eq!((conviction.sector, conviction.epoch), (0, 1));
    assert_eq!(conviction.reason, "share fails its commitment");
    // The evidence is the complaint itself, judged again from the record.
    let ConvictionEvidence::Complaint { holder, complaint } = &conviction.evidence else {
        panic!("conviction by complaint: {:?}", conviction.evidence);
    };
    assert_eq!(*holder, fx.id(h));
    assert_eq!(decode::<DealComplaint>(complaint).unwrap(), c);
    // Evicted like an equivocator.
    assert_eq!(st.members[&owner].status, MemberStatus::Evicted);
    assert!(st.evictions.contains_key(&owner));
    assert!(!st.is_validator(&owner));
    // Every sector it owned goes to the next rendezvous choice, the others stay.
    let computed = st.compute_branch_owners().unwrap();
    assert!(!computed.contains(&owner));
    for (s, o) in &before {
        let now = st.newest.branch_owners[s];
        if *o == owner {
            assert_ne!(now, owner);
            assert_eq!(now, computed[*s as usize]);
        } else {
            assert_eq!(now, *o);
        }
    }
    // Recomputation agrees: a branch assignment for the epoch is the ledger's own, and
    // changes nothing.
    let owners_now = st.newest.branch_owners.clone();
    fx.apply(
        1,
        TxBody::BranchAssignment {
            epoch: 1,
            owners: computed,
        },
    )
    .unwrap();
    assert_eq!(fx.st().newest.branch_owners, owners_now);
    // The same complaint again proves nothing: the sector has another owner now.
    assert_eq!(
        fx.apply(h, body(0, &c)),
        Err(LedgerError::BadDealComplaint(
            "batch for another chain, key, sector, owner or holder basis"
        ))
    );
}

#[test]
fn a_complaint_that_proves_nothing_is_rejected_and_changes_nothing() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let mut fx = assigned();
    let owner = fx.st().newest.branch_owners[&0];
    let h = holder_of(&fx, 0, owner);
    let (good, leaf) = batch(&fx, 0, h, false, &mut rng);
    let (bad, bad_leaf) = batch(&fx, 0, h, true, &mut rng);
    let before = fx.st().clone();
    let rejected = |why| Err(LedgerError::BadDealComplaint(why));

    // About a good batch.
    let c = complaint_of(h, &good, leaf, &mut rng);
    assert_eq!(fx.apply(h, body(0, &c)), rejected("the share verifies"));
    // By a validator that is not the batch's holder.
    let c = complaint_of(h, &bad, bad_leaf, &mut rng);
    let other = (0..4).find(|&i| i != h && fx.id(i) != owner).unwrap();
    assert_eq!(
        fx.apply(other, body(0, &c)),
        rejected("the author is not the batch's holder")
    );
    // A non-holder claiming the batch as its own: the reveal is not for its key.
    let mut renamed = c.clone();
    renamed.holder = fx.id(other);
    assert_eq!(
        fx.apply(other, body(0, &renamed)),
        rejected("batch not signed by the owner")
    );
    // Unsigned (the signature broken), or signed by someone else in the owner's name.
    let mut unsigned = c.clone();
    unsigned.signature[3] ^= 1;
    assert_eq!(
        fx.apply(h, body(0, &unsigned)),
        rejected("batch not signed by the owner")
    );
    // For another sector index than the transaction's, or another holder basis.
    assert_eq!(
        fx.apply(h, body(1, &c)),
        rejected("batch for another chain, key, sector, owner or holder basis")
    );
    let mut rebased = c.clone();
    rebased.id.basis = [7; 32];
    assert_eq!(
        fx.apply(h, body(0, &rebased)),
        rejected("batch for another chain, key, sector, owner or holder basis")
    );
    // Not a chunk of the sector.
    let mut moved = c.clone();
    moved.first_leaf += 1;
    assert_eq!(
        fx.apply(h, body(0, &moved)),
        rejected("not a chunk of the sector")
    );
    // Bytes that are not a complaint, or too many of them.
    assert!(matches!(
        fx.apply(
            h,
            TxBody::DealComplaint {
                sector: 0,
                complaint: vec![1, 2, 3]
            }
        ),
        Err(LedgerError::BadPayload(_))
    ));
    assert!(matches!(
        fx.apply(
            h,
            TxBody::DealComplaint {
                sector: 0,
                complaint: vec![0; crate::ledger::MAX_PAYLOAD_BYTES + 1]
            }
        ),
        Err(LedgerError::BadPayload(_))
    ));
    assert_eq!(fx.st(), &before);

    // For a published sector: the sector root landed first, the complaint is too late.
    let acks = acks(&fx, 0, owner, (COMMITMENTS_ROOT, [1; 32]), &[0, 1, 2, 3]);
    fx.apply(
        index(&fx, &owner),
        TxBody::SectorRoot {
            sector: 0,
            root: [1; 32],
            commitments_root: COMMITMENTS_ROOT,
            acks,
        },
    )
    .unwrap();
    assert_eq!(
        fx.apply(h, body(0, &c)),
        Err(LedgerError::SectorPublished(0))
    );
    assert!(fx.st().newest.keygen_convictions.is_empty());
    assert!(fx.st().is_validator(&owner));
}

#[test]
fn no_complaint_before_the_epochs_branch_assignment() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut fx = assigned();
    let owner = fx.st().newest.branch_owners[&0];
    let h = holder_of(&fx, 0, owner);
    let (bad, leaf) = batch(&fx, 0, h, true, &mut rng);
    let c = complaint_of(h, &bad, leaf, &mut rng);
    // The next epoch starts: the old assignment (and holder basis) no longer applies.
    fx.ledger.state.begin_epoch(2, [6; 32]);
    assert_eq!(fx.apply(h, body(0, &c)), Err(LedgerError::NoAssignment));
}
