//! The bodies of seedfed's fuzz targets: one function per decoder reachable from the network
//! or from disk, and a few that drive arbitrary message sequences into the sans-IO state
//! machines. Each `fuzz_targets/<name>.rs` calls the function of the same name here, so the
//! seed generator (`src/bin/seeds.rs`) and the targets share one list.
//!
//! What every decoder target checks: decoding arbitrary bytes never panics, and whatever
//! decodes re-encodes to bytes that decode to the same value (compared through the canonical
//! encoding). Where a module promises that its encoding is canonical (`ledger::encode`, the
//! hand-written LMS, DKG and checkpoint codecs), the re-encoding must equal the input.
//! A failed check panics, which libFuzzer reports as a crash with the input saved.

pub mod decoders;
pub mod machines;
pub mod seeds;

/// Every target: its name (the `fuzz_targets/<name>.rs` file and the corpus directory) and
/// its body.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("consensus_message", decoders::consensus_message),
    ("block", decoders::block),
    ("signed_tx", decoders::signed_tx),
    ("tx_payload", decoders::tx_payload),
    ("chain_rpc", decoders::chain_rpc),
    ("wal_entry", decoders::wal_entry),
    ("ledger_state", decoders::ledger_state),
    ("signed_checkpoint", decoders::signed_checkpoint),
    ("api_body", decoders::api_body),
    ("direct", decoders::direct),
    ("agent_snapshot", decoders::agent_snapshot),
    ("dkg_codec", decoders::dkg_codec),
    ("repair_message", decoders::repair_message),
    ("lms_codec", decoders::lms_codec),
    ("light_client", decoders::light_client),
    ("admission", decoders::admission),
    ("at_rest", decoders::at_rest),
    ("keystore_file", decoders::keystore_file),
    ("config_file", decoders::config_file),
    ("genesis_file", decoders::genesis_file),
    ("peers_file", decoders::peers_file),
    ("sm_ledger", machines::ledger),
    ("sm_consensus", machines::consensus),
    ("sm_dkg", machines::dkg),
    ("sm_agent", machines::agent),
];

/// The body of target `name`.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}
