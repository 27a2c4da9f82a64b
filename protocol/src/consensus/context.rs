//! seedfed's Malachite [`Context`](mt::Context): heights, blocks as values, stake-weighted
//! validator sets, proposals and votes, and their Ed25519 sign bytes.
//!
//! The consensus value is the whole [`Block`] (its id is the block hash), carried inside the
//! proposal message. Votes sign [`vote_digest`] (shared with ledger evidence); proposals sign
//! [`proposal_digest`]. Both bind the chain id. Proposer selection is stake-weighted and a pure
//! function of (validator set, height, round).

use std::collections::BTreeMap;
use std::sync::Arc;

use malachitebft_core_types as mt;
use malachitebft_signing_ed25519 as ms;
use mt::{NilOrVal, Round, VoteType};

use crate::hash::{hash32, Domain};
use crate::ledger::Block;
use crate::ledger::{vote_digest, VoteKind};
use crate::member::MemberId;

const PROPOSAL_DOMAIN: Domain = Domain::new("seedfed-proposal");
const PROPOSER_DOMAIN: Domain = Domain::new("seedfed-proposer");

/// The context: carries the chain id that every signature binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedfedContext {
    chain_id: Arc<str>,
}

impl SeedfedContext {
    /// A context for one chain.
    pub fn new(chain_id: &str) -> Self {
        SeedfedContext {
            chain_id: Arc::from(chain_id),
        }
    }

    /// The chain id.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }
}

/// Block height (the first block is 1).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Height(pub u64);

impl std::fmt::Display for Height {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl mt::Height for Height {
    const ZERO: Self = Height(0);
    const INITIAL: Self = Height(1);

    fn increment_by(&self, n: u64) -> Self {
        Height(self.0.saturating_add(n))
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Height)
    }

    fn as_u64(&self) -> u64 {
        self.0
    }
}

impl mt::Address for MemberId {}

/// A block hash: the consensus value id.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockHash(pub [u8; 32]);

impl std::fmt::Debug for BlockHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlockHash({})", hex::encode(&self.0[..6]))
    }
}

impl std::fmt::Display for BlockHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(&self.0[..8]))
    }
}

/// A proposed block with its hash computed once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockValue {
    hash: BlockHash,
    block: Arc<Block>,
}

impl BlockValue {
    /// Wraps a block.
    pub fn new(block: Block) -> Self {
        BlockValue {
            hash: BlockHash(block.hash()),
            block: Arc::new(block),
        }
    }

    /// The block.
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// The block hash.
    pub fn hash(&self) -> BlockHash {
        self.hash
    }
}

impl PartialOrd for BlockValue {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BlockValue {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.hash.cmp(&other.hash)
    }
}

impl mt::Value for BlockValue {
    type Id = BlockHash;

    fn id(&self) -> BlockHash {
        self.hash
    }
}

/// A validator: identity, key and stake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    address: MemberId,
    public_key: ms::PublicKey,
    power: u64,
}

impl mt::Validator<SeedfedContext> for Validator {
    fn address(&self) -> &MemberId {
        &self.address
    }

    fn public_key(&self) -> &ms::PublicKey {
        &self.public_key
    }

    fn voting_power(&self) -> u64 {
        self.power
    }
}

/// The validator set of one height, sorted by identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total: u64,
}

impl ValidatorSet {
    /// Builds the set from the ledger's (member, stake) map. Members whose key is not a valid
    /// Ed25519 point and zero-stake members are left out (they could never sign).
    pub fn from_stakes(stakes: &BTreeMap<MemberId, u64>) -> Self {
        let validators: Vec<Validator> = stakes
            .iter()
            .filter(|(_, s)| **s > 0)
            .filter_map(|(m, s)| {
                ms::PublicKey::from_bytes(m.0).ok().map(|pk| Validator {
                    address: *m,
                    public_key: pk,
                    power: *s,
                })
            })
            .collect();
        let total = validators.iter().map(|v| v.power).sum();
        ValidatorSet { validators, total }
    }

    /// (member, stake) pairs.
    pub fn stakes(&self) -> BTreeMap<MemberId, u64> {
        self.validators
            .iter()
            .map(|v| (v.address, v.power))
            .collect()
    }
}

impl mt::ValidatorSet<SeedfedContext> for ValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }

    fn total_voting_power(&self) -> u64 {
        self.total
    }

    fn get_by_address(&self, address: &MemberId) -> Option<&Validator> {
        self.validators
            .binary_search_by(|v| v.address.cmp(address))
            .ok()
            .map(|i| &self.validators[i])
    }

    fn get_by_index(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }
}

/// A proposal: a block for (height, round), with the proof-of-lock round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// The block.
    pub value: BlockValue,
    /// Round of the polka that justifies re-proposing, or `Round::Nil`.
    pub pol_round: Round,
    /// The proposer.
    pub proposer: MemberId,
}

impl mt::Proposal<SeedfedContext> for Proposal {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &BlockValue {
        &self.value
    }
    fn take_value(self) -> BlockValue {
        self.value
    }
    fn pol_round(&self) -> Round {
        self.pol_round
    }
    fn validator_address(&self) -> &MemberId {
        &self.proposer
    }
}

/// A prevote or precommit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vote {
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// Block hash or nil.
    pub value: NilOrVal<BlockHash>,
    /// Prevote or precommit.
    pub vote_type: VoteType,
    /// The voter.
    pub validator: MemberId,
}

impl mt::Vote<SeedfedContext> for Vote {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &NilOrVal<BlockHash> {
        &self.value
    }
    fn take_value(self) -> NilOrVal<BlockHash> {
        self.value
    }
    fn vote_type(&self) -> VoteType {
        self.vote_type
    }
    fn validator_address(&self) -> &MemberId {
        &self.validator
    }
    fn extension(&self) -> Option<&mt::SignedExtension<SeedfedContext>> {
        None
    }
    fn take_extension(&mut self) -> Option<mt::SignedExtension<SeedfedContext>> {
        None
    }
    fn extend(self, _extension: mt::SignedExtension<SeedfedContext>) -> Self {
        // Vote extensions are disabled for this chain; an extension is dropped.
        self
    }
}

/// Proposal parts are not used: the proposal message carries the whole block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoParts;

impl mt::ProposalPart<SeedfedContext> for NoParts {
    fn is_first(&self) -> bool {
        true
    }
    fn is_last(&self) -> bool {
        true
    }
}

impl mt::Context for SeedfedContext {
    type Address = MemberId;
    type Height = Height;
    type ProposalPart = NoParts;
    type Proposal = Proposal;
    type Validator = Validator;
    type ValidatorSet = ValidatorSet;
    type Timeouts = mt::LinearTimeouts;
    type Value = BlockValue;
    type Vote = Vote;
    type Extension = ();
    type SigningScheme = ms::Ed25519;

    fn select_proposer<'a>(
        &self,
        validator_set: &'a ValidatorSet,
        height: Height,
        round: Round,
    ) -> &'a Validator {
        select_proposer(validator_set, height, round)
    }

    fn new_proposal(
        &self,
        height: Height,
        round: Round,
        value: BlockValue,
        pol_round: Round,
        address: MemberId,
    ) -> Proposal {
        Proposal {
            height,
            round,
            value,
            pol_round,
            proposer: address,
        }
    }

    fn new_prevote(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<BlockHash>,
        address: MemberId,
    ) -> Vote {
        Vote {
            height,
            round,
            value: value_id,
            vote_type: VoteType::Prevote,
            validator: address,
        }
    }

    fn new_precommit(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<BlockHash>,
        address: MemberId,
    ) -> Vote {
        Vote {
            height,
            round,
            value: value_id,
            vote_type: VoteType::Precommit,
            validator: address,
        }
    }
}

/// Stake-weighted proposer: a point in `[0, total)` from a hash of (height, round) picks the
/// validator whose cumulative stake interval contains it. The set must be non-empty.
pub fn select_proposer(set: &ValidatorSet, height: Height, round: Round) -> &Validator {
    let r = round.as_i64();
    let h = hash32(
        PROPOSER_DOMAIN,
        &[],
        &[0; 16],
        &[&height.0.to_le_bytes(), &r.to_le_bytes()],
    );
    let mut x = [0u8; 16];
    x.copy_from_slice(&h[..16]);
    let total = u128::from(set.total.max(1));
    let mut point = u128::from_le_bytes(x) % total;
    for v in &set.validators {
        let p = u128::from(v.power);
        if point < p {
            return v;
        }
        point -= p;
    }
    // Unreachable for a set with total > 0; Malachite never asks for an empty set.
    &set.validators[set.validators.len() - 1]
}

/// Converts a Malachite vote type.
pub fn vote_kind(t: VoteType) -> VoteKind {
    match t {
        VoteType::Prevote => VoteKind::Prevote,
        VoteType::Precommit => VoteKind::Precommit,
    }
}

/// The 32 bytes a vote's signature covers; `None` for an undefined round (never signed).
pub fn vote_sign_digest(chain_id: &str, vote: &Vote) -> Option<[u8; 32]> {
    let round = vote.round.as_u32()?;
    let value = match &vote.value {
        NilOrVal::Nil => None,
        NilOrVal::Val(h) => Some(&h.0),
    };
    Some(vote_digest(
        chain_id,
        vote.height.0,
        round,
        vote_kind(vote.vote_type),
        value,
        &vote.validator,
    ))
}

/// The 32 bytes a proposal's signature covers.
pub fn proposal_digest(
    chain_id: &str,
    height: u64,
    round: i64,
    block_hash: &[u8; 32],
    pol_round: i64,
    proposer: &MemberId,
) -> [u8; 32] {
    hash32(
        PROPOSAL_DOMAIN,
        &[],
        &[0; 16],
        &[
            chain_id.as_bytes(),
            &height.to_le_bytes(),
            &round.to_le_bytes(),
            block_hash,
            &pol_round.to_le_bytes(),
            proposer.as_bytes(),
        ],
    )
}

/// The digest of a Malachite proposal.
pub fn proposal_sign_digest(chain_id: &str, p: &Proposal) -> [u8; 32] {
    proposal_digest(
        chain_id,
        p.height.0,
        p.round.as_i64(),
        &p.value.hash().0,
        p.pol_round.as_i64(),
        &p.proposer,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(stakes: &[u64]) -> ValidatorSet {
        let m: BTreeMap<MemberId, u64> = stakes
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let k = ed25519_dalek::SigningKey::from_bytes(&[i as u8 + 1; 32]);
                (MemberId(k.verifying_key().to_bytes()), *s)
            })
            .collect();
        ValidatorSet::from_stakes(&m)
    }

    #[test]
    fn proposer_is_deterministic_and_stake_weighted() {
        let s = set(&[1, 1, 1, 97]);
        let heavy = s
            .validators
            .iter()
            .find(|v| v.power == 97)
            .map(|v| v.address);
        let mut heavy_count = 0;
        for h in 1..=400u64 {
            let a = select_proposer(&s, Height(h), Round::new(0)).address;
            let b = select_proposer(&s, Height(h), Round::new(0)).address;
            assert_eq!(a, b);
            if Some(a) == heavy {
                heavy_count += 1;
            }
        }
        // Expected 388 of 400; far from the 100 an unweighted choice would give.
        assert!(heavy_count > 340, "{heavy_count}");
        // Rounds rotate the proposer too.
        let s = set(&[10, 10, 10, 10]);
        let distinct: std::collections::BTreeSet<MemberId> = (0..40)
            .map(|r| select_proposer(&s, Height(1), Round::new(r)).address)
            .collect();
        assert_eq!(distinct.len(), 4);
    }

    #[test]
    fn zero_stake_and_invalid_keys_are_not_validators() {
        let mut m = BTreeMap::new();
        let k = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        m.insert(MemberId(k.verifying_key().to_bytes()), 5);
        let not_a_point = (0u8..=255)
            .map(|b| [b; 32])
            .find(|bytes| ms::PublicKey::from_bytes(*bytes).is_err())
            .unwrap();
        m.insert(MemberId(not_a_point), 5);
        let k2 = ed25519_dalek::SigningKey::from_bytes(&[2; 32]);
        m.insert(MemberId(k2.verifying_key().to_bytes()), 0);
        let s = ValidatorSet::from_stakes(&m);
        assert_eq!(s.validators.len(), 1);
        assert_eq!(s.total, 5);
    }

    #[test]
    fn sign_bytes_separate_kinds_and_values() {
        let v = Vote {
            height: Height(3),
            round: Round::new(1),
            value: NilOrVal::Val(BlockHash([1; 32])),
            vote_type: VoteType::Prevote,
            validator: MemberId([2; 32]),
        };
        let mut w = v.clone();
        w.vote_type = VoteType::Precommit;
        let mut x = v.clone();
        x.value = NilOrVal::Nil;
        let d = |v: &Vote| vote_sign_digest("c", v);
        assert_ne!(d(&v), d(&w));
        assert_ne!(d(&v), d(&x));
        assert_ne!(vote_sign_digest("c", &v), vote_sign_digest("d", &v));
        let mut y = v.clone();
        y.round = Round::Nil;
        assert_eq!(d(&y), None);
    }
}
