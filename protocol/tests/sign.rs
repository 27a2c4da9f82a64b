//! Signing over the in-memory federation of `common` (real ledgers and agents): sign requests
//! on the ledger, each leaf rebuilt by its quorum's masked contributions at the requester, the
//! owner's path, the signature published and verified by the ledger, a light client and
//! hbs-lms. Every loop is bounded.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeSet;

use common::*;
use seedfed_protocol::agent::Fault;
use seedfed_protocol::ledger::{ConvictionEvidence, KeyParams, TxBody};
use seedfed_protocol::lms::LmsSignature;
use seedfed_protocol::reconstruct::blame::BlameEvidence;

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
        net.submit
            .push((usize::from(i % 3), TxBody::SignRequest { digest }));
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

fn key(k: u16, r: u16) -> KeyParams {
    KeyParams {
        tree_height: 5,
        sector_bits: 1,
        leaf_threshold: k,
        leaf_holders: r,
        ack_threshold: r,
        audit_leaves: 2,
        sector_window: seedfed_protocol::ledger::DEFAULT_SECTOR_WINDOW,
    }
}

/// Runs `requests` sign requests by node 0 on a federation with one faulty validator, until
/// every leaf is signed; returns the net and the faulty member.
fn sign_with_fault(
    n: usize,
    k: u16,
    r: u16,
    fault: Fault,
    seed: u64,
    requests: u8,
) -> (Net, usize) {
    let bad = n - 1;
    let mut net = Net::with_key(n, &[], &[(bad, fault)], seed, key(k, r));
    net.run_until(400, |net| net.st().master_root.is_some());
    for i in 0..requests {
        net.submit.push((
            0,
            TxBody::SignRequest {
                digest: [i + 1; 32],
            },
        ));
    }
    net.step();
    let public = net.st().master_public_key().unwrap();
    net.run_until(150, |net| {
        net.st().signatures.len() == usize::from(requests)
    });
    for (leaf, request) in &net.st().sign_requests {
        let sig =
            seedfed_protocol::lms::LmsSignature::decode_hss(&net.st().signatures[leaf]).unwrap();
        public.verify(&request.digest, &sig).unwrap();
    }
    (net, bad)
}

#[test]
fn a_wrong_contribution_is_convicted_on_the_ledger_and_signing_completes() {
    let (net, bad) = sign_with_fault(6, 2, 4, Fault::BadContribution, 43, 4);
    let st = net.st();
    let liar = id(&net.nodes[bad].key);
    assert_eq!(
        st.sign_convictions.keys().copied().collect::<Vec<_>>(),
        vec![liar]
    );
    let c = &st.sign_convictions[&liar];
    let ConvictionEvidence::Signing { evidence, .. } = &c.evidence else {
        panic!("{c:?}")
    };
    assert!(
        matches!(**evidence, BlameEvidence::BadContribution { .. }),
        "{evidence:?}"
    );
    assert!(!st.is_validator(&liar), "the convicted member is evicted");
    assert_eq!(st.evictions.len(), 1);
}

#[test]
fn a_member_disputing_everyone_is_the_only_one_excluded_and_signing_completes() {
    let (net, bad) = sign_with_fault(7, 3, 5, Fault::DisputeEveryone, 44, 4);
    let st = net.st();
    let liar = id(&net.nodes[bad].key);
    assert_eq!(
        st.sign_convictions.keys().copied().collect::<Vec<_>>(),
        vec![liar]
    );
    let c = &st.sign_convictions[&liar];
    let ConvictionEvidence::Signing { evidence, .. } = &c.evidence else {
        panic!("{c:?}")
    };
    assert!(
        matches!(**evidence, BlameEvidence::MaskDispute { .. }),
        "{evidence:?}"
    );
    assert!(!st.is_validator(&liar));
    // Nobody else was convicted or evicted.
    assert_eq!(st.evictions.keys().copied().collect::<Vec<_>>(), vec![liar]);
    assert_eq!(st.validators().len(), 6);
}
