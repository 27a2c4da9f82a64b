//! seedfed's local federation tools: the in-process simulation of the whole key life cycle
//! (`simulate`), and (as the networked node grows) the multi-process local testnet.
#![forbid(unsafe_code)]

pub mod simulate;
