//! LM-OTS key generation: a leaf's public key hash `K` from `(I, q, SEED)`, alone or for many
//! leaves of one tree with reusable buffers.
//!
//! Guarantees: `K` is RFC 8554 Algorithm 1 with the Appendix A private values, byte for byte;
//! the chain values are zeroized when the scratch buffers drop.

use zeroize::Zeroize;

use super::blocks::{blocks_for, digest_blocks, lay_padding, put, Block};
use super::chains::{prefix, run_chains, ChainJob};
use super::keys::LeafSeed;
use super::params::LmotsType;
use super::{HashValue, Identifier, D_PBLC, ID_LEN, N};

/// Computes the leaf's LM-OTS public key hash `K` from `(I, q, SEED)`.
pub fn leaf_public_key(ots_type: LmotsType, id: &Identifier, q: u32, seed: &LeafSeed) -> HashValue {
    KeygenScratch::new(ots_type, id).leaf_k(q, seed)
}

/// The pre-padded buffer of `I || u32str(q) || u16str(D_PBLC) || y[0] || ... || y[p-1]`.
pub(super) struct KBuffer {
    blocks: Vec<Block>,
}

impl KBuffer {
    pub(super) fn new(ots_type: LmotsType, id: &Identifier) -> Self {
        let len = 22 + N * ots_type.p();
        let mut blocks = vec![Block::default(); blocks_for(len)];
        lay_padding(&mut blocks, len);
        put(&mut blocks, 0, id);
        put(&mut blocks, 20, &D_PBLC.to_be_bytes());
        KBuffer { blocks }
    }

    pub(super) fn set_q(&mut self, q: u32) {
        put(&mut self.blocks, ID_LEN, &q.to_be_bytes());
    }

    pub(super) fn set_y(&mut self, i: usize, y: &HashValue) {
        put(&mut self.blocks, 22 + N * i, y);
    }

    pub(super) fn digest(&self) -> HashValue {
        digest_blocks(&self.blocks)
    }
}

/// Reusable buffers for computing many leaf public keys of one tree.
pub(crate) struct KeygenScratch {
    id: Identifier,
    jobs: Vec<ChainJob>,
    kbuf: KBuffer,
}

impl KeygenScratch {
    pub(crate) fn new(ots_type: LmotsType, id: &Identifier) -> Self {
        let jobs = (0..ots_type.p())
            .map(|i| ChainJob {
                i: i as u16,
                j0: 0xff,
                steps: 1 + ots_type.max_digit() as u16,
                value: [0; N],
            })
            .collect();
        KeygenScratch {
            id: *id,
            jobs,
            kbuf: KBuffer::new(ots_type, id),
        }
    }

    /// `K` of leaf `q` with seed `seed`.
    pub(crate) fn leaf_k(&mut self, q: u32, seed: &LeafSeed) -> HashValue {
        for job in self.jobs.iter_mut() {
            job.value = *seed.expose();
        }
        run_chains(&prefix(&self.id, q), &mut self.jobs);
        self.kbuf.set_q(q);
        for (i, job) in self.jobs.iter_mut().enumerate() {
            self.kbuf.set_y(i, &job.value);
        }
        self.kbuf.digest()
    }
}

impl Drop for KeygenScratch {
    fn drop(&mut self) {
        self.jobs.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    /// The chain engine against a plain Digest-API transcription of RFC 8554 Algorithm 1.
    #[test]
    fn fast_keygen_matches_plain_rfc_formula() {
        let id = [7u8; 16];
        let seed = LeafSeed::from_bytes([9u8; 32]);
        for t in LmotsType::ALL {
            let q: u32 = 5;
            let mut k = Sha256::new();
            k.update(id);
            k.update(q.to_be_bytes());
            k.update(D_PBLC.to_be_bytes());
            for i in 0..t.p() as u16 {
                let mut tmp: [u8; 32] = Sha256::new()
                    .chain_update(id)
                    .chain_update(q.to_be_bytes())
                    .chain_update(i.to_be_bytes())
                    .chain_update([0xff])
                    .chain_update(seed.expose())
                    .finalize()
                    .into();
                for j in 0..t.max_digit() {
                    tmp = Sha256::new()
                        .chain_update(id)
                        .chain_update(q.to_be_bytes())
                        .chain_update(i.to_be_bytes())
                        .chain_update([j as u8])
                        .chain_update(tmp)
                        .finalize()
                        .into();
                }
                k.update(tmp);
            }
            let want: [u8; 32] = k.finalize().into();
            assert_eq!(leaf_public_key(t, &id, q, &seed), want, "{t:?}");
        }
    }
}
