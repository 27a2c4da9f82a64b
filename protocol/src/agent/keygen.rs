//! Key generation as the agent sees it: the context every step of `docs/protocol.md` reads
//! from the ledger ([`KeyCtx`]: the epoch's branch owners, the root key whose threshold PRF
//! gives branch seeds, the tree layout, the leaf-holder basis), and the agent's in-memory work
//! ([`Keygen`]): partials it sends, sectors it owns, batches it holds, complaints it made.
//! Sub-duties live in `branch` (partials), `owner` (generate, deal, collect acknowledgements,
//! `SectorRoot`), `holder` (check, keep, acknowledge, or complain) and `master` (`MasterRoot`).
//!
//! Guarantees: none of this is persisted. Branch and leaf seeds exist only while an owner
//! generates and deals (then only sealed batches remain), and everything is dropped when the
//! key, the epoch or the holder basis changes, the sector lands, or its owner changes (a convicted
//! owner's sector goes to another); a restarted node rebuilds it from re-sent partials and
//! batches (dealing is deterministic in the branch seed).

use std::collections::BTreeMap;

use frost_ristretto255::keys::PublicKeyPackage;
use zeroize::Zeroize;

use super::payload::Payload;
use crate::branch_seed::BranchId;
use crate::dealing::{DealAck, SectorId};
use crate::ledger::{chain_digest, HolderBasis, LedgerState, TxBody};
use crate::member::MemberId;
use crate::sector::TreeLayout;
use crate::tprf::Partial;

/// Blocks between re-sends of a partial, a batch or an acknowledgement that has not taken
/// effect yet (the first send is immediate).
pub const KEYGEN_RESEND_BLOCKS: u64 = 4;
/// Blocks an owner waits, after dealing, for every holder to acknowledge before it publishes
/// the sector root with the acknowledgements it has (if every leaf has enough).
pub const ACK_WAIT_BLOCKS: u64 = 8;

/// What the ledger says about the key generation in progress in this epoch.
pub(super) struct KeyCtx {
    /// The index of the key being generated.
    pub(super) key: u32,
    /// The current epoch (branch owners and holder basis are this epoch's).
    pub(super) epoch: u64,
    /// The epoch whose ristretto255 DKG key evaluates branch seeds: the key that produced this
    /// epoch's beacon (`epoch − 1`), the same for every validator all epoch long.
    pub(super) root_epoch: u64,
    pub(super) root_public: PublicKeyPackage,
    pub(super) root_threshold: usize,
    pub(super) chain: [u8; 32],
    pub(super) layout: TreeLayout,
    /// `k`, `r`, `a`.
    pub(super) k: usize,
    pub(super) r: u16,
    pub(super) ack_threshold: usize,
    pub(super) basis: HolderBasis,
    pub(super) basis_digest: [u8; 32],
}

impl KeyCtx {
    /// The context, if a key is being generated: an epoch ≥ 1 with its branch assignment on
    /// the ledger, the root key's DKG result, and the master root not yet final.
    pub(super) fn of(st: &LedgerState) -> Option<KeyCtx> {
        if st.epoch == 0
            || st.newest.assignment_epoch != Some(st.epoch)
            || st.newest.master_root.is_some()
        {
            return None;
        }
        let root_epoch = st.epoch - 1;
        let result = st.dkg_results.get(&root_epoch)?;
        let root_public = result.ristretto255().ok()?;
        let chain = chain_digest(&st.chain_id);
        let layout = st.key_layout(st.newest.index).ok()?;
        let basis = st.holder_basis();
        let basis_digest = basis.digest();
        Some(KeyCtx {
            key: st.newest.index,
            epoch: st.epoch,
            root_epoch,
            root_public,
            root_threshold: usize::from(result.threshold),
            chain,
            layout,
            k: usize::from(st.key.leaf_threshold),
            r: st.key.leaf_holders,
            ack_threshold: usize::from(st.key.ack_threshold),
            basis,
            basis_digest,
        })
    }

    pub(super) fn branch_id(&self, sector: u32, owner: MemberId) -> BranchId {
        BranchId {
            chain: self.chain,
            key_id: self.layout.id,
            branch: sector,
            owner,
        }
    }

    pub(super) fn sector_id(&self, sector: u32, owner: MemberId) -> SectorId {
        SectorId {
            chain: self.chain,
            key: self.key,
            sector,
            owner,
            basis: self.basis_digest,
        }
    }

    /// Sectors still to generate, with their owners.
    pub(super) fn open_sectors<'a>(
        &self,
        st: &'a LedgerState,
    ) -> impl Iterator<Item = (u32, MemberId)> + 'a {
        st.newest
            .branch_owners
            .iter()
            .filter(|(s, _)| !st.newest.sectors.contains_key(s))
            .map(|(s, o)| (*s, *o))
    }
}

/// The agent's in-memory key-generation work for one (key, epoch, holder basis).
#[derive(Default)]
pub(super) struct Keygen {
    /// The key, epoch and basis digest the work is for; other work is dropped.
    pub(super) scope: Option<(u32, u64, [u8; 32])>,
    /// Our partial for each sector we do not own: (its owner, height first sent, encoded
    /// direct message).
    pub(super) partials_out: BTreeMap<u32, (MemberId, u64, Payload)>,
    /// Sectors we own.
    pub(super) owned: BTreeMap<u32, Owned>,
    /// Sectors we hold shares of, by (owner, sector), as their batches arrive.
    pub(super) holding: BTreeMap<(MemberId, u32), Holding>,
    /// Our `DealComplaint` against an owner, by (owner, sector): re-submitted unchanged until
    /// it lands (the owner then changes) or the sector does.
    pub(super) complaints: BTreeMap<(MemberId, u32), TxBody>,
}

impl Keygen {
    /// Drops the work if it is for another key, epoch or basis than `ctx`, and the work on sectors
    /// that landed or whose owner changed (our own sectors are dropped by `owner_duties`).
    pub(super) fn rescope(&mut self, ctx: Option<&KeyCtx>, st: &LedgerState) {
        let scope = ctx.map(|c| (c.key, c.epoch, c.basis_digest));
        if scope != self.scope {
            *self = Keygen {
                scope,
                ..Keygen::default()
            };
        }
        let open = |owner: &MemberId, s: &u32| {
            !st.newest.sectors.contains_key(s) && st.newest.branch_owners.get(s) == Some(owner)
        };
        self.partials_out.retain(|s, (owner, _, _)| open(owner, s));
        self.owned.retain(|s, _| !st.newest.sectors.contains_key(s));
        self.holding.retain(|(owner, s), _| open(owner, s));
        self.complaints.retain(|(owner, s), _| open(owner, s));
    }
}

/// A sector we own: the partials gathered, then the dealing.
#[derive(Default)]
pub(super) struct Owned {
    /// Verified partials by sender (dropped once dealt: they give the branch seed).
    pub(super) partials: BTreeMap<MemberId, Partial>,
    pub(super) dealt: Option<Dealt>,
}

impl Drop for Owned {
    fn drop(&mut self) {
        for p in self.partials.values_mut() {
            p.point.0.zeroize();
        }
    }
}

/// A dealt sector, waiting for acknowledgements.
pub(super) struct Dealt {
    /// Ledger height when dealt (re-sends count from it).
    pub(super) height: u64,
    /// The sector's leaf public keys until the node was asked to keep them.
    pub(super) tree: Option<Vec<[u8; 32]>>,
    pub(super) root: [u8; 32],
    pub(super) commitments_root: [u8; 32],
    /// The direct messages (one per chunk) for each validator of the basis: each holder's own
    /// bytes around its chunk's encoded commitments, which the chunk's batches share (one copy
    /// of the sector's commitments, not one per holder); a re-send is a clone.
    pub(super) batches: BTreeMap<MemberId, Vec<Payload>>,
    /// Each leaf's holders, as indices into the basis members (`r` per leaf).
    pub(super) leaf_holders: Vec<u16>,
    pub(super) acks: BTreeMap<MemberId, DealAck>,
    /// The `SectorRoot` once submitted: re-submitted unchanged until it lands.
    pub(super) submitted: Option<TxBody>,
}

/// A checked chunk of a sector we hold. Once the sector is kept and acknowledged, only the
/// root remains (to answer re-sends).
#[derive(Default)]
pub(super) struct CheckedChunk {
    /// Its leaf public keys (a chunk of the sector's tree), until the tree is built.
    pub(super) keys: Vec<[u8; 32]>,
    /// Its commitments' root (its commitments and our shares are on disk: `Duty::KeepChunk`).
    pub(super) root: [u8; 32],
}

/// What we acknowledged of a sector: its commitments root and the root of the tree we kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Acked {
    pub(super) commitments_root: [u8; 32],
    pub(super) root: [u8; 32],
}

/// Batches of one sector received so far.
#[derive(Default)]
pub(super) struct Holding {
    /// The checked chunks, by first leaf.
    pub(super) chunks: BTreeMap<u64, CheckedChunk>,
    /// What we acknowledged, once every chunk arrived.
    pub(super) acked: Option<Acked>,
}
