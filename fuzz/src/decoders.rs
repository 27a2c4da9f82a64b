//! Decoder targets: every byte string a peer, a client, a served light-client response or a
//! file on disk can hand a decoder. Decoding must not panic; what decodes must round-trip.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde::{de::DeserializeOwned, Serialize};

use seedfed_node::chain::wire::{ChainRequest, ChainResponse};
use seedfed_node::chain::CheckpointInfo;
use seedfed_node::network::admission::{AdmissionRequest, AdmissionResponse};
use seedfed_protocol::agent::{Agent, Fault};
use seedfed_protocol::checkpoint::Checkpoint;
use seedfed_protocol::consensus::{CommitCertificate, ConsensusMessage, WalEntry};
use seedfed_protocol::dealing::DealComplaint;
use seedfed_protocol::dkg::{Complaint, Envelope};
use seedfed_protocol::issue::IssueBundle;
use seedfed_protocol::ledger::{
    self, Block, ComplaintPayload, DkgSuite, Ledger, Round1Payload, SignedCheckpoint,
    SignedRequest, SignedTx,
};
use seedfed_protocol::light_client::Trusted;
use seedfed_protocol::lmots::{LmotsPublicKey, LmotsSignature};
use seedfed_protocol::lms::{HssPublicKey, LmsPublicKey, LmsSignature};
use seedfed_protocol::reconstruct::blame::BlameEvidence;
use seedfed_protocol::reconstruct::Contribution;
use seedfed_protocol::repair::{DeltaMessage, SigmaMessage};

/// `ledger::decode` of `T`; if it decodes, the canonical encoding must be the input (the
/// codec's documented guarantee) and must decode again to the same encoding.
pub fn canonical<T: Serialize + DeserializeOwned>(data: &[u8]) -> Option<T> {
    let value: T = ledger::decode(data).ok()?;
    let again = ledger::encode(&value);
    assert_eq!(
        again,
        data,
        "{}: a non-canonical encoding decoded",
        std::any::type_name::<T>()
    );
    let back: T = ledger::decode(&again).expect("canonical encoding decodes");
    assert_eq!(ledger::encode(&back), again);
    Some(value)
}

/// Gossip: a consensus message, then the gossip checks the node runs before forwarding it.
pub fn consensus_message(data: &[u8]) {
    if let Some(m) = canonical::<ConsensusMessage>(data) {
        let _ = m.height();
        let _ = m.signers();
        let _ = m.check_signatures("fuzz");
    }
}

/// Sync responses and disk: a block with its commit certificate (as stored and synced), a
/// block alone, a certificate alone; each block's hash is taken.
pub fn block(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    match sel % 3 {
        0 => {
            if let Some((b, _c)) = canonical::<(Block, CommitCertificate)>(rest) {
                let _ = b.hash();
            }
        }
        1 => {
            if let Some(b) = canonical::<Block>(rest) {
                let _ = b.hash();
            }
        }
        _ => {
            let _ = canonical::<CommitCertificate>(rest);
        }
    }
}

/// Gossip and the API's `POST /tx`: a signed transaction, its digest and signature check.
pub fn signed_tx(data: &[u8]) {
    if let Some(tx) = canonical::<SignedTx>(data) {
        let _ = tx.tx.digest("fuzz");
        let _ = tx.verify("fuzz");
        let _ = seedfed_node::chain::mempool::check_size(&tx.tx.body, data.len());
    }
}

/// The payloads inside transaction bodies the ledger decodes when it applies them: DKG
/// round-1 packages (both suites) and complaints, deal complaints and sign-blame evidence.
pub fn tx_payload(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    match sel % 5 {
        0 => {
            let _ = canonical::<Round1Payload>(rest);
            let _ = ledger::decode_round1::<frost_ristretto255::Ristretto255Sha512>(
                rest,
                DkgSuite::Ristretto255,
            );
            let _ = ledger::decode_round1::<frost_ed25519::Ed25519Sha512>(rest, DkgSuite::Ed25519);
        }
        1 => {
            if let Some(p) = canonical::<ComplaintPayload>(rest) {
                let _ = Complaint::decode(&p.complaint);
            }
        }
        2 => {
            let _ = canonical::<DealComplaint>(rest);
        }
        3 => {
            let _ = canonical::<BlameEvidence>(rest);
        }
        _ => {
            let _ = canonical::<Contribution>(rest);
        }
    }
}

/// Point-to-point chain requests and responses (`/seedfed/rpc/2`).
pub fn chain_rpc(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    if sel % 2 == 0 {
        let _ = canonical::<ChainRequest>(rest);
    } else {
        let _ = canonical::<ChainResponse>(rest);
    }
}

/// Disk: a consensus write-ahead-log entry.
pub fn wal_entry(data: &[u8]) {
    if let Some(e) = canonical::<WalEntry>(data) {
        let _ = seedfed_node::chain::storage::wal_height(&e);
    }
}

/// Disk: the ledger state at the tip (what a restart loads).
pub fn ledger_state(data: &[u8]) {
    if let Some(l) = canonical::<Ledger>(data) {
        let _ = l.state.hash();
        let _ = l.height();
    }
}

/// Disk and light clients: a signed checkpoint record, and the fixed-size checkpoint encoding
/// (`Checkpoint::from_bytes`, which must be canonical).
pub fn signed_checkpoint(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    if sel % 2 == 0 {
        let _ = canonical::<SignedCheckpoint>(rest);
    } else if let Ok(cp) = Checkpoint::from_bytes(rest) {
        assert_eq!(
            cp.to_bytes().as_slice(),
            rest,
            "checkpoint encoding not canonical"
        );
        if !cp.master_key.is_none() {
            let _ = cp.master_key.public_key();
            let _ = cp.master_key.encode_hss();
        }
    }
}

/// The API's request bodies: a client's signed sign request, a `(leaf, signature)` publish,
/// and the issuance bundle a client reads back.
pub fn api_body(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    match sel % 3 {
        0 => {
            if let Some(r) = canonical::<SignedRequest>(rest) {
                let _ = r.verify("fuzz");
            }
        }
        1 => {
            let _ = canonical::<(u64, Vec<u8>)>(rest);
        }
        _ => {
            let _ = canonical::<IssueBundle>(rest);
        }
    }
}

/// Point-to-point agent messages (DKG envelopes, branch partials, dealt batches, acks,
/// reconstruction contributions, disputes, leaf paths): decode and canonical re-encoding.
pub fn direct(data: &[u8]) {
    if let Some(again) = seedfed_protocol::fuzzing::direct_reencode(data) {
        assert_eq!(
            again, data,
            "direct message: a non-canonical encoding decoded"
        );
    }
}

/// Disk: the epoch agent's snapshot (after the at-rest layer opened it).
pub fn agent_snapshot(data: &[u8]) {
    if let Ok(a) = Agent::restore(data, [7; 32], [9; 32], Fault::None) {
        let again = a.snapshot();
        assert_eq!(again.as_slice(), data, "agent snapshot: non-canonical");
        let _ = a.status();
    }
}

/// DKG round-2 envelopes and complaints (hand-written codec; canonical).
pub fn dkg_codec(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    if sel % 2 == 0 {
        if let Ok(e) = Envelope::decode(rest) {
            assert_eq!(e.encode(), rest, "envelope: non-canonical");
        }
    } else if let Ok(c) = Complaint::decode(rest) {
        assert_eq!(c.encode(), rest, "complaint: non-canonical");
        let _ = (c.complainer(), c.dealer());
    }
}

/// Repair messages (helper deltas and sigmas) and the scalars their sealed bodies hold.
pub fn repair_message(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    match sel % 3 {
        0 => {
            let _ = canonical::<DeltaMessage>(rest);
        }
        1 => {
            let _ = canonical::<SigmaMessage>(rest);
        }
        _ => {
            let n = rest.len() / 32;
            if let Ok(k) = seedfed_protocol::fuzzing::repair_plaintext(rest, n) {
                assert_eq!(k, n);
            }
        }
    }
}

/// LMS and LM-OTS public keys and signatures (with their authentication paths), in the
/// RFC 8554 encodings and the one-level HSS wrappers; all canonical.
pub fn lms_codec(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    match sel % 6 {
        0 => {
            if let Ok(k) = LmsPublicKey::decode(rest) {
                assert_eq!(k.encode(), rest, "LMS public key: non-canonical");
            }
        }
        1 => {
            if let Ok(k) = LmsPublicKey::decode_hss(rest) {
                assert_eq!(k.encode_hss(), rest, "HSS public key: non-canonical");
            }
        }
        2 => {
            if let Ok(s) = LmsSignature::decode(rest) {
                assert_eq!(s.encode(), rest, "LMS signature: non-canonical");
            }
        }
        3 => {
            if let Ok(s) = LmsSignature::decode_hss(rest) {
                assert_eq!(s.encode_hss(), rest, "HSS signature: non-canonical");
            }
        }
        4 => {
            let _ = HssPublicKey::decode(rest);
            if let Ok(k) = LmotsPublicKey::decode(rest) {
                assert_eq!(k.encode(), rest, "LM-OTS public key: non-canonical");
            }
        }
        _ => {
            if let Ok(s) = LmotsSignature::decode(rest) {
                assert_eq!(s.encode(), rest, "LM-OTS signature: non-canonical");
            }
        }
    }
}

/// What a light client reads: a compromised node's `/checkpoints` JSON walked from a trust
/// anchor, and the client's own cached `Trusted` file.
pub fn light_client(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    if sel % 2 == 0 {
        let Ok(served) = serde_json::from_slice::<Vec<CheckpointInfo>>(rest) else {
            return;
        };
        let Ok(mut t) = Trusted::new([3; 32], anchor_key()) else {
            return;
        };
        let before = t.clone();
        if seedfed_node::chain::light_walk(&mut t, &served).is_err() {
            assert_eq!(t, before, "a failed walk changed the trusted state");
        }
    } else if let Ok(t) = serde_json::from_slice::<Trusted>(rest) {
        let text = serde_json::to_vec(&t).expect("serialises");
        let back: Trusted = serde_json::from_slice(&text).expect("round-trips");
        assert_eq!(back, t);
        let mut t = t;
        let _ = t.accept_retired(&[1, 2, 3]);
        let _ = t.needs_retired();
    }
}

fn anchor_key() -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(&[5; 32])
        .verifying_key()
        .to_bytes()
}

/// Admission request-response messages as the libp2p CBOR codec reads them off a stream
/// (size-capped like the node's), then the record's verification.
pub fn admission(data: &[u8]) {
    use futures::executor::block_on;
    use libp2p::request_response::Codec as _;
    use libp2p::StreamProtocol;

    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut codec = libp2p::request_response::cbor::codec::Codec::<
        AdmissionRequest,
        AdmissionResponse,
    >::default()
    .set_request_size_maximum(seedfed_node::network::admission::MAX_ADMISSION_MESSAGE_BYTES)
    .set_response_size_maximum(seedfed_node::network::admission::MAX_ADMISSION_MESSAGE_BYTES);
    let proto = StreamProtocol::new("/seedfed/admission/1");
    let mut io = futures::io::Cursor::new(rest.to_vec());
    let presenter = libp2p::PeerId::random();
    if sel % 2 == 0 {
        if let Ok(AdmissionRequest(rec)) = block_on(codec.read_request(&proto, &mut io)) {
            let _ = rec.peer_id();
            let _ = rec.verify(&presenter, "fuzz", 0);
        }
    } else if let Ok(AdmissionResponse::Accepted(rec)) =
        block_on(codec.read_response(&proto, &mut io))
    {
        let _ = rec.verify(&presenter, "fuzz", 0);
    }
}

/// Disk: a sealed at-rest record (agent snapshots, held shares) opened with the node's key.
pub fn at_rest(data: &[u8]) {
    static KEY: OnceLock<seedfed_node::at_rest::AtRestKey> = OnceLock::new();
    let key = KEY.get_or_init(|| seedfed_node::at_rest::AtRestKey::derive(&[1; 32], &[2; 32]));
    let _ = key.open(b"fuzz", data);
}

/// A scratch directory of this process for the file targets (one process fuzzes one target at
/// a time, so one file name per target is enough).
fn scratch(name: &str, data: &[u8]) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        // The scripts point SEEDFED_FUZZ_SCRATCH at a memory-backed directory they remove
        // afterwards (these targets write a file per execution).
        let base = std::env::var_os("SEEDFED_FUZZ_SCRATCH")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let d = base.join(format!("seedfed-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch directory");
        d
    });
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).expect("scratch file");
    f.write_all(data).expect("scratch write");
    path
}

/// Disk: the keystore file's public part and KDF cost (parsed without the passphrase; the
/// passphrase path runs Argon2 at the file's cost, too slow to fuzz).
pub fn keystore_file(data: &[u8]) {
    let path = scratch("keystore.json", data);
    let _ = seedfed_node::keystore::load_public(&path);
    let _ = seedfed_node::keystore::kdf_cost(&path);
}

/// Disk: `config.toml` through figment, as `seedfed run` loads it.
pub fn config_file(data: &[u8]) {
    let path = scratch(seedfed_node::config::CONFIG_FILE, data);
    if let Some(home) = path.parent() {
        if let Ok(c) = seedfed_node::config::Config::load(home) {
            let _ = c.to_toml();
        }
    }
}

/// Disk: the genesis TOML, its checks, and its conversion to the ledger's genesis.
pub fn genesis_file(data: &[u8]) {
    let path = scratch("genesis.toml", data);
    if let Ok(g) = seedfed_node::genesis::Genesis::load(&path) {
        if let Ok(lg) = g.to_ledger() {
            let _ = Ledger::from_genesis(&lg);
        }
        let _ = g.stakes();
        let _ = g.to_toml();
    }
}

/// Disk: the known-peers hint file.
pub fn peers_file(data: &[u8]) {
    let path = scratch("peers.json", data);
    let peers = seedfed_node::network::peers_file::load(&path);
    assert!(peers.len() <= seedfed_node::network::peers_file::MAX_SAVED_PEERS);
}
