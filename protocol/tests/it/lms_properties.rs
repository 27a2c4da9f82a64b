//! Property and bad-input tests for the LMS encodings, signing and verification.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::OnceLock;

use proptest::prelude::*;
use seedfed_protocol::lmots::{DecodeError, LeafSeed, LmotsPublicKey, LmotsSignature, LmotsType};
use seedfed_protocol::lms::{self, HssPublicKey, LmsPublicKey, LmsSignature, LmsType, VerifyError};
use seedfed_protocol::master::Master;
use seedfed_protocol::sector::{Sector, TreeLayout};

fn seed_of(q: u32) -> LeafSeed {
    let mut b = [0xc3u8; 32];
    b[..4].copy_from_slice(&q.to_be_bytes());
    LeafSeed::from_bytes(b)
}

/// An H5 / W4 key built from 4 sectors.
fn fixture() -> &'static (Vec<Sector>, Master) {
    static F: OnceLock<(Vec<Sector>, Master)> = OnceLock::new();
    F.get_or_init(|| {
        let layout = TreeLayout::new(LmsType::H5, LmotsType::W4, [0x2b; 16], 2).unwrap();
        let sectors: Vec<Sector> = (0..4)
            .map(|b| Sector::generate(layout, b, 1, seed_of).unwrap())
            .collect();
        let roots: Vec<_> = sectors.iter().map(Sector::root).collect();
        let master = Master::from_sector_roots(layout, &roots).unwrap();
        (sectors, master)
    })
}

fn sign(q: u32, msg: &[u8]) -> LmsSignature {
    let (sectors, master) = fixture();
    let sector = &sectors[master.layout().sector_of(q).unwrap() as usize];
    master.sign(sector, q, &seed_of(q), msg).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn sign_verify_roundtrip(q in 0u32..32, msg in proptest::collection::vec(any::<u8>(), 0..300)) {
        let pk = fixture().1.public_key();
        let sig = sign(q, &msg);
        prop_assert_eq!(pk.verify(&msg, &sig), Ok(()));
        let bytes = sig.encode();
        prop_assert_eq!(bytes.len(), LmsSignature::encoded_len(LmsType::H5, LmotsType::W4));
        prop_assert_eq!(LmsSignature::decode(&bytes).unwrap(), sig.clone());
        prop_assert_eq!(lms::verify_hss_bytes(&pk.encode_hss(), &msg, &sig.encode_hss()), Ok(()));
        prop_assert_eq!(LmsPublicKey::decode_hss(&pk.encode_hss()).unwrap(), pk);
    }

    #[test]
    fn any_flipped_bit_is_rejected(
        q in 0u32..32,
        msg in proptest::collection::vec(any::<u8>(), 1..64),
        pos in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let pk = fixture().1.public_key();
        let mut bytes = sign(q, &msg).encode();
        let i = pos.index(bytes.len());
        bytes[i] ^= 1 << bit;
        let result = LmsSignature::decode(&bytes)
            .map_err(VerifyError::from)
            .and_then(|sig| pk.verify(&msg, &sig));
        prop_assert!(result.is_err(), "flip at byte {} bit {} accepted", i, bit);
    }

    #[test]
    fn other_message_is_rejected(
        q in 0u32..32,
        msg in proptest::collection::vec(any::<u8>(), 1..64),
        other in proptest::collection::vec(any::<u8>(), 1..64),
    ) {
        prop_assume!(msg != other);
        let pk = fixture().1.public_key();
        let sig = sign(q, &msg);
        prop_assert_eq!(pk.verify(&other, &sig), Err(VerifyError::Mismatch));
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2600)) {
        let pk = fixture().1.public_key().encode_hss();
        let _ = LmsSignature::decode(&bytes);
        let _ = LmsSignature::decode_hss(&bytes);
        let _ = LmsPublicKey::decode(&bytes);
        let _ = LmsPublicKey::decode_hss(&bytes);
        let _ = HssPublicKey::decode(&bytes);
        let _ = LmotsSignature::decode(&bytes);
        let _ = LmotsPublicKey::decode(&bytes);
        prop_assert!(lms::verify_hss_bytes(&pk, b"m", &bytes).is_err());
        let _ = lms::verify_hss_multilevel(&bytes, b"m", &bytes);
    }

    #[test]
    fn truncation_and_extension_are_rejected(q in 0u32..32, cut in any::<prop::sample::Index>()) {
        let bytes = sign(q, b"t").encode_hss();
        let n = cut.index(bytes.len());
        let truncated = matches!(
            LmsSignature::decode_hss(&bytes[..n]),
            Err(DecodeError::Truncated { .. })
        );
        prop_assert!(truncated);
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert_eq!(
            LmsSignature::decode_hss(&longer),
            Err(DecodeError::TrailingBytes { what: "HSS signature", extra: 1 })
        );
    }
}

#[test]
fn bad_type_codes_and_ranges() {
    let pk = fixture().1.public_key();
    let sig = sign(7, b"x").encode();
    // LM-OTS type code (bytes 4..8 of an LMS signature).
    let mut b = sig.clone();
    b[4..8].copy_from_slice(&9u32.to_be_bytes());
    assert_eq!(
        LmsSignature::decode(&b),
        Err(DecodeError::UnknownLmotsType(9))
    );
    // A valid but different LM-OTS type changes the expected length: the type is honoured
    // and the encoding no longer fits.
    let mut b = sig.clone();
    b[4..8].copy_from_slice(&LmotsType::W8.typecode().to_be_bytes());
    assert!(LmsSignature::decode(&b).is_err());
    // LMS type code.
    let lms_at = 4 + LmotsType::W4.signature_len();
    let mut b = sig.clone();
    b[lms_at..lms_at + 4].copy_from_slice(&0x1234u32.to_be_bytes());
    assert_eq!(
        LmsSignature::decode(&b),
        Err(DecodeError::UnknownLmsType(0x1234))
    );
    // q out of range.
    let mut b = sig.clone();
    b[..4].copy_from_slice(&32u32.to_be_bytes());
    assert_eq!(
        LmsSignature::decode(&b),
        Err(DecodeError::LeafOutOfRange { q: 32, height: 5 })
    );
    // Signature of another tree height fails against this key with a clear error.
    let mut other = LmsSignature::decode(&sig).unwrap();
    other.lms_type = LmsType::H10;
    other.path.extend(vec![[0; 32]; 5]);
    assert_eq!(
        pk.verify(b"x", &other),
        Err(VerifyError::LmsTypeMismatch {
            expected: LmsType::H5,
            found: LmsType::H10
        })
    );
    // Empty input.
    assert!(matches!(
        LmsSignature::decode(&[]),
        Err(DecodeError::Truncated {
            needed: 4,
            had: 0,
            ..
        })
    ));
}

#[test]
fn hss_wrappers_are_strict() {
    let pk = fixture().1.public_key();
    let mut l2 = pk.encode_hss();
    l2[3] = 2;
    assert_eq!(
        LmsPublicKey::decode_hss(&l2),
        Err(DecodeError::UnsupportedLevels {
            found: 2,
            min: 1,
            max: 1
        })
    );
    let mut l9 = pk.encode_hss();
    l9[3] = 9;
    assert!(matches!(
        HssPublicKey::decode(&l9),
        Err(DecodeError::UnsupportedLevels { found: 9, .. })
    ));
    let mut s = sign(1, b"y").encode_hss();
    s[3] = 1;
    assert_eq!(
        LmsSignature::decode_hss(&s),
        Err(DecodeError::WrongSignedKeyCount {
            found: 1,
            expected: 0
        })
    );
    assert!(matches!(
        LmsPublicKey::decode(&pk.encode()[..55]),
        Err(DecodeError::Truncated { .. })
    ));
    let mut bad = pk.encode();
    bad[0..4].copy_from_slice(&3u32.to_be_bytes());
    assert_eq!(
        LmsPublicKey::decode(&bad),
        Err(DecodeError::UnknownLmsType(3))
    );
    // Errors render as text without panicking and without secrets.
    let text = DecodeError::UnknownLmsType(3).to_string();
    assert!(text.contains("0x00000003"));
}

#[test]
fn debug_never_shows_seed_bytes() {
    let s = LeafSeed::from_bytes([0xee; 32]);
    let d = format!("{s:?} {:?}", vec![s.clone()]);
    assert!(d.contains("[redacted]"));
    assert!(!d.contains("238") && !d.to_lowercase().contains("ee, "));
}
