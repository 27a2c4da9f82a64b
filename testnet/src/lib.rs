//! seedfed's local federation tools: the in-process simulation of the whole key life cycle
//! (`simulate`) and the multi-process local testnet (`up`), which the benchmarks also use.
#![forbid(unsafe_code)]

pub mod bench_json;
pub mod commit_bench;
pub mod cpu_clock;
pub mod dkg_bench;
pub mod fedkeygen_bench;
pub mod flood;
pub mod flood_bench;
pub mod idle_bench;
pub mod ledger_bench;
pub mod memory_bench;
pub mod proc_memory;
pub mod sign_bench;
pub mod simulate;
pub mod up;
