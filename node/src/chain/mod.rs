//! The chain: the sans-IO consensus and epoch agent of `seedfed-protocol` driven on the real
//! network, the node's store and tokio timers, behind a mempool with size, author and byte
//! bounds. Guarantees: nothing that depends on a write leaves the node before the write is
//! fsynced, and every fsync runs on the storage thread, never on an async worker; gossip is
//! checked before it is forwarded; one author's transactions cannot stall the others'.

pub mod accounts;
pub mod activity;
mod agent;
mod block_server;
mod direct;
mod driver;
pub mod latency;
pub mod mempool;
pub mod metrics;
mod milestones;
mod outbox;
mod outputs;
mod own_txs;
pub mod round_report;
pub mod signing;
mod status;
pub mod storage;
mod storage_thread;
mod sync;
#[cfg(test)]
pub(crate) mod test_genesis;
mod timers;
mod trees;
mod vote_exchange;
pub mod wire;

pub use accounts::{AccountInfo, AccountQuery, TxQuery, TxState};
pub use driver::{
    spawn, ChainConfig, ChainError, ChainParts, ChainTask, CheckpointsQuery, Submission,
    TxSubmission, SUBMIT_QUEUE,
};
pub use latency::CommitSample;
pub use mempool::{
    Mempool, MempoolLimits, TxRejected, BLOCK_TX_BYTES, MAX_NONCE_AHEAD, MAX_POOL_BYTES,
    MAX_POOL_TXS,
};
pub use metrics::{ChainMetrics, DkgPhase};
pub use round_report::{ConsensusInfo, TimerInfo};
pub use signing::{
    BlameSubmission, BundleQuery, PublishSubmission, SignOutcome, SignRefused, SignSubmission,
};
pub use status::{
    light_walk, unix_ms, AgentInfo, ChainStatus, CheckpointInfo, ConvictionInfo, DkgProgress,
    DkgStatus, EvictionInfo, Exclusion, KeyInfo, KeySummary, LightWalkError, SectorInfo,
    ValidatorInfo,
};
pub use wire::{member_of, peer_of, GossipView};
