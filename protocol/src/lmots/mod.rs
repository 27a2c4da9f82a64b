//! LM-OTS one-time signatures (RFC 8554 section 4) with the SHA-256, N = 32 parameter sets.
//!
//! Each one-time key is identified by the tree identifier `I`, its leaf index `q`, and owns its
//! own 32-byte [`LeafSeed`]; the private values are derived as in RFC 8554 Appendix A,
//! `x_q[i] = H(I || u32str(q) || u16str(i) || u8str(0xff) || SEED)`, so a leaf seed is the only
//! secret a holder keeps. Keys computed here are byte-for-byte the RFC's, so any RFC 8554
//! verifier accepts our signatures. The hot path feeds pre-laid 64-byte blocks to
//! `sha2::compress256` (every chain step is exactly one compression) and interleaves independent
//! chains so the CPU overlaps them. Decoders are strict: exact lengths, known type codes.

use sha2::digest::consts::U64;
use sha2::digest::generic_array::GenericArray;
use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Hash output length `n` (bytes) of every parameter set here.
pub const N: usize = 32;
/// Length of the tree identifier `I`.
pub const ID_LEN: usize = 16;
/// The tree identifier `I` (RFC 8554 section 5.1).
pub type Identifier = [u8; ID_LEN];
/// A 32-byte hash value (a public key `K`, a tree node, a chain value).
pub type HashValue = [u8; N];

pub(crate) const D_PBLC: u16 = 0x8080;
pub(crate) const D_MESG: u16 = 0x8181;

/// A failure to decode an RFC 8554 / HSS byte encoding.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Fewer bytes than the encoding requires.
    #[error("input truncated: {what} needs {needed} bytes, only {had} present")]
    Truncated {
        /// What was being decoded.
        what: &'static str,
        /// Bytes required.
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
    /// An LM-OTS type code that is not one of the SHA-256/N32 sets.
    #[error("unknown or unsupported LM-OTS type code {0:#010x}")]
    UnknownLmotsType(u32),
    /// An LMS type code that is not one of the SHA-256/M32 sets.
    #[error("unknown or unsupported LMS type code {0:#010x}")]
    UnknownLmsType(u32),
    /// The leaf index does not exist in a tree of this height.
    #[error("leaf index {q} out of range for a tree of height {height}")]
    LeafOutOfRange {
        /// The leaf index found.
        q: u32,
        /// The tree height.
        height: u32,
    },
    /// An HSS level count outside what the decoder accepts.
    #[error("HSS level count {found} not accepted (allowed {min}..={max})")]
    UnsupportedLevels {
        /// Level count found.
        found: u32,
        /// Smallest accepted.
        min: u32,
        /// Largest accepted.
        max: u32,
    },
    /// An HSS signature whose signed-public-key count does not match the key's levels.
    #[error("HSS signature carries {found} signed public keys, expected {expected}")]
    WrongSignedKeyCount {
        /// Count found.
        found: u32,
        /// Count expected (levels - 1).
        expected: u32,
    },
}

/// The LM-OTS parameter sets with SHA-256 and n = 32 (RFC 8554 section 4.1, table in 8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LmotsType {
    /// `LMOTS_SHA256_N32_W1`, type code 1.
    W1,
    /// `LMOTS_SHA256_N32_W2`, type code 2.
    W2,
    /// `LMOTS_SHA256_N32_W4`, type code 3.
    W4,
    /// `LMOTS_SHA256_N32_W8`, type code 4.
    W8,
}

impl LmotsType {
    /// All supported sets.
    pub const ALL: [LmotsType; 4] = [LmotsType::W1, LmotsType::W2, LmotsType::W4, LmotsType::W8];

    /// The RFC 8554 type code.
    pub const fn typecode(self) -> u32 {
        match self {
            LmotsType::W1 => 1,
            LmotsType::W2 => 2,
            LmotsType::W4 => 3,
            LmotsType::W8 => 4,
        }
    }

    /// Parses a type code.
    pub fn from_typecode(code: u32) -> Result<Self, DecodeError> {
        match code {
            1 => Ok(LmotsType::W1),
            2 => Ok(LmotsType::W2),
            3 => Ok(LmotsType::W4),
            4 => Ok(LmotsType::W8),
            other => Err(DecodeError::UnknownLmotsType(other)),
        }
    }

    /// Winternitz parameter `w` (bits per digit).
    pub const fn w(self) -> u32 {
        match self {
            LmotsType::W1 => 1,
            LmotsType::W2 => 2,
            LmotsType::W4 => 4,
            LmotsType::W8 => 8,
        }
    }

    /// Number of hash chains `p`.
    pub const fn p(self) -> usize {
        match self {
            LmotsType::W1 => 265,
            LmotsType::W2 => 133,
            LmotsType::W4 => 67,
            LmotsType::W8 => 34,
        }
    }

    /// Left shift `ls` of the checksum.
    pub const fn ls(self) -> u32 {
        match self {
            LmotsType::W1 => 7,
            LmotsType::W2 => 6,
            LmotsType::W4 => 4,
            LmotsType::W8 => 0,
        }
    }

    /// Largest digit value, `2^w - 1` (the chain length).
    pub const fn max_digit(self) -> u32 {
        (1 << self.w()) - 1
    }

    /// Length of an encoded LM-OTS signature: `4 + n * (p + 1)`.
    pub const fn signature_len(self) -> usize {
        4 + N * (self.p() + 1)
    }

    /// SHA-256 compressions to compute one leaf public key `K`: `p` key derivations, `p`
    /// chains of `2^w - 1` steps, and the blocks of `H(I || q || D_PBLC || y[0..p])`.
    pub const fn keygen_compressions(self) -> u64 {
        let p = self.p() as u64;
        p + p * self.max_digit() as u64 + blocks_for(22 + N * self.p()) as u64
    }
}

/// A leaf's 32-byte secret seed (RFC 8554 Appendix A `SEED`); zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct LeafSeed([u8; N]);

impl LeafSeed {
    /// Wraps seed bytes (the caller should erase its own copy).
    pub fn from_bytes(bytes: [u8; N]) -> Self {
        LeafSeed(bytes)
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8; N] {
        &self.0
    }
}

impl std::fmt::Debug for LeafSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LeafSeed([redacted])")
    }
}

/// An LM-OTS public key (RFC 8554 section 4.3): type, `I`, `q`, `K`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LmotsPublicKey {
    /// Parameter set.
    pub ots_type: LmotsType,
    /// Tree identifier.
    pub id: Identifier,
    /// Leaf index.
    pub q: u32,
    /// The public key hash `K`.
    pub k: HashValue,
}

impl LmotsPublicKey {
    /// Encoded length.
    pub const LEN: usize = 4 + ID_LEN + 4 + N;

    /// `u32str(type) || I || u32str(q) || K`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.extend_from_slice(&self.ots_type.typecode().to_be_bytes());
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&self.q.to_be_bytes());
        out.extend_from_slice(&self.k);
        out
    }

    /// Strict decode of [`encode`](Self::encode).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "LM-OTS public key");
        let ots_type = LmotsType::from_typecode(r.u32()?)?;
        let id = r.array::<ID_LEN>()?;
        let q = r.u32()?;
        let k = r.array::<N>()?;
        r.finish()?;
        Ok(LmotsPublicKey { ots_type, id, q, k })
    }
}

/// An LM-OTS signature (RFC 8554 section 4.5): type, randomizer `C`, `p` chain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LmotsSignature {
    /// Parameter set.
    pub ots_type: LmotsType,
    /// The randomizer `C`.
    pub c: HashValue,
    /// The `p` chain values `y[i]`.
    pub y: Vec<HashValue>,
}

impl LmotsSignature {
    /// `u32str(type) || C || y[0] || ... || y[p-1]`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.ots_type.signature_len());
        self.encode_into(&mut out);
        out
    }

    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ots_type.typecode().to_be_bytes());
        out.extend_from_slice(&self.c);
        for y in &self.y {
            out.extend_from_slice(y);
        }
    }

    /// Strict decode: known type code and exactly `4 + 32 (p + 1)` bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "LM-OTS signature");
        let sig = Self::read(&mut r)?;
        r.finish()?;
        Ok(sig)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let ots_type = LmotsType::from_typecode(r.u32()?)?;
        r.need(N * (ots_type.p() + 1))?;
        let c = r.array::<N>()?;
        let mut y = Vec::with_capacity(ots_type.p());
        for _ in 0..ots_type.p() {
            y.push(r.array::<N>()?);
        }
        Ok(LmotsSignature { ots_type, c, y })
    }
}

/// The randomizer `C` seedfed uses: `C = SHA-256(I || u32str(q) || u16str(0xfffd) ||
/// u8str(0xff) || SEED || "seedfed-lmots-C" || message)`.
///
/// It is deterministic (every party that reconstructs the leaf seed computes the same
/// signature), unpredictable without the seed, bound to the message, and domain-separated from
/// the `x_q[i]` derivation (which uses `i < p <= 265` where this uses `0xfffd`, the value the
/// RFC 8554 reference implementation reserves for its randomizer seed).
pub fn derive_randomizer(id: &Identifier, q: u32, seed: &LeafSeed, message: &[u8]) -> HashValue {
    let mut h = Sha256::new();
    h.update(id);
    h.update(q.to_be_bytes());
    h.update(0xfffdu16.to_be_bytes());
    h.update([0xff]);
    h.update(seed.expose());
    h.update(b"seedfed-lmots-C");
    h.update(message);
    h.finalize().into()
}

/// Computes the leaf's LM-OTS public key hash `K` from `(I, q, SEED)`.
pub fn leaf_public_key(ots_type: LmotsType, id: &Identifier, q: u32, seed: &LeafSeed) -> HashValue {
    KeygenScratch::new(ots_type, id).leaf_k(q, seed)
}

/// Signs `message` with leaf `q`, using the deterministic randomizer [`derive_randomizer`].
pub fn sign(
    ots_type: LmotsType,
    id: &Identifier,
    q: u32,
    seed: &LeafSeed,
    message: &[u8],
) -> LmotsSignature {
    let c = derive_randomizer(id, q, seed, message);
    sign_with_randomizer(ots_type, id, q, seed, &c, message)
}

/// Signs `message` with leaf `q` and a caller-chosen randomizer `C` (which must be
/// unpredictable to anyone who does not hold the seed).
pub fn sign_with_randomizer(
    ots_type: LmotsType,
    id: &Identifier,
    q: u32,
    seed: &LeafSeed,
    c: &HashValue,
    message: &[u8],
) -> LmotsSignature {
    let digits = message_digits(ots_type, id, q, c, message);
    let mut jobs: Vec<ChainJob> = digits
        .iter()
        .enumerate()
        .map(|(i, &a)| ChainJob {
            i: i as u16,
            j0: 0xff,
            steps: 1 + u16::from(a),
            value: *seed.expose(),
        })
        .collect();
    run_chains(&prefix(id, q), &mut jobs);
    let y = jobs.iter().map(|j| j.value).collect();
    jobs.zeroize();
    LmotsSignature { ots_type, c: *c, y }
}

/// RFC 8554 Algorithm 4b: the candidate public key hash `Kc` for `signature` on `message`
/// under `(I, q)`. Returns `None` if the signature's type differs from `expected`.
pub fn candidate_public_key(
    expected: LmotsType,
    id: &Identifier,
    q: u32,
    signature: &LmotsSignature,
    message: &[u8],
) -> Option<HashValue> {
    if signature.ots_type != expected || signature.y.len() != expected.p() {
        return None;
    }
    let digits = message_digits(expected, id, q, &signature.c, message);
    let max = expected.max_digit() as u16;
    let mut jobs: Vec<ChainJob> = digits
        .iter()
        .zip(&signature.y)
        .enumerate()
        .map(|(i, (&a, y))| ChainJob {
            i: i as u16,
            j0: a,
            steps: max - u16::from(a),
            value: *y,
        })
        .collect();
    let pre = prefix(id, q);
    run_chains(&pre, &mut jobs);
    let mut kbuf = KBuffer::new(expected, id);
    kbuf.set_q(q);
    for (i, job) in jobs.iter().enumerate() {
        kbuf.set_y(i, &job.value);
    }
    Some(kbuf.digest())
}

/// Verifies an LM-OTS signature against a full LM-OTS public key.
pub fn verify(public_key: &LmotsPublicKey, signature: &LmotsSignature, message: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    match candidate_public_key(
        public_key.ots_type,
        &public_key.id,
        public_key.q,
        signature,
        message,
    ) {
        Some(kc) => bool::from(kc.ct_eq(&public_key.k)),
        None => false,
    }
}

/// `Q || Cksm(Q)` split into `p` digits of `w` bits, `Q = H(I || q || D_MESG || C || message)`.
fn message_digits(
    ots_type: LmotsType,
    id: &Identifier,
    q: u32,
    c: &HashValue,
    message: &[u8],
) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(id);
    h.update(q.to_be_bytes());
    h.update(D_MESG.to_be_bytes());
    h.update(c);
    h.update(message);
    let qhash: [u8; N] = h.finalize().into();
    let w = ots_type.w();
    let digits_in_q = (N * 8) as u32 / w;
    let mut sum: u32 = 0;
    for i in 0..digits_in_q {
        sum += ots_type.max_digit() - u32::from(coef(&qhash, i, w));
    }
    let cksm = ((sum << ots_type.ls()) as u16).to_be_bytes();
    let mut buf = [0u8; N + 2];
    buf[..N].copy_from_slice(&qhash);
    buf[N..].copy_from_slice(&cksm);
    (0..ots_type.p() as u32).map(|i| coef(&buf, i, w)).collect()
}

/// RFC 8554 `coef(S, i, w)`.
fn coef(s: &[u8], i: u32, w: u32) -> u8 {
    let per_byte = 8 / w;
    let byte = s[(i / per_byte) as usize];
    let shift = 8 - (w * (i % per_byte) + w);
    ((u32::from(byte) >> shift) & ((1 << w) - 1)) as u8
}

// ---------------------------------------------------------------------------------------------
// The SHA-256 block engine shared with `lms`, `sector` and `master`.

pub(crate) type Block = GenericArray<u8, U64>;

const IV: [u32; 8] = [
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

/// `I || u32str(q)`, the first 20 bytes of every chain block.
fn prefix(id: &Identifier, q: u32) -> [u8; 20] {
    let mut p = [0u8; 20];
    p[..ID_LEN].copy_from_slice(id);
    p[ID_LEN..].copy_from_slice(&q.to_be_bytes());
    p
}

/// One hash chain to advance: `steps` applications of
/// `tmp = H(I || u32str(q) || u16str(i) || u8str(j) || tmp)` with `j = j0, j0 + 1, ...`
/// (wrapping, so `j0 = 0xff` makes the first step the Appendix A key derivation from SEED).
#[derive(Clone, Zeroize)]
struct ChainJob {
    i: u16,
    j0: u8,
    steps: u16,
    value: HashValue,
}

/// Chains advanced side by side: independent compressions overlap in the CPU pipeline.
const LANES: usize = 4;
/// Length of a chain-step message: `16 + 4 + 2 + 1 + 32`.
const CHAIN_MSG_LEN: usize = 55;

/// Advances every job; each result replaces `value`. Block buffers are zeroized afterwards.
fn run_chains(prefix: &[u8; 20], jobs: &mut [ChainJob]) {
    let mut blocks = [Block::default(); LANES];
    for b in blocks.iter_mut() {
        b[..20].copy_from_slice(prefix);
        b[CHAIN_MSG_LEN] = 0x80;
        b[62..64].copy_from_slice(&((CHAIN_MSG_LEN as u16) * 8).to_be_bytes());
    }
    let uniform = jobs.windows(2).all(|w| w[0].steps == w[1].steps);
    if uniform {
        run_uniform(&mut blocks, jobs);
    } else {
        run_scheduled(&mut blocks, jobs);
    }
    for b in blocks.iter_mut() {
        b.as_mut_slice().zeroize();
    }
}

fn load_lane(b: &mut Block, job: &ChainJob) {
    b[20..22].copy_from_slice(&job.i.to_be_bytes());
    b[22] = job.j0;
    b[23..55].copy_from_slice(&job.value);
}

/// Key generation: every chain has the same length; lanes advance in lock step.
fn run_uniform(blocks: &mut [Block; LANES], jobs: &mut [ChainJob]) {
    for group in jobs.chunks_mut(LANES) {
        let mut j = [0u8; LANES];
        for ((b, job), jl) in blocks.iter_mut().zip(group.iter()).zip(j.iter_mut()) {
            load_lane(b, job);
            *jl = job.j0;
        }
        let lanes = group.len();
        for _ in 0..group[0].steps {
            for (b, jl) in blocks[..lanes].iter_mut().zip(j.iter_mut()) {
                *jl = jl.wrapping_add(1);
                step(b, *jl);
            }
        }
        for (b, job) in blocks.iter().zip(group.iter_mut()) {
            job.value.copy_from_slice(&b[23..55]);
        }
    }
}

/// Signing and verification: chains of different lengths; a lane that finishes takes the
/// next pending chain, so all lanes stay busy until the tail.
fn run_scheduled(blocks: &mut [Block; LANES], jobs: &mut [ChainJob]) {
    const IDLE: usize = usize::MAX;
    let mut lane_job = [IDLE; LANES];
    let mut lane_step = [0u16; LANES];
    let mut next = 0usize;
    let mut active = 0usize;
    let mut fill = |lane: usize,
                    b: &mut Block,
                    lane_job: &mut [usize; LANES],
                    jobs: &[ChainJob],
                    active: &mut usize| {
        while next < jobs.len() && jobs[next].steps == 0 {
            next += 1;
        }
        if next < jobs.len() {
            load_lane(b, &jobs[next]);
            lane_job[lane] = next;
            *active += 1;
            next += 1;
        } else {
            lane_job[lane] = IDLE;
        }
    };
    for (lane, b) in blocks.iter_mut().enumerate() {
        fill(lane, b, &mut lane_job, jobs, &mut active);
    }
    while active > 0 {
        for (lane, b) in blocks.iter_mut().enumerate() {
            let ji = lane_job[lane];
            if ji == IDLE {
                continue;
            }
            let job = &jobs[ji];
            lane_step[lane] += 1;
            step(b, job.j0.wrapping_add(lane_step[lane] as u8));
            if lane_step[lane] == job.steps {
                jobs[ji].value.copy_from_slice(&b[23..55]);
                lane_step[lane] = 0;
                active -= 1;
                fill(lane, b, &mut lane_job, jobs, &mut active);
            }
        }
    }
}

/// One chain step on a lane whose block already holds `j` and `tmp`: compresses, then
/// writes `next_j` and the new `tmp` into the block for the following step. (Writing `j`
/// after the compression rather than before it keeps the byte store off the critical path:
/// measured about 40% faster on the development machine.)
#[inline(always)]
fn step(b: &mut Block, next_j: u8) {
    let mut st = IV;
    sha2::compress256(&mut st, std::slice::from_ref(b));
    b[22] = next_j;
    for (k, w) in st.iter().enumerate() {
        b[23 + 4 * k..27 + 4 * k].copy_from_slice(&w.to_be_bytes());
    }
}

/// The pre-padded buffer of `I || u32str(q) || u16str(D_PBLC) || y[0] || ... || y[p-1]`.
struct KBuffer {
    blocks: Vec<Block>,
}

impl KBuffer {
    fn new(ots_type: LmotsType, id: &Identifier) -> Self {
        let len = 22 + N * ots_type.p();
        let mut blocks = vec![Block::default(); blocks_for(len)];
        lay_padding(&mut blocks, len);
        put(&mut blocks, 0, id);
        put(&mut blocks, 20, &D_PBLC.to_be_bytes());
        KBuffer { blocks }
    }

    fn set_q(&mut self, q: u32) {
        put(&mut self.blocks, ID_LEN, &q.to_be_bytes());
    }

    fn set_y(&mut self, i: usize, y: &HashValue) {
        put(&mut self.blocks, 22 + N * i, y);
    }

    fn digest(&self) -> HashValue {
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

/// A bounds-checked big-endian reader for strict decoders.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader {
            bytes,
            pos: 0,
            what,
        }
    }

    pub(crate) fn need(&self, n: usize) -> Result<(), DecodeError> {
        let had = self.bytes.len() - self.pos;
        if had < n {
            return Err(DecodeError::Truncated {
                what: self.what,
                needed: self.pos + n,
                had: self.bytes.len(),
            });
        }
        Ok(())
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        self.need(n)?;
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn array<const L: usize>(&mut self) -> Result<[u8; L], DecodeError> {
        let mut a = [0u8; L];
        a.copy_from_slice(self.take(L)?);
        Ok(a)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array::<4>()?))
    }

    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        let extra = self.bytes.len() - self.pos;
        if extra != 0 {
            return Err(DecodeError::TrailingBytes {
                what: self.what,
                extra,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_sets_match_rfc_table() {
        // RFC 8554 section 4.1 table / Appendix B: (w, p, ls, sig len).
        let expect = [
            (LmotsType::W1, 1, 265, 7, 8516),
            (LmotsType::W2, 2, 133, 6, 4292),
            (LmotsType::W4, 4, 67, 4, 2180),
            (LmotsType::W8, 8, 34, 0, 1124),
        ];
        for (t, w, p, ls, len) in expect {
            assert_eq!((t.w(), t.p(), t.ls(), t.signature_len()), (w, p, ls, len));
            assert_eq!(LmotsType::from_typecode(t.typecode()), Ok(t));
        }
        assert_eq!(
            LmotsType::from_typecode(5),
            Err(DecodeError::UnknownLmotsType(5))
        );
    }

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

    #[test]
    fn sign_verify_each_set() {
        let id = [1u8; 16];
        let seed = LeafSeed::from_bytes([2u8; 32]);
        for t in LmotsType::ALL {
            let pk = LmotsPublicKey {
                ots_type: t,
                id,
                q: 3,
                k: leaf_public_key(t, &id, 3, &seed),
            };
            let sig = sign(t, &id, 3, &seed, b"hello");
            assert!(verify(&pk, &sig, b"hello"));
            assert!(!verify(&pk, &sig, b"hellp"));
            let dec = LmotsSignature::decode(&sig.encode()).unwrap();
            assert_eq!(dec, sig);
            assert_eq!(LmotsPublicKey::decode(&pk.encode()).unwrap(), pk);
        }
    }

    #[test]
    fn seed_debug_is_redacted() {
        let s = LeafSeed::from_bytes([0xab; 32]);
        let d = format!("{s:?}");
        assert!(d.contains("[redacted]") && !d.contains("ab") && !d.contains("171"));
    }

    #[test]
    fn coef_matches_rfc_example() {
        // RFC 8554 section 3.1.3: S = 0x1234.
        let s = [0x12, 0x34];
        assert_eq!(coef(&s, 7, 1), 0);
        assert_eq!(coef(&s, 0, 4), 1);
        assert_eq!(coef(&s, 3, 4), 4);
        assert_eq!(coef(&s, 1, 8), 0x34);
    }
}
