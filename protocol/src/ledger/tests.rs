//! Unit tests of the ledger, one module per concern; the shared fixtures are in [`fixtures`].

mod block;
mod clients;
mod convictions;
mod difficulty;
mod fixtures;
mod genesis;
mod key;
mod members;
mod replicas;
mod sector_window;
mod tx;
