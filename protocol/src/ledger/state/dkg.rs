//! The epoch's DKG on the ledger: round-1 packages, complaints, answers and finalisation.
//!
//! Guarantees: every verdict is a pure function of the ledger state and the transaction, so
//! every node reaches the same one. Each message is accepted only inside its window (counted in
//! block heights from the attempt's opening; `docs/consensus.md`, "The epoch cycle"), once per
//! sender, and only if the DKG checks accept it. Answers close before `Bad` complaints do, so
//! every answer can still be convicted. Finalisation takes the intersection of both
//! suites' qualified sets (one group holds both keys) and records both public key packages, or,
//! with fewer than `t` qualified (or exactly `t` on a first attempt that left someone out:
//! `DkgRound::falls_short`), records the failure and reopens the DKG with a new session.

use std::collections::{BTreeMap, BTreeSet};

use frost_core::keys::dkg::round1;
use frost_core::keys::PublicKeyPackage;
use frost_core::Ciphersuite;
use frost_ed25519::Ed25519Sha512;
use frost_ristretto255::Ristretto255Sha512;

use super::LedgerState;
use crate::dkg::{self, Complaint, Envelope, ExclusionCause};
use crate::ledger::codec::decode;
use crate::ledger::dkg_round::{
    decode_round1, rejected, ComplaintKey, DkgExclusion, DkgFailure, DkgResult,
};
use crate::ledger::error::LedgerError;
use crate::ledger::tx::{ComplaintPayload, DkgSuite, MAX_PAYLOAD_BYTES};
use crate::member::MemberId;

impl LedgerState {
    /// The epoch snapshot with X25519 keys (the DKG roster).
    pub fn roster(&self) -> BTreeMap<MemberId, [u8; 32]> {
        self.epoch_validators
            .keys()
            .filter_map(|m| self.members.get(m).map(|r| (*m, r.x25519)))
            .collect()
    }

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

    /// `DkgCommitment`: records the author's valid round-1 packages, once, in the round-1 window.
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
        if self.dkg.commitments.len() == self.dkg.roster.len() {
            // Nothing more can come: round 1 closes in this block.
            self.dkg.round1_closed_at = Some(self.height);
        }
        Ok(())
    }

    /// `DkgComplaint`: records a complaint that convicts its dealer or is owed an answer.
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
        // A complaint in the block that closed the window early reopens it: the full window
        // (answers, `Bad` complaints about them) applies again.
        self.dkg.complaints_closed_at = None;
        Ok(())
    }

    /// `DkgAck`: a dealer of this attempt holds valid shares from every other dealer and has
    /// nothing to complain about. Accepted once per dealer, after round 1 closed and inside
    /// the complaint window. The last one, with no complaint on the ledger, closes the
    /// complaint window in this block.
    pub(super) fn apply_dkg_ack(
        &mut self,
        author: MemberId,
        epoch: u64,
        attempt: u32,
    ) -> Result<(), LedgerError> {
        self.check_dkg_epoch(author, epoch)?;
        if attempt != self.dkg.attempt {
            return Err(LedgerError::DkgRejected(format!(
                "acknowledges attempt {attempt}; the current attempt is {}",
                self.dkg.attempt
            )));
        }
        let p = &self.epochs;
        self.window(
            "acknowledgement",
            self.dkg.round1_end(p) + 1,
            self.dkg.complaint_end(p),
        )?;
        if !self.dkg.commitments.contains_key(&author) {
            return Err(LedgerError::DkgRejected(
                "only a dealer of this attempt acknowledges".into(),
            ));
        }
        if !self.dkg.acks.insert(author) {
            return Err(LedgerError::DuplicateDkg(author));
        }
        let all = self
            .dkg
            .commitments
            .keys()
            .all(|m| self.dkg.acks.contains(m));
        if all && self.dkg.complaints.is_empty() {
            self.dkg.complaints_closed_at = Some(self.height);
        }
        Ok(())
    }

    /// `DkgAnswer`: records the accused dealer's signed envelope answering a `Missing` complaint.
    /// Answers close at [`DkgRound::answer_end`](crate::ledger::DkgRound::answer_end), before
    /// the complaint window does, so the recipient can still file a `Bad` complaint about a bad
    /// answer.
    pub(super) fn apply_dkg_answer(
        &mut self,
        author: MemberId,
        epoch: u64,
        suite: DkgSuite,
        envelope: &[u8],
    ) -> Result<(), LedgerError> {
        self.check_dkg_epoch(author, epoch)?;
        let p = &self.epochs;
        self.window("answer", self.dkg.round1_end(p) + 1, self.dkg.answer_end(p))?;
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

    /// `DkgFinalize`: computes the qualified set and both public key packages after the
    /// complaint window, or records a failed attempt and reopens the DKG.
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
        // Each suite's packages decoded once, for the qualified set and the public keys.
        let published_r = self
            .dkg
            .published::<Ristretto255Sha512>(DkgSuite::Ristretto255)?;
        let published_e = self.dkg.published::<Ed25519Sha512>(DkgSuite::Ed25519)?;
        let qr = self
            .dkg
            .qualification(&self.chain_id, DkgSuite::Ristretto255, &published_r)?;
        let qe = self
            .dkg
            .qualification(&self.chain_id, DkgSuite::Ed25519, &published_e)?;
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
        if self.dkg.falls_short(qualified.len()) {
            // Failed attempt (too few, or a first attempt with no margin): record it and
            // reopen at once with a fresh session context.
            let failure = DkgFailure {
                attempt: self.dkg.attempt,
                height: self.height,
                qualified: qualified.len() as u32,
                excluded,
            };
            self.dkg.reopen(self.height, failure);
            return Ok(());
        }
        let (rist_public, rist_key) = public_over(&published_r, &qualified)?;
        let (ed_public, ed_key) = public_over(&published_e, &qualified)?;
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
}

/// The serialised public key package over `qualified`, and its group key, recomputed from the
/// recorded round-1 commitments (what `dkg::Ceremony::finish` gives every member).
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
/// `accused` as dealer, arrives inside its window (`Missing` until
/// [`missing_end`](crate::ledger::DkgRound::missing_end); `Bad`, also about a published
/// answer, until [`complaint_end`](crate::ledger::DkgRound::complaint_end), after answers
/// close), and either convicts the dealer (`Bad`, judged
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

fn check_payload_size(payload: &[u8]) -> Result<(), LedgerError> {
    if payload.is_empty() || payload.len() > MAX_PAYLOAD_BYTES {
        return Err(LedgerError::BadPayload(format!(
            "payload of {} bytes",
            payload.len()
        )));
    }
    Ok(())
}
