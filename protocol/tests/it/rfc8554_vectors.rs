//! RFC 8554 Appendix F test vectors (both test cases are two-level HSS).
//!
//! The hex files under `tests/data/` are the RFC's public keys, messages and signatures.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use seedfed_protocol::lmots::{self, LeafSeed, LmotsType};
use seedfed_protocol::lms::{self, HssPublicKey, LmsPublicKey, LmsSignature, LmsType, VerifyError};
use seedfed_protocol::sector::{Sector, TreeLayout};

fn data(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}.hex", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    hex::decode(text.split_whitespace().collect::<String>()).unwrap()
}

fn hex32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn hex16(s: &str) -> [u8; 16] {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// Splits a two-level HSS signature into (top LMS signature, signed child key, final LMS
/// signature), checking the lengths add up exactly.
fn split_l2(sig: &[u8]) -> (LmsSignature, LmsPublicKey, LmsSignature) {
    assert_eq!(&sig[..4], &[0, 0, 0, 1], "Nspk must be 1");
    let rest = &sig[4..];
    let ots_type =
        LmotsType::from_typecode(u32::from_be_bytes(rest[4..8].try_into().unwrap())).unwrap();
    let ots_len = ots_type.signature_len();
    let lms_type = LmsType::from_typecode(u32::from_be_bytes(
        rest[4 + ots_len..8 + ots_len].try_into().unwrap(),
    ))
    .unwrap();
    let top_len = LmsSignature::encoded_len(lms_type, ots_type);
    let top = LmsSignature::decode(&rest[..top_len]).unwrap();
    let child = LmsPublicKey::decode(&rest[top_len..top_len + LmsPublicKey::LEN]).unwrap();
    let last = LmsSignature::decode(&rest[top_len + LmsPublicKey::LEN..]).unwrap();
    (top, child, last)
}

fn check_case(
    n: u32,
) -> (
    HssPublicKey,
    LmsSignature,
    LmsPublicKey,
    LmsSignature,
    Vec<u8>,
) {
    let pk = data(&format!("rfc8554_tc{n}_public_key"));
    let msg = data(&format!("rfc8554_tc{n}_message"));
    let sig = data(&format!("rfc8554_tc{n}_signature"));
    // Full HSS L=2 verification.
    assert_eq!(lms::verify_hss_multilevel(&pk, &msg, &sig), Ok(()));
    // Level by level, with our LMS verifier.
    let hpk = HssPublicKey::decode(&pk).unwrap();
    assert_eq!(hpk.levels, 2);
    let (top, child, last) = split_l2(&sig);
    assert_eq!(hpk.top.verify(&child.encode(), &top), Ok(()));
    assert_eq!(child.verify(&msg, &last), Ok(()));
    // Re-encoding is byte-identical.
    let mut re = vec![0, 0, 0, 1];
    re.extend(top.encode());
    re.extend(child.encode());
    re.extend(last.encode());
    assert_eq!(re, sig);
    // Any single flipped bit in the signature or message is rejected.
    for pos in [5usize, 40, 500, sig.len() / 2, sig.len() - 1] {
        let mut bad = sig.clone();
        bad[pos] ^= 0x01;
        assert!(
            lms::verify_hss_multilevel(&pk, &msg, &bad).is_err(),
            "pos {pos}"
        );
    }
    let mut bad_msg = msg.clone();
    bad_msg[0] ^= 0x20;
    assert_eq!(
        lms::verify_hss_multilevel(&pk, &bad_msg, &sig),
        Err(VerifyError::Mismatch)
    );
    (hpk, top, child, last, msg)
}

#[test]
fn test_case_1() {
    let (hpk, top, child, last, _) = check_case(1);
    assert_eq!(hpk.top.lms_type, LmsType::H5);
    assert_eq!(hpk.top.ots_type, LmotsType::W8);
    assert_eq!(hpk.top.id, hex16("61a5d57d37f5e46bfb7520806b07a1b8"));
    assert_eq!((top.q, last.q), (5, 10));
    assert_eq!(child.id, hex16("d2f14ff6346af964569f7d6cb880a1b6"));
}

#[test]
fn test_case_2_verifies_and_keys_regenerate() {
    let (hpk, top, child, last, msg) = check_case(2);
    assert_eq!(
        (hpk.top.lms_type, hpk.top.ots_type),
        (LmsType::H10, LmotsType::W4)
    );
    assert_eq!(
        (child.lms_type, child.ots_type),
        (LmsType::H5, LmotsType::W8)
    );
    assert_eq!((top.q, last.q), (3, 4));

    // Test Case 2 publishes the private SEEDs: regenerate both trees with every leaf seed set
    // to the tree's SEED (Appendix A derivation) and compare roots.
    let seed0 = LeafSeed::from_bytes(hex32(
        "558b8966c48ae9cb898b423c83443aae014a72f1b1ab5cc85cf1d892903b5439",
    ));
    let id0 = hex16("d08fabd4a2091ff0a8cb4ed834e74534");
    let layout0 = TreeLayout::new(LmsType::H10, LmotsType::W4, id0, 3).unwrap();
    let roots: Vec<_> = (0..layout0.sectors())
        .map(|b| {
            Sector::generate(layout0, b, 2, |_| seed0.clone())
                .unwrap()
                .root()
        })
        .collect();
    let master0 = seedfed_protocol::master::Master::from_sector_roots(layout0, &roots).unwrap();
    assert_eq!(master0.public_key(), hpk.top);
    assert_eq!(
        master0.root(),
        hex32("32a58885cd9ba0431235466bff9651c6c92124404d45fa53cf161c28f1ad5a8e")
    );

    let seed1 = LeafSeed::from_bytes(hex32(
        "a1c4696e2608035a886100d05cd99945eb3370731884a8235e2fb3d4d71f2547",
    ));
    let id1 = hex16("215f83b7ccb9acbcd08db97b0d04dc2b");
    let layout1 = TreeLayout::new(LmsType::H5, LmotsType::W8, id1, 0).unwrap();
    let tree1 = Sector::generate(layout1, 0, 1, |_| seed1.clone()).unwrap();
    assert_eq!(layout1.public_key(tree1.root()), child);

    // The final signature is reproducible from SEED and the published randomizer C.
    let c = hex32("0eb1ed54a2460d512388cad533138d240534e97b1e82d33bd927d201dfc24ebb");
    let ots = lmots::sign_with_randomizer(LmotsType::W8, &id1, 4, &seed1, &c, &msg);
    let ours = LmsSignature {
        q: 4,
        ots,
        lms_type: LmsType::H5,
        path: tree1.auth_path(4).unwrap(),
    };
    assert_eq!(ours.encode(), last.encode());
}
