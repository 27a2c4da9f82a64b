//! `seedfed-node`: the networked seedfed node as a library (the `seedfed` binary is its CLI).
//!
//! `store` is the durable key-value store every acknowledgement depends on.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod store;
