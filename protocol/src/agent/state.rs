//! The agent's persisted state: per DKG attempt (round-1 secrets, dealt envelopes, opened
//! shares, complaints to file), per completed DKG (key packages, beacon partial), per checkpoint
//! attempt (signing nonces, commitments). Guarantees: its postcard encoding is the snapshot nodes
//! persist and stays byte-compatible (a golden test pins it); [`Saved::wipe`] zeroizes every
//! secret in it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::ledger::DkgSuite;
use crate::member::MemberId;
use crate::tprf::Partial;

/// Envelopes dealt, by recipient: (ristretto255, Ed25519), encoded.
pub(super) type Dealt = BTreeMap<MemberId, (Vec<u8>, Vec<u8>)>;

/// Local state of one DKG attempt.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(super) struct LocalDkg {
    /// Serialised round-1 secret packages.
    pub(super) secret_r: Vec<u8>,
    pub(super) secret_e: Vec<u8>,
    /// The `DkgCommitment` payload.
    pub(super) payload: Vec<u8>,
    /// Envelopes dealt, by recipient: (ristretto255, Ed25519), encoded.
    pub(super) dealt: Option<Dealt>,
    /// Opened shares (serialised round-2 packages) by dealer.
    pub(super) received_r: BTreeMap<MemberId, Vec<u8>>,
    pub(super) received_e: BTreeMap<MemberId, Vec<u8>>,
    /// `Bad` complaints to file: (suite, dealer) -> encoded `ComplaintPayload`.
    pub(super) complaints: BTreeMap<(DkgSuite, MemberId), Vec<u8>>,
}

/// Key packages of a completed DKG.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(super) struct LocalKeys {
    pub(super) ristretto255: Vec<u8>,
    pub(super) ed25519: Vec<u8>,
    /// The beacon partial for the next epoch (drawn once).
    pub(super) partial: Option<Partial>,
}

/// One checkpoint signing attempt: `nonces` is `None` when they were lost (restored from an
/// older snapshot) or already used and discarded.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(super) struct LocalSigning {
    pub(super) nonces: Option<Vec<u8>>,
    pub(super) commitments: Vec<u8>,
}

/// Everything the agent persists; its encoding is the snapshot.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(super) struct Saved {
    pub(super) dkgs: BTreeMap<(u64, u32), LocalDkg>,
    pub(super) keys: BTreeMap<u64, LocalKeys>,
    pub(super) signing: BTreeMap<(u64, u32), LocalSigning>,
}

impl Saved {
    pub(super) fn wipe(&mut self) {
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

impl LocalDkg {
    pub(super) fn received(&self, suite: DkgSuite) -> &BTreeMap<MemberId, Vec<u8>> {
        match suite {
            DkgSuite::Ristretto255 => &self.received_r,
            DkgSuite::Ed25519 => &self.received_e,
        }
    }

    pub(super) fn received_mut(&mut self, suite: DkgSuite) -> &mut BTreeMap<MemberId, Vec<u8>> {
        match suite {
            DkgSuite::Ristretto255 => &mut self.received_r,
            DkgSuite::Ed25519 => &mut self.received_e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::{Agent, Fault};
    use crate::ledger::{decode, encode};

    /// The encoding of [`sample`], recorded before the agent was split into modules: nodes
    /// persist it, so it must never change.
    const GOLDEN: &str = concat!(
        "02ac0202010102020201030101030303030303030303030303030303030303030303030303030303",
        "03030303030204050106010707070707070707070707070707070707070707070707070707070707",
        "0707070108010909090909090909090909090909090909090909090909090909090909090909020a",
        "0b02000e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e00010c0c0c",
        "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c010dad0200000000000000",
        "000205010e010f010101010101010101010101010101010101010101010101010101010101010101",
        "02020202020202020202020202020202020202020202020202020202020202020000000000000000",
        "00000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000006000000020701010110011107020000",
    );

    /// A state with every field set, in both suites.
    fn sample() -> Saved {
        let m = |b: u8| MemberId([b; 32]);
        let mut partial = vec![1u8; 32];
        partial.extend([2u8; 32]);
        partial.extend([0u8; 64]);
        let partial: Partial = decode(&partial).unwrap();
        let dkg = LocalDkg {
            secret_r: vec![1],
            secret_e: vec![2, 2],
            payload: vec![3],
            dealt: Some([(m(3), (vec![4, 5], vec![6]))].into()),
            received_r: [(m(7), vec![8])].into(),
            received_e: [(m(9), vec![10, 11])].into(),
            complaints: [
                ((DkgSuite::Ed25519, m(12)), vec![13]),
                ((DkgSuite::Ristretto255, m(14)), vec![]),
            ]
            .into(),
        };
        let keys = LocalKeys {
            ristretto255: vec![14],
            ed25519: vec![15],
            partial: Some(partial),
        };
        let signing = LocalSigning {
            nonces: Some(vec![16]),
            commitments: vec![17],
        };
        Saved {
            dkgs: [((300, 2), dkg), ((301, 0), LocalDkg::default())].into(),
            keys: [(5, keys), (6, LocalKeys::default())].into(),
            signing: [((7, 1), signing), ((7, 2), LocalSigning::default())].into(),
        }
    }

    #[test]
    fn snapshot_encoding_is_stable() {
        let bytes = encode(&sample());
        assert_eq!(hex::encode(&bytes), GOLDEN);
        let agent = Agent::restore(&bytes, [1; 32], [2; 32], Fault::None).unwrap();
        assert_eq!(*agent.snapshot(), bytes);
    }
}
