//! The fast LM-OTS hash-chain engine: many Winternitz chains advance side by side, one
//! SHA-256 compression per step, interleaved so the CPU overlaps independent chains.
//! Guarantees: every step is RFC 8554's `tmp = H(I || u32str(q) || u16str(i) || u8str(j) ||
//! tmp)` byte for byte; private values and intermediates stay in the jobs and lane buffers,
//! which are zeroized when a run ends.

use zeroize::Zeroize;

use super::blocks::{Block, IV};
use super::{HashValue, Identifier, ID_LEN};

/// `I || u32str(q)`, the first 20 bytes of every chain block.
pub(super) fn prefix(id: &Identifier, q: u32) -> [u8; 20] {
    let mut p = [0u8; 20];
    p[..ID_LEN].copy_from_slice(id);
    p[ID_LEN..].copy_from_slice(&q.to_be_bytes());
    p
}

/// One hash chain to advance: `steps` applications of
/// `tmp = H(I || u32str(q) || u16str(i) || u8str(j) || tmp)` with `j = j0, j0 + 1, ...`
/// (wrapping, so `j0 = 0xff` makes the first step the Appendix A key derivation from SEED).
#[derive(Clone, Zeroize)]
pub(super) struct ChainJob {
    /// The chain index `i`.
    pub(super) i: u16,
    /// `j` before the first step.
    pub(super) j0: u8,
    /// Steps to take.
    pub(super) steps: u16,
    /// The chain value `tmp`: the start value, replaced by the result.
    pub(super) value: HashValue,
}

/// Chains advanced side by side: independent compressions overlap in the CPU pipeline.
const LANES: usize = 4;
/// Length of a chain-step message: `16 + 4 + 2 + 1 + 32`.
const CHAIN_MSG_LEN: usize = 55;

/// Advances every job; each result replaces `value`. Block buffers are zeroized afterwards.
pub(super) fn run_chains(prefix: &[u8; 20], jobs: &mut [ChainJob]) {
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
