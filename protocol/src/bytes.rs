//! The one strict byte reader behind the hand-written decoders (RFC 8554 keys and signatures,
//! DKG envelopes and complaints). Guarantees: it never panics and never reads past the input;
//! every read checks the length first and `Reader::finish` rejects trailing bytes; errors name
//! what was being decoded and how many bytes were needed, present or left over, in the
//! decoder's own error type.

use std::marker::PhantomData;

use thiserror::Error;

/// Why a `Reader` stopped: the input is shorter or longer than the encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ReadError {
    /// Fewer bytes than the encoding requires.
    #[error("input truncated: {what} needs {needed} bytes, only {had} present")]
    Truncated {
        /// What was being decoded.
        what: &'static str,
        /// Bytes required (from the start of the input).
        needed: usize,
        /// Bytes present.
        had: usize,
    },
    /// Bytes left over after a complete encoding.
    #[error("{extra} unexpected trailing bytes after {what}")]
    TrailingBytes {
        /// What was decoded.
        what: &'static str,
        /// Number of surplus bytes.
        extra: usize,
    },
}

/// A bounds-checked reader over a byte slice whose errors are `E` (built from a [`ReadError`]);
/// integers are big-endian unless the method says otherwise.
pub(crate) struct Reader<'a, E> {
    bytes: &'a [u8],
    pos: usize,
    what: &'static str,
    error: PhantomData<fn() -> E>,
}

impl<'a, E: From<ReadError>> Reader<'a, E> {
    /// A reader over `bytes`, which encode a `what` (named in every error).
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader {
            bytes,
            pos: 0,
            what,
            error: PhantomData,
        }
    }

    /// What this reader decodes.
    pub(crate) fn what(&self) -> &'static str {
        self.what
    }

    /// Checks that at least `n` more bytes are present, without consuming them.
    pub(crate) fn need(&self, n: usize) -> Result<(), E> {
        let had = self.bytes.len() - self.pos;
        if had < n {
            return Err(ReadError::Truncated {
                what: self.what,
                needed: self.pos.saturating_add(n),
                had: self.bytes.len(),
            }
            .into());
        }
        Ok(())
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], E> {
        self.need(n)?;
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// The next `L` bytes as an array.
    pub(crate) fn array<const L: usize>(&mut self) -> Result<[u8; L], E> {
        let mut a = [0u8; L];
        a.copy_from_slice(self.take(L)?);
        Ok(a)
    }

    /// One byte.
    pub(crate) fn u8(&mut self) -> Result<u8, E> {
        Ok(self.array::<1>()?[0])
    }

    /// A big-endian `u32`.
    pub(crate) fn u32(&mut self) -> Result<u32, E> {
        Ok(u32::from_be_bytes(self.array::<4>()?))
    }

    /// A little-endian `u32`.
    pub(crate) fn u32_le(&mut self) -> Result<u32, E> {
        Ok(u32::from_le_bytes(self.array::<4>()?))
    }

    /// Succeeds only if every byte was read.
    pub(crate) fn finish(&self) -> Result<(), E> {
        let extra = self.bytes.len() - self.pos;
        if extra != 0 {
            return Err(ReadError::TrailingBytes {
                what: self.what,
                extra,
            }
            .into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_order_and_rejects_short_and_long_input() {
        let bytes = [1u8, 0, 0, 0, 2, 3, 0, 0, 0, 9, 9];
        let mut r = Reader::<ReadError>::new(&bytes, "sample");
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u32(), Ok(2));
        assert_eq!(r.u32_le(), Ok(3));
        assert_eq!(r.what(), "sample");
        assert_eq!(
            r.finish(),
            Err(ReadError::TrailingBytes {
                what: "sample",
                extra: 2
            })
        );
        assert_eq!(r.take(2), Ok(&[9u8, 9][..]));
        assert_eq!(r.finish(), Ok(()));
        assert_eq!(
            r.array::<4>(),
            Err(ReadError::Truncated {
                what: "sample",
                needed: 15,
                had: 11
            })
        );
        // A failed read consumes nothing; a huge length request does not overflow.
        assert_eq!(r.finish(), Ok(()));
        assert!(matches!(
            r.need(usize::MAX),
            Err(ReadError::Truncated { .. })
        ));
    }

    #[test]
    fn errors_name_the_input() {
        let e = Reader::<ReadError>::new(&[0, 1], "LM-OTS signature")
            .u32()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "input truncated: LM-OTS signature needs 4 bytes, only 2 present"
        );
    }
}
