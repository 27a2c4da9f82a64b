//! The node's integration tests, one module per area, in one test binary: each used to be its
//! own binary, compiling the shared helpers again and linking the whole node again (about a
//! dozen links of a 100 MB library per build). nextest still runs every test in its own
//! process. `store_crash` stays apart: it is its own `main` (it re-runs itself as a writer).

mod common;

mod api_access;
mod api_tx;
mod chain;
mod cli;
mod keygen;
mod multiprocess;
mod network_admission;
mod operator;
mod sign;
mod status_page;
mod store_conformance;
mod verify;
