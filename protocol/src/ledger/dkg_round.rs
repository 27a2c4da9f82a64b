//! The current epoch's DKG as the ledger records it, and the results of completed DKGs.
//!
//! Guarantees: everything here is a pure function of ledger data, so every node holds the same
//! [`DkgRound`] and [`DkgResult`]s and judges their messages alike; each attempt has its own
//! session context ([`dkg_session_id`]), so no message of one attempt is valid in another.
//! Windows count in block heights from [`DkgRound::opened_at`] (`docs/consensus.md`, "The
//! epoch cycle").

use std::collections::{BTreeMap, BTreeSet};

use frost_core::keys::dkg::round1;
use frost_core::Ciphersuite;
use serde::{Deserialize, Serialize};

use super::codec::decode;
use super::error::LedgerError;
use super::genesis::{chain_digest, EpochParams};
use super::tx::{DkgSuite, Round1Payload};
use crate::dkg::{self, Ceremony, Complaint, Envelope, ExclusionCause};
use crate::hash::{hash32, Domain};
use crate::member::MemberId;

const SESSION_DOMAIN: Domain = Domain::new("seedfed-dkg-sid");

/// Attempts of an epoch's DKG that are retried rather than finished with exactly `t`
/// qualified members while part of the roster is left out ([`DkgRound::falls_short`]).
pub const THIN_RETRIES: u32 = 1;

/// Key of a recorded complaint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ComplaintKey {
    /// Suite.
    pub suite: DkgSuite,
    /// Complainer.
    pub accuser: MemberId,
    /// Accused dealer.
    pub accused: MemberId,
    /// `true` for `Missing`, `false` for `Bad`.
    pub missing: bool,
}

/// Why a member is not in a DKG's qualified set (the on-ledger evidence is the complaint or
/// the absence it refers to).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DkgExclusion {
    /// No round-1 package in the window.
    Absent,
    /// A round-1 package with a bad proof or degree (cannot be on the ledger; kept for
    /// completeness of `dkg::ExclusionCause`).
    BadRound1 {
        /// Suite.
        suite: DkgSuite,
    },
    /// Its X25519 key cannot receive a sealed share (cannot be on the ledger since genesis
    /// and admission refuse such keys; kept for completeness of `dkg::ExclusionCause`).
    BadX25519Key,
    /// A complaint on the ledger proved its share to `complainer` bad.
    BadShare {
        /// Suite.
        suite: DkgSuite,
        /// Who proved it.
        complainer: MemberId,
    },
    /// It did not answer `complainer`'s `Missing` complaint.
    NoShare {
        /// Suite.
        suite: DkgSuite,
        /// Who got nothing.
        complainer: MemberId,
    },
}

impl DkgExclusion {
    pub(super) fn from_dkg(suite: DkgSuite, e: ExclusionCause) -> Self {
        match e {
            ExclusionCause::Absent => DkgExclusion::Absent,
            ExclusionCause::BadRound1 => DkgExclusion::BadRound1 { suite },
            ExclusionCause::BadX25519Key => DkgExclusion::BadX25519Key,
            ExclusionCause::BadShare { complainer } => DkgExclusion::BadShare { suite, complainer },
            ExclusionCause::NoShare { complainer } => DkgExclusion::NoShare { suite, complainer },
        }
    }
}

/// A failed DKG attempt (fewer than `t` qualified).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkgFailure {
    /// The attempt that failed.
    pub attempt: u32,
    /// Height of the `DkgFinalize` that found it failed.
    pub height: u64,
    /// Qualified members it had.
    pub qualified: u32,
    /// Exclusions.
    pub excluded: BTreeMap<MemberId, DkgExclusion>,
}

/// The current epoch's DKG in progress (one per epoch, possibly over several attempts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkgRound {
    /// Epoch.
    pub epoch: u64,
    /// Attempt number (0 first; +1 after a failed attempt).
    pub attempt: u32,
    /// Height at which this attempt opened (its windows count from here).
    pub opened_at: u64,
    /// Threshold `t = dkg::default_threshold(n)`.
    pub threshold: u16,
    /// The participants (the epoch's validator snapshot) and their X25519 keys.
    pub roster: BTreeMap<MemberId, [u8; 32]>,
    /// Round-1 payloads (encoded [`Round1Payload`]) by sender, all valid.
    pub commitments: BTreeMap<MemberId, Vec<u8>>,
    /// Complaints that were accepted (encoded `dkg::Complaint`).
    pub complaints: BTreeMap<ComplaintKey, Vec<u8>>,
    /// Answers to `Missing` complaints: (suite, dealer, recipient) -> encoded envelope.
    pub answers: BTreeMap<(DkgSuite, MemberId, MemberId), Vec<u8>>,
    /// Earlier failed attempts of this epoch.
    pub failures: Vec<DkgFailure>,
    /// Height at which the last roster member's round-1 package landed: round 1 closed there,
    /// before its full window (nothing more can come).
    pub round1_closed_at: Option<u64>,
    /// Dealers that posted `DkgAck` (shares from every other dealer, nothing to complain of).
    pub acks: BTreeSet<MemberId>,
    /// Height at which the last dealer's `DkgAck` landed with no complaint on the ledger: the
    /// complaint window closed there (reopened if a complaint lands in that same block).
    pub complaints_closed_at: Option<u64>,
}

/// A completed DKG.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkgResult {
    /// Epoch it ran in.
    pub epoch: u64,
    /// Attempt that completed.
    pub attempt: u32,
    /// Height of the `DkgFinalize`.
    pub height: u64,
    /// Threshold.
    pub threshold: u16,
    /// The qualified set (same for both suites): the key holders.
    pub qualified: BTreeSet<MemberId>,
    /// Every excluded participant and why.
    pub excluded: BTreeMap<MemberId, DkgExclusion>,
    /// ristretto255 `PublicKeyPackage::serialize` over the qualified set.
    pub ristretto255_public: Vec<u8>,
    /// Ed25519 `PublicKeyPackage::serialize` over the qualified set.
    pub ed25519_public: Vec<u8>,
    /// The ristretto255 group key (compressed).
    pub ristretto255_group_key: [u8; 32],
    /// The Ed25519 group key (what verifies checkpoints).
    pub ed25519_group_key: [u8; 32],
}

impl DkgResult {
    /// The ristretto255 public key package.
    pub fn ristretto255(&self) -> Result<frost_ristretto255::keys::PublicKeyPackage, LedgerError> {
        frost_ristretto255::keys::PublicKeyPackage::deserialize(&self.ristretto255_public)
            .map_err(|e| LedgerError::DkgRejected(e.to_string()))
    }

    /// The Ed25519 public key package.
    pub fn ed25519(&self) -> Result<frost_ed25519::keys::PublicKeyPackage, LedgerError> {
        frost_ed25519::keys::PublicKeyPackage::deserialize(&self.ed25519_public)
            .map_err(|e| LedgerError::DkgRejected(e.to_string()))
    }
}

/// The DKG session id of an attempt (passed as `Ceremony`'s chain id):
/// BLAKE2b(`seedfed-dkg-sid`, chain digest, u32le(attempt)).
pub fn dkg_session_id(chain_digest: &[u8; 32], attempt: u32) -> [u8; 32] {
    hash32(
        SESSION_DOMAIN,
        &[],
        &[0; 16],
        &[chain_digest, &attempt.to_le_bytes()],
    )
}

/// A DKG check's error as a [`LedgerError`].
pub(super) fn rejected(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::DkgRejected(e.to_string())
}

impl DkgRound {
    /// A fresh DKG for `epoch` over `roster`, opened at `height`.
    pub fn open(epoch: u64, height: u64, roster: BTreeMap<MemberId, [u8; 32]>) -> Self {
        DkgRound {
            epoch,
            attempt: 0,
            opened_at: height,
            threshold: dkg::default_threshold(roster.len()),
            roster,
            commitments: BTreeMap::new(),
            complaints: BTreeMap::new(),
            answers: BTreeMap::new(),
            failures: Vec::new(),
            round1_closed_at: None,
            acks: BTreeSet::new(),
            complaints_closed_at: None,
        }
    }

    /// Starts attempt `attempt + 1` at `height` after a failed one: a fresh session, the
    /// windows counted from here, nothing of the failed attempt carried over.
    pub(super) fn reopen(&mut self, height: u64, failure: DkgFailure) {
        self.failures.push(failure);
        self.attempt += 1;
        self.opened_at = height;
        self.commitments.clear();
        self.complaints.clear();
        self.answers.clear();
        self.round1_closed_at = None;
        self.acks.clear();
        self.complaints_closed_at = None;
    }

    /// Whether an attempt that qualified `qualified` members fails: fewer than `t`, or, on the
    /// first `THIN_RETRIES` attempts, exactly `t` while part of the roster is left out. Such
    /// a key has no margin: one of its holders failing later leaves it unable to sign for the
    /// whole epoch (no rotation checkpoint, no audit draw). The retry lets a validator that
    /// came up late (typically at genesis) join; past it, a thin key is accepted.
    pub fn falls_short(&self, qualified: usize) -> bool {
        let t = usize::from(self.threshold);
        qualified < t
            || (qualified == t && qualified < self.roster.len() && self.attempt < THIN_RETRIES)
    }

    /// Last height of the round-1 window: `opened_at + R`, or earlier if every roster member's
    /// package is in.
    pub fn round1_end(&self, p: &EpochParams) -> u64 {
        let full = self.opened_at.saturating_add(p.dkg_round1_blocks);
        self.round1_closed_at.map_or(full, |h| h.min(full))
    }

    /// Last height at which `Missing` complaints are accepted (never past
    /// [`complaint_end`](Self::complaint_end)).
    pub fn missing_end(&self, p: &EpochParams) -> u64 {
        self.round1_end(p)
            .saturating_add(p.dkg_complaint_blocks.div_ceil(2))
            .min(self.complaint_end(p))
    }

    /// Last height at which a `DkgAnswer` is accepted: halfway (rounded down) from
    /// [`missing_end`](Self::missing_end) to [`complaint_end`](Self::complaint_end), i.e.
    /// `round1_end + ⌈C/2⌉ + ⌊C/4⌋`. Answers close before complaints do, so a recipient whose
    /// answered envelope is bad has at least `⌈⌊C/2⌋/2⌉` blocks (one for any `C ≥ 2`, three
    /// with the default `C = 10`) to file its `Bad` complaint, which stays open until
    /// `complaint_end`: a dealer cannot answer with a bad envelope in the last block and stay
    /// qualified.
    pub fn answer_end(&self, p: &EpochParams) -> u64 {
        let missing_end = self.missing_end(p);
        let complaint_end = self.complaint_end(p);
        missing_end.saturating_add(complaint_end.saturating_sub(missing_end) / 2)
    }

    /// Last height of the complaint window: `round1_end + C`, or earlier once every dealer
    /// acknowledged its shares with no complaint on the ledger. The full window stays the
    /// bound for the faulty case: one silent dealer or one complaint keeps it open.
    pub fn complaint_end(&self, p: &EpochParams) -> u64 {
        let full = self.round1_end(p).saturating_add(p.dkg_complaint_blocks);
        self.complaints_closed_at.map_or(full, |h| h.min(full))
    }

    /// The session of this attempt in suite `C` (the same on every node).
    pub fn session<C: Ciphersuite>(&self, chain_id: &str) -> Result<Ceremony<C>, LedgerError> {
        Ceremony::new(
            dkg_session_id(&chain_digest(chain_id), self.attempt),
            self.epoch,
            self.threshold,
            self.roster.clone(),
        )
        .map_err(rejected)
    }

    /// The recorded round-1 packages of `suite`.
    pub fn published<C: Ciphersuite>(
        &self,
        suite: DkgSuite,
    ) -> Result<BTreeMap<MemberId, round1::Package<C>>, LedgerError> {
        let mut out = BTreeMap::new();
        for (m, bytes) in &self.commitments {
            out.insert(*m, decode_round1::<C>(bytes, suite)?);
        }
        Ok(out)
    }

    /// `dealer`'s recorded round-1 package of `suite`, decoded (`None`: it has none). Decoding
    /// one package costs `t` point decodings; [`DkgRound::published`] decodes every dealer's.
    pub fn published_by<C: Ciphersuite>(
        &self,
        suite: DkgSuite,
        dealer: &MemberId,
    ) -> Result<Option<round1::Package<C>>, LedgerError> {
        self.commitments
            .get(dealer)
            .map(|bytes| decode_round1::<C>(bytes, suite))
            .transpose()
    }

    /// The recorded complaints of `suite`.
    pub fn complaints_of(&self, suite: DkgSuite) -> Result<Vec<Complaint>, LedgerError> {
        self.complaints
            .iter()
            .filter(|(k, _)| k.suite == suite)
            .map(|(_, c)| Complaint::decode(c).map_err(rejected))
            .collect()
    }

    /// The recorded answers of `suite`.
    pub fn answers_of(&self, suite: DkgSuite) -> Result<Vec<Envelope>, LedgerError> {
        self.answers
            .iter()
            .filter(|((s, _, _), _)| *s == suite)
            .map(|(_, e)| Envelope::decode(e).map_err(rejected))
            .collect()
    }

    /// The qualified set of `suite` over `published` (this round's packages of `suite`, as
    /// [`DkgRound::published`] decodes them: the caller decodes once for all its uses).
    pub(super) fn qualification<C: Ciphersuite>(
        &self,
        chain_id: &str,
        suite: DkgSuite,
        published: &BTreeMap<MemberId, round1::Package<C>>,
    ) -> Result<dkg::Qualification, LedgerError> {
        let session = self.session::<C>(chain_id)?;
        Ok(session.qualified_set(
            published,
            &self.complaints_of(suite)?,
            &self.answers_of(suite)?,
        ))
    }
}

/// Decodes the `suite` half of an encoded [`Round1Payload`].
pub fn decode_round1<C: Ciphersuite>(
    payload: &[u8],
    suite: DkgSuite,
) -> Result<round1::Package<C>, LedgerError> {
    let p: Round1Payload = decode(payload).map_err(|e| LedgerError::BadPayload(e.0))?;
    let bytes = match suite {
        DkgSuite::Ristretto255 => &p.ristretto255,
        DkgSuite::Ed25519 => &p.ed25519,
    };
    round1::Package::<C>::deserialize(bytes)
        .map_err(|e| LedgerError::BadPayload(format!("round-1 package: {e}")))
}
