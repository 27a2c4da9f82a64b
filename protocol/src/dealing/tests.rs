use std::collections::BTreeMap;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::assignment::{leaf_holders, Weighted};
use crate::shamir::LeafSecret;

const K: usize = 3;
const R: usize = 5;

struct Member {
    sk: SigningKey,
    x: StaticSecret,
}

impl Member {
    fn id(&self) -> MemberId {
        MemberId(self.sk.verifying_key().to_bytes())
    }
    fn xpub(&self) -> [u8; 32] {
        PublicKey::from(&self.x).to_bytes()
    }
}

struct Fixture {
    rng: ChaCha20Rng,
    owner: Member,
    holders: Vec<Member>,
    id: SectorId,
    secrets: Vec<LeafSecret>,
    dealings: Vec<shamir::Dealing>,
    /// Holders of each leaf (global index).
    leaf_holders: BTreeMap<u64, Vec<MemberId>>,
}

/// A sector of 16 leaves starting at global leaf 16, dealt 3-of-5 among 6 validators.
fn fixture() -> Fixture {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let owner = Member {
        sk: SigningKey::generate(&mut rng),
        x: StaticSecret::random_from_rng(&mut rng),
    };
    let holders: Vec<Member> = (0..6)
        .map(|_| Member {
            sk: SigningKey::generate(&mut rng),
            x: StaticSecret::random_from_rng(&mut rng),
        })
        .collect();
    let weighted: Vec<Weighted> = holders
        .iter()
        .map(|m| Weighted {
            member: m.id(),
            stake: 10,
        })
        .collect();
    let id = SectorId {
        chain: [9; 32],
        key: 0,
        sector: 1,
        owner: owner.id(),
        basis: [4; 32],
    };
    let mut secrets = Vec::new();
    let mut leaf_sets = BTreeMap::new();
    for leaf in 16..32u64 {
        secrets.push(LeafSecret::random(&mut rng));
        leaf_sets.insert(
            leaf,
            leaf_holders(&[3; 32], leaf, &weighted, R).expect("holders"),
        );
    }
    let items: Vec<(&LeafSecret, &[MemberId])> = secrets
        .iter()
        .zip(leaf_sets.values())
        .map(|(s, h)| (s, h.as_slice()))
        .collect();
    let dealings = shamir::deal_batch(items, K, &mut rng).expect("deal");
    Fixture {
        rng,
        owner,
        holders,
        id,
        secrets,
        dealings,
        leaf_holders: leaf_sets,
    }
}

impl Fixture {
    /// The leaves of chunk `[first, first + len)` held by `holder`.
    fn leaves_of(&self, holder: &MemberId, first: u64, len: u64) -> BTreeSet<u64> {
        (first..first + len)
            .filter(|l| self.leaf_holders[l].contains(holder))
            .collect()
    }

    fn share(&self, leaf: u64, holder: &MemberId) -> &Share {
        self.dealings[(leaf - 16) as usize]
            .shares
            .iter()
            .find(|s| s.holder == *holder)
            .expect("holder of leaf")
    }

    fn commitments(&self, first: u64, len: u64) -> Vec<EncodedCommitment> {
        (first..first + len)
            .map(|l| {
                self.dealings[(l - 16) as usize]
                    .commitment
                    .encoded()
                    .clone()
            })
            .collect()
    }

    fn chunk(&self, first: u64, len: u64) -> ChunkCommitments {
        ChunkCommitments::new(first, self.commitments(first, len)).expect("chunk")
    }

    /// The honest batch of chunk `[first, first + len)` for holder `h`.
    fn batch(&mut self, h: usize, first: u64, len: u64) -> DealBatch {
        let shares = self.shares_of(h, first, len);
        self.batch_of(h, first, len, &shares)
    }

    /// The owner's signed batch of chunk `[first, first + len)` for holder `h`, carrying
    /// exactly `shares` (honest or not).
    fn batch_of(&mut self, h: usize, first: u64, len: u64, shares: &[(u64, Share)]) -> DealBatch {
        let chunk = self.chunk(first, len);
        self.batch_with(h, &chunk, shares)
    }

    /// The owner's signed batch of `chunk` (honest or not) for holder `h`, carrying exactly
    /// `shares`.
    fn batch_with(
        &mut self,
        h: usize,
        chunk: &ChunkCommitments,
        shares: &[(u64, Share)],
    ) -> DealBatch {
        let refs: Vec<(u64, &Share)> = shares.iter().map(|(l, s)| (*l, s)).collect();
        let to = Recipient {
            id: self.holders[h].id(),
            x25519: self.holders[h].xpub(),
        };
        let keys = leaf_keys(chunk);
        seal_batch(
            self.id,
            &self.owner.sk,
            to,
            chunk,
            &keys,
            &refs,
            &mut self.rng,
        )
        .expect("seal")
    }

    /// Holder `h`'s honest shares of the chunk `[first, first + len)`.
    fn shares_of(&self, h: usize, first: u64, len: u64) -> Vec<(u64, Share)> {
        let holder = self.holders[h].id();
        self.leaves_of(&holder, first, len)
            .iter()
            .map(|l| (*l, self.share(*l, &holder).clone()))
            .collect()
    }

    fn open(
        &mut self,
        h: usize,
        batch: &DealBatch,
    ) -> Result<(ReceivedShares, [u8; 32]), DealError> {
        let me = self.holders[h].id();
        let leaves = self.leaves_of(&me, batch.first_leaf, batch.commitments.len() as u64);
        let id = self.id;
        open_batch(
            batch,
            &id,
            &me,
            &self.holders[h].x,
            &leaves,
            K,
            &mut self.rng,
        )
    }

    /// Judges a complaint by holder `h` about a chunk of 8 leaves.
    fn judge(&self, h: usize, complaint: &DealComplaint) -> Result<&'static str, DealError> {
        let me = self.holders[h].id();
        let leaves = self.leaves_of(&me, complaint.first_leaf, 8);
        judge_complaint(complaint, &self.holders[h].xpub(), &leaves, 3, K)
    }

    /// Holder `h`'s complaint about `batch`, with `leaf` as evidence.
    fn complain(&mut self, h: usize, batch: &DealBatch, leaf: Option<u64>) -> DealComplaint {
        complain(batch, &self.holders[h].x, leaf, &mut self.rng).expect("complaint")
    }
}

#[test]
fn honest_dealing_is_accepted_acknowledged_and_reconstructs() {
    let mut f = fixture();
    let mut received: BTreeMap<u64, Vec<Share>> = BTreeMap::new();
    let mut roots_seen = BTreeSet::new();
    for h in 0..f.holders.len() {
        let mut chunk_roots = Vec::new();
        for first in [16u64, 24] {
            let batch = f.batch(h, first, 8);
            let (shares, root) = f.open(h, &batch).expect("honest batch opens");
            chunk_roots.push(root);
            for (leaf, share) in shares {
                received.entry(leaf).or_default().push(share);
            }
        }
        let root = commitments_root(16, 3, &chunk_roots);
        roots_seen.insert(root);
        let tree = [9; 32];
        let ack = sign_ack(&f.id, &f.holders[h].sk, root, tree);
        verify_ack(&f.id, &ack, &root, &tree).expect("ack verifies");
        assert_eq!(
            verify_ack(&f.id, &ack, &[0; 32], &tree),
            Err(DealError::BadAck)
        );
        // An acknowledgement names the tree its holder stored: not good for another root.
        assert_eq!(
            verify_ack(&f.id, &ack, &root, &[8; 32]),
            Err(DealError::BadAck)
        );
        let mut relabelled = ack.clone();
        relabelled.root = [8; 32];
        assert_eq!(
            verify_ack(&f.id, &relabelled, &root, &[8; 32]),
            Err(DealError::BadAck)
        );
        let mut other = f.id;
        other.sector = 2;
        assert_eq!(
            verify_ack(&other, &ack, &root, &tree),
            Err(DealError::BadAck)
        );
    }
    // Every holder saw the same commitments root, equal to the one-chunk root of the sector.
    assert_eq!(roots_seen.len(), 1);
    let whole = chunk_root(16, &f.commitments(16, 16)).expect("root");
    assert_eq!(roots_seen.into_iter().next(), Some(whole));
    // Every leaf reached its r holders, and any k of them rebuild the seed.
    for (i, leaf) in (16..32u64).enumerate() {
        let shares = &received[&leaf];
        assert_eq!(shares.len(), R);
        let secret = shamir::reconstruct(&shares[1..1 + K], K).expect("reconstruct");
        assert!(secret.ct_eq(&f.secrets[i]));
    }
}

#[test]
fn paths_link_a_commitment_to_its_chunk_root() {
    let f = fixture();
    let chunk = f.commitments(24, 8);
    let root = chunk_root(24, &chunk).expect("root");
    for leaf in 24..32u64 {
        let path = chunk_path(24, &chunk, leaf).expect("path");
        assert_eq!(path.len(), 3);
        assert_eq!(
            root_from_path(leaf, &chunk[(leaf - 24) as usize], &path),
            root
        );
        // Another leaf's commitment does not fit the path.
        let other = &chunk[((leaf - 24 + 1) % 8) as usize];
        assert_ne!(root_from_path(leaf, other, &path), root);
    }
    assert!(chunk_path(24, &chunk, 23).is_err());
    assert!(chunk_root(20, &chunk).is_err(), "unaligned chunk");
    assert!(chunk_root(24, &chunk[..3]).is_err(), "not a power of two");
}

#[test]
fn batches_for_another_context_or_holder_are_refused() {
    let mut f = fixture();
    let batch = f.batch(0, 16, 8);
    // Holder 1 cannot use holder 0's batch.
    let me = f.holders[1].id();
    let leaves = f.leaves_of(&me, 16, 8);
    let id = f.id;
    assert_eq!(
        open_batch(&batch, &id, &me, &f.holders[1].x, &leaves, K, &mut f.rng).map(|_| ()),
        Err(DealError::WrongContext("holder"))
    );
    let mut other = f.id;
    other.key = 1;
    let me = f.holders[0].id();
    let leaves = f.leaves_of(&me, 16, 8);
    assert_eq!(
        open_batch(&batch, &other, &me, &f.holders[0].x, &leaves, K, &mut f.rng).map(|_| ()),
        Err(DealError::WrongContext("sector"))
    );
    // A tampered signature or commitment is refused, and a complaint about it proves nothing.
    let mut forged = batch.clone();
    forged.signature[0] ^= 1;
    assert_eq!(f.open(0, &forged).map(|_| ()), Err(DealError::BadSignature));
    let c = f.complain(0, &forged, None);
    assert_eq!(
        f.judge(0, &c),
        Err(DealError::ComplaintRejected(
            "batch not signed by the owner"
        ))
    );
    // Nor does a batch for another basis that the ledger judges under its own basis: the
    // signature binds the basis.
    let mut rebased = f.complain(0, &batch, None);
    rebased.id.basis = [5; 32];
    assert_eq!(
        f.judge(0, &rebased),
        Err(DealError::ComplaintRejected(
            "batch not signed by the owner"
        ))
    );
    let mut swapped = batch.clone();
    swapped.commitments.swap(0, 1);
    assert_eq!(
        f.open(0, &swapped).map(|_| ()),
        Err(DealError::BadSignature)
    );
    // A batch must carry one leaf key per commitment (the holder builds the tree from them);
    // a missing key is refused, and proves nothing (the keys are not signed).
    let mut short = batch.clone();
    short.keys.pop();
    let err = f.open(0, &short).map(|_| ()).unwrap_err();
    assert_eq!(err, DealError::BadChunk("not one leaf key per commitment"));
    assert_eq!(err.provable(), None);
    // Wrong threshold expected by the holder.
    let me = f.holders[0].id();
    let leaves = f.leaves_of(&me, 16, 8);
    assert!(matches!(
        open_batch(
            &batch,
            &id,
            &me,
            &f.holders[0].x,
            &leaves,
            K + 1,
            &mut f.rng
        ),
        Err(DealError::BadCommitment { .. })
    ));
}

#[test]
fn a_bad_share_is_named_and_proven_to_anyone() {
    let mut f = fixture();
    let holder = f.holders[2].id();
    let leaves: Vec<u64> = f.leaves_of(&holder, 16, 8).into_iter().collect();
    let bad_leaf = leaves[0];
    // The owner deals a wrong value for one leaf (a share of another polynomial).
    let wrong = Share::new(holder, &[5; 32]).expect("canonical");
    let shares: Vec<(u64, Share)> = leaves
        .iter()
        .map(|l| {
            if *l == bad_leaf {
                (*l, wrong.clone())
            } else {
                (*l, f.share(*l, &holder).clone())
            }
        })
        .collect();
    let batch = f.batch_of(2, 16, 8, &shares);
    assert_eq!(
        f.open(2, &batch).map(|_| ()),
        Err(DealError::BadShares {
            leaves: vec![bad_leaf]
        })
    );
    let err = f.open(2, &batch).map(|_| ()).unwrap_err();
    assert_eq!(err.provable(), Some(Some(bad_leaf)));
    let complaint = f.complain(2, &batch, Some(bad_leaf));
    assert_eq!(f.judge(2, &complaint), Ok("share fails its commitment"));
    // Judged by its bytes, as the ledger does.
    let decoded: DealComplaint =
        crate::ledger::decode(&crate::ledger::encode(&complaint)).expect("decode");
    assert_eq!(f.judge(2, &decoded), Ok("share fails its commitment"));
    // The same batch with a good leaf as evidence proves nothing; without evidence, nothing.
    if let Some(good) = leaves.get(1) {
        let c = f.complain(2, &batch, Some(*good));
        assert_eq!(
            f.judge(2, &c),
            Err(DealError::ComplaintRejected("the share verifies"))
        );
    }
    let c = f.complain(2, &batch, None);
    assert_eq!(
        f.judge(2, &c),
        Err(DealError::ComplaintRejected(
            "no commitment to check a share against"
        ))
    );
    // Another commitment on the bad leaf's path, or a path cut short, is not the signed one.
    let mut swapped = complaint.clone();
    if let Some(e) = swapped.evidence.as_mut() {
        e.commitment = f.dealings[(bad_leaf - 16 + 1) as usize]
            .commitment
            .encoded()
            .clone();
    }
    assert_eq!(
        f.judge(2, &swapped),
        Err(DealError::ComplaintRejected(
            "commitment not in the signed chunk"
        ))
    );
    let mut short = complaint.clone();
    if let Some(e) = short.evidence.as_mut() {
        e.path.pop();
    }
    assert_eq!(
        f.judge(2, &short),
        Err(DealError::ComplaintRejected(
            "commitment not in the signed chunk"
        ))
    );
    // A leaf of the chunk the holder does not hold proves nothing either.
    let foreign = (16..24u64).find(|l| !leaves.contains(l));
    if let Some(foreign) = foreign {
        let c = f.complain(2, &batch, Some(foreign));
        assert_eq!(
            f.judge(2, &c),
            Err(DealError::ComplaintRejected(
                "the holder has no share of that leaf"
            ))
        );
    }
}

#[test]
fn a_commitment_of_the_wrong_threshold_convicts_the_owner() {
    let mut f = fixture();
    let holder = f.holders[1].id();
    let shares: Vec<(u64, Share)> = f
        .leaves_of(&holder, 16, 8)
        .iter()
        .map(|l| (*l, f.share(*l, &holder).clone()))
        .collect();
    let refs: Vec<(u64, &Share)> = shares.iter().map(|(l, s)| (*l, s)).collect();
    // Leaf 19's commitment has k + 1 points (another polynomial's): signed all the same.
    let mut commitments = f.commitments(16, 8);
    let longer = shamir::deal_batch(
        [(&f.secrets[3], f.leaf_holders[&19].as_slice())],
        K + 1,
        &mut f.rng,
    )
    .expect("deal");
    commitments[3] = longer[0].commitment.encoded().clone();
    let to = Recipient {
        id: holder,
        x25519: f.holders[1].xpub(),
    };
    let chunk = ChunkCommitments::new(16, commitments).expect("chunk");
    let keys = leaf_keys(&chunk);
    let batch = seal_batch(f.id, &f.owner.sk, to, &chunk, &keys, &refs, &mut f.rng).expect("seal");
    let err = f.open(1, &batch).map(|_| ()).unwrap_err();
    assert_eq!(err.provable(), Some(Some(19)));
    let c = f.complain(1, &batch, Some(19));
    assert_eq!(f.judge(1, &c), Ok("commitment of the wrong threshold"));
}

#[test]
fn a_complaint_about_a_full_chunk_fits_a_ledger_payload() {
    // The worst case: a chunk of 2^MAX_CHUNK_BITS leaves, every one held by the complaining
    // holder, commitments of the largest threshold.
    let mut f = fixture();
    let holder = f.holders[0].id();
    let n = 1u64 << MAX_CHUNK_BITS;
    let point = f.dealings[0].commitment.secret_point();
    let wide = Commitment::try_from(vec![point; shamir::MAX_THRESHOLD]).expect("commitment");
    let chunk = ChunkCommitments::new(0, vec![wide.encoded().clone(); n as usize]).expect("chunk");
    let share = Share::new(holder, &[1; 32]).expect("share");
    let refs: Vec<(u64, &Share)> = (0..n).map(|l| (l, &share)).collect();
    let to = Recipient {
        id: holder,
        x25519: f.holders[0].xpub(),
    };
    let keys = leaf_keys(&chunk);
    let batch = seal_batch(f.id, &f.owner.sk, to, &chunk, &keys, &refs, &mut f.rng).expect("seal");
    let c = f.complain(0, &batch, Some(n - 1));
    let len = crate::ledger::encode(&c).len();
    assert!(len <= crate::ledger::MAX_PAYLOAD_BYTES, "{len} bytes");
    // The whole batch would not fit: this is why the complaint carries one leaf's commitment.
    assert!(crate::ledger::encode(&batch).len() > crate::ledger::MAX_PAYLOAD_BYTES);
}

#[test]
fn false_complaints_and_lying_reveals_are_rejected() {
    let mut f = fixture();
    let batch = f.batch(3, 24, 8);
    let mine: Vec<u64> = f.leaves_of(&f.holders[3].id(), 24, 8).into_iter().collect();
    let honest = f.complain(3, &batch, mine.first().copied());
    assert_eq!(
        f.judge(3, &honest),
        Err(DealError::ComplaintRejected(if mine.is_empty() {
            "no commitment to check a share against"
        } else {
            "the share verifies"
        }))
    );
    // Another holder cannot complain in this holder's name (the reveal is for its key).
    assert_eq!(
        f.judge(2, &honest),
        Err(DealError::ComplaintRejected("reveal does not verify"))
    );
    // A reveal made for another box does not open this one.
    let other = f.batch(3, 16, 8);
    let other_reveal = f.complain(3, &other, None);
    let lying = DealComplaint {
        reveal: other_reveal.reveal,
        ..honest.clone()
    };
    assert_eq!(
        f.judge(3, &lying),
        Err(DealError::ComplaintRejected("reveal does not verify"))
    );
    // No reveal for a box whose ephemeral key is fine proves nothing.
    let silent = DealComplaint {
        reveal: None,
        ..honest
    };
    assert_eq!(
        f.judge(3, &silent),
        Err(DealError::ComplaintRejected("no reveal for a valid box"))
    );
}

#[test]
fn a_missing_leaf_or_garbage_plaintext_convicts_the_owner() {
    let mut f = fixture();
    let holder = f.holders[4].id();
    let leaves: Vec<u64> = f.leaves_of(&holder, 16, 8).into_iter().collect();
    assert!(!leaves.is_empty());
    // The owner leaves one of the holder's leaves out.
    let shares: Vec<(u64, Share)> = leaves[1..]
        .iter()
        .map(|l| (*l, f.share(*l, &holder).clone()))
        .collect();
    let batch = f.batch_of(4, 16, 8, &shares);
    let xpub = f.holders[4].xpub();
    let commitments = f.commitments(16, 8);
    assert_eq!(f.open(4, &batch).map(|_| ()), Err(DealError::WrongLeaves));
    let err = f.open(4, &batch).map(|_| ()).unwrap_err();
    assert_eq!(err.provable(), Some(None));
    let c = f.complain(4, &batch, None);
    assert_eq!(f.judge(4, &c), Ok("wrong leaf set"));

    // A box of garbage, properly signed.
    let root = chunk_root(16, &commitments).expect("root");
    let ad = DealBatch::ad(&f.id, &holder, 16, &root);
    let sealed =
        seal::seal_ephemeral(&PublicKey::from(xpub), &ad, &[1, 2, 3], &mut f.rng).expect("seal");
    let msg = DealBatch::message(&f.id, &holder, 16, &root, &sealed);
    let garbage = DealBatch {
        id: f.id,
        holder,
        first_leaf: 16,
        keys: vec![[0; 32]; commitments.len()],
        commitments,
        sealed,
        signature: f.owner.sk.sign(&msg).to_bytes().to_vec(),
    };
    assert!(matches!(f.open(4, &garbage), Err(DealError::Malformed(_))));
    let c = f.complain(4, &garbage, None);
    assert_eq!(f.judge(4, &c), Ok("malformed plaintext"));
}

#[test]
fn only_the_owner_can_sign_its_batches() {
    let mut f = fixture();
    let holder = f.holders[0].id();
    let xpub = f.holders[0].xpub();
    let chunk = f.chunk(16, 8);
    let impostor = SigningKey::generate(&mut f.rng);
    let id = f.id;
    assert_eq!(
        seal_batch(
            id,
            &impostor,
            Recipient {
                id: holder,
                x25519: xpub,
            },
            &chunk,
            &leaf_keys(&chunk),
            &[],
            &mut f.rng
        ),
        Err(DealError::WrongContext("signing key is not the owner's"))
    );
}

/// Stand-in leaf public keys for `chunk` (one per leaf; nothing here checks them).
fn leaf_keys(chunk: &ChunkCommitments) -> Vec<[u8; 32]> {
    (0..chunk.commitments().len())
        .map(|i| [i as u8; 32])
        .collect()
}

/// `commitments` with point 1 of leaf `leaf`'s commitment (chunk starting at `first`) replaced
/// by an encoding that is not a point.
fn with_invalid_point(
    mut commitments: Vec<EncodedCommitment>,
    first: u64,
    leaf: u64,
) -> Vec<EncodedCommitment> {
    let i = (leaf - first) as usize;
    let mut bytes = commitments[i].as_bytes().to_vec();
    bytes[1] = [0xff; 32];
    commitments[i] = EncodedCommitment::try_from(bytes).expect("three points");
    commitments
}

#[test]
fn an_invalid_point_is_refused_by_the_leaf_holders_and_proven() {
    let mut f = fixture();
    let holder = f.holders[2].id();
    let leaf = *f.leaves_of(&holder, 16, 8).first().expect("holds a leaf");
    let chunk = ChunkCommitments::new(16, with_invalid_point(f.commitments(16, 8), 16, leaf))
        .expect("chunk");
    let shares = f.shares_of(2, 16, 8);
    let batch = f.batch_with(2, &chunk, &shares);
    // It travels (decoding a batch does not decompress points) ...
    let batch: DealBatch =
        postcard::from_bytes(&postcard::to_allocvec(&batch).expect("encode")).expect("decode");
    // ... but its holder refuses it, naming the leaf, before using any point.
    assert_eq!(
        f.open(2, &batch).map(|_| ()),
        Err(DealError::InvalidCommitment { leaf })
    );
    let complaint = complain(&batch, &f.holders[2].x, Some(leaf), &mut f.rng).expect("complaint");
    assert_eq!(
        f.judge(2, &complaint),
        Ok("commitment with an invalid point")
    );

    // Every holder of that leaf refuses its batch of the chunk; a holder of none of the
    // chunk's leaves with the bad one accepts its own, bound to the same bytes by the root.
    for h in 0..f.holders.len() {
        let shares = f.shares_of(h, 16, 8);
        let batch = f.batch_with(h, &chunk, &shares);
        let opened = f.open(h, &batch);
        if f.leaf_holders[&leaf].contains(&f.holders[h].id()) {
            assert_eq!(
                opened.map(|_| ()),
                Err(DealError::InvalidCommitment { leaf })
            );
        } else {
            let (_, root) = opened.expect("leaf not held: only hashed");
            assert_eq!(root, chunk.root());
            assert_ne!(root, f.chunk(16, 8).root());
        }
    }
}

#[test]
fn chunk_commitments_are_hashed_once_and_match_the_batch() {
    let mut f = fixture();
    let chunk = f.chunk(24, 8);
    assert_eq!(chunk.first_leaf(), 24);
    assert_eq!(chunk.commitments(), &f.commitments(24, 8)[..]);
    // The root of the encodings equals the root of the usable commitments.
    let usable: Vec<Commitment> = (24..32u64)
        .map(|l| f.dealings[(l - 16) as usize].commitment.clone())
        .collect();
    assert_eq!(chunk.root(), chunk_root(24, &usable).expect("root"));
    let batch = f.batch(1, 24, 8);
    assert_eq!(batch.chunk_root(), Ok(chunk.root()));
    assert_eq!(
        ChunkCommitments::new(20, f.commitments(24, 8)).map(|c| c.root()),
        Err(DealError::BadChunk("not an aligned power-of-two range"))
    );
    let too_many = vec![f.commitments(16, 1)[0].clone(); (1 << MAX_CHUNK_BITS) + 1];
    assert!(matches!(
        ChunkCommitments::new(0, too_many),
        Err(DealError::BadChunk(_))
    ));
    // A batch survives the wire unchanged, and one with a commitment of no points does not
    // decode.
    let mut bytes = postcard::to_allocvec(&batch).expect("encode");
    let back: DealBatch = postcard::from_bytes(&bytes).expect("decode");
    assert_eq!(back, batch);
    let one = postcard::to_allocvec(&batch.commitments[0]).expect("encode");
    let at = bytes
        .windows(one.len())
        .position(|w| w == one.as_slice())
        .expect("commitment in the batch");
    bytes.splice(at..at + one.len(), [0u8]);
    assert!(postcard::from_bytes::<DealBatch>(&bytes).is_err());
}

/// A holder keeps each checked chunk as it arrives, encoded from the batch's commitments
/// without a copy: the bytes are those of the `HeldChunk` the store and readers decode.
#[test]
fn a_chunk_record_encoded_from_the_batch_is_the_held_chunk() {
    let f = fixture();
    let shares = f.shares_of(2, 20, 4);
    let commitments = f.commitments(20, 4);
    let encoded = encode_held_chunk(20, &commitments, &shares);
    let back: HeldChunk = crate::ledger::decode(&encoded).expect("decodes");
    assert_eq!(back.first_leaf, 20);
    assert_eq!(back.commitments, commitments);
    let leaves = |s: &ReceivedShares| s.iter().map(|(l, _)| *l).collect::<Vec<_>>();
    assert_eq!(leaves(&back.shares), leaves(&shares));
    assert_eq!(*crate::ledger::encode_secret(&back), *encoded);
}

/// The whole sector comes back from its index and exactly the chunks it names, in order; an
/// index whose chunk roots do not give its root, or chunks missing, extra, out of place or
/// holding a share of another chunk's leaf, are refused by name.
#[test]
fn a_held_sector_is_assembled_from_exactly_the_chunks_its_index_names() {
    let f = fixture();
    let h = 2;
    let chunk = |first: u64| HeldChunk {
        first_leaf: first,
        commitments: f.commitments(first, 4),
        shares: f.shares_of(h, first, 4),
    };
    let chunks: Vec<HeldChunk> = [16u64, 20, 24, 28].into_iter().map(chunk).collect();
    let roots: Vec<[u8; 32]> = chunks
        .iter()
        .map(|c| chunk_root(c.first_leaf, &c.commitments).unwrap())
        .collect();
    let index = HeldIndex {
        id: f.id,
        commitments_root: commitments_root(16, 2, &roots),
        first_leaf: 16,
        chunk_bits: 2,
        chunk_roots: roots,
    };
    let held = HeldSector::assemble(&index, chunks.clone()).expect("assembles");
    assert_eq!(held.commitments, f.commitments(16, 16));
    assert_eq!(held.shares.len(), f.shares_of(h, 16, 16).len());
    assert_eq!(held.commitments_root, index.commitments_root);
    // The chunks' roots give the root of the sector's commitments as one tree.
    assert_eq!(
        held.commitments_root,
        chunk_root(16, &held.commitments).unwrap()
    );

    let refused = |index: &HeldIndex, chunks: Vec<HeldChunk>| {
        HeldSector::assemble(index, chunks).unwrap_err()
    };
    let mut wrong_root = index.clone();
    wrong_root.commitments_root[0] ^= 1;
    assert_eq!(
        refused(&wrong_root, chunks.clone()),
        DealError::BadChunk("the chunk roots do not give the commitments root")
    );
    assert_eq!(
        refused(&index, chunks[..3].to_vec()),
        DealError::BadChunk("held chunks missing")
    );
    let mut extra = chunks.clone();
    extra.push(HeldChunk {
        first_leaf: 32,
        ..chunk(28)
    });
    let mut swapped = chunks.clone();
    swapped.swap(1, 2);
    let mut stray_share = chunks.clone();
    stray_share[0].shares.push(f.shares_of(h, 20, 4)[0].clone());
    for bad in [extra, swapped, stray_share] {
        assert_eq!(
            refused(&index, bad),
            DealError::BadChunk("a held chunk out of its place")
        );
    }
}
