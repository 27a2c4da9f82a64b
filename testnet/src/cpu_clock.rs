//! The benchmarks' CPU clock: nanoseconds the calling thread has spent on a CPU
//! (`CLOCK_THREAD_CPUTIME_ID`). The machine the benches run on is shared with other jobs, so a
//! single-threaded figure is taken per second of this thread's CPU time rather than of wall
//! time: time spent waiting for a core, or sleeping, does not count.

use nix::time::{clock_gettime, ClockId};

/// Nanoseconds this thread has spent on a CPU, if the clock is available.
pub fn thread_cpu_ns() -> Option<u64> {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).ok()?;
    let secs = u64::try_from(t.tv_sec()).ok()?;
    let nanos = u64::try_from(t.tv_nsec()).ok()?;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::digest::generic_array::GenericArray;
    use std::hint::black_box;

    #[test]
    fn thread_cpu_clock_advances_with_work_only() {
        let start = thread_cpu_ns().expect("CLOCK_THREAD_CPUTIME_ID is available on Linux");
        // Sleeping costs no CPU time of this thread ...
        std::thread::sleep(std::time::Duration::from_millis(50));
        let slept = thread_cpu_ns().expect("clock");
        assert!(
            slept - start < 40_000_000,
            "sleeping counted {} ns",
            slept - start
        );
        // ... and work does.
        let mut state = [0u32; 8];
        let block = GenericArray::default();
        for _ in 0..200_000 {
            sha2::compress256(&mut state, std::slice::from_ref(&block));
        }
        black_box(state);
        assert!(thread_cpu_ns().expect("clock") > slept);
    }
}
