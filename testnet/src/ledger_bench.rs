//! `seedfed-bench ledger`: what one block costs a validator as the ledger grows. A block of
//! `--txs` signed transfers is validated (`Ledger::validate_block_with`: the state cloned, the
//! block applied, the state hashed; the transactions' signatures answered from the cache the
//! gossip check filled, as on a node) on ledgers that hold, besides the genesis, `--records`
//! published signatures (2.5 KB each, as a key's signing leaves them), `--records` signing
//! requests (one per leaf ever allocated) or `--records` extra members, each size measured
//! `--rounds` times after a warm-up (best round reported), and every size's time printed next
//! to the smallest size's, as a ratio. A state that costs only what a block changes gives
//! ratios near 1.
//!
//! Then the same block is committed to a node's store (`chain::storage`: the record encoded,
//! one fsynced redb batch), `--rounds` times, and beside it, in the same run, the write the
//! node made before members and sign requests were kept one entry per key: the whole state
//! (less the signatures' bytes) encoded and put in one fsynced write (`whole_write_ms`,
//! `whole_bytes`).
//!
//! In-process, no network: the records are put into the state directly (their validity does
//! not change what a block costs), then the block is built once by the proposer's code and
//! validated as every other validator would.

use std::time::Instant;

use anyhow::{ensure, Context};
use clap::Args;
use ed25519_dalek::SigningKey;
use seedfed_node::chain::storage::{ChainStore, DecidedRecord};
use seedfed_node::store::{self, Backend};
use seedfed_protocol::consensus::CommitCertificate;
use seedfed_protocol::ledger::{
    self, Block, CommitInfo, EpochParams, Genesis, GenesisValidator, KeyParams, Ledger, Member,
    MemberStatus, SigCache, SignRequestRecord, Tx, TxBody, DEFAULT_SECTOR_WINDOW,
};
use seedfed_protocol::member::MemberId;
use serde_json::json;

use crate::bench_json::rounded;

const CHAIN_ID: &str = "seedfed-ledger-bench";

/// An LMS signature's size at this project's parameters (SHA-256, W4, H15), about 2.5 KB.
const SIGNATURE_BYTES: usize = 2_500;

/// `seedfed-bench ledger`
#[derive(Debug, Args)]
pub struct LedgerArgs {
    /// Ledger sizes: records of each kind held besides the genesis.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000,100000")]
    pub records: Vec<usize>,
    /// Transfers in the block validated.
    #[arg(long, default_value_t = 100)]
    pub txs: u64,
    /// Interleaved repetitions; the best of each is reported.
    #[arg(long, default_value_t = 5)]
    pub rounds: u32,
}

/// The kinds of record a ledger grows by.
#[derive(Clone, Copy)]
enum Kind {
    Signatures,
    SignRequests,
    Members,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Signatures => "signatures",
            Kind::SignRequests => "sign_requests",
            Kind::Members => "members",
        }
    }
}

fn key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i.wrapping_add(1); 32])
}

fn id(k: &SigningKey) -> MemberId {
    MemberId(k.verifying_key().to_bytes())
}

/// A genesis of four validators, validator 0 rich enough to pay every transfer.
fn genesis() -> Genesis {
    Genesis {
        chain_id: CHAIN_ID.into(),
        pow_difficulty: 4,
        validators: (0..4)
            .map(|i| GenesisValidator {
                id: id(&key(i)),
                stake: 1_000_000,
                x25519: x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(
                    [i.wrapping_add(0x40); 32],
                ))
                .to_bytes(),
            })
            .collect(),
        key: KeyParams {
            tree_height: 15,
            sector_bits: 3,
            leaf_threshold: 3,
            leaf_holders: 5,
            ack_threshold: 4,
            audit_leaves: 0,
            sector_window: DEFAULT_SECTOR_WINDOW,
            rotate_percent: 0,
        },
        eviction_missed_heights: 1_000,
        epochs: EpochParams::default(),
        clients: Vec::new(),
    }
}

/// A ledger at genesis holding `n` records of `kind`, a block of `txs` transfers on it, and
/// the signature cache that building it filled.
fn setup(kind: Kind, n: usize, txs: u64) -> anyhow::Result<(Ledger, Block, SigCache)> {
    let mut ledger = Ledger::from_genesis(&genesis()).context("genesis")?;
    for i in 0..n as u64 {
        match kind {
            Kind::Signatures => ledger
                .state
                .signatures
                .insert(i, vec![(i % 251) as u8; SIGNATURE_BYTES]),
            Kind::SignRequests => {
                let client = MemberId([0xcc; 32]);
                ledger.state.sign_requests.insert(
                    i,
                    SignRequestRecord {
                        requester: id(&key(0)),
                        client,
                        request: (0, i),
                        digest: [(i % 251) as u8; 32],
                        height: i,
                        issue_to: None,
                    },
                );
            }
            Kind::Members => {
                let mut m = [0u8; 32];
                m[..8].copy_from_slice(&i.to_be_bytes());
                m[8] = 0xee;
                ledger.state.members.insert(
                    MemberId(m),
                    Member {
                        peer_id: m.to_vec(),
                        x25519: m,
                        stake: 0,
                        nonce: 0,
                        status: MemberStatus::Active,
                        admitted_epoch: 0,
                    },
                );
            }
        }
    }
    // As every state a block leaves behind (`LedgerState::settle`).
    ledger.state.settle();
    let (from, to) = (key(0), id(&key(1)));
    let candidates = (0..txs)
        .map(|nonce| {
            Tx {
                author: id(&from),
                nonce,
                body: TxBody::Transfer { to, amount: 1 },
            }
            .sign(CHAIN_ID, &from)
        })
        .collect();
    let mut sigs = SigCache::default();
    let built = ledger
        .build_block_with(id(&from), CommitInfo::default(), candidates, &mut sigs)
        .context("building the block")?;
    ensure!(
        built.rejected.is_empty(),
        "the bench's transfers were refused: {:?}",
        built.rejected.first().map(|(_, e)| e.to_string())
    );
    Ok((ledger, built.block, sigs))
}

/// What committing a block costs at one ledger size.
struct CommitCost {
    /// Best time of encoding the block's record and writing it (`ChainStore::commit`).
    commit_ms: f64,
    /// Best time of the whole state encoded and written in one fsynced put, as before.
    whole_write_ms: f64,
    /// Bytes of that whole state.
    whole_bytes: usize,
}

/// Commits `block` on top of `ledger` in a fresh store, `rounds` times (the store set back to
/// `ledger` between rounds, untimed), and writes the whole state after it as many times.
fn commit_costs(
    ledger: &Ledger,
    block: &Block,
    sigs: &mut SigCache,
    rounds: u32,
) -> anyhow::Result<CommitCost> {
    let mut after = ledger.clone();
    after.apply_validated(ledger.validate_block_with(block, sigs)?)?;
    let certificate = CommitCertificate {
        height: block.height,
        round: 0,
        block_hash: block.hash(),
        signatures: Vec::new(),
    };
    let dir = tempfile::tempdir().context("a temporary store")?;
    let mut chain = ChainStore::new(store::open(&dir.path().join("chain"), Backend::Redb)?);
    chain.load(&genesis())?;
    let whole = store::open(&dir.path().join("whole"), Backend::Redb)?;
    let back = DecidedRecord::new(block, &certificate, ledger);
    chain.commit(&back)?;
    let (mut commit_ms, mut whole_write_ms, mut whole_bytes) = (f64::INFINITY, f64::INFINITY, 0);
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        chain.commit(&DecidedRecord::new(block, &certificate, &after))?;
        commit_ms = commit_ms.min(t.elapsed().as_secs_f64() * 1e3);
        chain.commit(&back)?;

        let t = Instant::now();
        let mut state = after.clone();
        state.state.signatures = after.state.signatures.without_bytes();
        let bytes = ledger::encode(&state);
        whole.put("chain", b"tip", &bytes)?;
        whole_write_ms = whole_write_ms.min(t.elapsed().as_secs_f64() * 1e3);
        whole_bytes = bytes.len();
    }
    Ok(CommitCost {
        commit_ms,
        whole_write_ms,
        whole_bytes,
    })
}

/// Runs the bench, printing a table and, last, a JSON line.
pub fn run(args: LedgerArgs) -> anyhow::Result<()> {
    let mut sizes = args.records.clone();
    sizes.sort_unstable();
    sizes.dedup();
    ensure!(!sizes.is_empty(), "--records: at least one size");
    let mut out = serde_json::Map::new();
    for kind in [Kind::Signatures, Kind::SignRequests, Kind::Members] {
        println!("{}: building ledgers of {:?} ...", kind.name(), sizes);
        let mut ledgers = sizes
            .iter()
            .map(|&n| setup(kind, n, args.txs))
            .collect::<anyhow::Result<Vec<_>>>()?;
        // Each size's rounds back to back, after one untimed validation: freeing a large
        // state's clone makes the allocator's next calls slow, which interleaving charged to
        // whichever size came next (a 100-member block measured 6 ms after a 100,000-member one).
        let mut best = vec![f64::INFINITY; sizes.len()];
        for (i, (ledger, block, sigs)) in ledgers.iter_mut().enumerate() {
            drop(
                ledger
                    .validate_block_with(block, sigs)
                    .context("validating")?,
            );
            for _ in 0..args.rounds.max(1) {
                let t = Instant::now();
                let next = ledger
                    .validate_block_with(block, sigs)
                    .context("validating")?;
                let ms = t.elapsed().as_secs_f64() * 1e3;
                drop(next);
                best[i] = best[i].min(ms);
            }
        }
        let commits = ledgers
            .iter_mut()
            .map(|(ledger, block, sigs)| commit_costs(ledger, block, sigs, args.rounds))
            .collect::<anyhow::Result<Vec<_>>>()?;
        println!(
            "{:>10} {:>14} {:>8} {:>12} {:>8} {:>16} {:>12}",
            kind.name(),
            "block (ms)",
            "ratio",
            "commit (ms)",
            "ratio",
            "whole write (ms)",
            "whole bytes"
        );
        let mut rows = Vec::new();
        for ((n, ms), c) in sizes.iter().zip(&best).zip(&commits) {
            let ratio = ms / best[0];
            let commit_ratio = c.commit_ms / commits[0].commit_ms;
            println!(
                "{n:>10} {ms:>14.3} {ratio:>7.2}x {:>12.3} {commit_ratio:>7.2}x {:>16.3} {:>12}",
                c.commit_ms, c.whole_write_ms, c.whole_bytes
            );
            rows.push(json!({
                "records": n,
                "block_ms": rounded(*ms, 3),
                "ratio": rounded(ratio, 2),
                "commit_ms": rounded(c.commit_ms, 3),
                "commit_ratio": rounded(commit_ratio, 2),
                "whole_write_ms": rounded(c.whole_write_ms, 3),
                "whole_bytes": c.whole_bytes,
            }));
        }
        out.insert(kind.name().into(), rows.into());
    }
    out.insert("bench".into(), "ledger".into());
    out.insert("txs".into(), args.txs.into());
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}
