//! The byte encodings of DKG [`Envelope`]s and [`Complaint`]s, point to point and on the
//! ledger. Guarantees: decoders are strict (known tags, ciphertext length in range, no trailing
//! bytes), never panic, and are canonical: whatever decodes re-encodes to the same bytes. A
//! malformed input is `DkgError::Decode` naming what was being decoded.

use super::ceremony::Envelope;
use super::complaint::{BadShareProof, Complaint};
use super::error::DkgError;
use crate::bytes::ReadError;
use crate::member::MemberId;
use crate::seal::{self, Sealed};

/// The strict reader, failing with `DkgError::Decode`.
type Reader<'a> = crate::bytes::Reader<'a, DkgError>;

impl From<ReadError> for DkgError {
    fn from(e: ReadError) -> Self {
        let (ReadError::Truncated { what, .. } | ReadError::TrailingBytes { what, .. }) = e;
        DkgError::Decode { what }
    }
}

/// A well-formed read of a field whose value is not allowed.
fn malformed(r: &Reader<'_>) -> DkgError {
    DkgError::Decode { what: r.what() }
}

impl Envelope {
    /// Encoded length for a ciphertext of `len` bytes.
    fn encoded_len(len: usize) -> usize {
        32 + 32 + 32 + 4 + len + 64
    }

    /// `sender ‖ recipient ‖ ephemeral ‖ u32le(len) ‖ ciphertext ‖ signature`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::encoded_len(self.sealed.ciphertext.len()));
        out.extend_from_slice(self.sender.as_bytes());
        out.extend_from_slice(self.recipient.as_bytes());
        out.extend_from_slice(&self.sealed.ephemeral);
        // Ciphertexts are at most seal::MAX_CIPHERTEXT (16 MiB) < 2^32.
        out.extend_from_slice(&(self.sealed.ciphertext.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.sealed.ciphertext);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Strict decode of [`encode`](Self::encode).
    pub fn decode(bytes: &[u8]) -> Result<Self, DkgError> {
        let mut r = Reader::new(bytes, "envelope");
        let e = Self::read(&mut r)?;
        r.finish()?;
        Ok(e)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DkgError> {
        let sender = MemberId(r.array()?);
        let recipient = MemberId(r.array()?);
        let ephemeral = r.array()?;
        let len = r.u32_le()? as usize;
        if !(16..=seal::MAX_CIPHERTEXT).contains(&len) {
            return Err(malformed(r));
        }
        let ciphertext = r.take(len)?.to_vec();
        let signature = r.array()?;
        Ok(Envelope {
            sender,
            recipient,
            sealed: Sealed {
                ephemeral,
                ciphertext,
            },
            signature,
        })
    }
}

impl Complaint {
    /// `0 ‖ complainer ‖ dealer` (Missing), `1 ‖ envelope ‖ 0` (Bad, invalid ephemeral) or
    /// `1 ‖ envelope ‖ 1 ‖ reveal(96)` (Bad, reveal).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Complaint::Missing { complainer, dealer } => {
                let mut out = vec![0u8];
                out.extend_from_slice(complainer.as_bytes());
                out.extend_from_slice(dealer.as_bytes());
                out
            }
            Complaint::Bad { envelope, evidence } => {
                let mut out = vec![1u8];
                out.extend_from_slice(&envelope.encode());
                match evidence {
                    BadShareProof::InvalidEphemeral => out.push(0),
                    BadShareProof::Reveal(r) => {
                        out.push(1);
                        out.extend_from_slice(&r.to_bytes());
                    }
                }
                out
            }
        }
    }

    /// Strict decode of [`encode`](Self::encode): unknown tags, short input and trailing bytes
    /// are errors.
    pub fn decode(bytes: &[u8]) -> Result<Self, DkgError> {
        let mut r = Reader::new(bytes, "complaint");
        let c = match r.u8()? {
            0 => Complaint::Missing {
                complainer: MemberId(r.array()?),
                dealer: MemberId(r.array()?),
            },
            1 => {
                let envelope = Envelope::read(&mut r)?;
                let evidence = match r.u8()? {
                    0 => BadShareProof::InvalidEphemeral,
                    1 => BadShareProof::Reveal(seal::RevealedSecret::from_bytes(&r.array()?)),
                    _ => return Err(malformed(&r)),
                };
                Complaint::Bad { envelope, evidence }
            }
            _ => return Err(malformed(&r)),
        };
        r.finish()?;
        Ok(c)
    }
}
