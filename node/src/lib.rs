//! seedfed node library: networking, keystore, configuration, the durable store, the local API
//! and the operator CLI's building blocks. The `seedfed` binary and `seedfed-bootstrap` are thin
//! shells over it. `store` is the durable key-value store every acknowledgement depends on.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod api;
pub mod at_rest;
pub mod chain;
pub mod cli;
pub mod config;
pub mod fsutil;
pub mod genesis;
pub mod keystore;
pub mod logging;
pub mod network;
pub mod node;
pub mod own_proof;
pub mod progress;
pub mod store;
