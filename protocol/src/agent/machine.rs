//! The agent itself: identity and state, [`Agent::on_block`] dispatching to the duty modules,
//! snapshot and restore, and the public [`AgentStatus`]. Guarantees: `on_block` is a function of
//! (agent state, ledger) apart from the secrets it draws once and keeps, so a second call on the
//! same ledger returns the same duties; the state is wiped on drop and `Debug` prints
//! `[redacted]`.

use ed25519_dalek::SigningKey;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use super::audit::AuditPartials;
use super::duty::{Duty, EpochError, Fault};
use super::keygen::{KeyCtx, Keygen};
use super::sign::Gathering;
use super::state::Saved;
use crate::ledger::{decode, encode, Ledger, LedgerState, TxBody};
use crate::member::MemberId;

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
    /// `beacon`, `epoch-start`, `assignment`, `checkpoint`, `keygen` (partials and batches),
    /// `sector-root`, `deal-complaint` or `master-root` (the first that applied).
    pub phase: String,
    /// Ledger height seen by the last `on_block`.
    pub height: u64,
    /// Sectors this validator owns and is generating or dealing (in memory).
    pub keygen_owned: Vec<u32>,
    /// Sectors this validator is receiving or has acknowledged shares of, not yet on the
    /// ledger (in memory).
    pub keygen_holding: Vec<u32>,
}

/// The duty machine of one validator. Holds secrets: wiped on drop, Debug prints `[redacted]`.
pub struct Agent {
    pub(super) identity: SigningKey,
    pub(super) x25519: StaticSecret,
    /// `PublicKey::from(&x25519)`, derived once (a contribution checks it against the session).
    pub(super) x25519_public: [u8; 32],
    pub(super) me: MemberId,
    pub(super) fault: Fault,
    pub(super) saved: Saved,
    /// (phase, height) of the last `on_block`; not persisted.
    last: (&'static str, u64),
    /// Key-generation work in progress; not persisted (see `keygen`).
    pub(super) keygen: Keygen,
    /// Our audit-draw partials in memory (see `audit`).
    pub(super) audit_partials: AuditPartials,
    /// As a recipient, what we gathered for each leaf we requested (see `sign`).
    pub(super) signing: std::collections::BTreeMap<u64, Gathering>,
    /// As a quorum member, our contribution to each open leaf for the attempt with the
    /// context named: a re-send is the same message (not persisted: after a restart the
    /// next re-send is a fresh one).
    pub(super) contributed: std::collections::BTreeMap<u64, ([u8; 32], super::payload::Payload)>,
    /// Our static Diffie–Hellman points with the holders we contributed with (secret, wiped
    /// on drop; not persisted).
    pub(super) pairs: crate::reconstruct::PairPoints,
    /// Threads for sector generation.
    pub(super) threads: usize,
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

impl Agent {
    /// An agent for the validator with Ed25519 identity seed `identity_seed` (its [`MemberId`]
    /// is the public key) and X25519 secret `x25519_secret` (whose public key is the one on the
    /// ledger).
    pub fn new(identity_seed: [u8; 32], x25519_secret: [u8; 32], fault: Fault) -> Self {
        let identity = SigningKey::from_bytes(&identity_seed);
        let me = MemberId(identity.verifying_key().to_bytes());
        let x25519 = StaticSecret::from(x25519_secret);
        let x25519_public = x25519_dalek::PublicKey::from(&x25519).to_bytes();
        Agent {
            identity,
            x25519,
            x25519_public,
            me,
            fault,
            saved: Saved::default(),
            last: ("idle", 0),
            keygen: Keygen::default(),
            audit_partials: AuditPartials::default(),
            signing: std::collections::BTreeMap::new(),
            contributed: std::collections::BTreeMap::new(),
            pairs: crate::reconstruct::PairPoints::new(),
            threads: 1,
        }
    }

    /// Generates sectors on `threads` threads (default 1).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
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
            keygen_owned: self.keygen.owned.keys().copied().collect(),
            keygen_holding: self.keygen.holding.keys().map(|(_, s)| *s).collect(),
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
        self.assignment_duties(st, &mut duties);
        self.checkpoint_duties(st, rng, &mut duties);
        let keygen_from = duties.len();
        let ctx = KeyCtx::of(st);
        self.keygen.rescope(ctx.as_ref(), st);
        if let Some(ctx) = ctx {
            self.partial_duties(&ctx, st, rng, &mut duties);
            self.owner_duties(&ctx, st, rng, &mut duties);
            self.holder_duties(&mut duties);
        }
        self.audit_duties(st, rng, &mut duties);
        self.master_duties(st, &mut duties);
        self.sign_duties(st, &mut duties);
        let phase = duties
            .iter()
            .enumerate()
            .map(|(i, d)| match d {
                Duty::Send { .. }
                | Duty::Keep { .. }
                | Duty::KeepChunk { .. }
                | Duty::KeepTree { .. }
                    if i >= keygen_from =>
                {
                    "keygen"
                }
                Duty::Send { .. }
                | Duty::Keep { .. }
                | Duty::KeepChunk { .. }
                | Duty::KeepTree { .. } => "dkg-round2",
                Duty::Reveal { .. } | Duty::ProvePath { .. } => "audit",
                Duty::Contribute { .. } | Duty::SendPath { .. } => "signing",
                Duty::Submit(b) => match b {
                    TxBody::DkgCommitment { .. } => "dkg-round1",
                    TxBody::DkgComplaint { .. } | TxBody::DkgAnswer { .. } => "dkg-round2",
                    TxBody::DkgFinalize { .. } => "dkg-finalize",
                    TxBody::DkgAck { .. } => "dkg-ack",
                    TxBody::BeaconPartial { .. } => "beacon",
                    TxBody::EpochStart { .. } => "epoch-start",
                    TxBody::BranchAssignment { .. } => "assignment",
                    TxBody::SectorRoot { .. } => "sector-root",
                    TxBody::DealComplaint { .. } => "deal-complaint",
                    TxBody::AuditPartial { .. }
                    | TxBody::AuditReveal { .. }
                    | TxBody::AuditPath { .. } => "audit",
                    TxBody::MasterRoot { .. } => "master-root",
                    TxBody::SignaturePublish { .. } => "signing",
                    _ => "checkpoint",
                },
            })
            .next()
            .unwrap_or("idle");
        self.last = (phase, st.height);
        duties
    }

    /// Drops what the ledger no longer needs: finished or failed DKG attempts, keys without a
    /// ledger result, finished checkpoints (and the nonces of superseded attempts).
    fn prune(&mut self, st: &LedgerState) {
        self.prune_dkgs(st);
        self.prune_signing(st);
    }
}
