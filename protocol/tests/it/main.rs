//! The protocol crate's integration tests, one module per area, in one test binary (each used
//! to be its own binary, compiling the shared helpers and linking the crate again).

mod common;

mod audit;
mod consensus_sim;
mod epoch_cycle;
mod hbs_lms_interop;
mod keygen;
mod lms_properties;
mod rfc8554_vectors;
mod sharing_flow;
mod sign;
