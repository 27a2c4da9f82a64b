//! The report of a simulation run: the system public key, the signed messages, the beacon, the
//! caught Byzantine holder and the repair, and the files written to `--out`.
//!
//! Guarantees: `seedfed.pub` holds the HSS-encoded public key, `seedfed.pub.retired` the leaves
//! an audit retired (none: the simulation runs no audit; `seedfed verify --pubkey` wants the
//! file), and `msg-<i>` / `msg-<i>.sig` the messages and their HSS (L=1) signatures, in signing
//! order.

use anyhow::{Context, Result};

use seedfed_protocol::lms::LmsPublicKey;
use seedfed_protocol::member::MemberId;

use super::federation::Sim;

/// What a run produced (also written to `--out`).
#[derive(Debug)]
pub struct SimReport {
    /// The system public key.
    pub public_key: LmsPublicKey,
    /// `(message, HSS L=1 signature)` pairs, in signing order (the last one after the repair).
    pub signatures: Vec<(Vec<u8>, Vec<u8>)>,
    /// The epoch beacon.
    pub beacon: [u8; 32],
    /// The member a Byzantine contribution was attributed to.
    pub caught: Option<MemberId>,
    /// The member whose loss was repaired, and how many leaf shares were re-created.
    pub repaired: (MemberId, usize),
    /// Leaves allocated (each exactly once).
    pub leaves_used: Vec<u32>,
}

impl Sim {
    /// Writes the public key and every signed message with its signature to `--out`.
    pub(super) fn write(&self, report: &SimReport) -> Result<()> {
        let dir = &self.args.out;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("seedfed.pub");
        std::fs::write(&path, report.public_key.encode_hss())
            .with_context(|| format!("writing {}", path.display()))?;
        let retired = dir.join("seedfed.pub.retired");
        std::fs::write(&retired, "").with_context(|| format!("writing {}", retired.display()))?;
        for (i, (message, sig)) in report.signatures.iter().enumerate() {
            let m = dir.join(format!("msg-{i}"));
            std::fs::write(&m, message).with_context(|| format!("writing {}", m.display()))?;
            let s = dir.join(format!("msg-{i}.sig"));
            std::fs::write(&s, sig).with_context(|| format!("writing {}", s.display()))?;
        }
        Ok(())
    }
}
