//! The sector audit on the ledger (`docs/protocol.md` step 6), on the in-memory federation of
//! `common`: what the ledger refuses (reveals by non-holders, shares or commitments that do
//! not check, paths from anyone but the owner, late partials, a master root before every
//! audit passed), that audited leaves are never allocated, and that a light client refuses the
//! signatures anyone can forge at them. Every loop is bounded.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use crate::common;

use common::*;
use seedfed_protocol::agent::reveal_txs;
use seedfed_protocol::dealing::HeldSector;
use seedfed_protocol::ledger::{chain_digest, decode, LedgerError, TxBody};
use seedfed_protocol::light_client::{LightClientError, Trusted};
use seedfed_protocol::lms::{self, LmsSignature};
use seedfed_protocol::master::Master;
use seedfed_protocol::member::MemberId;
use seedfed_protocol::retired::RetiredLeaves;
use seedfed_protocol::shamir::{self, Share};

/// Applies `body` signed by node `i` to a copy of the ledger at the next height.
fn try_tx(net: &Net, i: usize, body: TxBody) -> Result<(), LedgerError> {
    net.try_tx(net.st(), i, net.st().height + 1, body)
        .map(|_| ())
}

/// Node `i`'s `AuditReveal` of `leaf` of `sector`, from the record it kept.
fn reveal(net: &Net, i: usize, sector: u32, leaf: u64) -> TxBody {
    let rec = &net.st().newest.sectors[&sector];
    let held: HeldSector = decode(&net.nodes[i].kept[&(sector, rec.commitments_root)]).unwrap();
    reveal_txs(&held, &[leaf]).unwrap().remove(0)
}

fn holders(net: &Net, sector: u32, leaf: u64) -> Vec<MemberId> {
    let st = net.st();
    st.newest.sectors[&sector]
        .basis
        .leaf_holders(leaf, st.key.leaf_holders)
        .unwrap()
}

#[test]
fn the_ledger_checks_every_audit_transaction() {
    let mut net = Net::new(4, &[], &[], 31);
    // Stop right after the first draw, before any reveal lands.
    net.run_until(300, |net| {
        net.st()
            .newest
            .audits
            .values()
            .any(|a| !a.leaves.is_empty())
    });
    let st = net.st().clone();
    let (sector, audit) = st
        .newest
        .audits
        .iter()
        .find(|(_, a)| !a.leaves.is_empty())
        .unwrap();
    let sector = *sector;
    assert_eq!(audit.leaves.len(), 2);
    assert!(audit.leaves.values().all(|la| la.shares.is_empty()));
    let mut drawn = audit.leaves.keys().copied();
    let (leaf, other) = (drawn.next().unwrap(), drawn.next().unwrap());
    let hs = holders(&net, sector, leaf);
    let holder = net.index_of(&hs[0]);
    let good = reveal(&net, holder, sector, leaf);
    assert_eq!(try_tx(&net, holder, good.clone()), Ok(()));

    // A validator that does not hold the leaf cannot reveal for it.
    // (4 validators, 3 holders per leaf: there is one.)
    let outsider = (0..4)
        .find(|i| !hs.contains(&id(&net.nodes[*i].key)))
        .unwrap();
    assert_eq!(
        try_tx(&net, outsider, good.clone()),
        Err(LedgerError::BadAudit("the author does not hold the leaf"))
    );
    let TxBody::AuditReveal {
        share,
        commitment,
        path,
        ..
    } = good.clone()
    else {
        unreachable!()
    };
    // Another holder's share value is not this holder's share.
    let second = net.index_of(&hs[1]);
    let TxBody::AuditReveal { share: theirs, .. } = reveal(&net, second, sector, leaf) else {
        unreachable!()
    };
    assert_ne!(share, theirs);
    let bad_share = TxBody::AuditReveal {
        sector,
        leaf,
        share: theirs,
        commitment: commitment.clone(),
        path: path.clone(),
    };
    assert_eq!(
        try_tx(&net, holder, bad_share),
        Err(LedgerError::BadAudit("share fails the leaf's commitment"))
    );
    // Another leaf's commitment is not under the root at this leaf's position.
    if holders(&net, sector, other).contains(&hs[0]) {
        let TxBody::AuditReveal {
            commitment: c2,
            path: p2,
            ..
        } = reveal(&net, holder, sector, other)
        else {
            unreachable!()
        };
        let moved = TxBody::AuditReveal {
            sector,
            leaf,
            share,
            commitment: c2,
            path: p2,
        };
        assert_eq!(
            try_tx(&net, holder, moved),
            Err(LedgerError::BadAudit(
                "commitment not under the commitments root"
            ))
        );
    }
    let short = TxBody::AuditReveal {
        sector,
        leaf,
        share,
        commitment: commitment.clone(),
        path: path[1..].to_vec(),
    };
    assert_eq!(
        try_tx(&net, holder, short),
        Err(LedgerError::BadAudit("commitment path of the wrong length"))
    );
    // A leaf that was not drawn cannot be revealed.
    let undrawn = (leaf + 1..)
        .find(|l| !audit.leaves.contains_key(l))
        .unwrap();
    assert_eq!(
        try_tx(
            &net,
            holder,
            TxBody::AuditReveal {
                sector,
                leaf: undrawn,
                share,
                commitment,
                path: path.clone(),
            }
        ),
        Err(LedgerError::BadAudit("leaf not drawn for audit"))
    );
    // Only the owner posts paths.
    let owner = net.index_of(&st.newest.sectors[&sector].owner);
    let not_owner = (owner + 1) % 4;
    let path_tx = TxBody::AuditPath {
        sector,
        leaf,
        path: path.clone(),
    };
    assert_eq!(
        try_tx(&net, not_owner, path_tx),
        Err(LedgerError::NotSectorOwner(id(&net.nodes[not_owner].key)))
    );
    // The draw is fixed: a partial after it is refused.
    let partial = audit.partials[0];
    let drawer = net.index_of(&partial.member);
    assert_eq!(
        try_tx(&net, drawer, TxBody::AuditPartial { sector, partial }),
        Err(LedgerError::BadAudit("the audit is already drawn"))
    );
}

#[test]
fn the_master_root_waits_for_the_audits_and_audited_leaves_are_never_allocated() {
    let mut net = Net::new(4, &[], &[], 32);
    net.run_until(300, |net| {
        net.st().newest.sectors.len() == net.st().key.sectors() as usize
    });
    let st = net.st().clone();
    // The last sector's audit opened in this very block: it cannot have passed.
    assert!(!st.audits_passed());
    {
        let layout = st.key.layout(&chain_digest(CHAIN), 0).unwrap();
        let roots: Vec<[u8; 32]> = st.newest.sectors.values().map(|s| s.root).collect();
        let root = Master::from_sector_roots(layout, &roots).unwrap().root();
        let Err(LedgerError::AuditsPending { pending }) =
            try_tx(&net, 0, TxBody::MasterRoot { root })
        else {
            panic!("a master root before the audits passed is refused");
        };
        assert!(pending > 0);
    }
    net.run_until(300, |net| net.st().newest.endorsed.is_some());
    let retired = net.st().newest.retired_leaves();
    assert_eq!(retired.len(), 4);
    // Allocate every leaf the key has: none is audited, each once, then the key is exhausted.
    let total = net.st().key.leaves();
    let mut allocated = Vec::new();
    for n in 0..total {
        let before = net.st().newest.next_leaf;
        let mut digest = [0u8; 32];
        digest[..8].copy_from_slice(&n.to_le_bytes());
        let body = request(digest, net.st().epoch, n);
        let Ok(st) = net.try_tx(net.st(), 0, net.st().height + 1, body) else {
            break;
        };
        let leaf = *st.sign_requests.keys().last().unwrap();
        assert!(leaf >= before && !retired.contains(&leaf));
        allocated.push(leaf);
        net.nodes[0].ledger.state = st;
    }
    assert_eq!(allocated.len() as u64, total - retired.len() as u64);
    let distinct: std::collections::BTreeSet<u64> = allocated.iter().copied().collect();
    assert_eq!(distinct.len(), allocated.len());
    assert!(matches!(
        try_tx(&net, 0, request([9; 32], net.st().epoch, total)),
        Err(LedgerError::KeyExhausted(_))
    ));
}

#[test]
fn an_owner_that_withholds_its_audit_paths_loses_its_sectors_and_the_key_completes() {
    let mut net = Net::new(4, &[], &[], 33);
    // Right after the first draw, before its owner posts the paths.
    net.run_until(300, |net| {
        net.st()
            .newest
            .audits
            .values()
            .any(|a| !a.leaves.is_empty())
    });
    let st = net.st().clone();
    let sector = *st
        .newest
        .audits
        .iter()
        .find(|(_, a)| !a.leaves.is_empty())
        .unwrap()
        .0;
    let owner = st.newest.sectors[&sector].owner;
    net.withhold_paths.insert(net.index_of(&owner));
    // After the window its sectors that have not passed their audit are discarded.
    net.run_until(300, |net| {
        net.st().newest.keygen_misses.contains_key(&owner)
    });
    let st = net.st();
    assert!(!st.newest.sectors.contains_key(&sector));
    assert!(st
        .newest
        .sectors
        .iter()
        .all(|(s, r)| r.owner != owner || st.newest.audits.get(s).is_some_and(|a| a.passed())));
    assert!(st.is_validator(&owner), "missing is not evicted");
    // Another owner deals it again; every sector is audited and the key completes.
    net.run_until(400, |net| net.st().newest.endorsed.is_some());
    let st = net.st();
    assert!(st.audits_passed());
    assert_ne!(st.newest.sectors[&sector].owner, owner);
}

/// The audit rebuilds leaf seeds in public, so anyone can sign at an audited leaf: from the
/// ledger's reveals and the owner's posted path alone, a signature on a message the federation
/// never signed verifies under the master key with plain RFC 8554 verification. A light client
/// that walked the checkpoints and checked the retired list against the digest they commit to
/// refuses it as `RetiredLeaf`, refuses a tampered list, and still accepts an honest signature.
#[test]
fn a_signature_forged_at_an_audited_leaf_is_refused_by_the_light_client() {
    let mut net = Net::new(4, &[], &[], 34);
    net.run_until(400, |net| net.st().newest.endorsed.is_some());
    // One honest signature, through the federation.
    let digest = [7u8; 32];
    net.submit.push((0, request(digest, net.st().epoch, 0)));
    net.step();
    net.run_until(100, |net| {
        net.st().signatures.len() == 1
            && net
                .st()
                .checkpoints
                .iter()
                .any(|c| !c.body.master_key.is_none())
    });
    let st = net.st().clone();
    let (&honest_leaf, honest) = st.signatures.iter().next().unwrap();
    let public = st.master_public_key().unwrap();
    let public_hss = public.encode_hss();

    // The forger: everything below is read from the public ledger state.
    let (&sector, audit) = st.newest.audits.iter().next().unwrap();
    let (&leaf, revealed) = audit.leaves.iter().next().unwrap();
    assert!(revealed.passed);
    let k = usize::from(st.key.leaf_threshold);
    let shares: Vec<Share> = revealed
        .shares
        .iter()
        .take(k)
        .map(|(m, v)| Share::new(*m, v).unwrap())
        .collect();
    let seed = shamir::reconstruct(&shares, k).unwrap().lms_seed();
    let layout = st.key.layout(&chain_digest(CHAIN), 0).unwrap();
    let roots: Vec<[u8; 32]> = st.newest.sectors.values().map(|r| r.root).collect();
    let master = Master::from_sector_roots(layout, &roots).unwrap();
    let mut path = revealed.path.clone().unwrap();
    path.extend(master.auth_path(sector).unwrap());
    let q = u32::try_from(leaf).unwrap();
    let message = [0xee; 32];
    let forged = lms::sign(
        layout.lms_type,
        layout.ots_type,
        &layout.id,
        q,
        &seed,
        &message,
        path,
    )
    .unwrap();
    public.verify(&message, &forged).unwrap();
    let forged = forged.encode_hss();
    lms::verify_hss_bytes(&public_hss, &message, &forged).unwrap();
    assert!(hbs_lms::verify::<hbs_lms::Sha256_256>(&message, &forged, &public_hss).is_ok());

    // The light client, from epoch 0's key over the recorded checkpoints.
    let anchor = st.dkg_results[&0].ed25519_group_key;
    let mut t = Trusted::new(chain_digest(CHAIN), anchor).unwrap();
    let links: Vec<(Vec<u8>, [u8; 64])> = st
        .checkpoints
        .iter()
        .map(|c| (c.body.checkpoint().to_bytes().to_vec(), c.signature.0))
        .collect();
    t.walk(links.iter().map(|(b, s)| (b.as_slice(), s.as_slice())))
        .unwrap();
    let retired = RetiredLeaves::new(st.newest.retired_leaves());
    assert!(retired.contains(leaf) && !retired.contains(honest_leaf));
    assert_eq!(t.retired_digest, retired.digest());
    assert_eq!(
        t.verify_signature(&public_hss, &digest, honest)
            .unwrap_err(),
        LightClientError::RetiredUnknown
    );
    // A server that leaves the forged leaf out of the list is caught by the digest.
    let tampered: Vec<u64> = retired
        .as_slice()
        .iter()
        .copied()
        .filter(|l| *l != leaf)
        .collect();
    assert_eq!(
        t.accept_retired(&tampered).unwrap_err(),
        LightClientError::RetiredMismatch {
            len: retired.len() - 1
        }
    );
    t.accept_retired(retired.as_slice()).unwrap();
    assert_eq!(
        t.verify_signature(&public_hss, &message, &forged)
            .unwrap_err(),
        LightClientError::RetiredLeaf { q }
    );
    assert_eq!(
        LmsSignature::decode_hss(honest).unwrap().q,
        honest_leaf as u32
    );
    t.verify_signature(&public_hss, &digest, honest).unwrap();
}
