//! The epoch cycle on the ledger: two robust DKGs per epoch, the threshold-PRF beacon, the
//! epoch start and the threshold-signed checkpoints (issue 4, DESIGN.md §6 and §10).
//!
//! Everything here is a pure function of the ledger state and the transaction, so every node
//! reaches the same verdicts. Windows are counted in block heights from
//! [`DkgRound::opened_at`] (the height of the epoch start, 0 at genesis):
//! round 1 in `(opened, opened + R]`, complaints and answers in `(opened + R, opened + R + C]`
//! (`Missing` complaints only in the first half, so the dealer has time to answer), and
//! `DkgFinalize` after that. Finalisation computes `dkg::Ceremony::qualified_set` for both
//! suites from the ledger's data, intersects them (one group for both keys), recomputes both
//! public key packages over the intersection from the round-1 commitments and records them with
//! every exclusion and its reason. With fewer than `t` qualified the attempt is recorded as
//! failed and the DKG reopens at once (`attempt + 1`, a new session context, so no message of
//! the old attempt is valid in the new one).
//!
//! The beacon of epoch `e + 1` is the threshold PRF of [`beacon_input`]`(chain, e + 1)` under the
//! ristretto255 key of the DKG completed in epoch `e`: partials go on the ledger with their DLEQ
//! proofs, the first `t` valid ones are kept, and `EpochStart` must carry exactly their
//! combination.
//!
//! Checkpoints are signed by the Ed25519 key *in force* ([`LedgerState::checkpoint_key`]):
//! the key of the first completed DKG (epoch 0's, the light clients' genesis group key), then,
//! each time a later DKG completes, a *rotation* checkpoint signed by the old key vouches for the
//! new one, which is in force once that checkpoint is recorded. Each checkpoint's
//! [`validator_set_hash`] commits to the epoch's validators and to the group keys that sign the
//! checkpoints after it, so a light client walks the chain of checkpoints from the genesis key.
//! Signing is FROST in two ledger-ordered rounds: the first `t` commitments fix the signers, their
//! shares are aggregated by the ledger and verified with `verify_strict`; a bad share excludes its
//! signer and starts a new attempt, and a stalled attempt can be superseded after
//! [`EpochParams::checkpoint_attempt_blocks`].

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::{Signature, VerifyingKey};
use frost_core::keys::dkg::round1;
use frost_core::keys::PublicKeyPackage;
use frost_core::Ciphersuite;
use frost_ed25519::Ed25519Sha512;
use frost_ristretto255::Ristretto255Sha512;
use serde::{Deserialize, Serialize};

use super::state::LedgerState;
use super::tx::Signature64;
use super::{chain_digest, decode, LedgerError};
use crate::checkpoint::{self, Checkpoint, SignatureShare, SigningCommitments};
use crate::dkg::{self, Ceremony, Complaint, Envelope, ExclusionCause};
use crate::hash::{hash32, Domain};
use crate::member::MemberId;
use crate::tprf;

const SESSION_DOMAIN: Domain = Domain::new("seedfed-dkg-sid");
const VALSET_DOMAIN: Domain = Domain::new("seedfed-valset");
const BEACON_LABEL: &[u8] = b"seedfed-beacon/v1";

/// How many recorded checkpoints and checkpoint faults the state keeps (older ones stay in the
/// blocks that recorded them).
pub const KEEP_CHECKPOINTS: usize = 16;

/// Block windows of the epoch cycle, fixed at genesis. Blocks come continuously (a few per
/// second on a local testnet), so these are small numbers of blocks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochParams {
    /// Length `R` of the DKG round-1 window (round-1 packages on the ledger).
    pub dkg_round1_blocks: u64,
    /// Length `C` of the complaint window after round 1 (envelopes, complaints, answers).
    pub dkg_complaint_blocks: u64,
    /// Minimum number of blocks between an epoch's start and the next `EpochStart`.
    pub epoch_min_blocks: u64,
    /// Blocks after which a checkpoint signing attempt that has not completed may be superseded
    /// by a new attempt.
    pub checkpoint_attempt_blocks: u64,
}

impl Default for EpochParams {
    /// Local-testnet defaults: 10 / 10 / 30 / 10 blocks.
    fn default() -> Self {
        EpochParams {
            dkg_round1_blocks: 10,
            dkg_complaint_blocks: 10,
            epoch_min_blocks: 30,
            checkpoint_attempt_blocks: 10,
        }
    }
}

/// Which of the two DKGs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DkgSuite {
    /// ristretto255: the seed-tree root key and the beacon's threshold PRF.
    Ristretto255,
    /// Ed25519: the checkpoint signing key.
    Ed25519,
}

/// A `DkgCommitment` payload: the author's frost round-1 packages for both suites.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Round1Payload {
    /// `frost_ristretto255::keys::dkg::round1::Package::serialize`.
    pub ristretto255: Vec<u8>,
    /// `frost_ed25519::keys::dkg::round1::Package::serialize`.
    pub ed25519: Vec<u8>,
}

/// A `DkgComplaint` payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplaintPayload {
    /// The DKG the complaint is about.
    pub suite: DkgSuite,
    /// `dkg::Complaint::encode`.
    pub complaint: Vec<u8>,
}

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
    fn from_dkg(suite: DkgSuite, e: ExclusionCause) -> Self {
        match e {
            ExclusionCause::Absent => DkgExclusion::Absent,
            ExclusionCause::BadRound1 => DkgExclusion::BadRound1 { suite },
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

/// A checkpoint's content (serde mirror of [`checkpoint::Checkpoint`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointBody {
    /// [`chain_digest`] of the chain id.
    pub chain_id: [u8; 32],
    /// Epoch at the time it became due.
    pub epoch: u64,
    /// Height at which it became due.
    pub height: u64,
    /// The master root (zeros before one exists).
    pub master_root: [u8; 32],
    /// [`validator_set_hash`].
    pub validator_set_hash: [u8; 32],
}

impl CheckpointBody {
    /// As the `checkpoint` module's type.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            chain_id: self.chain_id,
            epoch: self.epoch,
            height: self.height,
            master_root: self.master_root,
            validator_set_hash: self.validator_set_hash,
        }
    }
}

/// A checkpoint waiting to be signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointDue {
    /// What is signed.
    pub body: CheckpointBody,
    /// For a rotation checkpoint: the epoch whose DKG key is in force once it is recorded.
    pub rotate_to: Option<u64>,
}

/// The signing of the head of the checkpoint queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointSigning {
    /// Attempt.
    pub attempt: u32,
    /// Height at which this attempt started.
    pub started_at: u64,
    /// Commitments in ledger order; the first `t` are the signers.
    pub commitments: Vec<(MemberId, Vec<u8>)>,
    /// Shares of the signers.
    pub shares: BTreeMap<MemberId, Vec<u8>>,
    /// Members whose shares were bad in an earlier attempt of this checkpoint.
    pub excluded: BTreeSet<MemberId>,
}

/// A recorded, verified checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    /// Sequence number.
    pub seq: u64,
    /// What was signed.
    pub body: CheckpointBody,
    /// The aggregate Ed25519 signature over `body.checkpoint().to_bytes()`.
    pub signature: Signature64,
    /// Epoch of the DKG whose key signed it.
    pub key_epoch: u64,
    /// That key.
    pub group_key: [u8; 32],
}

/// A bad checkpoint signature share, attributed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointFault {
    /// Checkpoint number.
    pub seq: u64,
    /// Attempt.
    pub attempt: u32,
    /// The signer whose share was bad.
    pub member: MemberId,
    /// Height.
    pub height: u64,
}

/// The threshold-PRF input of the beacon of `epoch`: `"seedfed-beacon/v1" ‖ chain digest ‖
/// u64le(epoch)`.
pub fn beacon_input(chain_digest: &[u8; 32], epoch: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(BEACON_LABEL.len() + 40);
    v.extend_from_slice(BEACON_LABEL);
    v.extend_from_slice(chain_digest);
    v.extend_from_slice(&epoch.to_le_bytes());
    v
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

/// The validator-set hash a checkpoint carries: BLAKE2b(`seedfed-valset`, for each validator in
/// member order: id ‖ u64le(stake) ‖ X25519 key; then the Ed25519 and the ristretto255 group
/// keys that sign/serve *after* this checkpoint). A light client that trusts a checkpoint and is
/// given the preimage learns the key that signs the next one.
pub fn validator_set_hash(
    validators: &BTreeMap<MemberId, (u64, [u8; 32])>,
    next_ed25519: &[u8; 32],
    next_ristretto255: &[u8; 32],
) -> [u8; 32] {
    let mut parts: Vec<Vec<u8>> = Vec::with_capacity(validators.len() + 2);
    for (m, (stake, x)) in validators {
        let mut p = m.0.to_vec();
        p.extend_from_slice(&stake.to_le_bytes());
        p.extend_from_slice(x);
        parts.push(p);
    }
    parts.push(next_ed25519.to_vec());
    parts.push(next_ristretto255.to_vec());
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    hash32(VALSET_DOMAIN, &[], &[0; 16], &refs)
}

fn rejected(e: impl std::fmt::Display) -> LedgerError {
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
        }
    }

    /// Last height of the round-1 window.
    pub fn round1_end(&self, p: &EpochParams) -> u64 {
        self.opened_at.saturating_add(p.dkg_round1_blocks)
    }

    /// Last height at which `Missing` complaints are accepted.
    pub fn missing_end(&self, p: &EpochParams) -> u64 {
        self.round1_end(p)
            .saturating_add(p.dkg_complaint_blocks.div_ceil(2))
    }

    /// Last height of the complaint window.
    pub fn complaint_end(&self, p: &EpochParams) -> u64 {
        self.round1_end(p).saturating_add(p.dkg_complaint_blocks)
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

    fn qualification<C: Ciphersuite>(
        &self,
        chain_id: &str,
        suite: DkgSuite,
    ) -> Result<dkg::Qualification, LedgerError> {
        let session = self.session::<C>(chain_id)?;
        Ok(session.qualified_set(
            &self.published::<C>(suite)?,
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

fn public_over<C: Ciphersuite>(
    published: &BTreeMap<MemberId, round1::Package<C>>,
    qualified: &BTreeSet<MemberId>,
) -> Result<(Vec<u8>, [u8; 32]), LedgerError> {
    let mut commitments = BTreeMap::new();
    for m in qualified {
        let p = published
            .get(m)
            .ok_or(LedgerError::DkgRejected("qualified without package".into()))?;
        commitments.insert(
            dkg::identifier_for::<C>(m).map_err(rejected)?,
            p.commitment(),
        );
    }
    let pkp = PublicKeyPackage::<C>::from_dkg_commitments(&commitments).map_err(rejected)?;
    let key = pkp.verifying_key().serialize().map_err(rejected)?;
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| LedgerError::DkgRejected("group key is not 32 bytes".into()))?;
    Ok((pkp.serialize().map_err(rejected)?, key))
}

impl LedgerState {
    fn check_dkg_epoch(&self, author: MemberId, epoch: u64) -> Result<(), LedgerError> {
        if epoch != self.epoch {
            return Err(LedgerError::WrongEpoch {
                got: epoch,
                expected: self.epoch,
            });
        }
        if !self.dkg.roster.contains_key(&author) {
            return Err(LedgerError::NotValidator(author));
        }
        if self.dkg_results.contains_key(&epoch) {
            return Err(LedgerError::DkgDone(epoch));
        }
        Ok(())
    }

    fn window(&self, what: &'static str, from: u64, to: u64) -> Result<(), LedgerError> {
        if self.height < from || self.height > to {
            return Err(LedgerError::DkgWindow {
                what,
                height: self.height,
                from,
                to,
            });
        }
        Ok(())
    }

    pub(super) fn apply_dkg_commitment(
        &mut self,
        author: MemberId,
        epoch: u64,
        payload: &[u8],
    ) -> Result<(), LedgerError> {
        self.check_dkg_epoch(author, epoch)?;
        let p = &self.epochs;
        self.window(
            "round-1 package",
            self.dkg.opened_at + 1,
            self.dkg.round1_end(p),
        )?;
        if self.dkg.commitments.contains_key(&author) {
            return Err(LedgerError::DuplicateDkg(author));
        }
        validate_dkg_round1_payload(self, &author, payload)?;
        self.dkg.commitments.insert(author, payload.to_vec());
        Ok(())
    }

    pub(super) fn apply_dkg_complaint(
        &mut self,
        author: MemberId,
        epoch: u64,
        accused: MemberId,
        payload: &[u8],
    ) -> Result<(), LedgerError> {
        self.check_dkg_epoch(author, epoch)?;
        if !self.dkg.roster.contains_key(&accused) {
            return Err(LedgerError::NotValidator(accused));
        }
        let key = validate_dkg_complaint_payload(self, &author, &accused, payload)?;
        if self.dkg.complaints.contains_key(&key) {
            return Err(LedgerError::DuplicateDkg(author));
        }
        let c: ComplaintPayload = decode(payload).map_err(|e| LedgerError::BadPayload(e.0))?;
        self.dkg.complaints.insert(key, c.complaint);
        Ok(())
    }

    pub(super) fn apply_dkg_answer(
        &mut self,
        author: MemberId,
        epoch: u64,
        suite: DkgSuite,
        envelope: &[u8],
    ) -> Result<(), LedgerError> {
        self.check_dkg_epoch(author, epoch)?;
        let p = &self.epochs;
        self.window(
            "answer",
            self.dkg.round1_end(p) + 1,
            self.dkg.complaint_end(p),
        )?;
        let env = Envelope::decode(envelope).map_err(rejected)?;
        if env.sender != author {
            return Err(LedgerError::DkgRejected(
                "answer envelope not from its author".into(),
            ));
        }
        let key = ComplaintKey {
            suite,
            accuser: env.recipient,
            accused: author,
            missing: true,
        };
        if !self.dkg.complaints.contains_key(&key) {
            return Err(LedgerError::DkgRejected(
                "no Missing complaint to answer".into(),
            ));
        }
        let ok = match suite {
            DkgSuite::Ristretto255 => self
                .dkg
                .session::<Ristretto255Sha512>(&self.chain_id)?
                .verify_envelope(&env),
            DkgSuite::Ed25519 => self
                .dkg
                .session::<Ed25519Sha512>(&self.chain_id)?
                .verify_envelope(&env),
        };
        if !ok {
            return Err(LedgerError::DkgRejected("answer envelope unsigned".into()));
        }
        let akey = (suite, author, env.recipient);
        if self.dkg.answers.contains_key(&akey) {
            return Err(LedgerError::DuplicateDkg(author));
        }
        self.dkg.answers.insert(akey, envelope.to_vec());
        Ok(())
    }

    pub(super) fn apply_dkg_finalize(
        &mut self,
        author: MemberId,
        epoch: u64,
    ) -> Result<(), LedgerError> {
        self.check_dkg_epoch(author, epoch)?;
        let end = self.dkg.complaint_end(&self.epochs);
        if self.height <= end {
            return Err(LedgerError::DkgWindow {
                what: "finalize",
                height: self.height,
                from: end + 1,
                to: u64::MAX,
            });
        }
        let qr = self
            .dkg
            .qualification::<Ristretto255Sha512>(&self.chain_id, DkgSuite::Ristretto255)?;
        let qe = self
            .dkg
            .qualification::<Ed25519Sha512>(&self.chain_id, DkgSuite::Ed25519)?;
        let qualified: BTreeSet<MemberId> =
            qr.qualified.intersection(&qe.qualified).copied().collect();
        let mut excluded = BTreeMap::new();
        for (m, e) in &qr.excluded {
            excluded.insert(*m, DkgExclusion::from_dkg(DkgSuite::Ristretto255, *e));
        }
        for (m, e) in &qe.excluded {
            excluded
                .entry(*m)
                .or_insert(DkgExclusion::from_dkg(DkgSuite::Ed25519, *e));
        }
        if qualified.len() < usize::from(self.dkg.threshold) {
            // Failed attempt: record it and reopen at once with a fresh session context.
            let failure = DkgFailure {
                attempt: self.dkg.attempt,
                height: self.height,
                qualified: qualified.len() as u32,
                excluded,
            };
            self.dkg.failures.push(failure);
            self.dkg.attempt += 1;
            self.dkg.opened_at = self.height;
            self.dkg.commitments.clear();
            self.dkg.complaints.clear();
            self.dkg.answers.clear();
            return Ok(());
        }
        let (rist_public, rist_key) = public_over(
            &self
                .dkg
                .published::<Ristretto255Sha512>(DkgSuite::Ristretto255)?,
            &qualified,
        )?;
        let (ed_public, ed_key) = public_over(
            &self.dkg.published::<Ed25519Sha512>(DkgSuite::Ed25519)?,
            &qualified,
        )?;
        let result = DkgResult {
            epoch,
            attempt: self.dkg.attempt,
            height: self.height,
            threshold: self.dkg.threshold,
            qualified,
            excluded,
            ristretto255_public: rist_public,
            ed25519_public: ed_public,
            ristretto255_group_key: rist_key,
            ed25519_group_key: ed_key,
        };
        self.dkg_results.insert(epoch, result);
        match self.checkpoint_key {
            // The first completed DKG's key is the genesis group key.
            None => self.checkpoint_key = Some(epoch),
            // A later key is vouched for by a rotation checkpoint signed with the old one.
            Some(_) => self.enqueue_checkpoint(Some(epoch)),
        }
        Ok(())
    }

    pub(super) fn apply_beacon_partial(
        &mut self,
        author: MemberId,
        epoch: u64,
        partial: &tprf::Partial,
    ) -> Result<(), LedgerError> {
        if epoch != self.epoch + 1 {
            return Err(LedgerError::WrongEpoch {
                got: epoch,
                expected: self.epoch + 1,
            });
        }
        let result = self
            .dkg_results
            .get(&self.epoch)
            .ok_or(LedgerError::DkgIncomplete(self.epoch))?;
        if partial.member != author {
            return Err(LedgerError::BadPartial(
                "partial is not the author's".into(),
            ));
        }
        if !result.qualified.contains(&author) {
            return Err(LedgerError::NotValidator(author));
        }
        if self.beacon_partials.iter().any(|p| p.member == author) {
            return Err(LedgerError::DuplicateDkg(author));
        }
        if self.beacon_partials.len() >= usize::from(result.threshold) {
            return Err(LedgerError::BeaconComplete);
        }
        let public = result.ristretto255()?;
        tprf::verify_partial(
            &public,
            &beacon_input(&chain_digest(&self.chain_id), epoch),
            partial,
        )
        .map_err(|e| LedgerError::BadPartial(e.to_string()))?;
        self.beacon_partials.push(*partial);
        Ok(())
    }

    /// The beacon combined from the recorded partials, if `t` are in.
    pub fn recorded_beacon(&self) -> Result<[u8; 32], LedgerError> {
        let result = self
            .dkg_results
            .get(&self.epoch)
            .ok_or(LedgerError::DkgIncomplete(self.epoch))?;
        let t = usize::from(result.threshold);
        if self.beacon_partials.len() < t {
            return Err(LedgerError::BadBeacon("fewer than t partials recorded"));
        }
        tprf::combine(
            &result.ristretto255()?,
            &beacon_input(&chain_digest(&self.chain_id), self.epoch + 1),
            &self.beacon_partials[..t],
        )
        .map_err(|_| LedgerError::BadBeacon("recorded partials do not combine"))
    }

    /// The height from which the next `EpochStart` is accepted.
    pub fn next_epoch_height(&self) -> u64 {
        self.epoch_started_at
            .saturating_add(self.epochs.epoch_min_blocks)
    }

    pub(super) fn apply_epoch_start(
        &mut self,
        epoch: u64,
        beacon: &[u8; 32],
    ) -> Result<(), LedgerError> {
        if epoch != self.epoch + 1 {
            return Err(LedgerError::WrongEpoch {
                got: epoch,
                expected: self.epoch + 1,
            });
        }
        validate_epoch_beacon(self, epoch, beacon)?;
        self.begin_epoch(epoch, *beacon);
        Ok(())
    }

    /// Switches to `epoch` with `beacon`: snapshots the validators, opens the epoch's DKG at
    /// the current height, clears the partials, prunes old DKG data and queues the epoch-start
    /// checkpoint. Callers have checked everything.
    pub(crate) fn begin_epoch(&mut self, epoch: u64, beacon: [u8; 32]) {
        self.epoch = epoch;
        self.beacon = beacon;
        self.epoch_validators = self.validators();
        self.epoch_started_at = self.height;
        self.dkg = DkgRound::open(epoch, self.height, self.roster());
        self.beacon_partials.clear();
        self.enqueue_checkpoint(None);
        // Keep the results still needed: the key in force, queued rotations, the last epoch's.
        let mut keep_from = epoch.saturating_sub(1);
        if let Some(k) = self.checkpoint_key {
            keep_from = keep_from.min(k);
        }
        for due in self.checkpoints_due.values() {
            if let Some(k) = due.rotate_to {
                keep_from = keep_from.min(k);
            }
        }
        self.dkg_results.retain(|e, _| *e >= keep_from);
    }

    /// The epoch snapshot with X25519 keys (the DKG roster).
    pub fn roster(&self) -> BTreeMap<MemberId, [u8; 32]> {
        self.epoch_validators
            .keys()
            .filter_map(|m| self.members.get(m).map(|r| (*m, r.x25519)))
            .collect()
    }

    /// Queues a checkpoint of the current state (skipped while no DKG key exists) and starts
    /// signing it if nothing else is being signed.
    pub(super) fn enqueue_checkpoint(&mut self, rotate_to: Option<u64>) {
        let Some(next_epoch) = rotate_to.or(self.checkpoint_key) else {
            return;
        };
        let Some(next) = self.dkg_results.get(&next_epoch) else {
            return;
        };
        let validators = self
            .epoch_validators
            .iter()
            .map(|(m, s)| (*m, (*s, self.members.get(m).map_or([0; 32], |r| r.x25519))))
            .collect();
        let body = CheckpointBody {
            chain_id: chain_digest(&self.chain_id),
            epoch: self.epoch,
            height: self.height,
            master_root: self.master_root.unwrap_or([0; 32]),
            validator_set_hash: validator_set_hash(
                &validators,
                &next.ed25519_group_key,
                &next.ristretto255_group_key,
            ),
        };
        self.checkpoints_due
            .insert(self.checkpoint_seq, CheckpointDue { body, rotate_to });
        self.checkpoint_seq += 1;
        if self.checkpoint_signing.is_none() {
            self.checkpoint_signing = Some(CheckpointSigning {
                attempt: 0,
                started_at: self.height,
                commitments: Vec::new(),
                shares: BTreeMap::new(),
                excluded: BTreeSet::new(),
            });
        }
    }

    /// The checkpoint being signed: (sequence number, what, signing progress, key epoch).
    pub fn checkpoint_in_progress(&self) -> Option<(u64, &CheckpointDue, &CheckpointSigning, u64)> {
        let (seq, due) = self.checkpoints_due.iter().next()?;
        let signing = self.checkpoint_signing.as_ref()?;
        Some((*seq, due, signing, self.checkpoint_key?))
    }

    fn checkpoint_context(
        &self,
        checkpoint: u64,
    ) -> Result<
        (
            u64,
            CheckpointSigning,
            frost_ed25519::keys::PublicKeyPackage,
            u16,
        ),
        LedgerError,
    > {
        let (seq, _, signing, key_epoch) = self
            .checkpoint_in_progress()
            .ok_or(LedgerError::NoCheckpoint)?;
        if checkpoint != seq {
            return Err(LedgerError::WrongCheckpoint {
                got_checkpoint: checkpoint,
                got_attempt: 0,
                checkpoint: seq,
                attempt: signing.attempt,
            });
        }
        let result = self
            .dkg_results
            .get(&key_epoch)
            .ok_or(LedgerError::DkgIncomplete(key_epoch))?;
        Ok((seq, signing.clone(), result.ed25519()?, result.threshold))
    }

    pub(super) fn apply_checkpoint_commit(
        &mut self,
        author: MemberId,
        checkpoint: u64,
        attempt: u32,
        commitments: &[u8],
    ) -> Result<(), LedgerError> {
        let (seq, mut signing, public, t) = self.checkpoint_context(checkpoint)?;
        let id =
            checkpoint::identifier(&author).map_err(|e| LedgerError::Checkpoint(e.to_string()))?;
        if !public.verifying_shares().contains_key(&id) {
            return Err(LedgerError::NotSigner(
                author,
                "not in the signing key's group",
            ));
        }
        let stalled = self.height
            > signing
                .started_at
                .saturating_add(self.epochs.checkpoint_attempt_blocks);
        if attempt == signing.attempt + 1 && stalled {
            signing.attempt = attempt;
            signing.started_at = self.height;
            signing.commitments.clear();
            signing.shares.clear();
        } else if attempt != signing.attempt {
            return Err(LedgerError::WrongCheckpoint {
                got_checkpoint: checkpoint,
                got_attempt: attempt,
                checkpoint: seq,
                attempt: signing.attempt,
            });
        }
        if signing.excluded.contains(&author) {
            return Err(LedgerError::NotSigner(author, "sent a bad share earlier"));
        }
        if signing.commitments.len() >= usize::from(t) {
            return Err(LedgerError::NotSigner(author, "signer set already fixed"));
        }
        if signing.commitments.iter().any(|(m, _)| *m == author) {
            return Err(LedgerError::DuplicateDkg(author));
        }
        SigningCommitments::deserialize(commitments)
            .map_err(|e| LedgerError::Checkpoint(format!("commitments: {e}")))?;
        signing.commitments.push((author, commitments.to_vec()));
        self.checkpoint_signing = Some(signing);
        Ok(())
    }

    pub(super) fn apply_checkpoint_share(
        &mut self,
        author: MemberId,
        checkpoint: u64,
        attempt: u32,
        share: &[u8],
    ) -> Result<(), LedgerError> {
        let (seq, mut signing, public, t) = self.checkpoint_context(checkpoint)?;
        if attempt != signing.attempt {
            return Err(LedgerError::WrongCheckpoint {
                got_checkpoint: checkpoint,
                got_attempt: attempt,
                checkpoint: seq,
                attempt: signing.attempt,
            });
        }
        if signing.commitments.len() < usize::from(t) {
            return Err(LedgerError::NotSigner(author, "signer set not fixed yet"));
        }
        if !signing.commitments.iter().any(|(m, _)| *m == author) {
            return Err(LedgerError::NotSigner(
                author,
                "not among the fixed signers",
            ));
        }
        if signing.shares.contains_key(&author) {
            return Err(LedgerError::DuplicateDkg(author));
        }
        SignatureShare::deserialize(share)
            .map_err(|e| LedgerError::Checkpoint(format!("share: {e}")))?;
        signing.shares.insert(author, share.to_vec());
        if signing.shares.len() < usize::from(t) {
            self.checkpoint_signing = Some(signing);
            return Ok(());
        }
        // All t shares are in: aggregate.
        let due = self
            .checkpoints_due
            .get(&seq)
            .cloned()
            .ok_or(LedgerError::NoCheckpoint)?;
        let cp = due.body.checkpoint();
        let ckerr = |e: checkpoint::CheckpointError| LedgerError::Checkpoint(e.to_string());
        let mut commit_map = BTreeMap::new();
        for (m, c) in &signing.commitments {
            commit_map.insert(
                *m,
                SigningCommitments::deserialize(c)
                    .map_err(|e| LedgerError::Checkpoint(e.to_string()))?,
            );
        }
        let mut share_map = BTreeMap::new();
        for (m, s) in &signing.shares {
            share_map.insert(
                *m,
                SignatureShare::deserialize(s)
                    .map_err(|e| LedgerError::Checkpoint(e.to_string()))?,
            );
        }
        let package = checkpoint::signing_package(&cp, &commit_map).map_err(ckerr)?;
        match checkpoint::aggregate(&package, &share_map, &public) {
            Ok(sig) => {
                let key_epoch = self.checkpoint_key.ok_or(LedgerError::NoCheckpoint)?;
                let group_key = checkpoint::group_key(&public).map_err(ckerr)?;
                let vk = VerifyingKey::from_bytes(&group_key)
                    .map_err(|_| LedgerError::Checkpoint("group key invalid".into()))?;
                vk.verify_strict(&cp.to_bytes(), &Signature::from_bytes(&sig))
                    .map_err(|_| LedgerError::Checkpoint("aggregate does not verify".into()))?;
                self.checkpoints.push(SignedCheckpoint {
                    seq,
                    body: due.body,
                    signature: Signature64(sig),
                    key_epoch,
                    group_key,
                });
                if self.checkpoints.len() > KEEP_CHECKPOINTS {
                    self.checkpoints.remove(0);
                }
                self.checkpoints_due.remove(&seq);
                if let Some(k) = due.rotate_to {
                    self.checkpoint_key = Some(k);
                }
                self.checkpoint_signing =
                    (!self.checkpoints_due.is_empty()).then(|| CheckpointSigning {
                        attempt: 0,
                        started_at: self.height,
                        commitments: Vec::new(),
                        shares: BTreeMap::new(),
                        excluded: BTreeSet::new(),
                    });
            }
            Err(checkpoint::CheckpointError::BadShares { culprits }) => {
                for m in &culprits {
                    self.checkpoint_faults.push(CheckpointFault {
                        seq,
                        attempt: signing.attempt,
                        member: *m,
                        height: self.height,
                    });
                    signing.excluded.insert(*m);
                }
                while self.checkpoint_faults.len() > KEEP_CHECKPOINTS {
                    self.checkpoint_faults.remove(0);
                }
                signing.attempt += 1;
                signing.started_at = self.height;
                signing.commitments.clear();
                signing.shares.clear();
                self.checkpoint_signing = Some(signing);
            }
            Err(e) => return Err(ckerr(e)),
        }
        Ok(())
    }
}

/// DKG check of a `DkgCommitment`: the payload decodes to both frost round-1 packages, and each
/// has exactly `t` coefficient commitments and a valid proof of knowledge for the sender's
/// identifier (`dkg::Ceremony::valid_round1`).
pub fn validate_dkg_round1_payload(
    state: &LedgerState,
    sender: &MemberId,
    payload: &[u8],
) -> Result<(), LedgerError> {
    check_payload_size(payload)?;
    fn one<C: Ciphersuite>(
        state: &LedgerState,
        sender: &MemberId,
        payload: &[u8],
        suite: DkgSuite,
    ) -> Result<(), LedgerError> {
        let package = decode_round1::<C>(payload, suite)?;
        let session = state.dkg.session::<C>(&state.chain_id)?;
        let (valid, _) = session.valid_round1(&BTreeMap::from([(*sender, package)]));
        if valid.contains_key(sender) {
            Ok(())
        } else {
            Err(LedgerError::DkgRejected(format!(
                "{suite:?} round-1 package has a bad proof of knowledge or degree"
            )))
        }
    }
    one::<Ristretto255Sha512>(state, sender, payload, DkgSuite::Ristretto255)?;
    one::<Ed25519Sha512>(state, sender, payload, DkgSuite::Ed25519)
}

/// DKG check of a `DkgComplaint`: the complaint decodes, names the author as complainer and
/// `accused` as dealer, arrives inside its window, and either convicts the dealer (`Bad`, judged
/// by `dkg::Ceremony::qualified_set` on the ledger's packages) or is owed (`Missing` from a
/// valid round-1 dealer to a valid dealer not yet answered). Returns the complaint's key.
pub fn validate_dkg_complaint_payload(
    state: &LedgerState,
    accuser: &MemberId,
    accused: &MemberId,
    payload: &[u8],
) -> Result<ComplaintKey, LedgerError> {
    check_payload_size(payload)?;
    let c: ComplaintPayload = decode(payload).map_err(|e| LedgerError::BadPayload(e.0))?;
    let complaint = Complaint::decode(&c.complaint).map_err(rejected)?;
    if complaint.complainer() != *accuser || complaint.dealer() != *accused {
        return Err(LedgerError::DkgRejected(
            "complaint names another complainer or dealer".into(),
        ));
    }
    let missing = matches!(complaint, Complaint::Missing { .. });
    let p = &state.epochs;
    let from = state.dkg.round1_end(p) + 1;
    if missing {
        state.window("Missing complaint", from, state.dkg.missing_end(p))?;
    } else {
        state.window("complaint", from, state.dkg.complaint_end(p))?;
    }
    fn judge<C: Ciphersuite>(
        state: &LedgerState,
        suite: DkgSuite,
        complaint: &Complaint,
    ) -> Result<(), LedgerError> {
        let session = state.dkg.session::<C>(&state.chain_id)?;
        let published = state.dkg.published::<C>(suite)?;
        let answers = state.dkg.answers_of(suite)?;
        let q = session.qualified_set(&published, std::slice::from_ref(complaint), &answers);
        let dealer = complaint.dealer();
        if !published.contains_key(&dealer) {
            return Err(LedgerError::DkgRejected(
                "the accused has no round-1 package".into(),
            ));
        }
        if let Some(r) = q.rejected.first() {
            return Err(LedgerError::DkgRejected(format!(
                "complaint rejected: {:?}",
                r.reason
            )));
        }
        match q.excluded.get(&dealer) {
            Some(ExclusionCause::BadShare { .. }) | Some(ExclusionCause::NoShare { .. }) => Ok(()),
            _ => Err(LedgerError::DkgRejected("complaint proves nothing".into())),
        }
    }
    match c.suite {
        DkgSuite::Ristretto255 => judge::<Ristretto255Sha512>(state, c.suite, &complaint)?,
        DkgSuite::Ed25519 => judge::<Ed25519Sha512>(state, c.suite, &complaint)?,
    }
    Ok(ComplaintKey {
        suite: c.suite,
        accuser: *accuser,
        accused: *accused,
        missing,
    })
}

/// Beacon check of an `EpochStart`: the current epoch's DKG is complete, the epoch has lasted
/// at least `epoch_min_blocks`, and `beacon` is the combination of the first `t` recorded
/// partials for `epoch`.
pub fn validate_epoch_beacon(
    state: &LedgerState,
    epoch: u64,
    beacon: &[u8; 32],
) -> Result<(), LedgerError> {
    if epoch != state.epoch + 1 {
        return Err(LedgerError::WrongEpoch {
            got: epoch,
            expected: state.epoch + 1,
        });
    }
    if !state.dkg_results.contains_key(&state.epoch) {
        return Err(LedgerError::DkgIncomplete(state.epoch));
    }
    if state.height < state.next_epoch_height() {
        return Err(LedgerError::EpochTooEarly(state.next_epoch_height()));
    }
    let expected = state.recorded_beacon()?;
    if expected != *beacon {
        return Err(LedgerError::BadBeacon("differs from the combined partials"));
    }
    Ok(())
}

pub(super) fn check_payload_size(payload: &[u8]) -> Result<(), LedgerError> {
    if payload.is_empty() || payload.len() > super::MAX_PAYLOAD_BYTES {
        return Err(LedgerError::BadPayload(format!(
            "payload of {} bytes",
            payload.len()
        )));
    }
    Ok(())
}
