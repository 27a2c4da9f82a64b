//! Point-to-point messages between agents, and their dispatch: DKG round-2 envelopes,
//! branch-seed partials (validator → owner), dealt batches (owner → holder), deal
//! acknowledgements (holder → owner), and for signing, reconstruction contributions (holder →
//! recipient), mask-dispute reports (recipient → the two members) and leaf paths (owner →
//! recipient). The node carries them as opaque bytes and names the
//! authenticated sender; [`Agent::on_direct`] decodes and routes them.
//!
//! Guarantees: a message that does not decode, is stale, or fails its checks is an error that
//! leaves the agent's state unchanged.

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use super::dkg::DirectMsg;
use super::duty::{Duty, EpochError};
use super::machine::Agent;
use crate::branch_seed::PartialEnvelope;
use crate::dealing::{DealAck, DealBatch};
use crate::ledger::{decode, Ledger};
use crate::member::MemberId;
use crate::reconstruct::Contribution;
use crate::shamir::EncodedCommitment;

/// A point-to-point message. Every key-generation message names the epoch it was made in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Direct {
    /// One DKG dealer's two envelopes for one recipient.
    Dkg(DirectMsg),
    /// A validator's branch-seed partial, sealed to the branch's owner.
    Partial {
        /// Epoch of the branch assignment.
        epoch: u64,
        /// The sealed, signed partial.
        envelope: PartialEnvelope,
    },
    /// One chunk of a sector's dealing for one holder.
    Batch {
        /// Epoch of the holder basis the owner dealt with.
        epoch: u64,
        /// The sealed, signed batch.
        batch: DealBatch,
    },
    /// A quorum member's contribution to the reconstruction of a leaf toward its recipient,
    /// with the leaf's commitment and its path to the sector's commitments root.
    Contribution {
        /// The leaf.
        leaf: u64,
        /// The sealed contribution.
        contribution: Contribution,
        /// The leaf's commitment, as dealt.
        commitment: EncodedCommitment,
        /// Its path to the commitments root.
        path: Vec<[u8; 32]>,
    },
    /// The recipient's report of a mask dispute, to each of the two members: the member's own
    /// contribution and the other's, as signed.
    Dispute {
        /// The leaf.
        leaf: u64,
        /// The addressee's contribution.
        mine: Contribution,
        /// The other member's contribution.
        theirs: Contribution,
    },
    /// The sector owner's authentication path of a leaf inside its sector, to the recipient.
    LeafPath {
        /// The leaf.
        leaf: u64,
        /// `h − p` nodes, leaf level first.
        path: Vec<[u8; 32]>,
        /// The owner's signature of the path (`mismatch::path_message`): the recipient's
        /// evidence if the path and the rebuilt seed miss the sector root.
        signature: Vec<u8>,
    },
    /// A holder's acknowledgement of a whole sector.
    Ack {
        /// Epoch of the dealing.
        epoch: u64,
        /// The sector.
        sector: u32,
        /// The signed acknowledgement.
        ack: DealAck,
    },
}

/// The canonical re-encoding of a decodable [`Direct`] (for the fuzz targets).
#[cfg(feature = "fuzzing")]
pub(crate) fn reencode(bytes: &[u8]) -> Option<Vec<u8>> {
    decode::<Direct>(bytes)
        .ok()
        .map(|m| crate::ledger::encode(&m))
}

impl Agent {
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
        let msg: Direct = decode(payload).map_err(|_| EpochError::Decode("direct message"))?;
        match msg {
            Direct::Dkg(m) => self.on_dkg_envelopes(st, from, m, rng),
            Direct::Partial { epoch, envelope } => self.on_partial(st, from, epoch, &envelope, rng),
            Direct::Batch { epoch, batch } => self.on_batch(st, from, epoch, &batch, rng),
            Direct::Ack { epoch, sector, ack } => self.on_ack(st, from, epoch, sector, ack),
            Direct::Contribution {
                leaf,
                contribution,
                commitment,
                path,
            } => self.on_contribution(st, from, leaf, &contribution, &commitment, &path, rng),
            Direct::Dispute { leaf, mine, theirs } => {
                self.on_dispute(st, from, leaf, &mine, &theirs, rng)
            }
            Direct::LeafPath {
                leaf,
                path,
                signature,
            } => self.on_leaf_path(st, from, leaf, (path, signature), rng),
        }
    }
}
