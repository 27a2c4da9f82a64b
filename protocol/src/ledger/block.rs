//! Blocks, and the ledger as a node holds it: the state plus the hash of the last block.
//!
//! Guarantees: [`Ledger::apply_block`] is all or nothing: it works on a copy of the state that
//! replaces it only if the whole block is valid (height, parent, proposer, the last commit's
//! precommits from more than two thirds of the deciding stake, every transaction, and the state
//! hash). A block with an invalid transaction is invalid as a whole.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::codec::encode;
use super::error::LedgerError;
use super::genesis::{Genesis, GenesisError};
use super::sig_cache::SigCache;
use super::state::LedgerState;
use super::tx::{verify_vote_signature, vote_digest, Signature64, SignedTx, VoteKind};
use crate::hash::{hash32, Domain};
use crate::member::MemberId;

const BLOCK_DOMAIN: Domain = Domain::new("seedfed-block");

/// Most transactions one block may carry.
pub const MAX_TXS_PER_BLOCK: usize = 4096;

// The signature cache holds the transactions of four full blocks.
const _: () = assert!(SigCache::DEFAULT_CAPACITY >= 4 * MAX_TXS_PER_BLOCK);

/// The signatures of the previous block's commit that a block records (Tendermint's
/// "last commit"). The ledger checks each one and counts who did not sign, which is the
/// evidence for eviction by inactivity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CommitInfo {
    /// Consensus round in which the previous block was decided.
    pub round: u32,
    /// Precommit signatures for the previous block, sorted by member, no duplicates.
    pub signatures: Vec<(MemberId, Signature64)>,
}

/// A block: header fields plus transactions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Height, starting at 1.
    pub height: u64,
    /// Hash of the previous block (the genesis hash for height 1).
    pub prev_hash: [u8; 32],
    /// The proposer.
    pub proposer: MemberId,
    /// Commit of the previous block (empty at height 1).
    pub last_commit: CommitInfo,
    /// Transactions, applied in order.
    pub txs: Vec<SignedTx>,
    /// State hash after applying this block.
    pub state_hash: [u8; 32],
}

impl Block {
    /// The block hash: domain-separated BLAKE2b of the block's canonical encoding. This is the
    /// consensus value id.
    pub fn hash(&self) -> [u8; 32] {
        hash32(BLOCK_DOMAIN, &[], &[0; 16], &[&encode(self)])
    }
}

/// The ledger as a node holds it: the state plus the hash of the last applied block (the chain
/// tip), which cannot be inside the hashed state because the block hash covers the state hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// The replicated state.
    pub state: LedgerState,
    /// Hash of the last applied block (the genesis hash at height 0).
    pub tip: [u8; 32],
}

impl Ledger {
    /// The ledger at genesis.
    pub fn from_genesis(genesis: &Genesis) -> Result<Self, GenesisError> {
        Ok(Ledger {
            state: LedgerState::from_genesis(genesis)?,
            tip: genesis.hash(),
        })
    }

    /// Height of the last applied block.
    pub fn height(&self) -> u64 {
        self.state.height
    }

    /// Checks `block` against the current tip and returns the state it leads to, without
    /// changing `self`. This is what a validator runs before voting for a proposal.
    pub fn validate_block(&self, block: &Block) -> Result<LedgerState, LedgerError> {
        self.check_block(block, None).map(|v| v.next)
    }

    /// [`Ledger::validate_block`] with transaction signatures answered from `sigs` where they
    /// were checked before; the result can be applied later with [`Ledger::apply_validated`]
    /// without checking the block again.
    pub fn validate_block_with(
        &self,
        block: &Block,
        sigs: &mut SigCache,
    ) -> Result<Validated, LedgerError> {
        self.check_block(block, Some(sigs))
    }

    fn check_block(
        &self,
        block: &Block,
        sigs: Option<&mut SigCache>,
    ) -> Result<Validated, LedgerError> {
        if block.prev_hash != self.tip {
            return Err(LedgerError::BadPrevHash);
        }
        let mut next = self.state.clone();
        apply_block_body(&mut next, block, sigs)?;
        next.settle();
        if next.hash() != block.state_hash {
            return Err(LedgerError::StateHashMismatch);
        }
        Ok(Validated {
            parent: self.tip,
            block: block.hash(),
            next,
        })
    }

    /// Applies a block: all or nothing.
    pub fn apply_block(&mut self, block: &Block) -> Result<(), LedgerError> {
        let v = self.check_block(block, None)?;
        self.apply_validated(v)
    }

    /// Applies a block validated earlier against this same tip (by
    /// [`Ledger::validate_block_with`] or [`Ledger::build_block_with`]), without checking it
    /// again. Refused, changing nothing, if the tip moved since.
    pub fn apply_validated(&mut self, v: Validated) -> Result<(), LedgerError> {
        if v.parent != self.tip {
            return Err(LedgerError::BadPrevHash);
        }
        self.state = v.next;
        self.tip = v.block;
        Ok(())
    }

    /// Builds the next block as `proposer`: applies `candidates` in order, keeps those that
    /// apply and drops the rest (returned with their reasons), and fills in the state hash.
    pub fn build_block(
        &self,
        proposer: MemberId,
        last_commit: CommitInfo,
        candidates: Vec<SignedTx>,
    ) -> Result<(Block, Vec<(SignedTx, LedgerError)>), LedgerError> {
        self.build(proposer, last_commit, candidates, None)
            .map(|b| (b.block, b.rejected))
    }

    /// [`Ledger::build_block`] with transaction signatures answered from `sigs` where they
    /// were checked before; also returns the block as [`Validated`], so that the proposer
    /// neither validates its own block again nor re-applies it once decided.
    pub fn build_block_with(
        &self,
        proposer: MemberId,
        last_commit: CommitInfo,
        candidates: Vec<SignedTx>,
        sigs: &mut SigCache,
    ) -> Result<Built, LedgerError> {
        self.build(proposer, last_commit, candidates, Some(sigs))
    }

    fn build(
        &self,
        proposer: MemberId,
        last_commit: CommitInfo,
        candidates: Vec<SignedTx>,
        mut sigs: Option<&mut SigCache>,
    ) -> Result<Built, LedgerError> {
        let mut block = Block {
            height: self.state.height + 1,
            prev_hash: self.tip,
            proposer,
            last_commit,
            txs: Vec::new(),
            state_hash: [0; 32],
        };
        let mut next = self.state.clone();
        apply_block_body(&mut next, &block, None)?;
        let mut rejected = Vec::new();
        for tx in candidates {
            if block.txs.len() >= MAX_TXS_PER_BLOCK {
                rejected.push((tx, LedgerError::TooManyTxs(MAX_TXS_PER_BLOCK + 1)));
                continue;
            }
            // apply_tx checks before it writes, so a failed transaction leaves `next` as is.
            match next.apply_tx_with(&tx, sigs.as_deref_mut()) {
                Ok(()) => block.txs.push(tx),
                Err(e) => rejected.push((tx, e)),
            }
        }
        next.settle();
        block.state_hash = next.hash();
        let validated = Validated {
            parent: self.tip,
            block: block.hash(),
            next,
        };
        Ok(Built {
            block,
            rejected,
            validated,
        })
    }
}

/// A block checked against a tip, with the state it leads to: what
/// [`Ledger::apply_validated`] installs. Holds a whole ledger state.
#[derive(Clone, Debug)]
pub struct Validated {
    parent: [u8; 32],
    block: [u8; 32],
    next: LedgerState,
}

/// What [`Ledger::build_block_with`] returns.
#[derive(Debug)]
pub struct Built {
    /// The block.
    pub block: Block,
    /// The candidates left out, with their reasons.
    pub rejected: Vec<(SignedTx, LedgerError)>,
    /// The block, validated against the tip it was built on.
    pub validated: Validated,
}

/// Applies the block-level bookkeeping for `block` (height, parent, last commit and
/// inactivity counters, the sector windows), then its transactions. Does not check the state hash.
fn apply_block_body(
    state: &mut LedgerState,
    block: &Block,
    mut sigs: Option<&mut SigCache>,
) -> Result<(), LedgerError> {
    if block.height != state.height + 1 {
        return Err(LedgerError::BadHeight {
            got: block.height,
            expected: state.height + 1,
        });
    }
    if block.txs.len() > MAX_TXS_PER_BLOCK {
        return Err(LedgerError::TooManyTxs(block.txs.len()));
    }
    if !state.is_validator(&block.proposer) {
        return Err(LedgerError::BadProposer(block.proposer));
    }
    let deciding_set = state.validators();
    if block.height > 1 {
        check_last_commit(
            state,
            &block.last_commit,
            &block.prev_hash,
            sigs.as_deref_mut(),
        )?;
        let signers: BTreeSet<MemberId> = block
            .last_commit
            .signatures
            .iter()
            .map(|(m, _)| *m)
            .collect();
        let deciders: Vec<MemberId> = state.last_validators.keys().copied().collect();
        for v in &deciders {
            if !state.is_validator(v) {
                // Exited or evicted since: nothing left to count.
                state.missed.remove(v);
            } else if signers.contains(v) {
                state.missed.remove(v);
            } else {
                *state.missed.entry(*v).or_insert(0) += 1;
            }
        }
    } else if !block.last_commit.signatures.is_empty() {
        return Err(LedgerError::BadLastCommit(
            "height 1 has no previous commit",
        ));
    }
    state.height = block.height;
    state.parent_hash = block.prev_hash;
    // Before the transactions, so that building a block and replaying it agree.
    state.begin_block();
    for (index, tx) in block.txs.iter().enumerate() {
        state
            .apply_tx_with(tx, sigs.as_deref_mut())
            .map_err(|e| LedgerError::InvalidTx {
                index,
                source: Box::new(e),
            })?;
    }
    state.last_validators = deciding_set;
    Ok(())
}

/// Checks that `commit` holds valid precommits for `value` at the previous height from
/// more than two thirds of the stake that decided it (signatures answered from `sigs` where
/// this node checked the precommit before).
fn check_last_commit(
    state: &LedgerState,
    commit: &CommitInfo,
    value: &[u8; 32],
    mut sigs: Option<&mut SigCache>,
) -> Result<(), LedgerError> {
    if commit.signatures.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(LedgerError::BadLastCommit("signers not sorted and unique"));
    }
    let mut power: u128 = 0;
    for (m, sig) in &commit.signatures {
        let Some(stake) = state.last_validators.get(m) else {
            return Err(LedgerError::BadLastCommit(
                "signer not in the validator set",
            ));
        };
        let digest = vote_digest(
            &state.chain_id,
            state.height,
            commit.round,
            VoteKind::Precommit,
            Some(value),
            m,
        );
        let ok = match sigs.as_deref_mut() {
            Some(sigs) => sigs.verify_vote(m, &digest, sig),
            None => verify_vote_signature(m, &digest, sig),
        };
        if !ok {
            return Err(LedgerError::BadLastCommit("invalid precommit signature"));
        }
        power += u128::from(*stake);
    }
    let total: u128 = state.last_validators.values().map(|s| u128::from(*s)).sum();
    if power * 3 <= total * 2 {
        return Err(LedgerError::BadLastCommit(
            "less than two thirds of the stake",
        ));
    }
    Ok(())
}
