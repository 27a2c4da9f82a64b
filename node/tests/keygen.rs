//! Key generation on real `seedfed` processes over loopback libp2p: validators send branch-seed
//! partials to owners, owners generate and deal their sectors to the ledger's holders, holders
//! keep their shares sealed and acknowledge, sector roots and the master root land, and a
//! checkpoint signs the key. Afterwards every node's store is read with its passphrase: every
//! leaf has at least `a` verified shares at its ledger-chosen holders, `k` of them rebuild leaf
//! seeds that regenerate exactly the sector roots on the ledger, and no leaf seed or share value
//! appears in any raw store file.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup should panic

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use seedfed_node::at_rest::AtRestKey;
use seedfed_node::chain::storage::ChainStore;
use seedfed_node::chain::ChainStatus;
use seedfed_node::genesis::{Genesis, KeySection};
use seedfed_node::keystore::{self, Passphrase};
use seedfed_protocol::dealing::HeldSector;
use seedfed_protocol::ledger::{chain_digest, decode, LedgerState};
use seedfed_protocol::lmots::LeafSeed;
use seedfed_protocol::member::MemberId;
use seedfed_protocol::sector::Sector;
use seedfed_protocol::shamir::{self, Share};

/// Fast blocks for the test; everything else is the default configuration.
const ENV: &[(&str, &str)] = &[
    ("SEEDFED__CONSENSUS__BLOCK_INTERVAL_MS", "50"),
    ("SEEDFED__CONSENSUS__SYNC_INTERVAL_MS", "500"),
];

/// Whether `c` has a final key and a recorded checkpoint that signs the whole public key.
fn key_endorsed(c: &ChainStatus) -> bool {
    let Some(public) = &c.key.public_key else {
        return false;
    };
    c.checkpoints.iter().any(|cp| {
        let bytes = hex::decode(&cp.bytes).unwrap();
        let parsed = seedfed_protocol::checkpoint::Checkpoint::from_bytes(&bytes).unwrap();
        parsed
            .master_key
            .encode_hss()
            .is_ok_and(|k| hex::encode(k) == *public)
    })
}

/// The member id of genesis validator `i`.
fn member(genesis: &Genesis, i: usize) -> MemberId {
    let peer: libp2p::PeerId = genesis.validators[i].peer_id.parse().unwrap();
    seedfed_node::chain::member_of(&peer).unwrap()
}

/// What one stopped node's store holds: its ledger and its held sectors, opened with its
/// passphrase.
struct Opened {
    ledger: LedgerState,
    held: BTreeMap<u32, HeldSector>,
}

fn open_node(home: &Path, pass: &Path, genesis: &Genesis) -> Opened {
    let pass = Passphrase::new(std::fs::read_to_string(pass).unwrap());
    let (identity, _) = keystore::load(&home.join("keystore.json"), &pass).unwrap();
    let seed = seedfed_node::node::identity_seed(&identity).unwrap();
    let key = AtRestKey::derive(&seed, &identity.x25519.to_bytes());
    let mut store = ChainStore::new(seedfed_node::node::open_store(&home.join("data")).unwrap());
    let ledger = store
        .load(&genesis.to_ledger().unwrap())
        .unwrap()
        .ledger
        .state;
    let mut held = BTreeMap::new();
    for (sector, root) in store.held_index().unwrap() {
        let bytes = store.held(&key, sector, &root).unwrap().unwrap();
        let rec: HeldSector = decode(&bytes).unwrap();
        assert_eq!(ledger.sectors[&sector].commitments_root, root);
        held.insert(sector, rec);
    }
    Opened { ledger, held }
}

/// Every bytes of every regular file under `dir`.
fn raw_files(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.extend(std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The store-level checks: for every leaf of every sector, the ledger-chosen holders that
/// acknowledged hold a share that fits its commitment (at least `a` per leaf), `k` of them
/// rebuild seeds that regenerate the sector's root; every sector passed its audit; no seed or
/// share value of a leaf that was not audited is in any raw file.
fn check_stores(homes: &[PathBuf], pass: &Path, genesis: &Genesis) {
    let nodes: Vec<(MemberId, Opened)> = homes
        .iter()
        .enumerate()
        .map(|(i, h)| (member(genesis, i), open_node(h, pass, genesis)))
        .collect();
    let st = &nodes[0].1.ledger;
    let layout = st.key.layout(&chain_digest(&st.chain_id)).unwrap();
    let (k, r, a) = (
        usize::from(st.key.leaf_threshold),
        st.key.leaf_holders,
        usize::from(st.key.ack_threshold),
    );
    let by_member: BTreeMap<MemberId, &Opened> = nodes.iter().map(|(m, o)| (*m, o)).collect();
    // Every secret value seen (leaf seeds and shares), to look for in the raw files at the end;
    // the audited leaves are retired and their shares are on the ledger in clear by design.
    let mut secrets: HashSet<[u8; 32]> = HashSet::new();
    assert_eq!(st.sectors.len() as u32, st.key.sectors());
    let retired = st.retired_leaves();
    assert!(st.audits_passed());
    assert_eq!(
        retired.len(),
        st.sectors.len() * usize::from(st.key.audit_leaves)
    );
    for (sector, rec) in &st.sectors {
        let leaves = layout.sector_leaves(*sector).unwrap();
        let range = u64::from(leaves.start)..u64::from(leaves.end);
        let holders = rec.basis.holders_of(range.clone(), r).unwrap();
        let mut seeds: Vec<LeafSeed> = Vec::new();
        for (leaf, hs) in range.clone().zip(&holders) {
            let i = (leaf - range.start) as usize;
            let mut shares: Vec<Share> = Vec::new();
            for h in hs.iter().filter(|h| rec.acked.contains(h)) {
                let held = &by_member[h].held[sector];
                let (_, share) = held.shares.iter().find(|(l, _)| *l == leaf).unwrap();
                let commitment = held.commitments[i].decode().unwrap();
                shamir::verify_share(share, &commitment, k).unwrap();
                shares.push(share.clone());
            }
            assert!(shares.len() >= a, "leaf {leaf}: {} shares", shares.len());
            let secret = shamir::reconstruct(&shares[..k], k).unwrap();
            if !retired.contains(&leaf) {
                secrets.insert(*secret.to_bytes());
                secrets.extend(shares.iter().map(|s| *s.value_bytes()));
            }
            seeds.push(secret.lms_seed());
        }
        let tree = Sector::generate_from_seeds(layout, *sector, 1, &seeds).unwrap();
        assert_eq!(tree.root(), rec.root, "sector {sector}");
    }
    for h in homes {
        let raw = raw_files(&h.join("data"));
        let found = raw.windows(32).filter(|w| secrets.contains(*w)).count();
        assert_eq!(
            found,
            0,
            "{}: a leaf seed or share is on disk in clear",
            h.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_generate_a_key_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let (boot, boot_addr) = start_test_bootstrap(dir.path()).await;
    let key = KeySection::default(); // 2^10 leaves in 4 sectors, 2-of-3, 3 acknowledgements
    let (homes, pass, genesis) = federation_with(dir.path(), 4, &boot_addr.to_string(), key);
    let procs: Vec<Proc> = homes.iter().map(|h| start_node(h, &pass, ENV)).collect();
    let c = wait_chain(
        &homes[0],
        300,
        "a master root and its checkpoint",
        key_endorsed,
    )
    .await;
    let root = c.key.master_root.clone().unwrap();
    let public = c.key.public_key.clone().unwrap();
    for h in &homes[1..] {
        let o = wait_chain(h, 60, "the same key", |o| o.key.master_root.is_some()).await;
        assert_eq!(o.key.master_root.as_ref(), Some(&root));
        assert_eq!(o.key.public_key.as_ref(), Some(&public));
    }
    // `seedfed pubkey` writes the key; hbs-lms takes it; it is the HSS L=1 encoding of the root.
    let out = dir.path().join("seedfed.pub");
    let run = Command::new(seedfed_bin())
        .arg("--home")
        .arg(&homes[0])
        .args(["pubkey", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(hex::encode(&bytes), public);
    hbs_lms::VerifyingKey::<hbs_lms::Sha256_256>::from_bytes(&bytes).unwrap();
    let pk = seedfed_protocol::lms::LmsPublicKey::decode_hss(&bytes).unwrap();
    assert_eq!(hex::encode(pk.root), root);
    // Nobody is still generating or holding anything in memory.
    for h in &homes {
        let s = node_status(h).await.unwrap().chain.unwrap();
        assert!(s.agent.keygen_owned.is_empty(), "{:?}", s.agent);
        assert!(s.agent.keygen_holding.is_empty(), "{:?}", s.agent);
        assert!(s.key.held_sectors > 0);
    }
    drop(procs);
    boot.stop().await;
    check_stores(&homes, &pass, &genesis);
}
