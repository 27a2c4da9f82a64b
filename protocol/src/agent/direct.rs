//! Point-to-point messages between agents, and their dispatch: DKG round-2 envelopes,
//! branch-seed partials (validator → owner), dealt batches (owner → holder), deal
//! acknowledgements (holder → owner), and for signing, reconstruction contributions (holder →
//! recipient), mask-dispute reports (recipient → the two members) and leaf paths (owner →
//! recipient). The node carries them as opaque bytes and names the
//! authenticated sender; [`Agent::on_direct`] decodes and routes them.
//!
//! Guarantees: a message that does not decode, is stale, or fails its checks is an error that
//! leaves the agent's state unchanged.

use std::sync::Arc;

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use super::dkg::DirectMsg;
use super::duty::{Duty, EpochError};
use super::machine::Agent;
use super::payload::Payload;
use crate::branch_seed::PartialEnvelope;
use crate::dealing::{DealAck, DealBatch, SealedShares, SectorId};
use crate::ledger::{decode, encode, Ledger};
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
    /// A leaf's one-time public key hash `K` and its authentication path inside its sector,
    /// to the relay: from the sector's owner, or from the relay's own copy of the sector's
    /// public tree. Checked against the sector root on the ledger, so it needs no signature;
    /// the recipient's evidence if the rebuilt seed does not generate `K`.
    LeafPath {
        /// The leaf.
        leaf: u64,
        /// The leaf's key `K` in the sector's tree.
        leaf_key: [u8; 32],
        /// `h − p` nodes, leaf level first.
        path: Vec<[u8; 32]>,
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

/// The bytes every batch of a chunk shares: the encoding of its commitments followed by its
/// leaf keys (the [`DealBatch`] fields `commitments` and `keys`, in order).
pub(super) fn chunk_shared(commitments: &[EncodedCommitment], keys: &[[u8; 32]]) -> Arc<[u8]> {
    encode(&(commitments, keys)).into()
}

/// The owner's [`Direct::Batch`] to `holder` of the chunk at `first_leaf`, without a copy of
/// the chunk's commitments and keys: `shared` is their [`chunk_shared`] encoding, which every
/// batch of the chunk shares, and the payload is the batch's own bytes around it, the same
/// bytes as `ledger::encode` of the whole message (the encoding is the fields' encodings in
/// order). `None` if the message's encoding does not split that way (never, for this codec).
pub(super) fn batch_payload(
    epoch: u64,
    id: SectorId,
    holder: MemberId,
    first_leaf: u64,
    shared: &Arc<[u8]>,
    part: SealedShares,
) -> Option<Payload> {
    let tail = encode(&(&part.sealed, &part.signature));
    // The message with no commitments and no keys: `head ‖ 0 ‖ 0 ‖ tail`, the zero bytes
    // being their counts.
    let mut head = encode(&Direct::Batch {
        epoch,
        batch: DealBatch {
            id,
            holder,
            first_leaf,
            commitments: Vec::new(),
            keys: Vec::new(),
            sealed: part.sealed,
            signature: part.signature,
        },
    });
    let cut = head.len().checked_sub(tail.len() + 2)?;
    if head[cut..cut + 2] != [0, 0] || head[cut + 2..] != tail[..] {
        return None;
    }
    head.truncate(cut);
    head.shrink_to_fit();
    Some(Payload::around(head, shared.clone(), tail))
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
                leaf_key,
                path,
            } => self.on_leaf_path(st, from, leaf, (leaf_key, path), rng),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::Sealed;

    /// The owner's batches are sent as their own bytes around the chunk's shared commitments:
    /// a holder must receive exactly the message's encoding.
    #[test]
    fn a_batch_payload_is_the_encoding_of_the_whole_batch() {
        for (epoch, first_leaf, leaves, box_len) in [
            (1, 0, 1, 0),
            (300, 1 << 20, 4, 40),
            (u64::MAX, u64::MAX - 3, 2, 200),
        ] {
            let commitments: Vec<EncodedCommitment> = (0..leaves)
                .map(|i| EncodedCommitment::try_from(vec![[i as u8; 32]; 3]).unwrap())
                .collect();
            let keys: Vec<[u8; 32]> = (0..leaves).map(|i| [0x40 + i as u8; 32]).collect();
            let batch = DealBatch {
                id: SectorId {
                    chain: [1; 32],
                    key: 7,
                    sector: 3,
                    owner: MemberId([2; 32]),
                    basis: [4; 32],
                },
                holder: MemberId([5; 32]),
                first_leaf,
                commitments: commitments.clone(),
                keys: keys.clone(),
                sealed: Sealed {
                    ephemeral: [6; 32],
                    ciphertext: vec![8; box_len],
                },
                signature: vec![9; 64],
            };
            let shared = chunk_shared(&commitments, &keys);
            let part = SealedShares {
                sealed: batch.sealed.clone(),
                signature: batch.signature.clone(),
            };
            let payload =
                batch_payload(epoch, batch.id, batch.holder, first_leaf, &shared, part).unwrap();
            let whole = encode(&Direct::Batch { epoch, batch });
            assert_eq!(payload.to_vec(), whole);
            assert!(matches!(
                decode::<Direct>(&payload.to_vec()),
                Ok(Direct::Batch { .. })
            ));
        }
    }
}
