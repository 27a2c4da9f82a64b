//! Members and their stake: admission, transfers, exit and eviction.
//!
//! Guarantees: only a valid admission (its own peer id, proof of work at the ledger's current
//! difficulty, [`LedgerState::pow_difficulty`]) creates a member; a difficulty change (approved
//! by stake through `changes`) never takes membership away from those already admitted; transfers conserve the total stake; no exit or eviction leaves
//! the federation without an active validator; eviction needs evidence the ledger can check
//! (its own count of missed commits, two conflicting signed votes, or a proven bad dealing:
//! `convictions`).
//!
//! Growth: proof of work makes an identity cost something, not nothing, so cheap identities
//! must not pile up; a block costs what it changes in the members (their digest is a
//! `hashed_map`, the validator set is kept beside them, [`Members`]), but each one is still
//! stored and sent to every node that syncs. At most
//! [`MAX_ADMISSIONS_PER_EPOCH`] admissions land per epoch, and an admitted member that never
//! received stake nor sent a transaction is dropped at the start of the epoch
//! [`ADMISSION_EXPIRY_EPOCHS`] after its admission (it may pay for a new admission later).

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};

use imbl::OrdMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::hashed_map::HashedMap;
use super::LedgerState;
use crate::admission::{possession_context, Proof, Puzzle, MAX_DIFFICULTY};
use crate::ledger::error::LedgerError;
use crate::ledger::tx::{peer_id_bytes, Evidence};
use crate::member::MemberId;
use crate::seal::{self, PossessionProof};

/// Most `Admit` transactions applied in one epoch: bounds how fast proof-of-work identities can
/// grow the state (at the testnet's epoch length, a few hundred blocks, this is far above what
/// honest operators joining need and far below what slows a block).
pub const MAX_ADMISSIONS_PER_EPOCH: u32 = 64;

/// Epochs an admitted member may stay without stake and without sending a transaction: at the
/// start of epoch `admitted + ADMISSION_EXPIRY_EPOCHS` it is dropped. Two epochs give an
/// operator time to receive stake.
pub const ADMISSION_EXPIRY_EPOCHS: u64 = 2;

/// Where a member stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberStatus {
    /// Admitted; a validator while its stake is non-zero.
    Active,
    /// Left voluntarily.
    Exited,
    /// Removed on evidence.
    Evicted,
}

/// An admitted member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// libp2p peer id bytes.
    pub peer_id: Vec<u8>,
    /// X25519 share-encryption key.
    pub x25519: [u8; 32],
    /// Stake held.
    pub stake: u64,
    /// Next transaction nonce accepted from this member.
    pub nonce: u64,
    /// Status.
    pub status: MemberStatus,
    /// The epoch of its admission (0 for genesis validators).
    pub admitted_epoch: u64,
}

/// The members by identity ([`HashedMap`]: read and changed as a map), with the validator
/// set (active members with stake) kept beside them, so that finding it, which every block
/// does, costs the members changed since the last block, not a pass over all of them.
#[derive(Clone, Default)]
pub struct Members {
    all: HashedMap<MemberId, Member>,
    /// The validators as of the last [`Members::settle`].
    validators: OrdMap<MemberId, u64>,
}

/// The stake `m` validates with, if it is a validator.
fn validator_stake(m: &Member) -> Option<u64> {
    (m.status == MemberStatus::Active && m.stake > 0).then_some(m.stake)
}

impl Members {
    /// Active members with non-zero stake, and their stake.
    pub fn validators(&self) -> BTreeMap<MemberId, u64> {
        let mut v = self.validators.clone();
        self.update(&mut v);
        v.into_iter().collect()
    }

    /// Folds the changes since the last settle into the digest's sum and the validator set.
    pub fn settle(&mut self) {
        let mut v = std::mem::take(&mut self.validators);
        self.update(&mut v);
        self.validators = v;
        self.all.settle();
    }

    fn update(&self, v: &mut OrdMap<MemberId, u64>) {
        for id in self.all.touched_keys() {
            match self.all.get(id).and_then(validator_stake) {
                Some(stake) => v.insert(*id, stake),
                None => v.remove(id),
            };
        }
    }
}

impl Deref for Members {
    type Target = HashedMap<MemberId, Member>;

    fn deref(&self) -> &Self::Target {
        &self.all
    }
}

impl DerefMut for Members {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.all
    }
}

impl From<BTreeMap<MemberId, Member>> for Members {
    fn from(map: BTreeMap<MemberId, Member>) -> Self {
        let validators = map
            .iter()
            .filter_map(|(id, m)| Some((*id, validator_stake(m)?)))
            .collect();
        Members {
            all: map.into(),
            validators,
        }
    }
}

impl<'a> IntoIterator for &'a Members {
    type Item = (&'a MemberId, &'a Member);
    type IntoIter = <&'a HashedMap<MemberId, Member> as IntoIterator>::IntoIter;

    fn into_iter(self) -> Self::IntoIter {
        self.all.iter()
    }
}

impl PartialEq for Members {
    /// Equal members (the validator set is a function of them).
    fn eq(&self, other: &Self) -> bool {
        self.all == other.all
    }
}

impl Eq for Members {}

impl fmt::Debug for Members {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.all.fmt(f)
    }
}

impl Serialize for Members {
    /// As the map of members alone.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.all.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Members {
    /// The validator set is found again from the members decoded.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<MemberId, Member>::deserialize(deserializer).map(Members::from)
    }
}

impl LedgerState {
    /// Active members with non-zero stake, and their stake: the validator set for the next
    /// height.
    pub fn validators(&self) -> BTreeMap<MemberId, u64> {
        self.members.validators()
    }

    /// Whether `id` is an active validator.
    pub fn is_validator(&self, id: &MemberId) -> bool {
        self.members
            .get(id)
            .is_some_and(|m| m.status == MemberStatus::Active && m.stake > 0)
    }

    pub(super) fn total_active_stake_without(&self, id: &MemberId) -> u64 {
        self.validators()
            .iter()
            .filter(|(m, _)| *m != id)
            .map(|(_, s)| *s)
            .fold(0u64, |a, b| a.saturating_add(b))
    }

    pub(super) fn require_validator(&self, id: &MemberId) -> Result<(), LedgerError> {
        if !self.members.contains_key(id) {
            return Err(LedgerError::UnknownMember(*id));
        }
        if !self.is_validator(id) {
            return Err(LedgerError::NotValidator(*id));
        }
        Ok(())
    }

    /// `Admit`: the author, not yet a member, joins with stake 0 (its nonce becomes 1).
    pub(super) fn apply_admit(
        &mut self,
        author: MemberId,
        peer_id: &[u8],
        x25519: &[u8; 32],
        pow: &Proof,
        x25519_proof: &PossessionProof,
    ) -> Result<(), LedgerError> {
        if self.members.contains_key(&author) {
            return Err(LedgerError::AlreadyMember(author));
        }
        if self.admitted_this_epoch >= MAX_ADMISSIONS_PER_EPOCH {
            return Err(LedgerError::AdmissionsFull {
                epoch: self.epoch,
                max: MAX_ADMISSIONS_PER_EPOCH,
            });
        }
        if peer_id != peer_id_bytes(&author).as_slice() {
            return Err(LedgerError::PeerIdMismatch(author));
        }
        if !seal::x25519_key_is_valid(x25519) {
            return Err(LedgerError::BadX25519(author));
        }
        let context = possession_context(&self.chain_id, peer_id);
        if !seal::verify_possession(x25519, &context, x25519_proof) {
            return Err(LedgerError::NoX25519Possession(author));
        }
        let puzzle = Puzzle {
            chain_id: self.chain_id.clone(),
            peer_id: peer_id.to_vec(),
            x25519: *x25519,
        };
        puzzle.verify(pow, self.pow_difficulty)?;
        self.members.insert(
            author,
            Member {
                peer_id: peer_id.to_vec(),
                x25519: *x25519,
                stake: 0,
                nonce: 1,
                status: MemberStatus::Active,
                admitted_epoch: self.epoch,
            },
        );
        self.admitted_this_epoch += 1;
        Ok(())
    }

    /// Refuses a proof-of-work difficulty change to a value below the genesis difficulty, above
    /// [`MAX_DIFFICULTY`], or equal to the current one (the approval itself is `changes`).
    pub(super) fn check_difficulty_change(&self, difficulty: u8) -> Result<(), LedgerError> {
        if difficulty < self.min_pow_difficulty || difficulty > MAX_DIFFICULTY {
            return Err(LedgerError::DifficultyOutOfRange {
                got: difficulty,
                min: self.min_pow_difficulty,
                max: MAX_DIFFICULTY,
            });
        }
        if difficulty == self.pow_difficulty {
            return Err(LedgerError::DifficultyUnchanged(difficulty));
        }
        Ok(())
    }

    /// At the start of `epoch`: drops the admitted members that never received stake nor sent
    /// a transaction since an admission at least [`ADMISSION_EXPIRY_EPOCHS`] ago, and opens
    /// the epoch's admission budget. Only members whose nonce is still the admission's are
    /// dropped, so a later re-admission (nonce 1 again) cannot replay any transaction of theirs.
    pub(super) fn expire_idle_admissions(&mut self, epoch: u64) {
        self.admitted_this_epoch = 0;
        self.members.retain(|_, m| {
            let idle = m.status == MemberStatus::Active && m.stake == 0 && m.nonce == 1;
            !(idle && m.admitted_epoch.saturating_add(ADMISSION_EXPIRY_EPOCHS) <= epoch)
        });
    }

    /// `Transfer`: moves stake from the author to another active member.
    pub(super) fn apply_transfer(
        &mut self,
        from: MemberId,
        to: MemberId,
        amount: u64,
    ) -> Result<(), LedgerError> {
        if amount == 0 {
            return Err(LedgerError::InvalidTransfer("zero amount"));
        }
        if from == to {
            return Err(LedgerError::InvalidTransfer("transfer to self"));
        }
        let Some(dest) = self.members.get(&to) else {
            return Err(LedgerError::UnknownMember(to));
        };
        if dest.status != MemberStatus::Active {
            return Err(LedgerError::NotValidator(to));
        }
        let has = self.members.get(&from).map_or(0, |m| m.stake);
        if has < amount {
            return Err(LedgerError::InsufficientStake { has, needs: amount });
        }
        let new_dest = dest
            .stake
            .checked_add(amount)
            .ok_or(LedgerError::InvalidTransfer("overflow"))?;
        if let Some(m) = self.members.get_mut(&from) {
            m.stake = has - amount;
        }
        if let Some(m) = self.members.get_mut(&to) {
            m.stake = new_dest;
        }
        Ok(())
    }

    /// `Exit`: the author leaves; its stake stops counting.
    pub(super) fn apply_exit(&mut self, author: MemberId) -> Result<(), LedgerError> {
        if self.is_validator(&author) && self.total_active_stake_without(&author) == 0 {
            return Err(LedgerError::LastValidator);
        }
        if let Some(m) = self.members.get_mut(&author) {
            m.status = MemberStatus::Exited;
        }
        Ok(())
    }

    /// `Evict`: removes a validator on evidence.
    pub(super) fn apply_evict(
        &mut self,
        author: MemberId,
        member: MemberId,
        evidence: &Evidence,
    ) -> Result<(), LedgerError> {
        self.require_validator(&author)?;
        self.require_validator(&member)?;
        match evidence {
            Evidence::Inactivity { missed_heights } => {
                let counted = self.missed.get(&member).copied().unwrap_or(0);
                if *missed_heights < self.eviction_missed_heights || *missed_heights > counted {
                    return Err(LedgerError::BadEvidence(
                        "missed-height count below the bound or above the ledger's count",
                    ));
                }
            }
            Evidence::Equivocation { a, b } => {
                if a.validator != member || b.validator != member {
                    return Err(LedgerError::BadEvidence("votes are not by the accused"));
                }
                if a.height != b.height || a.round != b.round || a.kind != b.kind {
                    return Err(LedgerError::BadEvidence("votes are for different steps"));
                }
                if a.value == b.value {
                    return Err(LedgerError::BadEvidence("votes do not conflict"));
                }
                if !a.verify(&self.chain_id) || !b.verify(&self.chain_id) {
                    return Err(LedgerError::BadEvidence("vote signature invalid"));
                }
            }
        }
        if self.total_active_stake_without(&member) == 0 {
            return Err(LedgerError::LastValidator);
        }
        self.evict_member(member);
        Ok(())
    }

    /// Evicts `member` (the caller checked the evidence and that a validator remains): its
    /// stake stops counting and it may send no further transaction.
    pub(super) fn evict_member(&mut self, member: MemberId) {
        if let Some(m) = self.members.get_mut(&member) {
            m.status = MemberStatus::Evicted;
        }
        self.evictions.insert(member, self.height);
        self.missed.remove(&member);
    }
}
