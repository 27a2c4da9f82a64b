//! Signing over the network (issue 10, first part): for every leaf the ledger allocated to a
//! `SignRequest` and not yet signed, the leaf's quorum of holders sends the requester (the
//! recipient) masked contributions sealed to it (`reconstruct`), the relay takes the leaf's key
//! and authentication path inside its sector from its own copy of the sector's public tree
//! (every validator keeps one: `node::chain::trees`) or from the sector's owner, and the
//! recipient rebuilds the seed, checks it against that key, signs the request's digest and
//! publishes `SignaturePublish`.
//!
//! Guarantees: the session (id, quorum, recipient) is a function of the ledger's request, so a
//! holder contributes only toward the recipient and with the quorum the ledger implies: `k` of
//! the leaf's holders that acknowledged the sector, are still validators and are not
//! convicted, the first `k` at first and the next `k`-subset every [`SIGN_ATTEMPT_BLOCKS`]
//! blocks until the signature lands (so a crashed holder delays a leaf, it does not stall it). A
//! contribution is opened only for a leaf this node requested; the seed exists only while the
//! signature is made, then is zeroized, and the signature is verified under the master public
//! key before it leaves. Sends are repeated every [`KEYGEN_RESEND_BLOCKS`] blocks from the
//! request's height until the signature lands (stateless for holders and owners).
//!
//! Blame: when the contributions do not combine, the recipient puts the evidence on the
//! ledger (`SignBlame`, `reconstruct::blame`): a bad contribution with its box revealed, and
//! for a mask dispute it sends both members the two contributions (`Direct::Dispute`); the
//! honest one answers with the reveal of the pair's point. The ledger convicts and evicts the
//! faulty member, so the next quorum (a new context) leaves it out. The recipient repeats its
//! blame duties while the attempt's quorum stands.
//!
//! Key issuance (the client is the recipient, the relay keeps its contributions): `issue`.

use std::collections::BTreeMap;

use rand_core::{CryptoRng, RngCore};

use super::direct::Direct;
use super::duty::{Duty, EpochError, Fault};
use super::issue::ISSUE_WINDOW_BLOCKS;
use super::keygen::KEYGEN_RESEND_BLOCKS;
use super::machine::Agent;
use super::payload::Payload;
use crate::dealing::{self, HeldSector};
use crate::ledger::{
    chain_digest, encode, sign_session_id, split_leaf, LedgerState, SectorRecord, TxBody,
};
use crate::lms;
use crate::master::Master;
use crate::member::MemberId;
use crate::mismatch::LeafMismatch;
use crate::reconstruct::blame;
use crate::reconstruct::{
    self, Contribution, ContributionFault, FaultReport, HolderKeys, Opened, Participant,
    ReconstructError, Session,
};
use crate::sector::Sector;
use crate::shamir::{Commitment, EncodedCommitment};

/// What the recipient gathered for one leaf.
#[derive(Default)]
pub(super) struct Gathering {
    /// The session context the contributions in `opened` were opened under (the quorum
    /// changes with the attempt).
    pub(super) context: [u8; 32],
    opened: BTreeMap<MemberId, (Contribution, Opened)>,
    /// Key issuance, as the relay: the quorum's contributions sealed to the client, checked
    /// but unopened, for the attempt with `context`.
    pub(super) sealed: BTreeMap<MemberId, Contribution>,
    /// The leaf's commitment, decoded, and as sent with its path (for a blame).
    pub(super) commitment: Option<(Commitment, EncodedCommitment, Vec<[u8; 32]>)>,
    /// The leaf's key `K` in its sector's tree and its path inside the sector, checked
    /// against the sector root (from the owner or our own copy of the tree).
    pub(super) path: Option<([u8; 32], Vec<[u8; 32]>)>,
    /// The `SignaturePublish`, once made: re-submitted until it lands.
    submitted: Option<TxBody>,
    /// Blame of the attempt with this context (submissions, dispute notices): repeated while
    /// that attempt's quorum stands.
    pub(super) blame: Option<([u8; 32], Vec<Duty>)>,
}

/// A leaf's signing session as the ledger implies it.
pub(super) struct SignCtx<'a> {
    /// The leaf's key, and its leaf index within that key.
    pub(super) key: u32,
    pub(super) q: u64,
    pub(super) sector: u32,
    /// The validator that relayed the request: contributions and paths go to it (it is the
    /// recipient, or in key issuance mode it keeps them for the client).
    pub(super) relay: MemberId,
    /// Key issuance mode: the recipient is the client.
    pub(super) issue: bool,
    pub(super) record: &'a SectorRecord,
    pub(super) session: Session,
    /// The leaf's `r` holders (rendezvous order of the sector's basis).
    pub(super) holders: Vec<MemberId>,
    pub(super) digest: [u8; 32],
}

/// The session of allocated, unsigned `leaf` at the ledger's height: recipient = the relay (or
/// the client in key issuance mode); candidates = the leaf's holders (rendezvous order) that
/// acknowledged the sector, are still validators and are not convicted (the recipient among
/// them if it holds the leaf), leaving out any other holder whose X25519 key the recipient or
/// an earlier candidate already has (so every quorum passes
/// `reconstruct::Session::check_leaf`); quorum = the attempt's
/// `k`-subset of the candidates in lexicographic order.
pub(super) fn sign_ctx(st: &LedgerState, leaf: u64) -> Option<SignCtx<'_>> {
    if st.signatures.contains_key(&leaf) {
        return None;
    }
    let request = st.sign_requests.get(&leaf)?;
    if request.issue_to.is_some() && st.height.saturating_sub(request.height) >= ISSUE_WINDOW_BLOCKS
    {
        return None;
    }
    let (key, q) = split_leaf(leaf);
    let layout = st.key_layout(key).ok()?;
    let sector = layout.sector_of(u32::try_from(q).ok()?)?;
    let record = st.key_state(key)?.sectors.get(&sector)?;
    let participant = |m: &MemberId| {
        st.members.get(m).map(|x| Participant {
            member: *m,
            x25519: x.x25519,
        })
    };
    let recipient = match request.issue_to {
        Some(x25519) => Participant {
            member: request.client,
            x25519,
        },
        None => participant(&request.requester)?,
    };
    let holders = record.basis.leaf_holders(q, st.key.leaf_holders).ok()?;
    let k = usize::from(st.key.leaf_threshold);
    let mut keys = vec![recipient.x25519];
    let mut candidates: Vec<Participant> = Vec::with_capacity(holders.len());
    for h in &holders {
        if !record.acked.contains(h) || !st.is_validator(h) || st.sign_convictions.contains_key(h) {
            continue;
        }
        let Some(p) = participant(h) else { continue };
        let usable = if *h == recipient.member {
            // In key issuance mode the client may be a validator holding the leaf, with
            // another key than the one it receives with: it cannot be in the quorum.
            p.x25519 == recipient.x25519
        } else {
            !keys.contains(&p.x25519)
        };
        if !usable {
            continue;
        }
        keys.push(p.x25519);
        candidates.push(p);
    }
    if candidates.len() < k {
        return None;
    }
    let attempt = st.height.saturating_sub(request.height) / SIGN_ATTEMPT_BLOCKS;
    let quorum: Vec<Participant> = nth_combination(candidates.len(), k, attempt)
        .into_iter()
        .map(|i| candidates[i])
        .collect();
    let session_id = sign_session_id(
        &chain_digest(&st.chain_id),
        leaf,
        &request.digest,
        &recipient.member,
    );
    let session = Session::new(session_id, 0, leaf, recipient, quorum).ok()?;
    Some(SignCtx {
        key,
        q,
        sector,
        relay: request.requester,
        issue: request.issue_to.is_some(),
        record,
        session,
        holders,
        digest: request.digest,
    })
}

/// Blocks one quorum has to bring a leaf's signature before the next attempt's quorum takes
/// over (a quorum with a crashed or silent member never completes).
pub const SIGN_ATTEMPT_BLOCKS: u64 = 2 * KEYGEN_RESEND_BLOCKS;

/// `C(n, k)`, saturating.
fn binomial(n: usize, k: usize) -> u64 {
    if k > n {
        return 0;
    }
    let k = k.min(n - k);
    let mut c: u64 = 1;
    for i in 0..k {
        c = c.saturating_mul((n - i) as u64) / (i as u64 + 1);
    }
    c
}

/// The `attempt`-th (cyclically) `k`-subset of `0..n` in lexicographic order: attempt 0 is the
/// first `k`, and every subset comes up within `C(n, k)` attempts, so a quorum of live holders
/// is reached whenever `k` of them are live.
fn nth_combination(n: usize, k: usize, attempt: u64) -> Vec<usize> {
    let total = binomial(n, k).max(1);
    let mut idx = attempt % total;
    let mut out = Vec::with_capacity(k);
    let mut next = 0;
    for slot in 0..k {
        for i in next..n {
            let with_i = binomial(n - i - 1, k - slot - 1);
            if idx < with_i {
                out.push(i);
                next = i + 1;
                break;
            }
            idx -= with_i;
        }
    }
    out
}

impl Agent {
    /// Per block: our contributions as a quorum member and our paths as an owner (on the
    /// re-send schedule), the signatures we made as a recipient (until they land).
    pub(super) fn sign_duties(&mut self, st: &LedgerState, duties: &mut Vec<Duty>) {
        let is_open =
            |leaf: &u64| st.sign_requests.contains_key(leaf) && !st.signatures.contains_key(leaf);
        self.signing.retain(|leaf, _| is_open(leaf));
        self.contributed.retain(|leaf, _| is_open(leaf));
        for (&leaf, request) in st.sign_requests.iter() {
            if st.signatures.contains_key(&leaf) {
                continue;
            }
            let due = st
                .height
                .saturating_sub(request.height)
                .is_multiple_of(KEYGEN_RESEND_BLOCKS);
            if !due && !self.signing.contains_key(&leaf) {
                // Nothing to send or re-submit for this leaf at this height: its session (the
                // leaf's holders, the quorum) is not worked out.
                continue;
            }
            let Some(ctx) = sign_ctx(st, leaf) else {
                continue;
            };
            if due && ctx.session.quorum.iter().any(|p| p.member == self.me) {
                duties.push(Duty::Contribute {
                    sector: ctx.sector,
                    commitments_root: ctx.record.commitments_root,
                    leaf,
                });
            }
            // The owner sends the path; the relay also takes it from its own copy of the
            // sector's public tree (the node skips that if it has none yet), so a dead owner
            // does not stall its sectors' leaves.
            let have_path = self.signing.get(&leaf).is_some_and(|g| g.path.is_some());
            if due && (ctx.record.owner == self.me || (ctx.relay == self.me && !have_path)) {
                duties.push(Duty::SendPath {
                    key: ctx.key,
                    sector: ctx.sector,
                    root: ctx.record.root,
                    leaf,
                    to: ctx.relay,
                });
            }
            if let Some(g) = self.signing.get_mut(&leaf) {
                if let Some(body) = g.submitted.clone() {
                    duties.push(Duty::Submit(body));
                }
                let context = ctx.session.context();
                match &g.blame {
                    Some((c, blame)) if *c == context => duties.extend(blame.iter().cloned()),
                    Some(_) => g.blame = None,
                    None => {}
                }
            }
        }
    }

    /// Our contribution to `leaf`'s session, from our held record of its sector and the
    /// record's commitments tree (the node reads and keeps them for [`Duty::Contribute`]s):
    /// the message to send to the relay.
    pub fn contribution<R: RngCore + CryptoRng>(
        &mut self,
        st: &LedgerState,
        held: &HeldSector,
        commitment_tree: &dealing::CommitmentTree,
        leaf: u64,
        rng: &mut R,
    ) -> Result<Duty, EpochError> {
        let ctx = sign_ctx(st, leaf).ok_or(EpochError::NoKeygen("leaf not open for signing"))?;
        let context = ctx.session.context();
        if let Some((c, payload)) = self.contributed.get(&leaf) {
            if *c == context {
                // A re-send: the same bytes (the node does not queue them twice).
                return Ok(Duty::Send {
                    to: ctx.relay,
                    payload: payload.clone(),
                });
            }
        }
        if held.commitments_root != ctx.record.commitments_root {
            return Err(EpochError::NoKeygen("held record of another dealing"));
        }
        let share = held
            .shares
            .iter()
            .find(|(l, _)| *l == ctx.q)
            .map(|(_, s)| s)
            .ok_or(EpochError::NoKeygen("we hold no share of that leaf"))?;
        let commitment = ctx
            .q
            .checked_sub(held.first_leaf)
            .and_then(|i| held.commitments.get(usize::try_from(i).ok()?))
            .cloned()
            .ok_or(EpochError::NoKeygen("no commitment of that leaf"))?;
        let path = commitment_tree
            .path(ctx.q)
            .map_err(|_| EpochError::NoKeygen("no commitment path of that leaf"))?;
        let fault = match self.fault {
            Fault::BadContribution => ContributionFault::WrongValue,
            Fault::DisputeEveryone => ContributionFault::DisputeEveryone,
            _ => ContributionFault::None,
        };
        for peer in &ctx.session.quorum {
            if peer.member != self.me && !self.pairs.contains_key(&peer.x25519) {
                if let Ok(point) = crate::seal::pairwise_point(&self.x25519, &peer.x25519) {
                    self.pairs.insert(peer.x25519, point);
                }
            }
        }
        let contribution = reconstruct::contribute_cached(
            &ctx.session,
            &ctx.holders,
            commitment.threshold(),
            self.holder_keys(),
            share,
            fault,
            Some(&self.pairs),
            rng,
        )
        .map_err(|e| {
            tracing::warn!(leaf, error = %e, "cannot contribute to this session");
            EpochError::Envelope("cannot contribute to this session")
        })?;
        let payload: Payload = encode(&Direct::Contribution {
            leaf,
            contribution,
            commitment,
            path,
        })
        .into();
        self.contributed.insert(leaf, (context, payload.clone()));
        Ok(Duty::Send {
            to: ctx.relay,
            payload,
        })
    }

    /// Our keys as a holder.
    fn holder_keys(&self) -> HolderKeys<'_> {
        HolderKeys::with_public(self.me, &self.x25519, self.x25519_public, &self.identity)
    }

    /// A holder's contribution to a leaf we requested. A signed contribution that is faulty on
    /// its own is blamed at once.
    #[allow(clippy::too_many_arguments)] // one per field of the message, plus context
    pub(super) fn on_contribution<R: RngCore + CryptoRng>(
        &mut self,
        st: &LedgerState,
        from: MemberId,
        leaf: u64,
        contribution: &Contribution,
        encoded: &EncodedCommitment,
        path: &[[u8; 32]],
        rng: &mut R,
    ) -> Result<Vec<Duty>, EpochError> {
        let ctx = sign_ctx(st, leaf).ok_or(EpochError::NoKeygen("leaf not open for signing"))?;
        if ctx.relay != self.me {
            return Err(EpochError::NoKeygen("we are not this leaf's relay"));
        }
        if contribution.sender != from {
            return Err(EpochError::Envelope(
                "contribution not from the sending peer",
            ));
        }
        if self.already_taken(&ctx, leaf, from) {
            // A re-send of what we opened (or kept) for this attempt, or the leaf is signed:
            // nothing to do, and no box to open again.
            return Ok(Vec::new());
        }
        if dealing::root_from_path(ctx.q, encoded, path) != ctx.record.commitments_root {
            return Err(EpochError::Envelope(
                "commitment not under the sector's commitments root",
            ));
        }
        if ctx.issue {
            return self.keep_for_client(&ctx, leaf, contribution, encoded, path);
        }
        let commitment = encoded
            .decode()
            .map_err(|_| EpochError::Envelope("commitment does not decode"))?;
        let session = &ctx.session;
        let opened = match reconstruct::open_contribution(session, &self.x25519, contribution) {
            Ok(opened) => opened,
            Err(ReconstructError::Faulty(_)) => {
                let evidence = blame::blame_contribution(
                    session,
                    &self.x25519,
                    contribution,
                    encoded.clone(),
                    path.to_vec(),
                    rng,
                )
                .map_err(|_| EpochError::Envelope("cannot reveal a faulty contribution"))?;
                tracing::warn!(leaf, sender = ?from, "faulty contribution: blamed on the ledger");
                let duty = Duty::Submit(TxBody::SignBlame {
                    leaf,
                    evidence: Box::new(evidence),
                });
                let g = self.signing.entry(leaf).or_default();
                g.add_blame(session.context(), vec![duty.clone()]);
                return Ok(vec![duty]);
            }
            Err(_) => {
                return Err(EpochError::Envelope(
                    "contribution does not open for this session",
                ))
            }
        };
        let g = self.signing.entry(leaf).or_default();
        let context = session.context();
        if g.context != context {
            g.context = context;
            g.opened.clear();
        }
        g.commitment
            .get_or_insert((commitment, encoded.clone(), path.to_vec()));
        g.opened.insert(from, (contribution.clone(), opened));
        Ok(self.try_sign(st, leaf, rng))
    }

    /// Whether `from`'s contribution to `leaf` needs no work: we already made the leaf's
    /// signature (or its mismatch evidence), or we hold `from`'s contribution to this attempt.
    fn already_taken(&self, ctx: &SignCtx<'_>, leaf: u64, from: MemberId) -> bool {
        let Some(g) = self.signing.get(&leaf) else {
            return false;
        };
        g.submitted.is_some()
            || (g.context == ctx.session.context()
                && (g.opened.contains_key(&from) || g.sealed.contains_key(&from)))
    }

    /// The recipient's (or, in key issuance mode, the relay's) report of a mask dispute between
    /// our contribution and another quorum member's: our reveal of the pair's point, as a
    /// `SignBlame` to submit, if the other's claim is provably wrong and ours right.
    pub(super) fn on_dispute<R: RngCore + CryptoRng>(
        &mut self,
        st: &LedgerState,
        from: MemberId,
        leaf: u64,
        mine: &Contribution,
        theirs: &Contribution,
        rng: &mut R,
    ) -> Result<Vec<Duty>, EpochError> {
        let ctx = sign_ctx(st, leaf).ok_or(EpochError::NoKeygen("leaf not open for signing"))?;
        // The relay reports disputes in key issuance mode (the mask commitments are in clear;
        // the client is not on the network); otherwise it is the recipient.
        if ctx.session.recipient.member != from && ctx.relay != from {
            return Err(EpochError::Envelope(
                "dispute neither from the leaf's recipient nor its relay",
            ));
        }
        let evidence = blame::answer_dispute(&ctx.session, self.holder_keys(), mine, theirs, rng)
            .map_err(|_| EpochError::Envelope("no dispute to answer"))?;
        tracing::warn!(leaf, peer = ?theirs.sender, "mask dispute: revealing our pair's point");
        Ok(vec![Duty::Submit(TxBody::SignBlame {
            leaf,
            evidence: Box::new(evidence),
        })])
    }

    /// A leaf's key and path inside its sector, for a leaf we relay: from its owner, or from our
    /// own replica of the tree (a self-addressed message).
    pub(super) fn on_leaf_path<R: RngCore + CryptoRng>(
        &mut self,
        st: &LedgerState,
        from: MemberId,
        leaf: u64,
        (leaf_key, path): ([u8; 32], Vec<[u8; 32]>),
        rng: &mut R,
    ) -> Result<Vec<Duty>, EpochError> {
        let ctx = sign_ctx(st, leaf).ok_or(EpochError::NoKeygen("leaf not open for signing"))?;
        if ctx.relay != self.me {
            return Err(EpochError::NoKeygen("we are not this leaf's relay"));
        }
        if ctx.record.owner != from && from != self.me {
            return Err(EpochError::Envelope(
                "path neither from the sector's owner nor our own",
            ));
        }
        if path.len() != usize::from(st.key.tree_height - st.key.sector_bits) {
            return Err(EpochError::Envelope("path of the wrong length"));
        }
        let layout = st
            .key_layout(ctx.key)
            .map_err(|_| EpochError::NoKeygen("no layout of the leaf's key"))?;
        let q32 = u32::try_from(ctx.q).map_err(|_| EpochError::NoKeygen("leaf out of range"))?;
        if !crate::audit::key_under_root(
            &layout.id,
            layout.height(),
            q32,
            &leaf_key,
            &path,
            &ctx.record.root,
        ) {
            return Err(EpochError::Envelope(
                "the leaf key and path do not give the sector root",
            ));
        }
        // Checked first, so a wrong path is refused (and shows) even when we hold a path.
        if self
            .signing
            .get(&leaf)
            .is_some_and(|g| g.path.is_some() || g.submitted.is_some())
        {
            // A re-send, or the owner's path and ours: one is enough.
            return Ok(Vec::new());
        }
        self.signing.entry(leaf).or_default().path = Some((leaf_key, path));
        if ctx.issue {
            return Ok(Vec::new());
        }
        Ok(self.try_sign(st, leaf, rng))
    }

    /// With the quorum's contributions and the path in, rebuilds the seed, signs the request's
    /// digest, verifies, erases, and returns the `SignaturePublish` to submit; or, if the
    /// contributions do not combine, the blame duties.
    fn try_sign<R: RngCore + CryptoRng>(
        &mut self,
        st: &LedgerState,
        leaf: u64,
        rng: &mut R,
    ) -> Vec<Duty> {
        self.try_sign_inner(st, leaf, rng).unwrap_or_default()
    }

    fn try_sign_inner<R: RngCore + CryptoRng>(
        &mut self,
        st: &LedgerState,
        leaf: u64,
        rng: &mut R,
    ) -> Option<Vec<Duty>> {
        let ctx = sign_ctx(st, leaf)?;
        let g = self.signing.get_mut(&leaf)?;
        if g.submitted.is_some()
            || g.path.is_none()
            || g.commitment.is_none()
            || !ctx
                .session
                .quorum
                .iter()
                .all(|p| g.opened.contains_key(&p.member))
        {
            return None;
        }
        let opened: Vec<Opened> = ctx
            .session
            .quorum
            .iter()
            .filter_map(|p| g.opened.get(&p.member).map(|(_, o)| o.clone()))
            .collect();
        let (commitment, encoded, commitment_path) = g.commitment.as_ref()?;
        let secret = match reconstruct::combine(&ctx.session, commitment, &opened) {
            Ok(s) => s,
            Err(ReconstructError::Faulty(report)) => {
                tracing::warn!(leaf, ?report, "contributions do not combine: blaming");
                let duties = blame_duties(
                    &ctx.session,
                    &self.x25519,
                    &report,
                    &g.opened,
                    (encoded, commitment_path),
                    rng,
                );
                g.opened.clear();
                g.add_blame(ctx.session.context(), duties.clone());
                return Some(duties);
            }
            Err(e) => {
                tracing::warn!(leaf, error = %e, "contributions do not combine");
                g.opened.clear();
                return None;
            }
        };
        let seed = secret.lms_seed();
        let layout = st.key_layout(ctx.key).ok()?;
        let (leaf_key, sector_path) = g.path.clone()?;
        let q32 = u32::try_from(ctx.q).ok()?;
        if crate::lmots::leaf_public_key(layout.ots_type, &layout.id, q32, &seed) != leaf_key {
            // The seed is its commitment's secret (`combine` checked it) but does not generate
            // the key the owner's sector root commits to at this leaf (`on_leaf_path` checked
            // the key and path against the root): the owner's fault. The seed is published
            // with the evidence; the ledger retires the leaf and moves the request.
            tracing::warn!(leaf, "the rebuilt seed does not generate the sector's leaf");
            let body = TxBody::LeafMismatch {
                evidence: Box::new(LeafMismatch {
                    leaf,
                    seed: *secret.to_bytes(),
                    commitment: encoded.clone(),
                    commitment_path: commitment_path.clone(),
                    leaf_key,
                    path: sector_path,
                }),
            };
            drop(secret);
            g.opened.clear();
            g.submitted = Some(body.clone());
            return Some(vec![Duty::Submit(body)]);
        }
        drop(secret);
        let path = full_path(st, ctx.key, ctx.sector, sector_path)?;
        let signed = lms::sign(
            layout.lms_type,
            layout.ots_type,
            &layout.id,
            q32,
            &seed,
            &ctx.digest,
            path,
        );
        drop(seed);
        g.opened.clear();
        let sig = match signed {
            Ok(sig) => sig,
            Err(e) => {
                tracing::warn!(leaf, error = %e, "cannot sign");
                return None;
            }
        };
        let public = st.key_public(ctx.key)?;
        if let Err(e) = public.verify(&ctx.digest, &sig) {
            // The sector's leaf checked, so the master tree's path is wrong: a ledger mismatch
            // this node cannot settle. Nothing leaves.
            tracing::warn!(leaf, error = %e, "the rebuilt one-time key does not verify");
            return None;
        }
        let body = TxBody::SignaturePublish {
            leaf,
            signature: sig.encode_hss(),
        };
        g.submitted = Some(body.clone());
        tracing::info!(leaf, "leaf rebuilt by MPC and signed");
        Some(vec![Duty::Submit(body)])
    }
}

impl Gathering {
    /// Adds blame duties for the attempt of `context` (replacing those of an older attempt).
    pub(super) fn add_blame(&mut self, context: [u8; 32], duties: Vec<Duty>) {
        match &mut self.blame {
            Some((c, old)) if *c == context => {
                for d in duties {
                    if !old.contains(&d) {
                        old.push(d);
                    }
                }
            }
            _ => self.blame = Some((context, duties)),
        }
    }
}

/// The recipient's duties for a faulty combination: a `SignBlame` revealing each culprit's
/// box, and each disputing pair's two contributions sent to both members (the honest one
/// answers with its reveal).
fn blame_duties<R: RngCore + CryptoRng>(
    session: &Session,
    my_key: &x25519_dalek::StaticSecret,
    report: &FaultReport,
    opened: &BTreeMap<MemberId, (Contribution, Opened)>,
    (commitment, path): (&EncodedCommitment, &Vec<[u8; 32]>),
    rng: &mut R,
) -> Vec<Duty> {
    let leaf = session.leaf;
    let mut duties = Vec::new();
    for culprit in &report.culprits {
        let Some((c, _)) = opened.get(culprit) else {
            continue;
        };
        match blame::blame_contribution(session, my_key, c, commitment.clone(), path.clone(), rng) {
            Ok(evidence) => duties.push(Duty::Submit(TxBody::SignBlame {
                leaf,
                evidence: Box::new(evidence),
            })),
            Err(e) => tracing::warn!(leaf, error = %e, "cannot blame a culprit"),
        }
    }
    duties.extend(dispute_notices(leaf, &report.disputes, |m| {
        opened.get(m).map(|(c, _)| c)
    }));
    duties
}

/// For each disputing pair, both members' signed contributions sent to each of them
/// (`Direct::Dispute`): the honest one answers with the reveal of the pair's point.
pub(super) fn dispute_notices<'a>(
    leaf: u64,
    disputes: &[(MemberId, MemberId)],
    contribution: impl Fn(&MemberId) -> Option<&'a Contribution>,
) -> Vec<Duty> {
    let mut duties = Vec::new();
    for (a, b) in disputes {
        let (Some(ca), Some(cb)) = (contribution(a), contribution(b)) else {
            continue;
        };
        for (to, mine, theirs) in [(a, ca, cb), (b, cb, ca)] {
            duties.push(Duty::Send {
                to: *to,
                payload: encode(&Direct::Dispute {
                    leaf,
                    mine: mine.clone(),
                    theirs: theirs.clone(),
                })
                .into(),
            });
        }
    }
    duties
}

/// A leaf's whole authentication path: `sector_path` (inside its sector, from the owner) then
/// the master tree's path of `sector` over key `key`'s sector roots on the ledger.
pub(super) fn full_path(
    st: &LedgerState,
    key: u32,
    sector: u32,
    mut sector_path: Vec<[u8; 32]>,
) -> Option<Vec<[u8; 32]>> {
    let layout = st.key_layout(key).ok()?;
    let roots: Vec<[u8; 32]> = st
        .key_state(key)?
        .sectors
        .values()
        .map(|r| r.root)
        .collect();
    let master = Master::from_sector_roots(layout, &roots).ok()?;
    sector_path.extend(master.auth_path(sector).ok()?);
    Some(sector_path)
}

impl Agent {
    /// The path message a [`Duty::SendPath`] asks for (leaf id `leaf`), from our copy of the
    /// leaf's sector tree (the owner's kept tree, or a replica): the leaf's key and its path,
    /// which the relay checks against the sector root on the ledger. `Fault::BadPath` (as the
    /// owner) sends a wrong path.
    pub fn leaf_path_msg(
        &self,
        st: &LedgerState,
        tree: &Sector,
        leaf: u64,
    ) -> Result<Vec<u8>, EpochError> {
        let (key, q) = split_leaf(leaf);
        let q32 = u32::try_from(q).map_err(|_| EpochError::NoKeygen("leaf out of range"))?;
        let sector = tree.branch();
        let record = st
            .key_state(key)
            .and_then(|k| k.sectors.get(&sector))
            .ok_or(EpochError::NoKeygen("the leaf's sector is not published"))?;
        if tree.root() != record.root {
            return Err(EpochError::NoKeygen(
                "the tree is not the published sector's",
            ));
        }
        let not_in_tree = |_| EpochError::NoKeygen("leaf not in the kept tree");
        let leaf_key = tree.leaf_key(q32).map_err(not_in_tree)?;
        let mut path = tree.auth_path(q32).map_err(not_in_tree)?;
        if self.fault == Fault::BadPath && record.owner == self.me {
            if let Some(first) = path.first_mut() {
                first[0] ^= 1;
            }
        }
        Ok(encode(&Direct::LeafPath {
            leaf,
            leaf_key,
            path,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_walk_every_k_subset_in_order_then_wrap() {
        assert_eq!(binomial(5, 3), 10);
        assert_eq!(binomial(3, 5), 0);
        assert_eq!(nth_combination(5, 3, 0), vec![0, 1, 2]);
        assert_eq!(nth_combination(5, 3, 1), vec![0, 1, 3]);
        assert_eq!(nth_combination(5, 3, 9), vec![2, 3, 4]);
        assert_eq!(nth_combination(5, 3, 10), vec![0, 1, 2]);
        let all: std::collections::BTreeSet<Vec<usize>> =
            (0..10).map(|a| nth_combination(5, 3, a)).collect();
        assert_eq!(all.len(), 10);
        assert!(all
            .iter()
            .all(|c| c.len() == 3 && c.windows(2).all(|w| w[0] < w[1])));
        assert_eq!(nth_combination(3, 3, 7), vec![0, 1, 2]);
    }
}
