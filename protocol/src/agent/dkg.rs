//! The DKG duty: both DKGs of an epoch (ristretto255 and Ed25519) in lock step — round-1
//! packages, envelopes dealt point to point and re-sent, complaints about bad or missing
//! envelopes, answers to complaints against us (until the ledger's `answer_end`, before the
//! complaint window closes), `DkgAck` once every dealer's shares arrived and are valid (all
//! dealers' acks close the complaint window early), `DkgFinalize`, then the key packages.
//! Guarantees: round-1 secrets and envelopes are drawn once per attempt and kept in the state;
//! a bad direct message is an error that leaves the state unchanged.

use std::collections::{BTreeMap, BTreeSet};

use frost_core::keys::dkg::{round1, round2};
use frost_core::keys::KeyPackage;
use frost_core::Ciphersuite;
use frost_ed25519::Ed25519Sha512;
use frost_ristretto255::Ristretto255Sha512;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::direct::Direct;
use super::duty::{Duty, EpochError, Fault};
use super::machine::Agent;
use super::state::{LocalDkg, LocalKeys};
use crate::dkg::{Ceremony, DkgError, Envelope};
use crate::ledger::{encode, LedgerState, TxBody};
use crate::ledger::{ComplaintKey, ComplaintPayload, DkgSuite, Round1Payload};
use crate::member::MemberId;

/// Blocks after round 1 closes during which dealers re-send their envelopes.
pub const RESEND_BLOCKS: u64 = 3;
/// Blocks after round 1 closes before a recipient files `Missing` for a dealer it heard nothing
/// from.
pub const MISSING_DELAY_BLOCKS: u64 = 2;

/// A point-to-point message: one dealer's two envelopes for one recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct DirectMsg {
    epoch: u64,
    attempt: u32,
    ristretto255: Vec<u8>,
    ed25519: Vec<u8>,
}

fn suite_bytes(msg: &DirectMsg, suite: DkgSuite) -> &[u8] {
    match suite {
        DkgSuite::Ristretto255 => &msg.ristretto255,
        DkgSuite::Ed25519 => &msg.ed25519,
    }
}

const SUITES: [DkgSuite; 2] = [DkgSuite::Ristretto255, DkgSuite::Ed25519];

/// Outcome of opening one envelope.
enum Opened {
    Share(Vec<u8>),
    Complaint(Vec<u8>),
}

impl Agent {
    /// One dealer's round-2 envelopes from `from` (authenticated by the transport). A bad
    /// message is an error and leaves the state unchanged.
    pub(super) fn on_dkg_envelopes<R: RngCore + CryptoRng>(
        &mut self,
        st: &LedgerState,
        from: MemberId,
        msg: DirectMsg,
        rng: &mut R,
    ) -> Result<Vec<Duty>, EpochError> {
        let d = &st.dkg;
        if msg.epoch != d.epoch || msg.attempt != d.attempt {
            return Err(EpochError::Stale {
                epoch: msg.epoch,
                attempt: msg.attempt,
                current_epoch: d.epoch,
                current_attempt: d.attempt,
            });
        }
        let key = (d.epoch, d.attempt);
        let local = self
            .saved
            .dkgs
            .get(&key)
            .ok_or(EpochError::NotParticipating)?;
        let mut staged = Vec::new();
        for suite in SUITES {
            let env = Envelope::decode(suite_bytes(&msg, suite))
                .map_err(|_| EpochError::Decode("envelope"))?;
            if env.sender != from || env.recipient != self.me {
                return Err(EpochError::Envelope("not from the sending peer to us"));
            }
            if local.received(suite).contains_key(&from)
                || local.complaints.contains_key(&(suite, from))
            {
                continue;
            }
            let opened = match suite {
                DkgSuite::Ristretto255 => self.open::<Ristretto255Sha512, R>(st, suite, &env, rng),
                DkgSuite::Ed25519 => self.open::<Ed25519Sha512, R>(st, suite, &env, rng),
            }?;
            staged.push((suite, opened));
        }
        let Some(local) = self.saved.dkgs.get_mut(&key) else {
            return Err(EpochError::NotParticipating);
        };
        let mut duties = Vec::new();
        for (suite, opened) in staged {
            match opened {
                Opened::Share(s) => {
                    local.received_mut(suite).insert(from, s);
                }
                Opened::Complaint(c) => {
                    duties.push(Duty::Submit(TxBody::DkgComplaint {
                        epoch: d.epoch,
                        accused: from,
                        payload: c.clone(),
                    }));
                    local.complaints.insert((suite, from), c);
                }
            }
        }
        Ok(duties)
    }

    /// Opens one envelope: its share, or a complaint if it is signed but bad.
    fn open<C: Ciphersuite, R: RngCore + CryptoRng>(
        &self,
        st: &LedgerState,
        suite: DkgSuite,
        env: &Envelope,
        rng: &mut R,
    ) -> Result<Opened, EpochError> {
        let session = st
            .dkg
            .session::<C>(&st.chain_id)
            .map_err(|_| EpochError::NotParticipating)?;
        if !session.verify_envelope(env) {
            return Err(EpochError::Envelope("signature or context invalid"));
        }
        // Only the dealer's package is needed: decoding every dealer's (n × t points, with
        // Ed25519's torsion checks) for each of the n envelopes was a third of a 16-validator
        // DKG's CPU.
        let package = st
            .dkg
            .published_by::<C>(suite, &env.sender)
            .map_err(|_| EpochError::Decode("ledger round-1 package"))?
            .ok_or(EpochError::Envelope("dealer has no round-1 package"))?;
        let published = BTreeMap::from([(env.sender, package)]);
        match session.open(&self.x25519, env, &published) {
            Ok(share) => Ok(Opened::Share(
                share.serialize().map_err(|_| EpochError::Decode("share"))?,
            )),
            Err(DkgError::BadEnvelope { .. }) => {
                let complaint = session.complain(&self.x25519, env, rng)?;
                Ok(Opened::Complaint(encode(&ComplaintPayload {
                    suite,
                    complaint: complaint.encode(),
                })))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Drops DKG attempts of earlier epochs, failed attempts (their ledger data is gone) and
    /// attempts whose keys are derived; then keys the ledger has no result for any more.
    pub(super) fn prune_dkgs(&mut self, st: &LedgerState) {
        // DKG attempts: drop earlier epochs and failed attempts (their ledger data is gone), and
        // attempts whose keys are derived.
        let current = (st.dkg.epoch, st.dkg.attempt);
        let dropped: Vec<(u64, u32)> = self
            .saved
            .dkgs
            .keys()
            .filter(|k| **k < current || self.saved.keys.contains_key(&k.0))
            .copied()
            .collect();
        for k in dropped {
            if let Some(mut d) = self.saved.dkgs.remove(&k) {
                d.secret_r.zeroize();
                d.secret_e.zeroize();
                for v in d.received_r.values_mut().chain(d.received_e.values_mut()) {
                    v.zeroize();
                }
            }
        }
        // Keys: keep those the ledger still has results for.
        let stale: Vec<u64> = self
            .saved
            .keys
            .keys()
            .filter(|e| !st.dkg_results.contains_key(e))
            .copied()
            .collect();
        for e in stale {
            if let Some(mut k) = self.saved.keys.remove(&e) {
                k.ristretto255.zeroize();
                k.ed25519.zeroize();
            }
        }
    }

    pub(super) fn dkg_duties<R: RngCore + CryptoRng>(
        &mut self,
        st: &LedgerState,
        rng: &mut R,
        duties: &mut Vec<Duty>,
    ) -> Result<(), EpochError> {
        let d = &st.dkg;
        let p = &st.epochs;
        if !d.roster.contains_key(&self.me) || st.dkg_results.contains_key(&d.epoch) {
            return Ok(());
        }
        let h = st.height;
        let next = h + 1;
        let key = (d.epoch, d.attempt);
        let r1_end = d.round1_end(p);
        if !self.saved.dkgs.contains_key(&key) {
            if next > r1_end {
                return Ok(());
            }
            let sr = d
                .session::<Ristretto255Sha512>(&st.chain_id)
                .map_err(|_| EpochError::NotParticipating)?;
            let se = d
                .session::<Ed25519Sha512>(&st.chain_id)
                .map_err(|_| EpochError::NotParticipating)?;
            let (secret_r, pkg_r) = sr.round1(&self.me, rng)?;
            let (secret_e, pkg_e) = se.round1(&self.me, rng)?;
            let ser = |r: Result<Vec<u8>, String>| r.map_err(|_| EpochError::Decode("round-1"));
            let local = LocalDkg {
                secret_r: ser(secret_r.serialize().map_err(|e| e.to_string()))?,
                secret_e: ser(secret_e.serialize().map_err(|e| e.to_string()))?,
                payload: encode(&Round1Payload {
                    ristretto255: ser(pkg_r.serialize().map_err(|e| e.to_string()))?,
                    ed25519: ser(pkg_e.serialize().map_err(|e| e.to_string()))?,
                }),
                ..LocalDkg::default()
            };
            self.saved.dkgs.insert(key, local);
        }
        let mine_on_ledger = d.commitments.contains_key(&self.me);
        if next <= r1_end {
            if !mine_on_ledger {
                if let Some(local) = self.saved.dkgs.get(&key) {
                    duties.push(Duty::Submit(TxBody::DkgCommitment {
                        epoch: d.epoch,
                        payload: local.payload.clone(),
                    }));
                }
            }
            return Ok(());
        }
        let complaint_end = d.complaint_end(p);
        if mine_on_ledger && next <= complaint_end {
            self.deal(st, rng)?;
            let Some(local) = self.saved.dkgs.get(&key) else {
                return Ok(());
            };
            if h <= r1_end + RESEND_BLOCKS {
                for (to, (r, e)) in local.dealt.iter().flatten() {
                    duties.push(Duty::Send {
                        to: *to,
                        payload: encode(&Direct::Dkg(DirectMsg {
                            epoch: d.epoch,
                            attempt: d.attempt,
                            ristretto255: r.clone(),
                            ed25519: e.clone(),
                        }))
                        .into(),
                    });
                }
            }
            // Answers to Missing complaints against this dealer, while the ledger takes them
            // (they close before the complaint window, so a bad answer can still be convicted;
            // we answer in the block after the complaint, well before `answer_end`).
            let answers_open = next <= d.answer_end(p);
            for k in d.complaints.keys().filter(|_| answers_open) {
                if k.missing
                    && k.accused == self.me
                    && !d.answers.contains_key(&(k.suite, self.me, k.accuser))
                {
                    if let Some((r, e)) = local.dealt.as_ref().and_then(|m| m.get(&k.accuser)) {
                        let envelope = match k.suite {
                            DkgSuite::Ristretto255 => r.clone(),
                            DkgSuite::Ed25519 => e.clone(),
                        };
                        duties.push(Duty::Submit(TxBody::DkgAnswer {
                            epoch: d.epoch,
                            suite: k.suite,
                            envelope,
                        }));
                    }
                }
            }
        }
        let Some(local) = self.saved.dkgs.get(&key) else {
            return Ok(());
        };
        if mine_on_ledger && next <= complaint_end {
            // Bad complaints we hold.
            for ((suite, dealer), c) in &local.complaints {
                let k = ComplaintKey {
                    suite: *suite,
                    accuser: self.me,
                    accused: *dealer,
                    missing: false,
                };
                if !d.complaints.contains_key(&k) {
                    duties.push(Duty::Submit(TxBody::DkgComplaint {
                        epoch: d.epoch,
                        accused: *dealer,
                        payload: c.clone(),
                    }));
                }
            }
            // Missing: a dealer we heard nothing from.
            if h >= r1_end + MISSING_DELAY_BLOCKS && next <= d.missing_end(p) {
                for dealer in d.commitments.keys().filter(|m| **m != self.me) {
                    for suite in SUITES {
                        let k = ComplaintKey {
                            suite,
                            accuser: self.me,
                            accused: *dealer,
                            missing: true,
                        };
                        if local.received(suite).contains_key(dealer)
                            || local.complaints.contains_key(&(suite, *dealer))
                            || d.complaints.contains_key(&k)
                            || d.answers.contains_key(&(suite, *dealer, self.me))
                        {
                            continue;
                        }
                        let complaint = crate::dkg::Complaint::Missing {
                            complainer: self.me,
                            dealer: *dealer,
                        };
                        duties.push(Duty::Submit(TxBody::DkgComplaint {
                            epoch: d.epoch,
                            accused: *dealer,
                            payload: encode(&ComplaintPayload {
                                suite,
                                complaint: complaint.encode(),
                            }),
                        }));
                    }
                }
            }
        }
        // Nothing to complain about: shares from every other dealer in both suites and no
        // complaint of ours. Once every dealer says so the window closes early.
        if mine_on_ledger && next <= complaint_end && !d.acks.contains(&self.me) {
            let all_shares = d
                .commitments
                .keys()
                .filter(|m| **m != self.me)
                .all(|m| SUITES.iter().all(|s| local.received(*s).contains_key(m)));
            if all_shares && local.complaints.is_empty() {
                duties.push(Duty::Submit(TxBody::DkgAck {
                    epoch: d.epoch,
                    attempt: d.attempt,
                }));
            }
        }
        if next > complaint_end {
            duties.push(Duty::Submit(TxBody::DkgFinalize { epoch: d.epoch }));
        }
        Ok(())
    }

    /// Opens the answers (published envelopes) addressed to us on the ledger. Runs on every
    /// block, also after finalisation, so a node that skipped blocks still gets its shares.
    pub(super) fn open_answers<R: RngCore + CryptoRng>(&mut self, st: &LedgerState, rng: &mut R) {
        let d = &st.dkg;
        let key = (d.epoch, d.attempt);
        for ((suite, dealer, recipient), bytes) in &d.answers {
            if *recipient != self.me {
                continue;
            }
            let Some(local) = self.saved.dkgs.get(&key) else {
                break;
            };
            if local.received(*suite).contains_key(dealer)
                || local.complaints.contains_key(&(*suite, *dealer))
            {
                continue;
            }
            let Ok(env) = Envelope::decode(bytes) else {
                continue;
            };
            let opened = match suite {
                DkgSuite::Ristretto255 => self.open::<Ristretto255Sha512, R>(st, *suite, &env, rng),
                DkgSuite::Ed25519 => self.open::<Ed25519Sha512, R>(st, *suite, &env, rng),
            };
            if let (Ok(opened), Some(local)) = (opened, self.saved.dkgs.get_mut(&key)) {
                match opened {
                    Opened::Share(s) => {
                        local.received_mut(*suite).insert(*dealer, s);
                    }
                    Opened::Complaint(c) => {
                        local.complaints.insert((*suite, *dealer), c);
                    }
                }
            }
        }
    }

    /// Deals this validator's envelopes once (after round 1 closed).
    fn deal<R: RngCore + CryptoRng>(
        &mut self,
        st: &LedgerState,
        rng: &mut R,
    ) -> Result<(), EpochError> {
        let d = &st.dkg;
        let key = (d.epoch, d.attempt);
        let Some(local) = self.saved.dkgs.get(&key) else {
            return Ok(());
        };
        if local.dealt.is_some() {
            return Ok(());
        }
        let r = self.deal_suite::<Ristretto255Sha512, R>(
            st,
            DkgSuite::Ristretto255,
            &local.secret_r,
            rng,
        )?;
        let e = self.deal_suite::<Ed25519Sha512, R>(st, DkgSuite::Ed25519, &local.secret_e, rng)?;
        let mut dealt = BTreeMap::new();
        for (to, renv) in r {
            if let Some(eenv) = e.get(&to) {
                dealt.insert(to, (renv, eenv.clone()));
            }
        }
        if let Some(local) = self.saved.dkgs.get_mut(&key) {
            local.dealt = Some(dealt);
        }
        Ok(())
    }

    fn deal_suite<C: Ciphersuite, R: RngCore + CryptoRng>(
        &self,
        st: &LedgerState,
        suite: DkgSuite,
        secret: &[u8],
        rng: &mut R,
    ) -> Result<BTreeMap<MemberId, Vec<u8>>, EpochError> {
        let (session, published) = session_and_published::<C>(st, suite)?;
        let secret = match self.fault {
            // A fresh polynomial that does not match the published commitment.
            Fault::BadRound2Shares => session.round1(&self.me, rng)?.0,
            _ => round1::SecretPackage::<C>::deserialize(secret)
                .map_err(|_| EpochError::Decode("round-1 secret"))?,
        };
        let envelopes = session.deal(&self.me, &self.identity, &secret, &published, rng)?;
        Ok(envelopes
            .into_iter()
            .map(|e| (e.recipient, e.encode()))
            .collect())
    }

    /// Runs `Ceremony::finish` for both suites once the ledger recorded a DKG result that
    /// qualifies this validator.
    pub(super) fn finish_dkgs(&mut self, st: &LedgerState) {
        for (epoch, result) in &st.dkg_results {
            if !result.qualified.contains(&self.me) || self.saved.keys.contains_key(epoch) {
                continue;
            }
            let Some(local) = self.saved.dkgs.get(&(*epoch, result.attempt)) else {
                continue;
            };
            if st.dkg.epoch != *epoch || st.dkg.attempt != result.attempt {
                continue;
            }
            let r = self.finish_suite::<Ristretto255Sha512>(
                st,
                DkgSuite::Ristretto255,
                &local.secret_r,
                &local.received_r,
                &result.qualified,
                &result.ristretto255_public,
            );
            let e = self.finish_suite::<Ed25519Sha512>(
                st,
                DkgSuite::Ed25519,
                &local.secret_e,
                &local.received_e,
                &result.qualified,
                &result.ed25519_public,
            );
            match (r, e) {
                (Ok(r), Ok(e)) => {
                    self.saved.keys.insert(
                        *epoch,
                        LocalKeys {
                            ristretto255: r,
                            ed25519: e,
                            partial: None,
                        },
                    );
                }
                (Err(err), _) | (_, Err(err)) => {
                    tracing::warn!(epoch, error = %err, "epoch agent: cannot finish the DKG");
                }
            }
        }
    }

    fn finish_suite<C: Ciphersuite>(
        &self,
        st: &LedgerState,
        suite: DkgSuite,
        secret: &[u8],
        received: &BTreeMap<MemberId, Vec<u8>>,
        qualified: &BTreeSet<MemberId>,
        expected_public: &[u8],
    ) -> Result<Vec<u8>, EpochError> {
        let (session, published) = session_and_published::<C>(st, suite)?;
        let secret = round1::SecretPackage::<C>::deserialize(secret)
            .map_err(|_| EpochError::Decode("round-1 secret"))?;
        let mut shares = BTreeMap::new();
        for (m, s) in received {
            shares.insert(
                *m,
                round2::Package::<C>::deserialize(s).map_err(|_| EpochError::Decode("share"))?,
            );
        }
        let (kp, pkp): (KeyPackage<C>, _) =
            session.finish(&self.me, &secret, &published, qualified, &shares)?;
        let pkp_bytes = pkp
            .serialize()
            .map_err(|_| EpochError::Decode("public key"))?;
        if pkp_bytes != expected_public {
            return Err(EpochError::Envelope(
                "local public key package differs from the ledger's",
            ));
        }
        kp.serialize()
            .map_err(|_| EpochError::Decode("key package"))
    }
}

/// The current DKG attempt's session and the round-1 packages published for it in `suite`.
#[allow(clippy::type_complexity)]
fn session_and_published<C: Ciphersuite>(
    st: &LedgerState,
    suite: DkgSuite,
) -> Result<(Ceremony<C>, BTreeMap<MemberId, round1::Package<C>>), EpochError> {
    let session: Ceremony<C> = st
        .dkg
        .session(&st.chain_id)
        .map_err(|_| EpochError::NotParticipating)?;
    let published = st
        .dkg
        .published::<C>(suite)
        .map_err(|_| EpochError::Decode("ledger round-1 packages"))?;
    Ok((session, published))
}
