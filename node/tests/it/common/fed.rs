//! A running test federation of `seedfed` processes (`Fed`), and the checks every key
//! generation passes; shared by the key-generation and signing tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use seedfed_node::chain::ChainStatus;
use seedfed_node::genesis::Genesis;
use seedfed_protocol::member::MemberId;

use super::*;

/// Fast blocks for the tests; everything else is the default configuration.
pub const ENV: &[(&str, &str)] = &[
    ("SEEDFED__CONSENSUS__BLOCK_INTERVAL_MS", "50"),
    ("SEEDFED__CONSENSUS__SYNC_INTERVAL_MS", "500"),
];

/// [`ENV`] with short consensus timeouts, for a federation with a dead validator (every
/// height it should propose waits for the propose timeout).
pub const ENV_DEAD_PROPOSER: &[(&str, &str)] = &[
    ("SEEDFED__CONSENSUS__BLOCK_INTERVAL_MS", "50"),
    ("SEEDFED__CONSENSUS__SYNC_INTERVAL_MS", "500"),
    ("SEEDFED__CONSENSUS__PROPOSE_TIMEOUT_MS", "500"),
    ("SEEDFED__CONSENSUS__VOTE_TIMEOUT_MS", "300"),
];

/// Whether `c` has a final key and a recorded checkpoint that signs the whole public key.
pub fn key_endorsed(c: &ChainStatus) -> bool {
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
pub fn member(genesis: &Genesis, i: usize) -> MemberId {
    let peer: libp2p::PeerId = genesis.validators[i].peer_id.parse().unwrap();
    seedfed_node::chain::member_of(&peer).unwrap()
}

/// A running test federation: the bootstrap node, the validator processes (`None` once
/// killed), their homes, the passphrase file and the genesis.
pub struct Fed {
    pub _dir: tempfile::TempDir,
    pub boot: seedfed_node::node::RunningNode,
    pub procs: Vec<Option<Proc>>,
    pub homes: Vec<PathBuf>,
    pub pass: PathBuf,
    pub genesis: Genesis,
}

impl Fed {
    /// Starts the federation of `spec`; validator `i` gets the extra `seedfed run` arguments
    /// listed for it in `args` (a fault).
    pub async fn start(spec: &Spec, args: &[(usize, &[&str])]) -> Fed {
        Self::start_with(spec, args, ENV).await
    }

    /// As [`Fed::start`], with the node environment `env`.
    pub async fn start_with(spec: &Spec, args: &[(usize, &[&str])], env: &[(&str, &str)]) -> Fed {
        let dir = tempfile::tempdir().unwrap();
        let (boot, boot_addr) = start_test_bootstrap(dir.path()).await;
        let (homes, pass, genesis) = federation_spec(dir.path(), &boot_addr.to_string(), spec);
        let procs = homes
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let extra = args.iter().find(|(j, _)| *j == i).map_or(&[][..], |a| a.1);
                Some(start_node_with(h, &pass, env, extra))
            })
            .collect();
        Fed {
            _dir: dir,
            boot,
            procs,
            homes,
            pass,
            genesis,
        }
    }

    pub fn member(&self, i: usize) -> MemberId {
        member(&self.genesis, i)
    }

    pub fn hex(&self, i: usize) -> String {
        hex::encode(self.member(i).as_bytes())
    }

    pub fn index_of(&self, m: &MemberId) -> usize {
        (0..self.homes.len())
            .find(|&i| self.member(i) == *m)
            .unwrap()
    }

    /// The checks every key generation passes, on the running validators `nodes` (the first
    /// is waited on): the master root and a checkpoint of the whole public key, the same key
    /// everywhere, `seedfed pubkey` writing it in the form hbs-lms takes, and nothing left in
    /// memory. Returns the first node's status.
    pub async fn key_generated(&self, nodes: &[usize]) -> ChainStatus {
        let c = wait_chain(
            &self.homes[nodes[0]],
            120,
            "a master root and its checkpoint",
            key_endorsed,
        )
        .await;
        let root = c.key.master_root.clone().unwrap();
        let public = c.key.public_key.clone().unwrap();
        for &i in &nodes[1..] {
            let o = wait_chain(&self.homes[i], 60, "the same key", |o| {
                o.key.master_root.is_some()
            })
            .await;
            assert_eq!(o.key.master_root.as_ref(), Some(&root));
            assert_eq!(o.key.public_key.as_ref(), Some(&public));
        }
        // `seedfed pubkey` writes the key; hbs-lms takes it; it is the HSS L=1 encoding of the
        // root.
        let out = self.homes[nodes[0]].join("seedfed.pub");
        let run = Command::new(seedfed_bin())
            .arg("--home")
            .arg(&self.homes[nodes[0]])
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
        // ... and next to it the leaves the audit retired, as many as the status counts.
        let retired = std::fs::read_to_string(self.homes[nodes[0]].join("seedfed.pub.retired"));
        let retired = seedfed_protocol::retired::RetiredLeaves::from_text(&retired.unwrap());
        assert_eq!(retired.unwrap().len() as u64, c.key.leaves_retired);
        hbs_lms::VerifyingKey::<hbs_lms::Sha256_256>::from_bytes(&bytes).unwrap();
        let pk = seedfed_protocol::lms::LmsPublicKey::decode_hss(&bytes).unwrap();
        assert_eq!(hex::encode(pk.root), root);
        // Nobody is still generating or holding anything in memory.
        for &i in nodes {
            let s = node_status(&self.homes[i]).await.unwrap().chain.unwrap();
            assert!(s.agent.keygen_owned.is_empty(), "{:?}", s.agent);
            assert!(s.agent.keygen_holding.is_empty(), "{:?}", s.agent);
            assert!(s.key.held_sectors > 0);
        }
        c
    }
}

impl Fed {
    /// Validator `i`'s identity key, which the genesis also authorizes as a signing client.
    pub fn client_key(&self, i: usize) -> ed25519_dalek::SigningKey {
        let pass =
            seedfed_node::keystore::Passphrase::new(std::fs::read_to_string(&self.pass).unwrap());
        let (identity, _) =
            seedfed_node::keystore::load(&self.homes[i].join("keystore.json"), &pass).unwrap();
        let seed = seedfed_node::node::identity_seed(&identity).unwrap();
        ed25519_dalek::SigningKey::from_bytes(&seed)
    }
}

/// The ledger in the store of the node home `home` (its process must have stopped).
pub fn stored_ledger(home: &Path, genesis: &Genesis) -> seedfed_protocol::ledger::LedgerState {
    let mut store = seedfed_node::chain::storage::ChainStore::new(
        seedfed_node::node::open_store(&home.join("data")).unwrap(),
    );
    store
        .load(&genesis.to_ledger().unwrap())
        .unwrap()
        .ledger
        .state
}
