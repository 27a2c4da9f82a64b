//! Interoperability with an independent RFC 8554 implementation (`hbs-lms` 0.1.1).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use hbs_lms::signature::SignerMut;
use hbs_lms::{HssParameter, LmotsAlgorithm, LmsAlgorithm, Seed, Sha256_256};
use seedfed_protocol::lmots::{LeafSeed, LmotsType};
use seedfed_protocol::lms::{self, LmsPublicKey, LmsSignature, LmsType};
use seedfed_protocol::master::Master;
use seedfed_protocol::sector::{Sector, TreeLayout};
use sha2::{Digest, Sha256};

fn hbs_ots(t: LmotsType) -> LmotsAlgorithm {
    match t {
        LmotsType::W1 => LmotsAlgorithm::LmotsW1,
        LmotsType::W2 => LmotsAlgorithm::LmotsW2,
        LmotsType::W4 => LmotsAlgorithm::LmotsW4,
        LmotsType::W8 => LmotsAlgorithm::LmotsW8,
    }
}

fn hbs_lms(t: LmsType) -> LmsAlgorithm {
    match t {
        LmsType::H5 => LmsAlgorithm::LmsH5,
        LmsType::H10 => LmsAlgorithm::LmsH10,
        LmsType::H15 => LmsAlgorithm::LmsH15,
        LmsType::H20 => LmsAlgorithm::LmsH20,
        LmsType::H25 => LmsAlgorithm::LmsH25,
    }
}

/// The (SEED, I) of the top tree that hbs-lms derives from its master seed (the RFC 8554
/// reference implementation's "top seed" derivation: D_TOPSEED = 0xfefe at byte 20, a
/// selector at byte 22, the seed at 23..55).
fn hbs_top_seed_and_id(master: &[u8; 32]) -> ([u8; 32], [u8; 16]) {
    let mut pre = [0u8; 55];
    pre[20] = 0xfe;
    pre[21] = 0xfe;
    pre[23..].copy_from_slice(master);
    let h: [u8; 32] = Sha256::digest(pre).into();
    pre[23..].copy_from_slice(&h);
    pre[22] = 1;
    let seed: [u8; 32] = Sha256::digest(pre).into();
    pre[22] = 2;
    let id: [u8; 32] = Sha256::digest(pre).into();
    (seed, id[..16].try_into().unwrap())
}

fn hbs_keygen(
    lms_type: LmsType,
    ots_type: LmotsType,
    master: [u8; 32],
) -> (hbs_lms::SigningKey<Sha256_256>, Vec<u8>) {
    let (sk, vk) = hbs_lms::keygen::<Sha256_256>(
        &[HssParameter::new(hbs_ots(ots_type), hbs_lms(lms_type))],
        &Seed::from(master),
        None,
    )
    .unwrap();
    (sk, vk.as_slice().to_vec())
}

/// With every leaf seed set to hbs-lms's tree SEED, 2^p independently generated sectors give
/// byte-for-byte hbs-lms's public key, and signatures cross-verify both ways.
#[test]
fn identical_keys_and_cross_verification() {
    for (lms_type, ots_type, p) in [
        (LmsType::H5, LmotsType::W4, 2),
        (LmsType::H5, LmotsType::W8, 0),
        (LmsType::H5, LmotsType::W2, 4),
    ] {
        let master_seed = [0x3c; 32];
        let (mut hsk, hpk) = hbs_keygen(lms_type, ots_type, master_seed);
        let (seed, id) = hbs_top_seed_and_id(&master_seed);
        let seed = LeafSeed::from_bytes(seed);
        let layout = TreeLayout::new(lms_type, ots_type, id, p).unwrap();
        let sectors: Vec<Sector> = (0..layout.sectors())
            .map(|b| Sector::generate(layout, b, 1, |_| seed.clone()).unwrap())
            .collect();
        let roots: Vec<_> = sectors.iter().map(Sector::root).collect();
        let master = Master::from_sector_roots(layout, &roots).unwrap();
        assert_eq!(
            master.public_key().encode_hss(),
            hpk,
            "{lms_type:?} {ots_type:?}"
        );

        // hbs-lms signs leaves 0, 1, 2 in order; we verify.
        for i in 0..3u8 {
            let msg = [i; 40];
            let sig = hsk.try_sign(&msg).unwrap();
            assert_eq!(lms::verify_hss_bytes(&hpk, &msg, sig.as_ref()), Ok(()));
            assert_eq!(
                LmsSignature::decode_hss(sig.as_ref()).unwrap().q,
                u32::from(i)
            );
        }
        // We sign from several sectors; hbs-lms verifies.
        for s in &sectors {
            let q = layout.sector_leaves(s.branch()).unwrap().end - 1;
            let sig = master.sign(s, q, &seed, b"from a sector").unwrap();
            assert!(
                hbs_lms::verify::<Sha256_256>(b"from a sector", &sig.encode_hss(), &hpk).is_ok()
            );
            assert!(
                hbs_lms::verify::<Sha256_256>(b"from a sectoR", &sig.encode_hss(), &hpk).is_err()
            );
        }
    }
}

/// Independent per-leaf seeds (the seedfed case): a key built from 4 sectors with unrelated
/// seeds is a valid RFC 8554 key; signatures from every sector verify in hbs-lms.
#[test]
fn sectorized_key_with_per_leaf_seeds_verifies_in_hbs_lms() {
    let layout = TreeLayout::new(LmsType::H10, LmotsType::W4, [0xa7; 16], 2).unwrap();
    let seed_of = |q: u32| {
        let h: [u8; 32] = Sha256::new()
            .chain_update(b"test leaf seed")
            .chain_update(q.to_be_bytes())
            .finalize()
            .into();
        LeafSeed::from_bytes(h)
    };
    let sectors: Vec<Sector> = (0..layout.sectors())
        .map(|b| Sector::generate(layout, b, 2, seed_of).unwrap())
        .collect();
    let roots: Vec<_> = sectors.iter().map(Sector::root).collect();
    let master = Master::from_sector_roots(layout, &roots).unwrap();
    let pk = master.public_key().encode_hss();
    assert_eq!(LmsPublicKey::decode_hss(&pk).unwrap(), master.public_key());
    for s in &sectors {
        let leaves = layout.sector_leaves(s.branch()).unwrap();
        for q in [leaves.start, leaves.start + 77, leaves.end - 1] {
            let msg = format!("message for leaf {q}");
            let sig = master.sign(s, q, &seed_of(q), msg.as_bytes()).unwrap();
            assert!(hbs_lms::verify::<Sha256_256>(msg.as_bytes(), &sig.encode_hss(), &pk).is_ok());
        }
    }
}
