//! The per-validator duty machine of the epoch cycle (sans-IO): after every decided block it
//! reads the ledger and says what this validator must contribute — DKG round-1 packages,
//! round-2 envelopes (point to point), complaints and answers, `DkgFinalize`, its beacon
//! partial, `EpochStart`, `BranchAssignment`, and FROST checkpoint commitments and shares.
//!
//! Guarantees: [`Agent::on_block`] is a function of (agent state, ledger) apart from the secrets
//! it draws once and keeps (round-1 polynomials, envelopes, beacon partial, signing nonces), so
//! calling it again on the same ledger returns the same duties; a duty is returned on every call
//! until its effect is on the ledger (the node de-duplicates). Signing nonces are drawn once per
//! (checkpoint, attempt) and never drawn again for an attempt the agent has committed to: if the
//! agent was restored without them it skips that attempt. All secrets live in the agent's state,
//! which [`Agent::snapshot`] serialises for the node to persist *before* it acts on a duty; the
//! state is wiped on drop and never printed.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::SigningKey;
use frost_core::keys::dkg::{round1, round2};
use frost_core::keys::KeyPackage;
use frost_core::Ciphersuite;
use frost_ed25519::Ed25519Sha512;
use frost_ristretto255::Ristretto255Sha512;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use x25519_dalek::StaticSecret;
use zeroize::{Zeroize, Zeroizing};

use crate::checkpoint::{self, SigningCommitments, SigningNonces};
use crate::dkg::{Ceremony, DkgError, Envelope};
use crate::ledger::{beacon_input, chain_digest, decode, encode, Ledger, LedgerState, TxBody};
use crate::ledger::{ComplaintKey, ComplaintPayload, DkgSuite, Round1Payload};
use crate::member::MemberId;
use crate::tprf::{self, Partial};

/// Blocks after round 1 closes during which dealers re-send their envelopes.
pub const RESEND_BLOCKS: u64 = 3;
/// Blocks after round 1 closes before a recipient files `Missing` for a dealer it heard nothing
/// from.
pub const MISSING_DELAY_BLOCKS: u64 = 2;

/// What the node must do for this validator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Duty {
    /// Put this transaction body on the ledger (the node signs it with the right nonce and
    /// gossips it; the node de-duplicates equal bodies, so returning the same body on every call
    /// until it is on the ledger is expected).
    Submit(TxBody),
    /// Send these bytes point to point to `to` (a DKG round-2 envelope); the node delivers them
    /// via [`Agent::on_direct`] at `to`.
    Send {
        /// Recipient.
        to: MemberId,
        /// Opaque payload.
        payload: Vec<u8>,
    },
}

/// Fault injection for tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Fault {
    /// Honest.
    #[default]
    None,
    /// Deal corrupted round-2 shares (still signed) to every recipient, in both DKGs.
    BadRound2Shares,
}

/// Why a direct message or a snapshot was rejected. Never contains secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EpochError {
    /// The bytes do not decode.
    #[error("malformed {0}")]
    Decode(&'static str),
    /// The message is for another epoch or DKG attempt than the ledger's current one.
    #[error("message for epoch {epoch} attempt {attempt}, current DKG is epoch {current_epoch} attempt {current_attempt}")]
    Stale {
        /// Its epoch.
        epoch: u64,
        /// Its attempt.
        attempt: u32,
        /// The ledger's DKG epoch.
        current_epoch: u64,
        /// The ledger's DKG attempt.
        current_attempt: u32,
    },
    /// This validator takes no part in that DKG (or has no round-1 state for it).
    #[error("not taking part in this DKG")]
    NotParticipating,
    /// The envelope is not from the authenticated peer to us, or its signature does not verify.
    #[error("envelope rejected: {0}")]
    Envelope(&'static str),
    /// A DKG step failed.
    #[error(transparent)]
    Dkg(#[from] DkgError),
}

/// A point-to-point message: one dealer's two envelopes for one recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct DirectMsg {
    epoch: u64,
    attempt: u32,
    ristretto255: Vec<u8>,
    ed25519: Vec<u8>,
}

/// Envelopes dealt, by recipient: (ristretto255, Ed25519), encoded.
type Dealt = BTreeMap<MemberId, (Vec<u8>, Vec<u8>)>;

/// Local state of one DKG attempt.
#[derive(Clone, Default, Serialize, Deserialize)]
struct LocalDkg {
    /// Serialised round-1 secret packages.
    secret_r: Vec<u8>,
    secret_e: Vec<u8>,
    /// The `DkgCommitment` payload.
    payload: Vec<u8>,
    /// Envelopes dealt, by recipient: (ristretto255, Ed25519), encoded.
    dealt: Option<Dealt>,
    /// Opened shares (serialised round-2 packages) by dealer.
    received_r: BTreeMap<MemberId, Vec<u8>>,
    received_e: BTreeMap<MemberId, Vec<u8>>,
    /// `Bad` complaints to file: (suite, dealer) -> encoded `ComplaintPayload`.
    complaints: BTreeMap<(DkgSuite, MemberId), Vec<u8>>,
}

/// Key packages of a completed DKG.
#[derive(Clone, Default, Serialize, Deserialize)]
struct LocalKeys {
    ristretto255: Vec<u8>,
    ed25519: Vec<u8>,
    /// The beacon partial for the next epoch (drawn once).
    partial: Option<Partial>,
}

/// One checkpoint signing attempt: `nonces` is `None` when they were lost (restored from an
/// older snapshot) or already used and discarded.
#[derive(Clone, Default, Serialize, Deserialize)]
struct LocalSigning {
    nonces: Option<Vec<u8>>,
    commitments: Vec<u8>,
}

#[derive(Clone, Default, Serialize, Deserialize)]
struct Saved {
    dkgs: BTreeMap<(u64, u32), LocalDkg>,
    keys: BTreeMap<u64, LocalKeys>,
    signing: BTreeMap<(u64, u32), LocalSigning>,
}

impl Saved {
    fn wipe(&mut self) {
        for d in self.dkgs.values_mut() {
            d.secret_r.zeroize();
            d.secret_e.zeroize();
            for v in d.received_r.values_mut().chain(d.received_e.values_mut()) {
                v.zeroize();
            }
        }
        for k in self.keys.values_mut() {
            k.ristretto255.zeroize();
            k.ed25519.zeroize();
        }
        for s in self.signing.values_mut() {
            if let Some(n) = s.nonces.as_mut() {
                n.zeroize();
            }
        }
    }
}

/// Public summary of an agent (no secrets).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    /// This validator.
    pub member: MemberId,
    /// Epochs whose DKG this validator holds key shares of.
    pub key_epochs: Vec<u64>,
    /// DKG attempts (epoch, attempt) with local round-1 state.
    pub dkgs: Vec<(u64, u32)>,
    /// Checkpoint attempts (checkpoint, attempt) this validator committed to.
    pub signing: Vec<(u64, u32)>,
    /// Fault injection in effect.
    pub faulty: bool,
    /// What the last `on_block` found to do: `idle`, `dkg-round1`, `dkg-round2`, `dkg-finalize`,
    /// `beacon`, `epoch-start`, `assignment` or `checkpoint` (the first that applied).
    pub phase: String,
    /// Ledger height seen by the last `on_block`.
    pub height: u64,
}

/// The duty machine of one validator. Holds secrets: wiped on drop, Debug prints `[redacted]`.
pub struct Agent {
    identity: SigningKey,
    x25519: StaticSecret,
    me: MemberId,
    fault: Fault,
    saved: Saved,
    /// (phase, height) of the last `on_block`; not persisted.
    last: (&'static str, u64),
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Agent({:?}, [redacted])", self.me)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.saved.wipe();
    }
}

fn suite_bytes(msg: &DirectMsg, suite: DkgSuite) -> &[u8] {
    match suite {
        DkgSuite::Ristretto255 => &msg.ristretto255,
        DkgSuite::Ed25519 => &msg.ed25519,
    }
}

impl LocalDkg {
    fn received(&self, suite: DkgSuite) -> &BTreeMap<MemberId, Vec<u8>> {
        match suite {
            DkgSuite::Ristretto255 => &self.received_r,
            DkgSuite::Ed25519 => &self.received_e,
        }
    }

    fn received_mut(&mut self, suite: DkgSuite) -> &mut BTreeMap<MemberId, Vec<u8>> {
        match suite {
            DkgSuite::Ristretto255 => &mut self.received_r,
            DkgSuite::Ed25519 => &mut self.received_e,
        }
    }
}

const SUITES: [DkgSuite; 2] = [DkgSuite::Ristretto255, DkgSuite::Ed25519];

/// Outcome of opening one envelope.
enum Opened {
    Share(Vec<u8>),
    Complaint(Vec<u8>),
}

impl Agent {
    /// An agent for the validator with Ed25519 identity seed `identity_seed` (its [`MemberId`]
    /// is the public key) and X25519 secret `x25519_secret` (whose public key is the one on the
    /// ledger).
    pub fn new(identity_seed: [u8; 32], x25519_secret: [u8; 32], fault: Fault) -> Self {
        let identity = SigningKey::from_bytes(&identity_seed);
        let me = MemberId(identity.verifying_key().to_bytes());
        Agent {
            identity,
            x25519: StaticSecret::from(x25519_secret),
            me,
            fault,
            saved: Saved::default(),
            last: ("idle", 0),
        }
    }

    /// This validator's id.
    pub fn member(&self) -> MemberId {
        self.me
    }

    /// The serialised state (round-1 secrets, envelopes, key packages, checkpoint nonces) the
    /// node persists before acting on any returned duty. Contains secrets.
    pub fn snapshot(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(encode(&self.saved))
    }

    /// Restores an agent from [`snapshot`](Self::snapshot) bytes.
    pub fn restore(
        bytes: &[u8],
        identity_seed: [u8; 32],
        x25519_secret: [u8; 32],
        fault: Fault,
    ) -> Result<Self, EpochError> {
        let saved: Saved = decode(bytes).map_err(|_| EpochError::Decode("agent snapshot"))?;
        let mut a = Agent::new(identity_seed, x25519_secret, fault);
        a.saved = saved;
        Ok(a)
    }

    /// Public summary.
    pub fn status(&self) -> AgentStatus {
        AgentStatus {
            member: self.me,
            key_epochs: self.saved.keys.keys().copied().collect(),
            dkgs: self.saved.dkgs.keys().copied().collect(),
            signing: self.saved.signing.keys().copied().collect(),
            faulty: self.fault != Fault::None,
            phase: self.last.0.to_string(),
            height: self.last.1,
        }
    }

    /// The ristretto255 key package of the DKG completed in `epoch`, if this validator holds
    /// one (for the seed tree / threshold PRF).
    pub fn root_key(&self, epoch: u64) -> Option<frost_ristretto255::keys::KeyPackage> {
        let k = self.saved.keys.get(&epoch)?;
        frost_ristretto255::keys::KeyPackage::deserialize(&k.ristretto255).ok()
    }

    /// The Ed25519 (checkpoint) key package of the DKG completed in `epoch`, if held.
    pub fn checkpoint_key(&self, epoch: u64) -> Option<frost_ed25519::keys::KeyPackage> {
        let k = self.saved.keys.get(&epoch)?;
        frost_ed25519::keys::KeyPackage::deserialize(&k.ed25519).ok()
    }

    /// The duties after a decided block (call also once at start-up with the current ledger).
    pub fn on_block<R: RngCore + CryptoRng>(&mut self, ledger: &Ledger, rng: &mut R) -> Vec<Duty> {
        let st = &ledger.state;
        let mut duties = Vec::new();
        self.prune(st);
        self.open_answers(st, rng);
        if let Err(e) = self.dkg_duties(st, rng, &mut duties) {
            tracing::warn!(error = %e, "epoch agent: DKG step failed");
        }
        self.finish_dkgs(st);
        self.beacon_duties(st, rng, &mut duties);
        if st.epoch >= 1 && st.assignment_epoch != Some(st.epoch) && st.is_validator(&self.me) {
            if let Ok(owners) = st.compute_branch_owners() {
                duties.push(Duty::Submit(TxBody::BranchAssignment {
                    epoch: st.epoch,
                    owners,
                }));
            }
        }
        self.checkpoint_duties(st, rng, &mut duties);
        let phase = duties
            .iter()
            .map(|d| match d {
                Duty::Send { .. } => "dkg-round2",
                Duty::Submit(b) => match b {
                    TxBody::DkgCommitment { .. } => "dkg-round1",
                    TxBody::DkgComplaint { .. } | TxBody::DkgAnswer { .. } => "dkg-round2",
                    TxBody::DkgFinalize { .. } => "dkg-finalize",
                    TxBody::BeaconPartial { .. } => "beacon",
                    TxBody::EpochStart { .. } => "epoch-start",
                    TxBody::BranchAssignment { .. } => "assignment",
                    _ => "checkpoint",
                },
            })
            .next()
            .unwrap_or("idle");
        self.last = (phase, st.height);
        duties
    }

    /// A point-to-point payload from `from` (already authenticated by the transport). Bad
    /// bytes are an error and leave the state unchanged.
    pub fn on_direct<R: RngCore + CryptoRng>(
        &mut self,
        ledger: &Ledger,
        from: MemberId,
        payload: &[u8],
        rng: &mut R,
    ) -> Result<Vec<Duty>, EpochError> {
        let st = &ledger.state;
        let msg: DirectMsg = decode(payload).map_err(|_| EpochError::Decode("direct message"))?;
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
        let published = st
            .dkg
            .published::<C>(suite)
            .map_err(|_| EpochError::Decode("ledger round-1 packages"))?;
        if !session.verify_envelope(env) {
            return Err(EpochError::Envelope("signature or context invalid"));
        }
        if !published.contains_key(&env.sender) {
            return Err(EpochError::Envelope("dealer has no round-1 package"));
        }
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

    fn prune(&mut self, st: &LedgerState) {
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
        // Signing: drop finished checkpoints; discard nonces of superseded attempts but keep
        // the entry so the attempt is never committed to again.
        let head = st
            .checkpoint_in_progress()
            .map(|(s, _, g, _)| (s, g.attempt));
        self.saved
            .signing
            .retain(|k, _| head.is_some_and(|h| k.0 >= h.0));
        for (k, s) in self.saved.signing.iter_mut() {
            if head.is_some_and(|h| *k < h) {
                if let Some(n) = s.nonces.as_mut() {
                    n.zeroize();
                }
                s.nonces = None;
            }
        }
    }

    fn dkg_duties<R: RngCore + CryptoRng>(
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
                        payload: encode(&DirectMsg {
                            epoch: d.epoch,
                            attempt: d.attempt,
                            ristretto255: r.clone(),
                            ed25519: e.clone(),
                        }),
                    });
                }
            }
            // Answers to Missing complaints against this dealer.
            for k in d.complaints.keys() {
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
        if next > complaint_end {
            duties.push(Duty::Submit(TxBody::DkgFinalize { epoch: d.epoch }));
        }
        Ok(())
    }

    /// Opens the answers (published envelopes) addressed to us on the ledger. Runs on every
    /// block, also after finalisation, so a node that skipped blocks still gets its shares.
    fn open_answers<R: RngCore + CryptoRng>(&mut self, st: &LedgerState, rng: &mut R) {
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
            Fault::None => round1::SecretPackage::<C>::deserialize(secret)
                .map_err(|_| EpochError::Decode("round-1 secret"))?,
            // A fresh polynomial that does not match the published commitment.
            Fault::BadRound2Shares => session.round1(&self.me, rng)?.0,
        };
        let envelopes = session.deal(&self.me, &self.identity, &secret, &published, rng)?;
        Ok(envelopes
            .into_iter()
            .map(|e| (e.recipient, e.encode()))
            .collect())
    }

    /// Runs `Ceremony::finish` for both suites once the ledger recorded a DKG result that
    /// qualifies this validator.
    fn finish_dkgs(&mut self, st: &LedgerState) {
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

    fn beacon_duties<R: RngCore + CryptoRng>(
        &mut self,
        st: &LedgerState,
        rng: &mut R,
        duties: &mut Vec<Duty>,
    ) {
        let Some(result) = st.dkg_results.get(&st.epoch) else {
            return;
        };
        let t = usize::from(result.threshold);
        if st.beacon_partials.len() < t && !st.beacon_partials.iter().any(|p| p.member == self.me) {
            if let Some(keys) = self.saved.keys.get_mut(&st.epoch) {
                if keys.partial.is_none() {
                    let input = beacon_input(&chain_digest(&st.chain_id), st.epoch + 1);
                    if let Ok(kp) =
                        frost_ristretto255::keys::KeyPackage::deserialize(&keys.ristretto255)
                    {
                        keys.partial = tprf::partial(&kp, &self.me, &input, rng).ok();
                    }
                }
                if let Some(partial) = keys.partial {
                    duties.push(Duty::Submit(TxBody::BeaconPartial {
                        epoch: st.epoch + 1,
                        partial,
                    }));
                }
            }
        }
        if st.beacon_partials.len() >= t
            && st.height + 1 >= st.next_epoch_height()
            && st.is_validator(&self.me)
        {
            if let Ok(beacon) = st.recorded_beacon() {
                duties.push(Duty::Submit(TxBody::EpochStart {
                    epoch: st.epoch + 1,
                    beacon,
                }));
            }
        }
    }

    fn checkpoint_duties<R: RngCore + CryptoRng>(
        &mut self,
        st: &LedgerState,
        rng: &mut R,
        duties: &mut Vec<Duty>,
    ) {
        let Some((seq, due, signing, key_epoch)) = st.checkpoint_in_progress() else {
            return;
        };
        let Some(keys) = self.saved.keys.get(&key_epoch) else {
            return;
        };
        let Ok(kp) = frost_ed25519::keys::KeyPackage::deserialize(&keys.ed25519) else {
            return;
        };
        let Some(result) = st.dkg_results.get(&key_epoch) else {
            return;
        };
        let t = usize::from(result.threshold);
        if signing.excluded.contains(&self.me) {
            return;
        }
        let next = st.height + 1;
        let stalled = next
            > signing
                .started_at
                .saturating_add(st.epochs.checkpoint_attempt_blocks)
            && signing.shares.len() < t;
        let i_committed = signing.commitments.iter().any(|(m, _)| *m == self.me);
        // Round 2: our share, if we are a fixed signer.
        if signing.commitments.len() >= t && i_committed && !signing.shares.contains_key(&self.me) {
            if let Some(Some(nonces)) = self
                .saved
                .signing
                .get(&(seq, signing.attempt))
                .map(|s| s.nonces.as_ref())
            {
                if let Some(share) = Self::share(due, signing, nonces, &self.me, &kp) {
                    duties.push(Duty::Submit(TxBody::CheckpointShare {
                        checkpoint: seq,
                        attempt: signing.attempt,
                        share,
                    }));
                }
            }
        }
        // Round 1: commit to the current attempt, or to the next one if it stalled.
        let target = if stalled {
            signing.attempt + 1
        } else {
            signing.attempt
        };
        let open = stalled || (signing.commitments.len() < t && !i_committed);
        if !open {
            return;
        }
        let entry = match self.saved.signing.entry((seq, target)) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                let (nonces, commitments) = checkpoint::commit(&kp, rng);
                let (Ok(n), Ok(c)) = (nonces.serialize(), commitments.serialize()) else {
                    return;
                };
                v.insert(LocalSigning {
                    nonces: Some(n),
                    commitments: c,
                })
            }
        };
        if entry.nonces.is_none() {
            // Restored without the nonces (or already used): never commit to this attempt again.
            return;
        }
        duties.push(Duty::Submit(TxBody::CheckpointCommit {
            checkpoint: seq,
            attempt: target,
            commitments: entry.commitments.clone(),
        }));
    }

    fn share(
        due: &crate::ledger::CheckpointDue,
        signing: &crate::ledger::CheckpointSigning,
        nonces: &[u8],
        me: &MemberId,
        kp: &frost_ed25519::keys::KeyPackage,
    ) -> Option<Vec<u8>> {
        let nonces = Zeroizing::new(nonces.to_vec());
        let nonces = SigningNonces::deserialize(&nonces).ok()?;
        let mut commitments = BTreeMap::new();
        for (m, c) in &signing.commitments {
            commitments.insert(*m, SigningCommitments::deserialize(c).ok()?);
        }
        let cp = due.body.checkpoint();
        let package = checkpoint::signing_package(&cp, &commitments).ok()?;
        let share = checkpoint::sign(&cp, &package, &nonces, me, kp).ok()?;
        Some(share.serialize())
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
