//! SHA-256 over pre-laid 64-byte blocks: the block buffers, padding and digest that the chain
//! engine, `lms`, `sector` and `master` fill in place and hash with `sha2::compress256`.
//!
//! Guarantees: [`digest_blocks`] over a buffer of [`blocks_for`]`(len)` blocks laid out with
//! [`lay_padding`] and the message written by [`put`] is exactly SHA-256 of that message.

use sha2::digest::consts::U64;
use sha2::digest::generic_array::GenericArray;

use super::{HashValue, N};

pub(crate) type Block = GenericArray<u8, U64>;

pub(super) const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// Number of 64-byte blocks of a padded message of `len` bytes.
pub(crate) const fn blocks_for(len: usize) -> usize {
    (len + 9).div_ceil(64)
}

/// Writes SHA-256 padding for a `len`-byte message into `blocks` (which must hold exactly
/// `blocks_for(len)` blocks; bytes past `len` are overwritten).
pub(crate) fn lay_padding(blocks: &mut [Block], len: usize) {
    let total = blocks.len() * 64;
    put_zero_from(blocks, len, total);
    put(blocks, len, &[0x80]);
    put(blocks, total - 8, &((len as u64) * 8).to_be_bytes());
}

fn put_zero_from(blocks: &mut [Block], from: usize, to: usize) {
    for pos in from..to {
        blocks[pos / 64][pos % 64] = 0;
    }
}

/// Copies `data` into the block buffer at byte offset `off` (may cross block boundaries).
pub(crate) fn put(blocks: &mut [Block], off: usize, data: &[u8]) {
    let mut off = off;
    let mut data = data;
    while !data.is_empty() {
        let b = off / 64;
        let o = off % 64;
        let n = data.len().min(64 - o);
        blocks[b][o..o + n].copy_from_slice(&data[..n]);
        data = &data[n..];
        off += n;
    }
}

/// SHA-256 of pre-padded blocks.
pub(crate) fn digest_blocks(blocks: &[Block]) -> HashValue {
    let mut st = IV;
    sha2::compress256(&mut st, blocks);
    state_bytes(&st)
}

#[inline(always)]
fn state_bytes(st: &[u32; 8]) -> HashValue {
    let mut out = [0u8; N];
    for (chunk, w) in out.chunks_exact_mut(4).zip(st) {
        chunk.copy_from_slice(&w.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    #[test]
    fn block_engine_matches_sha256() {
        for len in [0usize, 1, 54, 55, 56, 63, 64, 119, 120, 2166] {
            let msg: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut blocks = vec![Block::default(); blocks_for(len)];
            lay_padding(&mut blocks, len);
            put(&mut blocks, 0, &msg);
            let want: [u8; 32] = Sha256::digest(&msg).into();
            assert_eq!(digest_blocks(&blocks), want, "len {len}");
        }
    }
}
