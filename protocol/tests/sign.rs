//! Signing over the in-memory federation of `common` (real ledgers and agents): sign requests
//! on the ledger, each leaf rebuilt by its quorum's masked contributions at the requester, the
//! owner's path, the signature published and verified by the ledger, a light client and
//! hbs-lms. Every loop is bounded.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeSet;

use common::*;
use seedfed_protocol::lms::LmsSignature;

#[test]
fn requests_are_signed_by_mpc_and_every_signature_verifies() {
    let mut net = Net::new(4, &[], &[], 41);
    net.run_until(400, |net| net.st().master_root.is_some());
    let public = net.st().master_public_key().unwrap();
    // Three requesters, two requests each, all in one block.
    let mut digests = Vec::new();
    for i in 0..6u8 {
        let digest = [i + 1; 32];
        digests.push(digest);
        let body = request(digest, net.st().epoch, u64::from(i));
        net.submit.push((usize::from(i % 3), body));
    }
    net.step();
    let allocated: Vec<u64> = net.st().sign_requests.keys().copied().collect();
    assert_eq!(allocated.len(), 6);
    net.run_until(60, |net| net.st().signatures.len() == 6);
    let st = net.st();
    let retired = st.retired_leaves();
    let mut leaves = BTreeSet::new();
    for (leaf, request) in &st.sign_requests {
        assert!(!retired.contains(leaf));
        assert!(leaves.insert(*leaf));
        let bytes = &st.signatures[leaf];
        let sig = LmsSignature::decode_hss(bytes).unwrap();
        assert_eq!(u64::from(sig.q), *leaf);
        public.verify(&request.digest, &sig).unwrap();
        // An independent implementation agrees.
        let hpk = public.encode_hss();
        assert!(hbs_lms::verify::<hbs_lms::Sha256_256>(&request.digest, bytes, &hpk).is_ok());
    }
    // Nobody keeps anything of a signed leaf in memory.
    for node in &net.nodes {
        let s = node.agent.as_ref().unwrap().status();
        assert!(s.keygen_owned.is_empty(), "{s:?}");
    }
}
